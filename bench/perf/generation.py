"""Batched greedy generation against HF `generate` at batch 1, on a rag variant's real prompts.

    python -m bench.perf generation [--suite legal] [--task tenancy_qa] [--variant rag-k3] [--n 32]

The prompts are the ones the rag variant builds: its retriever, k, template and context budget
(`RagArm.training_contexts`, on validation questions so that no test question is searched
outside a run). Both paths decode greedily up to the task's `max_new_tokens` and stop at the end
of turn. "batch 1" is `model.generate` on one unpadded prompt at a time, as a first script would
do it; "batched" is `bench.generate.generate`, what every generating arm runs (rows of similar
width batched, left padding to a width bucket, KV cache). Reported: seconds per query, generated
tokens per second, the speed-up, and the share of answers the two paths agree on word for word
(padding changes the rounding of a masked softmax, so a few greedy continuations may part).
"""

from __future__ import annotations

import argparse
import time
from typing import Any


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--suite", default="legal")
    parser.add_argument("--task", default="tenancy_qa")
    parser.add_argument("--variant", default="rag-k3", help="a corpus-mode rag variant of the suite, on the base model")
    parser.add_argument("--split", default="validation", help="whose questions are asked (not test: see above)")
    parser.add_argument("--n", type=int, default=32, help="questions answered by each path")
    parser.add_argument("--batch-size", type=int, default=16, help="the batched path's prompts per batch")


def run(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    from ..arms import build_arms, suite_context
    from ..errors import ConfigError, unknown_name
    from ..generate import answer_text, generate, stop_token_ids
    from ..models import load_model
    from ..prompts import render_prompt
    from ..suites import load_suite

    suite = load_suite(args.suite, apply_limits=False)
    arms = build_arms(suite.spec.arms)
    corpus_rag = sorted(name for name, arm in arms.items()
                        if arm.spec.arm == "rag" and arm.spec.mode == "corpus" and not arm.spec.finetuned)
    if args.variant not in corpus_rag:
        raise ConfigError(unknown_name("corpus-mode rag variant on the base model", args.variant, corpus_rag))
    if args.task not in suite.tasks:
        raise ConfigError(unknown_name("task", args.task, list(suite.tasks)))
    task = suite.tasks[args.task]
    if task.spec.kind == "classification":
        raise ConfigError(f"task '{args.task}' is a classification task: its labels are scored, not generated")
    examples = task.split(args.split)[: args.n]
    lm = load_model(suite.spec.model)
    ctx = suite_context(suite, lambda: lm, batch_size=args.batch_size)
    contexts = arms[args.variant].training_contexts(ctx, task, examples)
    prompts = [render_prompt(lm.tokenizer, task.spec, e.input, (), contexts.get(e.id) or None) for e in examples]
    max_new, tok, model = task.spec.max_new_tokens, lm.tokenizer, lm.model
    stop = stop_token_ids(tok)

    generate(model, tok, prompts[:2], max_new_tokens=max_new, batch_size=2, device=lm.device)  # warm-up
    start = time.perf_counter()
    batched = generate(model, tok, prompts, max_new_tokens=max_new, batch_size=args.batch_size, device=lm.device)
    batched_s = time.perf_counter() - start

    single, single_tokens, start = [], 0, time.perf_counter()
    with torch.inference_mode():
        for prompt in prompts:
            ids = tok(prompt, return_tensors="pt", add_special_tokens=False).input_ids.to(lm.device)
            out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_new,
                                 do_sample=False, num_beams=1, pad_token_id=tok.pad_token_id, eos_token_id=stop,
                                 temperature=None, top_p=None, top_k=None)
            text, n_out = answer_text(tok, out[0, ids.shape[1]:].tolist(), stop)
            single.append(text)
            single_tokens += n_out
    single_s = time.perf_counter() - start

    n = len(prompts)
    batched_tokens = int(batched.output_tokens.sum())
    return {
        "suite": args.suite, "task": args.task, "variant": args.variant, "split": args.split, "n": n,
        "dtype": lm.dtype, "device": lm.device, "threads": torch.get_num_threads(), "batch_size": args.batch_size,
        "mean_prompt_tokens": round(float(batched.prompt_tokens.mean()), 1), "max_new_tokens": max_new,
        "batch1_s_per_query": round(single_s / n, 4), "batched_s_per_query": round(batched_s / n, 4),
        "batch1_generated_tokens_per_s": round(single_tokens / single_s, 1),
        "batched_generated_tokens_per_s": round(batched_tokens / batched_s, 1),
        "speedup": round(single_s / batched_s, 2),
        "same_answer_share": round(sum(a == b for a, b in zip(single, batched.texts)) / n, 3),
    }
