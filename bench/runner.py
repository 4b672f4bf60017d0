"""`bench run`: every arm variant on every task, cached, scored, written to a run directory."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from .arms import ArmContext, build_arm
from .config import unknown_name
from .data import examples_hash, stable_hash
from .models import cache_root, choose_device, choose_dtype, fingerprint, load_model
from .scoring import retrieval_scores, score_floor, score_predictions
from .store import PredictionCache, code_fingerprint, environment, new_run_dir, write_json, write_jsonl
from .suites import Suite, load_suite


@dataclass
class RunOptions:
    """Command-line choices; anything left None comes from the suite."""

    arms: list[str] | None = None
    tasks: list[str] | None = None
    limit: int | None = None
    model: str | None = None
    device: str | None = None
    dtype: str | None = None
    batch_size: int | None = None  # None: 16 on CUDA, 8 on CPU (measured faster there)
    use_cache: bool = True
    results: Path = field(default_factory=lambda: Path("results"))
    trust_remote_code: bool = False
    n_boot: int = 1000
    retrain: bool = False


def select(kind: str, wanted: list[str] | None, known: list[str]) -> list[str]:
    if not wanted:
        return known
    for w in wanted:
        if w not in known:
            raise KeyError(unknown_name(kind, w, known))
    return [k for k in known if k in wanted]


def run_suite(name: str, opts: RunOptions, console: Console) -> Path:
    started = time.time()
    suite = load_suite(name, limit=opts.limit)
    spec = suite.spec
    model_spec = opts.model or spec.model
    device = choose_device(opts.device)
    dtype = choose_dtype(device, opts.dtype)
    model_id = fingerprint(model_spec, spec.seed)
    arm_names = select("arm variant", opts.arms, [a.name for a in spec.arms])
    task_names = select("task", opts.tasks, list(suite.tasks))
    cache = PredictionCache(cache_root())
    code = code_fingerprint()
    run_dir = new_run_dir(opts.results, spec.name)
    timings: dict[str, Any] = {"model_load_s": None}
    loaded: dict[str, Any] = {}

    def get_model():
        if "lm" not in loaded:
            t0 = time.perf_counter()
            with console.status(f"Loading {model_spec} on {device} ({dtype})"):
                loaded["lm"] = load_model(model_spec, device=device, dtype=dtype, seed=spec.seed,
                                          trust_remote_code=opts.trust_remote_code)
            timings["model_load_s"] = round(time.perf_counter() - t0, 2)
        return loaded["lm"]

    cells, scores = [], {}
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TimeRemainingColumn())
    with Progress(*columns, console=console, transient=False) as progress:
        def bar(label: str, total: int):
            tid = progress.add_task(label, total=total)
            return lambda n: progress.advance(tid, n)

        batch = opts.batch_size or (16 if device.startswith("cuda") else 8)
        ctx = ArmContext(get_model=get_model, seed=spec.seed, batch_size=batch, progress=bar, suite=suite,
                         retrain=opts.retrain, log=lambda message: progress.console.print(message))
        for task_name in task_names:
            task = suite.tasks[task_name]
            test = task.split("test")
            scores[task_name] = {"kind": task.spec.kind, "metrics": task.spec.metrics, "n": len(test),
                                 "floor": score_floor(task, test, seed=spec.seed), "arms": {}}
        for arm_spec in spec.arms:
            if arm_spec.name not in arm_names:
                continue
            arm = build_arm(arm_spec)
            for task_name in task_names:
                if arm_spec.tasks and task_name not in arm_spec.tasks:
                    continue
                task = suite.tasks[task_name]
                test = task.split("test")
                key = stable_hash({
                    "model": model_id, "device": device.split(":")[0], "dtype": dtype, "seed": spec.seed,
                    "arm": arm_spec.model_dump(exclude={"name", "tasks"}), "code": code,
                    "builds_on": _dependency_dump(spec, arm_spec),
                    "corpus": stable_hash(suite.corpus) if getattr(arm_spec, "arm", "") == "rag" else None,
                    "task": task.spec.model_dump(exclude={"limit", "metrics", "description"}),
                    "test": examples_hash(test), "train": examples_hash(task.split("train")),
                })
                hit = cache.get(key) if opts.use_cache and not opts.retrain else None
                if hit:
                    rows, info = hit
                    progress.add_task(f"{arm_spec.name} · {task_name} (cached)", total=len(rows), completed=len(rows))
                else:
                    t0 = time.perf_counter()
                    rows = arm.predict(ctx, task, test)
                    info = {"seconds": round(time.perf_counter() - t0, 3), "created": _now(), "model": model_id,
                            "device": device, "dtype": dtype, "costs": getattr(arm, "costs", {}).get(task_name, {})}
                    cache.put(key, rows, info)
                result = score_predictions(task, rows, seed=spec.seed, n_boot=opts.n_boot)
                inputs = {e.id: e.input for e in test}
                write_jsonl(run_dir / "predictions" / arm_spec.name / f"{task_name}.jsonl",
                            [{**r, "input": inputs.get(r["id"], "")} for r in rows])
                modes = sorted({r["mode"] for r in rows})
                scores[task_name]["arms"][arm_spec.name] = {"metrics": result, "mode": ", ".join(modes)}
                retrieval = retrieval_scores(task, rows, seed=spec.seed)
                if retrieval:
                    scores[task_name]["arms"][arm_spec.name]["retrieval"] = retrieval
                cells.append({"arm": arm_spec.name, "task": task_name, "cache_key": key, "cached": bool(hit),
                              "predicted_at": info["created"], "predict_s": info["seconds"], "n": len(rows),
                              "prompt_tokens": sum(r["prompt_tokens"] for r in rows),
                              "output_tokens": sum(r["output_tokens"] for r in rows),
                              "mean_latency_s": round(sum(r["latency_s"] for r in rows) / max(1, len(rows)), 5),
                              "costs": info.get("costs", {})})
    timings["wall_s"] = round(time.time() - started, 2)
    write_json(run_dir / "scores.json", {"suite": spec.name, "tasks": scores})
    write_json(run_dir / "run.json", {
        "suite": spec.name, "suite_path": str(suite.path), "spec": spec.model_dump(mode="json"),
        "options": {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(opts).items()},
        "model": {"spec": model_spec, "fingerprint": model_id, "device": device, "dtype": dtype},
        "seed": spec.seed, "code_fingerprint": code, "started": _iso(started), "timings": timings,
        "data": {t: {"test_n": len(suite.tasks[t].split("test")), "full_sizes": suite.tasks[t].full_sizes,
                     "test_hash": examples_hash(suite.tasks[t].split("test"))} for t in task_names},
        "cells": cells, **environment(),
    })
    return run_dir


def _dependency_dump(spec, arm_spec) -> dict | None:
    """A variant built on another (retrieval on a fine-tune) is keyed by that one's spec too."""
    base = getattr(arm_spec, "finetuned", None)
    if not base:
        return None
    found = next((a for a in spec.arms if a.name == base), None)
    if found is None:
        raise KeyError(unknown_name("arm variant", base, [a.name for a in spec.arms]))
    return found.model_dump(exclude={"name", "tasks"})


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def _now() -> str:
    return _iso(time.time())
