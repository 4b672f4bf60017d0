"""Inputs longer than the model's context: shortened in their middle, counted, said once per cell.

The tiny random Llama has a byte-level vocabulary, so an input's length in characters is about its
length in tokens; a copy of it is given a 256-position window so a few hundred words overflow it.
"""

from __future__ import annotations

import dataclasses
import io
import json
from pathlib import Path

import pytest
from rich.console import Console

from bench.arms import suite_context
from bench.arms.prompt import PromptArm
from bench.arms.rag import RagArm
from bench.config import PromptArm as PromptSpec
from bench.config import RagArm as RagSpec
from bench.context_limit import ELISION, PromptLimit, answer_tokens, fit_input, prompt_limit
from bench.errors import DataError
from bench.models import load_model
from bench.predictions import Prediction
from bench.prompts import render_prompt
from bench.runner import RunOptions, run_suite
from bench.suites import load_suite

MINI = "tests/fixtures/mini"
WINDOW = 256
LONG_TEXT = "OPENING clause. " + "The tenant shall keep the premises clean and tidy. " * 40 + "CLOSING words."


def with_window(window: int):
    """The tiny Llama with a context window of `window` tokens (its own copy: the shared one keeps 2048)."""
    lm = load_model("random:tiny-llama", device="cpu", dtype="float32", seed=0)
    lm.model.config.max_position_embeddings = window
    return lm


@pytest.fixture(scope="module")
def small_window():
    return with_window(WINDOW)


def with_long(task, field="input", text=LONG_TEXT):
    test = task.split("test")
    return test, [*test, dataclasses.replace(test[0], id="long", **{field: text})]


def predict(lm, task, examples, **spec):
    ctx = suite_context(load_suite(MINI), lambda: lm, batch_size=8)
    return PromptArm(PromptSpec(arm="prompt", name="z", **spec)).predict(ctx, task, examples).predictions


def test_an_over_long_input_loses_its_middle_and_the_prompt_then_fits(small_window):
    task = load_suite(MINI).tasks["sentiment"]
    render = lambda text: render_prompt(small_window.tokenizer, task.spec, text)  # noqa: E731
    limit = prompt_limit(small_window, task.spec, scored=True)
    assert limit == PromptLimit(WINDOW, answer_tokens(small_window.tokenizer, task.spec, scored=True))
    assert len(small_window.tokenizer(render(LONG_TEXT)).input_ids) > WINDOW  # the case is real

    fitted = fit_input(small_window.tokenizer, render, LONG_TEXT, limit, where="z · sentiment, example long")
    assert fitted.shortened and ELISION in fitted.text
    assert fitted.text.startswith("OPENING clause.") and fitted.text.endswith("CLOSING words.")
    assert len(small_window.tokenizer(fitted.prompt, add_special_tokens=False).input_ids) <= limit.prompt_tokens
    # the instruction and options before the input, the answer cue after it, are all kept
    before, after = render(LONG_TEXT).split(LONG_TEXT)
    assert fitted.prompt == before + fitted.text + after
    short = fit_input(small_window.tokenizer, render, "Great fun", limit, where="x")
    assert (short.text, short.prompt, short.shortened) == ("Great fun", render("Great fun"), False)


def test_scoring_an_over_long_input_keeps_within_the_window_and_leaves_short_ones_unchanged(small_window, tiny_lm):
    task = load_suite(MINI).tasks["sentiment"]
    short, both = with_long(task)
    preds = predict(small_window, task, both)
    alone = predict(tiny_lm, task, short)  # same weights (seed 0), the full 2,048-token window
    assert [p.input_shortened for p in preds] == [False] * len(short) + [True]
    assert [(p.output, p.label_scores, p.prompt_hash) for p in preds[:-1]] == \
        [(p.output, p.label_scores, p.prompt_hash) for p in alone]
    long = preds[-1]
    assert long.prompt_tokens + answer_tokens(small_window.tokenizer, task.spec, scored=True) <= WINDOW
    assert long.output in task.spec.labels
    record = long.to_record()
    assert record["input_shortened"] is True and Prediction.from_record(record).input_shortened
    assert "input_shortened" not in preds[0].to_record()  # rows of earlier runs keep their shape


