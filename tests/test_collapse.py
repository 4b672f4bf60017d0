"""Predictions that collapsed (one label, empty, identical or truncated outputs) are named in the verdict
and warned about in every report format. Fixed predictions, no model: the run directory of the issue
(a LoRA answering the majority label for every test example) is written by hand."""

import json
from html import escape
from pathlib import Path

from rich.console import Console

from bench.collapse import COLLAPSE_MIN_EXAMPLES, COLLAPSE_SHARE, diagnose
from bench.decision import TaskDecision
from bench.metrics import get_metric
from bench.predictions import Prediction, ScoredPrediction
from bench.report import terminal_tables, write_report
from bench.stats import bootstrap


def _rows(outputs: list[str], references: list[str], *, inputs: list[str] | None = None,
          output_tokens: list[int] | None = None, mode: str = "loglik") -> list[ScoredPrediction]:
    """One ScoredPrediction per output, as results.load_predictions reads them from a run directory."""
    inputs = inputs or [f"input {i}" for i in range(len(outputs))]
    tokens = output_tokens or [0] * len(outputs)
    return [ScoredPrediction(Prediction(f"ex{i}", "h", out, (ref,), mode, 0.1, 100, tok), inp)
            for i, (out, ref, inp, tok) in enumerate(zip(outputs, references, inputs, tokens))]


# The issue in small: 57% of the test references are 'other' (three other labels share the rest)
REFS = ["other"] * 8 + ["payment"] * 3 + ["termination"] * 2 + ["warranties"]


def test_one_label_for_every_example_is_a_collapse():
    c = diagnose("lora", "clauses", "classification", _rows(["other"] * 14, REFS))
    assert (c.kind, c.share, c.output) == ("one_label", 1.0, "other")
    assert c.detail == "predicted 'other' for 14 of 14 test examples (100%), while the references hold it for 8 (57%)"
    assert c.warning() == ("lora: collapsed onto one label: predicted 'other' for 14 of 14 test examples (100%), "
                           "while the references hold it for 8 (57%)")


def test_a_varied_classifier_or_a_test_set_that_really_is_one_label_is_not_flagged():
    varied = ["other"] * 7 + ["payment"] * 4 + ["termination"] * 3  # 50% one label: a lean, not a collapse
    assert diagnose("2-shot", "clauses", "classification", _rows(varied, REFS)) is None
    # 19 of 20 references are 'payment': answering 'payment' every time is right, not a collapse
    concentrated = ["payment"] * 19 + ["other"]
    assert COLLAPSE_SHARE == 0.9
    assert diagnose("lora", "clauses", "classification", _rows(["payment"] * 20, concentrated)) is None
    # ... but a label the references hold for only 85% of examples (under the bar) is one
    assert diagnose("lora", "clauses", "classification",
                    _rows(["payment"] * 20, ["payment"] * 17 + ["other"] * 3)).kind == "one_label"


def test_too_few_examples_to_call_one_label_a_collapse():
    n = COLLAPSE_MIN_EXAMPLES - 1
    assert diagnose("zero-shot", "sentiment", "classification", _rows(["negative"] * n, ["positive"] * n)) is None


def test_empty_outputs_for_most_examples():
    refs = ["3 months"] * 10
    c = diagnose("rag-k2", "tenancy_qa", "qa", _rows([""] * 5 + ["  \n"] + ["3 months"] * 4, refs, mode="generate"))
    assert (c.kind, c.share) == ("empty_outputs", 0.6)
    assert c.detail == "gave an empty output for 6 of 10 test examples (60%)"
    assert c.sentence() == ("rag-k2 gave an empty output for 60% of test examples (empty outputs): its score is not "
                            "evidence that it can do the task.")
    # half is not most
    assert diagnose("rag-k2", "tenancy_qa", "qa", _rows([""] * 5 + ["3 months"] * 5, refs, mode="generate")) is None


