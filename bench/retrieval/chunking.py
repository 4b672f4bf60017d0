"""Chunking of corpus documents into passages with stable ids: token windows, or sections.

`tokens` (the default): a chunk is a window of `size` embedder tokens (title tokens included, so
the embedder never truncates it) that starts `size - overlap` tokens after the previous one; its
id is `<doc id>#<n>`.

`structure`: a chunk is a section of the document. Sections begin at a line that opens with a
Markdown heading (`## Rent`), a named part or section (`Article IV`, `Section 12`, `§ 3`), a
section number (`1.`, `2)`, `2.3`, `4.1.2`) or an item (`(a)`, `(iv)`, `(2)`). The document is
cut at the coarsest kind of boundary it contains; a section longer than `size` is cut again at
the coarsest kind inside it, and one with no structure left is cut into token windows (with
`overlap`). A first piece of one line (the parent's heading, a title line) joins the piece after
it, so no passage is a bare heading. A subsection's title carries its parents' heading lines
(`Lease KES-7 › 3. Rent`): split from its heading, `(b) K$1,200 a month` would otherwise not say
what it is about. Ids are paths of positions: `<doc id>#s3` (fourth section), `#s3.1` (its
second subsection), `#s3.1.w0` (first window of that): a section's chunks depend only on the
document's coarsest boundary kind and on that section's own text, so editing a later section
never changes an earlier chunk.

Either way a chunk's text is an exact character span of the document (stripped), so a reader
can find it, and chunking the same document with the same settings gives the same ids.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..data import Document, stable_hash
from . import RetrievalError

CHUNKINGS = ("tokens", "structure")
STRUCTURE_VERSION = 1
"""Bump when structure chunking changes: it keys every cached index built on it."""
BOUNDARIES = (  # (line opening, its level: lower is coarser); Markdown headings are levels 1-6
    (re.compile(r"[ \t]{0,3}(?:part|article|chapter|schedule)[ \t]+(?:\d+|[ivxlc]+)\b", re.I), 7),
    (re.compile(r"[ \t]{0,3}(?:section|clause|§)[ \t]*\d", re.I), 9),  # the level of `1.`
    (re.compile(r"[ \t]{0,3}\((?:\d{1,2}|[a-z]{1,2}|[ivxl]{1,5})\)[ \t]+\S", re.I), 20),
)
MARKDOWN_HEADING = re.compile(r"[ \t]{0,3}(#{1,6})[ \t]+\S")
SECTION_NUMBER = re.compile(r"[ \t]{0,3}(\d{1,3}(?:\.\d{1,3})*)([.)]?)[ \t]+\S")
"""`1.` `2)` `2.3` `4.1.2` (level 8 + depth: `1.` is a `Section 1`). A bare `12 ` is not one: lines open
with numbers in prose."""
TRAIL_CHARS = 80  # a parent heading line is cut to this many characters in a subsection's title


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


def chunk_documents(docs: Sequence[Document], tokenizer: Any, size: int, overlap: int,
                    how: str = "tokens") -> list[Chunk]:
    """Every document's chunks, `how` = tokens (overlapping windows) or structure (sections)."""
    if how not in CHUNKINGS:
        raise RetrievalError(f"unknown chunking {how!r}; expected one of {', '.join(CHUNKINGS)}")
    if overlap >= size:
        raise RetrievalError(f"chunk_overlap ({overlap}) must be smaller than chunk_tokens ({size})")
    check_documents(docs)
    out: list[Chunk] = []
    for d in docs:
        if how == "structure":
            out += _sections_of(d, tokenizer, size, overlap)
        else:
            out += _windowed(d, f"{d.id}#", d.title, 0, len(d.text), tokenizer, size, overlap)
    return out


def _title_tokens(tokenizer: Any, title: str) -> int:
    return len(tokenizer(title, add_special_tokens=False).input_ids) + 1 if title else 0


def _windowed(d: Document, prefix: str, title: str, lo: int, hi: int, tokenizer: Any, size: int,
              overlap: int) -> list[Chunk]:
    """Token windows over d.text[lo:hi] (fast tokenizer offsets map back to text), ids prefix + n."""
    title_tokens = _title_tokens(tokenizer, title)
    window = max(8, size - title_tokens)
    step = max(1, window - overlap) if window > overlap else window
    enc = tokenizer(d.text[lo:hi], add_special_tokens=False, return_offsets_mapping=True, verbose=False)
    offsets = enc["offset_mapping"]
    n = len(offsets)
    starts = list(range(0, max(1, n - overlap), step)) if n > window else [0]
    out = []
    for i, s in enumerate(starts):
        e = min(n, s + window)
        a = lo + (offsets[s][0] if n else 0)
        b = lo + (offsets[e - 1][1] if n else hi - lo)
        out.append(Chunk(id=f"{prefix}{i}", doc_id=d.id, title=title, text=d.text[a:b].strip(), start_char=a,
                         n_tokens=e - s + title_tokens))
        if e >= n:
            break
    return out


