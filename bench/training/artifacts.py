"""The trained-model cache: cache_root()/adapters/<key>, one directory per trained variant.

The key hashes the base model, the training data, the method, every hyperparameter, the seed
and the training code. An entry is built in a temporary directory and renamed into place with
its COMPLETE marker written last, so an interrupted save never looks like a trained model;
checkpoints of an unfinished training stay in adapters/.work-<key> so a rerun resumes from them.
"""

from __future__ import annotations

import copy
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..data import stable_hash
from ..errors import ResourceError
from ..models import LoadedModel, cache_root
from ..predictions import TrainingCosts
from ..store import DISK_FULL, read_json, write_json

MARKER = "COMPLETE"


def adapters_root() -> Path:
    return cache_root() / "adapters"


def training_code_hash() -> str:
    """The source that shapes a trained model: an edit there means retraining."""
    here = Path(__file__).resolve().parent.parent
    files = sorted((here / "training").glob("*.py")) + [here / "prompts.py"]
    return stable_hash([(f.name, f.read_text(encoding="utf-8")) for f in files])


def is_complete(key: str) -> bool:
    return (adapters_root() / key / MARKER).is_file()


def work_dir(key: str) -> Path:
    """Where the checkpoints of an unfinished training live (kept for resuming)."""
    return adapters_root() / f".work-{key}"


def read_costs(key: str) -> TrainingCosts:
    return TrainingCosts.from_record(read_json(adapters_root() / key / "meta.json")["costs"])


def export(key: str, spec_record: dict[str, Any], costs: TrainingCosts, save: Callable[[Path], None]) -> None:
    """Write the artifact to a temp dir, the marker last, then rename it into place."""
    root = adapters_root()
    final = root / key
    tmp: Path | None = None
    try:
        root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=root, prefix=f".tmp-{key}-"))  # unique: concurrent runs never share it
        save(tmp)
        size = sum(f.stat().st_size for f in tmp.rglob("*") if f.is_file())
        record = replace(costs, artifact_bytes=size).to_record()
        write_json(tmp / "meta.json", {"key": key, "spec": spec_record, "costs": record,
                                       "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
        (tmp / MARKER).write_text("ok\n")
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    except (OSError, ResourceError) as e:  # ResourceError: write_json found the disk full
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(e, OSError) and e.errno in DISK_FULL:
            raise ResourceError(f"disk full while saving the trained model to {root}: free space (or set "
                                "TRIDENT_CACHE) and rerun; nothing was cached") from e
        raise


def load_trained(base: LoadedModel, key: str, merge: bool) -> LoadedModel:
    """The trained model for inference, on a copy: the shared base model is never modified."""
    import torch

    path = adapters_root() / key
    method = read_json(path / "meta.json")["costs"]["method"]
    if method in ("lora", "qlora"):
        from peft import PeftModel

        model = PeftModel.from_pretrained(copy.deepcopy(base.model), str(path))
        if merge:
            model = model.merge_and_unload()
    else:
        from transformers import AutoModelForCausalLM

        model = AutoModelForCausalLM.from_pretrained(str(path), dtype=getattr(torch, base.dtype))
        model.to(base.device)
    model.eval()
    return LoadedModel(model, base.tokenizer, base.spec, f"{base.fingerprint}+ft:{key}", base.device, base.dtype)
