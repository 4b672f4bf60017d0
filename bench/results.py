"""A run directory, loaded once into typed, frozen objects: the only module of the report layer
that knows the layout of run.json, scores.json and the prediction JSONL files.

Everything downstream (the decision analysis, the tables, the plots, `bench compare`) works on
`RunResults` rather than on nested dicts, so a key of scores.json is spelled in one place. Run
directories written by earlier versions load too: keys that were added later are optional here.

A run loads only when every cell finished (run.json's status 'reporting' or 'complete'); a run
stopped or failed while predicting has no scores and is refused in one line that says so.
`list_runs` reads only run.json, to list every run of a results folder with its status.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .config import DEFAULT_QUERY_VOLUME
from .errors import ConfigError
from .leakage import LEAKAGE_FILE, LeakageReport
from .predictions import ScoredPrediction
from .stats import Estimate
from .store import COMPLETE, FAILED, REPORTING, RUNNING, read_json, read_jsonl

__all__ = ["ArmCosts", "ArmScores", "Cell", "Estimate", "Floor", "RunListing", "RunResults", "ScoredPrediction",
           "TaskResults", "list_runs", "load_predictions", "load_run", "run_status"]

Scalar = int | float | str | bool | None
# Keys under which an arm may report its training time; the first one present is used.
TRAIN_TIME_KEYS = ("train_s", "train_wall_s", "training_s", "train_seconds")


@dataclass(frozen=True)
class Floor:
    """The no-skill baseline of a task (majority class, most frequent answer or a lead baseline)."""

    name: str
    """What the floor is, e.g. 'majority class (payment)'."""
    metrics: dict[str, Estimate]
    """Metric name -> the floor's score with its bootstrap interval."""


@dataclass(frozen=True)
class ArmScores:
    """One arm variant's scores on one task."""

    metrics: dict[str, Estimate]
    """Metric name -> score with its 95% bootstrap interval, in the task's metric order."""
    mode: str
    """How the predictions were made, e.g. 'loglik+calibrated' or 'generate' (several joined by ', ')."""
    retrieval: dict[str, Estimate] | None
    """recall@1, recall@k and MRR of the gold document, for retrieval arms on tasks that name one."""


@dataclass(frozen=True)
class TaskResults:
    """Everything scores.json says about one task."""

    name: str
    """The task's name in the suite."""
    kind: str
    """classification, qa or generation."""
    metrics: list[str]
    """The task's metrics; the first one decides which arm is best."""
    n: int
    """Number of test examples scored."""
    floor: Floor
    """The no-skill baseline every arm is shown beside."""
    arms: dict[str, ArmScores]
    """Arm variant -> its scores, in the order the run made them (may be empty)."""

    @property
    def retrieval(self) -> dict[str, dict[str, Estimate]]:
        """Arm variant -> retrieval scores, for the arms that have them."""
        return {arm: scores.retrieval for arm, scores in self.arms.items() if scores.retrieval}


@dataclass(frozen=True)
class ArmCosts:
    """What one (arm variant, task) cost: the runner's measurements plus what the arm reported."""

    latency_s: float | None
    """Mean seconds per test query."""
    prompt_tokens: float | None
    """Mean prompt tokens per test query (one decimal)."""
    predict_s: float | None
    """Seconds to predict the whole test set."""
    cached: bool | None
    """Whether the predictions came from the cache."""
    reported: dict[str, Scalar] = field(default_factory=dict)
    """Scalar costs the arm reported itself (training time, memory, index size, ...), in its order."""

    BASE_KEYS = ("latency_s", "prompt_tokens", "predict_s", "cached")

    @property
    def train_s(self) -> float | None:
        """Training time in seconds, under whichever key the arm reported it; None if it did not train."""
        for key in TRAIN_TIME_KEYS:
            value = self.to_json().get(key)
            if isinstance(value, (int, float)):
                return float(value)
        return None

    def total_s(self, queries: int) -> float | None:
        """One-off training seconds plus `queries` times the seconds per query; None without a measured
        latency. A retrieval variant built on a fine-tune reports that fine-tune's training as its own
        (the rag arm's Costs carry the provider's TrainingCosts), so its total includes it."""
        if self.latency_s is None:
            return None
        return (self.train_s or 0.0) + queries * self.latency_s

    def to_json(self) -> dict[str, Scalar]:
        """The flat form decision.json stores: the four measured keys first, then the reported ones."""
        return {"latency_s": self.latency_s, "prompt_tokens": self.prompt_tokens, "predict_s": self.predict_s,
                "cached": self.cached, **self.reported}

    @classmethod
    def from_json(cls, costs: dict[str, Any]) -> ArmCosts:
        """Read the flat form back (decision.json, or any dict with some of the keys)."""
        return cls(costs.get("latency_s"), costs.get("prompt_tokens"), costs.get("predict_s"), costs.get("cached"),
                   {k: v for k, v in costs.items() if k not in cls.BASE_KEYS})


