"""Seeded bootstrap confidence intervals for any metric, per-example or corpus-level."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .metrics import Metric, Refs


@dataclass(frozen=True)
class Estimate:
    """A point estimate with its percentile-bootstrap interval."""

    value: float
    low: float
    high: float
    n: int

    def to_dict(self) -> dict[str, float]:
        return {"value": self.value, "low": self.low, "high": self.high, "n": self.n}


def bootstrap(metric: Metric, preds: Sequence[str], refss: Sequence[Refs], *,
              n_boot: int = 1000, seed: int = 0, confidence: float = 0.95) -> Estimate:
    """Resample examples with replacement `n_boot` times; the CI is the percentile interval."""
    n = len(preds)
    value = metric.aggregate(preds, refss)
    if n == 0:
        return Estimate(float("nan"), float("nan"), float("nan"), 0)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(n_boot, n))
    scores = metric.example_scores(preds, refss)
    if scores is not None:
        samples = scores[idx].mean(axis=1)
    else:
        preds_a, refs_a = list(preds), list(refss)
        samples = np.array([metric.aggregate([preds_a[i] for i in row], [refs_a[i] for i in row]) for row in idx])
    return _interval(value, samples, n, confidence)


def bootstrap_mean(values: Sequence[float], *, n_boot: int = 1000, seed: int = 0, confidence: float = 0.95) -> Estimate:
    """The mean of per-example values (e.g. recall@k hits) with its bootstrap interval."""
    arr = np.asarray(values, dtype=float)
    if arr.size == 0:
        return Estimate(float("nan"), float("nan"), float("nan"), 0)
    idx = np.random.default_rng(seed).integers(0, arr.size, size=(n_boot, arr.size))
    return _interval(float(arr.mean()), arr[idx].mean(axis=1), arr.size, confidence)


def _interval(value: float, samples: np.ndarray, n: int, confidence: float) -> Estimate:
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(samples, [tail, 100 - tail])
    return Estimate(value, float(low), float(high), n)
