"""Speed benchmarks whose figures go into docs/performance.md (never timed unit tests).

    python -m bench.perf prompt [--suite legal] [--task clause_type] [--n 32]

`prompt`: prompt-arm classification (batched label scoring with a shared prompt pass) against
a naive batch-1 `generate` loop in fp32 on the same examples, and scoring throughput as a share
of this machine's measured matmul peak.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np


def matmul_peak(dtype_name: str, size: int = 2048, seconds: float = 3.0) -> float:
    """Sustained FLOP/s of a square matmul in `dtype_name`: the machine's practical ceiling."""
    import torch

    dtype = getattr(torch, dtype_name)
    a, b = torch.randn(size, size, dtype=dtype), torch.randn(size, size, dtype=dtype)
    for _ in range(3):
        a @ b
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        a @ b
        n += 1
    return 2 * size**3 * n / (time.perf_counter() - start)


def flops_per_token(model, context: float) -> float:
    """Forward FLOPs per prompt token: 2 x matmul parameters (without the output head, which the
    scorer runs at one position only) + causal attention (4 x layers x hidden x mean context)."""
    cfg = model.config
    params = sum(p.numel() for n, p in model.named_parameters() if "embed_tokens" not in n and "lm_head" not in n)
    return 2 * params + 4 * cfg.num_hidden_layers * cfg.hidden_size * context / 2


def bench_prompt(args: argparse.Namespace) -> dict:
    import torch

    from .generate import generate, score_continuations
    from .models import load_model
    from .arms.prompt import label_from_text
    from .prompts import render_prompt
    from .suites import load_suite

    suite = load_suite(args.suite, apply_limits=False)
    task = suite.tasks[args.task]
    examples = task.split("test")[: args.n]
    words = [task.spec.verbalise(l) for l in task.spec.labels]
    out: dict = {"suite": args.suite, "task": args.task, "n": len(examples), "threads": torch.get_num_threads()}

    lm32 = load_model(suite.spec.model, device="cpu", dtype="float32")
    prompts = [render_prompt(lm32.tokenizer, task.spec, e.input) for e in examples]
    tokens = [len(lm32.tokenizer(p, add_special_tokens=False).input_ids) for p in prompts]
    out["mean_prompt_tokens"] = float(np.mean(tokens))
    naive_n = min(args.naive_n, len(prompts))
    start = time.perf_counter()
    correct = 0
    for p, e in zip(prompts[:naive_n], examples[:naive_n]):
        g = generate(lm32.model, lm32.tokenizer, [p], max_new_tokens=task.spec.max_new_tokens, batch_size=1)
        correct += label_from_text(task, g.texts[0]) == e.target
    out["naive_fp32_generate_s_per_example"] = (time.perf_counter() - start) / naive_n

    for dtype in ("float32", "bfloat16"):
        lm = lm32 if dtype == "float32" else load_model(suite.spec.model, device="cpu", dtype=dtype)
        score_continuations(lm.model, lm.tokenizer, prompts[:4], words, batch_size=4)  # warm-up
        start = time.perf_counter()
        res = score_continuations(lm.model, lm.tokenizer, prompts, words, batch_size=args.batch_size)
        took = time.perf_counter() - start
        per_ex = took / len(prompts)
        fpt = flops_per_token(lm.model, out["mean_prompt_tokens"])
        achieved = sum(tokens) * fpt / took
        peak = matmul_peak(dtype)
        out[dtype] = {"s_per_example": per_ex, "speedup_vs_naive": out["naive_fp32_generate_s_per_example"] / per_ex,
                      "prompt_tokens_per_s": sum(tokens) / took, "achieved_gflops": achieved / 1e9,
                      "matmul_peak_gflops": peak / 1e9, "share_of_peak": achieved / peak,
                      "accuracy_uncalibrated": float(np.mean([task.spec.labels[int(np.argmax(s))] == e.target
                                                              for s, e in zip(res.mean_logprob, examples)]))}
    return out


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.perf")
    sub = p.add_subparsers(dest="what", required=True)
    pr = sub.add_parser("prompt")
    pr.add_argument("--suite", default="legal")
    pr.add_argument("--task", default="clause_type")
    pr.add_argument("--n", type=int, default=64, help="examples scored by the batched scorer")
    pr.add_argument("--naive-n", type=int, default=16, help="examples run through the naive loop")
    pr.add_argument("--batch-size", type=int, default=16)
    args = p.parse_args()
    print(json.dumps(bench_prompt(args), indent=2))


if __name__ == "__main__":
    main()
