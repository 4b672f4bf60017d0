"""Document filters: each query searches only the corpus documents that belong to its example.

A rag variant's `filter: {doc_field: contract_id, example_field: contract}` lets an example
retrieve only chunks of documents whose metadata `contract_id` equals the example's `contract`
(a question about one contract never reads another's clauses). Values compare as text, so a
JSON 12 and "12" match. Documents without the field are never retrieved under a filter.

What cannot work fails as one line naming the field: no document carries the metadata field,
an example lacks its field, or an example's value matches no document (almost always a typo
or an id written two ways, which retrieving nothing would hide). `filter_problem` says it for
`bench validate` (bench.suite_checks); `allowed_positions` raises it at run time.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..data import Document, Example
from . import RetrievalError
from .retriever import Item

SHOWN_FIELDS = 6  # metadata fields named when the filter's doc_field is not among them


def _text(value: Any) -> str:
    return str(value).strip()


def document_values(docs: Sequence[Document], doc_field: str) -> dict[str, str]:
    """Document id -> its `doc_field` value as text, for the documents that have one."""
    return {d.id: _text(d.meta[doc_field]) for d in docs if d.meta.get(doc_field) is not None}


def filter_problem(doc_field: str, example_field: str, docs: Sequence[Document],
                   examples: Sequence[Example]) -> str | None:
    """Why the filter cannot serve these examples over these documents (one line), or None."""
    values = document_values(docs, doc_field)
    if not values:
        seen = sorted({k for d in docs for k in d.meta})
        carried = ", ".join(seen[:SHOWN_FIELDS]) + (" ..." if len(seen) > SHOWN_FIELDS else "") or "none"
        return (f"filter.doc_field '{doc_field}' is in no corpus document's metadata (their metadata fields: "
                f"{carried}); add that column to the corpus JSONL files")
    known = set(values.values())
    for e in examples:
        if e.meta.get(example_field) is None:
            return f"filter.example_field '{example_field}' is missing from example '{e.id}'"
        if _text(e.meta[example_field]) not in known:
            return (f"example '{e.id}' has {example_field} {_text(e.meta[example_field])!r}, which no corpus "
                    f"document's '{doc_field}' matches")
    return None


def allowed_positions(items: Sequence[Item], docs: Sequence[Document], doc_field: str, example_field: str,
                      examples: Sequence[Example], where: str) -> list[np.ndarray]:
    """Per example, the positions of the items (chunks) whose document matches it; `where` (the
    variant and task) prefixes the one-line RetrievalError when the filter cannot be applied."""
    problem = filter_problem(doc_field, example_field, docs, examples)
    if problem:
        raise RetrievalError(f"{where}: {problem}")
    values = document_values(docs, doc_field)
    by_value: dict[str, list[int]] = {}
    for position, item in enumerate(items):
        if item.source_id in values:
            by_value.setdefault(values[item.source_id], []).append(position)
    groups: Mapping[str, np.ndarray] = {v: np.asarray(p, dtype=np.int64) for v, p in by_value.items()}
    return [groups[_text(e.meta[example_field])] for e in examples]
