"""`bench experiment sweep SUITE`: a validation-only hyperparameter search over fine-tune variants.

A fine-tune variant may declare `sweep:` (bench.config.Sweep): settings and the values to try, a grid
or a seeded random draw of its combinations, and the metric that chooses. Each trial is the variant
with one combination, a spec of its own, so it is trained (and early-stopped on validation where the
variant selects on `loss` or `metric`; the default `last` keeps each trial's final weights) and cached
like any variant (the trial with the declared values is the very model `bench run` trains).

Selection never sees test data, by construction rather than by care: every trial runs as the
runner's cells (bench.runner.CellRunner) on the *validation world*, the suite with each task's test
split replaced by the examples the variant validates on (its validation split, or its seeded hold-out
of train). Per trained model (one task, or every task of a multi_task variant) the best trial on
validation is chosen, and only that trial is then run on the real test split.
"""

from __future__ import annotations

import dataclasses
import itertools
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from rich.console import Console

from ..arms import Arm, ArmContext, build_arms, suite_context
from ..config import FinetuneArm as FinetuneSpec
from ..config import Sweep, parse_suite_yaml
from ..errors import ConfigError, TrainingError
from ..progress import Display, open_display
from ..records import shown_path
from ..runner import CellRunner, ModelLoader, Plan, RunOptions, plan_run
from ..store import discarded_unless_a_cell_finished, new_run_dir, write_json
from ..suites import Suite
from ..yaml_problems import Problem, yaml_line
from .provenance import experiment_provenance
from .sweep_results import (
    LOSS,
    RECORD_FILE,
    Choice,
    SweepResult,
    TrialInfo,
    TrialScore,
    VariantResult,
    choose,
    describe,
    estimates,
    kept_loss,
)


@dataclass(frozen=True)
class Trial:
    """One combination of a variant's searched settings, as the variant it runs as."""

    info: TrialInfo
    spec: FinetuneSpec
    """The declaring variant with these settings, named after the trial, without `sweep`."""


def combinations(sweep: Sweep, seed: int, variant: str) -> list[dict[str, Any]]:
    """The settings of each trial: every combination (grid), or `trials` of them drawn with the suite
    seed and kept in grid order (random; every combination when there are no more than that)."""
    space = sweep.space.settings()
    grid = [dict(zip(space, values)) for values in itertools.product(*space.values())]
    if sweep.search == "grid" or sweep.trials >= len(grid):
        return grid
    drawn = random.Random(f"{seed}:{variant}:sweep").sample(range(len(grid)), sweep.trials)
    return [grid[i] for i in sorted(drawn)]


def trials_of(spec: FinetuneSpec, seed: int) -> list[Trial]:
    """The variant's trials, each validated as a fine-tune spec of its own."""
    declared = spec.model_dump(exclude_unset=True)
    out = []
    for number, settings in enumerate(combinations(spec.sweep, seed, spec.name), 1):
        name = f"{spec.name}-trial-{number}"
        try:
            trial = FinetuneSpec.model_validate({**declared, **settings, "name": name, "sweep": None})
        except ValidationError as e:
            first = e.errors()[0]
            raise ConfigError(f"finetune variant '{spec.name}': sweep trial {number} ({describe(settings)}) is not a "
                              f"valid fine-tune: {'.'.join(map(str, first['loc']))}: {first['msg']}") from e
        same = all(getattr(spec, k) == v for k, v in settings.items())
        out.append(Trial(TrialInfo(spec.name, number, name, settings, same), trial))
    return out


# ---- the plan: resolved and checked before any model is loaded --------------------------------

@dataclass(frozen=True)
class VariantSweep:
    """One variant's search, ready to run."""

    spec: FinetuneSpec
    trials: tuple[Trial, ...]
    tasks: tuple[str, ...]
    """The tasks it runs on in this sweep."""
    units: tuple[tuple[str, ...], ...]
    """The tasks of each trained model, one choice each: (task,) per task, or all (multi_task)."""
    validation: Suite
    """The validation world: each task's test split is the examples this variant validates on."""

    @property
    def name(self) -> str:
        return self.spec.name


