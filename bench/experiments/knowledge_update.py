"""`bench experiment knowledge-update SUITE`: the facts change; which arm keeps up, at what cost?

The arms first run as the corpus was before its `update` files (fine-tunes trained on the old
answers), then the update arrives: retrieval re-indexes the updated corpus, a fine-tune is stale
unless it is retrained. Each arm variant meets the update in one or two ways (`Condition`):

    prompt, zero-shot      unchanged            the same prompt: nothing to update
    prompt, k shots        new demonstrations   demonstrations drawn from the updated data
    rag                    re-indexed           the updated corpus, re-embedded and indexed
    finetune               stale                the model trained before the update answers
                           retrained            trained again on the updated data
    rag on a fine-tune     re-indexed, stale fine-tune / re-indexed, retrained

Every prediction comes from the runner's own cells (bench.runner.CellRunner) on in-memory
variants of the suite (bench.experiments.worlds), so it is cached like every cell; a stale
fine-tune reuses the predictions it made before the update, which are what it still answers.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from rich.console import Console

from ..arms import Arm, ArmContext, build_arms, run_order, suite_context
from ..errors import ConfigError
from ..predictions import Prediction
from ..progress import Display, open_display
from ..results import load_predictions
from ..runner import CellRunner, ModelLoader, Plan, RunOptions, plan_run
from ..store import code_fingerprint, discarded_unless_a_cell_finished, git_sha, new_run_dir, write_json
from ..suites import Suite
from .reindex import ReindexCost, reindex_cost
from .update_figures import ExperimentResult, experiment_result
from .worlds import Worlds, build_worlds, update_tasks

Source = Literal["before", "after", "after-stale"]
"""Which cells a condition's predictions come from: the before world's, the after world's, or the
after world's retrieval variants answering with a fine-tune trained before the update."""


@dataclass(frozen=True)
class Condition:
    """One arm variant in one state of knowledge."""

    arm: str
    state: str
    """'before', or how the variant met the update (see the module docstring)."""
    source: Source
    catch_up: tuple[str, ...] = ()
    """What bringing it up to date took: 're-index' and/or 'retraining' (none: nothing, or stale)."""
    stale: bool = False
    """A fine-tune trained before the update answers (alone, or under re-indexed retrieval)."""

    @property
    def world(self) -> str:
        return "before" if self.state == "before" else "after"


@dataclass(frozen=True)
class UpdatePlan:
    """What the experiment will run, resolved before any model is loaded."""

    run: Plan
    """`bench run`'s plan of the suite as loaded (the after world): model, device, dtype, arms."""
    worlds: Worlds
    tasks: list[str]
    """The update tasks asked."""
    arms: list[str]
    """The arm variants compared, in run order."""
    conditions: list[Condition]
    """Per arm: before, then its state(s) after the update."""
    stale_only: bool
    """Fine-tunes are not retrained after the update (`--stale-only`)."""


@dataclass(frozen=True)
class CellOutput:
    """One cell of one world: its predictions (in the changed questions' order) and record."""

    predictions: tuple[Prediction, ...]
    record: dict[str, Any]
    """The runner's cell record: cache key, cached or fresh, seconds, costs (run.json's shape)."""


Outputs = dict[Source, dict[tuple[str, str], CellOutput]]
"""source -> (arm variant, task) -> the cell."""


def plan_update(name: str, opts: RunOptions, *, stale_only: bool = False) -> UpdatePlan:
    """Load the suite and resolve tasks, arms and conditions (no model is loaded)."""
    run = plan_run(name, opts)
    declared = update_tasks(run.suite)
    if not declared:
        raise ConfigError(f"suite '{run.suite.spec.name}': no task declares `update:`, so there is nothing to run "
                          "before and after (see README, 'The knowledge-update experiment')")
    asked = [t for t in run.task_names if t in declared]
    if opts.tasks and len(asked) < len(run.task_names):
        other = [t for t in run.task_names if t not in declared]
        raise ConfigError(f"task(s) {', '.join(other)} declare no `update:`; tasks with one: {', '.join(declared)}")
    if not asked:
        raise ConfigError(f"none of the tasks run declares an update; tasks with one: {', '.join(declared)}")
    arms = [a for a in run.arm_order if any(_applies(run.arms[a], t) for t in asked)]
    if opts.arms and len(arms) < len(run.arm_order):
        raise ConfigError(f"arm variant(s) {', '.join(a for a in run.arm_order if a not in arms)} run on none of the "
                          f"update tasks ({', '.join(asked)})")
    if not arms:
        raise ConfigError(f"no arm variant runs on the update task(s) {', '.join(asked)}")
    conditions = [c for a in arms for c in conditions_of(run.arms[a].spec, stale_only)]
    return UpdatePlan(run=run, worlds=build_worlds(run.suite, asked), tasks=asked, arms=arms, conditions=conditions,
                      stale_only=stale_only)


