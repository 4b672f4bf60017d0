"""The prompt-sensitivity experiment's figures, from its cells' scores alone (no model).

Per task and arm variant: the primary metric under each wording (the suite's instruction, then
each paraphrase), and across them the mean, minimum, maximum and standard deviation. The spread
that the verdicts weigh is the range (maximum minus minimum): what choosing one wording over
another did to that arm on these test examples. Each comparison sets the best arm under the
suite's instruction (the arm a run's verdict names) against every other arm: the gap between
them under that instruction, against the spread of either arm.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:
    from ..runner import Plan


class Record(BaseModel):
    """Frozen, and exactly what prompt_sensitivity.json holds (read back by `bench report`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class CellScore(Record):
    """One (task, arm variant, wording) cell as the runner scored it."""

    task: str
    arm: str
    wording: int
    """0: the suite's instruction; i: the task's i-th paraphrase."""
    metrics: dict[str, dict[str, float]]
    """metric -> {value, low, high, n}: the runner's scores with 95% bootstrap CIs."""
    cached: bool
    """Whether the predictions came from the prediction cache."""
    cache_key: str
    predict_s: float


class WordingScore(Record):
    """An arm's primary metric under one wording, with its 95% bootstrap CI."""

    wording: int
    value: float
    low: float
    high: float


class ArmSpread(Record):
    """One arm variant on one task, across the wordings."""

    arm: str
    kind: str
    """prompt, rag or finetune."""
    scores: list[WordingScore]
    """In wording order; the first is under the suite's instruction."""
    mean: float
    minimum: float
    maximum: float
    sd: float
    """Sample standard deviation across the wordings."""

    @property
    def declared(self) -> WordingScore:
        return self.scores[0]

    @property
    def spread(self) -> float:
        """Maximum minus minimum across the wordings."""
        return self.maximum - self.minimum


class Comparison(Record):
    """The best arm under the suite's instruction against another arm."""

    best: str
    other: str
    gap: float
    """best's score minus other's, under the suite's instruction."""
    best_spread: float
    other_spread: float
    other_not_behind: int
    """Wordings under which `other` scores at least as high as `best`."""
    wordings: int
    within_spread: bool
    """The spread of either arm exceeds the gap: rewording alone moves an arm more than the arms differ."""
    verdict: str


class TaskSensitivity(Record):
    """One task: its wordings, every arm's spread, and the comparisons."""

    task: str
    metric: str
    """The task's primary (first) metric."""
    n: int
    """Test examples each cell scored."""
    wordings: list[str]
    arms: list[ArmSpread]
    best: str
    comparisons: list[Comparison]


class SensitivityResult(Record):
    """Everything prompt_sensitivity.json holds and the report draws."""

    experiment: Literal["prompt-sensitivity"] = "prompt-sensitivity"
    provenance: dict[str, Any]
    tasks: list[TaskSensitivity]
    cells: list[CellScore]


def sensitivity_result(run: Plan, tasks: Sequence[str], wordings: Mapping[str, Sequence[str]],
                       cells: Sequence[CellScore], provenance: dict[str, Any]) -> SensitivityResult:
    """The figures of every task from its cells (arms in the suite's declared order)."""
    declared_order = list(run.arms)
    out = []
    for task in tasks:
        metric = run.suite.tasks[task].spec.metrics[0]
        mine = [c for c in cells if c.task == task]
        arms = sorted({c.arm for c in mine}, key=declared_order.index)
        spreads = [arm_spread(a, run.arms[a].spec.arm, [c for c in mine if c.arm == a], metric) for a in arms]
        out.append(task_sensitivity(task, metric, list(wordings[task]), spreads,
                                    n=int(mine[0].metrics[metric]["n"]) if mine else 0))
    return SensitivityResult(provenance=provenance, tasks=out, cells=list(cells))


def arm_spread(arm: str, kind: str, cells: Sequence[CellScore], metric: str) -> ArmSpread:
    scores = [WordingScore(wording=c.wording, value=c.metrics[metric]["value"], low=c.metrics[metric]["low"],
                           high=c.metrics[metric]["high"]) for c in sorted(cells, key=lambda c: c.wording)]
    values = [s.value for s in scores]
    return ArmSpread(arm=arm, kind=kind, scores=scores, mean=statistics.fmean(values), minimum=min(values),
                     maximum=max(values), sd=statistics.stdev(values) if len(values) > 1 else 0.0)


def task_sensitivity(task: str, metric: str, wordings: list[str], arms: list[ArmSpread], *, n: int) -> TaskSensitivity:
    best = max(arms, key=lambda a: a.declared.value)  # the first of equals: the declared order decides ties
    comparisons = [compare(task, metric, best, a) for a in arms if a.arm != best.arm]
    return TaskSensitivity(task=task, metric=metric, n=n, wordings=wordings, arms=arms, best=best.arm,
                           comparisons=comparisons)


def compare(task: str, metric: str, best: ArmSpread, other: ArmSpread) -> Comparison:
    gap = best.declared.value - other.declared.value
    ahead = {s.wording: s.value for s in best.scores}
    not_behind = sum(s.value >= ahead[s.wording] for s in other.scores if s.wording in ahead)
    within = max(best.spread, other.spread) > gap
    return Comparison(best=best.arm, other=other.arm, gap=gap, best_spread=best.spread, other_spread=other.spread,
                      other_not_behind=not_behind, wordings=len(other.scores), within_spread=within,
                      verdict=verdict(task, metric, best, other, gap, not_behind, within))


def verdict(task: str, metric: str, best: ArmSpread, other: ArmSpread, gap: float, not_behind: int,
            within: bool) -> str:
    n = len(other.scores)
    spreads = f"{best.arm} {best.spread:.3f}, {other.arm} {other.spread:.3f}"
    lead = (f"{task}: {best.arm} leads {other.arm} by {gap:.3f} {metric} under the suite's instruction" if gap > 0
            else f"{task}: {best.arm} and {other.arm} tie on {metric} under the suite's instruction")
    order = f"{other.arm} scores at least as high under {not_behind} of {n} wordings"
    if not within:
        if gap == 0:
            return f"{lead}, and neither score moves across the {n} wordings."
        return f"{lead}, no less than either arm's spread across the {n} wordings ({spreads}); {order}."
    wide = [a.arm for a in (best, other) if a.spread > gap]
    whose = f"{wide[0]}'s spread" if len(wide) == 1 else "both arms' spreads"
    return (f"{lead}; {whose} across the {n} wordings ({spreads}) {'exceeds' if len(wide) == 1 else 'exceed'} that "
            f"gap of {gap:.3f}: rewording the instruction moves {'it' if len(wide) == 1 else 'them'} more than the "
            f"arms differ; {order}.")
