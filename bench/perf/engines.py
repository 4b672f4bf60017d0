"""Generation backends on a GPU: legal QA prompts through hf and vllm, tokens/s and greedy agreement.

The prompt arm's zero-shot prompts for a QA task (legal's tenancy_qa by default; test questions
first, then train and validation ones, up to --n) are answered greedily by each backend's engine
(bench.backends: what `bench run --backend` uses), on a randomly initialised model of a real
architecture (the embedded GGUF cannot travel to a GPU machine; random weights cost the same
per token). Reported per backend: engine start (vLLM loads, profiles and captures CUDA graphs),
seconds, output and prompt tokens per second; across backends: the share of identical answers
and the mean share of an answer that agrees before the first difference (bf16 kernels of two
engines round differently, and greedy decoding follows the first difference). With
--classify-task, label log-likelihoods of a classification task through both engines: the share
of equal predicted labels and the largest difference of a label score.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np

from .common import release_cuda_memory


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--suite", default="legal")
    parser.add_argument("--task", default="tenancy_qa", help="a QA or generation task of the suite")
    parser.add_argument("--classify-task", default="clause_type", help="a classification task ('' for none)")
    parser.add_argument("--model", default="random:smollm2-135m", help="e.g. random:qwen2.5-0.5b")
    parser.add_argument("--backends", default="hf,vllm", help="comma-separated; the first is the reference")
    parser.add_argument("--device", default=None, help="default: cuda if available, else cpu")
    parser.add_argument("--dtype", default="auto", help="auto (bf16 on CUDA) | float32 | bfloat16 | float16")
    parser.add_argument("--n", type=int, default=256, help="prompts answered per backend")
    parser.add_argument("--max-new-tokens", type=int, default=None, help="default: the task's")
    parser.add_argument("--batch-size", type=int, default=64, help="hf's prompts per forward pass (vLLM batches "
                                                                    "by itself)")


def run(args: argparse.Namespace) -> dict:
    import torch

    from ..backends import BackendSettings, check_backend, make_backend
    from ..models import choose_device, choose_dtype, load_model
    from ..prompts import label_continuations, render_prompt
    from ..suites import load_suite

    names = [b.strip() for b in args.backends.split(",") if b.strip()]
    for name in names:
        check_backend(name)  # a missing vllm is one line before anything loads
    device = choose_device(args.device)
    dtype = choose_dtype(device, args.dtype)
    suite = load_suite(args.suite, apply_limits=False)
    task = suite.tasks[args.task]
    lm = load_model(args.model, device=device, dtype=dtype, seed=0)
    prompts = [render_prompt(lm.tokenizer, task.spec, e.input) for e in _questions(task, args.n)]
    max_new = args.max_new_tokens or task.spec.max_new_tokens
    classify = suite.tasks[args.classify_task] if args.classify_task else None
    labelled = ([render_prompt(lm.tokenizer, classify.spec, e.input) for e in _questions(classify, args.n)],
                label_continuations(lm.tokenizer, classify.spec)) if classify else None
    out: dict[str, Any] = {"suite": args.suite, "task": args.task, "model": args.model, "device": device,
                           "gpu": torch.cuda.get_device_name(0) if device.startswith("cuda") else None,
                           "dtype": dtype, "n": len(prompts), "max_new_tokens": max_new,
                           "mean_prompt_tokens": _mean_tokens(lm, prompts), "backends": {}}
    answers, scores = {}, {}
    for name in names:
        backend = make_backend(name, BackendSettings(device, dtype, 0))
        figures, answers[name], scores[name] = _measure(backend, lm, prompts, max_new, labelled, args.batch_size)
        out["backends"][name] = {"identity": backend.identity().to_record(), **figures}
        del backend
        release_cuda_memory(device)
    reference = names[0]
    for name in names[1:]:
        out["backends"][name]["agreement_with_" + reference] = _agreement(answers[reference], answers[name],
                                                                          scores[reference], scores[name])
    return out


def _questions(task: Any, n: int) -> list[Any]:
    """Up to n examples: the test split first, then train and validation."""
    return [e for split in ("test", "train", "validation") for e in task.split(split)][:n]


def _mean_tokens(lm: Any, prompts: list[str]) -> float:
    return float(np.mean([len(lm.tokenizer(p, add_special_tokens=False).input_ids) for p in prompts]))


def _measure(backend: Any, lm: Any, prompts: list[str], max_new: int, labelled: tuple[list[str], list[str]] | None,
             batch_size: int) -> tuple[dict[str, Any], list[str], np.ndarray | None]:
    """Start the engine (timed with a warm-up), then answer every prompt once, timed."""
    start = time.perf_counter()
    engine = backend.engine(lm, None, batch_size)
    engine.generate(prompts[:8], max_new)
    started = time.perf_counter() - start
    start = time.perf_counter()
    gen = engine.generate(prompts, max_new)
    took = time.perf_counter() - start
    figures: dict[str, Any] = {
        "engine_start_s": round(started, 2), "generate_s": round(took, 3),
        "output_tokens": int(gen.output_tokens.sum()), "output_tokens_per_s": round(gen.output_tokens.sum() / took, 1),
        "prompt_tokens_per_s": round(gen.prompt_tokens.sum() / took, 1), "answers_per_s": round(len(prompts) / took, 2)}
    scores = None
    if labelled is not None:
        start = time.perf_counter()
        scores = engine.score(*labelled).logprob_sum
        figures["label_scoring_s"] = round(time.perf_counter() - start, 3)
    return figures, gen.texts, scores


def _agreement(reference: list[str], other: list[str], ref_scores: np.ndarray | None,
               other_scores: np.ndarray | None) -> dict[str, Any]:
    """Equal answers, how far answers agree before they part, and (labels) equal argmax and score gaps."""
    def agreed_share(a: str, b: str) -> float:
        n = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
        return n / max(len(a), len(b)) if a or b else 1.0

    out: dict[str, Any] = {
        "identical_answers": round(float(np.mean([a == b for a, b in zip(reference, other)])), 4),
        "mean_agreed_share": round(float(np.mean([agreed_share(a, b) for a, b in zip(reference, other)])), 4)}
    if ref_scores is not None and other_scores is not None:
        out["same_label"] = round(float(np.mean(ref_scores.argmax(1) == other_scores.argmax(1))), 4)
        out["max_label_score_diff"] = round(float(np.abs(ref_scores - other_scores).max()), 4)
    return out
