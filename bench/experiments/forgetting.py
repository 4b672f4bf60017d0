"""`bench experiment forgetting SUITE`: what did fine-tuning on the suite's tasks cost elsewhere?

The project's general control set (bench/control: knowledge, common-sense and reading questions
scored by label likelihood, short answers scored by exact match) is answered by the suite's base
model under the shared template, and by every trained model of the suite's fine-tune variants:
one per (variant, task) for a per-task variant, one for a multi-task variant. Each trained model
is the one `bench run` trains (bench.experiments.borrowed_finetune: the same trained-model key),
so it is loaded from the cache when the run was made and trained as the run would otherwise.
Method `head` variants are left out: a classifier on a frozen base leaves the language model as
it was, so there is nothing it could forget. A variant's `scoring` is set to loglik here, so the
base model and every fine-tune read the multiple-choice items the same way.

Every prediction comes from the runner's cells (bench.runner.CellRunner), cached like any cell.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from ..arms import Arm, ArmContext, suite_context
from ..control import BASE_VARIANT, load_control
from ..errors import ConfigError
from ..progress import open_display
from ..results import load_predictions
from ..runner import CellRunner, ModelLoader, Plan, RunOptions, plan_run
from ..store import discarded_unless_a_cell_finished, new_run_dir, read_json, write_json
from ..suites import Suite
from .borrowed_finetune import BorrowedFinetune
from .forgetting_figures import Cell, ForgettingResult, forgetting_result
from .provenance import experiment_provenance

RECORD_FILE = "forgetting.json"
"""The experiment's figures; written last, so it marks a finished directory."""
DIR_PREFIX = "forgetting-"


@dataclass(frozen=True)
class TrainedModel:
    """One model the suite's fine-tunes train: a variant, for one task or (multi_task) for all."""

    variant: str
    trained_on: str
    """The task it was trained for (a multi-task variant: the first of its tasks; one model serves all)."""
    multi_task: bool

    @property
    def cell(self) -> str:
        """Its name in the experiment's cells (a folder name under predictions/)."""
        return self.variant if self.multi_task else f"{self.variant}.{self.trained_on}"


@dataclass(frozen=True)
class ForgettingPlan:
    """What the experiment will run, resolved before any model is loaded."""

    run: Plan
    """`bench run`'s plan of the suite: model, device, dtype, its fine-tunes."""
    control: Suite
    """The control set (its seed set to the suite's), capped by `--control-limit`."""
    models: list[TrainedModel]
    skipped: list[str]
    """Fine-tune variants left out, each with why."""
    control_limit: int | None


def plan_forgetting(name: str, opts: RunOptions, *, control_limit: int | None = None) -> ForgettingPlan:
    """Load the suite and the control set; list the trained models to score (no model is loaded)."""
    if control_limit is not None and control_limit < 1:
        raise ConfigError(f"--control-limit must be at least 1, got {control_limit}")
    run = plan_run(name, opts)
    models, skipped = [], []
    for variant in run.arm_order:
        spec = run.arms[variant].spec
        if spec.arm != "finetune":
            continue
        if spec.method == "head":
            skipped.append(f"{variant}: method head trains a classifier on a frozen base; the language model is "
                           "unchanged, so there is nothing to forget")
            continue
        tasks = [t for t in run.task_names if not spec.tasks or t in spec.tasks]
        if spec.scope == "multi_task":
            models.append(TrainedModel(variant, tasks[0], multi_task=True))
        else:
            models += [TrainedModel(variant, t, multi_task=False) for t in tasks]
    if not models:
        profile = f" (profile {run.suite.profile})" if run.suite.profile else ""
        why = f" ({'; '.join(skipped)})" if skipped else ""
        raise ConfigError(f"suite '{run.suite.spec.name}'{profile} has no fine-tune variant that trains a language "
                          f"model on the tasks run: nothing could forget{why}")
    control = load_control(control_limit)
    control = dataclasses.replace(control, spec=control.spec.model_copy(update={"seed": run.suite.spec.seed}))
    return ForgettingPlan(run=run, control=control, models=models, skipped=skipped, control_limit=control_limit)