def test_generating_after_an_over_long_input_leaves_room_for_every_new_token(small_window):
    task = load_suite(MINI).tasks["capitals"]
    _, both = with_long(task)
    preds = predict(small_window, task, both)
    assert [p.input_shortened for p in preds] == [False] * (len(both) - 1) + [True]
    assert preds[-1].prompt_tokens + task.spec.max_new_tokens <= WINDOW


def test_calibrated_few_shot_prompts_shorten_only_the_test_input(small_window):
    task = load_suite(MINI).tasks["sentiment"]
    _, both = with_long(task)
    preds = predict(small_window, task, both, shots=2, calibrate=True)
    assert preds[-1].input_shortened and not any(p.input_shortened for p in preds[:-1])
    assert preds[-1].prompt_tokens + answer_tokens(small_window.tokenizer, task.spec, scored=True) <= WINDOW


def test_a_prompt_too_long_without_its_input_is_refused_in_one_line(small_window):
    task = load_suite(MINI).tasks["sentiment"]
    spec = task.spec.model_copy(update={"instruction": "Read carefully. " * 30})
    limit = PromptLimit(WINDOW, 8)
    with pytest.raises(DataError) as err:
        fit_input(small_window.tokenizer, lambda t: render_prompt(small_window.tokenizer, spec, t), LONG_TEXT, limit,
                  where="z · sentiment, example long")
    message = str(err.value)
    assert "\n" not in message
    assert "z · sentiment, example long" in message and "256-token context" in message and "instruction" in message


def test_rag_shortens_an_over_long_input_and_keeps_room_for_retrieved_context():
    """Before, a bare prompt over the window left no context budget: 'no room for retrieved context'."""
    lm, window = with_window(512), 512
    task = load_suite(MINI).tasks["sentiment"]
    arm = RagArm(RagSpec(arm="rag", name="rag", mode="examples", k=2, max_context_tokens=100))
    long = dataclasses.replace(task.split("test")[0], id="long", input=LONG_TEXT)
    fitted = arm._input_that_fits(lm, task, long)
    assert fitted.shortened and fitted.text.endswith("CLOSING words.")
    prompt, trace, used, _ = arm._fit(lm, task, fitted.text, task.split("train")[:2], 100)
    assert trace.context_budget == 100 and used  # the context gets its whole budget
    assert len(lm.tokenizer(prompt, add_special_tokens=False).input_ids) <= window - task.spec.max_new_tokens
    assert not arm._input_that_fits(lm, task, task.split("test")[1]).shortened


def test_a_run_records_and_says_once_per_cell_how_many_inputs_were_shortened(tmp_path, monkeypatch):
    """6,000 tokens against the tiny Llama's 2,048 positions, through `bench run`, then from the cache."""
    monkeypatch.setenv("TRIDENT_CACHE", str(tmp_path / "cache"))
    suite = tmp_path / "suite"
    (suite / "data").mkdir(parents=True)
    rows = [{"id": "a", "text": "Loved it", "label": "positive", "split": "train"},
            {"id": "b", "text": "Great fun", "label": "positive", "split": "test"},
            {"id": "c", "text": "Dull and slow", "label": "negative", "split": "test"},
            {"id": "d", "text": "Dull " + "and slow " * 666 + "to the end", "label": "negative", "split": "test"}]
    (suite / "data" / "reviews.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (suite / "suite.yaml").write_text(Path(MINI, "suite.yaml").read_text().split("  - name: capitals")[0]
                                      .replace("data/sentiment.jsonl", "data/reviews.jsonl")
                                      .replace("name: mini", "name: long") + "arms:\n  - arm: prompt\n    name: zs\n")
    for cached in (False, True):
        out = io.StringIO()
        run_dir = run_suite(str(suite), RunOptions(results=tmp_path / "results", dtype="float32"),
                            Console(file=out, width=300))
        (cell,) = json.loads((run_dir / "run.json").read_text())["cells"]
        assert cell["cached"] is cached and cell["inputs_shortened"] == 1
        notes = [line for line in out.getvalue().splitlines() if "shortened" in line]
        assert len(notes) == 1 and notes[0].endswith(  # after the display's timestamp, where it adds one
            "zs · sentiment: 1 of 3 test examples longer than the model's 2,048-token context were shortened in "
            "the middle of the input"), notes
        written = [json.loads(line) for line in (run_dir / "predictions" / "zs" / "sentiment.jsonl").open()]
        assert [r.get("input_shortened", False) for r in written] == [False, False, True]
