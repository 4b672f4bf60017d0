"""Reranking: a cross-encoder rescores a retriever's best candidates and the k best are kept.

A retriever scores the query and each item apart (a cosine of two embeddings, or shared terms);
a cross-encoder (sentence-transformers `CrossEncoder`) reads the query and one passage together,
which orders a handful of candidates better and costs a model call per candidate. So the
retriever (dense, bm25 or hybrid, under its filter) proposes its `candidates` best items, the
cross-encoder scores each (query, item text) pair, and the items are reordered by that score
(ties keep the retriever's order); items the retriever returned beyond the candidates follow,
in its order, when a caller asks for more (retrieval-aware fine-tuning looks deeper for the
gold document).

Every reranked hit keeps the ranks the retrievers gave it, adds the first stage's own rank
(a hybrid's fused rank) and its rank and raw score (logit) from the cross-encoder, so a
prediction shows where each passage came from. Each query's candidates are scored in one batch
and timed on their own; the tokens the cross-encoder read are counted apart (outside the time).

`model` is a hub id (sentence-transformers downloads it on first use) or a local directory;
a path that is not a model directory fails as one line before anything loads
(`reranker_problem`, also run by `bench validate`).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..data import stable_hash
from ..models import local_path
from . import RetrievalError
from .retriever import Hits, Item, Searcher


def reranker_problem(name: str) -> str | None:
    """Why `name` cannot be a local cross-encoder (one line), or None: a hub id, or a model directory."""
    path = local_path(name)
    if path is None:
        return None
    if not path.exists():
        return f"rerank.model '{name}' does not exist; expected a cross-encoder directory or a hub id"
    if not (path / "config.json").is_file():
        what = "is a file" if path.is_file() else "has no config.json"
        return f"rerank.model '{name}' {what}; expected a cross-encoder directory (config.json, weights, tokenizer)"
    return None


def reranker_identity(name: str) -> str:
    """A stable identity of the cross-encoder's weights, without loading them (part of the cache key):
    a local directory by its files' names, sizes and times, a hub id by its name."""
    path = local_path(name)
    if path is not None and path.is_dir():
        files = sorted((p.name, p.stat().st_size, int(p.stat().st_mtime)) for p in path.iterdir() if p.is_file())
        return f"dir:{path.resolve()}@{stable_hash(files)}"
    return f"hub:{name}"


class Reranker:
    """A loaded cross-encoder with one output (a relevance logit per pair)."""

    def __init__(self, name: str, *, device: str = "cpu"):
        from sentence_transformers import CrossEncoder

        problem = reranker_problem(name)
        if problem:
            raise RetrievalError(problem)
        self.name, self.identity = name, reranker_identity(name)
        source = str(local_path(name) or name)
        t0 = time.perf_counter()
        try:
            self.model = CrossEncoder(source, device=device)
        except (OSError, ValueError) as e:
            raise RetrievalError(f"cannot load cross-encoder '{name}': {str(e).splitlines()[0]}") from e
        self.load_s = round(time.perf_counter() - t0, 3)
        if self.model.num_labels != 1:
            raise RetrievalError(f"cross-encoder '{name}' has {self.model.num_labels} outputs; expected one relevance "
                                 "score per pair (num_labels 1)")
        self.model.eval()
        self.memory_bytes = sum(p.numel() * p.element_size() for p in self.model.parameters())

    def score(self, query: str, texts: Sequence[str]) -> tuple[np.ndarray, float, int]:
        """(a raw logit per text, seconds it took, tokens the cross-encoder read). Raw logits, not
        the sigmoid: the order is the same, and saturated probabilities would tie."""
        import torch

        if not texts:
            return np.zeros(0, dtype=np.float32), 0.0, 0
        pairs = [(query, t) for t in texts]
        t0 = time.perf_counter()
        scores = self.model.predict(pairs, batch_size=len(pairs), show_progress_bar=False,
                                    activation_fn=torch.nn.Identity(), convert_to_numpy=True)
        took = time.perf_counter() - t0
        tokens = int(self.model.preprocess(pairs)["attention_mask"].sum())  # what it read, padding excluded
        return np.asarray(scores, dtype=np.float32).reshape(-1), took, tokens


class RerankedSearcher:
    """A retriever whose best `candidates` are reordered by a cross-encoder; a `Searcher` itself."""

    def __init__(self, first: Searcher, reranker: Reranker, candidates: int):
        self.first, self.reranker, self.candidates = first, reranker, candidates
        self.name = f"{first.name}+rerank"
        self.items: list[Item] = first.items
        self.indexes = first.indexes
        self.costs: dict[str, Any] = {**first.costs, "retriever": self.name}

    def search(self, queries: Sequence[str], k: int,
               allowed: Sequence[np.ndarray | None] | None = None) -> Hits:
        return self.rerank(queries, self.first.search(queries, max(k, self.candidates), allowed), k)

    def search_batch(self, queries: Sequence[str], k: int,
                     allowed: Sequence[np.ndarray | None] | None = None) -> Hits:
        return self.rerank(queries, self.first.search_batch(queries, max(k, self.candidates), allowed), k)

    def rerank(self, queries: Sequence[str], hits: Hits, k: int) -> Hits:
        """`hits` (the first stage's, best first) with each query's first `candidates` reordered by
        the cross-encoder, cut to k."""
        out = Hits([], [], np.zeros(len(queries)), ranks={name: [] for name in (*hits.ranks, self.first.name,
                                                                                 "rerank")})
        took, tokens = np.zeros(len(queries)), np.zeros(len(queries), dtype=np.int64)
        for i, query in enumerate(queries):
            found = hits.positions[i]
            n = min(self.candidates, len(found))
            scores, took[i], tokens[i] = self.reranker.score(query, [self.items[p].text for p in found[:n]])
            order = sorted(range(n), key=lambda j: (-float(scores[j]), j))
            keep = (order + list(range(n, len(found))))[:k]
            out.positions.append([found[j] for j in keep])
            out.scores.append([hits.scores[i][j] for j in keep])
            for name, ranks in hits.ranks.items():
                out.ranks[name].append([ranks[i][j] for j in keep])
            if self.first.name not in hits.ranks:  # a hybrid's fused rank: where the cross-encoder found it
                out.ranks[self.first.name].append([j + 1 for j in keep])
            reranked = {j: r for r, j in enumerate(order, 1)}
            out.ranks["rerank"].append([reranked.get(j) for j in keep])
            out.rerank_scores.append([round(float(scores[j]), 4) for j in keep if j < n])
        out.seconds = hits.seconds + took
        out.seconds_by = {**hits.seconds_by, "rerank": took}
        out.rerank_tokens = tokens
        return out

