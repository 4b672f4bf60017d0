"""FAISS indexes over unit vectors: build, save, load, search, and recall of approximate search.

Inner product on L2-normalised vectors is cosine similarity. `auto` picks:

- flat (exact)  below 200,000 vectors: 10^5 x 384-d is 154 MB and a query takes a few ms;
- hnsw (HNSW32, efSearch 128) from 200,000 to 2,000,000 vectors: sub-millisecond queries,
  about 1.3x the memory of flat, no training;
- ivf (IVF-Flat, nlist = 4 sqrt(n), nprobe = nlist/16) above 2,000,000: cheapest to build,
  memory close to flat.

These thresholds come from `python -m bench.perf rag` (docs/performance.md). An approximate
index reports its recall@10 against exact search on sampled queries, so its error is measured.
Before anything is built, the memory it needs is compared with the memory available: a corpus
that does not fit fails with advice rather than swapping the machine to a halt.

Where it searches (`index_device`): with faiss-gpu installed and a GPU it sees, flat and IVF
indexes are copied to GPU 0 once built or loaded (HNSW has no GPU version and stays on the
CPU); the cache always holds the CPU index, so one cached index serves both machines.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import RetrievalError

FLAT_MAX = 200_000
HNSW_MAX = 2_000_000
HNSW_M = 32
HNSW_EF_SEARCH = 128
HNSW_EF_CONSTRUCTION = 80


def choose_kind(n: int, requested: str = "auto") -> str:
    if requested != "auto":
        return requested
    return "flat" if n < FLAT_MAX else "hnsw" if n < HNSW_MAX else "ivf"


def estimate_bytes(n: int, dim: int, kind: str) -> int:
    """Memory of the index itself (the float32 vectors plus the structure around them)."""
    base = n * dim * 4
    if kind == "hnsw":
        return base + n * HNSW_M * 2 * 4 + n * 16
    if kind == "ivf":
        return base + n * 8 + _nlist(n) * dim * 4
    return base


def available_bytes() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def check_memory(n: int, dim: int, kind: str, available: int | None = None) -> None:
    """Fail with advice when vectors + index would need more than 70% of available memory."""
    need = estimate_bytes(n, dim, kind) + n * dim * 4  # the vectors array and the index's copy
    avail = available if available is not None else available_bytes()
    if avail is not None and need > 0.7 * avail:
        raise RetrievalError(
            f"{n:,} vectors of dim {dim} need about {need / 2**30:.1f} GiB for a {kind} index but only "
            f"{avail / 2**30:.1f} GiB is available; use `index: ivf` on a machine with more memory, a smaller "
            f"embedder, or a compressed (IVF-PQ) or GPU index as described in docs/retrieval.md")


GPU_KINDS = ("flat", "ivf")
"""Index kinds faiss-gpu has (HNSW has none)."""
INDEX_DEVICES = ("auto", "cpu", "gpu")


def faiss_gpus() -> int:
    """GPUs faiss sees: 0 with faiss-cpu (which has no get_num_gpus) or without a GPU."""
    import faiss

    return faiss.get_num_gpus() if hasattr(faiss, "get_num_gpus") else 0


def search_device(kind: str, requested: str) -> str:
    """cpu or gpu: where an index of `kind` searches under `index_device: requested`. `gpu` that
    cannot be kept is a RetrievalError, raised before anything is embedded."""
    if requested not in INDEX_DEVICES:
        raise RetrievalError(f"unknown index_device {requested!r}; expected one of {', '.join(INDEX_DEVICES)}")
    if requested == "cpu" or (requested == "auto" and (kind not in GPU_KINDS or faiss_gpus() == 0)):
        return "cpu"
    if kind not in GPU_KINDS:
        raise RetrievalError(f"index_device: gpu, but a {kind} index has no GPU version in faiss; "
                             f"set index: flat or ivf, or index_device: auto")
    if faiss_gpus() == 0:
        raise RetrievalError("index_device: gpu, but faiss sees no GPU; install faiss-gpu (in place of faiss-cpu) "
                             "on a machine with a CUDA GPU, or set index_device: auto")
    return "gpu"


_GPU_RESOURCES: list[Any] = []  # one StandardGpuResources a process: it holds GPU scratch memory


def place(index: Any, device: str) -> Any:
    """`index` as it will be searched: copied to GPU 0 for device gpu, else unchanged."""
    if device != "gpu":
        return index
    import faiss

    if not _GPU_RESOURCES:
        _GPU_RESOURCES.append(faiss.StandardGpuResources())
    return faiss.index_cpu_to_gpu(_GPU_RESOURCES[0], 0, index)


def _nlist(n: int) -> int:
    return max(1, min(65536, int(4 * np.sqrt(n)), n // 39))  # faiss wants >= 39 training points per list


@dataclass
class BuiltIndex:
    index: Any
    kind: str
    build_s: float
    params: dict[str, Any]


def build(vectors: np.ndarray, kind: str, seed: int = 0) -> BuiltIndex:
    """An inner-product index of `kind` over `vectors` ([n, dim] float32, unit length)."""
    import faiss

    if vectors.ndim != 2 or len(vectors) == 0:
        raise RetrievalError("cannot build an index over no vectors; the corpus produced no chunks")
    x = np.ascontiguousarray(vectors, dtype=np.float32)
    n, dim = x.shape
    t0 = time.perf_counter()
    if kind == "flat":
        index, params = faiss.IndexFlatIP(dim), {}
        index.add(x)
    elif kind == "hnsw":
        index = faiss.IndexHNSWFlat(dim, HNSW_M, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        index.hnsw.efSearch = HNSW_EF_SEARCH
        index.add(x)
        params = {"M": HNSW_M, "efConstruction": HNSW_EF_CONSTRUCTION, "efSearch": HNSW_EF_SEARCH}
    elif kind == "ivf":
        nlist = _nlist(n)
        quantizer = faiss.IndexFlatIP(dim)
        index = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
        train = x if n <= nlist * 256 else x[np.random.default_rng(seed).choice(n, nlist * 256, replace=False)]
        index.cp.seed = seed
        index.train(train)
        index.add(x)
        index.nprobe = max(1, nlist // 16)
        params = {"nlist": nlist, "nprobe": index.nprobe}
    else:
        raise RetrievalError(f"unknown index type {kind!r}; expected auto, flat, hnsw or ivf")
    return BuiltIndex(index, kind, time.perf_counter() - t0, params)


def search(index: Any, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(scores, positions), each [n_queries, k]; positions are -1 where fewer than k exist."""
    k = min(k, index.ntotal)
    return index.search(np.ascontiguousarray(queries, dtype=np.float32), k)


