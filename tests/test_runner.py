import json

import pytest
from rich.console import Console

from bench.arms.prompt import calibrate, label_from_text, pick_demos
from bench.runner import RunOptions, run_suite
from bench.suites import load_suite

MINI = "tests/fixtures/mini"


@pytest.fixture()
def isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("TRIDENT_CACHE", str(tmp_path / "cache"))
    return tmp_path


def run(tmp_path, **kw):
    return run_suite(MINI, RunOptions(results=tmp_path / "results", dtype="float32", **kw), Console(quiet=True))


def test_run_writes_predictions_scores_and_describes_itself(isolated):
    run_dir = run(isolated)
    info = json.loads((run_dir / "run.json").read_text())
    scores = json.loads((run_dir / "scores.json").read_text())
    for key in ("spec", "model", "seed", "versions", "hardware", "git_sha", "timings", "data", "cells"):
        assert key in info
    assert info["model"]["dtype"] == "float32"
    assert set(scores["tasks"]) == {"sentiment", "capitals", "shorten"}
    assert set(scores["tasks"]["sentiment"]["arms"]) == {"zero-shot", "2-shot", "zero-shot-gen"}
    assert scores["tasks"]["sentiment"]["arms"]["2-shot"]["mode"] == "loglik+calibrated"
    est = scores["tasks"]["sentiment"]["arms"]["zero-shot"]["metrics"]["accuracy"]
    assert est["low"] <= est["value"] <= est["high"] and est["n"] == 4
    rows = [json.loads(l) for l in (run_dir / "predictions" / "zero-shot" / "sentiment.jsonl").read_text().splitlines()]
    assert len(rows) == 4
    for r in rows:
        assert {"id", "prompt_hash", "output", "references", "scores", "latency_s"} <= set(r)
        assert r["output"] in ("positive", "negative")
        assert r["scores"]["accuracy"] == float(r["output"] in r["references"])
    from bench.report import write_report

    assert "| zero-shot |" in write_report(run_dir)["md"].read_text()


def test_second_run_is_served_from_cache_with_identical_outputs(isolated):
    first = run(isolated)
    second = run(isolated)
    info = json.loads((second / "run.json").read_text())
    assert all(c["cached"] for c in info["cells"])
    assert info["timings"]["model_load_s"] is None  # the model is never loaded
    for f in (first / "predictions").rglob("*.jsonl"):
        assert f.read_text() == (second / "predictions" / f.relative_to(first / "predictions")).read_text()


def test_changing_the_dtype_invalidates_every_cell(isolated):
    run(isolated)
    third = run_suite(MINI, RunOptions(results=isolated / "r", dtype="bfloat16"), Console(quiet=True))
    info = json.loads((third / "run.json").read_text())
    assert not any(c["cached"] for c in info["cells"])  # dtype is part of every key


def test_changing_one_arm_variant_invalidates_only_its_cells(isolated):
    import shutil

    suite_dir = isolated / "mini"
    shutil.copytree(MINI, suite_dir)
    opts = RunOptions(results=isolated / "results", dtype="float32")
    first = json.loads((run_suite(str(suite_dir), opts, Console(quiet=True)) / "run.json").read_text())
    yaml = suite_dir / "suite.yaml"
    text = yaml.read_text()
    assert text.count("    shots: 2\n") == 1
    yaml.write_text(text.replace("    shots: 2\n", "    shots: 1\n"))  # only the 2-shot variant changes
    second = json.loads((run_suite(str(suite_dir), opts, Console(quiet=True)) / "run.json").read_text())
    cells = {(c["arm"], c["task"]): c for c in second["cells"]}
    assert set(cells) == {(c["arm"], c["task"]) for c in first["cells"]}
    recomputed = {k for k, c in cells.items() if not c["cached"]}
    assert recomputed == {("2-shot", t) for t in ("sentiment", "capitals", "shorten")}
    keys = {(c["arm"], c["task"]): c["cache_key"] for c in first["cells"]}
    assert all((c["cache_key"] == keys[k]) == (k[0] != "2-shot") for k, c in cells.items())


def test_calibration_removes_a_constant_label_bias():
    import numpy as np

    raw = np.log(np.array([[0.9, 0.1], [0.7, 0.3], [0.75, 0.25]]))
    content_free = np.log(np.array([[0.8, 0.2], [0.8, 0.2], [0.8, 0.2]]))
    assert list(raw.argmax(1)) == [0, 0, 0]
    assert list(calibrate(raw, content_free).argmax(1)) == [0, 1, 1]


def test_label_from_text_maps_free_text_to_labels():
    task = load_suite(MINI).tasks["sentiment"]
    assert label_from_text(task, "Positive.") == "positive"
    assert label_from_text(task, "I think it is negative overall") == "negative"
    assert label_from_text(task, "no idea") == ""


def test_demos_are_seeded_and_from_train():
    task = load_suite(MINI).tasks["sentiment"]
    a, b = pick_demos(task, 2, 0), pick_demos(task, 2, 0)
    assert a == b and all(d.split == "train" for d in a)


def test_the_task_chooses_how_every_arm_totals_label_tokens():
    import dataclasses

    import numpy as np

    from bench.arms import suite_context
    from bench.arms.prompt import PromptArm
    from bench.config import PromptArm as PromptSpec
    from bench.generate import score_continuations
    from bench.models import load_model
    from bench.prompts import render_prompt

    suite = load_suite(MINI)
    task = suite.tasks["sentiment"]
    assert task.spec.label_score == "sum"
    lm = load_model("random:tiny-llama", device="cpu", dtype="float32", seed=0)
    ctx = suite_context(suite, lambda: lm, batch_size=8)
    examples = task.split("test")
    prompts = [render_prompt(lm.tokenizer, task.spec, e.input) for e in examples]
    res = score_continuations(lm.model, lm.tokenizer, prompts, [task.spec.verbalise(l) for l in task.spec.labels])
    for how in ("sum", "mean"):
        t = dataclasses.replace(task, spec=task.spec.model_copy(update={"label_score": how}))
        preds = PromptArm(PromptSpec(arm="prompt", name="z")).predict(ctx, t, examples).predictions
        got = np.array([[p.label_scores[l] for l in task.spec.labels] for p in preds])
        np.testing.assert_allclose(got, res.label_scores(how), atol=1e-3)
