"""A test of two arms over training seeds and test examples together.

The question a team asks is whether variant A, trained again with another seed, would still beat
B: the gap between the arms' means over the population of training seeds, on the population of
test examples. Its estimate is the mean over A's seeds minus the mean over B's (B may be a variant
that trains nothing: one 'seed'). Its variance has one part per source of chance:

- examples: resampling the test examples (the same rows for every seed and both arms, since all
  predicted the same examples), with the seeds held fixed;
- seeds: for each arm trained with k > 1 seeds, the sample variance of its per-seed scores over k.

The interval and p-value use Student's t with Welch–Satterthwaite degrees of freedom: with many
test examples and seeds that agree it is the usual paired test; when the seeds disagree it falls
towards k - 1 degrees of freedom, which is what three seeds can tell. A bootstrap over seeds (a
two-level bootstrap) was not used: resampling three seeds can only produce means between the
lowest and the highest seed seen, so it calls a gap significant whenever every seed beat the
other arm, however far apart the seeds are (see DESIGN.md, 'Experiments').
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..metrics import Metric, Refs


@dataclass(frozen=True)
class SeedAwareTest:
    """A minus B over training seeds and test examples."""

    difference: float
    """Mean over A's seeds minus mean over B's, of the metric on the whole test set."""
    low: float
    """Lower end of the 95% interval (Student's t, Welch–Satterthwaite degrees of freedom)."""
    high: float
    p_value: float
    """Two-sided, for 'no difference in expectation over seeds'."""
    df: float
    """Welch–Satterthwaite degrees of freedom of the two or three variance parts (inf when there is no variance)."""
    example_var: float
    """Variance of the difference from resampling test examples, the seeds held fixed."""
    seed_var: float
    """Variance of the difference from the training seeds (each seeded arm's score variance over its seed count)."""
    n: int
    """Test examples."""
    test: str = "t over seeds and examples"


def seeds_and_examples(metric: Metric, a: Sequence[Sequence[str]], b: Sequence[Sequence[str]],
                       refss: Sequence[Refs], *, n_boot: int = 2000, seed: int = 0,
                       confidence: float = 0.95) -> SeedAwareTest:
    """`a`, `b`: each arm's outputs per training seed (one list for an arm that trains nothing), every
    list in the order of `refss`."""
    from scipy import stats

    score_a = np.array([metric.aggregate(list(p), refss) for p in a])
    score_b = np.array([metric.aggregate(list(p), refss) for p in b])
    diff = float(score_a.mean() - score_b.mean())
    example_var = _example_variance(metric, a, b, refss, n_boot=n_boot, seed=seed)
    seed_parts = [(float(s.var(ddof=1)) / len(s), len(s) - 1) for s in (score_a, score_b) if len(s) > 1]
    parts = [(example_var, max(1, len(refss) - 1)), *seed_parts]
    total = sum(v for v, _ in parts)
    if total <= 0:  # every seed and both arms agree on every resample: nothing varies
        return SeedAwareTest(diff, diff, diff, 1.0 if diff == 0 else 0.0, math.inf, example_var, 0.0, len(refss))
    df = total ** 2 / sum(v ** 2 / d for v, d in parts if v > 0)
    se = math.sqrt(total)
    half = float(stats.t.ppf(1 - (1 - confidence) / 2, df)) * se
    p = float(2 * stats.t.sf(abs(diff) / se, df))
    return SeedAwareTest(diff, diff - half, diff + half, min(1.0, p), df, example_var,
                         sum(v for v, _ in seed_parts), len(refss))


def _example_variance(metric: Metric, a: Sequence[Sequence[str]], b: Sequence[Sequence[str]],
                      refss: Sequence[Refs], *, n_boot: int, seed: int) -> float:
    """Variance of (mean over A's seeds - mean over B's) over bootstrap resamples of the test examples."""
    n = len(refss)
    idx = np.random.default_rng(seed).integers(0, n, size=(n_boot, n))
    per_a = [metric.example_scores(list(p), refss) for p in a]
    per_b = [metric.example_scores(list(p), refss) for p in b]
    if all(s is not None for s in per_a + per_b):
        gap = np.mean(per_a, axis=0) - np.mean(per_b, axis=0)
        samples = gap[idx].mean(axis=1)
    else:  # a corpus-level metric (macro-F1): aggregate each resample
        refs = list(refss)

        def mean_score(outputs: Sequence[Sequence[str]], row: np.ndarray) -> float:
            return float(np.mean([metric.aggregate([o[i] for i in row], [refs[i] for i in row]) for o in outputs]))

        samples = np.array([mean_score(a, row) - mean_score(b, row) for row in idx])
    return float(samples.var(ddof=1))
