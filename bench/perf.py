"""Speed benchmarks whose figures go into docs/performance.md (never timed unit tests).

    python -m bench.perf prompt [--suite legal] [--task clause_type] [--n 32]

    python -m bench.perf train [--suite legal] [--task clause_type] [--steps 6] [--batch-size 8]
                               [--with-bf16] [--hf-baseline] [--with-full] [--model random:qwen2.5-0.5b --device cuda]

`train`: fine-tuning arm (LoRA) training tokens/s, counting real tokens only (never padding):
the arm's Trainer path (length-grouped, right-padded batches, logits only at answer positions)
against a naive fp32 loop (right-padded to --naive-length, full logits), on the same examples;
optionally against transformers' Trainer padded to --max-length, and full fine-tuning; MFU
(4N / 6N FLOPs per token) against the device's measured matmul peak.

    python -m bench.perf rag [--suite legal] [--sizes 10000,100000] [--batch-sizes 16,32,64]

`rag`: retrieval arm. Embedding throughput of the embedder (sentences/s over the suite's chunks
and task inputs) naive (sentence-transformers `encode`, batch 64, fp32) against token-length-sorted
batches in fp32 and bf16, with the bf16 vectors' agreement with fp32; then FAISS build time, size,
single-query latency p50/p95, batched queries/s and recall@10 against exact search for flat, HNSW
and IVF indexes over 10^4 and 10^5 synthetic clustered unit vectors of dim 384.

`prompt`: prompt-arm classification (batched label scoring with a shared prompt pass) against
a naive batch-1 `generate` loop in fp32 on the same examples, and scoring throughput as a share
of this machine's measured matmul peak.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np


def matmul_peak(dtype_name: str, size: int = 2048, seconds: float = 3.0, device: str = "cpu") -> float:
    """Sustained FLOP/s of a square matmul in `dtype_name`: the machine's practical ceiling
    (8192^2 on a GPU, where 2048^2 is too small to fill it)."""
    import torch

    cuda = device.startswith("cuda")
    size = max(size, 8192) if cuda else size
    dtype = getattr(torch, dtype_name)
    a, b = (torch.randn(size, size, dtype=dtype, device=device) for _ in range(2))

    def sync():
        if cuda:
            torch.cuda.synchronize()

    for _ in range(3):
        a @ b
    sync()
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for _ in range(10 if cuda else 1):
            a @ b
            n += 1
        sync()
    return 2 * size**3 * n / (time.perf_counter() - start)


def body_params(model) -> int:
    """Parameters every token passes through (not the embedding lookup, not the output head,
    which the arm runs at answer positions only): N in the 6N / 4N FLOPs-per-token rule."""
    return sum(p.numel() for n, p in model.named_parameters() if "embed_tokens" not in n and "lm_head" not in n)


def flops_per_token(model, context: float) -> float:
    """Forward FLOPs per prompt token: 2 x matmul parameters (without the output head, which the
    scorer runs at one position only) + causal attention (4 x layers x hidden x mean context)."""
    cfg = model.config
    params = sum(p.numel() for n, p in model.named_parameters() if "embed_tokens" not in n and "lm_head" not in n)
    return 2 * params + 4 * cfg.num_hidden_layers * cfg.hidden_size * context / 2


def bench_prompt(args: argparse.Namespace) -> dict:
    import torch

    from .arms.prompt import label_from_text
    from .generate import common_prefix_length, generate, score_continuations
    from .models import load_model
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

    # What the scorer actually computes: the shared prefix once, each prompt's own tokens, and the
    # packed label tokens (all but each label's last) per prompt; logits at 1 + those positions.
    ids = [lm32.tokenizer(p, add_special_tokens=False).input_ids for p in prompts]
    shared = common_prefix_length(ids)
    fed = sum(len(lm32.tokenizer(w, add_special_tokens=False).input_ids) - 1 for w in words)
    computed = shared + sum(t - shared for t in tokens) + len(prompts) * fed
    cfg = lm32.model.config
    head = 2 * cfg.vocab_size * cfg.hidden_size * len(prompts) * (1 + fed)
    out.update({"shared_prefix_tokens": shared, "label_tokens_fed_per_prompt": fed, "computed_tokens": computed})
    for dtype in ("float32", "bfloat16"):
        lm = lm32 if dtype == "float32" else load_model(suite.spec.model, device="cpu", dtype=dtype)
        score_continuations(lm.model, lm.tokenizer, prompts[:4], words, batch_size=4)  # warm-up
        start = time.perf_counter()
        res = score_continuations(lm.model, lm.tokenizer, prompts, words, batch_size=args.batch_size)
        took = time.perf_counter() - start
        per_ex = took / len(prompts)
        achieved = (computed * flops_per_token(lm.model, out["mean_prompt_tokens"]) + head) / took
        peak = matmul_peak(dtype)
        out[dtype] = {"s_per_example": per_ex, "speedup_vs_naive": out["naive_fp32_generate_s_per_example"] / per_ex,
                      "prompt_tokens_per_s": sum(tokens) / took, "computed_tokens_per_s": computed / took,
                      "achieved_gflops": achieved / 1e9,
                      "matmul_peak_gflops": peak / 1e9, "share_of_peak": achieved / peak,
                      "accuracy_uncalibrated": float(np.mean([task.spec.labels[int(np.argmax(s))] == e.target
                                                              for s, e in zip(res.label_scores(task.spec.label_score), examples)]))}
    return out


def bench_train(args: argparse.Namespace) -> dict:
    """Training throughput of the fine-tuning arm against a naive padded fp32 loop."""
    import tempfile
    from pathlib import Path

    import torch

    from .models import load_model
    from .suites import load_suite
    from .training.sft import encode_task
    from .training.trainer import TrainConfig, TrainingError, fit, prepare_model

    suite = load_suite(args.suite, apply_limits=False)
    task = suite.tasks[args.task]
    lm = load_model(args.model or suite.spec.model, device=args.device, dtype="float32")
    n = args.steps * args.batch_size
    train = sorted(task.split("train"), key=lambda e: e.id)[: n]
    rows = encode_task(lm.tokenizer, task.spec, train, args.max_length)
    real = [len(r["input_ids"]) for r in rows]
    out: dict = {"suite": args.suite, "task": args.task, "model": lm.spec, "device": lm.device,
                 "threads": torch.get_num_threads(), "examples": len(rows), "batch_size": args.batch_size,
                 "mean_real_tokens": float(np.mean(real)), "max_real_tokens": max(real)}
    cfg = TrainConfig(method="lora", rank=16, alpha=32, dropout=0.05, epochs=1, batch_size=args.batch_size,
                      learning_rate=args.learning_rate, warmup_ratio=0.0, seed=0)

    # naive: fp32, every batch right-padded to naive_length, logits at every position
    model = prepare_model(lm.model, cfg, lm.device)
    model.train()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=args.learning_rate)
    width = args.naive_length
    pad = lm.tokenizer.pad_token_id
    batches = [rows[i:i + args.batch_size] for i in range(0, len(rows), args.batch_size)]

    def naive_step(batch):
        ids = torch.full((len(batch), width), pad, dtype=torch.long)
        lab = torch.full((len(batch), width), -100, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for i, r in enumerate(batch):
            k = min(width, len(r["input_ids"]))
            ids[i, :k], lab[i, :k], mask[i, :k] = torch.tensor(r["input_ids"][-k:]), torch.tensor(r["labels"][-k:]), 1
        loss = model(input_ids=ids.to(lm.device), attention_mask=mask.to(lm.device), labels=lab.to(lm.device)).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
        return int(mask.sum())

    naive_step(batches[0])  # warm-up
    start, toks = time.perf_counter(), 0
    for b in batches:
        toks += naive_step(b)
    took = time.perf_counter() - start
    out["naive_fp32_padded"] = {"real_tokens_per_s": toks / took, "padded_tokens_per_s": len(rows) * width / took,
                                "s_per_step": took / len(batches), "width": width}
    del model, opt
    if lm.device.startswith("cuda"):
        torch.cuda.empty_cache()

    n_body = body_params(lm.model)
    peak_dtype = "bfloat16" if (args.with_bf16 or lm.device.startswith("cuda")) else "float32"
    peak = matmul_peak(peak_dtype, device=lm.device)
    out["mfu_basis"] = {"body_params": n_body, "flops_per_token_lora": 4 * n_body, "flops_per_token_full": 6 * n_body,
                        "matmul_peak_tflops": peak / 1e12, "peak_dtype": peak_dtype}

    def mfu(tokens_per_s: float, method: str) -> float:
        return (6 if method == "full" else 4) * n_body * tokens_per_s / peak

    if args.hf_baseline:
        out["hf_trainer_padded"] = _hf_padded_baseline(lm, rows, cfg, args)
        out["hf_trainer_padded"]["mfu"] = mfu(out["hf_trainer_padded"]["real_tokens_per_s"], "lora")

    variants = [("trident_fp32", "lora", "float32", 0.05), ("trident_bf16_frozen_base", "lora", "bfloat16", 0.05),
                ("trident_bf16_frozen_base_no_dropout", "lora", "bfloat16", 0.0), ("trident_full", "full", "float32", 0.0)]
    for name, method, base_dtype, dropout in variants:
        if (base_dtype == "bfloat16" and not args.with_bf16) or (method == "full" and not args.with_full):
            continue
        with tempfile.TemporaryDirectory() as tmp:
            c = TrainConfig(**{**cfg.__dict__, "method": method, "base_dtype": base_dtype, "dropout": dropout,
                               "learning_rate": cfg.learning_rate / 10 if method == "full" else cfg.learning_rate})
            model = prepare_model(lm.model, c, lm.device)
            try:
                fit(model, lm.tokenizer, rows[: args.batch_size], None, c, Path(tmp) / "warm", device=lm.device,
                    log=lambda m: None)
                res = fit(model, lm.tokenizer, rows, None, c, Path(tmp) / "run", device=lm.device, log=lambda m: None)
            except TrainingError as e:  # reported, not hidden: the other variants still get timed
                out[name] = {"error": str(e), "method": method, "base_dtype": base_dtype}
                continue
        out[name] = {"real_tokens_per_s": res.tokens_per_s, "s_per_step": res.step_seconds / max(1, res.steps),
                     "steps": res.steps, "wall_s_incl_setup_and_save": res.wall_seconds,
                     "speedup_vs_naive": res.tokens_per_s / out["naive_fp32_padded"]["real_tokens_per_s"],
                     "mfu": mfu(res.tokens_per_s, method), "method": method, "precision": res.precision,
                     "lora_dropout": dropout if method == "lora" else None,
                     "peak_memory_mb": res.peak_memory_mb, "peak_memory_kind": res.peak_memory_kind}
        if "hf_trainer_padded" in out and method == "lora":
            out[name]["speedup_vs_hf_trainer_padded"] = res.tokens_per_s / out["hf_trainer_padded"]["real_tokens_per_s"]
        del model
        if lm.device.startswith("cuda"):
            torch.cuda.empty_cache()
    return out


def _hf_padded_baseline(lm, rows: list[dict], cfg, args: argparse.Namespace) -> dict:
    """transformers' Trainer set up as its tutorials do: every example right-padded to
    --max-length, loss from logits at every position (labels -100 on prompt and padding), bf16
    autocast over fp32 weights on CUDA, no length grouping; the same LoRA and data as the arm."""
    import tempfile

    import torch
    from transformers import Trainer, TrainingArguments, default_data_collator

    from .training.trainer import TrainConfig, _StepTimer, prepare_model

    width, pad = args.max_length, lm.tokenizer.pad_token_id
    padded = []
    for r in rows:
        k = len(r["input_ids"])
        padded.append({"input_ids": r["input_ids"] + [pad] * (width - k), "attention_mask": [1] * k + [0] * (width - k),
                       "labels": r["labels"] + [-100] * (width - k)})
    real = sum(len(r["input_ids"]) for r in rows)
    cuda = lm.device.startswith("cuda")

    def run(data, tmp):
        model = prepare_model(lm.model, TrainConfig(**{**cfg.__dict__, "base_dtype": "float32"}), lm.device)
        timer = _StepTimer()
        targs = TrainingArguments(output_dir=tmp, per_device_train_batch_size=args.batch_size, num_train_epochs=1,
                                  learning_rate=cfg.learning_rate, bf16=cuda and torch.cuda.is_bf16_supported(),
                                  save_strategy="no", report_to="none", disable_tqdm=True, logging_steps=10,
                                  use_cpu=not cuda, dataloader_pin_memory=cuda, remove_unused_columns=False)
        Trainer(model=model, args=targs, train_dataset=data, data_collator=default_data_collator,
                callbacks=[timer]).train()
        return timer.seconds

    with tempfile.TemporaryDirectory() as tmp:
        run(padded[: args.batch_size], tmp)  # warm-up
        seconds = run(padded, tmp)
    steps = -(-len(rows) // args.batch_size)
    return {"real_tokens_per_s": real / seconds, "padded_tokens_per_s": len(rows) * width / seconds,
            "s_per_step": seconds / steps, "steps": steps, "width": width}


def bench_rag(args: argparse.Namespace) -> dict:
    """Embedding throughput and FAISS index latency/recall for the retrieval arm."""
    import importlib.util
    import random

    import faiss
    import torch

    from .retrieval import index as ix
    from .retrieval.chunking import chunk_documents
    from .retrieval.embedding import Embedder
    from .suites import load_suite

    out: dict = {"torch_threads": torch.get_num_threads(), "faiss_threads": faiss.omp_get_max_threads(),
                 "backends": {b: importlib.util.find_spec(m) is not None
                              for b, m in (("onnx", "onnxruntime"), ("openvino", "openvino"), ("optimum", "optimum"))}}
    suite = load_suite(args.suite, apply_limits=False)
    emb = Embedder(args.embedder)
    chunks = chunk_documents(suite.corpus, emb.tokenizer, min(256, emb.max_seq_length - 2), 32) if suite.corpus else []
    inputs = {t.name: [e.input for sp in t.examples.values() for e in sp] for t in suite.tasks.values()}
    shortest = min(inputs, key=lambda n: np.mean([len(x) for x in inputs[n]]))
    sets = {"all_texts": [c.embed_text for c in chunks] + [x for v in inputs.values() for x in v],
            f"short_{shortest}_inputs": inputs[shortest]}
    if chunks:
        sets["corpus_chunks"] = [c.embed_text for c in chunks]
    out["embedding"] = {"embedder": emb.identity}

    def rate(fn, texts, repeats: int = 2) -> float:
        fn(texts[:64])  # warm-up
        best = 0.0
        for _ in range(repeats):
            start = time.perf_counter()
            fn(texts)
            best = max(best, len(texts) / (time.perf_counter() - start))
        return round(best, 1)

    refs = {}
    for name, texts in sets.items():
        texts = list(texts)
        random.Random(0).shuffle(texts)
        lengths = [len(x) for x in emb.tokenizer(texts, truncation=True, max_length=emb.max_seq_length).input_ids]
        res = out["embedding"][name] = {"texts": len(texts), "mean_tokens": round(float(np.mean(lengths)), 1),
                                        "max_tokens": int(max(lengths))}
        emb.model.to(torch.float32)
        res["naive_st_encode_b64_fp32"] = rate(lambda t: emb.model.encode(t, batch_size=64, show_progress_bar=False),
                                               texts)
        refs[name] = (texts, emb.encode(texts))
        for bs in args.batch_sizes:
            res[f"sorted_b{bs}_fp32"] = rate(lambda t: emb.encode(t, batch_size=bs), texts)
        emb.model.to(torch.bfloat16)
        for bs in args.batch_sizes:
            res[f"sorted_b{bs}_bf16"] = rate(lambda t: emb.encode(t, batch_size=bs), texts)
        best = max(v for k, v in res.items() if k.startswith("sorted_"))
        res["best_tokens_per_s"] = round(best * res["mean_tokens"], 0)
    texts, ref = refs["all_texts"]
    low = emb.encode(texts)
    cos = (ref * low).sum(1)
    q = out["embedding"]["bf16_vs_fp32"] = {}
    q["cosine_min"] = round(float(cos.min()), 5)
    q["cosine_mean"] = round(float(cos.mean()), 5)
    top = lambda x: np.argsort(-(x[:200] @ x.T), axis=1)[:, 1:11]  # noqa: E731 (neighbours among the texts)
    a, b = top(ref), top(low)
    q["top10_neighbour_overlap"] = round(float(np.mean([len(set(p) & set(r)) / 10 for p, r in zip(a, b)])), 4)

    out["index"] = {}
    rng = np.random.default_rng(0)
    for n in args.sizes:
        x, queries = synthetic_vectors(rng, n, 384, args.queries)
        exact = None
        for kind in ("flat", "hnsw", "ivf"):
            built = ix.build(x, kind)
            lat = []
            for q in queries[:200]:
                start = time.perf_counter()
                ix.search(built.index, q[None, :], 10)
                lat.append((time.perf_counter() - start) * 1000)
            start = time.perf_counter()
            _, got = ix.search(built.index, queries, 10)
            batched = len(queries) / (time.perf_counter() - start)
            if kind == "flat":
                exact = got
            recall = float(np.mean([len(set(p) & set(q)) / 10 for p, q in zip(exact, got)]))
            out["index"][f"{kind}_{n}"] = {
                "params": built.params, "build_s": round(built.build_s, 3), "bytes": ix.index_bytes(built.index),
                "query_ms_p50": round(float(np.percentile(lat, 50)), 4),
                "query_ms_p95": round(float(np.percentile(lat, 95)), 4),
                "batched_queries_per_s": round(batched, 1), "recall@10_vs_exact": round(recall, 4)}
    return out


def synthetic_vectors(rng, n: int, dim: int, n_queries: int) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors around n/100 random centres (embeddings cluster by topic; uniform random
    vectors would be an unrealistically hard case for approximate search), plus held-out queries."""
    centres = rng.standard_normal((max(1, n // 100), dim)).astype(np.float32)
    pick = rng.integers(0, len(centres), n + n_queries)
    x = centres[pick] + 0.6 * rng.standard_normal((n + n_queries, dim)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return np.ascontiguousarray(x[:n]), np.ascontiguousarray(x[n:])


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.perf")
    sub = p.add_subparsers(dest="what", required=True)
    pr = sub.add_parser("prompt")
    pr.add_argument("--suite", default="legal")
    pr.add_argument("--task", default="clause_type")
    pr.add_argument("--n", type=int, default=64, help="examples scored by the batched scorer")
    pr.add_argument("--naive-n", type=int, default=16, help="examples run through the naive loop")
    pr.add_argument("--batch-size", type=int, default=16)
    tr = sub.add_parser("train")
    tr.add_argument("--suite", default="legal")
    tr.add_argument("--task", default="clause_type")
    tr.add_argument("--model", default=None, help="default: the suite's model (e.g. random:qwen2.5-0.5b on a GPU)")
    tr.add_argument("--device", default=None, help="default: cuda if available, else cpu")
    tr.add_argument("--steps", type=int, default=6, help="optimiser steps timed per variant")
    tr.add_argument("--batch-size", type=int, default=8)
    tr.add_argument("--max-length", type=int, default=256)
    tr.add_argument("--naive-length", type=int, default=128, help="the naive loop pads every batch to this")
    tr.add_argument("--learning-rate", type=float, default=2e-4,
                    help="LoRA learning rate (full fine-tuning uses a tenth); throughput does not depend on it")
    tr.add_argument("--hf-baseline", action="store_true",
                    help="also time transformers' Trainer with padding to --max-length and full logits")
    tr.add_argument("--with-full", action="store_true", help="also time full fine-tuning (6N FLOPs per token)")
    tr.add_argument("--with-bf16", action="store_true",
                    help="also time a bf16 frozen base with fp32 adapters, with and without LoRA dropout")
    rg = sub.add_parser("rag")
    rg.add_argument("--suite", default="legal")
    rg.add_argument("--embedder", default="all-minilm-l6-v2")
    rg.add_argument("--batch-sizes", type=lambda v: [int(x) for x in v.split(",")], default=[16, 32, 64])
    rg.add_argument("--sizes", type=lambda v: [int(x) for x in v.split(",")], default=[10_000, 100_000])
    rg.add_argument("--queries", type=int, default=1000, help="queries per index (recall and batched rate)")
    args = p.parse_args()
    if args.what == "rag":
        print(json.dumps(bench_rag(args), indent=2))
        return
    print(json.dumps(bench_prompt(args) if args.what == "prompt" else bench_train(args), indent=2))


if __name__ == "__main__":
    main()
