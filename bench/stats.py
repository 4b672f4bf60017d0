"""Seeded bootstrap confidence intervals for any metric, per-example or corpus-level."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

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


@dataclass(frozen=True)
class Comparison:
    """Arm A against arm B on the same examples: difference A - B, its CI and a p-value."""

    metric: str
    difference: float
    low: float
    high: float
    p_value: float
    test: str
    n: int

    def to_dict(self) -> dict[str, float | str | int]:
        return self.__dict__.copy()


def paired_bootstrap(metric: Metric, preds_a: Sequence[str], preds_b: Sequence[str], refss: Sequence[Refs], *,
                     n_boot: int = 2000, seed: int = 0, confidence: float = 0.95) -> Comparison:
    """Resample examples (the same indices for both arms); two-sided p-value for 'no difference'
    is twice the smaller share of resampled differences on either side of zero."""
    n = len(refss)
    diff = metric.aggregate(preds_a, refss) - metric.aggregate(preds_b, refss)
    idx = np.random.default_rng(seed).integers(0, n, size=(n_boot, n))
    sa, sb = metric.example_scores(preds_a, refss), metric.example_scores(preds_b, refss)
    if sa is not None:
        samples = (sa - sb)[idx].mean(axis=1)
    else:
        pa, pb, rr = list(preds_a), list(preds_b), list(refss)
        samples = np.array([metric.aggregate([pa[i] for i in row], [rr[i] for i in row]) -
                            metric.aggregate([pb[i] for i in row], [rr[i] for i in row]) for row in idx])
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(samples, [tail, 100 - tail])
    p = min(1.0, 2 * min(np.mean(samples <= 0), np.mean(samples >= 0))) if diff != 0 else 1.0
    return Comparison(metric.name, float(diff), float(low), float(high), float(p), "paired bootstrap", n)


def mcnemar(correct_a: Sequence[bool], correct_b: Sequence[bool]) -> float:
    """Exact McNemar test: binomial test on the examples exactly one arm gets right."""
    from scipy.stats import binomtest

    a = np.asarray(correct_a, dtype=bool)
    b = np.asarray(correct_b, dtype=bool)
    only_a, only_b = int(np.sum(a & ~b)), int(np.sum(~a & b))
    if only_a + only_b == 0:
        return 1.0
    return float(binomtest(only_a, only_a + only_b, 0.5).pvalue)


def format_p(p: float) -> str:
    """A p-value as the reports print it: '< 0.001' below 0.001 (a resampled p of 0 only says that no
    resample reached the observed difference: below 1 / resamples, never zero), else three digits."""
    return "< 0.001" if p < 0.001 else f"{p:.3g}"


def p_phrase(p: float, name: str = "p") -> str:
    """'p < 0.001' or 'p = 0.0498', for a sentence (`format_p` is for a table cell)."""
    text = format_p(p)
    return f"{name} {text}" if text.startswith("<") else f"{name} = {text}"


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm–Bonferroni adjusted p-values (family-wise error control, less conservative than Bonferroni)."""
    m = len(p_values)
    order = np.argsort(p_values)
    adjusted = np.empty(m)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted.tolist()
