"""Batched label scoring and greedy generation, shared by every arm.

Label scoring computes the prefix that all prompts share (chat header, instruction, options,
demonstrations) once, then one pass per batch in which each row holds a prompt's own suffix
followed by every label continuation packed together (logits kept only where a label token is
predicted): a 12-label task costs one pass over each prompt's own tokens plus a few label tokens.

A prediction does not depend on the batch size. Each row is padded to a width that depends on
its own length only (`row_width`), always in the same way (after its tokens when scoring, before
them when generating), and a batch holds rows of one width. Every row therefore goes through
kernels of the same shapes, with its tokens in the same places, whatever shares its batch.
Padding each batch to its longest row instead moved the embedded SmolLM2's bf16 label scores on
24 legal clauses by up to 0.36 nats, and 2 predicted labels, between batch 1 and batch 8:
attention kernels choose their blocks and the order of their sums by sequence length, and bf16
carries those rounding differences into every later layer.

The key/value cache goes in and out of a forward pass as `cache` (transformers 5.24 renamed it
from `past_key_values`, which warns on every call and goes away in 5.40).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

Progress = Callable[[int], None]


@dataclass
class ScoreResult:
    """Summed log-probabilities [prompts, continuations], token counts and per-prompt seconds."""

    logprob_sum: np.ndarray
    n_tokens: np.ndarray
    seconds: np.ndarray
    prompt_tokens: np.ndarray

    @property
    def mean_logprob(self) -> np.ndarray:
        return self.logprob_sum / self.n_tokens[None, :]

    def label_scores(self, how: str) -> np.ndarray:
        """'sum': log P(label | prompt), the label string's probability (lm-evaluation-harness's
        acc); 'mean': per token, which favours long labels whose later tokens are predictable."""
        if how == "sum":
            return self.logprob_sum
        if how == "mean":
            return self.mean_logprob
        raise ValueError(f"label scoring '{how}': expected 'sum' or 'mean'")


def _encode(tokenizer: Any, texts: Sequence[str]) -> list[list[int]]:
    return [tokenizer(t, add_special_tokens=False).input_ids for t in texts]


WIDTH_STEP = 32
"""Rows are padded to a multiple of this many tokens: at most 31 padding tokens per row, about as
many in all as padding each batch to its longest row (legal's 132 clauses at batch 8: 25,952
tokens against 25,536), in more batches (23 against 17), as a batch holds one width only."""


def row_width(n_tokens: int) -> int:
    """The width a row of `n_tokens` is padded to: a function of the row alone, so the same prompt
    is computed in the same shapes at any batch size."""
    return -(-n_tokens // WIDTH_STEP) * WIDTH_STEP


def _batches(widths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Indices grouped by width (widest first, so memory errors come early), cut into batches of at
    most `batch_size`; a batch never mixes widths."""
    order = sorted(range(len(widths)), key=lambda i: -widths[i])
    batches: list[list[int]] = []
    for i in order:
        if batches and len(batches[-1]) < batch_size and widths[batches[-1][0]] == widths[i]:
            batches[-1].append(i)
        else:
            batches.append([i])
    return batches


def _left_pad(seqs: list[list[int]], width: int, pad_id: int, device: str):
    import torch

    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for r, s in enumerate(seqs):
        ids[r, width - len(s):] = torch.tensor(s, dtype=torch.long)
        mask[r, width - len(s):] = 1
    return ids.to(device), mask.to(device)


def common_prefix_length(seqs: Sequence[Sequence[int]]) -> int:
    """Tokens every sequence starts with, leaving at least one own token per sequence."""
    if not seqs:
        return 0
    first, n = seqs[0], min(len(s) for s in seqs) - 1
    for i in range(n):
        if any(s[i] != first[i] for s in seqs):
            return i
    return max(n, 0)


def _contiguous_input(module: Any, args: tuple) -> tuple:
    return (args[0].contiguous(), *args[1:])


def contiguous_head(model: Any) -> None:
    """Feed the output head a contiguous input. transformers slices the last position
    (`logits_to_keep`) as a strided view, and torch's matmul folds such a 3-D input into one mm
    only when an operand requires grad: for frozen models (PEFT, merged LoRA) it instead
    broadcasts the [vocab, hidden] head weight per batch row and copies it, which made fine-tuned
    SmolLM2 inference 30% slower than the base model on the CPU. Idempotent."""
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    if head is None or getattr(head, "_trident_contiguous", False):
        return
    head.register_forward_pre_hook(_contiguous_input)
    head._trident_contiguous = True


