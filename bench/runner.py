"""`bench run`: every arm variant on every task, cached, scored, written to a run directory.

The runner knows no arm's internals: it builds the arms (bench.arms.build_arms resolves which
variant builds on which), asks each for what its predictions depend on (`cache_key`), and
calls `predict`, which returns typed predictions and costs.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

from .arms import Arm, ArmContext, build_arms, run_order, suite_context
from .backends import BACKEND_HELP, Backend, BackendSettings, HFBackend, check_backend, make_backend
from .config import DEFAULT_QUERY_VOLUME, query_volume_problem, unknown_name
from .context_limit import context_window, shortened_note
from .data import examples_hash, stable_hash
from .errors import ConfigError
from .leakage import LEAKAGE_FILE, find_leakage
from .models import LoadedModel, cache_root, check_model_spec, choose_device, choose_dtype, fingerprint, load_model
from .predictions import Prediction, ScoredPrediction
from .progress import Display, open_display
from .scoring import retrieval_scores, score_floor, score_predictions
from .store import (
    FAILED,
    REPORTING,
    RUNNING,
    PredictionCache,
    code_fingerprint,
    discard_run_dir,
    environment,
    new_run_dir,
    write_json,
    write_jsonl,
)
from .suites import Suite, Task, load_suite
from .training import distributed
from .training.distributed import local_device


def _opt(help: str, **extra: Any) -> dict[str, Any]:
    return {"help": help, **extra}


@dataclass
class RunOptions:
    """What `bench run` may override; every field is a command-line option (bench.__main__
    builds the parser from these fields and their help). None means: from the suite."""

    arms: list[str] | None = field(default=None, metadata=_opt("comma-separated arm variants (default: all)", csv=True))
    tasks: list[str] | None = field(default=None, metadata=_opt("comma-separated tasks (default: all)", csv=True))
    profile: str | None = field(default=None, metadata=_opt("a named profile of the suite (e.g. full, smoke)"))
    limit: int | None = field(default=None, metadata=_opt("cap each task's test split (seeded subsample)"))
    model: str | None = field(default=None, metadata=_opt("override the suite's model spec"))
    device: str = field(default="auto", metadata=_opt("auto | cpu | cuda | cuda:N"))
    dtype: str = field(default="auto", metadata=_opt("auto | float32 | bfloat16 | float16"))
    batch_size: int | None = field(default=None, metadata=_opt("prompts per forward pass (default: 16 on CUDA, 8 on "
                                                               "CPU, measured faster there)"))
    # A run option, not a suite field: like --device, it says where a run computes, not what it measures.
    backend: str = field(default="hf", metadata=_opt(BACKEND_HELP))
    use_cache: bool = field(default=True, metadata=_opt("recompute predictions even when cached", flag="--no-cache"))
    results: Path = field(default_factory=lambda: Path(os.environ.get("TRIDENT_RESULTS", "results")),
                          metadata=_opt("results folder (env TRIDENT_RESULTS)"))
    trust_remote_code: bool = field(default=False, metadata=_opt("allow a hub model's own code to run"))
    n_boot: int = field(default=1000, metadata=_opt("bootstrap resamples for confidence intervals"))
    retrain: bool = field(default=False, metadata=_opt("retrain fine-tuned variants even when cached"))
    query_volume: int | None = field(default=None, metadata=_opt(
        "queries the verdict prices each arm at, training included (default: the suite's query_volume, "
        f"{DEFAULT_QUERY_VOLUME} unless it sets one)"))

    allow_outside_paths: bool = field(default=False, metadata=_opt(
        "read data and corpus files that lie outside the suite folder (absolute paths, '..', symlinks)"))
    verbose: bool = field(default=False, metadata=_opt(
        "also show the libraries' warnings, progress bars and loading messages (transformers, huggingface_hub, "
        "datasets, tqdm), hidden by default"))

    def __post_init__(self) -> None:
        # Refused before anything loads: a 0 limit runs and reports on nothing, a 0 batch size
        # silently became the default while run.json recorded 0, and a negative limit failed
        # inside random.sample without naming the option.
        for name in ("limit", "batch_size", "n_boot"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ConfigError(f"--{name.replace('_', '-')} must be at least 1, got {value}")
        # checked here, before a model loads, rather than when the report prices the finished run
        problem = query_volume_problem(self.query_volume) if self.query_volume is not None else None
        if problem:
            raise ConfigError(f"--query-volume: {problem}")
        check_backend(self.backend)  # an unknown one, or vllm not installed: one line before anything loads


@dataclass(frozen=True)
class Plan:
    """What one run will do, resolved before any model is loaded."""

    suite: Suite
    model_spec: str
    model_id: str
    device: str
    dtype: str
    batch_size: int
    arms: dict[str, Arm]
    arm_order: list[str]
    """Selected variants in the order they run (a fine-tune before what builds on it)."""
    task_names: list[str]
    backend: Backend = field(default_factory=HFBackend)
    """The engine the arms generate and score with (`--backend`)."""


def select(kind: str, wanted: list[str] | None, known: list[str]) -> list[str]:
    if not wanted:
        return known
    for w in wanted:
        if w not in known:
            raise ConfigError(unknown_name(kind, w, known))
    return [k for k in known if k in wanted]


def plan_run(name: str, opts: RunOptions) -> Plan:
    kw = {"profile": opts.profile} if opts.profile else {}
    suite = load_suite(name, limit=opts.limit, allow_outside=opts.allow_outside_paths, **kw)
    if opts.query_volume is not None:  # run.json's resolved spec records the volume the report prices at
        suite = replace(suite, spec=suite.spec.model_copy(update={"query_volume": opts.query_volume}))
    spec = suite.spec
    model_spec = opts.model or spec.model
    check_model_spec(model_spec)  # now, not when the first cell loads it into a fresh run directory
    device = local_device(choose_device(opts.device))  # under torchrun: this process's own GPU
    arms = build_arms(spec.arms)
    selected = select("arm variant", opts.arms, [a.name for a in spec.arms])
    dtype = choose_dtype(device, opts.dtype)
    return Plan(suite=suite, model_spec=model_spec, model_id=fingerprint(model_spec, spec.seed), device=device,
                dtype=dtype, batch_size=opts.batch_size or (16 if device.startswith("cuda") else 8), arms=arms,
                arm_order=run_order(selected, arms), task_names=select("task", opts.tasks, list(suite.tasks)),
                backend=make_backend(opts.backend, BackendSettings(device, dtype, spec.seed)))


class ModelLoader:
    """Loads the base model on first use only: a fully cached run never loads it."""

    def __init__(self, plan: Plan, opts: RunOptions, timed: Callable[[str], AbstractContextManager[None]]):
        self.plan, self.opts = plan, opts
        self.timed = timed  # the display's timed step: a pulsing bar, or start and end lines in a log
        self.model: LoadedModel | None = None
        self.load_seconds: float | None = None

    def __call__(self) -> LoadedModel:
        if self.model is None:
            p = self.plan
            t0 = time.perf_counter()
            with self.timed(f"Loading {p.model_spec} on {p.device} ({p.dtype})"):
                self.model = load_model(p.model_spec, device=p.device, dtype=p.dtype, seed=p.suite.spec.seed,
                                        trust_remote_code=self.opts.trust_remote_code)
            self.load_seconds = round(time.perf_counter() - t0, 2)
        return self.model


def run_suite(name: str, opts: RunOptions, console: Console) -> Path | None:
    """Predict and score every cell into a new run directory and return it, its run.json saying
    'reporting': bench.report.finish_report writes the report files, then marks it 'complete'.
    Under a multi-process launch (torchrun, accelerate launch) all processes train the fine-tunes
    together, then the main process alone predicts and writes; the others return None.

    run.json says 'running' from the start, so a killed run never looks finished. A run that fails
    before any cell finished leaves no directory; one that fails later keeps its cells, marked
    'failed' (a rerun takes the finished cells from the prediction cache)."""
    started = time.time()
    plan = plan_run(name, opts)
    if not distributed.is_main():
        _train_as_peer(plan, opts)
        return None
    record = _run_record(plan, opts, started)
    # on the examples and demonstrations this run uses; reported, never a reason to stop
    leakage = find_leakage(plan.suite, [plan.arms[a].spec for a in plan.arm_order], plan.task_names)
    leakage.print_warnings(console)
    run_dir = new_run_dir(opts.results, plan.suite.spec.name)
    cells: CellRunner | None = None
    try:
        write_json(run_dir / "run.json", {"status": RUNNING, **record, "cells": []})
        write_json(run_dir / LEAKAGE_FILE, leakage.to_json())
        with open_display(console) as display:  # rich bars on a terminal, timed lines in a log
            loader = ModelLoader(plan, opts, display.timed)
            ctx = suite_context(plan.suite, loader, batch_size=plan.batch_size, retrain=opts.retrain,
                                progress=display.stage, log=display.log, backend=plan.backend)
            cells = CellRunner(plan, opts, ctx, run_dir, display)
            if distributed.world_size() > 1:  # several processes: first the trainings they share
                from .arms.finetune import train_together

                train_together(_cells(plan), ctx, cells.is_cached)
            for arm, task in _cells(plan):
                cells.run(arm.spec.name, task)
        timings = {"model_load_s": loader.load_seconds, "wall_s": round(time.time() - started, 2)}
        write_json(run_dir / "scores.json", {"suite": plan.suite.spec.name, "tasks": cells.scores_in_declared_order()})
        write_json(run_dir / "run.json", {"status": REPORTING, **record, "timings": timings, "cells": cells.cells})
    except BaseException as e:  # also Ctrl-C: the directory must say what it holds
        _abandon(run_dir, record, cells.cells if cells else [], e, console)
        raise
    return run_dir


def _abandon(run_dir: Path, record: dict[str, Any], done: list[dict[str, Any]], error: BaseException,
             console: Console) -> None:
    """After a failure: no finished cell, no directory; else the cells are kept, marked 'failed'."""
    if not done:
        discard_run_dir(run_dir)
        return
    reason = "interrupted" if isinstance(error, KeyboardInterrupt) else f"{type(error).__name__}: {error}"
    try:
        write_json(run_dir / "run.json", {"status": FAILED, "error": reason, **record, "cells": done})
    except BaseException:  # e.g. the disk is still full: run.json still says 'running', also unfinished
        pass
    console.print(f"[yellow]{escape(str(run_dir))}: unfinished run kept, marked failed ({len(done)} cells finished; "
                  "a rerun takes them from the cache)[/yellow]", highlight=False)


def _applies(arm: Arm, task_name: str) -> bool:
    return not arm.spec.tasks or task_name in arm.spec.tasks


def _cells(plan: Plan) -> list[tuple[Arm, Task]]:
    """The run's (arm variant, task) cells, in the order they run."""
    return [(plan.arms[a], plan.suite.tasks[t]) for a in plan.arm_order for t in plan.task_names
            if _applies(plan.arms[a], t)]