@dataclass(frozen=True)
class SweepPlan:
    run: Plan
    """`bench run`'s plan of the suite (model, device, dtype, batch size; every variant)."""
    variants: tuple[VariantSweep, ...]


def plan_sweep(name: str, opts: RunOptions) -> SweepPlan:
    """Load the suite, pick the variants that declare `sweep:` and build their trials and
    validation worlds; every mistake is a ConfigError here, before compute."""
    run = plan_run(name, opts)
    at = _arms_path(run.suite)
    sweeping = [a for a in run.arm_order if run.arms[a].spec.arm == "finetune" and run.arms[a].spec.sweep]
    if not sweeping:
        raise ConfigError(_none_declared(run.suite))
    if opts.arms and len(sweeping) < len(run.arm_order):
        other = ", ".join(a for a in run.arm_order if a not in sweeping)
        raise ConfigError(f"arm variant(s) {other} declare no `sweep:`; variants with one: "
                          f"{', '.join(sweeping) or 'none'}")
    index = {s.name: i for i, s in enumerate(run.suite.spec.arms)}
    variants = tuple(_variant_sweep(run, run.arms[a].spec, (*at, index[a])) for a in sweeping)
    return SweepPlan(run=run, variants=variants)


def _variant_sweep(run: Plan, spec: FinetuneSpec, at: tuple[Any, ...]) -> VariantSweep:
    tasks = tuple(t for t in run.task_names if not spec.tasks or t in spec.tasks)
    if not tasks:
        raise ConfigError(f"finetune variant '{spec.name}' runs on none of the tasks asked "
                          f"({', '.join(run.task_names)})")
    metric = spec.sweep.metric
    for t in tasks:
        if metric != LOSS and metric not in run.suite.tasks[t].spec.metrics:
            raise ConfigError(str(Problem(
                shown_path(run.suite.path), yaml_line(run.suite.path, (*at, "sweep", "metric")),
                _dotted((*at, "sweep", "metric")),
                f"task {t} does not declare metric '{metric}' (it has {', '.join(run.suite.tasks[t].spec.metrics)}); "
                "use one every task of the variant declares, or loss")))
    units = tuple((t,) for t in tasks) if spec.scope == "per_task" else (tasks,)
    return VariantSweep(spec=spec, trials=tuple(trials_of(spec, run.suite.spec.seed)), tasks=tasks, units=units,
                        validation=validation_world(run.suite, spec, tasks))


def validation_world(suite: Suite, spec: FinetuneSpec, tasks: tuple[str, ...]) -> Suite:
    """`suite` with the test split of each of `tasks` replaced by the examples the variant validates
    on, as its FinetuneArm holds them out (train and validation unchanged, so the trained models and
    their cache keys are those of the real suite). No test example is left in it."""
    from ..arms.finetune import FinetuneArm

    arm = FinetuneArm(spec.model_copy(update={"sweep": None}))
    ctx = suite_context(suite, _no_model, batch_size=1)
    replaced = {}
    for t in tasks:
        validation = arm.task_data(ctx, suite.tasks[t]).validation
        if not validation:
            raise ConfigError(f"finetune variant '{spec.name}' has no validation examples for task {t} (no validation "
                              "split and holdout: 0): a sweep chooses on validation; add a validation split or set "
                              "holdout above 0")
        replaced[t] = dataclasses.replace(suite.tasks[t], examples={**suite.tasks[t].examples, "test": validation})
    return dataclasses.replace(suite, tasks={**suite.tasks, **replaced})


def _dotted(at: tuple[Any, ...]) -> str:
    """A key path as problems show it: arms[2].sweep.metric."""
    return "".join(f"[{k}]" if isinstance(k, int) else f".{k}" for k in at).lstrip(".")


def _no_model() -> Any:
    raise AssertionError("planning a sweep must not load a model")