@dataclass(frozen=True)
class Cell:
    """One (arm variant, task) of the run, as run.json records it."""

    arm: str
    """The arm variant's name."""
    task: str
    """The task's name."""
    n: int
    """Number of predictions."""
    cached: bool
    """Whether the predictions came from the cache."""
    predicted_at: str
    """When the predictions were made (UTC, ISO 8601): earlier than the run when cached."""
    predict_s: float
    """Seconds the arm took to predict the test set when the predictions were made."""
    mean_latency_s: float
    """Mean seconds per query."""
    prompt_tokens: int
    """Prompt tokens over all predictions."""
    reported: dict[str, Any]
    """What the arm reported (`costs` in run.json): scalars, and loss curves for fine-tunes."""
    output_tokens: int = 0
    """Generated tokens over all predictions (0 where labels were scored, not generated)."""

    def costs(self) -> ArmCosts:
        """Per-query latency and prompt tokens, plus the scalar costs the arm reported."""
        extra = {k: v for k, v in self.reported.items() if isinstance(v, (int, float, str)) or v is None}
        base = {"latency_s": self.mean_latency_s, "prompt_tokens": round(self.prompt_tokens / max(1, self.n), 1),
                "predict_s": self.predict_s, "cached": self.cached}
        # An arm's own figure under a measured key wins, as it always has in decision.json.
        return ArmCosts.from_json({**base, **extra})


@dataclass(frozen=True)
class RunResults:
    """A run directory: run.json and scores.json read once, predictions on demand."""

    run_dir: Path
    """Where the run lives; predictions are read from it."""
    suite: str
    """The suite's name."""
    tasks: dict[str, TaskResults]
    """Task name -> its scores, in the suite's order."""
    model_spec: str
    """The model spec the arms used."""
    device: str
    """The device the run used, e.g. 'cpu' or 'cuda:0'."""
    dtype: str
    """The model's dtype, e.g. 'float32'."""
    seed: int
    """The suite's seed (also seeds the paired tests)."""
    git_sha: str | None
    """The project's commit, '-dirty' when it had changes; None outside a git checkout."""
    started: str | None
    """When the run started (UTC, ISO 8601)."""
    wall_s: float
    """Seconds the whole run took."""
    model_load_s: float | None
    """Seconds to load the model; None when every prediction was cached."""
    arm_kinds: dict[str, str]
    """Arm variant -> its arm ('prompt', 'finetune', 'rag')."""
    cells: list[Cell]
    """Every (arm variant, task) the run made, in order."""
    test_hashes: dict[str, str | None]
    """Task -> hash of its test examples (runs compare only where these agree)."""
    query_volume: int = DEFAULT_QUERY_VOLUME
    """Queries the verdicts price each arm at: run.json's resolved spec (the suite's `query_volume`, or
    `bench run --query-volume`); the default for runs recorded before the setting existed."""
    gpu: str | None = None
    """The GPU that ran the arms (run.json's hardware), when the run's device was CUDA; None on CPU. Every
    cost is seconds of the run's device, so a verdict priced on a GPU says so."""
    max_new_tokens: dict[str, int] = field(default_factory=dict)
    """Task -> its generation budget (run.json's resolved spec), so an output that ran into it can be told
    apart; empty for runs recorded without the spec's tasks."""
    status: str = COMPLETE
    """'complete', or 'reporting' when every cell is scored but the report files were never all written
    (a kill or a full disk while reporting): `bench report` finishes it (see bench.store)."""
    leakage: LeakageReport | None = None
    """The leakage checks the run made before its cells (leakage.json); None for runs recorded without."""

    def cell(self, arm: str, task: str) -> Cell | None:
        # the last record wins, as it did when the cells were gathered into a dict
        return next((c for c in reversed(self.cells) if c.arm == arm and c.task == task), None)

    def costs(self, arm: str, task: str) -> ArmCosts:
        """The cell's costs; an arm without a cell (an inconsistent run) has no measurements."""
        cell = self.cell(arm, task)
        return cell.costs() if cell else ArmCosts(None, 0.0, None, None)

    def predictions(self, arm: str, task: str) -> list[ScoredPrediction]:
        return load_predictions(self.run_dir, arm, task)

    @property
    def loss_curves(self) -> dict[str, list]:
        """Loss curves the arms reported: '<arm> · <task> · <name>' -> [[step, loss], ...]."""
        curves: dict[str, list] = {}
        for c in self.cells:
            for key, value in c.reported.items():
                if "loss" not in key:
                    continue
                if isinstance(value, dict):  # {'train': [[step, loss], ...], 'validation': [...]}
                    curves.update({f"{c.arm} · {c.task} · {name}": points for name, points in value.items()
                                   if isinstance(points, list)})
                elif isinstance(value, list):
                    curves[f"{c.arm} · {c.task} · {key}"] = value
        return curves


