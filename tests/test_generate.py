import numpy as np
import torch

from bench.generate import generate, score_continuations


def naive_logprob(lm, prompt, cont):
    tok, model = lm.tokenizer, lm.model
    p = tok(prompt, add_special_tokens=False).input_ids
    c = tok(cont, add_special_tokens=False).input_ids
    ids = torch.tensor([p + c])
    with torch.no_grad():
        logp = torch.log_softmax(model(ids).logits[0].float(), -1)
    return sum(logp[len(p) - 1 + k, t].item() for k, t in enumerate(c))


def test_batched_prefix_scoring_matches_one_by_one(tiny_lm):
    prompts = ["short", "a much longer prompt with more bytes in it", "mid-size prompt"]
    conts = ["yes", "no", "maybe so"]
    got = score_continuations(tiny_lm.model, tiny_lm.tokenizer, prompts, conts, batch_size=2)
    want = np.array([[naive_logprob(tiny_lm, p, c) for c in conts] for p in prompts])
    np.testing.assert_allclose(got.logprob_sum, want, rtol=1e-4, atol=1e-4)
    assert list(got.n_tokens) == [3, 2, 8]


def test_batched_generation_matches_batch_of_one(tiny_lm):
    prompts = ["hello", "a longer prompt here", "x"]
    batched = generate(tiny_lm.model, tiny_lm.tokenizer, prompts, max_new_tokens=6, batch_size=3)
    single = [generate(tiny_lm.model, tiny_lm.tokenizer, [p], max_new_tokens=6, batch_size=1).texts[0] for p in prompts]
    assert batched.texts == single
    assert all(0 <= n <= 6 for n in batched.output_tokens)


def test_shared_prefix_scoring_matches_one_by_one(tiny_lm):
    head = "<|im_start|>user\nA long shared instruction with options a; b; c.\n\nInput: "
    prompts = [head + "first one<|im_end|>\n<|im_start|>assistant\n", head + "2<|im_end|>\n<|im_start|>assistant\n",
               head + "a third, longer input text here<|im_end|>\n<|im_start|>assistant\n"]
    conts = ["alpha", "be", "gamma delta"]
    got = score_continuations(tiny_lm.model, tiny_lm.tokenizer, prompts, conts, batch_size=2)
    want = np.array([[naive_logprob(tiny_lm, p, c) for c in conts] for p in prompts])
    np.testing.assert_allclose(got.logprob_sum, want, rtol=1e-4, atol=1e-4)


def test_common_prefix_leaves_one_token():
    from bench.generate import common_prefix_length

    assert common_prefix_length([[1, 2, 3], [1, 2, 4]]) == 2
    assert common_prefix_length([[1, 2], [1, 2, 3]]) == 1
    assert common_prefix_length([[5, 6, 7]]) == 2
    assert common_prefix_length([[1], [2]]) == 0


def test_a_frozen_model_feeds_its_head_a_contiguous_input_and_scores_the_same(tiny_lm):
    """Frozen weights (PEFT, merged LoRA) made torch copy the head weight per batch row when its
    input was the strided last-position view; scoring and generation must hand it a contiguous one."""
    import copy

    frozen = copy.deepcopy(tiny_lm.model).requires_grad_(False)
    seen = []
    frozen.get_output_embeddings().register_forward_hook(lambda m, args, out: seen.append(args[0].is_contiguous()))
    prompts, conts = ["short", "a much longer prompt with more bytes"], ["yes", "no"]
    got = score_continuations(frozen, tiny_lm.tokenizer, prompts, conts, batch_size=2)
    gen = generate(frozen, tiny_lm.tokenizer, prompts, max_new_tokens=3, batch_size=2)
    assert seen and all(seen)
    want = score_continuations(tiny_lm.model, tiny_lm.tokenizer, prompts, conts, batch_size=2)
    np.testing.assert_allclose(got.logprob_sum, want.logprob_sum, rtol=1e-5, atol=1e-5)
    assert gen.texts == generate(tiny_lm.model, tiny_lm.tokenizer, prompts, max_new_tokens=3, batch_size=2).texts


def test_label_scores_total_the_tokens_by_default_and_average_them_on_request():
    """One-token label A at -1.0 against three-token label B at -2.0, -0.01, -0.01: A is the
    more probable string (sum), while the per-token mean favours B's predictable tail."""
    from bench.generate import ScoreResult

    res = ScoreResult(logprob_sum=np.array([[-1.0, -2.02]]), n_tokens=np.array([1, 3]), seconds=np.zeros(1),
                      prompt_tokens=np.array([5]))
    assert res.label_scores("sum").argmax() == 0
    assert res.label_scores("mean").argmax() == 1
    np.testing.assert_allclose(res.label_scores("mean"), [[-1.0, -2.02 / 3]])


def test_scoring_and_generation_use_the_current_cache_api(tiny_lm, monkeypatch):
    """transformers 5.24 renamed `past_key_values` to `cache` (the old name warns on every call
    and goes in 5.40): neither the keyword nor the output attribute may be used."""
    import warnings

    from transformers.utils import generic

    calls = []
    monkeypatch.setattr(generic.logger, "warning_once", lambda *a, **k: calls.append(a))
    prompts = ["<|im_start|>user\nshared head: one", "<|im_start|>user\nshared head: second"]
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        got = score_continuations(tiny_lm.model, tiny_lm.tokenizer, prompts, ["yes", "no way"], batch_size=2)
        generate(tiny_lm.model, tiny_lm.tokenizer, prompts, max_new_tokens=3, batch_size=2)
    assert not calls
    want = np.array([[naive_logprob(tiny_lm, p, c) for c in ["yes", "no way"]] for p in prompts])
    np.testing.assert_allclose(got.logprob_sum, want, rtol=1e-4, atol=1e-4)