def score_continuations(model: Any, tokenizer: Any, prompts: Sequence[str], continuations: Sequence[str], *,
                        batch_size: int = 16, device: str = "cpu", progress: Progress | None = None) -> ScoreResult:
    """log P(continuation | prompt) for every pair, sharing the common prefix and each prompt's pass."""
    import torch

    contiguous_head(model)
    prompt_ids = _encode(tokenizer, prompts)
    cont_ids = _encode(tokenizer, continuations)
    if any(len(c) == 0 for c in cont_ids):
        raise ValueError("a continuation encodes to no tokens")
    packed = _pack_continuations(cont_ids, device)
    sums = np.zeros((len(prompts), len(cont_ids)))
    seconds = np.zeros(len(prompts))
    shared = common_prefix_length(prompt_ids)
    widths = [row_width(len(p) - shared + packed.n_fed) for p in prompt_ids]
    with torch.inference_mode():
        start = time.perf_counter()
        prefix = _prefix_cache(model, prompt_ids[0][:shared], device) if shared else None
        prefix_s = (time.perf_counter() - start) / max(1, len(prompts))
        for batch in _batches(widths, batch_size):
            start = time.perf_counter()
            sums[batch] = _score_batch(model, [prompt_ids[i][shared:] for i in batch], widths[batch[0]], prefix,
                                       shared, packed, tokenizer.pad_token_id, device)
            seconds[batch] = (time.perf_counter() - start) / len(batch) + prefix_s
            if progress:
                progress(len(batch))
    return ScoreResult(sums, np.array([len(c) for c in cont_ids]), seconds, np.array([len(p) for p in prompt_ids]))


@dataclass
class _Packed:
    """All continuations as one packed sequence (every token but each one's last), so they are
    scored in the prompt's own pass, after its tokens, without a copy of the prompt per label."""

    first: Any          # [n_cont] first token of each continuation
    feed: Any           # [F] tokens fed after the prompt
    offset: Any         # [F] position of each fed token within its continuation
    owner: Any          # [F] which continuation each fed token belongs to
    target: Any         # [F] the token each fed position must predict
    n_cont: int

    @property
    def n_fed(self) -> int:
        return int(self.feed.shape[0])


def _pack_continuations(cont_ids: list[list[int]], device: str) -> _Packed:
    import torch

    feed, offset, owner, target = [], [], [], []
    for c, ids in enumerate(cont_ids):
        for j in range(len(ids) - 1):
            feed.append(ids[j])
            offset.append(j)
            owner.append(c)
            target.append(ids[j + 1])

    def t(x):
        return torch.tensor(x, dtype=torch.long, device=device)

    return _Packed(t([c[0] for c in cont_ids]), t(feed), t(offset), t(owner), t(target), len(cont_ids))


def _prefix_cache(model: Any, ids: list[int], device: str):
    import torch

    x = torch.tensor([ids], device=device)
    return model(input_ids=x, attention_mask=torch.ones_like(x), use_cache=True, logits_to_keep=1).cache


def _score_batch(model: Any, seqs: list[list[int]], width: int, prefix: Any, shared: int, packed: _Packed,
                 pad_id: int, device: str) -> np.ndarray:
    """log P(continuation | prompt) [rows, continuations] in one forward pass. A row is its prompt's
    own tokens, then every continuation's fed tokens, then padding up to `width`: its tokens sit in
    the same columns, and the model sees the same shapes, whatever else is in the batch."""
    import copy

    import torch

    b, n_fed = len(seqs), packed.n_fed
    lengths = torch.tensor([len(s) for s in seqs], device=device)
    ids = torch.full((b, width), pad_id, dtype=torch.long, device=device)
    for r, s in enumerate(seqs):
        ids[r, :len(s)] = torch.tensor(s, dtype=torch.long, device=device)
        ids[r, len(s):len(s) + n_fed] = packed.feed
    col = torch.arange(width, device=device)
    fed = col[None, :] - lengths[:, None]                  # [b, width] index into the packed tokens
    is_own, is_fed = fed < 0, (fed >= 0) & (fed < n_fed)
    owner = torch.full((b, width), -1, dtype=torch.long, device=device)
    positions = col[None, :].expand(b, -1)
    if n_fed:
        f = fed.clamp(0, n_fed - 1)
        owner = torch.where(is_fed, packed.owner[f], owner)
        positions = torch.where(is_fed, lengths[:, None] + packed.offset[f], positions)
    # Causal within the row; a fed token sees the whole prompt and the earlier tokens of its own
    # continuation only (block-diagonal over the packed continuations); nothing sees a pad. A pad
    # still sees the prompt: an empty attention row is NaN in some kernels, and a pad's NaN values
    # would reach every token of its row through 0 x NaN in the next layer's attention.
    causal = col[:, None] >= col[None, :]
    same = is_fed[:, :, None] & (owner[:, :, None] == owner[:, None, :])
    allowed = causal[None] & (is_own[:, None, :] | same)
    cache = None
    if prefix is not None:
        cache = copy.deepcopy(prefix)
        cache.batch_repeat_interleave(b)
        allowed = torch.cat([torch.ones((b, width, shared), dtype=torch.bool, device=device), allowed], dim=-1)
    # An additive mask in the model's dtype works with every attention implementation; passing it
    # in 4-D also keeps transformers from dropping it (and switching kernels) when nothing is padded.
    dtype = next(model.parameters()).dtype
    bias = torch.zeros(allowed.shape, dtype=dtype, device=device).masked_fill_(~allowed, torch.finfo(dtype).min)
    # Logits only where a continuation token is predicted: at the prompt's last token (each
    # continuation's first token), then at every fed token (the token after it).
    read = lengths[:, None] - 1 + torch.arange(n_fed + 1, device=device)[None, :]
    with _head_reads(model, read):
        logits = model(input_ids=ids, attention_mask=bias[:, None], position_ids=shared + positions, cache=cache,
                       use_cache=cache is not None, logits_to_keep=0).logits
    logp = torch.log_softmax(logits.float(), dim=-1)                          # [b, 1 + F, vocab]
    total = logp[:, 0, packed.first]                                         # [b, n_cont]
    if n_fed:
        fed_logp = logp[:, 1:].gather(-1, packed.target[None, :, None].expand(b, -1, 1))[..., 0]
        total = total.index_add(1, packed.owner, fed_logp)
    return total.cpu().numpy()


