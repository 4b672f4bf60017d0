"""`bench experiment prompt-sensitivity SUITE`: does rewording the instruction move an arm more than
the gap between arms?

Every arm variant is scored on every task that lists `paraphrases:`, once under the suite's own
instruction and once under each paraphrase (a *wording*). Prompt and retrieval variants simply
build their prompts from the reworded task. A fine-tune is trained once, with the suite's
instruction, exactly as `bench run` trains it (the same trained-model cache entry), and is
*evaluated* under each wording (bench.experiments.borrowed_finetune): the question is how much an
arm's answers depend on the wording it meets at answer time, which is the situation of a deployed
model whose prompt a user or an integrator rewrites. Retraining per paraphrase would answer
another question (how much the training prompt's wording matters), mixed with training noise, at
one training per wording and variant.

Every prediction comes from the runner's cells (bench.runner.CellRunner): the suite's own
instruction gives the very cells `bench run` makes (served from the prediction cache when the run
was made with the same test examples), and each wording's cells are cached in turn.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from ..arms import Arm, ArmContext, run_order, suite_context
from ..errors import ConfigError
from ..progress import Display, open_display
from ..runner import CellRunner, ModelLoader, Plan, RunOptions, plan_run
from ..store import discarded_unless_a_cell_finished, new_run_dir, read_json, write_json
from ..suites import Suite, Task
from .borrowed_finetune import borrowed_arms, same_name_in
from .provenance import experiment_provenance
from .sensitivity_figures import CellScore, SensitivityResult, sensitivity_result

DEFAULT_TEST_LIMIT = 16
"""Test examples per task (a seeded subsample, as `--limit` draws it) unless `--limit` or `--full`
says otherwise. On the legal suite (4 tasks, 4 paraphrases each, so 5 wordings) the default run's
prediction cells cost about 9.3 s per test example summed over its 14 (variant, task) cells on the
2-core AVX2 CPU in fp32 (docs/performance.md, the cold default run: e.g. rag-examples-k3 1.9 s and
rag-k3 1.1 s per example; lease_qa's three cells estimated at 2.4 s together); 5 wordings x 16
examples x 9.3 s is about 12.5 minutes, plus model loading, with the run's fine-tunes cached
(training them, if the run was not made, adds about 11 minutes once). `--full` asks every test
example: about 55 minutes there beyond the run's own cells, meant for a GPU."""

RECORD_FILE = "prompt_sensitivity.json"
"""The experiment's figures; written last, so it marks a finished directory."""
DIR_PREFIX = "prompt-sensitivity-"


@dataclass(frozen=True)
class SensitivityPlan:
    """What the experiment will run, resolved before any model is loaded."""

    run: Plan
    """`bench run`'s plan of the suite (with the experiment's test limit): model, device, arms."""
    tasks: list[str]
    """The tasks asked: those run that list paraphrases."""
    arms: list[str]
    """Arm variants that run on at least one of them, in run order."""
    wordings: dict[str, tuple[str, ...]]
    """Task -> its instruction, then its paraphrases (wording 0 is the suite's instruction)."""
    test_limit: int | None
    """Test examples per task (None: every example the run uses)."""

    @property
    def n_wordings(self) -> int:
        return max(len(w) for w in self.wordings.values())


def sized(opts: RunOptions, full: bool) -> RunOptions:
    """The experiment's default test subsample unless `--limit` names one or `--full` asks for all."""
    if full and opts.limit is not None:
        raise ConfigError("--full asks for every test example and --limit for a subsample; give one of them")
    if full or opts.limit is not None:
        return opts
    return dataclasses.replace(opts, limit=DEFAULT_TEST_LIMIT)


def plan_sensitivity(name: str, opts: RunOptions) -> SensitivityPlan:
    """Load the suite and resolve tasks, arms and wordings (no model is loaded)."""
    run = plan_run(name, opts)
    listed = [t for t, task in run.suite.tasks.items() if task.spec.paraphrases]
    if not listed:
        raise ConfigError(f"suite '{run.suite.spec.name}': no task lists `paraphrases:`, so there is no other "
                          "wording to score (see README, 'Experiments')")
    asked = [t for t in run.task_names if t in listed]
    if opts.tasks and len(asked) < len(run.task_names):
        other = [t for t in run.task_names if t not in listed]
        raise ConfigError(f"task(s) {', '.join(other)} list no paraphrases; tasks with some: {', '.join(listed)}")
    arms = [a for a in run.arm_order if any(_applies(run.arms[a], t) for t in asked)]
    if not arms:
        raise ConfigError(f"no arm variant runs on the task(s) with paraphrases ({', '.join(asked)})")
    wordings = {t: (run.suite.tasks[t].spec.instruction, *run.suite.tasks[t].spec.paraphrases) for t in asked}
    return SensitivityPlan(run=run, tasks=asked, arms=arms, wordings=wordings, test_limit=opts.limit)


def _applies(arm: Arm, task: str) -> bool:
    return not arm.spec.tasks or task in arm.spec.tasks


def describe_plan(plan: SensitivityPlan) -> list[str]:
    """What a run would do, for `--dry-run`."""
    size = f"a seeded {plan.test_limit}" if plan.test_limit else "every"
    lines = [f"{len(plan.arms)} arm variants x {len(plan.tasks)} tasks, {size} test example(s) per task, under the "
             "suite's instruction and each paraphrase (fine-tunes trained once, with the suite's instruction)"]
    for task in plan.tasks:
        arms = [a for a in plan.arms if _applies(plan.run.arms[a], task)]
        lines.append(f"{task}: {len(plan.wordings[task])} wordings x {len(arms)} variants ({', '.join(arms)})")
    return lines


# ---- running ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Wording:
    """One set of cells: every asked task with enough paraphrases, worded its `index`-th way."""

    index: int
    """0: the suite's instruction; i: each task's i-th paraphrase."""
    suite: Suite
    arms: dict[str, Arm]
    ctx: ArmContext
    tasks: list[str]

    @property
    def folder(self) -> str:
        return f"wording-{self.index}"


def reworded(task: Task, instruction: str) -> Task:
    """The task with another instruction (its data, labels and everything else unchanged)."""
    return dataclasses.replace(task, spec=task.spec.model_copy(update={"instruction": instruction}))


def make_wordings(plan: SensitivityPlan, opts: RunOptions, loader: ModelLoader, display: Display) -> list[Wording]:
    """Wording 0 is the suite as loaded with the run's own arm objects; every other wording a copy
    of the suite with the asked tasks reworded, whose fine-tunes are borrowed from wording 0."""
    def context(suite: Suite) -> ArmContext:
        return suite_context(suite, loader, batch_size=plan.run.batch_size, retrain=opts.retrain,
                             progress=display.stage, log=display.log, backend=plan.run.backend)

    home_ctx = context(plan.run.suite)
    out = [Wording(0, plan.run.suite, plan.run.arms, home_ctx, plan.tasks)]
    for i in range(1, plan.n_wordings):
        tasks = [t for t in plan.tasks if len(plan.wordings[t]) > i]
        suite = dataclasses.replace(plan.run.suite, tasks={
            name: reworded(task, plan.wordings[name][i]) if name in tasks else task
            for name, task in plan.run.suite.tasks.items()})
        out.append(Wording(i, suite, borrowed_arms(plan.run.arms, home_ctx, same_name_in(home_ctx)),
                           context(suite), tasks))
    return out


def run_wording(plan: SensitivityPlan, opts: RunOptions, wording: Wording, display: Display,
                folder: Path) -> list[CellScore]:
    """The wording's cells through the runner's CellRunner; predictions land in `folder` as in a run."""
    arms = [a for a in plan.arms if any(_applies(wording.arms[a], t) for t in wording.tasks)]
    cell_plan = dataclasses.replace(plan.run, suite=wording.suite, arms=wording.arms,
                                    arm_order=run_order(arms, wording.arms), task_names=wording.tasks)
    cells = CellRunner(cell_plan, opts, wording.ctx, folder, display)
    for arm in cell_plan.arm_order:
        for task in wording.tasks:
            if _applies(wording.arms[arm], task):
                cells.run(arm, wording.suite.tasks[task])
    scores = cells.scores_in_declared_order()
    write_json(folder / "scores.json", {"suite": wording.suite.spec.name, "wording": wording.index, "tasks": scores})
    return [CellScore(task=c["task"], arm=c["arm"], wording=wording.index,
                      metrics=scores[c["task"]]["arms"][c["arm"]]["metrics"], cached=c["cached"],
                      cache_key=c["cache_key"], predict_s=c["predict_s"]) for c in cells.cells]


def run_prompt_sensitivity(name: str, opts: RunOptions, console: Console) -> tuple[Path, SensitivityResult]:
    """Run the experiment and write its directory under results/<suite>/; return it and its figures."""
    from .sensitivity_report import write_sensitivity_report

    started = time.time()
    plan = plan_sensitivity(name, opts)
    out = new_run_dir(opts.results, plan.run.suite.spec.name, prefix=DIR_PREFIX)
    with discarded_unless_a_cell_finished(out):
        with open_display(console) as display:  # rich bars on a terminal, timed lines in a log
            loader = ModelLoader(plan.run, opts, display.timed)
            cells = [c for w in make_wordings(plan, opts, loader, display)
                     for c in run_wording(plan, opts, w, display, out / w.folder)]
        provenance = _provenance(plan, opts, started, loader)
        result = sensitivity_result(plan.run, plan.tasks, plan.wordings, cells, provenance)
        write_sensitivity_report(out, result)
        write_json(out / RECORD_FILE, result.model_dump(mode="json"))  # last: the directory's end marker
    return out, result


def _provenance(plan: SensitivityPlan, opts: RunOptions, started: float, loader: ModelLoader) -> dict[str, Any]:
    return experiment_provenance(plan.run, opts, started, loader, test_limit=plan.test_limit)


def rebuild_report(folder: Path) -> SensitivityResult:
    """`bench report DIR` on this experiment's directory: its report files again, from the record file alone
    (no model); returns the figures."""
    from .sensitivity_report import write_sensitivity_report

    result = SensitivityResult.model_validate(read_json(folder / RECORD_FILE))
    write_sensitivity_report(folder, result)
    return result
