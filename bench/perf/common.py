"""What more than one benchmark needs: the machine's matmul ceiling, the FLOPs a token costs,
synthetic embedding-like vectors, latency percentiles, peak memory, and a fresh trident cache."""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np


def matmul_peak(dtype_name: str, size: int = 2048, seconds: float = 3.0, device: str = "cpu") -> float:
    """Sustained FLOP/s of a square matmul in `dtype_name`: the machine's practical ceiling
    (8192^2 on a GPU, where 2048^2 is too small to fill it)."""
    import torch

    cuda = device.startswith("cuda")
    size = max(size, 8192) if cuda else size
    dtype = getattr(torch, dtype_name)
    a, b = (torch.randn(size, size, dtype=dtype, device=device) for _ in range(2))

    def sync() -> None:
        if cuda:  # CUDA runs ahead of Python: time only work the GPU has finished
            torch.cuda.synchronize()

    for _ in range(3):  # warm-up: kernel selection and first-touch allocation are not the peak
        a @ b
    sync()
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        # ten launches per sync on a GPU, so the sync's own latency does not lower the figure
        for _ in range(10 if cuda else 1):
            a @ b
            n += 1
        sync()
    return 2 * size**3 * n / (time.perf_counter() - start)


def body_params(model: Any) -> int:
    """Parameters every token passes through (not the embedding lookup, not the output head,
    which the arm runs at answer positions only): N in the 6N / 4N FLOPs-per-token rule."""
    return sum(p.numel() for n, p in model.named_parameters() if "embed_tokens" not in n and "lm_head" not in n)


def flops_per_token(model: Any, context: float) -> float:
    """Forward FLOPs per prompt token: 2 x matmul parameters (without the output head, which the
    scorer runs at one position only) + causal attention (4 x layers x hidden x mean context)."""
    cfg = model.config
    return 2 * body_params(model) + 4 * cfg.num_hidden_layers * cfg.hidden_size * context / 2


SYNTHETIC_BLOCK = 100_000
"""Rows drawn at a time, so 10^6+ vectors need their own float32 array and little more."""


def synthetic_vectors(rng: np.random.Generator, n: int, dim: int, n_queries: int) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors around n/100 random centres (embeddings cluster by topic; uniform random
    vectors would be an unrealistically hard case for approximate search), plus held-out queries.
    Drawn in float32 blocks: at 10^6 x 384 a float64 draw would hold 3 GB for a 1.5 GB result."""
    centres = rng.standard_normal((max(1, n // 100), dim), dtype=np.float32)
    total = n + n_queries
    x = np.empty((total, dim), dtype=np.float32)
    for start in range(0, total, SYNTHETIC_BLOCK):
        rows = min(SYNTHETIC_BLOCK, total - start)
        block = centres[rng.integers(0, len(centres), rows)]
        block += 0.6 * rng.standard_normal((rows, dim), dtype=np.float32)
        block /= np.linalg.norm(block, axis=1, keepdims=True)
        x[start:start + rows] = block
    return x[:n], x[n:]  # row ranges of one C-ordered array: both C-contiguous


def release_cuda_memory(device: str) -> None:
    """Hand cached blocks back between timed variants, so one variant's leftovers do not shrink
    the memory (and batch) the next one gets."""
    if device.startswith("cuda"):
        import torch

        torch.cuda.empty_cache()


def ms_percentile(seconds: Sequence[float] | np.ndarray, q: float) -> float:
    """The q-th percentile of per-query seconds, in milliseconds (4 decimals: sub-ms indexes)."""
    return round(float(np.percentile(np.asarray(seconds, dtype=float) * 1000, q)), 4)


def _status_bytes(field: str) -> int | None:
    """A `VmXXX:` line of /proc/self/status in bytes (Linux), or None elsewhere."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def rss_bytes() -> int | None:
    """This process's resident memory now (Linux), or None where the system does not say."""
    return _status_bytes("VmRSS")


def reset_peak_rss() -> bool:
    """Start a new resident-memory peak, so the next `peak_rss_bytes` covers one step only.
    Linux resets it when 5 is written to /proc/self/clear_refs; False where that is not offered
    (the peak then runs from the start of the process)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def peak_rss_bytes() -> int | None:
    """This process's peak resident memory since it started or since `reset_peak_rss`."""
    peak = _status_bytes("VmHWM")
    if peak is None:
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB
    return peak


@contextmanager
def fresh_cache() -> Iterator[Path]:
    """TRIDENT_CACHE pointed at an empty temporary folder for the duration (restored after, the
    folder removed): whatever is built inside is built, never loaded from an earlier run's cache,
    so a benchmark times builds."""
    before = os.environ.get("TRIDENT_CACHE")
    with tempfile.TemporaryDirectory(prefix="trident-perf-") as folder:
        os.environ["TRIDENT_CACHE"] = folder
        try:
            yield Path(folder)
        finally:
            if before is None:
                os.environ.pop("TRIDENT_CACHE", None)
            else:
                os.environ["TRIDENT_CACHE"] = before