# The report files: a run from before run.json had a status is complete when they are all there.
REPORT_FILES = ("decision.json", "report.md", "report.html", "results.csv")


def run_status(run_dir: Path, record: dict[str, Any]) -> str:
    """run.json's status (`record` is its content). Runs written before the field existed wrote run.json
    after their last cell, so their cells all finished; they are complete once their report files are there."""
    status = record.get("status")
    if isinstance(status, str):
        return status
    return COMPLETE if all((Path(run_dir) / name).is_file() for name in REPORT_FILES) else REPORTING


def unfinished_cells(run_dir: Path, record: dict[str, Any]) -> str | None:
    """Why the run has no scores to report (it stopped or failed while predicting), or None."""
    status = run_status(run_dir, record)
    if status in (REPORTING, COMPLETE):
        return None
    if status == RUNNING:
        why = "it stopped before its scores were saved (killed, out of disk, or still running)"
    elif status == FAILED:
        why = f"it failed before its scores were saved ({record.get('error') or 'no error recorded'})"
    else:
        why = f"run.json's status is '{status}', which this version of trident does not know"
    return f"{run_dir}: unfinished run: {why}; rerun the same `bench run` (finished cells come from the cache)"


def load_run(run_dir: Path) -> RunResults:
    """Read run.json and scores.json of `run_dir` (each once) into a RunResults; a run whose cells did
    not all finish is a ConfigError saying so."""
    run_dir = Path(run_dir)
    run = _read(run_dir, "run.json")
    problem = unfinished_cells(run_dir, run)
    if problem:
        raise ConfigError(problem)
    scores = _read(run_dir, "scores.json")
    model, timings = run["model"], run["timings"]
    return RunResults(
        run_dir=run_dir, suite=scores["suite"],
        tasks={name: _task(name, t) for name, t in scores["tasks"].items()},
        model_spec=model["spec"], device=model["device"], dtype=model["dtype"], seed=run["seed"],
        git_sha=run.get("git_sha"), started=run.get("started"), wall_s=timings["wall_s"],
        model_load_s=timings["model_load_s"],
        arm_kinds={a["name"]: a["arm"] for a in run.get("spec", {}).get("arms", [])},
        cells=[_cell(c) for c in run["cells"]],
        test_hashes={t: d.get("test_hash") for t, d in run.get("data", {}).items()},
        query_volume=run.get("spec", {}).get("query_volume", DEFAULT_QUERY_VOLUME),
        gpu=(run.get("hardware", {}).get("gpu") or "a GPU") if model["device"].startswith("cuda") else None,
        max_new_tokens={t["name"]: t["max_new_tokens"] for t in run.get("spec", {}).get("tasks", [])
                        if t.get("max_new_tokens")},
        status=run_status(run_dir, run),
        leakage=LeakageReport.from_json(_read(run_dir, LEAKAGE_FILE)) if (run_dir / LEAKAGE_FILE).is_file() else None)


