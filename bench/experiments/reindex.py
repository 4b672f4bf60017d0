"""What re-indexing a corpus costs a retrieval variant: every chunk embedded and the index built,
timed on this machine once and cached under a key of everything that shapes the work.

The rag arm's own costs cannot say it: its embeddings are cached across runs, so a cell that
found them (the updated corpus is the one `bench run` retrieves from) reports 0 s of embedding.
Here the index is built from scratch in a temporary folder, as a deployment re-indexing after
an update would, and the seconds are kept in the trident cache.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..data import Document, stable_hash
from ..models import cache_root
from ..store import read_json, write_json

if TYPE_CHECKING:
    from ..arms.rag import RagArm


@dataclass(frozen=True)
class ReindexCost:
    """Seconds to rebuild one retrieval variant's index over a corpus."""

    seconds: float
    """Chunking, embedding and index building together."""
    embedding_s: float
    """Of which embedding the chunks."""
    index_build_s: float
    """Of which building the variant's indexes (FAISS, BM25 or both, for a hybrid)."""
    documents: int
    chunks: int
    device: str
    """Where the embedder ran."""


def reindex_cost(arm: RagArm, corpus: Sequence[Document], device: str, *, seed: int, use_cache: bool = True,
                 log: Callable[[str], None] = lambda message: None) -> ReindexCost:
    """The cost of a full re-index of `corpus` by `arm` (corpus mode), measured once per key."""
    from ..retrieval.chunking import chunking_key

    embedder = arm.embedder(device)  # loaded outside the timing: a deployment has it loaded already
    size = min(arm.spec.chunk_tokens, embedder.max_seq_length - 2)  # as the arm chunks (rag.RagArm.retriever)
    shape = chunking_key(size, arm.spec.chunk_overlap, arm.spec.chunking)
    key = stable_hash({"embedder": embedder.key, "chunking": shape,
                       "index": arm.spec.index, "retriever": arm.spec.retriever, "corpus": stable_hash(list(corpus)),
                       "device": device.split(":")[0]})
    path = cache_root() / "experiments" / "reindex" / f"{key}.json"
    if use_cache and path.is_file():
        return ReindexCost(**read_json(path))
    cost = _measure(arm, corpus, size, device, seed, log)
    write_json(path, asdict(cost))
    return cost


def _measure(arm: RagArm, corpus: Sequence[Document], size: int, device: str, seed: int,
             log: Callable[[str], None]) -> ReindexCost:
    from ..retrieval.chunking import chunk_documents, chunking_key
    from ..retrieval.factory import build_retriever
    from ..retrieval.retriever import Item

    embedder = arm.embedder(device)
    with tempfile.TemporaryDirectory(prefix="trident-reindex-") as tmp:  # no cache: everything is built
        start = time.perf_counter()
        chunks = chunk_documents(list(corpus), embedder.tokenizer, size, arm.spec.chunk_overlap,
                                 how=arm.spec.chunking)
        items = [Item(c.id, c.doc_id, c.embed_text) for c in chunks]
        retriever = build_retriever(arm.spec.retriever, items, embedder, cache_root=Path(tmp), index=arm.spec.index,
                                    index_device=arm.spec.index_device,
                                    key_extra=chunking_key(size, arm.spec.chunk_overlap, arm.spec.chunking),
                                    seed=seed, log=log)
        seconds = time.perf_counter() - start
    return ReindexCost(seconds=round(seconds, 3), embedding_s=float(retriever.costs.get("embedding_s", 0.0)),
                       index_build_s=sum(i.build_s for i in retriever.indexes.values()), documents=len(corpus),
                       chunks=len(chunks), device=device)
