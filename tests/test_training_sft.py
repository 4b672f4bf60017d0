"""SFT encoding and the right-padding collator: loss only on answer tokens, and the answer-only
logits give exactly the loss computed from logits at every position."""

import torch

from bench.config import TaskSpec
from bench.data import Example
from bench.prompts import render_prompt
from bench.training.sft import IGNORE, RightPadCollator, answer_suffix, encode_pair, encode_task

TASK = TaskSpec(name="t", kind="classification", data={"file": "x.jsonl"}, input_field="text", target_field="label",
                labels=["red", "blue"], instruction="Which colour?", metrics=["accuracy"])


def examples():
    return [Example("a", "apple cherry", ("red",), "train"),
            Example("b", "sky and a much longer ocean text", ("blue",), "train")]


def test_prompt_tokens_are_masked_and_the_answer_ends_the_turn(tiny_lm):
    tok = tiny_lm.tokenizer
    e = examples()[0]
    prompt = render_prompt(tok, TASK, e.input)
    suffix = answer_suffix(tok, TASK, e, prompt)
    assert suffix.startswith("red") and suffix.endswith("<|im_end|>")
    row = encode_pair(tok, prompt, suffix, 512)
    n_prompt = len(tok(prompt, add_special_tokens=False).input_ids)
    assert row["labels"][:n_prompt] == [IGNORE] * n_prompt
    assert tok.decode(row["labels"][n_prompt:]) == suffix


def test_long_prompts_are_cut_in_the_middle_keeping_the_answer():
    class Tok:
        def __call__(self, text, add_special_tokens=False):
            return type("E", (), {"input_ids": [ord(c) for c in text]})()

    row = encode_pair(Tok(), "x" * 100 + "HEADER", "ans", 40)
    assert len(row["input_ids"]) == 40 and row["truncated"]
    assert "".join(map(chr, row["input_ids"])).endswith("HEADER" + "ans")


def test_answer_only_logits_give_the_full_loss(tiny_lm):
    rows = encode_task(tiny_lm.tokenizer, TASK, examples(), 512)
    batch = RightPadCollator(tiny_lm.tokenizer.pad_token_id)(rows)
    width = batch["input_ids"].shape[1]
    assert batch["logits_to_keep"] < width
    full_labels = torch.full_like(batch["input_ids"], IGNORE)
    full_labels[:, width - batch["labels"].shape[1]:] = batch["labels"]
    with torch.no_grad():
        fast = tiny_lm.model(**batch).loss
        slow = tiny_lm.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                             labels=full_labels).loss
    assert torch.allclose(fast, slow, atol=1e-5)


def test_a_padded_batch_gives_each_row_its_unpadded_loss(tiny_lm):
    """Padding must change nothing: the batch loss equals the token-weighted mean of the rows'
    losses computed one at a time without any padding."""
    rows = encode_task(tiny_lm.tokenizer, TASK, examples(), 512)
    assert len({len(r["input_ids"]) for r in rows}) > 1          # the batch really is padded
    collate = RightPadCollator(tiny_lm.tokenizer.pad_token_id)
    with torch.no_grad():
        batch = tiny_lm.model(**collate(rows)).loss
        total = tokens = 0
        for r in rows:
            n = sum(l != IGNORE for l in r["labels"][1:])
            total += tiny_lm.model(**collate([r])).loss * n
            tokens += n
    assert torch.allclose(batch, total / tokens, atol=1e-5)


def test_widths_can_be_rounded_up_without_changing_the_loss(tiny_lm):
    rows = encode_task(tiny_lm.tokenizer, TASK, examples(), 512)
    plain = RightPadCollator(tiny_lm.tokenizer.pad_token_id)(rows)
    rounded = RightPadCollator(tiny_lm.tokenizer.pad_token_id, pad_to_multiple_of=64)(rows)
    assert rounded["input_ids"].shape[1] % 64 == 0 and rounded["input_ids"].shape[1] >= plain["input_ids"].shape[1]
    with torch.no_grad():
        assert torch.allclose(tiny_lm.model(**plain).loss, tiny_lm.model(**rounded).loss, atol=1e-5)
