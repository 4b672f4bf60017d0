"""FAISS at 10^6 vectors: IVF-PQ and/or HNSW build, memory, latency and recall against exact search.

Builds each `--index` (ivfpq, hnsw, ivf, flat) over `--vectors` synthetic unit vectors of the
embedder's dimension (seeded, clustered around n/100 centres as embeddings cluster by topic) and
reports build seconds (IVF-PQ: its training apart), stored size, peak resident memory while it is
built and queried, single-query latency p50/p95 over `--queries` held-out queries, batched
queries/s, and recall@10 against exact inner-product search over the same vectors.

flat, hnsw and ivf are bench.retrieval.index's own builds (what the rag arm's `index:` setting
builds, and what its `auto` picks by size); IVF-PQ, which the arm does not offer yet, is built
here with that module's IVF rule for nlist and nprobe, and `--pq-bytes` bytes per vector (48 at
dim 384: 32x smaller than float32); `--refine K` re-ranks its best K x 10 candidates by exact
inner product (faiss IndexRefineFlat, which keeps the float32 vectors: recall back, memory too).

With faiss-gpu and a GPU (`faiss.get_num_gpus() > 0`) the exact search and the flat, ivf and
ivfpq indexes run on GPU 0 (IVF-PQ is trained there; flat and ivf are built by the arm's CPU code
and then moved); HNSW has no GPU version and stays on the CPU. The output says which device each
one used. `--faiss-device cpu` keeps everything on the CPU.

`--docs N` also runs N generated short documents (lease summaries, each with its own reference
number) through the rag arm's own indexing code (`RagArm.retriever`: chunking, embedding with
the real embedder, the index its `--doc-index` setting picks, searched where `--faiss-device`
says as the variant's `index_device`, and BM25 beside it, as a `retriever: hybrid` variant builds
them) in an empty cache, and reports the same figures for the dense index,
plus, for dense, BM25 and the fused hybrid, single-query latency and how often the top 10 hold the
document a generated question names, for questions naming it by reference number and by content
(and the share chance alone would give). That path embeds every document: at 10^5 on 2 CPU cores
it takes about 25 minutes.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from ..errors import ConfigError, ResourceError, unknown_name
from .common import fresh_cache, ms_percentile, peak_rss_bytes, reset_peak_rss, rss_bytes, synthetic_vectors
from .generated_corpus import ASKS_BY, GOLD_FIELD

INDEX_KINDS = ("ivfpq", "hnsw", "ivf", "flat")
GPU_KINDS = ("flat", "ivf", "ivfpq")
"""Kinds faiss-gpu has (HNSW has none)."""
K = 10
"""Neighbours searched; recall@10 is measured against exact search's top 10."""
PQ_BITS = 8
"""Bits per PQ sub-quantizer code: 256 centroids each, one byte."""
TRAIN_PER_LIST = 64
"""IVF k-means training points per list (faiss wants at least 39); a sample, not all vectors."""
NPROBE_SHARE = 16
"""Lists probed by default: nlist / 16, as bench.retrieval.index probes its IVF-Flat."""
DOC_QUERIES = 1000
"""Generated questions searched through the rag arm (--docs)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--vectors", type=int, default=1_000_000, help="synthetic vectors indexed")
    parser.add_argument("--dim", type=int, default=384, help="their dimension (all-MiniLM-L6-v2's: 384)")
    parser.add_argument("--index", type=_names, default=["ivfpq"],
                        help=f"comma-separated index kinds from {','.join(INDEX_KINDS)} (default: ivfpq)")
    parser.add_argument("--queries", type=int, default=1000, help="held-out queries (latency, rate and recall)")
    parser.add_argument("--pq-bytes", type=int, default=None,
                        help="IVF-PQ bytes (sub-quantizers) per vector; must divide --dim (default: dim / 8)")
    parser.add_argument("--nlist", type=int, default=None,
                        help="IVF-PQ lists (default: bench.retrieval.index's IVF rule, 4 sqrt(n))")
    parser.add_argument("--nprobe", type=int, default=None, help="IVF-PQ lists probed (default: nlist / 16)")
    parser.add_argument("--refine", type=int, default=0, metavar="K_FACTOR",
                        help="IVF-PQ: re-rank the best K_FACTOR x 10 candidates by exact inner product "
                             "(faiss IndexRefineFlat: keeps the float32 vectors, so memory grows back; 0: off)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--faiss-device", choices=("auto", "cpu", "gpu"), default="auto",
                        help="auto: a GPU when faiss-gpu sees one")
    parser.add_argument("--docs", type=int, default=0,
                        help="also index this many generated documents through the rag arm (real embedder)")
    parser.add_argument("--embedder", default="all-minilm-l6-v2", help="--docs: the rag arm's embedder")
    parser.add_argument("--doc-index", choices=("auto", "flat", "hnsw", "ivf"), default="auto",
                        help="--docs: the rag arm's index setting (auto: by size, as in a run)")
    parser.add_argument("--device", default="auto", help="--docs: embedder device (auto: cuda when present)")


def _names(value: str) -> list[str]:
    return [x.strip() for x in value.split(",") if x.strip()]


@dataclass(frozen=True)
class IndexFigures:
    """One index over the synthetic vectors."""

    kind: str
    device: str
    """cpu or gpu: where it was searched."""
    params: dict[str, Any]
    train_s: float | None
    """IVF-PQ: seconds training the coarse quantizer and the codebooks (part of build_s)."""
    build_s: float
    """Seconds from nothing to a searchable index (training, adding, moving to the GPU)."""
    bytes: int
    """Size of the index as stored (faiss.write_index)."""
    peak_rss_bytes: int | None
    """Peak resident memory of the process while this index was built and queried (host memory;
    the vectors it indexes included)."""
    rss_growth_bytes: int | None
    """That peak less the resident memory before building: what the index itself cost."""
    query_ms_p50: float
    query_ms_p95: float
    """Single-query latency, one query at a time."""
    batched_queries_per_s: float
    recall_at_10: float
    """Share of exact search's top 10 that this index's top 10 holds, over all queries."""


def run(args: argparse.Namespace) -> dict:
    """Check every option first, then exact search, each index, and optionally the rag arm path."""
    import faiss

    from ..retrieval import index as ix

    kinds = check_options(args)
    ix.check_memory(args.vectors, args.dim, "hnsw" if "hnsw" in kinds else "flat")
    gpu = gpu_resources(args.faiss_device)
    out: dict[str, Any] = {
        "faiss": faiss.__version__, "faiss_threads": faiss.omp_get_max_threads(),
        "faiss_device": (f"gpu: faiss-gpu on {ix.faiss_gpus()} GPU(s), GPU 0 used"
                         + ("; hnsw (no GPU version) on the cpu" if "hnsw" in kinds else "")
                         if gpu is not None else f"cpu: {_why_cpu(args.faiss_device)}"),
        "vectors": args.vectors, "dim": args.dim, "queries": args.queries, "seed": args.seed}
    t0 = time.perf_counter()
    x, queries = synthetic_vectors(np.random.default_rng(args.seed), args.vectors, args.dim, args.queries)
    out["generate_s"] = round(time.perf_counter() - t0, 3)
    t0 = time.perf_counter()
    truth = exact_top_k(x, queries, gpu)
    out["exact_search_s"] = round(time.perf_counter() - t0, 3)
    out["indexes"] = {kind: asdict(index_figures(kind, x, queries, truth, args, gpu)) for kind in kinds}
    del x, queries
    gc.collect()
    if args.docs:
        out["rag_arm"] = rag_arm_figures(args)
    return out


def check_options(args: argparse.Namespace) -> list[str]:
    """The index kinds to build; every bad option is a one-line ConfigError before any compute."""
    for kind in args.index:
        if kind not in INDEX_KINDS:
            raise ConfigError(f"--index: {unknown_name('index kind', kind, list(INDEX_KINDS))}")
    for option in ("vectors", "dim", "queries"):
        if getattr(args, option) < 1:
            raise ConfigError(f"--{option} must be at least 1, got {getattr(args, option)}")
    if args.docs < 0:
        raise ConfigError(f"--docs must be 0 (none) or more, got {args.docs}")
    if args.docs and args.faiss_device == "gpu" and args.doc_index == "hnsw":
        raise ConfigError("--faiss-device gpu with --doc-index hnsw: faiss has no GPU version of hnsw; "
                          "use --doc-index flat, ivf or auto")
    if "ivfpq" in args.index:
        if args.vectors < 2**PQ_BITS:
            raise ConfigError(f"--vectors {args.vectors} is too few for IVF-PQ: its codebooks train "
                              f"{2**PQ_BITS} centroids each, so it needs at least {2**PQ_BITS} vectors")
        m = pq_bytes(args)
        if m < 1 or args.dim % m:
            raise ConfigError(f"--pq-bytes {m} must be at least 1 and divide --dim {args.dim}")
        for option in ("nlist", "nprobe"):
            if getattr(args, option) is not None and getattr(args, option) < 1:
                raise ConfigError(f"--{option} must be at least 1, got {getattr(args, option)}")
        if args.nlist is not None and args.nlist * 39 > args.vectors:
            raise ConfigError(f"--nlist {args.nlist} needs at least {args.nlist * 39} vectors to train "
                              f"(faiss: 39 per list); --vectors is {args.vectors}")
        if args.refine < 0:
            raise ConfigError(f"--refine must be 0 (off) or more, got {args.refine}")
    return list(dict.fromkeys(args.index))


def pq_bytes(args: argparse.Namespace) -> int:
    return args.pq_bytes if args.pq_bytes is not None else max(1, args.dim // 8)


def gpu_resources(requested: str) -> Any | None:
    """faiss GPU resources when a GPU is to be used, else None."""
    import faiss

    from ..retrieval.index import faiss_gpus

    gpus = faiss_gpus()
    if requested == "gpu" and gpus == 0:
        raise ResourceError("--faiss-device gpu: faiss sees no GPU; install faiss-gpu (in place of faiss-cpu) on a "
                            "machine with a CUDA GPU, or use --faiss-device auto")
    if requested == "cpu" or gpus == 0:
        return None
    return faiss.StandardGpuResources()


def _why_cpu(requested: str) -> str:
    return "--faiss-device cpu" if requested == "cpu" else "faiss.get_num_gpus() == 0 (faiss-cpu, or no GPU)"


def exact_top_k(x: np.ndarray, queries: np.ndarray, gpu: Any | None) -> np.ndarray:
    """Positions of each query's K nearest vectors by exact inner product, without an index (no
    second copy of the vectors)."""
    import faiss

    k = min(K, len(x))
    if gpu is not None:
        return faiss.knn_gpu(gpu, queries, x, k, metric=faiss.METRIC_INNER_PRODUCT)[1]
    return faiss.knn(queries, x, k, metric=faiss.METRIC_INNER_PRODUCT)[1]


def recall_at_k(truth: np.ndarray, found: np.ndarray) -> float:
    """Share of the true neighbours found, over all queries (-1: an empty slot, never a match)."""
    hits = sum(len(set(t[t >= 0]) & set(f[f >= 0])) for t, f in zip(truth, found))
    return round(hits / max(1, int((truth >= 0).sum())), 4)


def index_figures(kind: str, x: np.ndarray, queries: np.ndarray, truth: np.ndarray, args: argparse.Namespace,
                  gpu: Any | None) -> IndexFigures:
    """Build `kind` over `x`, time its queries one by one and in a batch, measure recall and memory."""
    from ..retrieval import index as ix

    gc.collect()
    reset_peak_rss()
    before = rss_bytes()
    t0 = time.perf_counter()
    index, params, train_s, device = build(kind, x, args, gpu)
    build_s = time.perf_counter() - t0
    latency = np.zeros(len(queries))
    for i in range(len(queries)):
        start = time.perf_counter()
        ix.search(index, queries[i:i + 1], K)
        latency[i] = time.perf_counter() - start
    start = time.perf_counter()
    _, found = ix.search(index, queries, K)
    batched = len(queries) / max(time.perf_counter() - start, 1e-9)
    peak = peak_rss_bytes()
    size = stored_bytes(index, device)
    del index
    return IndexFigures(kind, device, params, train_s, round(build_s, 3), size, peak,
                        peak - before if peak is not None and before is not None else None,
                        ms_percentile(latency, 50), ms_percentile(latency, 95), round(batched, 1),
                        recall_at_k(truth, found))


def build(kind: str, x: np.ndarray, args: argparse.Namespace, gpu: Any | None) -> tuple[Any, dict, float | None, str]:
    """(index, its parameters, training seconds or None, device): IVF-PQ here, the rest through
    bench.retrieval.index, moved to the GPU afterwards where faiss-gpu has the kind."""
    import faiss

    from ..retrieval import index as ix

    if kind == "ivfpq":
        return build_ivfpq(x, args, gpu)
    built = ix.build(x, kind, args.seed)
    if gpu is None or kind not in GPU_KINDS:
        return built.index, built.params, None, "cpu"
    return faiss.index_cpu_to_gpu(gpu, 0, built.index), built.params, None, "gpu"


def build_ivfpq(x: np.ndarray, args: argparse.Namespace, gpu: Any | None) -> tuple[Any, dict, float, str]:
    """IVF-PQ over `x`: nlist by bench.retrieval.index's IVF rule (or --nlist), k-means on a seeded
    sample of TRAIN_PER_LIST vectors per list, `pq_bytes` one-byte codes per vector; with
    --refine, wrapped so its candidates are re-ranked by exact inner product."""
    import faiss

    from ..retrieval.index import _nlist  # the arm's IVF rule, so both IVF indexes partition alike

    n, dim = x.shape
    nlist, m = args.nlist or _nlist(n), pq_bytes(args)
    nprobe = args.nprobe or max(1, nlist // NPROBE_SHARE)
    index = faiss.IndexIVFPQ(faiss.IndexFlatIP(dim), dim, nlist, m, PQ_BITS, faiss.METRIC_INNER_PRODUCT)
    index.cp.seed = args.seed
    if gpu is not None:
        index = faiss.index_cpu_to_gpu(gpu, 0, index)  # untrained: k-means and codebooks train on the GPU
    sample = x if n <= nlist * TRAIN_PER_LIST else x[np.sort(
        np.random.default_rng(args.seed).choice(n, nlist * TRAIN_PER_LIST, replace=False))]
    t0 = time.perf_counter()
    index.train(sample)
    train_s = time.perf_counter() - t0
    del sample
    index.nprobe = nprobe
    params = {"nlist": nlist, "nprobe": nprobe, "pq_bytes": m, "pq_bits": PQ_BITS,
              "train_vectors": min(n, nlist * TRAIN_PER_LIST)}
    if args.refine:
        index = faiss.IndexRefineFlat(index)  # holds the IVF-PQ (faiss keeps the reference)
        index.k_factor = args.refine
        params["refine_k_factor"] = args.refine
    index.add(x)
    return index, params, round(train_s, 3), "gpu" if gpu is not None else "cpu"


def stored_bytes(index: Any, device: str) -> int:
    """The index's size as faiss stores it, written to a temporary file (serialising 10^6 vectors
    to memory would add a copy of the index to the peak)."""
    import faiss

    if isinstance(index, faiss.IndexRefineFlat):  # written part by part: a GPU base cannot be written inside it
        return stored_bytes(index.base_index, device) + stored_bytes(index.refine_index, "cpu")
    cpu_index = faiss.index_gpu_to_cpu(index) if device == "gpu" else index
    with tempfile.TemporaryDirectory(prefix="trident-faiss-") as folder:
        path = os.path.join(folder, "index.faiss")
        faiss.write_index(cpu_index, path)
        return os.path.getsize(path)


def rag_arm_figures(args: argparse.Namespace) -> dict[str, Any]:
    """Generated documents through `RagArm.retriever` (chunk, embed, index) in an empty cache, as a
    `retriever: hybrid` variant builds them: the dense index and BM25 over the same chunks. The FAISS
    figures are the dense part's; every retriever (dense, bm25, fused) is searched and scored."""
    from ..arms import ArmContext
    from ..arms.rag import RagArm
    from ..config import RagArm as RagArmSpec
    from ..models import choose_device
    from .generated_corpus import generated_leases, generated_task

    docs, questions = generated_leases(args.docs, min(DOC_QUERIES, args.queries), args.seed)
    task = generated_task(questions)
    spec = RagArmSpec(arm="rag", name="faiss-scale", embedder=args.embedder, index=args.doc_index, retriever="hybrid",
                      index_device=args.faiss_device)
    ctx = ArmContext(get_model=_no_model, seed=args.seed, batch_size=1, corpus=tuple(docs), suite_name="generated",
                     log=lambda m: print(m, file=sys.stderr))
    arm, device = RagArm(spec), choose_device(args.device)
    embedder = arm.embedder(device)  # loaded first: its start-up is neither build time nor index memory
    queries = [e.input for e in questions]
    with fresh_cache():
        gc.collect()
        reset_peak_rss()
        before = rss_bytes()
        t0 = time.perf_counter()
        hybrid, _ = arm.retriever(ctx, task, device)
        build_s = time.perf_counter() - t0
        dense, lexical = hybrid.parts
        found = {}
        for searcher in (dense, lexical, hybrid):
            searcher.search(queries[:1], K)  # warm-up, not timed
            found[searcher.name] = searcher.search(queries, K)
        peak = peak_rss_bytes()
    c, hits = dense.costs, found[dense.name]
    return {"documents": len(docs), "chunks": len(dense.items), "embedder": c["embedder"],
            "embedder_device": device, "index": c["index"], "index_params": c["index_params"],
            "faiss_device": c["index_device"],
            "build_s": round(build_s, 3), "embedding_s": c["embedding_s"],
            "embed_texts_per_s": c.get("embed_texts_per_s"), "index_build_s": c["index_build_s"],
            "index_bytes": c["index_bytes"], "bm25_build_s": lexical.indexes[lexical.name].build_s,
            "bm25_bytes": lexical.indexes[lexical.name].bytes,
            "peak_rss_bytes": peak, "rss_growth_bytes": peak - before if peak and before else None,
            "queries": len(queries), "query_ms_p50": ms_percentile(hits.seconds, 50),
            "query_ms_p95": ms_percentile(hits.seconds, 95),
            "recall_at_10": arm_recall(embedder, dense, queries, hits.positions),
            "query_ms_p50_by_retriever": {name: ms_percentile(h.seconds, 50) for name, h in found.items()},
            "gold_document_in_top_10": {name: gold_shares(hybrid.items, questions, h.positions)
                                        for name, h in found.items()},
            "gold_document_by_chance": round(min(1.0, K / len(docs)), 6)}


