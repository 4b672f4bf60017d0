"""The forgetting experiment: quality gates for the shipped control set, the run on a tiny suite and
a tiny random Llama (the run's trained models reused, never retrained; head variants left out), the
drop, its interval and the paired test on synthetic predictions, and `bench report` rebuilding it.
"""

import io
import json
from pathlib import Path

import pytest
import yaml
from rich.console import Console

from bench.__main__ import main
from bench.control import BASE_VARIANT, CONTROL_SUITE, load_control
from bench.control.make_control import FILES, LETTERS, lettered, mc_rows, render, short_rows
from bench.control.written_mc import COMMON_SENSE, KNOWLEDGE
from bench.errors import ConfigError
from bench.experiments.forgetting import plan_forgetting, run_forgetting
from bench.experiments.forgetting_figures import category, compare
from bench.metrics import normalize_answer
from bench.predictions import Prediction, ScoredPrediction
from bench.results import list_runs
from bench.runner import RunOptions, run_suite

DATA = CONTROL_SUITE.parent / "data"


def shipped(name: str) -> list[dict]:
    return [json.loads(line) for line in (DATA / name).read_text(encoding="utf-8").splitlines()]


# ---- the control set's quality gates ----------------------------------------------------------

def test_the_shipped_files_are_exactly_what_the_generator_writes():
    for name, rows in FILES.items():
        assert (DATA / name).read_text(encoding="utf-8") == render(rows()), "run python -m bench.control.make_control"


def test_ids_are_unique_and_the_set_holds_a_few_hundred_items():
    mc, short = shipped("general_mc.jsonl"), shipped("general_short.jsonl")
    ids = [r["id"] for r in mc + short]
    assert len(ids) == len(set(ids))
    assert len(mc) >= 300 and len(short) >= 100
    assert {category(r["id"]) for r in mc} == {"knowledge", "common_sense", "reading"}


def test_every_multiple_choice_answer_is_one_of_four_distinct_options_and_the_right_one():
    right = {q: a for q, a, *_ in KNOWLEDGE + COMMON_SENSE}
    for r in shipped("general_mc.jsonl"):
        options = r["options"]
        assert len(options) == 4 and len({o.casefold() for o in options}) == 4, r["id"]
        assert r["label"] in LETTERS and r["input"] == lettered(r["question"], options), r["id"]
        if r["question"] in right:  # written items: the lettered option is the answer written for it
            assert options[LETTERS.index(r["label"])] == right[r["question"]], r["id"]
    reading = [r for r in mc_rows() if r["category"] == "reading"]
    for r in reading:  # a reading answer stands in its passage; the wrong options do not all
        answer = r["options"][LETTERS.index(r["label"])]
        assert answer in r["question"].split("\n")[0], r["id"]


def test_no_question_is_asked_twice_anywhere_in_the_set():
    questions = [" ".join(r["question"].casefold().split()) for r in shipped("general_mc.jsonl")]
    questions += [" ".join(r["question"].casefold().split()) for r in shipped("general_short.jsonl")]
    assert len(questions) == len(set(questions))


def test_the_right_letter_is_spread_evenly_so_a_constant_answer_scores_a_quarter():
    labels = [r["label"] for r in shipped("general_mc.jsonl")]
    counts = [labels.count(letter) for letter in LETTERS]
    assert max(counts) - min(counts) <= 1


def test_every_short_answer_survives_normalisation():
    for r in short_rows():
        assert r["answers"] and all(normalize_answer(a) for a in r["answers"]), r["id"]  # '' would match ''
        assert all(len(normalize_answer(a).split()) <= 2 for a in r["answers"]), r["id"]


def test_the_control_suite_loads_through_the_suite_loader():
    control = load_control()
    assert {n: len(t.split("test")) for n, t in control.tasks.items()} == {"general_mc": 301, "general_short": 101}
    assert [a.name for a in control.spec.arms] == [BASE_VARIANT]
    assert {n: len(t.split("test")) for n, t in load_control(7).tasks.items()} == {"general_mc": 7, "general_short": 7}


