"""`--track mlflow`: a finished run, logged to an experiment tracker.

One MLflow run per trident run, in the experiment `trident-<suite>` (or MLFLOW_EXPERIMENT_NAME):
the run's configuration as params (resolved suite spec, model, options), every metric of every arm
variant and task with its bootstrap bounds, the floors, the costs and totals the verdicts priced,
the verdicts and best arms as tags (and the run's description), and the report files as artifacts.
It goes to MLFLOW_TRACKING_URI, else to ./mlruns, MLflow's local file store, which needs no server
and no network.

MLflow is an optional extra (`pip install 'trident-bench[track]'`, mlflow-skinny): it is imported
only here and only when asked for, and `check_tracker` refuses a missing package before a run starts.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .decision import TaskDecision, decisions_from_json
from .errors import ConfigError, ResourceError, unknown_name
from .results import RunResults, load_run
from .store import read_json

TRACKERS = {"mlflow": "mlflow"}
"""Tracker name -> the Python package it needs."""
TRACK_HELP = ("log the finished run to an experiment tracker: mlflow (params, metrics with CI bounds, costs, "
              "verdicts, report files) to MLFLOW_TRACKING_URI, else ./mlruns; needs pip install 'trident-bench[track]'")
ARTIFACTS = ("report.md", "report.html", "results.csv", "decision.json", "scores.json", "run.json")
"""Files of the run directory logged as artifacts (and plots/, when the report drew any)."""
DEFAULT_STORE = "mlruns"


@dataclass(frozen=True)
class Tracked:
    """Where a run was logged."""

    uri: str
    """The tracking URI (a folder for the local file store)."""
    experiment: str
    run_id: str


def check_tracker(name: str | None) -> None:
    """Refuse an unknown tracker, or one whose package is not installed, before anything runs."""
    if name is None:
        return
    if name not in TRACKERS:
        raise ConfigError(unknown_name("tracker (--track)", name, list(TRACKERS)))
    if importlib.util.find_spec(TRACKERS[name]) is None:
        raise ResourceError(f"--track {name} needs the package '{TRACKERS[name]}': pip install 'trident-bench[track]' "
                            "(or pip install mlflow-skinny)")


def track_run(name: str, run_dir: Path) -> Tracked:
    """Log the finished run in `run_dir` to the tracker `name` (only mlflow so far)."""
    check_tracker(name)
    return log_to_mlflow(load_run(run_dir))


def log_to_mlflow(run: RunResults) -> Tracked:
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    uri = os.environ.get("MLFLOW_TRACKING_URI") or str(Path(DEFAULT_STORE).resolve())
    experiment = os.environ.get("MLFLOW_EXPERIMENT_NAME") or f"trident-{run.suite}"
    decisions = _decisions(run)
    try:
        with _file_store_allowed(uri):
            client = MlflowClient(tracking_uri=uri)
            found = client.get_experiment_by_name(experiment)
            experiment_id = found.experiment_id if found else client.create_experiment(experiment)
            tags = {**run_tags(run, decisions), "mlflow.note.content": _description(run, decisions)}
            run_id = client.create_run(experiment_id, run_name=run.run_dir.name, tags=tags).info.run_id
            try:
                _log(client, run_id, run, decisions)
            except BaseException:
                client.set_terminated(run_id, "FAILED")  # not left 'running' in the tracker
                raise
            client.set_terminated(run_id)
    except MlflowException as e:
        raise ResourceError(f"mlflow ({uri}): {str(e).strip().splitlines()[0]}; the trident run itself is complete, "
                            f"`bench report {run.run_dir} --track mlflow` logs it again") from e
    return Tracked(uri, experiment, run_id)


def _log(client: Any, run_id: str, run: RunResults, decisions: Mapping[str, TaskDecision]) -> None:
    """Params, metrics and the report files, into the MLflow run `run_id`."""
    from mlflow.entities import Metric, Param

    now = int(time.time() * 1000)
    client.log_batch(run_id, metrics=[Metric(k, v, now, 0) for k, v in run_metrics(run, decisions).items()],
                     params=[Param(k, v) for k, v in run_params(run).items()])
    for name in ARTIFACTS:
        if (run.run_dir / name).is_file():
            client.log_artifact(run_id, str(run.run_dir / name))
    if (run.run_dir / "plots").is_dir():
        client.log_artifacts(run_id, str(run.run_dir / "plots"), artifact_path="plots")


@contextmanager
def _file_store_allowed(uri: str) -> Iterator[None]:
    """MLflow 3 refuses its file store (./mlruns) unless MLFLOW_ALLOW_FILE_STORE is true: it is in
    maintenance mode in favour of a database, which mlflow-skinny cannot create. It still works,
    offline, and is what we log to by default; the user's own setting wins."""
    local = "://" not in uri or uri.startswith("file:")
    if not local or "MLFLOW_ALLOW_FILE_STORE" in os.environ:
        yield
        return
    os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"
    try:
        yield
    finally:
        os.environ.pop("MLFLOW_ALLOW_FILE_STORE", None)


