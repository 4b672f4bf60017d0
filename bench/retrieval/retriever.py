"""A searchable collection: embed items (cached), index them (saved), answer top-k queries.

Items are corpus chunks (corpus mode) or labelled train examples (examples mode); either way an
item has an id, the id of its source (document or example) and the text that is embedded.
`costs` says what building it took, and `search` times every query on its own.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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


class Retriever:
    def __init__(self, items: Sequence[Item], embedder: Embedder, *, kind: str = "auto", cache_dir: Path,
                 key_extra: dict[str, Any] | None = None, seed: int = 0, log: Callable[[str], None] = print,
                 available_memory: int | None = None):
        if not items:
            raise RetrievalError("nothing to retrieve from: the corpus or train split produced no items")
        ids = [it.id for it in items]
        if len(set(ids)) != len(ids):
            dup = next(i for i in ids if ids.count(i) > 1)
            raise RetrievalError(f"duplicate retrieval item id {dup!r}; ids must be unique")
        self.items, self.embedder = list(items), embedder
        self.kind = ix.choose_kind(len(items), kind)
        ix.check_memory(len(items), embedder.dim, self.kind, available_memory)
        self.vectors, key, emb_costs = embed_cached(embedder, [it.text for it in items], ids, key_extra or {},
                                                    cache_dir)
        self.costs: dict[str, Any] = {"items": len(items), "dim": embedder.dim, "embedder": embedder.identity,
                                      "embeddings_key": key, **emb_costs}
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
        if self.kind != "flat":
            sample = self.vectors[np.random.default_rng(seed).choice(len(self.vectors), min(200, len(self.vectors)),
                                                                      replace=False)]
            self.costs["approx_recall@10"] = round(ix.approx_recall(index, self.vectors, sample, 10), 4)
        return index

    def search(self, queries: Sequence[str], k: int) -> Hits:
        """Each query embedded and searched on its own, so the latency is what one user sees."""
        positions, scores, seconds = [], [], np.zeros(len(queries))
        for i, q in enumerate(queries):
            t0 = time.perf_counter()
            vec = self.embedder.encode([q])
            s, p = ix.search(self.index, vec, k)
            seconds[i] = time.perf_counter() - t0
            keep = p[0] >= 0
            positions.append([int(x) for x in p[0][keep]])
            scores.append([round(float(x), 4) for x in s[0][keep]])
        return Hits(positions, scores, seconds)

    def search_batch(self, queries: Sequence[str], k: int, batch_size: int = 1024) -> Hits:
        """Throughput mode for many queries: queries embedded in length-sorted batches and searched
        one block at a time (FAISS parallelises a block over cores); `seconds` is the mean per query."""
        positions: list[list[int]] = []
        scores: list[list[float]] = []
        t0 = time.perf_counter()
        for start in range(0, len(queries), batch_size):
            vecs = self.embedder.encode(list(queries[start:start + batch_size]))
            s, p = ix.search(self.index, vecs, k)
            for srow, prow in zip(s, p):
                keep = prow >= 0
                positions.append([int(x) for x in prow[keep]])
                scores.append([round(float(x), 4) for x in srow[keep]])
        per = (time.perf_counter() - t0) / max(1, len(queries))
        return Hits(positions, scores, np.full(len(queries), per))
