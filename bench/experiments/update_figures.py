"""The knowledge-update experiment's figures, from its cells' predictions alone.

Per arm variant and state: the share of changed questions whose output contains an answer from
after the update (new) and the share that contains one from before it (old), by the project's
containment metric, with bootstrap CIs; for retrieval, the share whose retrieved documents hold
the question's document from after the update; and what catching up cost.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..metrics import containment
from ..predictions import Prediction
from ..stats import Estimate, bootstrap_mean
from .reindex import ReindexCost
from .worlds import ChangedQuestion

if TYPE_CHECKING:
    from .knowledge_update import CellOutput, Condition, Outputs, UpdatePlan


@dataclass(frozen=True)
class QuestionOutcome:
    """One changed question as one arm variant answered it in one state."""

    id: str
    split: str
    output: str
    new: bool
    """The output contains an answer from after the update."""
    old: bool
    """The output contains an answer from before the update."""
    retrieved: tuple[str, ...] = ()
    """Retrieved document ids, best first (retrieval variants)."""
    update_retrieved: bool | None = None
    """Retrieval: the question's document from after the update (any update document when it names
    none) was among them; None for variants that do not retrieve documents."""


@dataclass(frozen=True)
class Shares:
    """Containment shares on one set of changed questions, with 95% bootstrap CIs."""

    n: int
    new: Estimate
    old: Estimate
    update_retrieved: Estimate | None


@dataclass(frozen=True)
class CatchUp:
    """What bringing a variant up to date took, in seconds of this machine."""

    reindex_s: float | None = None
    """A full re-index of the updated corpus (re-indexed states)."""
    retrain_s: float | None = None
    """Training on the updated data (retrained states)."""
    first_training_s: float | None = None
    """The training before the update: what retraining a stale model would take."""

    @property
    def total_s(self) -> float:
        return (self.reindex_s or 0.0) + (self.retrain_s or 0.0)


@dataclass(frozen=True)
class ConditionResult:
    """One (arm variant, state, task): its shares on all changed questions and on those outside
    the train split, what catching up cost, and each question's outcome."""

    task: str
    arm: str
    arm_kind: str
    state: str
    world: str
    source: str
    catch_up_steps: tuple[str, ...]
    stale: bool
    """A fine-tune trained before the update answered."""
    all: Shares
    unseen: Shares
    """Only the changed questions outside the train split (no fine-tune trained on them)."""
    catch_up: CatchUp
    cached: bool
    """Whether its cell's predictions came from the cache."""
    cache_key: str
    questions: tuple[QuestionOutcome, ...]


@dataclass(frozen=True)
class ExperimentResult:
    """Everything knowledge_update.json holds and the report draws."""

    provenance: dict[str, Any]
    questions: dict[str, tuple[ChangedQuestion, ...]]
    conditions: tuple[ConditionResult, ...]
    reindex: dict[str, ReindexCost]
    experiment: str = "knowledge-update"


def experiment_result(plan: UpdatePlan, outputs: Outputs, reindex: dict[str, ReindexCost],
                      provenance: dict[str, Any], *, n_boot: int = 1000) -> ExperimentResult:
    seed = plan.run.suite.spec.seed
    results = tuple(condition_result(plan, c, task, outputs, reindex, n_boot=n_boot, seed=seed)
                    for task in plan.tasks for c in plan.conditions if (c.arm, task) in outputs[c.source])
    return ExperimentResult(provenance=provenance, questions=plan.worlds.questions, conditions=results,
                            reindex=reindex)


def condition_result(plan: UpdatePlan, c: Condition, task: str, outputs: Outputs, reindex: dict[str, ReindexCost],
                     *, n_boot: int, seed: int) -> ConditionResult:
    cell = outputs[c.source][(c.arm, task)]
    questions = plan.worlds.questions[task]
    outcomes = outcomes_of(questions, cell.predictions, plan.worlds.update_documents)
    unseen = [o for o in outcomes if o.split != "train"]
    return ConditionResult(
        task=task, arm=c.arm, arm_kind=plan.run.arms[c.arm].spec.arm, state=c.state, world=c.world, source=c.source,
        catch_up_steps=c.catch_up, stale=c.stale, all=shares(outcomes, n_boot=n_boot, seed=seed),
        unseen=shares(unseen, n_boot=n_boot, seed=seed), catch_up=catch_up(c, task, outputs, reindex),
        cached=bool(cell.record["cached"]), cache_key=cell.record["cache_key"], questions=tuple(outcomes))


def outcomes_of(questions: Sequence[ChangedQuestion], predictions: Sequence[Prediction],
                update_documents: frozenset[str]) -> list[QuestionOutcome]:
    """Each question's outcome, in the questions' order (predictions are matched by id)."""
    by_id = {p.id: p for p in predictions}
    out = []
    for q in questions:
        p = by_id[q.id]
        docs = tuple(p.retrieval.documents) if p.retrieval else ()
        found = None
        if docs:
            found = q.new_gold in docs if q.new_gold else any(d in update_documents for d in docs)
        out.append(QuestionOutcome(id=q.id, split=q.split, output=p.output,
                                   new=bool(containment(p.output, q.new_references)),
                                   old=bool(containment(p.output, q.old_references)), retrieved=docs,
                                   update_retrieved=found))
    return out


def shares(outcomes: Sequence[QuestionOutcome], *, n_boot: int, seed: int) -> Shares:
    def share(values: list[bool]) -> Estimate:
        return bootstrap_mean([float(v) for v in values], n_boot=n_boot, seed=seed)

    found = [o.update_retrieved for o in outcomes]
    retrieved = share([bool(f) for f in found]) if found and all(f is not None for f in found) else None
    return Shares(n=len(outcomes), new=share([o.new for o in outcomes]), old=share([o.old for o in outcomes]),
                  update_retrieved=retrieved)


def catch_up(c: Condition, task: str, outputs: Outputs, reindex: dict[str, ReindexCost]) -> CatchUp:
    """Re-index seconds (measured apart, see bench.experiments.reindex) and training seconds (the
    trained model's own record, so a cached model reports the training that made it)."""
    if c.state == "before":
        return CatchUp()
    first = _train_s(outputs["before"].get((c.arm, task)))
    return CatchUp(reindex_s=reindex[c.arm].seconds if "re-index" in c.catch_up and c.arm in reindex else None,
                   retrain_s=_train_s(outputs["after"].get((c.arm, task))) if "retraining" in c.catch_up else None,
                   first_training_s=first)


def _train_s(cell: CellOutput | None) -> float | None:
    value = cell.record.get("costs", {}).get("train_wall_s") if cell else None
    return float(value) if value is not None else None