def describe_plan(plan: ForgettingPlan) -> list[str]:
    """What a run would do, for `--dry-run`."""
    sizes = ", ".join(f"{t.name} {len(t.split('test'))} items" for t in plan.control.tasks.values())
    lines = [f"control set: {sizes}", f"base model: {plan.run.model_spec}"]
    lines += [f"  {m.cell}: {m.variant} as trained for {'every task (multi_task)' if m.multi_task else m.trained_on}"
              for m in plan.models]
    lines += [f"  left out: {s}" for s in plan.skipped]
    return lines


def control_arms(plan: ForgettingPlan, home_ctx: ArmContext) -> dict[str, Arm]:
    """The base model's prompt arm (the control suite's own variant) and one borrowed fine-tune per
    trained model, each answering with the model the suite's run trains."""
    from ..arms.prompt import PromptArm

    base_spec = next(a for a in plan.control.spec.arms if a.name == BASE_VARIANT)
    arms: dict[str, Arm] = {BASE_VARIANT: PromptArm(base_spec)}
    for m in plan.models:
        home = plan.run.arms[m.variant]
        task = home_ctx.tasks[m.trained_on]
        spec = home.spec.model_copy(update={"name": m.cell, "scoring": "loglik"})
        arms[m.cell] = BorrowedFinetune(home, home_ctx, lambda _asked, task=task: task, spec=spec)
    return arms


def run_cells(plan: ForgettingPlan, opts: RunOptions, folder: Path, console: Console) -> tuple[list[Cell], ModelLoader]:
    """Every control task under the base model, then under each trained model."""
    with open_display(console) as display:  # rich bars on a terminal, timed lines in a log
        loader = ModelLoader(plan.run, opts, display.timed)

        def context(suite: Suite) -> ArmContext:
            return suite_context(suite, loader, batch_size=plan.run.batch_size, retrain=opts.retrain,
                                 progress=display.stage, log=display.log, backend=plan.run.backend)

        arms = control_arms(plan, context(plan.run.suite))
        cell_plan = dataclasses.replace(plan.run, suite=plan.control, arms=arms, arm_order=list(arms),
                                        task_names=list(plan.control.tasks))
        cells = CellRunner(cell_plan, opts, context(plan.control), folder, display)
        for arm in arms:
            for task in plan.control.tasks.values():
                cells.run(arm, task)
        write_json(folder / "scores.json", {"suite": plan.control.spec.name, "tasks": cells.scores_in_declared_order()})
    out = [Cell(arm=c["arm"], task=c["task"], cached=c["cached"], cache_key=c["cache_key"], predict_s=c["predict_s"],
                train_s=c["costs"].get("train_wall_s"), rows=load_predictions(folder, c["arm"], c["task"]))
           for c in cells.cells]
    return out, loader


def run_forgetting(name: str, opts: RunOptions, console: Console, *,
                   control_limit: int | None = None) -> tuple[Path, ForgettingResult]:
    """Run the experiment and write its directory under results/<suite>/; return it and its figures."""
    from .forgetting_report import write_forgetting_report

    started = time.time()
    plan = plan_forgetting(name, opts, control_limit=control_limit)
    out = new_run_dir(opts.results, plan.run.suite.spec.name, prefix=DIR_PREFIX)
    with discarded_unless_a_cell_finished(out):
        cells, loader = run_cells(plan, opts, out, console)
        result = forgetting_result(plan, cells, _provenance(plan, opts, started, loader), n_boot=opts.n_boot)
        write_forgetting_report(out, result)
        write_json(out / RECORD_FILE, result.model_dump(mode="json"))  # last: the directory's end marker
    return out, result


def _provenance(plan: ForgettingPlan, opts: RunOptions, started: float, loader: ModelLoader) -> dict[str, Any]:
    return experiment_provenance(plan.run, opts, started, loader, control_limit=plan.control_limit)


def rebuild_report(folder: Path) -> ForgettingResult:
    """`bench report DIR` on this experiment's directory: its report files again, from the record file alone
    (no model); returns the figures."""
    from .forgetting_report import write_forgetting_report

    result = ForgettingResult.model_validate(read_json(folder / RECORD_FILE))
    write_forgetting_report(folder, result)
    return result