def _train_as_peer(plan: Plan, opts: RunOptions) -> None:
    """A non-main process of a multi-process launch: it takes part in the run's trainings and
    writes nothing (no run directory, no cache entry, no report; the main process predicts)."""
    from .arms.finetune import train_together

    with open_display(Console(quiet=True)) as display:
        ctx = suite_context(plan.suite, ModelLoader(plan, opts, display.timed), batch_size=plan.batch_size,
                            retrain=opts.retrain)
        train_together(_cells(plan), ctx, None)


class CellRunner:
    """Runs (arm variant, task) cells: cache lookup or prediction, scoring, prediction files."""

    def __init__(self, plan: Plan, opts: RunOptions, ctx: ArmContext, run_dir: Path, display: Display):
        self.plan, self.opts, self.ctx, self.run_dir, self.display = plan, opts, ctx, run_dir, display
        self.cache = PredictionCache(cache_root())
        self.code = code_fingerprint()
        self.cells: list[dict[str, Any]] = []
        self.scores: dict[str, dict[str, Any]] = {}
        seed = plan.suite.spec.seed
        for t in plan.task_names:
            task = plan.suite.tasks[t]
            test = task.split("test")
            self.scores[t] = {"kind": task.spec.kind, "metrics": task.spec.metrics, "n": len(test),
                              "floor": score_floor(task, test, seed=seed), "arms": {}}

    def key(self, arm: Arm, task: Task) -> str:
        p = self.plan
        # Batch size is in the key although bench.generate computes each row in shapes of its own
        # (identical predictions at batch 1, 3, 8 and 16 on the CPU we measured, fp32 and bf16):
        # matmul libraries, cuBLAS above all, may choose their algorithm, and with it the rounding,
        # by how many rows a batch has, and a cell must never be served to a run it might not match.
        return stable_hash({
            "model": p.model_id, "device": p.device.split(":")[0], "dtype": p.dtype, "batch_size": p.batch_size,
            "seed": p.suite.spec.seed, "backend": self.ctx.backend.identity().to_record(),
            "arm": arm.cache_key(self.ctx, task), "code": self.code,
            # `update` and `paraphrases` are for experiments (knowledge-update, prompt-sensitivity); they change
            # no prediction of a run. A task's `corpus` names files: the arms that read them key their content
            # (`corpus_for`), the rest ignore it
            "task": task.spec.model_dump(exclude={"limit", "metrics", "description", "update", "corpus",
                                                  "paraphrases"}),
            "test": examples_hash(task.split("test")), "train": examples_hash(task.split("train"))})

    def is_cached(self, arm: Arm, task: Task) -> bool:
        """Whether the cell's predictions will come from the prediction cache."""
        return self.opts.use_cache and not self.opts.retrain and self.cache.get(self.key(arm, task)) is not None

    def predictions(self, arm_name: str, task: Task, key: str) -> tuple[list[Prediction], dict[str, Any], bool]:
        """(predictions, how they were made, cached?): from the cache, or made now and cached."""
        hit = self.cache.get(key) if self.opts.use_cache and not self.opts.retrain else None
        if hit:
            rows, info = hit
            self.display.cached(f"{arm_name} · {task.name}", len(rows))
            return [Prediction.from_record(r) for r in rows], info, True
        t0 = time.perf_counter()
        result = self.plan.arms[arm_name].predict(self.ctx, task, task.split("test"))
        p = self.plan
        info = {"seconds": round(time.perf_counter() - t0, 3), "created": _now(), "model": p.model_id,
                "device": p.device, "dtype": p.dtype, "batch_size": p.batch_size,
                "backend": self.ctx.backend.identity().to_record(), "costs": result.costs.to_record()}
        if any(r.input_shortened for r in result.predictions):  # for the note; the model is loaded: it answered
            info["context_window"] = context_window(self.ctx.get_model())
        self.cache.put(key, [r.to_record() for r in result.predictions], info)
        return result.predictions, info, False

    def run(self, arm_name: str, task: Task) -> None:
        key = self.key(self.plan.arms[arm_name], task)
        preds, info, cached = self.predictions(arm_name, task, key)
        shortened = sum(p.input_shortened for p in preds)
        if shortened:  # once per cell, cached or not
            self.ctx.log(shortened_note(f"{arm_name} · {task.name}", shortened, len(preds), info.get("context_window")))
        seed = self.plan.suite.spec.seed
        scored = score_predictions(task, preds, seed=seed, n_boot=self.opts.n_boot)
        inputs = {e.id: e.input for e in task.split("test")}
        rows = [ScoredPrediction(p, inputs.get(p.id, ""), scored.example_scores(i)) for i, p in enumerate(preds)]
        write_jsonl(self.run_dir / "predictions" / arm_name / f"{task.name}.jsonl", [r.to_record() for r in rows])
        entry: dict[str, Any] = {"metrics": scored.metrics, "mode": ", ".join(sorted({p.mode for p in preds}))}
        retrieval = retrieval_scores(task, preds, seed=seed)
        if retrieval:
            entry["retrieval"] = retrieval
        self.scores[task.name]["arms"][arm_name] = entry
        self.cells.append(_cell_record(arm_name, task.name, key, cached, info, preds))

    def scores_in_declared_order(self) -> dict[str, dict[str, Any]]:
        """Arms in the suite's order, whatever order they ran in."""
        order = {name: i for i, name in enumerate(self.plan.arms)}
        for s in self.scores.values():
            s["arms"] = dict(sorted(s["arms"].items(), key=lambda kv: order[kv[0]]))
        return self.scores