def boundary_level(line: str) -> int | None:
    """The level of the section a line opens (lower is coarser), or None for an ordinary line."""
    m = MARKDOWN_HEADING.match(line)
    if m:
        return len(m.group(1))
    for pattern, level in BOUNDARIES:
        if pattern.match(line):
            return level
    m = SECTION_NUMBER.match(line)
    if m and (m.group(2) or "." in m.group(1)):
        return 8 + m.group(1).count(".") + 1
    return None


def boundaries(text: str) -> dict[int, int]:
    """Character position of every line that opens a section -> its level."""
    out, pos = {}, 0
    for line in text.splitlines(keepends=True):
        level = boundary_level(line)
        if level is not None:
            out[pos] = level
        pos += len(line)
    return out


def _sections_of(d: Document, tokenizer: Any, size: int, overlap: int) -> list[Chunk]:
    return _Sections(d, tokenizer, size, overlap).chunks()


class _Sections:
    """One document cut at its structure (see the module docstring)."""

    def __init__(self, d: Document, tokenizer: Any, size: int, overlap: int):
        self.d, self.tokenizer, self.size, self.overlap = d, tokenizer, size, overlap
        self.marks = boundaries(d.text)
        self._tokens: dict[tuple[int, int], int] = {}

    def chunks(self) -> list[Chunk]:
        top = self.split(0, len(self.d.text), (), "", whole=False)  # always cut at the coarsest level
        return [c for path, lo, hi, trail in top for c in self.section(path, lo, hi, trail)]

    def n_tokens(self, lo: int, hi: int, title: str) -> int:
        if (lo, hi) not in self._tokens:
            text = self.d.text[lo:hi].strip()
            self._tokens[lo, hi] = len(self.tokenizer(text, add_special_tokens=False).input_ids)
        return self._tokens[lo, hi] + _title_tokens(self.tokenizer, title)

    def fits(self, lo: int, hi: int, trail: tuple[str, ...]) -> bool:
        return self.n_tokens(lo, hi, _title(self.d.title, trail)) <= self.size

    def section(self, path: str, lo: int, hi: int, trail: tuple[str, ...]) -> list[Chunk]:
        """A section's chunks: itself when it fits; else its subsections, each the same way; else windows."""
        pieces = self.split(lo, hi, trail, path, whole=True)
        if len(pieces) > 1:
            return [c for sub in pieces for c in self.section(*sub)]
        title = _title(self.d.title, trail)
        if not self.fits(lo, hi, trail):  # no structure left inside: token windows
            return _windowed(self.d, f"{self.d.id}#{path}.w", title, lo, hi, self.tokenizer, self.size, self.overlap)
        text = self.d.text[lo:hi]
        return [Chunk(id=f"{self.d.id}#{path}", doc_id=self.d.id, title=title, text=text.strip(),
                      start_char=lo + len(text) - len(text.lstrip()), n_tokens=self.n_tokens(lo, hi, title))]

    def split(self, lo: int, hi: int, trail: tuple[str, ...], path: str, *,
              whole: bool) -> list[tuple[str, int, int, tuple[str, ...]]]:
        """(id path, start, end, parent headings) of text[lo:hi]'s pieces: the span itself when
        `whole` and it fits, or when no boundary lies inside it; else the span cut at the coarsest
        boundary inside. Pieces without text are dropped; their positions stay counted, so later
        ids do not move."""
        text = self.d.text
        inner = {p: level for p, level in self.marks.items() if lo < p < hi}
        if not inner or (whole and self.fits(lo, hi, trail)):
            return [(path or "s0", lo, hi, trail)]
        for level in sorted(set(inner.values())):  # the coarsest level that cuts it in two or more
            cuts = [lo, *sorted(p for p, lv in inner.items() if lv == level), hi]
            spans = list(zip(cuts, cuts[1:]))
            if "\n" not in text[spans[0][0]:spans[0][1]].strip():  # one line (a heading) or nothing: no passage
                spans[0:2] = [(spans[0][0], spans[1][1])]
            if len(spans) > 1:
                break
        else:
            return [(path or "s0", lo, hi, trail)]
        if self.marks.get(lo, level) < level:  # the span opens with its own heading: its pieces' parent
            trail = (*trail, text[lo:hi].strip().splitlines()[0].lstrip("#").strip()[:TRAIL_CHARS])
        stem = f"{path}." if path else "s"
        return [(f"{stem}{i}", a, b, trail) for i, (a, b) in enumerate(spans) if text[a:b].strip()]


def _title(doc_title: str, trail: tuple[str, ...]) -> str:
    """'Lease KES-7 › 3. Rent': the document's title and the headings of the sections a piece was cut from."""
    return " › ".join(dict.fromkeys(t for t in (doc_title, *trail) if t))


def chunking_key(size: int, overlap: int, how: str = "tokens") -> dict[str, Any]:
    """What about chunking shapes the vectors (part of every embedding and BM25 cache key).
    Token windows keep the key they always had, so their caches stay valid."""
    key: dict[str, Any] = {"chunk_tokens": size, "chunk_overlap": overlap, "version": 1}
    return key if how == "tokens" else {**key, "chunking": how, "structure_version": STRUCTURE_VERSION}


def chunks_hash(chunks: Sequence[Chunk]) -> str:
    return stable_hash([(c.id, c.embed_text) for c in chunks])
