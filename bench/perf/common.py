"""What more than one benchmark needs: the machine's matmul ceiling, the FLOPs a token costs,
and synthetic embedding-like vectors."""

from __future__ import annotations

import time
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


def synthetic_vectors(rng: np.random.Generator, n: int, dim: int, n_queries: int) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors around n/100 random centres (embeddings cluster by topic; uniform random
    vectors would be an unrealistically hard case for approximate search), plus held-out queries."""
    centres = rng.standard_normal((max(1, n // 100), dim)).astype(np.float32)
    pick = rng.integers(0, len(centres), n + n_queries)
    x = centres[pick] + 0.6 * rng.standard_normal((n + n_queries, dim)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return np.ascontiguousarray(x[:n]), np.ascontiguousarray(x[n:])


def release_cuda_memory(device: str) -> None:
    """Hand cached blocks back between timed variants, so one variant's leftovers do not shrink
    the memory (and batch) the next one gets."""
    if device.startswith("cuda"):
        import torch

        torch.cuda.empty_cache()