def run_params(run: RunResults) -> dict[str, str]:
    """The run's configuration, flattened: `spec.arms.<variant>.<field>`, `spec.tasks.<task>.<field>`,
    `model.*`, `options.*`, plus the seed, commit and query volume."""
    record = read_json(run.run_dir / "run.json")
    flat: dict[str, str] = {"seed": str(run.seed), "git_sha": str(run.git_sha), "query_volume": str(run.query_volume),
                            "profile": str(record.get("profile"))}
    for section in ("spec", "model", "options"):
        flat.update(_flatten(section, record.get(section, {})))
    return {_key(k): v[:6000] for k, v in flat.items()}  # MLflow keeps at most 6000 characters of a value


def run_metrics(run: RunResults, decisions: Mapping[str, TaskDecision]) -> dict[str, float]:
    """`<task>/<variant>/<metric>` with `_low` and `_high` (95% bootstrap bounds), the floors as variant
    `floor`, retrieval scores under `retrieval/`, and every numeric cost under `cost/`."""
    out: dict[str, float] = {}
    for name, task in run.tasks.items():
        for metric, e in task.floor.metrics.items():
            out.update(_estimate(f"{name}/floor/{metric}", e))
        for arm, scores in task.arms.items():
            for metric, e in scores.metrics.items():
                out.update(_estimate(f"{name}/{arm}/{metric}", e))
            for metric, e in (scores.retrieval or {}).items():
                out.update(_estimate(f"{name}/{arm}/retrieval/{metric}", e))
        d = decisions.get(name)
        for arm, costs in (d.costs if d else {}).items():
            out.update({f"{name}/{arm}/cost/{k}": float(v) for k, v in costs.to_json().items()
                        if isinstance(v, (int, float)) and not isinstance(v, bool)})
            total = d.total_s(arm) if d else None
            if total is not None:
                out[f"{name}/{arm}/cost/total_s_at_query_volume"] = total
    out["run/wall_s"] = run.wall_s
    if run.model_load_s is not None:
        out["run/model_load_s"] = run.model_load_s
    return {_key(k): v for k, v in out.items()}


def run_tags(run: RunResults, decisions: Mapping[str, TaskDecision]) -> dict[str, str]:
    """The verdict and best arm of each task, and where the run lives."""
    tags = {"trident.suite": run.suite, "trident.run_dir": str(run.run_dir.resolve()), "trident.model": run.model_spec}
    for task, d in decisions.items():
        tags[_key(f"verdict/{task}")] = d.verdict[:8000]
        tags[_key(f"best/{task}")] = d.best
    return tags


def _description(run: RunResults, decisions: Mapping[str, TaskDecision]) -> str:
    lines = [f"trident run {run.run_dir.name} of suite {run.suite} ({run.model_spec}, {run.device})"]
    lines += [f"- {d.verdict}" for d in decisions.values()]
    return "\n".join(lines)[:8000]


def _decisions(run: RunResults) -> dict[str, TaskDecision]:
    path = run.run_dir / "decision.json"
    return decisions_from_json(read_json(path)) if path.is_file() else {}


def _estimate(key: str, e: Any) -> dict[str, float]:
    return {key: e.value, f"{key}_low": e.low, f"{key}_high": e.high}


def _flatten(prefix: str, value: Any) -> Iterator[tuple[str, str]]:
    """Nested dicts become dotted keys; a list of named dicts (arms, tasks) is keyed by each name;
    any other value is written as JSON (strings as they are)."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _flatten(f"{prefix}.{k}", v)
    elif isinstance(value, list) and value and all(isinstance(v, dict) and "name" in v for v in value):
        for v in value:
            yield from _flatten(f"{prefix}.{v['name']}", {k: x for k, x in v.items() if k != "name"})
    else:
        yield prefix, value if isinstance(value, str) else json.dumps(value)


def _key(key: str) -> str:
    """MLflow's names allow letters, digits, '_', '-', '.', ' ', ':' and '/': anything else ('+' in a
    variant name, '@' in recall@k) becomes '_'."""
    return re.sub(r"[^\w\-. :/]", "_", key)[:250]