def _cell_record(arm: str, task: str, key: str, cached: bool, info: dict[str, Any],
                 preds: list[Prediction]) -> dict[str, Any]:
    n = max(1, len(preds))
    return {"arm": arm, "task": task, "cache_key": key, "cached": cached, "predicted_at": info["created"],
            "predict_s": info["seconds"], "n": len(preds), "prompt_tokens": sum(p.prompt_tokens for p in preds),
            "output_tokens": sum(p.output_tokens for p in preds),
            "inputs_shortened": sum(p.input_shortened for p in preds),
            "mean_latency_s": round(sum(p.latency_s for p in preds) / n, 5), "costs": info.get("costs", {})}


def _run_record(plan: Plan, opts: RunOptions, started: float) -> dict[str, Any]:
    """What run.json says from the start; timings and cells are added as the run goes."""
    suite, spec = plan.suite, plan.suite.spec
    return {
        "suite": spec.name, "suite_path": str(suite.path), "profile": suite.profile,
        "spec": spec.model_dump(mode="json"),
        "options": {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(opts).items()},
        "model": {"spec": plan.model_spec, "fingerprint": plan.model_id, "device": plan.device, "dtype": plan.dtype,
                  "batch_size": plan.batch_size,  # as resolved: options.batch_size is None for the default
                  "backend": plan.backend.identity().to_record()},
        "seed": spec.seed, "code_fingerprint": code_fingerprint(), "started": _iso(started),
        "timings": {"model_load_s": None, "wall_s": None},
        "data": {t: {"test_n": len(suite.tasks[t].split("test")), "full_sizes": suite.tasks[t].full_sizes,
                     "test_hash": examples_hash(suite.tasks[t].split("test"))} for t in plan.task_names},
        **environment(),
    }


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def _now() -> str:
    return _iso(time.time())
