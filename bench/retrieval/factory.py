"""One retriever of the kind a rag variant names: dense, bm25 or hybrid, over the same items,
its best candidates optionally reordered by a cross-encoder (bench.retrieval.rerank).

Caches sit side by side under `cache_root`: embeddings/ (vectors and FAISS indexes) and bm25/,
each keyed by the same chunking key and item texts, so a hybrid reuses the dense and the BM25
index that a dense and a bm25 variant over the same chunks built.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from . import RetrievalError
from .embedding import Embedder
from .hybrid import HybridRetriever
from .lexical import LexicalRetriever
from .rerank import RerankedSearcher, Reranker
from .retriever import Item, Retriever, Searcher

RETRIEVERS = ("dense", "bm25", "hybrid")


def build_retriever(kind: str, items: Sequence[Item], embedder: Embedder, *, cache_root: Path, index: str = "auto",
                    index_device: str = "auto", rrf_k: int = 60, weights: tuple[float, float] = (1.0, 1.0),
                    key_extra: dict[str, Any] | None = None, seed: int = 0, log: Callable[[str], None] = print,
                    reranker: Reranker | None = None, candidates: int = 20) -> Searcher:
    """The retriever `kind` over `items`, built or loaded from the caches under `cache_root`, its
    FAISS index searched where `index_device` says; with a `reranker`, its best `candidates`
    reordered by that cross-encoder."""
    first = _first_stage(kind, items, embedder, cache_root=cache_root, index=index, index_device=index_device,
                         rrf_k=rrf_k, weights=weights, key_extra=key_extra, seed=seed, log=log)
    return RerankedSearcher(first, reranker, candidates) if reranker is not None else first


def _first_stage(kind: str, items: Sequence[Item], embedder: Embedder, *, cache_root: Path, index: str,
                 index_device: str, rrf_k: int, weights: tuple[float, float], key_extra: dict[str, Any] | None,
                 seed: int, log: Callable[[str], None]) -> Searcher:
    def dense() -> Retriever:
        return Retriever(items, embedder, kind=index, cache_dir=cache_root / "embeddings", key_extra=key_extra,
                         seed=seed, log=log, index_device=index_device)

    def lexical() -> LexicalRetriever:
        return LexicalRetriever(items, cache_dir=cache_root / "bm25", key_extra=key_extra, log=log)

    if kind == "dense":
        return dense()
    if kind == "bm25":
        return lexical()
    if kind == "hybrid":
        return HybridRetriever(dense(), lexical(), rrf_k=rrf_k, weights=weights)
    raise RetrievalError(f"unknown retriever {kind!r}; expected one of {', '.join(RETRIEVERS)}")
