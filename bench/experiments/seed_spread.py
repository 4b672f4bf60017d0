"""`bench experiment seed-spread SUITE`: is a fine-tune's gap to the other arms bigger than what a
different training seed moves?

Each fine-tune variant asked (`--variants`) is trained with every training seed (`--seeds`): the
seed of LoRA's initialisation, the batch order, dropout and the validation sample scored while
training (`training_seed` on the variant; which examples it trains on stays the suite seed's). The
retrieval variants built on it (`finetuned:`) run on each of those models. Every other variant runs
once, as `bench run` runs it. At the suite's own seed the cells are exactly `bench run`'s (the same
keys: a model trained at the suite seed keeps its key), so a suite already run pays only for the
other seeds. Each seed is a set of the runner's cells (bench.experiments.cells), cached as in a run.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from ..config import unknown_name
from ..errors import ConfigError
from ..progress import Display, open_display
from ..runner import ModelLoader, Plan, RunOptions, plan_run
from ..store import discarded_unless_a_cell_finished, new_run_dir, write_json
from .cells import CellRef, TaskInfo, applies, parse_int_list, run_group, task_info
from .provenance import experiment_provenance, finished_record, recorded_n_boot
from .seed_figures import FIXED, SeedRecord, SeedResult, seed_result

SEED_COUNT = 3
"""Seeds trained by default: the suite seed and the next two (0, 1, 2 for a suite with seed 0)."""
ALL_VARIANTS = "all"
RECORD = "seed_spread.json"
PREFIX = "seed-spread-"


def parse_seeds(text: str) -> tuple[int, ...]:
    seeds = parse_int_list("--seeds", text, minimum=0)
    if len(seeds) < 2:
        raise ConfigError(f"--seeds: at least two different training seeds are needed to see a spread, got '{text}'")
    return seeds


@dataclass(frozen=True)
class SeedPlan:
    """What the experiment will run, resolved before any model is loaded."""

    run: Plan
    seeds: tuple[int, ...]
    finetunes: tuple[str, ...]
    """The fine-tune variants trained with each seed."""
    seeded: tuple[str, ...]
    """Those and the retrieval variants built on them, in run order."""
    tasks: list[str]
    groups: dict[str, list[tuple[str, str]]]
    """'seed-<s>' -> the seeded cells; 'fixed' -> every other variant's cells."""


def plan_spread(name: str, opts: RunOptions, seeds: tuple[int, ...] | None,
                variants: list[str] | None) -> SeedPlan:
    """Load the suite and resolve seeds, variants and cells (no model is loaded). `variants` None:
    the first fine-tune variant run; ['all']: every one."""
    run = plan_run(name, opts)
    finetunes = _finetunes(run, variants)
    seeded = tuple(a for a in run.arm_order if a in finetunes or getattr(run.arms[a].spec, "finetuned", None)
                   in finetunes)
    tasks = [t for t in run.task_names if any(applies(run.arms[a], t) for a in seeded)]
    if not tasks or (opts.tasks and len(tasks) < len(run.task_names)):
        other = ", ".join(t for t in run.task_names if t not in tasks)
        raise ConfigError(f"fine-tune variant(s) {', '.join(finetunes)} do not run on task(s) {other}")
    seed = run.suite.spec.seed
    seeds = seeds or tuple(range(seed, seed + SEED_COUNT))
    groups = {f"seed-{s}": [(a, t) for a in seeded for t in tasks if applies(run.arms[a], t)] for s in seeds}
    groups[FIXED] = [(a, t) for a in run.arm_order if a not in seeded for t in tasks if applies(run.arms[a], t)]
    return SeedPlan(run, seeds, finetunes, seeded, tasks, groups)


def _finetunes(run: Plan, variants: list[str] | None) -> tuple[str, ...]:
    known = [a for a in run.arm_order if run.arms[a].spec.arm == "finetune"]
    if not known:
        raise ConfigError(f"suite '{run.suite.spec.name}': no fine-tune variant is run here, so no training seed "
                          "to vary")
    if not variants:
        return (known[0],)
    if variants == [ALL_VARIANTS]:
        return tuple(known)
    for v in variants:
        if v not in known:
            raise ConfigError(f"--variants: {unknown_name('fine-tune variant', v, known)}")
    return tuple(v for v in known if v in variants)


