"""Retrieval arm: embedding throughput and bf16 agreement; FAISS build, latency and recall.

Embedding throughput of the embedder (sentences/s over the suite's chunks and task inputs),
naive (sentence-transformers `encode`, batch 64, fp32) against token-length-sorted batches in
fp32 and bf16, with the bf16 vectors' agreement with fp32; then FAISS build time, size,
single-query latency p50/p95, batched queries/s and recall@10 against exact search for flat,
HNSW and IVF indexes over synthetic clustered unit vectors of dim 384 (10^4 and 10^5 by default).
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np

from .common import synthetic_vectors

INDEX_KINDS = ("flat", "hnsw", "ivf")  # flat first: its (exact) results are what recall is measured against
DIM = 384  # all-MiniLM-L6-v2's, the default embedder
LATENCY_QUERIES = 200  # single queries timed one by one for p50/p95


def int_list(value: str) -> list[int]:
    """'16,32,64' -> [16, 32, 64]"""
    return [int(x) for x in value.split(",")]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--suite", default="legal")
    parser.add_argument("--embedder", default="all-minilm-l6-v2")
    parser.add_argument("--batch-sizes", type=int_list, default=[16, 32, 64],
                        help="comma-separated embedding batch sizes, each timed in fp32 and bf16")
    parser.add_argument("--sizes", type=int_list, default=[10_000, 100_000],
                        help="comma-separated numbers of synthetic vectors, one set of indexes each")
    parser.add_argument("--queries", type=int, default=1000, help="queries per index (recall and batched rate)")


def run(args: argparse.Namespace) -> dict:
    """Embedding throughput and FAISS index latency/recall for the retrieval arm."""
    import importlib.util

    import faiss
    import torch

    from ..retrieval.embedding import Embedder
    from ..suites import load_suite

    optional = (("onnx", "onnxruntime"), ("openvino", "openvino"), ("optimum", "optimum"))
    out: dict = {"torch_threads": torch.get_num_threads(), "faiss_threads": faiss.omp_get_max_threads(),
                 "backends": {b: importlib.util.find_spec(m) is not None for b, m in optional}}
    suite = load_suite(args.suite, apply_limits=False)
    emb = Embedder(args.embedder)
    sets = text_sets(suite, emb)
    out["embedding"] = {"embedder": emb.identity}
    reference = None
    for name, texts in sets.items():
        texts = list(texts)
        random.Random(0).shuffle(texts)  # no accidental length order from the files: sorting must earn its speed-up
        out["embedding"][name], fp32 = _embedding_rates(emb, texts, args.batch_sizes)
        if name == "all_texts":
            reference = (texts, fp32)
    out["embedding"]["bf16_vs_fp32"] = _bf16_agreement(emb, *reference)
    out["index"] = index_figures(args.sizes, args.queries)
    return out


def text_sets(suite: Any, emb: Any) -> dict[str, list[str]]:
    """Every text the arm embeds (corpus chunks and task inputs); the task with the shortest
    inputs on their own (where padding costs most); the corpus chunks on their own."""
    from ..retrieval.chunking import chunk_documents

    chunks = chunk_documents(suite.corpus, emb.tokenizer, min(256, emb.max_seq_length - 2), 32) if suite.corpus else []
    inputs = {t.name: [e.input for sp in t.examples.values() for e in sp] for t in suite.tasks.values()}
    shortest = min(inputs, key=lambda n: np.mean([len(x) for x in inputs[n]]))
    sets = {"all_texts": [c.embed_text for c in chunks] + [x for v in inputs.values() for x in v],
            f"short_{shortest}_inputs": inputs[shortest]}
    if chunks:
        sets["corpus_chunks"] = [c.embed_text for c in chunks]
    return sets


def best_rate(fn: Callable[[list[str]], Any], texts: list[str], repeats: int = 2) -> float:
    """Texts per second of `fn(texts)`, the best of `repeats` after a warm-up: the least
    disturbed run, on a machine where other work comes and goes."""
    fn(texts[:64])
    best = 0.0
    for _ in range(repeats):
        start = time.perf_counter()
        fn(texts)
        best = max(best, len(texts) / (time.perf_counter() - start))
    return round(best, 1)


def _embedding_rates(emb: Any, texts: list[str], batch_sizes: list[int]) -> tuple[dict, np.ndarray]:
    """Texts/s of naive and length-sorted encoding in fp32 and bf16; and the fp32 vectors, the
    reference bf16's are compared with. Leaves the embedder in bf16."""
    import torch

    lengths = [len(x) for x in emb.tokenizer(texts, truncation=True, max_length=emb.max_seq_length).input_ids]
    res = {"texts": len(texts), "mean_tokens": round(float(np.mean(lengths)), 1), "max_tokens": int(max(lengths))}
    emb.model.to(torch.float32)
    res["naive_st_encode_b64_fp32"] = best_rate(partial(emb.model.encode, batch_size=64, show_progress_bar=False),
                                                texts)
    fp32 = emb.encode(texts)
    for bs in batch_sizes:
        res[f"sorted_b{bs}_fp32"] = best_rate(partial(emb.encode, batch_size=bs), texts)
    emb.model.to(torch.bfloat16)
    for bs in batch_sizes:
        res[f"sorted_b{bs}_bf16"] = best_rate(partial(emb.encode, batch_size=bs), texts)
    best = max(v for k, v in res.items() if k.startswith("sorted_"))
    res["best_tokens_per_s"] = round(best * res["mean_tokens"], 0)
    return res, fp32