def approx_recall(index: Any, vectors: np.ndarray, queries: np.ndarray, k: int = 10) -> float:
    """recall@k of `index` against exact inner-product search over `vectors`, on `queries`."""
    import faiss

    k = min(k, len(vectors))
    exact = faiss.IndexFlatIP(vectors.shape[1])
    exact.add(np.ascontiguousarray(vectors, dtype=np.float32))
    _, truth = exact.search(np.ascontiguousarray(queries, dtype=np.float32), k)
    _, got = search(index, queries, k)
    hits = sum(len(set(t) & set(g)) for t, g in zip(truth, got))
    return hits / truth.size


def index_bytes(index: Any) -> int:
    import faiss

    return int(faiss.serialize_index(index).size)


def save(index: Any, path: Path, meta: dict[str, Any]) -> None:
    """index file first, meta (embedder, dim, kind) last: no meta, no reuse. Both go through the store's
    atomic writer (a concurrent run or a full disk never leaves half an index; the latter names the path).
    A failed save leaves neither file: an index whose meta could not follow is not kept either."""
    import faiss

    from ..store import atomic_write_bytes, write_json, writing_to

    meta_path = path.with_suffix(".json")
    try:
        with writing_to(path):  # faiss reports a full disk as RuntimeError, not OSError
            atomic_write_bytes(path, faiss.serialize_index(index).tobytes())  # the bytes faiss.write_index writes
            write_json(meta_path, meta)
    except BaseException:
        meta_path.unlink(missing_ok=True)
        path.unlink(missing_ok=True)
        raise


def load(path: Path, expect: dict[str, Any]) -> tuple[Any | None, str | None]:
    """(index, None) when a saved index matches `expect` (embedder, dim, kind, n); else
    (None, one-line reason) so the caller rebuilds: vectors of two embedders are never mixed."""
    import faiss

    meta_f = path.with_suffix(".json")
    if not (path.is_file() and meta_f.is_file()):
        return None, None
    meta = json.loads(meta_f.read_text(encoding="utf-8"))
    for field in ("embedder", "dim", "kind", "n", "vectors"):
        if meta.get(field) != expect.get(field):
            return None, (f"cached index {path.name} was built with {field}={meta.get(field)!r}, "
                          f"not {expect.get(field)!r}; rebuilding it")
    try:
        index = faiss.read_index(str(path))
    except RuntimeError as e:
        return None, f"cached index {path.name} is unreadable ({str(e).splitlines()[0]}); rebuilding it"
    if index.d != expect["dim"] or index.ntotal != expect["n"]:
        return None, f"cached index {path.name} holds {index.ntotal} vectors of dim {index.d}; rebuilding it"
    if meta.get("kind") == "hnsw":
        index.hnsw.efSearch = meta.get("params", {}).get("efSearch", HNSW_EF_SEARCH)
    if meta.get("kind") == "ivf":
        index.nprobe = meta.get("params", {}).get("nprobe", 1)
    return index, None
