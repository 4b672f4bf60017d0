"""Groups of cells for experiments that run the arms several times (learning curve, seed spread):
each group is a variant of the suite (fewer train examples, another training seed) run through the
runner's own CellRunner, so every cell is keyed and cached as in `bench run`, and its predictions
land in a folder of the experiment's directory. What is kept of each cell (`CellRef`) and of each
task (`TaskInfo`) is enough to rebuild the report from those predictions without a model.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..arms import Arm, build_arms, run_order, suite_context
from ..errors import ConfigError
from ..metrics import get_metric
from ..predictions import ScoredPrediction
from ..progress import Display
from ..results import load_predictions
from ..runner import CellRunner, ModelLoader, Plan, RunOptions
from ..stats import Estimate, bootstrap
from ..store import write_json
from ..suites import Suite


@dataclass(frozen=True)
class TaskInfo:
    """What the report needs of a task besides its cells' predictions."""

    name: str
    kind: str
    metrics: tuple[str, ...]
    """The task's metrics; the first decides (as in a run's report)."""
    n: int
    """Test examples every cell of the task predicted."""
    floor_name: str
    """The no-skill baseline (majority class, most frequent answer, lead words)."""
    floor: dict[str, Estimate]
    """metric -> the floor's score."""

    @property
    def primary(self) -> str:
        return self.metrics[0]

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> TaskInfo:
        return cls(d["name"], d["kind"], tuple(d["metrics"]), d["n"], d["floor_name"],
                   {m: Estimate(**e) for m, e in d["floor"].items()})


@dataclass(frozen=True)
class CellRef:
    """One cell an experiment ran: which arm variant on which task, in which group, and how it was made."""

    arm: str
    task: str
    group: str
    """The suite variant it ran in, also the folder of the experiment directory holding its predictions."""
    cache_key: str
    cached: bool
    """Its predictions came from the prediction cache."""
    predict_s: float
    """Seconds the cell took when it was computed (training included), as the cache recorded them."""
    train_s: float | None
    """Training seconds of the model it used (a fine-tune, or the one a retrieval variant builds on)."""
    train_examples: int | None
    """Examples that model was trained on (after the variant's own `train_limit`)."""

    def predictions(self, folder: Path) -> list[ScoredPrediction]:
        return load_predictions(folder / self.group, self.arm, self.task)

    @classmethod
    def from_record(cls, group: str, record: dict[str, Any]) -> CellRef:
        """From the runner's cell record (run.json's shape)."""
        costs = record.get("costs") or {}  # flat: Costs.to_record
        train_s, examples = costs.get("train_wall_s"), costs.get("train_examples")
        return cls(record["arm"], record["task"], group, record["cache_key"], bool(record["cached"]),
                   float(record["predict_s"]), float(train_s) if train_s is not None else None,
                   int(examples) if examples is not None else None)


def applies(arm: Arm, task: str) -> bool:
    return not arm.spec.tasks or task in arm.spec.tasks


def run_group(group: str, base: Plan, opts: RunOptions, suite: Suite, specs: Sequence[Any],
              cells: Sequence[tuple[str, str]], loader: ModelLoader, display: Display,
              folder: Path) -> tuple[list[CellRef], dict[str, dict[str, Any]]]:
    """Run `cells` ((arm variant, task) pairs) of `suite` with arms built from `specs` (fresh objects:
    an arm keeps its training data per task name, so one object never serves two suite variants),
    predictions in folder/group. Returns the cells and the runner's per-task scores (with floors)."""
    if not cells:
        return [], {}
    arms = build_arms(specs)
    names = list(dict.fromkeys(arm for arm, _ in cells))
    tasks = list(dict.fromkeys(task for _, task in cells))
    plan = dataclasses.replace(base, suite=suite, arms=arms, arm_order=run_order(names, arms), task_names=tasks)
    ctx = suite_context(suite, loader, batch_size=base.batch_size, retrain=opts.retrain, progress=display.stage,
                        log=display.log, backend=base.backend)  # as `bench run` does: the same cells
    runner = CellRunner(plan, opts, ctx, folder / group, display)
    wanted = set(cells)
    for arm in plan.arm_order:
        for task in tasks:
            if (arm, task) in wanted:
                runner.run(arm, suite.tasks[task])
    scores = runner.scores_in_declared_order()
    write_json(folder / group / "scores.json", {"suite": suite.spec.name, "group": group, "tasks": scores})
    return [CellRef.from_record(group, c) for c in runner.cells], scores


def task_info(name: str, scores: dict[str, Any]) -> TaskInfo:
    """A task's record from the runner's scores of it (its floor is computed there)."""
    floor = scores["floor"]
    return TaskInfo(name, scores["kind"], tuple(scores["metrics"]), scores["n"], floor["name"],
                    {m: Estimate(**e) for m, e in floor["metrics"].items()})


def estimate(metric: str, rows: Sequence[ScoredPrediction], *, seed: int, n_boot: int) -> Estimate:
    """A cell's score on `metric` with its 95% bootstrap interval, from its stored predictions."""
    return bootstrap(get_metric(metric), [r.output for r in rows], [list(r.references) for r in rows],
                     n_boot=n_boot, seed=seed)


def spread(values: Sequence[float]) -> tuple[float, float, float, float]:
    """(mean, sample standard deviation, min, max); the sd of one value is nan."""
    n = len(values)
    mean = sum(values) / n
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else float("nan")
    return mean, sd, min(values), max(values)


def parse_int_list(option: str, text: str, *, minimum: int) -> tuple[int, ...]:
    """'16,32,64' -> (16, 32, 64), each at least `minimum`, duplicates dropped; a one-line error otherwise."""
    out: list[int] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        if not part.isdigit() or int(part) < minimum:
            raise ConfigError(f"{option}: expected comma-separated whole numbers of at least {minimum}, got '{part}'")
        if int(part) not in out:
            out.append(int(part))
    if not out:
        raise ConfigError(f"{option}: expected comma-separated whole numbers of at least {minimum}, got '{text}'")
    return tuple(out)
