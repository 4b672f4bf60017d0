"""`bench experiment learning-curve SUITE`: how each arm's score grows with the train data it may use.

Every arm variant that uses train data (k-shot demonstrations, retrieved examples, fine-tunes,
retrieval on a fine-tune) runs at nested, seeded train sizes: per task, one seeded order of its
train split, and size n takes the first n of it, so each smaller set is a subset of every larger
one. Validation and test are never cut: every size is scored on the same test examples, which is
what makes a paired test at each size possible. The full train split always runs too: those are
the cells of `bench run` itself (same keys, so a suite already run costs nothing there), and the
variants that use no train data (zero-shot, retrieval over the corpus) run there only: flat lines.

Each size is an in-memory variant of the suite run through the runner's cells (bench.experiments.cells),
so each cell is cached as in a run: a rerun recomputes nothing.
"""

from __future__ import annotations

import dataclasses
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from ..data import Example
from ..errors import ConfigError
from ..progress import Display, open_display
from ..runner import ModelLoader, Plan, RunOptions, plan_run
from ..store import discarded_unless_a_cell_finished, new_run_dir, write_json
from ..suites import Suite, Task
from .cells import CellRef, TaskInfo, applies, parse_int_list, run_group, task_info
from .curve_figures import CurveRecord, CurveResult, Skipped, curve_result
from .provenance import experiment_provenance, finished_record, recorded_n_boot

DEFAULT_SIZES = "32,all"
"""Sized for the legal suite on a 2-core CPU (see README, 'Experiments'); the full curve is
`--sizes 16,32,64,128,all`."""
ALL = "all"
RECORD = "learning_curve.json"
PREFIX = "learning-curve-"


def uses_train_data(spec: Any) -> bool:
    """Whether a variant's predictions depend on the train split: demonstrations, retrieved train
    examples, a fine-tune, or retrieval on a fine-tune."""
    if spec.arm == "prompt":
        return spec.shots > 0
    if spec.arm == "rag":
        return spec.mode == "examples" or bool(spec.finetuned)
    return True


def min_train(spec: Any) -> int:
    """The fewest train examples a variant can run with: its shots, its k retrieved examples, or two
    (a fine-tune holds some out for validation when the task has no validation split)."""
    if spec.arm == "prompt":
        return spec.shots
    if spec.arm == "rag" and spec.mode == "examples":
        return spec.k
    return 2


def parse_sizes(text: str) -> tuple[int, ...]:
    """'16,32,all' -> (16, 32): the sizes below the full train split, ascending ('all' always runs)."""
    parts = [p.strip() for p in text.split(",") if p.strip()]
    numbers = [p for p in parts if p.lower() != ALL]
    if not numbers:
        raise ConfigError(f"--sizes: expected train sizes below the full train split (e.g. 16,32,all), got '{text}'")
    return tuple(sorted(parse_int_list("--sizes", ",".join(numbers), minimum=1)))


def nested_train(task: Task, size: int, seed: int) -> list[Example]:
    """The first `size` train examples of one seeded order of the task's train split (id order),
    so a smaller size is always a subset of a larger one."""
    order = sorted(task.split("train"), key=lambda e: e.id)
    random.Random(f"{seed}:{task.name}:learning-curve").shuffle(order)
    return sorted(order[:size], key=lambda e: e.id)


def at_size(suite: Suite, size: int) -> Suite:
    """The suite with every task's train split cut to its first `size` examples (nested_train);
    tasks with no more than that keep theirs. Validation and test are untouched."""
    seed = suite.spec.seed
    tasks = {name: dataclasses.replace(t, examples={**t.examples, "train": nested_train(t, size, seed)})
             if len(t.split("train")) > size else t for name, t in suite.tasks.items()}
    return dataclasses.replace(suite, tasks=tasks)


@dataclass(frozen=True)
class CurvePlan:
    """What the experiment will run, resolved before any model is loaded."""

    run: Plan
    sizes: tuple[int, ...]
    """The sizes asked below the full train split, ascending."""
    tasks: list[str]
    arms: list[str]
    """Every variant compared, in run order."""
    learners: tuple[str, ...]
    """The variants that use train data (run at every size)."""
    train_n: dict[str, int]
    """Task -> its full train split's size."""
    groups: dict[str, list[tuple[str, str]]]
    """'size-<n>' / 'size-all' -> its (arm variant, task) cells."""
    skipped: tuple[Skipped, ...]
    """Cells not run at a size, and why."""