# ---- running on a tiny suite ------------------------------------------------------------------

LORA = {"arm": "finetune", "name": "lora", "method": "lora", "rank": 4, "alpha": 8, "dropout": 0.0, "epochs": 1,
        "batch_size": 4, "max_length": 96, "evals_per_epoch": 1, "holdout": 0.0, "learning_rate": 0.01}
ARMS = [{"arm": "prompt", "name": "zero-shot"}, LORA, {"arm": "finetune", "name": "head", "method": "head",
                                                        "tasks": ["kind"]}]


def write_suite(root: Path, arms=ARMS) -> Path:
    (root / "data").mkdir(parents=True, exist_ok=True)
    rows = [{"id": f"c{i}", "text": f"clause {i} about {'money' if i % 2 else 'secrets'}",
             "label": "payment" if i % 2 else "confidentiality",
             "split": "train" if i < 12 else "validation" if i < 16 else "test"} for i in range(20)]
    (root / "data" / "c.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    qa = [{"id": f"q{i}", "q": f"question {i}", "a": "yes", "split": "train" if i < 8 else "test"} for i in range(10)]
    (root / "data" / "q.jsonl").write_text("".join(json.dumps(r) + "\n" for r in qa))
    tasks = [{"name": "kind", "kind": "classification", "data": {"file": "data/c.jsonl"}, "input_field": "text",
              "target_field": "label", "labels": ["payment", "confidentiality"], "instruction": "Classify the clause.",
              "metrics": ["accuracy"]},
             {"name": "yes", "kind": "qa", "data": {"file": "data/q.jsonl"}, "input_field": "q", "target_field": "a",
              "instruction": "Answer.", "metrics": ["exact_match"], "max_new_tokens": 2}]
    (root / "suite.yaml").write_text(yaml.safe_dump({"name": "tiny", "model": "random:tiny-llama", "seed": 0,
                                                     "tasks": tasks, "arms": arms}, sort_keys=False))
    return root / "suite.yaml"


def options(root: Path, **kw) -> RunOptions:
    return RunOptions(results=root / "results", device="cpu", dtype="float32", batch_size=4, n_boot=100, **kw)


def quiet() -> Console:
    return Console(file=io.StringIO(), width=160)


def test_the_plan_scores_each_trained_model_and_leaves_heads_out(tmp_path):
    plan = plan_forgetting(str(write_suite(tmp_path / "s")), options(tmp_path), control_limit=5)
    assert [m.cell for m in plan.models] == ["lora.kind", "lora.yes"]
    assert len(plan.skipped) == 1 and plan.skipped[0].startswith("head: method head")
    with pytest.raises(ConfigError, match="nothing could forget"):
        plan_forgetting(str(write_suite(tmp_path / "p", arms=[ARMS[0]])), options(tmp_path))
    with pytest.raises(ConfigError, match="--control-limit must be at least 1"):
        plan_forgetting(str(write_suite(tmp_path / "s")), options(tmp_path), control_limit=0)


def test_the_command_line_dry_run_lists_the_models_and_loads_none(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("bench.models.load_model", lambda *a, **k: pytest.fail("a dry run loaded a model"))
    suite = str(write_suite(tmp_path / "s"))
    assert main(["experiment", "forgetting", suite, "--dry-run", "--control-limit", "3"]) == 0
    out = capsys.readouterr().out
    assert "general_mc 3 items" in out and "lora.yes: lora as trained for yes" in out and "left out: head" in out
    prompts_only = str(write_suite(tmp_path / "p", arms=[ARMS[0]]))
    assert main(["experiment", "forgetting", prompts_only, "--dry-run"]) == 2  # a ConfigError's exit code
    assert "nothing could forget" in capsys.readouterr().err


def test_the_run_s_trained_models_answer_the_control_set_without_retraining(env, monkeypatch):
    path = write_suite(env / "s", arms=ARMS[:2])
    run_suite(str(path), options(env), quiet())

    def no_training(*args, **kwargs):
        raise AssertionError("the experiment trained a model the run had trained")

    monkeypatch.setattr("bench.training.recipe.train", no_training)
    out, result = run_forgetting(str(path), options(env), quiet(), control_limit=6)
    assert {(c.arm, c.task) for c in result.cells} == {(a, t) for a in ("base", "lora.kind", "lora.yes")
                                                       for t in ("general_mc", "general_short")}
    assert [(d.cell, d.control_task) for d in result.drops] == [
        ("lora.kind", "general_mc"), ("lora.yes", "general_mc"), ("lora.kind", "general_short"),
        ("lora.yes", "general_short")]
    assert all(d.base.n == 6 and d.low <= d.drop <= d.high and 0 <= d.p_value <= d.p_holm <= 1 for d in result.drops)
    trained = [c for c in result.cells if c.arm != BASE_VARIANT]
    assert all(c.train_s is not None and c.train_s > 0 for c in trained)  # the training record of the run's model
    # a fine-tune that answers differently from the base model must show it (lr 0.01 moves the tiny model)
    outputs = {arm: (out / "predictions" / arm / "general_short.jsonl").read_text() for arm in ("base", "lora.yes")}
    assert outputs["base"] != outputs["lora.yes"]

    for name in ("forgetting.json", "report.md", "report.html", "plots/forgetting.png"):
        assert (out / name).is_file(), name
    (listing,) = [r for r in list_runs(env / "results") if r.path == out]
    assert listing.kind == "forgetting" and listing.complete
    _, second = run_forgetting(str(path), options(env), quiet(), control_limit=6)
    assert all(c.cached for c in second.cells)  # a rerun recomputes nothing


def test_bench_report_rebuilds_the_report_without_a_model(env, monkeypatch):
    path = write_suite(env / "s", arms=ARMS[:2])
    out, _ = run_forgetting(str(path), options(env, tasks=["kind"]), quiet(), control_limit=4)
    (out / "report.md").unlink()
    monkeypatch.setattr("bench.models.load_model", lambda *a, **k: pytest.fail("the report loaded a model"))
    assert main(["report", str(out)]) == 0
    text = (out / "report.md").read_text()
    assert text.startswith("# tiny: forgetting") and "| lora.kind | kind | general_mc | accuracy |" in text


# ---- the figures ------------------------------------------------------------------------------

def rows(outputs: list[str], refs: list[str]) -> list[ScoredPrediction]:
    return [ScoredPrediction(Prediction(id=f"i{i}", prompt_hash="h", output=o, references=(r,), mode="loglik",
                                        latency_s=0.0, prompt_tokens=1, output_tokens=0))
            for i, (o, r) in enumerate(zip(outputs, refs))]


def test_a_model_that_lost_every_item_shows_a_significant_drop_and_an_unchanged_one_does_not():
    refs = ["A", "B", "C", "D"] * 5
    base = rows(refs, refs)
    lost = rows(["D", "C", "B", "A"] * 5, refs)
    r = compare(base, lost, "accuracy", seed=0, n_boot=200)
    assert (r["base"].value, r["tuned"].value, r["drop"]) == (1.0, 0.0, 1.0)
    assert r["test"] == "McNemar (exact)" and r["p_value"] == pytest.approx(2 * 0.5 ** 20)
    same = compare(base, rows(refs, refs), "accuracy", seed=0, n_boot=200)
    assert same["drop"] == 0 and same["p_value"] == 1.0
    half = compare(base, rows(refs[:10] + ["D", "C", "B", "A"] * 2 + ["A", "A"], refs), "accuracy", seed=0, n_boot=200)
    assert half["low"] <= half["drop"] <= half["high"] and 0 < half["drop"] < 1
