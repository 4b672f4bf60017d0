"""Hybrid retrieval: the dense and the BM25 rankings fused by reciprocal rank fusion.

RRF (Cormack, Clarke and Buettcher, SIGIR 2009) scores an item by the sum, over the rankings
that hold it, of weight / (rrf_k + rank). It reads ranks only, so a cosine in [-1, 1] and an
unbounded BM25 score never have to be put on one scale; rrf_k (60 in the paper) flattens the
head of each ranking, so an item two rankings both place fairly high beats one that a single
ranking places first. Each retriever proposes its FUSION_DEPTH best items (at least k): with
the default settings an item below rank 50 in both would add less than 2 / 110, and seldom
change the top k.

Every fused hit keeps its rank in each retriever's own list (None: not among its candidates),
so a prediction shows whether a passage came from the words, the meaning, or both.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .lexical import LexicalRetriever
from .retriever import Hits, IndexInfo, Retriever

FUSION_DEPTH = 50
"""Candidates each retriever proposes to the fusion (more when k is larger)."""


def reciprocal_rank_fusion(rankings: Mapping[str, Sequence[int]], weights: Mapping[str, float],
                           rrf_k: int) -> list[tuple[int, float]]:
    """(position, fused score) of every item in `rankings` (name -> positions, best first), best
    first. Ties go to the item with the better single rank, then the lower position."""
    fused: dict[int, float] = {}
    best: dict[int, int] = {}
    for name, ranking in rankings.items():
        for rank, position in enumerate(ranking, 1):
            fused[position] = fused.get(position, 0.0) + weights[name] / (rrf_k + rank)
            best[position] = min(best.get(position, rank), rank)
    return sorted(fused.items(), key=lambda kv: (-kv[1], best[kv[0]], kv[0]))


class HybridRetriever:
    """Dense and BM25 over the same items, fused; answers the `Searcher` protocol."""

    name = "hybrid"

    def __init__(self, dense: Retriever, lexical: LexicalRetriever, *, rrf_k: int = 60,
                 weights: tuple[float, float] = (1.0, 1.0)):
        if [it.id for it in dense.items] != [it.id for it in lexical.items]:
            raise ValueError("the dense and BM25 retrievers of a hybrid must hold the same items in the same order")
        self.parts = (dense, lexical)
        self.items = dense.items
        self.rrf_k = rrf_k
        self.weights = {dense.name: float(weights[0]), lexical.name: float(weights[1])}
        self.indexes: dict[str, IndexInfo] = {**dense.indexes, **lexical.indexes}
        self.costs: dict[str, Any] = {**dense.costs, **lexical.costs, "retriever": self.name}

    def search(self, queries: Sequence[str], k: int,
               allowed: Sequence[np.ndarray | None] | None = None) -> Hits:
        return self._fuse([p.search(queries, self._depth(k), allowed) for p in self.parts], k)

    def search_batch(self, queries: Sequence[str], k: int,
                     allowed: Sequence[np.ndarray | None] | None = None) -> Hits:
        return self._fuse([p.search_batch(queries, self._depth(k), allowed) for p in self.parts], k)

    def _depth(self, k: int) -> int:
        return min(len(self.items), max(k, FUSION_DEPTH))

    def _fuse(self, found: list[Hits], k: int) -> Hits:
        names = [p.name for p in self.parts]
        n = len(found[0].positions)
        positions, scores, seconds = [], [], np.zeros(n)
        ranks: dict[str, list[list[int | None]]] = {name: [] for name in names}
        for i in range(n):
            t0 = time.perf_counter()
            lists = {name: hits.positions[i] for name, hits in zip(names, found)}
            top = reciprocal_rank_fusion(lists, self.weights, self.rrf_k)[:k]
            seconds[i] = time.perf_counter() - t0
            positions.append([p for p, _ in top])
            scores.append([round(s, 6) for _, s in top])  # 1/61 and 1/62 differ in the 4th decimal
            for name, ranking in lists.items():
                where = {p: r for r, p in enumerate(ranking, 1)}
                ranks[name].append([where.get(p) for p, _ in top])
        seconds_by = {name: hits.seconds for name, hits in zip(names, found)}
        return Hits(positions, scores, seconds + sum(seconds_by.values()), ranks=ranks, seconds_by=seconds_by)
