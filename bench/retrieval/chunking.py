"""Token-aware chunking of corpus documents, with stable chunk ids.

A chunk is a window of `size` embedder tokens (title tokens included, so the embedder never
truncates it) that starts `size - overlap` tokens after the previous one. Its text is an exact
character span of the document, so a reader can find it, and its id is `<doc id>#<n>`: the same
document chunked with the same settings always gives the same ids.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..data import Document, stable_hash
from . import RetrievalError


@dataclass(frozen=True)
class Chunk:
    """A passage: stable id, source document, title, the text span and its token count."""

    id: str
    doc_id: str
    title: str
    text: str
    start_char: int
    n_tokens: int

    @property
    def embed_text(self) -> str:
        """What is embedded: the title gives each passage its topic."""
        return f"{self.title}\n{self.text}" if self.title else self.text


def check_documents(docs: Sequence[Document], where: str = "corpus") -> None:
    """Empty corpus, documents without text, duplicate ids: one clear line each, never silence."""
    if not docs:
        raise RetrievalError(f"{where}: the corpus is empty; expected at least one document")
    seen: set[str] = set()
    for d in docs:
        if not str(d.id).strip():
            raise RetrievalError(f"{where}: a document has an empty id; every document needs a unique id")
        if d.id in seen:
            raise RetrievalError(f"{where}: duplicate document id {d.id!r}; ids must be unique")
        seen.add(d.id)
        if not isinstance(d.text, str) or not d.text.strip():
            raise RetrievalError(f"{where}: document {d.id!r} has no text")


def chunk_documents(docs: Sequence[Document], tokenizer: Any, size: int, overlap: int) -> list[Chunk]:
    """Split every document into overlapping token windows (fast tokenizer offsets map back to text)."""
    if overlap >= size:
        raise RetrievalError(f"chunk_overlap ({overlap}) must be smaller than chunk_tokens ({size})")
    check_documents(docs)
    out: list[Chunk] = []
    for d in docs:
        title_tokens = len(tokenizer(d.title, add_special_tokens=False).input_ids) + 1 if d.title else 0
        window = max(8, size - title_tokens)
        step = max(1, window - overlap) if window > overlap else window
        enc = tokenizer(d.text, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
        offsets = enc["offset_mapping"]
        n = len(offsets)
        starts = list(range(0, max(1, n - overlap), step)) if n > window else [0]
        for i, s in enumerate(starts):
            e = min(n, s + window)
            lo = offsets[s][0] if n else 0
            hi = offsets[e - 1][1] if n else len(d.text)
            out.append(Chunk(id=f"{d.id}#{i}", doc_id=d.id, title=d.title, text=d.text[lo:hi].strip(),
                             start_char=lo, n_tokens=e - s + title_tokens))
            if e >= n:
                break
    return out


def chunking_key(size: int, overlap: int) -> dict[str, int]:
    """What about chunking shapes the vectors (part of every embedding cache key)."""
    return {"chunk_tokens": size, "chunk_overlap": overlap, "version": 1}


def chunks_hash(chunks: Sequence[Chunk]) -> str:
    return stable_hash([(c.id, c.embed_text) for c in chunks])
