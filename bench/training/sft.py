"""Supervised fine-tuning data: chat-formatted (prompt, answer) pairs with the loss on answer
tokens only, corpus chunks for knowledge injection, and the batch collator.

The prompt is exactly the one every arm uses (`render_prompt`, zero-shot), so the fine-tuned
arm differs from the prompt arm only by its weights. Prompt and answer are tokenised apart, the
same way the label scorer tokenises them at prediction time.

The collator RIGHT-pads each batch (left padding gave NaN gradients in CUDA's
SDPA backward; see `RightPadCollator`) and passes `logits_to_keep`, starting just before the
batch's earliest answer token, so the model computes output logits (49k-wide for SmolLM2) only
in that window instead of at every position: a few tokens wide in length-grouped batches, wider in
random ones (a short row's answer starts where a long row's input is still running).
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..data import Document, Example
from ..errors import DataError
from ..prompts import answer_text, messages, render_prompt

IGNORE = -100




def answer_suffix(tokenizer: Any, task_spec: Any, example: Example, prompt: str, context: str | None = None) -> str:
    """The text the model should write after the prompt: the answer and the end-of-turn marker
    exactly as the chat template writes an assistant turn."""
    answer = answer_text(task_spec, example)
    turns = messages(task_spec, example.input, (), context) + [{"role": "assistant", "content": answer}]
    full = tokenizer.apply_chat_template(turns, tokenize=False)
    if full.startswith(prompt) and answer in full[len(prompt):]:
        return full[len(prompt):].rstrip()
    return answer + (tokenizer.eos_token or "")


def encode_pair(tokenizer: Any, prompt: str, answer: str, max_length: int) -> dict[str, Any]:
    """input_ids and labels (prompt positions masked). An over-long prompt loses tokens from its
    middle (the instruction at the start and the assistant header at the end are kept)."""
    p = tokenizer(prompt, add_special_tokens=False).input_ids
    a = tokenizer(answer, add_special_tokens=False).input_ids
    if not a:
        raise DataError(f"the answer {answer!r} encodes to no tokens")
    a = a[: max(1, max_length // 2)]
    room = max_length - len(a)
    truncated = len(p) > room
    if truncated:
        tail = min(16, room // 2)
        p = p[: room - tail] + p[len(p) - tail:]
    return {"input_ids": p + a, "labels": [IGNORE] * len(p) + a, "truncated": truncated}


def encode_task(tokenizer: Any, task_spec: Any, examples: Sequence[Example], max_length: int,
                contexts: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
    """Encode one task's examples, each prompt with its retrieved context when `contexts` has one
    (retrieval-aware fine-tuning); examples without a usable target are an error, never skipped."""
    bad = [e.id for e in examples if not e.targets or not str(e.target).strip()
           or (task_spec.kind == "classification" and e.target not in task_spec.labels)]
    if bad:
        raise DataError(f"task {task_spec.name}: {len(bad)} training example(s) have a missing or unknown label "
                        f"(first: {', '.join(bad[:5])})")
    rows = []
    for e in examples:
        context = (contexts or {}).get(e.id) or None
        prompt = render_prompt(tokenizer, task_spec, e.input, (), context)
        row = encode_pair(tokenizer, prompt, answer_suffix(tokenizer, task_spec, e, prompt, context), max_length)
        rows.append({**row, "task": task_spec.name, "id": e.id})
    return rows


def encode_documents(tokenizer: Any, docs: Sequence[Document], max_length: int) -> list[dict[str, Any]]:
    """Corpus documents as plain language-modelling chunks (loss on every token)."""
    eos = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
    rows = []
    for d in docs:
        ids = tokenizer(f"{d.title}\n\n{d.text}".strip(), add_special_tokens=False).input_ids + eos
        for start in range(0, len(ids), max_length):
            chunk = ids[start:start + max_length]
            if len(chunk) >= 8:
                rows.append({"input_ids": chunk, "labels": list(chunk), "truncated": False, "task": "corpus",
                             "id": f"{d.id}#{start}"})
    return rows


def split_validation(train: list[Example], validation: list[Example], seed: int, name: str,
                     log: Any = print, share: float = 0.15) -> tuple[list[Example], list[Example]]:
    """The validation split if there is one; else a seeded `share` of train (at least 1), said in
    the log; share 0: every train example is trained on and there is no validation."""
    if len(train) < 2:
        raise DataError(f"task {name} has {len(train)} train example(s); fine-tuning needs at least 2")
    if validation or share == 0:
        return train, validation
    pool = sorted(train, key=lambda e: e.id)
    random.Random(f"{seed}:{name}:holdout").shuffle(pool)
    n_val = max(1, round(share * len(pool)))
    log(f"[finetune] task {name} has no validation split: holding out {n_val} of {len(pool)} train examples")
    return pool[n_val:], pool[:n_val]


class ListDataset:
    """A list of encoded rows; `len(row['input_ids'])` drives the sampler of `batch_order: length_grouped`."""

    def __init__(self, rows: list[dict[str, Any]]):
        self.rows = rows

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return self.rows[i]


@dataclass
class RightPadCollator:
    """Right-pads to the longest row of the batch; `logits_to_keep` covers the last position
    before the earliest answer token of the batch through the end, so the head runs only where
    labels exist (length-grouped batches keep that window a few tokens wide).

    Right, not left: a left-padded row's leading pad queries can attend to nothing, and CUDA's
    SDPA backward returns NaN gradients for such fully masked rows (found on an H100 with a
    448-wide batch padded by 2-16 tokens; eager attention gave finite ones). With right padding
    every query sees at least its own row's first token, and positions need no `position_ids`
    (which made a CPU step 3x slower with transformers 5.23)."""

    pad_id: int
    answer_logits_only: bool = True
    # CUDA compiles or tunes kernels (cuDNN attention, cuBLASLt) per new shape; length-grouped
    # batches of any width meant one such cost per width in a short run. A multiple of 64 caps
    # the distinct widths at max_length / 64.
    pad_to_multiple_of: int = 1

    def __call__(self, rows: list[dict[str, Any]]) -> dict[str, Any]:
        import torch

        width = max(len(r["input_ids"]) for r in rows)
        width = -(-width // self.pad_to_multiple_of) * self.pad_to_multiple_of
        ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        labels = torch.full((len(rows), width), IGNORE, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, r in enumerate(rows):
            n = len(r["input_ids"])
            ids[i, :n] = torch.tensor(r["input_ids"])
            labels[i, :n] = torch.tensor(r["labels"])
            mask[i, :n] = 1
        keep = width
        if self.answer_logits_only:
            has = (labels != IGNORE).any(0).nonzero()
            first = int(has[0]) if len(has) else width - 1
            keep = min(width, max(1, width - first + 1))
        return {"input_ids": ids, "attention_mask": mask,
                "labels": labels[:, width - keep:], "logits_to_keep": keep}
