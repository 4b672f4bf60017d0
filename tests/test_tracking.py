"""`--track mlflow`: a finished run logged to a local MLflow file store, read back with MLflow's own
client; a missing package refused in one line before a run starts; nothing of it on the default path."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bench import tracking
from bench.__main__ import main

SMOKE = Path(__file__).parent / "fixtures" / "report_runs" / "legal-smoke" / "20261128-051822-21f4"


@pytest.fixture()
def run_copy(tmp_path, monkeypatch):
    """A copy of a finished legal-smoke run (prompt, rag and LoRA variants), the working directory a
    fresh folder and no tracking settings from the environment."""
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_NAME", "MLFLOW_ALLOW_FILE_STORE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    copy = tmp_path / "results" / "legal-smoke" / SMOKE.name
    shutil.copytree(SMOKE, copy)
    return copy


def logged(store: Path):
    """The one MLflow run in the store's `trident-legal-smoke` experiment."""
    import os

    from mlflow.tracking import MlflowClient

    os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"  # the store is MLflow 3's maintenance-mode file store
    try:
        client = MlflowClient(tracking_uri=str(store))
        experiment = client.get_experiment_by_name("trident-legal-smoke")
        (run,) = client.search_runs([experiment.experiment_id])
        return client, run
    finally:
        os.environ.pop("MLFLOW_ALLOW_FILE_STORE")


def test_report_track_mlflow_logs_params_metrics_costs_verdicts_and_files(run_copy, tmp_path, capsys):
    pytest.importorskip("mlflow")
    assert main(["report", str(run_copy), "--track", "mlflow"]) == 0
    assert "tracked: " in capsys.readouterr().out
    client, run = logged(tmp_path / "mlruns")  # ./mlruns: the default store
    params, metrics, tags = run.data.params, run.data.metrics, run.data.tags
    record = json.loads((run_copy / "run.json").read_text())
    lora = next(a for a in record["spec"]["arms"] if a["name"] == "lora")
    assert params["spec.arms.lora.rank"] == str(lora["rank"])
    assert params["model.spec"] == "random:tiny-llama" and params["seed"] == "0"
    scores = json.loads((run_copy / "scores.json").read_text())["tasks"]
    for task, s in scores.items():
        for arm, entry in s["arms"].items():
            for metric, e in entry["metrics"].items():
                key = f"{task}/{arm}/{metric}"
                bounds = (metrics[key], metrics[key + "_low"], metrics[key + "_high"])
                assert bounds == (e["value"], e["low"], e["high"])
    decision = json.loads((run_copy / "decision.json").read_text())
    for task, d in decision.items():
        assert tags[f"verdict/{task}"] == d["verdict"] and tags[f"best/{task}"] == d["best"]
        for arm, total in d["totals_s"].items():
            if total is not None:
                assert metrics[f"{task}/{arm}/cost/total_s_at_query_volume"] == pytest.approx(total, abs=1e-3)
            assert metrics[f"{task}/{arm}/cost/latency_s"] == d["costs"][arm]["latency_s"]
    assert any(k.startswith("clause_type/lora/cost/train") for k in metrics)  # the LoRA's training cost
    files = {f.path for f in client.list_artifacts(run.info.run_id)}
    assert {"report.md", "report.html", "results.csv", "decision.json", "run.json", "plots"} <= files
    assert run.info.status == "FINISHED" and run.info.run_name == SMOKE.name


def test_mlflow_tracking_uri_is_honoured(run_copy, tmp_path, monkeypatch):
    pytest.importorskip("mlflow")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", str(tmp_path / "elsewhere"))
    assert main(["report", str(run_copy), "--track", "mlflow"]) == 0
    assert not (tmp_path / "mlruns").exists()
    _, run = logged(tmp_path / "elsewhere")
    assert run.data.tags["trident.suite"] == "legal-smoke"


def test_a_store_mlflow_cannot_use_is_one_line_and_the_run_stays_complete(run_copy, monkeypatch, capsys):
    pytest.importorskip("mlflow")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "nosuchscheme://store")
    assert main(["report", str(run_copy), "--track", "mlflow"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: mlflow (nosuchscheme://store): ") and err.count("\n") == 1
    assert "the trident run itself is complete" in err
    assert json.loads((run_copy / "run.json").read_text())["status"] == "complete"


def test_a_missing_package_is_one_line_before_the_run_starts(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(tracking.TRACKERS, "mlflow", "no_such_package_for_trident_tests")
    # the suite does not exist either: the tracker is checked first, before anything is loaded
    assert main(["run", "no-such-suite", "--track", "mlflow", "--results", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--track mlflow needs the package" in err and "trident-bench[track]" in err
    assert main(["report", str(tmp_path), "--track", "wandb"]) == 2
    assert "unknown tracker (--track) 'wandb'" in capsys.readouterr().err


def test_the_default_path_never_imports_mlflow():
    code = ("import sys, bench.__main__ as m, bench.runner, bench.report; m.parser(); "
            "print('mlflow' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_names_mlflow_refuses_are_made_valid():
    assert tracking._key("clause_type/rag+lora/retrieval/recall@4") == "clause_type/rag_lora/retrieval/recall_4"