def describe_plan(plan: SeedPlan) -> list[str]:
    """What a run would do, for `--dry-run`."""
    return [f"training seeds: {', '.join(map(str, plan.seeds))} (the suite seed is {plan.run.suite.spec.seed})",
            f"trained with each seed: {', '.join(plan.finetunes)}; on each of their models: "
            f"{', '.join(a for a in plan.seeded if a not in plan.finetunes) or 'nothing else'}",
            f"tasks: {', '.join(plan.tasks)}", *[f"{g}: {len(cells)} cells" for g, cells in plan.groups.items()]]


def run_seed_spread(name: str, opts: RunOptions, console: Console, *, seeds: tuple[int, ...] | None = None,
                    variants: list[str] | None = None) -> tuple[Path, SeedResult]:
    """Run every group of cells into a new directory results/<suite>/seed-spread-...; write its report
    and record; return the directory and the figures."""
    started = time.time()
    plan = plan_spread(name, opts, seeds, variants)
    out = new_run_dir(opts.results, plan.run.suite.spec.name, prefix=PREFIX)
    with discarded_unless_a_cell_finished(out):
        with open_display(console) as display:  # rich bars on a terminal, timed lines in a log
            loader = ModelLoader(plan.run, opts, display.timed)
            cells, infos = _run_groups(plan, opts, loader, display, out)
        record = SeedRecord(_provenance(plan, opts, started, loader), infos, plan.seeds, plan.seeded, tuple(cells))
        result = write_outputs(out, record, n_boot=opts.n_boot)
    return out, result


def _run_groups(plan: SeedPlan, opts: RunOptions, loader: ModelLoader, display: Display,
                out: Path) -> tuple[list[CellRef], dict[str, TaskInfo]]:
    """The other variants and the suite seed first (usually `bench run`'s cache), then the other seeds."""
    suite = plan.run.suite
    home = f"seed-{suite.spec.seed}"
    cells: list[CellRef] = []
    infos: dict[str, TaskInfo] = {}
    for group in sorted(plan.groups, key=lambda g: (g != FIXED, g != home)):  # stable: seeds keep their order
        seed = None if group == FIXED else int(group.removeprefix("seed-"))
        display.log(f"seed spread: {group} ({len(plan.groups[group])} cells)")
        specs = [s.model_copy(update={"training_seed": seed}) if seed is not None and s.name in plan.finetunes else s
                 for s in suite.spec.arms]
        done, scores = run_group(group, plan.run, opts, suite, specs, plan.groups[group], loader, display, out)
        cells += done
        infos.update({t: task_info(t, s) for t, s in scores.items() if t not in infos})
    return cells, {t: infos[t] for t in plan.tasks}


def write_outputs(folder: Path, record: SeedRecord, *, n_boot: int) -> SeedResult:
    """Figures from the stored predictions, report.md/html and plots, then the record (last: it is
    the directory's end marker)."""
    from .seed_report import write_seed_report

    result = seed_result(folder, record, n_boot=n_boot)
    write_seed_report(folder, result)
    write_json(folder / RECORD, result.to_json())
    return result


def rebuild_report(folder: Path) -> SeedResult:
    """`bench report DIR`: the figures and report again from the directory's predictions (no model),
    with the bootstrap size the experiment ran with."""
    record = finished_record(folder, RECORD, SeedRecord)
    return write_outputs(folder, record, n_boot=recorded_n_boot(record))


def _provenance(plan: SeedPlan, opts: RunOptions, started: float, loader: ModelLoader) -> dict[str, Any]:
    return experiment_provenance(plan.run, opts, started, loader, training_seeds=list(plan.seeds),
                                 finetunes=list(plan.finetunes), n_boot=opts.n_boot)