def test_the_same_output_for_different_inputs():
    refs = [f"summary {i}" for i in range(10)]
    outputs = ["The tenant pays rent."] * 9 + ["summary 9"]
    c = diagnose("lora", "plain_summary", "generation", _rows(outputs, refs, mode="generate"))
    assert (c.kind, c.share, c.output) == ("identical_outputs", 0.9, "The tenant pays rent.")
    assert c.detail == ("gave the same output ('The tenant pays rent.') for 9 of 10 distinct test inputs (90%), "
                        "while the references hold it for 0 (0%)")
    assert c.sentence() == ("lora gave the same output ('The tenant pays rent.') for 90% of test inputs (collapsed "
                            "onto one output): its score is that one answer's, not evidence that it can do the task.")
    # the same answer to the same question asked ten times is no collapse
    same_input = ["How long is the notice period?"] * 10
    assert diagnose("lora", "plain_summary", "generation",
                    _rows(outputs, refs, inputs=same_input, mode="generate")) is None
    # nor is 'yes' to yes/no questions whose answer is 'Yes' nearly every time
    yes = ["Yes"] * 19 + ["no"]
    assert diagnose("zero-shot", "tenancy_qa", "qa", _rows(["yes"] * 20, yes, mode="generate")) is None


def test_outputs_that_run_into_max_new_tokens():
    outputs = [f"The clause says that {i} and then it goes on" for i in range(10)]
    tokens = [32] * 8 + [12, 20]
    rows = _rows(outputs, [f"ref {i}" for i in range(10)], output_tokens=tokens, mode="generate")
    c = diagnose("zero-shot", "plain_summary", "generation", rows, max_new_tokens=32)
    assert (c.kind, c.share, c.max_new_tokens) == ("truncated_outputs", 0.8, 32)
    assert c.detail == "stopped at the 32-token limit (max_new_tokens) for 8 of 10 test examples (80%)"
    assert c.sentence() == ("zero-shot ran into the 32-token limit for 80% of test examples (truncated outputs): its "
                            "score rates answers cut off mid-way; raise the task's max_new_tokens or find why it does "
                            "not stop.")
    assert diagnose("zero-shot", "plain_summary", "generation", rows, max_new_tokens=64) is None
    assert diagnose("zero-shot", "plain_summary", "generation", rows) is None  # a run that did not record it


# ---- the run of the issue, end to end through the report (no model) ----

# zero-shot spreads its answers over the labels and gets 5 of 14 right (0.357); lora answers 'other' every
# time and gets the 8 'other' examples right (0.571): the best score, and exactly the majority floor's
VARIED = ["other"] * 4 + ["payment"] * 5 + ["termination"] * 2 + ["warranties"] * 2 + ["other"]
ARMS = {"zero-shot": VARIED, "lora": ["other"] * 14}
LORA_SENTENCE = ("lora predicted 'other' for 100% of test examples (collapsed onto one label): its score is the "
                 "majority floor's, not evidence that it learned the task.")
LORA_WARNING = ("⚠ lora: collapsed onto one label: predicted 'other' for 14 of 14 test examples (100%), while the "
                "references hold it for 8 (57%)")


def _estimate(metric: str, outputs: list[str]) -> dict:
    return bootstrap(get_metric(metric), outputs, [[r] for r in REFS], n_boot=200, seed=0).to_dict()


def _write_run(root: Path, arms: dict[str, list[str]]) -> Path:
    """run.json, scores.json and predictions/ as `bench run` leaves them, for one classification task."""
    run_dir = root / "clauses" / "20260101-000000-test"
    metrics = ["accuracy", "macro_f1"]
    floor = ["other"] * len(REFS)  # the majority class of the train split
    arm_scores = {a: {"metrics": {m: _estimate(m, out) for m in metrics}, "mode": "loglik"} for a, out in arms.items()}
    scores = {"suite": "clauses", "tasks": {"clause_type": {
        "kind": "classification", "metrics": metrics, "n": len(REFS), "arms": arm_scores,
        "floor": {"name": "majority class (other)", "metrics": {m: _estimate(m, floor) for m in metrics}}}}}
    cells = [{"arm": a, "task": "clause_type", "n": len(REFS), "cached": False, "predicted_at": "2026-01-01T00:00:00Z",
              "predict_s": 1.4, "mean_latency_s": 0.1, "prompt_tokens": 1400, "costs": {}} for a in arms]
    run = {"model": {"spec": "random:tiny-llama", "device": "cpu", "dtype": "float32"}, "seed": 0,
           "timings": {"wall_s": 10.0, "model_load_s": 1.0}, "cells": cells,
           "spec": {"arms": [{"name": a, "arm": "finetune" if a == "lora" else "prompt"} for a in arms],
                    "tasks": [{"name": "clause_type", "max_new_tokens": 32}]}}
    for arm, outputs in arms.items():
        path = run_dir / "predictions" / arm / "clause_type.jsonl"
        path.parent.mkdir(parents=True)
        path.write_text("".join(json.dumps(r.to_record()) + "\n" for r in _rows(outputs, REFS)))
    (run_dir / "scores.json").write_text(json.dumps(scores))
    (run_dir / "run.json").write_text(json.dumps(run))
    return run_dir