def _arms_path(suite: Suite) -> tuple[Any, ...]:
    """Where the run's arm list is written in suite.yaml: the profile's, when it replaces the suite's."""
    if suite.profile and parse_suite_yaml(suite.path).profiles[suite.profile].arms is not None:
        return ("profiles", suite.profile, "arms")
    return ("arms",)


def _none_declared(suite: Suite) -> str:
    declared = parse_suite_yaml(suite.path)
    profiles = [name for name, p in declared.profiles.items()
                if any(a.arm == "finetune" and a.sweep for a in p.arms or [])]
    hint = f"; profiles with one: {', '.join(profiles)} (--profile NAME)" if profiles else ""
    which = f" (profile {suite.profile})" if suite.profile else ""
    return f"no finetune variant of suite '{suite.spec.name}'{which} declares `sweep:`{hint}"


def describe_plan(plan: SweepPlan) -> list[str]:
    """What a run would do, for `--dry-run`: per variant its trials and validation sizes."""
    lines = []
    for v in plan.variants:
        sizes = ", ".join(f"{t} {len(v.validation.tasks[t].split('test'))}" for t in v.tasks)
        lines.append(f"{v.name}: {v.spec.sweep.search} search, {len(v.trials)} trials chosen by validation "
                     f"{v.spec.sweep.metric} (validation examples: {sizes})")
        lines += [f"  {t.info.name}: {describe(t.info.settings)}" + (" (as declared)" if t.info.declared else "")
                  for t in v.trials]
    return lines


# ---- running ----------------------------------------------------------------------------------

def run_sweep(name: str, opts: RunOptions, console: Console) -> tuple[Path, SweepResult]:
    """Run the experiment into results/<suite>/sweep-<id>/ and return the directory and its figures."""
    from .sweep_report import write_sweep_report

    started = time.time()
    plan = plan_sweep(name, opts)
    out = new_run_dir(opts.results, plan.run.suite.spec.name, prefix="sweep-")
    with discarded_unless_a_cell_finished(out):
        with open_display(console) as display:  # rich bars on a terminal, timed lines in a log
            loader = ModelLoader(plan.run, opts, display.timed)
            variants = tuple(run_variant(plan, v, opts, loader, display, out) for v in plan.variants)
        result = SweepResult(provenance=_provenance(plan, opts, started, loader), variants=variants)
        write_sweep_report(out, result)
        write_json(out / RECORD_FILE, result.to_json())  # last: it marks the directory finished
    return out, result


def run_variant(plan: SweepPlan, v: VariantSweep, opts: RunOptions, loader: ModelLoader, display: Display,
                out: Path) -> VariantResult:
    """Every trial on validation, the choice per trained model, then the chosen trials on test."""
    val_ctx = _context(plan, v.validation, opts, loader, display, retrain=opts.retrain)
    stage = display.stage(f"{v.name} sweep", len(v.trials) * len(v.tasks), unit="trial cells")
    scores = []
    for trial in v.trials:
        # arms of their own per trial: the trained models they hold in memory go when the trial is done
        cells = CellRunner(_cell_plan(plan, v.validation, trial.spec, v.tasks), opts, val_ctx, out / "validation",
                           display)
        for task in v.tasks:
            n_val = len(v.validation.tasks[task].split("test"))
            display.log(f"[sweep] {v.name}: trial {trial.info.number}/{len(v.trials)} "
                        f"({describe(trial.info.settings)}) · {task}: {n_val} validation examples")
            scores.append(_validation_score(cells, trial, task, display))
            stage(1)
    stage.finish()
    # the chosen trials' models are cached now: the test context never retrains them
    test_ctx = _context(plan, plan.run.suite, opts, loader, display, retrain=False)
    choices = tuple(_test_choice(plan, v, unit, scores, opts, test_ctx, display, out) for unit in v.units)
    sweep = v.spec.sweep
    return VariantResult(
        variant=v.name, search=sweep.search, metric=sweep.metric, space=sweep.space.settings(), tasks=v.tasks,
        validation_n={t: len(v.validation.tasks[t].split("test")) for t in v.tasks},
        trials=tuple(t.info for t in v.trials), scores=tuple(scores), choices=choices)