def conditions_of(spec: Any, stale_only: bool) -> list[Condition]:
    """How one arm variant is run: before the update, then after it (see the module docstring)."""
    name, before = spec.name, Condition(spec.name, "before", "before")
    if spec.arm == "prompt":
        after = (Condition(name, "new demonstrations", "after") if spec.shots
                 else Condition(name, "unchanged", "before"))  # the same prompt: the same answers
        return [before, after]
    if spec.arm == "finetune":
        retrained = [] if stale_only else [Condition(name, "retrained", "after", ("retraining",))]
        return [before, Condition(name, "stale", "before", stale=True), *retrained]
    if not spec.finetuned:
        return [before, Condition(name, "re-indexed", "after", ("re-index",))]
    retrained = [] if stale_only else [Condition(name, "re-indexed, retrained", "after", ("re-index", "retraining"))]
    stale = Condition(name, "re-indexed, stale fine-tune", "after-stale", ("re-index",), stale=True)
    return [before, stale, *retrained]


def _applies(arm: Arm, task: str) -> bool:
    return not arm.spec.tasks or task in arm.spec.tasks


def describe_plan(plan: UpdatePlan) -> list[str]:
    """What a run would do, for `--dry-run`: the questions, the corpus on either side, the conditions."""
    w = plan.worlds
    lines = [f"corpus: {len(w.before.corpus)} documents before the update, {len(w.after.corpus)} after "
             f"({len(w.update_documents)} added by corpus.update)"]
    for task in plan.tasks:
        qs = w.questions[task]
        by_split = ", ".join(f"{s} {sum(q.split == s for q in qs)}" for s in ("train", "validation", "test"))
        lines.append(f"{task}: {len(qs)} changed questions ({by_split})")
    for arm in plan.arms:
        states = [c.state + (f" (+{' and '.join(c.catch_up)})" if c.catch_up else "")
                  for c in plan.conditions if c.arm == arm]
        lines.append(f"  {arm}: {'; '.join(states)}")
    return lines


# ---- running ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class StaleProvider:
    """A fine-tune as trained before the update, lent to a retrieval variant after it: whatever
    context it is asked from, it answers with the before world's trained model (never retrains).
    It has the four methods `bench.arms.rag.RagArm` asks of its provider."""

    arm: Any
    """The before world's FinetuneArm."""
    ctx: ArmContext
    """The before world's context (its corpus and old-answer tasks trained the model)."""

    def cache_key(self, ctx: ArmContext, task: Any) -> dict[str, Any]:
        return {"stale": self.arm.cache_key(self.ctx, self.ctx.tasks[task.name])}

    def trained(self, ctx: ArmContext, task: Any) -> Any:
        return self.arm.trained(self.ctx, self.ctx.tasks[task.name])

    def trained_model(self, ctx: ArmContext, task: Any) -> Any:
        return self.arm.trained_model(self.ctx, self.ctx.tasks[task.name])

    def trained_weights(self, ctx: ArmContext, task: Any) -> Any:
        return self.arm.trained_weights(self.ctx, self.ctx.tasks[task.name])


@dataclass(frozen=True)
class World:
    """One set of cells to run: a suite variant, its arms and their context."""

    source: Source
    suite: Suite
    arms: dict[str, Arm]
    ctx: ArmContext


def make_worlds(plan: UpdatePlan, opts: RunOptions, loader: ModelLoader, display: Display) -> list[World]:
    """The three sets of cells, each with its own arm objects (an arm caches its training data per
    task name, so one object must never serve two worlds), in the order they must run: before
    first, since the stale cells answer with its trained models."""
    def context(suite: Suite) -> ArmContext:
        return suite_context(suite, loader, batch_size=plan.run.batch_size, retrain=opts.retrain,
                             progress=display.stage, log=display.log, backend=plan.run.backend)

    specs = plan.run.suite.spec.arms
    before = World("before", plan.worlds.before, build_arms(specs), context(plan.worlds.before))
    after = World("after", plan.worlds.after, build_arms(specs), context(plan.worlds.after))
    stale = {c.arm: _stale_rag(before, c.arm) for c in plan.conditions if c.source == "after-stale"}
    return [before, after, dataclasses.replace(after, source="after-stale", arms=stale)]


