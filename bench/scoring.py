"""Score stored predictions: every metric of a task, with bootstrap CIs and the task's floor.

Works on prediction records alone, so scores can be recomputed without touching a model.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .metrics import get_metric
from .predictions import Prediction
from .stats import bootstrap, bootstrap_mean
from .suites import Task


def floor_outputs(task: Task, examples: list) -> tuple[str, list[str]]:
    """The no-skill answer for each test example, and what it is called in reports.

    classification and qa: the most frequent train target; generation: the input's first
    30 words (a lead baseline), since a constant summary is a meaningless floor for ROUGE.
    """
    if task.spec.kind == "generation":
        return "lead-30 words of the input", [" ".join(e.input.split()[:30]) for e in examples]
    train = task.split("train") or examples
    top, _ = Counter(e.target for e in train).most_common(1)[0]
    name = "majority class" if task.spec.kind == "classification" else "most frequent train answer"
    return f"{name} ({task.spec.verbalise(top) if task.spec.kind == 'classification' else top})", [top] * len(examples)


@dataclass(frozen=True)
class Scored:
    """One arm's scores on one task: every metric with its CI, and each example's score."""

    metrics: dict[str, dict[str, Any]]
    """metric name -> {value, low, high, n, ...} (a bootstrap estimate's record)."""
    per_example: dict[str, list[float]]
    """metric name -> one score per prediction, in order (metrics that have per-example scores)."""

    def example_scores(self, i: int) -> dict[str, float]:
        return {name: round(float(v[i]), 4) for name, v in self.per_example.items()}


def score_outputs(task: Task, outputs: Sequence[str], references: Sequence[Sequence[str]], *, seed: int,
                  n_boot: int = 1000) -> Scored:
    """Aggregate + 95% bootstrap CI per metric of the task, and the per-example scores."""
    preds, refs = list(outputs), [list(r) for r in references]
    metrics, per = {}, {}
    for name in task.spec.metrics:
        metric = get_metric(name)
        metrics[name] = bootstrap(metric, preds, refs, n_boot=n_boot, seed=seed).to_dict()
        scores = metric.example_scores(preds, refs)
        if scores is not None:
            per[name] = list(scores)
    return Scored(metrics, per)


def score_predictions(task: Task, predictions: Sequence[Prediction], *, seed: int, n_boot: int = 1000) -> Scored:
    """Score an arm's predictions; the predictions themselves are never changed."""
    return score_outputs(task, [p.output for p in predictions], [p.references for p in predictions],
                         seed=seed, n_boot=n_boot)


def score_floor(task: Task, examples: list, *, seed: int) -> dict[str, Any]:
    name, outputs = floor_outputs(task, examples)
    scored = score_outputs(task, outputs, [e.targets for e in examples], seed=seed, n_boot=200)
    return {"name": name, "metrics": scored.metrics}


def retrieval_scores(task: Task, predictions: Sequence[Prediction], *, seed: int) -> dict[str, Any] | None:
    """recall@1, recall@k and MRR of retrieved document ids against the gold document.

    Needs the task's `gold_doc_field` and predictions whose retrieval trace names documents
    (best first; a document retrieved through several chunks counts once, at its best rank). A
    query that retrieved nothing (BM25 finds no shared term) is a miss; predictions none of which
    names a document (examples mode) have no retrieval scores.
    """
    field = task.spec.gold_doc_field
    traces = [p.retrieval for p in predictions]
    if not field or not predictions or any(t is None for t in traces) or not any(t.documents for t in traces):
        return None
    gold = {e.id: e.meta.get(field) for e in task.split("test")}
    k = max(len(t.documents) for t in traces)
    ranks = []
    for p in predictions:
        docs = list(dict.fromkeys(p.retrieval.documents))
        ranks.append(docs.index(gold[p.id]) + 1 if gold.get(p.id) in docs else None)
    per = {"recall@1": [float(x == 1) for x in ranks], f"recall@{k}": [float(x is not None) for x in ranks],
           "mrr": [1.0 / x if x else 0.0 for x in ranks]}
    return {name: bootstrap_mean(v, seed=seed).to_dict() for name, v in per.items()}
