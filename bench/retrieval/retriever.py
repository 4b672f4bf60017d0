"""A searchable collection: embed items (cached), index them (saved), answer top-k queries.

Items are corpus chunks (corpus mode) or labelled train examples (examples mode); either way an
item has an id, the id of its source (document or example) and the text that is embedded.
`costs` says what building it took, and `search` times every query on its own.

`Retriever` here is the dense one; bench.retrieval.lexical (BM25) and bench.retrieval.hybrid
(both, fused) answer the same `Searcher` protocol, and bench.retrieval.factory picks one.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from . import RetrievalError
from . import index as ix
from .embedding import Embedder, embed_cached


@dataclass(frozen=True)
class Item:
    id: str
    source_id: str
    text: str


@dataclass
class Hits:
    """Top-k per query: item positions (best first), scores, and seconds per query."""

    positions: list[list[int]]
    scores: list[list[float]]
    seconds: np.ndarray
    ranks: dict[str, list[list[int | None]]] = field(default_factory=dict)
    """Retriever name (dense, bm25) -> per query, per returned item, its 1-based rank in that
    retriever's own list (None: not among its candidates). A fused result says why each item won."""
    seconds_by: dict[str, np.ndarray] = field(default_factory=dict)
    """Retriever name (or rerank) -> seconds per query spent in it (its share of `seconds`)."""
    rerank_scores: list[list[float]] = field(default_factory=list)
    """Reranked hits only: per query, the cross-encoder's score of each returned item it rescored
    (the first `candidates`), best first; `scores` keeps the first stage's."""
    rerank_tokens: np.ndarray | None = None
    """Reranked hits only: tokens the cross-encoder read per query (all its candidates)."""


@dataclass(frozen=True)
class IndexInfo:
    """One retriever's index: what building (or loading) it took and its size."""

    build_s: float
    """Seconds to build it, or to load it when `cached`."""
    bytes: int
    """Size of the index as stored."""
    cached: bool
    """Whether it was loaded from the on-disk cache rather than built."""
    memory_bytes: int | None = None
    """Bytes of the arrays it holds in memory to answer queries (dense: the vectors plus the FAISS
    index; bm25: the sparse score matrix): what it adds to a process, counted exactly rather than
    read as an RSS delta, which allocators and the models loaded beside it blur."""


class Searcher(Protocol):
    """What the rag arm (and retrieval-aware fine-tuning) needs of a retriever: dense, bm25 or hybrid."""

    name: str
    items: list[Item]
    costs: dict[str, Any]
    """A flat report of what building it took (read into the run's costs)."""
    indexes: dict[str, IndexInfo]
    """Retriever name -> its index; a hybrid holds both."""

    def search(self, queries: Sequence[str], k: int,
               allowed: Sequence[np.ndarray | None] | None = None) -> Hits: ...

    def search_batch(self, queries: Sequence[str], k: int,
                     allowed: Sequence[np.ndarray | None] | None = None) -> Hits: ...


def top_k(scores: np.ndarray, positions: np.ndarray, k: int) -> tuple[list[int], list[float]]:
    """The `k` best of `positions` by `scores` (aligned arrays), best first. Ties go to the lower
    position, so a result never depends on how a partial sort happened to order equal scores."""
    if len(positions) > k:
        kth = np.partition(scores, len(scores) - k)[len(scores) - k]  # the k-th largest score
        keep = scores >= kth
        scores, positions = scores[keep], positions[keep]
    order = np.lexsort((positions, -scores))[:k]
    return [int(p) for p in positions[order]], [float(s) for s in scores[order]]


