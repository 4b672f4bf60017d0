"""Verdicts priced at a query volume: total seconds = one-off training + volume x seconds per query,
the crossover volume between arms that cannot be told apart, and the setting's validation. Fixed
costs, no model."""

import json
import shutil
from pathlib import Path

import pytest

from bench.__main__ import main
from bench.config import DEFAULT_QUERY_VOLUME, SuiteError, parse_suite_yaml
from bench.decision import PairedTest, crossover, price, verdict
from bench.errors import ConfigError
from bench.predictions import Costs, RetrievalCosts, TrainingCosts
from bench.results import ArmCosts, ArmScores, Cell, Estimate, Floor, TaskResults
from bench.runner import RunOptions, plan_run

FIXTURES = Path(__file__).parent / "fixtures"
SMOKE = FIXTURES / "report_runs" / "legal-smoke" / "20261128-051822-21f4"

# The figures of the issue: rag-examples-k3 answers in 0.94 s, the LoRA in 0.20 s after 158 s of
# training; zero-shot is cheaper than both but significantly worse, so it is never priced.
COSTS = {"rag-examples-k3": ArmCosts(0.94, 900.0, 47.0, False),
         "lora": ArmCosts(0.20, 300.0, 10.0, False, {"train_wall_s": 158.0}),
         "zero-shot": ArmCosts(0.15, 300.0, 7.5, False)}


def _estimate(value: float) -> Estimate:
    return Estimate(value, value - 0.1, min(1.0, value + 0.1), 50)


def _clause_type() -> tuple[TaskResults, dict[str, dict[str, PairedTest]]]:
    arms = {"rag-examples-k3": ArmScores({"accuracy": _estimate(0.80)}, "loglik", None),
            "lora": ArmScores({"accuracy": _estimate(0.78)}, "loglik", None),
            "zero-shot": ArmScores({"accuracy": _estimate(0.40)}, "loglik", None)}
    task = TaskResults("clause_type", "classification", ["accuracy"], 50,
                       Floor("majority class (payment)", {"accuracy": Estimate(0.2, 0.1, 0.3, 50)}), arms)
    comparisons = {"lora": {"accuracy": PairedTest("accuracy", 0.02, -0.08, 0.12, 0.6, "McNemar (exact)", 50, 0.6)},
                   "zero-shot": {"accuracy": PairedTest("accuracy", 0.40, 0.25, 0.55, 0.0001, "McNemar (exact)", 50,
                                                        0.0002)}}
    return task, comparisons


def _verdict(costs: dict[str, ArmCosts] = COSTS, **kw) -> str:
    task, comparisons = _clause_type()
    return verdict("clause_type", task, "accuracy", "rag-examples-k3", comparisons, costs, **kw)


def test_the_crossover_is_where_training_is_repaid_by_cheaper_queries():
    x = crossover("rag-examples-k3", COSTS["rag-examples-k3"], "lora", COSTS["lora"])
    assert (x.cheaper_from, x.cheaper_below) == ("lora", "rag-examples-k3")
    assert x.extra_train_s == 158.0 and x.saved_s_per_query == 0.74 and not x.within_noise
    assert x.queries == 214  # 158 / 0.74 = 213.5: the first whole query volume at which lora costs less
    assert COSTS["lora"].total_s(213) > COSTS["rag-examples-k3"].total_s(213)
    assert COSTS["lora"].total_s(214) < COSTS["rag-examples-k3"].total_s(214)
    assert price(COSTS, ["rag-examples-k3", "lora"], 213).cheapest == "rag-examples-k3"
    assert price(COSTS, ["rag-examples-k3", "lora"], 214).cheapest == "lora"
    # cheaper per query and no dearer up front: cheaper at every volume, so no crossover
    assert crossover("zero-shot", COSTS["zero-shot"], "rag-examples-k3", COSTS["rag-examples-k3"]) is None


def test_verdict_at_the_default_volume_names_the_lora_and_where_the_answer_flips():
    text = _verdict()
    assert DEFAULT_QUERY_VOLUME == 10_000
    assert ("At 10,000 queries the cheapest of the arms that cannot be told apart is lora (2,158 s in all); "
            "below 214 queries rag-examples-k3 is cheaper.") in text
    assert "The cheapest of them" not in text  # the old ranking by training time first is gone
    assert "is zero-shot" not in text  # significantly worse: not a candidate however cheap


def test_verdict_under_the_crossover_names_the_untrained_arm():
    text = _verdict(query_volume=100)
    assert ("At 100 queries the cheapest of the arms that cannot be told apart is rag-examples-k3 (94 s in all); "
            "from 214 queries lora is cheaper.") in text


def test_a_gpu_run_says_its_seconds_are_gpu_seconds():
    assert "lora (2,158 s in all, on a GPU: NVIDIA H200);" in _verdict(gpu="NVIDIA H200")
    assert "GPU" not in _verdict()


def test_a_crossover_behind_a_per_query_difference_within_timing_noise_says_so():
    costs = {**COSTS, "rag-examples-k3": ArmCosts(0.22, 900.0, 11.0, False)}  # 0.02 s saved: within 25%
    x = crossover("rag-examples-k3", costs["rag-examples-k3"], "lora", costs["lora"])
    assert x.queries == 7901 and x.within_noise
    assert ("is lora (2,158 s in all); below 7,901 queries rag-examples-k3 is cheaper (a per-query difference "
            "within timing noise, 25%).") in _verdict(costs)


