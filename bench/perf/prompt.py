"""Prompt arm: batched label scoring against a naive batch-1 generate loop.

Prompt-arm classification (batched label scoring with a shared prompt pass) against a naive
batch-1 `generate` loop in fp32 on the same examples, and scoring throughput in fp32 and bf16
as a share of this machine's measured matmul peak.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from .common import flops_per_token, matmul_peak


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--suite", default="legal")
    parser.add_argument("--task", default="clause_type")
    parser.add_argument("--n", type=int, default=64, help="examples scored by the batched scorer")
    parser.add_argument("--naive-n", type=int, default=16, help="examples run through the naive loop")
    parser.add_argument("--batch-size", type=int, default=16)


@dataclass(frozen=True)
class ScorerWork:
    """The tokens the scorer actually computes: the shared prefix once, each prompt's own tokens,
    and the packed label tokens (all but each label's last) per prompt; logits at 1 + those
    positions. Counted so that achieved FLOP/s reflects work done, not prompt length."""

    prompt_tokens: list[int]
    shared_prefix: int
    label_tokens_fed: int
    computed_tokens: int
    head_flops: float

    @property
    def mean_prompt_tokens(self) -> float:
        return float(np.mean(self.prompt_tokens))


def run(args: argparse.Namespace) -> dict:
    import torch

    from ..models import load_model
    from ..prompts import render_prompt
    from ..suites import load_suite

    suite = load_suite(args.suite, apply_limits=False)
    task = suite.tasks[args.task]
    examples = task.split("test")[: args.n]
    out: dict = {"suite": args.suite, "task": args.task, "n": len(examples), "threads": torch.get_num_threads()}

    lm32 = load_model(suite.spec.model, device="cpu", dtype="float32")
    prompts = [render_prompt(lm32.tokenizer, task.spec, e.input) for e in examples]
    work = scorer_work(lm32, task, prompts)
    out["mean_prompt_tokens"] = work.mean_prompt_tokens
    out["naive_fp32_generate_s_per_example"] = _naive_seconds_per_example(lm32, task, prompts, args.naive_n)
    out.update({"shared_prefix_tokens": work.shared_prefix, "label_tokens_fed_per_prompt": work.label_tokens_fed,
                "computed_tokens": work.computed_tokens})
    for dtype in ("float32", "bfloat16"):
        lm = lm32 if dtype == "float32" else load_model(suite.spec.model, device="cpu", dtype=dtype)
        out[dtype] = _time_scorer(lm, task, examples, prompts, work, dtype, args.batch_size,
                                  naive_s_per_example=out["naive_fp32_generate_s_per_example"])
    return out


def scorer_work(lm: Any, task: Any, prompts: list[str]) -> ScorerWork:
    from ..generate import common_prefix_length

    ids = [lm.tokenizer(p, add_special_tokens=False).input_ids for p in prompts]
    tokens = [len(i) for i in ids]
    shared = common_prefix_length(ids)
    words = [task.spec.verbalise(label) for label in task.spec.labels]
    fed = sum(len(lm.tokenizer(w, add_special_tokens=False).input_ids) - 1 for w in words)
    computed = shared + sum(t - shared for t in tokens) + len(prompts) * fed
    cfg = lm.model.config
    head = 2 * cfg.vocab_size * cfg.hidden_size * len(prompts) * (1 + fed)
    return ScorerWork(tokens, shared, fed, computed, head)


def _naive_seconds_per_example(lm: Any, task: Any, prompts: list[str], naive_n: int) -> float:
    """Seconds per example of what a first attempt would do: generate an answer one prompt at a
    time and parse a label from the text (the parsing is part of classifying, so it is timed)."""
    from ..arms.prompt import label_from_text
    from ..generate import generate

    naive_n = min(naive_n, len(prompts))
    start = time.perf_counter()
    for p in prompts[:naive_n]:
        g = generate(lm.model, lm.tokenizer, [p], max_new_tokens=task.spec.max_new_tokens, batch_size=1)
        label_from_text(task, g.texts[0])
    return (time.perf_counter() - start) / naive_n


def _time_scorer(lm: Any, task: Any, examples: list, prompts: list[str], work: ScorerWork, dtype: str,
                 batch_size: int, *, naive_s_per_example: float) -> dict:
    """The batched scorer's speed in `dtype`, its FLOP/s against this machine's matmul peak in
    the same dtype, and its (uncalibrated) accuracy as a check that the timed work is real."""
    from ..generate import score_continuations

    words = [task.spec.verbalise(label) for label in task.spec.labels]
    score_continuations(lm.model, lm.tokenizer, prompts[:4], words, batch_size=4)  # warm-up
    start = time.perf_counter()
    res = score_continuations(lm.model, lm.tokenizer, prompts, words, batch_size=batch_size)
    took = time.perf_counter() - start
    per_ex = took / len(prompts)
    achieved = (work.computed_tokens * flops_per_token(lm.model, work.mean_prompt_tokens) + work.head_flops) / took
    peak = matmul_peak(dtype)
    picked = [task.spec.labels[int(np.argmax(s))] for s in res.label_scores(task.spec.label_score)]
    return {"s_per_example": per_ex, "speedup_vs_naive": naive_s_per_example / per_ex,
            "prompt_tokens_per_s": sum(work.prompt_tokens) / took, "computed_tokens_per_s": work.computed_tokens / took,
            "achieved_gflops": achieved / 1e9, "matmul_peak_gflops": peak / 1e9, "share_of_peak": achieved / peak,
            "accuracy_uncalibrated": float(np.mean([p == e.target for p, e in zip(picked, examples)]))}
