"""The sweep's figures, typed: every trial's validation scores, the choice made from them alone, and
the chosen trial's test scores. Built from the runner's cell records and scores (no torch), written
to sweep.json and read back from it, so the report rebuilds without a model.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from ..stats import Estimate

RECORD_FILE = "sweep.json"
"""A sweep directory's figures; written last, so its presence marks the directory finished."""
LOSS = "loss"
"""The sweep metric that is the validation loss (lower is better); every other metric is higher-better."""


@dataclass(frozen=True)
class TrialInfo:
    """One combination of the searched settings."""

    variant: str
    number: int
    """1-based, in the order the trials run (grid order; a random search keeps its draws in grid order)."""
    name: str
    """The variant name its cells and prediction files carry: <variant>-trial-<number>."""
    settings: Mapping[str, Any]
    """The searched settings and their values in this trial."""
    declared: bool
    """Its settings are the variant's own: the model `bench run` trains (the same cache entry)."""


@dataclass(frozen=True)
class TrialScore:
    """One trial on one task's validation examples (never its test split)."""

    trial: str
    task: str
    loss: float | None
    """Validation loss of the weights training kept (at the selected checkpoint; the last evaluation
    when none was selected); None when training evaluated no loss."""
    metrics: Mapping[str, Estimate]
    """Every metric of the task on the whole validation split, with 95% bootstrap CIs."""
    best_step: int | None
    steps: int | None
    stopped_early: bool | None
    train_s: float | None
    """Seconds its training took (a cached model reports the training that made it)."""
    cached: bool
    """Its validation predictions came from the prediction cache."""
    cache_key: str | None
    error: str | None = None
    """Why the trial has no score (its training failed, e.g. the loss became NaN); None when it ran."""

    def value(self, metric: str) -> float | None:
        """The trial's score by the sweep's metric; None when it has none."""
        if self.error is not None:
            return None
        value = self.loss if metric == LOSS else (self.metrics[metric].value if metric in self.metrics else None)
        return None if value is None or math.isnan(value) else value


@dataclass(frozen=True)
class Choice:
    """The trial chosen for one trained model (one task, or every task of a multi_task variant), and
    only its scores on test."""

    variant: str
    tasks: tuple[str, ...]
    metric: str
    trial: str | None
    """None when no trial has a validation score (every one failed)."""
    validation_value: float | None
    """The chosen trial's score by the metric (mean over `tasks`): the best of the trials, so an
    optimistic estimate; its test scores are the unbiased one."""
    test: Mapping[str, Mapping[str, Estimate]]
    """task -> every metric of the chosen trial on the test split, with 95% CIs."""
    test_floor: Mapping[str, Mapping[str, Estimate]]
    """task -> the floor (random or majority guess) on the test split."""
    test_n: Mapping[str, int]
    test_cached: Mapping[str, bool]


@dataclass(frozen=True)
class VariantResult:
    """One fine-tune variant's search."""

    variant: str
    search: str
    metric: str
    space: Mapping[str, Sequence[Any]]
    tasks: tuple[str, ...]
    validation_n: Mapping[str, int]
    """task -> the validation examples every trial is scored on."""
    trials: tuple[TrialInfo, ...]
    scores: tuple[TrialScore, ...]
    choices: tuple[Choice, ...]

    def score(self, trial: str, task: str) -> TrialScore | None:
        return next((s for s in self.scores if s.trial == trial and s.task == task), None)

    def chosen_for(self, task: str) -> Choice | None:
        return next((c for c in self.choices if task in c.tasks), None)


@dataclass(frozen=True)
class SweepResult:
    """Everything sweep.json holds and the report draws."""

    provenance: Mapping[str, Any]
    variants: tuple[VariantResult, ...]
    experiment: str = "sweep"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def value(v: Any) -> str:
    """A setting's value as a person writes it in suite.yaml (0.0003 and 2, not 3e-04 and 2.0)."""
    return f"{v:g}" if isinstance(v, float) else str(v)


def describe(settings: Mapping[str, Any]) -> str:
    """'rank=8, learning_rate=0.001'."""
    return ", ".join(f"{k}={value(v)}" for k, v in settings.items())


def choose(trials: Sequence[TrialInfo], scores: Sequence[TrialScore], tasks: Sequence[str],
           metric: str) -> tuple[str | None, float | None]:
    """The best trial on `tasks` by `metric` (mean over the tasks; loss lowest, any other metric
    highest) and its value. Only trials scored on every task compete. A metric's tie (common: a few
    dozen validation examples give few distinct accuracies) goes to the lower validation loss, then
    to the earlier trial, so the choice rests on validation scores and the declared order alone."""
    best: tuple[str | None, float | None] = (None, None)
    best_rank: tuple[float, float] | None = None
    for trial in trials:
        mine = [s for s in scores if s.trial == trial.name and s.task in tasks]
        values = [s.value(metric) for s in mine]
        if len(values) != len(tasks) or any(v is None for v in values):
            continue
        mean = sum(values) / len(values)
        losses = [s.loss for s in mine]
        loss = sum(losses) / len(losses) if all(x is not None for x in losses) else math.inf
        rank = (mean, mean) if metric == LOSS else (-mean, loss)
        if best_rank is None or rank < best_rank:
            best, best_rank = (trial.name, mean), rank
    return best


def kept_loss(costs: Mapping[str, Any]) -> float | None:
    """The validation loss of the weights a training kept, from its log: at `best_step` when a
    checkpoint was selected, else the last evaluation."""
    evaluations = [h for h in costs.get("training_log", []) if h.get("eval_loss") is not None]
    if not evaluations:
        return None
    best = costs.get("best_step")
    at_best = [h for h in evaluations if best is not None and h.get("step") == best]
    return float((at_best or evaluations)[-1]["eval_loss"])


def estimates(metrics: Mapping[str, Mapping[str, Any]]) -> dict[str, Estimate]:
    """scores.json's {metric: {value, low, high, n}} as Estimates."""
    return {name: Estimate(e["value"], e["low"], e["high"], e["n"]) for name, e in metrics.items()}


# ---- sweep.json back into typed objects (`bench report` rebuilds the report from it) ----

def result_from_json(data: Mapping[str, Any]) -> SweepResult:
    return SweepResult(provenance=data["provenance"], variants=tuple(_variant(v) for v in data["variants"]),
                       experiment=data.get("experiment", "sweep"))


def _variant(v: Mapping[str, Any]) -> VariantResult:
    return VariantResult(
        variant=v["variant"], search=v["search"], metric=v["metric"], space=v["space"], tasks=tuple(v["tasks"]),
        validation_n=v["validation_n"], trials=tuple(TrialInfo(**t) for t in v["trials"]),
        scores=tuple(TrialScore(**{**s, "metrics": estimates(s["metrics"])}) for s in v["scores"]),
        choices=tuple(_choice(c) for c in v["choices"]))


def _choice(c: Mapping[str, Any]) -> Choice:
    return Choice(**{**c, "tasks": tuple(c["tasks"]),
                     "test": {t: estimates(m) for t, m in c["test"].items()},
                     "test_floor": {t: estimates(m) for t, m in c["test_floor"].items()}})
