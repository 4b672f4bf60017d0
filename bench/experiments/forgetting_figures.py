"""The forgetting experiment's figures, from its cells' predictions alone (no model).

Per trained model and control task: the base model's score and the fine-tuned one's on the same
items, the drop (base minus fine-tuned: positive means it forgot) with a 95% paired-bootstrap
interval, and a paired test: exact McNemar where every item scores 0 or 1 (accuracy, exact
match, containment: the test for paired binary outcomes, as bench.decision uses for accuracy),
the paired bootstrap's p-value otherwise. p-values are Holm-corrected across every (trained
model, control task) comparison of the experiment, since each asks the same question: did this
model forget?
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict

from ..control import BASE_VARIANT
from ..decision import ALPHA
from ..metrics import get_metric
from ..predictions import ScoredPrediction
from ..stats import bootstrap, holm, mcnemar, p_phrase, paired_bootstrap

if TYPE_CHECKING:
    from .forgetting import ForgettingPlan


@dataclass(frozen=True)
class Cell:
    """One (arm, control task) cell as the runner wrote it."""

    arm: str
    task: str
    cached: bool
    cache_key: str
    predict_s: float
    train_s: float | None
    """Training seconds of the trained model (its own record, so also when it came from the cache)."""
    rows: Sequence[ScoredPrediction]


class Record(BaseModel):
    """Frozen, and exactly what forgetting.json holds (read back by `bench report`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class Score(Record):
    """A score with its 95% bootstrap interval."""

    value: float
    low: float
    high: float
    n: int


class Drop(Record):
    """One trained model against the base model on one control task."""

    cell: str
    variant: str
    trained_on: str
    """The task it was trained for ('all tasks' for a multi-task variant)."""
    control_task: str
    metric: str
    base: Score
    tuned: Score
    drop: float
    """base minus fine-tuned: positive when the fine-tune answers fewer control items right."""
    low: float
    high: float
    """The drop's 95% paired-bootstrap interval."""
    p_value: float
    test: str
    p_holm: float
    """p_value after Holm's correction across every comparison of the experiment."""
    verdict: str


class CellInfo(Record):
    arm: str
    task: str
    cached: bool
    cache_key: str
    predict_s: float
    train_s: float | None


class ForgettingResult(Record):
    """Everything forgetting.json holds and the report draws."""

    experiment: Literal["forgetting"] = "forgetting"
    provenance: dict[str, Any]
    control: dict[str, dict[str, Any]]
    """Control task -> {metric, items, description}."""
    drops: list[Drop]
    categories: dict[str, dict[str, dict[str, float]]]
    """Control task -> item category -> base or trained model (cell) -> mean primary metric."""
    skipped: list[str]
    """Fine-tune variants left out, each with why."""
    cells: list[CellInfo]


def forgetting_result(plan: ForgettingPlan, cells: Sequence[Cell], provenance: dict[str, Any], *,
                      n_boot: int = 1000) -> ForgettingResult:
    seed = plan.run.suite.spec.seed
    by = {(c.arm, c.task): c for c in cells}
    raw: list[dict[str, Any]] = []
    control, categories = {}, {}
    for name, task in plan.control.tasks.items():
        metric = task.spec.metrics[0]
        base = by[(BASE_VARIANT, name)].rows
        control[name] = {"metric": metric, "items": len(base), "description": task.spec.description}
        categories[name] = category_means([(BASE_VARIANT, base)] + [(m.cell, by[(m.cell, name)].rows)
                                                                     for m in plan.models], metric)
        for m in plan.models:
            raw.append({"cell": m.cell, "variant": m.variant, "control_task": name, "metric": metric,
                        "trained_on": "all tasks" if m.multi_task else m.trained_on,
                        **compare(base, by[(m.cell, name)].rows, metric, seed=seed, n_boot=n_boot)})
    adjusted = holm([r["p_value"] for r in raw]) if raw else []
    drops = [Drop(**r, p_holm=p, verdict=verdict(r, p)) for r, p in zip(raw, adjusted)]
    infos = [CellInfo(arm=c.arm, task=c.task, cached=c.cached, cache_key=c.cache_key, predict_s=c.predict_s,
                      train_s=c.train_s) for c in cells]
    return ForgettingResult(provenance=provenance, control=control, drops=drops, categories=categories,
                            skipped=list(plan.skipped), cells=infos)


def compare(base: Sequence[ScoredPrediction], tuned: Sequence[ScoredPrediction], metric: str, *, seed: int,
            n_boot: int) -> dict[str, Any]:
    """Scores, the drop with its paired interval and the paired test, on the items both answered."""
    mine = {r.id: r for r in tuned}
    pairs = [(b, mine[b.id]) for b in base if b.id in mine]
    refs = [b.references for b, _ in pairs]
    out_b, out_t = [b.output for b, _ in pairs], [t.output for _, t in pairs]
    m = get_metric(metric)
    diff = paired_bootstrap(m, out_b, out_t, refs, n_boot=n_boot, seed=seed)
    scores_b, scores_t = m.example_scores(out_b, refs), m.example_scores(out_t, refs)
    binary = scores_b is not None and all(np.isin(np.concatenate([scores_b, scores_t]), (0.0, 1.0)))
    p, test = (mcnemar(scores_b == 1, scores_t == 1), "McNemar (exact)") if binary else (diff.p_value, diff.test)

    def score(outputs: list[str]) -> Score:
        e = bootstrap(m, outputs, refs, n_boot=n_boot, seed=seed)
        return Score(value=e.value, low=e.low, high=e.high, n=e.n)

    return {"base": score(out_b), "tuned": score(out_t), "drop": diff.difference, "low": diff.low, "high": diff.high,
            "p_value": p, "test": test}


def category_means(cells: Sequence[tuple[str, Sequence[ScoredPrediction]]], metric: str) -> dict[str, dict[str, float]]:
    """Item category (the id's prefix, e.g. 'reading' of 'reading-012') -> cell -> mean per-item score."""
    out: dict[str, dict[str, list[float]]] = {}
    for name, rows in cells:
        for r in rows:
            if metric in r.scores:
                out.setdefault(category(r.id), {}).setdefault(name, []).append(r.scores[metric])
    return {cat: {name: float(np.mean(v)) for name, v in by.items()} for cat, by in out.items()}


def category(item_id: str) -> str:
    return item_id.rsplit("-", 1)[0]


def verdict(r: dict[str, Any], p_holm: float) -> str:
    what = (f"{r['cell']} scores {r['tuned'].value:.3f} against the base model's {r['base'].value:.3f} on "
            f"{r['control_task']} ({r['metric']}, {r['base'].n} items): drop {r['drop']:+.3f} "
            f"[{r['low']:+.3f}, {r['high']:+.3f}], {r['test']} {p_phrase(r['p_value'])}, {p_phrase(p_holm, 'Holm')}")
    if p_holm >= ALPHA:
        return f"{what}: no significant change."
    return f"{what}: {'it forgot' if r['drop'] > 0 else 'better than the base model'}."