def test_a_rag_variant_on_a_fine_tune_carries_the_fine_tune_s_training_seconds():
    training = TrainingCosts("lora", "per_task", ("clause_type",), 400, 50, 158.0, 90_000, 800.0, 900.0,
                             "process peak RSS", 16_384, 135_000_000, 60, 50, False, "float32")
    retrieval = RetrievalCosts("examples", 3, {"items": 400, "index": "flat"}, 2.0, 4.0, 250.0, 400, 1024, 0.0)
    record = Costs(training=training, trained_model="abc", cache_hit=True, builds_on="lora",
                   retrieval=retrieval).to_record()  # what the rag arm reports; run.json stores it
    cell = Cell("rag-on-lora", "clause_type", 50, False, "2026-01-01T00:00:00Z", 20.0, 0.40, 25_000, record)
    rag_on_lora = cell.costs()  # how the decision layer reads a cell (RunResults.costs)
    assert rag_on_lora.train_s == 158.0
    assert rag_on_lora.total_s(10_000) == pytest.approx(158.0 + 10_000 * 0.40)
    x = crossover("rag-examples-k3", COSTS["rag-examples-k3"], "rag-on-lora", rag_on_lora)
    assert (x.cheaper_from, x.extra_train_s, x.queries) == ("rag-on-lora", 158.0, 293)  # 158 / 0.54 = 292.6
    # beside the fine-tune it builds on, both carry the same training: only the queries differ
    assert crossover("lora", COSTS["lora"], "rag-on-lora", rag_on_lora) is None
    assert price({"lora": COSTS["lora"], "rag-on-lora": rag_on_lora}, ["rag-on-lora", "lora"], 10).cheapest == "lora"


def _suite_with(tmp_path: Path, line: str) -> Path:
    suite = tmp_path / "suite"
    shutil.copytree(FIXTURES / "mini", suite)
    path = suite / "suite.yaml"
    path.write_text(path.read_text() + line + "\n")
    return path


@pytest.mark.parametrize("value", [0, -5])
def test_a_query_volume_that_is_not_positive_is_a_located_error(tmp_path, value):
    with pytest.raises(SuiteError) as e:
        parse_suite_yaml(_suite_with(tmp_path, f"query_volume: {value}"))
    [problem] = e.value.problems
    assert problem.line is not None and "query_volume" in str(problem)
    assert f"query_volume must be a positive number of queries (got {value})" in str(problem)
    with pytest.raises(ConfigError, match=r"--query-volume: query_volume must be a positive number"):
        RunOptions(query_volume=value)


def test_the_suite_s_volume_and_the_run_option_reach_the_resolved_spec(tmp_path):
    path = _suite_with(tmp_path, "query_volume: 500")
    assert parse_suite_yaml(FIXTURES / "mini" / "suite.yaml").query_volume == DEFAULT_QUERY_VOLUME
    assert parse_suite_yaml(path).query_volume == 500
    assert plan_run(str(path), RunOptions()).suite.spec.model_dump()["query_volume"] == 500
    assert plan_run(str(path), RunOptions(query_volume=42)).suite.spec.model_dump()["query_volume"] == 42


def _smoke_with_issue_costs(tmp_path: Path) -> Path:
    """The stored legal-smoke run with clause_type's costs set to the issue's: 2-shot (best) 0.94 s per
    query, lora 0.20 s after 158 s of training, zero-shot (also tied) dearer than both."""
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    for name in ("run.json", "scores.json"):
        shutil.copy(SMOKE / name, run_dir / name)
    shutil.copytree(SMOKE / "predictions", run_dir / "predictions")
    run = json.loads((run_dir / "run.json").read_text())
    latency = {"2-shot": 0.94, "lora": 0.20, "zero-shot": 1.50}
    for c in run["cells"]:
        if c["task"] == "clause_type":
            c["mean_latency_s"] = latency[c["arm"]]
            if c["arm"] == "lora":
                c["costs"]["train_wall_s"] = 158.0
    (run_dir / "run.json").write_text(json.dumps(run))
    return run_dir


def test_bench_report_prices_at_the_run_s_volume_or_the_option_s_and_records_it(tmp_path, capsys):
    run_dir = _smoke_with_issue_costs(tmp_path)
    assert main(["report", str(run_dir)]) == 0
    decision = json.loads((run_dir / "decision.json").read_text())["clause_type"]
    assert decision["query_volume"] == 10_000 and decision["pricing"]["cheapest"] == "lora"
    assert decision["totals_s"] == {"zero-shot": 15_000.0, "2-shot": 9_400.0, "lora": 2_158.0}
    assert ("At 10,000 queries the cheapest of the arms that cannot be told apart is lora (2,158 s in all); "
            "below 214 queries 2-shot is cheaper.") in decision["verdict"]
    md = (run_dir / "report.md").read_text()
    assert "| clause_type | lora | 0.2 | 703.7 | 158.0 | 21.878 | 2,158 |" in md
    assert "| clause_type | 2-shot | lora | 158 | 0.74 | 214 |" in md  # the crossover table
    assert "total s at 10,000 queries" in capsys.readouterr().out

    assert main(["report", str(run_dir), "--query-volume", "100"]) == 0
    decision = json.loads((run_dir / "decision.json").read_text())["clause_type"]
    assert decision["query_volume"] == 100 and decision["pricing"]["cheapest"] == "2-shot"
    assert ("At 100 queries the cheapest of the arms that cannot be told apart is 2-shot (94 s in all); "
            "from 214 queries lora is cheaper.") in decision["verdict"]
    assert "total s at 100 queries" in (run_dir / "report.md").read_text()

    assert main(["report", str(run_dir), "--query-volume", "0"]) == 2
    assert "query_volume must be a positive number of queries (got 0)" in capsys.readouterr().err
