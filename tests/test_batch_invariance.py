"""A prediction must not depend on the batch size: the same prompts scored or decoded at batch 1, 3
and 8 give the same label scores (within 1e-4 nats, fp32 and bf16; on this project's CPUs they are
identical to the bit), the same predicted labels and the same generated text. Before rows were
padded to a width of their own (bench.generate.row_width), bf16 scores of these prompts moved by
1.0e-3 nats between batch sizes on the tiny model, and legal's clause scores by up to 0.29 nats on
SmolLM2-135M."""

import json

import numpy as np
import pytest
from rich.console import Console

from bench.generate import WIDTH_STEP, _batches, generate, row_width, score_continuations
from bench.models import load_model

BATCH_SIZES = (1, 3, 8)
TOLERANCE = 1e-4  # nats, on summed label log-likelihoods of about -20

HEAD = "<|im_start|>user\nClassify the clause. Options: termination; liability; governing law.\n\nClause: "
INPUTS = ["x", "The agreement ends on notice.", "Each party keeps the other's secrets for five years after it ends",
          "Law of New York governs.", "Liability is capped at fees paid in the prior twelve months, except for gross "
          "negligence or wilful misconduct of either party, or a breach of its confidentiality obligations.",
          "ok", "Termination for convenience on 30 days' written notice to the other party.", "Neither party may "
          "disclose.", "A", "Damages are limited.", "This contract is governed by English law and the courts of "
          "London have exclusive jurisdiction over any dispute arising from it or its formation."]
# a shared prefix (as the chat template gives every prompt), then own parts of 14 to 187 tokens
PROMPTS = [HEAD + text + "<|im_end|>\n<|im_start|>assistant\n" for text in INPUTS]
LABELS = ["termination<|im_end|>", "liability<|im_end|>", "governing law<|im_end|>"]


@pytest.fixture(scope="module", params=["float32", "bfloat16"])
def lm(request):
    return load_model("random:tiny-llama", device="cpu", dtype=request.param, seed=0)


def test_prompts_span_several_widths(lm):
    """Otherwise every batch would hold rows of one width anyway and the tests below prove nothing."""
    lengths = [len(lm.tokenizer(p, add_special_tokens=False).input_ids) for p in PROMPTS]
    assert len({row_width(n) for n in lengths}) >= 4


@pytest.mark.parametrize("batch_size", BATCH_SIZES[1:])
def test_label_scores_and_predictions_do_not_depend_on_the_batch_size(lm, batch_size):
    alone = score_continuations(lm.model, lm.tokenizer, PROMPTS, LABELS, batch_size=1).logprob_sum
    batched = score_continuations(lm.model, lm.tokenizer, PROMPTS, LABELS, batch_size=batch_size).logprob_sum
    np.testing.assert_allclose(batched, alone, rtol=0, atol=TOLERANCE)
    assert list(batched.argmax(1)) == list(alone.argmax(1))


@pytest.mark.parametrize("batch_size", BATCH_SIZES[1:])
def test_greedy_outputs_do_not_depend_on_the_batch_size(lm, batch_size):
    alone = generate(lm.model, lm.tokenizer, PROMPTS, max_new_tokens=8, batch_size=1)
    batched = generate(lm.model, lm.tokenizer, PROMPTS, max_new_tokens=8, batch_size=batch_size)
    assert batched.texts == alone.texts
    assert list(batched.output_tokens) == list(alone.output_tokens)


def test_an_arm_predicts_the_same_labels_and_scores_at_every_batch_size(lm):
    """The whole classification path (template, demonstrations, calibration) through the 2-shot arm."""
    from bench.arms import suite_context
    from bench.arms.prompt import PromptArm
    from bench.config import PromptArm as PromptSpec
    from bench.suites import load_suite

    suite = load_suite("tests/fixtures/mini")
    task = suite.tasks["sentiment"]
    arm = PromptArm(PromptSpec(arm="prompt", name="2-shot", shots=2, calibrate=True))
    runs = [arm.predict(suite_context(suite, lambda: lm, batch_size=b), task, task.split("test")).predictions
            for b in BATCH_SIZES]
    first = runs[0]
    for preds in runs[1:]:
        assert [p.output for p in preds] == [p.output for p in first]
        for p, q in zip(preds, first):
            assert p.label_scores.keys() == q.label_scores.keys()
            assert all(abs(p.label_scores[k] - q.label_scores[k]) <= TOLERANCE for k in p.label_scores)


def test_head_features_do_not_depend_on_the_batch_size(lm):
    from bench.training.head import features

    alone, _ = features(lm.model, lm.tokenizer, PROMPTS, batch_size=1)
    batched, _ = features(lm.model, lm.tokenizer, PROMPTS, batch_size=8)
    np.testing.assert_allclose(batched.numpy(), alone.numpy(), rtol=0, atol=1e-5)


def test_a_row_is_padded_to_a_width_of_its_own_and_batches_never_mix_widths():
    assert [row_width(n) for n in (1, WIDTH_STEP, WIDTH_STEP + 1)] == [WIDTH_STEP, WIDTH_STEP, 2 * WIDTH_STEP]
    widths = [row_width(n) for n in (5, 70, 33, 64, 3, 100, 65, 31, 40)]
    for batch_size in BATCH_SIZES:
        batches = _batches(widths, batch_size)
        assert sorted(i for b in batches for i in b) == list(range(len(widths)))
        assert all(len(b) <= batch_size and len({widths[i] for i in b}) == 1 for b in batches)
        assert [widths[b[0]] for b in batches] == sorted((widths[b[0]] for b in batches), reverse=True)


def test_the_batch_size_is_in_every_cache_key_and_in_run_json(tmp_path, monkeypatch):
    """GPU matmul libraries may round differently at another batch size, so a cell made at one is
    never served to a run at another; run.json says which was used, also when it was the default."""
    from bench.runner import RunOptions, run_suite

    monkeypatch.setenv("TRIDENT_CACHE", str(tmp_path / "cache"))

    def run(**kw):
        opts = RunOptions(results=tmp_path / "results", dtype="float32", arms=["zero-shot"], tasks=["sentiment"], **kw)
        return json.loads((run_suite("tests/fixtures/mini", opts, Console(quiet=True)) / "run.json").read_text())

    default, four, again = run(), run(batch_size=4), run(batch_size=4)
    assert default["model"]["batch_size"] == 8 and default["options"]["batch_size"] is None  # 8 on a CPU
    assert four["model"]["batch_size"] == 4
    assert not four["cells"][0]["cached"] and again["cells"][0]["cached"]
    assert four["cells"][0]["cache_key"] != default["cells"][0]["cache_key"]
    assert four["cells"][0]["cache_key"] == again["cells"][0]["cache_key"]