def _bf16_agreement(emb: Any, texts: list[str], fp32: np.ndarray) -> dict:
    """How far bf16 vectors are from fp32 ones: cosine, and whether retrieval would still find
    the same neighbours (what matters to the arm)."""
    import torch

    emb.model.to(torch.bfloat16)
    bf16 = emb.encode(texts)
    cos = (fp32 * bf16).sum(1)
    overlap = [len(set(a) & set(b)) / 10 for a, b in zip(top10_neighbours(fp32), top10_neighbours(bf16))]
    return {"cosine_min": round(float(cos.min()), 5), "cosine_mean": round(float(cos.mean()), 5),
            "top10_neighbour_overlap": round(float(np.mean(overlap)), 4)}


def top10_neighbours(x: np.ndarray) -> np.ndarray:
    """For each of the first 200 vectors, the positions of its 10 nearest others among `x`
    (itself, always first, left out)."""
    return np.argsort(-(x[:200] @ x.T), axis=1)[:, 1:11]


def index_figures(sizes: list[int], n_queries: int) -> dict:
    """Build time, size, latency, batched rate and recall@10 of each index kind at each size."""
    figures = {}
    rng = np.random.default_rng(0)
    for n in sizes:
        x, queries = synthetic_vectors(rng, n, DIM, n_queries)
        exact = None
        for kind in INDEX_KINDS:
            figures[f"{kind}_{n}"], found = _time_index(kind, x, queries)
            if kind == "flat":
                exact = found
            recall = float(np.mean([len(set(p) & set(q)) / 10 for p, q in zip(exact, found)]))
            figures[f"{kind}_{n}"]["recall@10_vs_exact"] = round(recall, 4)
    return figures


def _time_index(kind: str, x: np.ndarray, queries: np.ndarray) -> tuple[dict, np.ndarray]:
    """One index over `x`: its figures, and the top 10 it finds for every query."""
    from ..retrieval import index as ix

    built = ix.build(x, kind)
    latency_ms = []
    for q in queries[:LATENCY_QUERIES]:
        start = time.perf_counter()
        ix.search(built.index, q[None, :], 10)
        latency_ms.append((time.perf_counter() - start) * 1000)
    start = time.perf_counter()
    _, found = ix.search(built.index, queries, 10)
    batched = len(queries) / (time.perf_counter() - start)
    return {"params": built.params, "build_s": round(built.build_s, 3), "bytes": ix.index_bytes(built.index),
            "query_ms_p50": round(float(np.percentile(latency_ms, 50)), 4),
            "query_ms_p95": round(float(np.percentile(latency_ms, 95)), 4),
            "batched_queries_per_s": round(batched, 1)}, found