class Retriever:
    """Dense retrieval: items embedded (cached) into a FAISS index (saved beside the vectors)."""

    name = "dense"

    def __init__(self, items: Sequence[Item], embedder: Embedder, *, kind: str = "auto", cache_dir: Path,
                 key_extra: dict[str, Any] | None = None, seed: int = 0, log: Callable[[str], None] = print,
                 available_memory: int | None = None, index_device: str = "auto"):
        if not items:
            raise RetrievalError("nothing to retrieve from: the corpus or train split produced no items")
        ids = [it.id for it in items]
        if len(set(ids)) != len(ids):
            dup = next(i for i in ids if ids.count(i) > 1)
            raise RetrievalError(f"duplicate retrieval item id {dup!r}; ids must be unique")
        self.items, self.embedder = list(items), embedder
        self.kind = ix.choose_kind(len(items), kind)
        self.device = ix.search_device(self.kind, index_device)  # a GPU that is not there fails before embedding
        ix.check_memory(len(items), embedder.dim, self.kind, available_memory)
        self.vectors, key, emb_costs = embed_cached(embedder, [it.text for it in items], ids, key_extra or {},
                                                    cache_dir)
        self.costs: dict[str, Any] = {"retriever": self.name, "items": len(items), "dim": embedder.dim,
                                      "embedder": embedder.identity, "embeddings_key": key, **emb_costs}
        self.indexes: dict[str, IndexInfo] = {}
        self.index = self._index(cache_dir / key, key, seed, log)

    def _index(self, folder: Path, key: str, seed: int, log: Callable[[str], None]) -> Any:
        path = folder / f"index-{self.kind}.faiss"
        expect = {"embedder": self.embedder.identity, "dim": self.embedder.dim, "kind": self.kind,
                  "n": len(self.items), "vectors": key}
        t0 = time.perf_counter()
        index, reason = ix.load(path, expect)
        if reason:
            log(reason)
        if index is not None:
            built_s, params, cached = time.perf_counter() - t0, {}, True
        else:
            built = ix.build(self.vectors, self.kind, seed)
            index, built_s, params, cached = built.index, built.build_s, built.params, False
            ix.save(index, path, {**expect, "params": params})
        self.costs.update({"index": self.kind, "index_params": params, "index_cached": cached,
                           "index_build_s": round(built_s, 4), "index_bytes": ix.index_bytes(index)})
        self.indexes[self.name] = IndexInfo(round(built_s, 4), self.costs["index_bytes"], cached,
                                            memory_bytes=int(self.vectors.nbytes) + self.costs["index_bytes"])
        if self.kind != "flat":
            sample = self.vectors[np.random.default_rng(seed).choice(len(self.vectors), min(200, len(self.vectors)),
                                                                      replace=False)]
            self.costs["approx_recall@10"] = round(ix.approx_recall(index, self.vectors, sample, 10), 4)
        self.costs["index_device"] = self.device
        return ix.place(index, self.device)  # after saving and sizing: both need the CPU index

    def search(self, queries: Sequence[str], k: int,
               allowed: Sequence[np.ndarray | None] | None = None) -> Hits:
        """Each query embedded and searched on its own, so the latency is what one user sees.
        `allowed[i]`: the only item positions query i may return (a document filter), or None."""
        positions, scores, seconds = [], [], np.zeros(len(queries))
        for i, q in enumerate(queries):
            t0 = time.perf_counter()
            p, s = self._top(self.embedder.encode([q])[0], k, allowed[i] if allowed is not None else None)
            seconds[i] = time.perf_counter() - t0
            positions.append(p)
            scores.append(s)
        return self._hits(positions, scores, seconds)

    def search_batch(self, queries: Sequence[str], k: int, allowed: Sequence[np.ndarray | None] | None = None,
                     batch_size: int = 1024) -> Hits:
        """Throughput mode for many queries: queries embedded in length-sorted batches and searched
        one block at a time (FAISS parallelises a block over cores); `seconds` is the mean per query."""
        positions: list[list[int]] = []
        scores: list[list[float]] = []
        t0 = time.perf_counter()
        for start in range(0, len(queries), batch_size):
            vecs = self.embedder.encode(list(queries[start:start + batch_size]))
            if allowed is not None:  # each query its own subset: no block to hand FAISS
                for i, vec in enumerate(vecs, start):
                    p, s = self._top(vec, k, allowed[i])
                    positions.append(p)
                    scores.append(s)
                continue
            s, p = ix.search(self.index, vecs, k)
            for srow, prow in zip(s, p):
                keep = prow >= 0
                positions.append([int(x) for x in prow[keep]])
                scores.append([round(float(x), 4) for x in srow[keep]])
        per = (time.perf_counter() - t0) / max(1, len(queries))
        return self._hits(positions, scores, np.full(len(queries), per))

    def _top(self, vec: np.ndarray, k: int, allowed: np.ndarray | None) -> tuple[list[int], list[float]]:
        """One query's top k: through the index, or, under a filter, exactly over the allowed items.
        A filter usually leaves a small subset (one contract's chunks), where an exact dot product
        costs less than an approximate search told to skip the rest, and never loses recall to it."""
        if allowed is None:
            s, p = ix.search(self.index, vec[None, :], k)
            keep = p[0] >= 0
            return [int(x) for x in p[0][keep]], [round(float(x), 4) for x in s[0][keep]]
        p, s = top_k(self.vectors[allowed] @ vec, allowed, k)
        return p, [round(x, 4) for x in s]

    def _hits(self, positions: list[list[int]], scores: list[list[float]], seconds: np.ndarray) -> Hits:
        ranks = [list(range(1, len(p) + 1)) for p in positions]
        return Hits(positions, scores, seconds, ranks={self.name: ranks}, seconds_by={self.name: seconds})