def plan_curve(name: str, opts: RunOptions, sizes: tuple[int, ...]) -> CurvePlan:
    """Load the suite and resolve sizes, arms and cells (no model is loaded)."""
    run = plan_run(name, opts)
    train_n = {t: len(run.suite.tasks[t].split("train")) for t in run.task_names}
    learning = [a for a in run.arm_order if uses_train_data(run.arms[a].spec)]
    # a task no variant learns on would be flat lines only: the run's report has those
    tasks = [t for t in run.task_names if train_n[t] > 0 and any(applies(run.arms[a], t) for a in learning)]
    if opts.tasks and len(tasks) < len(run.task_names):
        flat = ", ".join(t for t in run.task_names if t not in tasks)
        raise ConfigError(f"--tasks: no arm variant run uses train data on {flat} (k-shot prompts, rag in examples "
                          "mode, fine-tunes, rag on a fine-tune)")
    arms = [a for a in run.arm_order if any(applies(run.arms[a], t) for t in tasks)]
    learners = tuple(a for a in arms if a in learning)
    if not tasks:
        raise ConfigError(f"suite '{run.suite.spec.name}': no arm variant run here uses train data (k-shot prompts, "
                          "rag in examples mode, fine-tunes, rag on a fine-tune), so there is no learning curve")
    if not any(s < train_n[t] for s in sizes for t in tasks):
        raise ConfigError(f"--sizes {','.join(map(str, sizes))}: no size is below a task's whole train split "
                          f"({', '.join(f'{t} {train_n[t]}' for t in tasks)}); give smaller ones")
    groups: dict[str, list[tuple[str, str]]] = {}
    skipped: list[Skipped] = []
    for size in sizes:
        cells = [(a, t) for a in learners for t in tasks if applies(run.arms[a], t) and size < train_n[t]]
        short = [(a, t) for a, t in cells if size < min_train(run.arms[a].spec)]
        skipped += [Skipped(a, t, size, f"needs at least {min_train(run.arms[a].spec)} train examples")
                    for a, t in short]
        groups[f"size-{size}"] = [c for c in cells if c not in short]
    groups[f"size-{ALL}"] = [(a, t) for a in arms for t in tasks if applies(run.arms[a], t)]
    return CurvePlan(run, sizes, tasks, arms, learners, train_n, groups, tuple(skipped))


def describe_plan(plan: CurvePlan) -> list[str]:
    """What a run would do, for `--dry-run`."""
    lines = [f"{t}: {plan.train_n[t]} train examples; sizes "
             f"{', '.join(str(s) for s in plan.sizes if s < plan.train_n[t])}, all" for t in plan.tasks]
    flat = [a for a in plan.arms if a not in plan.learners]
    lines.append(f"at every size: {', '.join(plan.learners)}")
    lines.append(f"once, with all train data (flat lines): {', '.join(flat) or 'none'}")
    lines += [f"{name}: {len(cells)} cells" for name, cells in plan.groups.items()]
    lines += [f"not run: {s.arm} · {s.task} at {s.size} ({s.why})" for s in plan.skipped]
    return lines


def run_learning_curve(name: str, opts: RunOptions, console: Console,
                       sizes: tuple[int, ...]) -> tuple[Path, CurveResult]:
    """Run every group of cells into a new directory results/<suite>/learning-curve-...; write its
    report and record; return the directory and the figures."""
    started = time.time()
    plan = plan_curve(name, opts, sizes)
    out = new_run_dir(opts.results, plan.run.suite.spec.name, prefix=PREFIX)
    with discarded_unless_a_cell_finished(out):
        with open_display(console) as display:  # rich bars on a terminal, timed lines in a log
            loader = ModelLoader(plan.run, opts, display.timed)
            cells, infos = _run_groups(plan, opts, loader, display, out)
        record = CurveRecord(_provenance(plan, opts, started, loader), infos, plan.train_n, plan.sizes,
                             plan.learners, tuple(a for a in plan.arms if a not in plan.learners), plan.skipped,
                             tuple(cells))
        result = write_outputs(out, record, n_boot=opts.n_boot)
    return out, result


def _run_groups(plan: CurvePlan, opts: RunOptions, loader: ModelLoader, display: Display,
                out: Path) -> tuple[list[CellRef], dict[str, TaskInfo]]:
    """The full-size group first (usually the cache of `bench run`), then the sizes, smallest first."""
    cells: list[CellRef] = []
    infos: dict[str, TaskInfo] = {}
    suite, specs = plan.run.suite, plan.run.suite.spec.arms
    for group in [f"size-{ALL}", *(f"size-{s}" for s in plan.sizes)]:
        size = None if group.endswith(ALL) else int(group.removeprefix("size-"))
        display.log(f"learning curve: {group} ({len(plan.groups[group])} cells)")
        variant = suite if size is None else at_size(suite, size)
        done, scores = run_group(group, plan.run, opts, variant, specs, plan.groups[group], loader, display, out)
        cells += done
        if size is None:  # the floor is the full split's (a run's report shows the same)
            infos = {t: task_info(t, scores[t]) for t in plan.tasks if t in scores}
    return cells, infos


def write_outputs(folder: Path, record: CurveRecord, *, n_boot: int) -> CurveResult:
    """Figures from the stored predictions, report.md/html and plots, then the record (last: it is
    the directory's end marker)."""
    from .curve_report import write_curve_report

    result = curve_result(folder, record, n_boot=n_boot)
    write_curve_report(folder, result)
    write_json(folder / RECORD, result.to_json())
    return result


def rebuild_report(folder: Path) -> CurveResult:
    """`bench report DIR`: the figures and report again from the directory's predictions (no model),
    with the bootstrap size the experiment ran with."""
    record = finished_record(folder, RECORD, CurveRecord)
    return write_outputs(folder, record, n_boot=recorded_n_boot(record))


def _provenance(plan: CurvePlan, opts: RunOptions, started: float, loader: ModelLoader) -> dict[str, Any]:
    return experiment_provenance(plan.run, opts, started, loader, n_boot=opts.n_boot)
