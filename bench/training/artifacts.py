"""The trained-model cache: cache_root()/adapters/<key>, one directory per trained variant.

The key hashes the base model, the training data, the method, every hyperparameter, the seed
and the training code. An entry is built in a temporary directory and renamed into place with
its COMPLETE marker written last, so an interrupted save never looks like a trained model;
checkpoints of an unfinished training stay in adapters/.work-<key> so a rerun resumes from them.
Two processes that need the same entry at once take turns through a lock file per key
(adapters/.lock-<key>): the second waits for the first one's training and then loads its entry,
rather than training it again or reading it while it is replaced.
"""

from __future__ import annotations

import copy
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..data import stable_hash
from ..models import LoadedModel, cache_root
from ..predictions import TrainingCosts
from ..store import DISK_FULL, disk_full, read_json, write_json, writing_to
from . import distributed

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


def completed_after(key: str, since: float | None) -> bool:
    """Whether the entry was finished at or after `since` (a time.time()): by the process whose
    training this one waited for. None (this process did not wait): False."""
    marker = adapters_root() / key / MARKER
    return since is not None and marker.is_file() and marker.stat().st_mtime >= since


@contextmanager
def claim(key: str, label: str, log: Callable[[str], None]) -> Iterator[float | None]:
    """Hold the key's lock while checking, training and loading its entry. Yields when this
    process started waiting for another one, or None if the lock was free. Only the main process
    of a multi-process launch takes it: its peers train with it (DDP) and must not wait for it."""
    if not distributed.is_main():
        yield None
        return
    from filelock import FileLock, Timeout

    root = adapters_root()
    path = root / f".lock-{key}"
    try:
        root.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(path))
        since = None
        try:
            lock.acquire(timeout=0)
        except Timeout:
            since = time.time()
            log(f"[finetune] {label}: waiting for another process that is training this model (lock {path})")
            lock.acquire()
    except OSError as e:
        if e.errno in DISK_FULL:
            raise disk_full(path) from e
        raise
    try:
        yield since
    finally:
        lock.release()


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
        # `save` is torch/safetensors: a full disk may come as their own error types, not OSError
        with writing_to(final):
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
    except BaseException:  # a full disk, a failing writer or Ctrl-C: no half-saved model stays behind
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
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