def _context(plan: SweepPlan, suite: Suite, opts: RunOptions, loader: ModelLoader, display: Display, *,
             retrain: bool) -> ArmContext:
    return suite_context(suite, loader, batch_size=plan.run.batch_size, retrain=retrain, progress=display.stage,
                         log=display.log)


def _cell_plan(plan: SweepPlan, suite: Suite, spec: FinetuneSpec, tasks: tuple[str, ...]) -> Plan:
    """The runner's plan for one trial's cells on `suite`: the trial as the only variant run (with
    the rag variant it draws training passages from, when it names one)."""
    return dataclasses.replace(plan.run, suite=suite, arms=_trial_arms(plan.run.suite, spec), arm_order=[spec.name],
                               task_names=list(tasks))


def _trial_arms(suite: Suite, spec: FinetuneSpec) -> dict[str, Arm]:
    source = [s for s in suite.spec.arms if s.name == spec.retrieval_from]
    return build_arms([*source, spec])


def _validation_score(cells: CellRunner, trial: Trial, task: str, display: Display) -> TrialScore:
    """One trial's cell on a task's validation examples; a training that fails (a NaN loss) leaves
    the trial out of the choice instead of ending the sweep."""
    name = trial.info.name
    try:
        cells.run(name, cells.plan.suite.tasks[task])
    except TrainingError as e:
        display.log(f"[sweep] {name} · {task}: training failed, left out of the choice: {e}")
        return TrialScore(trial=name, task=task, loss=None, metrics={}, best_step=None, steps=None,
                          stopped_early=None, train_s=None, cached=False, cache_key=None, error=str(e))
    record, costs = cells.cells[-1], cells.cells[-1].get("costs", {})
    return TrialScore(trial=name, task=task, loss=kept_loss(costs),
                      metrics=estimates(cells.scores[task]["arms"][name]["metrics"]),
                      best_step=costs.get("best_step"), steps=costs.get("steps"),
                      stopped_early=costs.get("stopped_early"), train_s=costs.get("train_wall_s"),
                      cached=bool(record["cached"]), cache_key=record["cache_key"])


def _test_choice(plan: SweepPlan, v: VariantSweep, unit: tuple[str, ...], scores: list[TrialScore],
                 opts: RunOptions, ctx: ArmContext, display: Display, out: Path) -> Choice:
    """Choose on validation scores alone, then run only the chosen trial on the unit's test splits."""
    metric = v.spec.sweep.metric
    chosen, value = choose([t.info for t in v.trials], scores, unit, metric)
    if chosen is None:
        display.log(f"[sweep] {v.name} · {', '.join(unit)}: no trial has a validation {metric}; nothing scored on test")
        return Choice(v.name, unit, metric, None, None, {}, {}, {}, {})
    trial = next(t for t in v.trials if t.info.name == chosen)
    display.log(f"[sweep] {v.name} · {', '.join(unit)}: chose {chosen} ({describe(trial.info.settings)}), validation "
                f"{metric} {value:.4f}; scoring it on test")
    cells = CellRunner(_cell_plan(plan, plan.run.suite, trial.spec, unit), opts, ctx, out / "test", display)
    test, floor, n, cached = {}, {}, {}, {}
    for task in unit:
        cells.run(chosen, plan.run.suite.tasks[task])
        scored = cells.scores[task]
        test[task], floor[task] = estimates(scored["arms"][chosen]["metrics"]), estimates(scored["floor"]["metrics"])
        n[task], cached[task] = scored["n"], bool(cells.cells[-1]["cached"])
    return Choice(v.name, unit, metric, chosen, value, test, floor, n, cached)


def _provenance(plan: SweepPlan, opts: RunOptions, started: float, loader: ModelLoader) -> dict[str, Any]:
    return experiment_provenance(plan.run, opts, started, loader, n_boot=opts.n_boot)
