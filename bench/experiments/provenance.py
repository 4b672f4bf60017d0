"""What every experiment records about how it ran (its directory's `provenance`): the suite,
model, device, code and options, and its timings; each experiment adds its own settings."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..runner import ModelLoader, RunOptions
from ..store import code_fingerprint, git_sha, read_json


def experiment_provenance(run: Any, opts: RunOptions, started: float, loader: ModelLoader,
                          **settings: Any) -> dict[str, Any]:
    """The provenance shared by the experiments (`run`: the plan's resolved run), then `settings`,
    the experiment's own options (sizes, seeds, limits)."""
    return {"suite": run.suite.spec.name, "suite_path": str(run.suite.path), "profile": run.suite.profile,
            "model": run.model_spec, "model_fingerprint": run.model_id, "device": run.device, "dtype": run.dtype,
            "batch_size": run.batch_size, "seed": run.suite.spec.seed, "git_sha": git_sha(),
            "code_fingerprint": code_fingerprint(),
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
            "wall_s": round(time.time() - started, 2), "model_load_s": loader.load_seconds,
            **settings, "retrain": opts.retrain, "use_cache": opts.use_cache}


def finished_record(folder: Path, name: str, record_type: Any) -> Any:
    """The record an experiment wrote last into `folder` (its end marker), for `bench report DIR`;
    a directory without it is an experiment that stopped before its end."""
    path = folder / name
    if not path.is_file():
        raise ConfigError(f"{folder}: no {name}; the experiment stopped before its end (rerun it)")
    return record_type.from_json(read_json(path)["record"])


def recorded_n_boot(record: Any) -> int:
    """The bootstrap size the experiment ran with (1000 for records made before it was kept)."""
    return int(record.provenance.get("n_boot", 1000))
