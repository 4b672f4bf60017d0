"""Speed benchmarks whose figures go into docs/performance.md (never timed unit tests).

    python -m bench.perf prompt [--suite legal] [--task clause_type] [--n 64]

    python -m bench.perf generation [--suite legal] [--task tenancy_qa] [--variant rag-k3] [--n 32]

    python -m bench.perf train [--suite legal] [--task clause_type] [--steps 6] [--batch-size 8]
                               [--with-bf16] [--hf-baseline] [--with-full] [--model random:qwen2.5-0.5b --device cuda]

    python -m bench.perf rag [--suite legal] [--sizes 10000,100000] [--batch-sizes 16,32,64]

    python -m bench.perf retrieval [--suite legal] [--tasks ...] [--retrievers dense,bm25,hybrid,hybrid+filter]

    python -m bench.perf bound RUN_DIR      # the least time a run's work needs at this machine's matmul peak

    python -m bench.perf faiss-scale [--vectors 1000000] [--dim 384] [--index ivfpq,hnsw] [--docs 100000]

Each prints one JSON object (retrieval: a Markdown table, also written with its JSON to --out).
One module per benchmark, each with `add_arguments(parser)` and `run(args) -> dict | None`;
`__main__` registers them as subcommands:

    common.py   matmul peak, FLOPs-per-token accounting, synthetic vectors, latency percentiles,
                peak memory, a fresh cache: shared by the benchmarks
    prompt.py   prompt arm: batched label scoring against a naive batch-1 `generate` loop
    generation.py  batched greedy generation against HF `generate` at batch 1, on a rag variant's prompts
    train.py    fine-tuning arm: Trainer-path LoRA/full training against naive and HF Trainer baselines
    rag.py      retrieval arm: embedding throughput, bf16 agreement, FAISS build/latency/recall
    retrieval.py  recall@k/MRR with CIs and costs per task x retriever, through the rag arm
    faiss_scale.py  IVF-PQ/HNSW at 10^6 vectors against exact search; --docs through the rag arm
    bound.py    a finished run's unavoidable FLOPs per cell over the matmul peak: its least wall time
    generated_corpus.py  seeded lease summaries and questions of any size (faiss_scale --docs)
"""

from .common import body_params, flops_per_token, matmul_peak, synthetic_vectors

__all__ = ["body_params", "flops_per_token", "matmul_peak", "synthetic_vectors"]