@contextmanager
def _head_reads(model: Any, positions: Any):
    """While active, the output head reads only `positions` [rows, k] of each row's hidden states.
    The positions differ per row, which transformers' `logits_to_keep` (the same columns for every
    row) cannot express, and computing all logits would take [rows, width, vocab] of memory."""
    head = model.get_output_embeddings()

    def pick(module: Any, args: tuple) -> tuple:
        hidden = args[0]
        return (hidden.gather(1, positions[:, :, None].expand(-1, -1, hidden.shape[-1])), *args[1:])

    handle = head.register_forward_pre_hook(pick)
    try:
        yield
    finally:
        handle.remove()


@dataclass
class Generation:
    texts: list[str]
    seconds: np.ndarray
    prompt_tokens: np.ndarray
    output_tokens: np.ndarray


def generate(model: Any, tokenizer: Any, prompts: Sequence[str], *, max_new_tokens: int, batch_size: int = 16,
             device: str = "cpu", progress: Progress | None = None) -> Generation:
    """Greedy decoding with left padding to each prompt's own `row_width`, batches of one width, KV
    cache, stop at end of turn."""
    import torch

    contiguous_head(model)
    prompt_ids = _encode(tokenizer, prompts)
    texts = [""] * len(prompts)
    seconds, out_tokens = np.zeros(len(prompts)), np.zeros(len(prompts), dtype=int)
    stop = stop_token_ids(tokenizer)
    # At least one pad per row (+1): transformers drops the mask of a batch with no padding at all
    # and runs SDPA's unmasked causal kernel, whose rounding differs from the masked one's.
    widths = [row_width(len(p) + 1) for p in prompt_ids]
    with torch.inference_mode():
        for batch in _batches(widths, batch_size):
            start = time.perf_counter()
            ids, mask = _left_pad([prompt_ids[i] for i in batch], widths[batch[0]], tokenizer.pad_token_id, device)
            out = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=max_new_tokens, do_sample=False,
                                 num_beams=1, pad_token_id=tokenizer.pad_token_id, eos_token_id=stop,
                                 temperature=None, top_p=None, top_k=None)
            new = out[:, ids.shape[1]:]
            for row, i in enumerate(batch):
                texts[i], out_tokens[i] = answer_text(tokenizer, new[row].tolist(), stop)
            seconds[batch] = (time.perf_counter() - start) / len(batch)
            if progress:
                progress(len(batch))
    return Generation(texts, seconds, np.array([len(p) for p in prompt_ids]), out_tokens)


def stop_token_ids(tokenizer: Any) -> list[int]:
    """The tokens greedy decoding stops at, on every engine: end of sequence and ChatML's end of turn."""
    ends = (tokenizer.eos_token_id, tokenizer.convert_tokens_to_ids("<|im_end|>"))
    return sorted({t for t in ends if isinstance(t, int) and t >= 0})


def answer_text(tokenizer: Any, tokens: Sequence[int], stop: Sequence[int]) -> tuple[str, int]:
    """The answer in generated `tokens` (everything before the first stop token), decoded without
    special tokens and stripped, and how many tokens it took: every engine reads its output so."""
    cut = next((k for k, t in enumerate(tokens) if t in stop), len(tokens))
    return tokenizer.decode(list(tokens[:cut]), skip_special_tokens=True).strip(), cut