@dataclass(frozen=True)
class RunListing:
    """One directory under results/<suite>/, as `bench ls --runs` shows it."""

    path: Path
    suite: str
    """The suite folder it lies in."""
    kind: str
    """'run', an experiment's name for its directory ('knowledge-update', 'sweep', 'learning-curve',
    'seed-spread', 'prompt-sensitivity', 'forgetting') or '?' (neither: no record file)."""
    status: str
    """'complete', or what is unfinished about it: a run status, 'unfinished' or 'unreadable'."""
    started: str | None
    """When it started (UTC, ISO 8601), where run.json says."""
    note: str
    """What to do about an unfinished directory ('' for a complete one)."""

    @property
    def complete(self) -> bool:
        return self.status == COMPLETE


EXPERIMENT_RECORDS = {"knowledge-update-": "knowledge_update.json", "sweep-": "sweep.json",
                      "learning-curve-": "learning_curve.json", "seed-spread-": "seed_spread.json",
                      "prompt-sensitivity-": "prompt_sensitivity.json", "forgetting-": "forgetting.json"}
"""An experiment's directory name prefix -> its record file, which it writes last (its end marker)."""


def list_runs(results: Path) -> list[RunListing]:
    """Every directory results/<suite>/<run-id>, oldest first within a suite; reads run.json only."""
    results = Path(results)
    if not results.is_dir():
        return []
    return [_listing(d) for suite in sorted(results.iterdir()) if suite.is_dir()
            for d in sorted(suite.iterdir()) if d.is_dir() and not d.name.startswith(".")]


def _listing(d: Path) -> RunListing:
    for prefix, record_file in EXPERIMENT_RECORDS.items():
        if d.name.startswith(prefix):
            done = (d / record_file).is_file()
            return RunListing(d, d.parent.name, prefix.rstrip("-"), COMPLETE if done else "unfinished", None,
                              "" if done else f"no {record_file}: it stopped or failed before the end; rerun it")
    if not (d / "run.json").is_file():
        return RunListing(d, d.parent.name, "?", "unfinished", None,
                          "no run.json: not a run (an older trident left failed runs empty); safe to delete")
    try:
        record = read_json(d / "run.json")
    except (ValueError, OSError):  # invalid JSON or UTF-8 (both ValueErrors), or unreadable
        record = None
    if not isinstance(record, dict):
        return RunListing(d, d.parent.name, "run", "unreadable", None, "run.json is not a JSON object")
    status = run_status(d, record)
    if status == REPORTING:
        note = f"every cell is scored but the report was never finished: `bench report {d}` finishes it"
    else:
        note = (unfinished_cells(d, record) or "").removeprefix(f"{d}: ")
    return RunListing(d, d.parent.name, "run", status, record.get("started"), note)


def load_predictions(run_dir: Path, arm: str, task: str) -> list[ScoredPrediction]:
    path = Path(run_dir) / "predictions" / arm / f"{task}.jsonl"
    if not path.is_file():
        raise ConfigError(f"{path}: missing; the run directory is incomplete (was it copied without predictions/?)")
    return [ScoredPrediction.from_record(r) for r in read_jsonl(path)]


def _read(run_dir: Path, name: str) -> dict[str, Any]:
    path = run_dir / name
    if not path.is_file():
        raise ConfigError(f"{run_dir}: not a run directory (no {name}); expected results/<suite>/<run-id>")
    try:
        return read_json(path)
    except json.JSONDecodeError as e:
        raise ConfigError(f"{path}: not valid JSON ({e.msg} at line {e.lineno}); was the run interrupted?") from e


def _estimates(metrics: dict[str, dict[str, Any]]) -> dict[str, Estimate]:
    return {name: Estimate(e["value"], e["low"], e["high"], e["n"]) for name, e in metrics.items()}


def _task(name: str, t: dict[str, Any]) -> TaskResults:
    arms = {a: ArmScores(_estimates(r["metrics"]), r["mode"],
                         _estimates(r["retrieval"]) if r.get("retrieval") else None)
            for a, r in t["arms"].items()}
    floor = Floor(t["floor"]["name"], _estimates(t["floor"]["metrics"]))
    return TaskResults(name, t["kind"], t["metrics"], t["n"], floor, arms)


def _cell(c: dict[str, Any]) -> Cell:
    return Cell(arm=c["arm"], task=c["task"], n=c["n"], cached=c["cached"], predicted_at=c["predicted_at"],
                predict_s=c["predict_s"], mean_latency_s=c["mean_latency_s"], prompt_tokens=c["prompt_tokens"],
                reported=c.get("costs") or {}, output_tokens=c.get("output_tokens") or 0)
