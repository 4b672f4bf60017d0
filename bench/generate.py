"""Batched label scoring and greedy generation, shared by every arm.

Label scoring computes the prefix that all prompts share (chat header, instruction, options,
demonstrations) once, then each prompt's own suffix (left-padded, length-sorted batches, logits
kept only at the last position), then every label continuation from the cached keys and
values: a 12-label task costs one pass over each prompt's own tokens plus a few label tokens.

The key/value cache goes in and out of a forward pass as `cache` (transformers 5.24 renamed it
from `past_key_values`, which warns on every call and goes away in 5.40).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
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


def _batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Indices sorted by length (longest first, so memory errors come early), cut into batches."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]


def _left_pad(seqs: list[list[int]], pad_id: int, device: str):
    import torch

    width = max(len(s) for s in seqs)
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
    with torch.inference_mode():
        start = time.perf_counter()
        prefix = _prefix_cache(model, prompt_ids[0][:shared], device) if shared else None
        prefix_s = (time.perf_counter() - start) / max(1, len(prompts))
        for batch in _batches([len(p) for p in prompt_ids], batch_size):
            start = time.perf_counter()
            sums[batch] = _score_batch(model, [prompt_ids[i][shared:] for i in batch], prefix, shared, packed,
                                       tokenizer.pad_token_id, device)
            seconds[batch] = (time.perf_counter() - start) / len(batch) + prefix_s
            if progress:
                progress(len(batch))
    return ScoreResult(sums, np.array([len(c) for c in cont_ids]), seconds, np.array([len(p) for p in prompt_ids]))


@dataclass
class _Packed:
    """All continuations as one packed sequence (every token but each one's last), so their
    remaining tokens are scored in one pass without copying the prompt's cache per label."""

    first: Any          # [n_cont] first token of each continuation
    feed: Any           # [F] tokens fed after the prompt
    offset: Any         # [F] position of each fed token within its continuation
    owner: Any          # [F] which continuation each fed token belongs to
    target: Any         # [F] the token each fed position must predict
    n_cont: int


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


def _score_batch(model: Any, seqs: list[list[int]], prefix: Any, shared: int, packed: _Packed, pad_id: int,
                 device: str) -> np.ndarray:
    import copy

    import torch

    ids, mask = _left_pad(seqs, pad_id, device)
    b = ids.shape[0]
    positions = shared + (mask.cumsum(-1) - 1).clamp(min=0)
    cache = None
    if prefix is not None:
        cache = copy.deepcopy(prefix)
        cache.batch_repeat_interleave(b)
        mask = torch.cat([torch.ones((b, shared), dtype=mask.dtype, device=device), mask], dim=1)
    out = model(input_ids=ids, attention_mask=mask, position_ids=positions, cache=cache, use_cache=True,
                logits_to_keep=1)
    first = torch.log_softmax(out.logits[:, -1].float(), dim=-1)             # [b, vocab]
    total = first[:, packed.first]                                          # [b, n_cont]
    n_fed = packed.feed.shape[0]
    if n_fed:
        # Each fed token sees the whole prompt (where not padding) and the earlier tokens of its
        # own continuation only: a block-diagonal causal mask over the packed continuations.
        same = packed.owner[:, None] == packed.owner[None, :]
        causal = packed.offset[:, None] >= packed.offset[None, :]
        allowed = torch.cat([mask.bool()[:, None, :].expand(b, n_fed, -1), (same & causal)[None].expand(b, -1, -1)], -1)
        dtype = next(model.parameters()).dtype
        bias = torch.zeros(allowed.shape, dtype=dtype, device=device).masked_fill_(~allowed, torch.finfo(dtype).min)
        pos = mask.sum(-1)[:, None] + packed.offset[None, :]
        logits = model(input_ids=packed.feed[None].expand(b, -1), attention_mask=bias[:, None], position_ids=pos,
                       cache=out.cache, use_cache=False).logits.float()
        logp = torch.log_softmax(logits, dim=-1).gather(-1, packed.target[None, :, None].expand(b, -1, 1))[..., 0]
        total = total.index_add(1, packed.owner, logp)
    return total.cpu().numpy()


@dataclass
class Generation:
    texts: list[str]
    seconds: np.ndarray
    prompt_tokens: np.ndarray
    output_tokens: np.ndarray


def generate(model: Any, tokenizer: Any, prompts: Sequence[str], *, max_new_tokens: int, batch_size: int = 16,
             device: str = "cpu", progress: Progress | None = None) -> Generation:
    """Greedy decoding with left padding, length-sorted batches, KV cache, stop at end of turn."""
    import torch

    contiguous_head(model)
    prompt_ids = _encode(tokenizer, prompts)
    texts = [""] * len(prompts)
    seconds, out_tokens = np.zeros(len(prompts)), np.zeros(len(prompts), dtype=int)
    ends = (tokenizer.eos_token_id, tokenizer.convert_tokens_to_ids("<|im_end|>"))
    stop = sorted({t for t in ends if isinstance(t, int) and t >= 0})
    with torch.inference_mode():
        for batch in _batches([len(p) for p in prompt_ids], batch_size):
            start = time.perf_counter()
            ids, mask = _left_pad([prompt_ids[i] for i in batch], tokenizer.pad_token_id, device)
            out = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=max_new_tokens, do_sample=False,
                                 num_beams=1, pad_token_id=tokenizer.pad_token_id, eos_token_id=stop,
                                 temperature=None, top_p=None, top_k=None)
            new = out[:, ids.shape[1]:]
            for row, i in enumerate(batch):
                toks = new[row].tolist()
                cut = next((k for k, t in enumerate(toks) if t in stop), len(toks))
                texts[i] = tokenizer.decode(toks[:cut], skip_special_tokens=True).strip()
                out_tokens[i] = cut
            seconds[batch] = (time.perf_counter() - start) / len(batch)
            if progress:
                progress(len(batch))
    return Generation(texts, seconds, np.array([len(p) for p in prompt_ids]), out_tokens)