def test_the_verdict_says_the_best_arm_collapsed_right_after_its_score(tmp_path):
    paths = write_report(_write_run(tmp_path, ARMS))
    decision = json.loads(paths["decision"].read_text())["clause_type"]
    assert decision["best"] == "lora"
    text = decision["verdict"]
    assert text.startswith("On clause_type, lora scores highest on accuracy: 0.571 [")
    assert "Its interval includes the floor (0.571)" in text
    # the collapse comes before any comparison with the other arms
    assert LORA_SENTENCE in text and text.index(LORA_SENTENCE) < text.index("zero-shot")
    assert decision["collapses"] == [{
        "arm": "lora", "task": "clause_type", "kind": "one_label", "share": 1.0, "output": "other",
        "max_new_tokens": None,
        "detail": "predicted 'other' for 14 of 14 test examples (100%), while the references hold it for 8 (57%)"}]
    assert TaskDecision.from_json(decision).collapse("lora").kind == "one_label"
    assert TaskDecision.from_json(decision).collapse("zero-shot") is None


def test_the_verdict_names_a_collapsed_arm_the_best_is_compared_with(tmp_path):
    good = REFS[:12] + ["other", "other"]  # 12 of 14 right
    paths = write_report(_write_run(tmp_path, {"2-shot": good, "lora": ["other"] * 14}))
    text = json.loads(paths["decision"].read_text())["clause_type"]["verdict"]
    assert text.startswith("On clause_type, 2-shot scores highest on accuracy: 0.857 [")
    assert LORA_SENTENCE in text and text.index("There is no significant difference from lora") < text.index(
        LORA_SENTENCE)


def test_the_warning_and_marker_appear_in_every_report_format(tmp_path):
    run_dir = _write_run(tmp_path, ARMS)
    paths = write_report(run_dir)
    md = paths["md"].read_text(encoding="utf-8")
    assert "| lora ⚠ | 0.571 [" in md and "| zero-shot | " in md
    assert f"**Warnings:**\n\n- {LORA_WARNING}\n" in md
    assert LORA_SENTENCE in md  # in the verdicts
    html = paths["html"].read_text(encoding="utf-8")
    assert f'<ul class="warnings"><li>{escape(LORA_WARNING)}</li></ul>' in html
    assert "<td>lora ⚠</td>" in html and escape(LORA_SENTENCE) in html
    console = Console(width=400, record=True)
    for table in terminal_tables(run_dir, json.loads(paths["decision"].read_text())):
        console.print(table)
    out = console.export_text()
    assert "lora ⚠" in out
    assert LORA_WARNING in " ".join(out.split())  # the caption wraps at the table's width


def test_an_arm_that_did_not_collapse_gets_no_warning(tmp_path):
    paths = write_report(_write_run(tmp_path, {"zero-shot": VARIED}))
    decision = json.loads(paths["decision"].read_text())["clause_type"]
    assert decision["collapses"] == [] and "collapsed" not in decision["verdict"]
    md = paths["md"].read_text(encoding="utf-8")
    assert "Warnings" not in md and "⚠" not in md


def test_a_decision_json_from_before_the_collapses_still_loads(tmp_path):
    paths = write_report(_write_run(tmp_path, ARMS))
    decision = json.loads(paths["decision"].read_text())
    del decision["clause_type"]["collapses"]
    assert TaskDecision.from_json(decision["clause_type"]).collapses == []


def test_a_repeated_answer_from_the_dataset_reaches_the_warnings_escaped():
    from bench.render_html import html_warnings
    from bench.render_markdown import markdown_warnings
    from bench.tables import Table

    script = "<script>alert(1)</script>"
    c = diagnose("lora", "qa", "qa", _rows([script] * 6, [f"ref {i}" for i in range(6)], mode="generate"))
    table = Table("qa", ["arm variant"], [], warnings=[c.warning()])
    assert script not in "".join(markdown_warnings(table)) and "&lt;script&gt;" in "".join(markdown_warnings(table))
    assert script not in "".join(html_warnings(table)) and "&lt;script&gt;" in "".join(html_warnings(table))
