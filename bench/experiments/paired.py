"""Two arms' stored predictions compared on one metric, as a run's decision compares them: the
paired bootstrap's difference and interval, and its p-value, except for accuracy, a paired binary
outcome, where the exact McNemar test gives the p-value (bench.decision does the same)."""

from __future__ import annotations

from collections.abc import Sequence

from ..metrics import get_metric
from ..predictions import ScoredPrediction
from ..stats import Comparison, mcnemar, paired_bootstrap


def paired_test(metric: str, a: Sequence[ScoredPrediction], b: Sequence[ScoredPrediction], *, seed: int,
                n_boot: int = 2000) -> Comparison:
    """A minus B on the examples both predicted (matched by id, in id order)."""
    by_id_b = {r.id: r for r in b}
    common = sorted(r.id for r in a if r.id in by_id_b)
    by_id_a = {r.id: r for r in a}
    refs = [list(by_id_a[i].references) for i in common]
    pa, pb = [by_id_a[i].output for i in common], [by_id_b[i].output for i in common]
    m = get_metric(metric)
    result = paired_bootstrap(m, pa, pb, refs, n_boot=n_boot, seed=seed)
    if metric != "accuracy":
        return result
    right_a, right_b = m.example_scores(pa, refs), m.example_scores(pb, refs)
    p = mcnemar([bool(x) for x in right_a], [bool(x) for x in right_b])
    return Comparison(result.metric, result.difference, result.low, result.high, p, "McNemar (exact)", result.n)