def gold_shares(items: list[Any], questions: list[Any], found: list[list[int]]) -> dict[str, float]:
    """Share of questions whose named lease is among the documents of their top 10 chunks, over
    all questions and by how each names its lease (reference number or content)."""
    hit = np.array([e.meta[GOLD_FIELD] in {items[p].source_id for p in positions}
                    for e, positions in zip(questions, found)])
    asks_by = np.array([e.meta[ASKS_BY] for e in questions])
    shares = {"all": hit}
    shares.update({kind: hit[asks_by == kind] for kind in dict.fromkeys(asks_by.tolist())})
    return {name: round(float(h.mean()), 4) for name, h in shares.items()}


def arm_recall(embedder: Any, retriever: Any, queries: list[str], found: list[list[int]]) -> float:
    """recall@10 of the arm's searches against exact search over the same chunk vectors, each
    question embedded on its own as the arm's search embeds it (a batch pads, which moves the
    last decimals)."""
    vectors = np.vstack([embedder.encode([q]) for q in queries])
    truth = exact_top_k(retriever.vectors, vectors, None)
    width = truth.shape[1]
    padded = np.array([(list(f) + [-1] * width)[:width] for f in found])
    return recall_at_k(truth, padded)


def _no_model() -> Any:
    raise RuntimeError("indexing needs no language model; a retriever asked for one")
