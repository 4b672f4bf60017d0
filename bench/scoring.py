"""Score stored predictions: every metric of a task, with bootstrap CIs and the task's floor.

Works on prediction records alone, so scores can be recomputed without touching a model.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from .metrics import get_metric
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


def score_predictions(task: Task, rows: list[dict[str, Any]], *, seed: int, n_boot: int = 1000) -> dict[str, Any]:
    """Aggregate + 95% CI per metric; adds per-example scores to `rows` in place."""
    preds = [r["output"] for r in rows]
    refs = [r["references"] for r in rows]
    out: dict[str, Any] = {}
    for name in task.spec.metrics:
        metric = get_metric(name)
        est = bootstrap(metric, preds, refs, n_boot=n_boot, seed=seed)
        out[name] = est.to_dict()
        per = metric.example_scores(preds, refs)
        if per is not None:
            for r, s in zip(rows, per):
                r.setdefault("scores", {})[name] = round(float(s), 4)
    return out


def score_floor(task: Task, examples: list, *, seed: int) -> dict[str, Any]:
    name, outputs = floor_outputs(task, examples)
    rows = [{"output": o, "references": list(e.targets)} for o, e in zip(outputs, examples)]
    return {"name": name, "metrics": score_predictions(task, rows, seed=seed, n_boot=200)}


def retrieval_scores(task: Task, rows: list[dict[str, Any]], *, seed: int) -> dict[str, Any] | None:
    """recall@1, recall@k and MRR of retrieved document ids against the gold document.

    Needs the task's `gold_doc_field` and rows carrying `retrieved` (document ids, best first;
    a document retrieved through several chunks counts once, at its best rank).
    """
    field = task.spec.gold_doc_field
    if not field or not rows or "retrieved" not in rows[0]:
        return None
    gold = {e.id: e.meta.get(field) for e in task.split("test")}
    k = max(len(r["retrieved"]) for r in rows)
    ranks = []
    for r in rows:
        docs = list(dict.fromkeys(r["retrieved"]))
        ranks.append(docs.index(gold[r["id"]]) + 1 if gold.get(r["id"]) in docs else None)
    per = {"recall@1": [float(x == 1) for x in ranks], f"recall@{k}": [float(x is not None) for x in ranks],
           "mrr": [1.0 / x if x else 0.0 for x in ranks]}
    return {name: bootstrap_mean(v, seed=seed).to_dict() for name, v in per.items()}