def _stale_rag(before: World, name: str) -> Arm:
    from ..arms.rag import RagArm

    spec = before.arms[name].spec
    return RagArm(spec, StaleProvider(before.arms[spec.finetuned], before.ctx))


def run_world(plan: UpdatePlan, opts: RunOptions, world: World, display: Display,
              folder: Path) -> dict[tuple[str, str], CellOutput]:
    """The world's cells through the runner's CellRunner; predictions land in `folder` as in a run."""
    wanted = list(dict.fromkeys(c.arm for c in plan.conditions if c.source == world.source))
    if not wanted:
        return {}
    cell_plan = dataclasses.replace(plan.run, suite=world.suite, arms=world.arms,
                                    arm_order=run_order(wanted, world.arms), task_names=plan.tasks)
    cells = CellRunner(cell_plan, opts, world.ctx, folder, display)
    out = {}
    for arm in cell_plan.arm_order:
        for task in plan.tasks:
            if _applies(world.arms[arm], task):
                cells.run(arm, world.suite.tasks[task])
                out[(arm, task)] = _cell_output(folder, cells.cells[-1])
    write_json(folder / "scores.json", {"suite": world.suite.spec.name, "world": world.source,
                                        "tasks": cells.scores_in_declared_order()})
    return out


def _cell_output(folder: Path, record: dict[str, Any]) -> CellOutput:
    rows = load_predictions(folder, record["arm"], record["task"])  # what CellRunner.run just wrote
    return CellOutput(tuple(r.prediction for r in rows), record)


def reindex_costs(plan: UpdatePlan, after: World, opts: RunOptions,
                  log: Callable[[str], None]) -> dict[str, ReindexCost]:
    """Per corpus-mode retrieval variant that re-indexes: a full re-index of the updated corpus
    (with the after world's arm, whose embedder is already loaded)."""
    names = {c.arm for c in plan.conditions if "re-index" in c.catch_up}
    return {name: reindex_cost(after.arms[name], after.suite.corpus, plan.run.device, seed=plan.run.suite.spec.seed,
                               use_cache=opts.use_cache, log=log)
            for name in sorted(names) if after.arms[name].spec.mode == "corpus"}


def run_knowledge_update(name: str, opts: RunOptions, console: Console, *,
                         stale_only: bool = False) -> tuple[Path, ExperimentResult]:
    """Run the experiment and write its directory under results/<suite>/; return the directory and
    the figures it holds."""
    from .update_report import write_update_report

    started = time.time()
    plan = plan_update(name, opts, stale_only=stale_only)
    out = new_experiment_dir(opts.results, plan.run.suite.spec.name)
    with discarded_unless_a_cell_finished(out):
        with open_display(console) as display:  # rich bars on a terminal, timed lines in a log
            loader = ModelLoader(plan.run, opts, display.timed)
            worlds = make_worlds(plan, opts, loader, display)
            outputs: Outputs = {w.source: run_world(plan, opts, w, display, out / w.source) for w in worlds}
            reindex = reindex_costs(plan, worlds[1], opts, display.log)
        provenance = _provenance(plan, opts, started, loader)
        result = experiment_result(plan, outputs, reindex, provenance, n_boot=opts.n_boot)
        write_update_report(out, result)
        # the record last: it is the directory's end marker (`bench ls --runs` lists one without it as unfinished)
        write_json(out / "knowledge_update.json", dataclasses.asdict(result))
    return out, result


def new_experiment_dir(results: Path, suite: str) -> Path:
    """results/<suite>/knowledge-update-<UTC timestamp>-<random>: beside the suite's runs, never reused."""
    return new_run_dir(results, suite, prefix="knowledge-update-")


def _provenance(plan: UpdatePlan, opts: RunOptions, started: float, loader: ModelLoader) -> dict[str, Any]:
    run, w = plan.run, plan.worlds
    return {"suite": run.suite.spec.name, "suite_path": str(run.suite.path), "profile": run.suite.profile,
            "model": run.model_spec, "model_fingerprint": run.model_id, "device": run.device, "dtype": run.dtype,
            "seed": run.suite.spec.seed, "git_sha": git_sha(), "code_fingerprint": code_fingerprint(),
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
            "wall_s": round(time.time() - started, 2), "model_load_s": loader.load_seconds,
            "stale_only": plan.stale_only,
            "corpus_before": len(w.before.corpus), "corpus_after": len(w.after.corpus),
            "update_documents": sorted(w.update_documents), "retrain": opts.retrain, "use_cache": opts.use_cache}
