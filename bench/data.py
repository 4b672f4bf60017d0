"""The two record types every arm consumes, and the content hashes that key every cache."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Example:
    """One labelled item. `targets` holds every acceptable reference (a label is a 1-tuple)."""

    id: str
    input: str
    targets: tuple[str, ...]
    split: str
    meta: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def target(self) -> str:
        """The first (canonical) reference: what a fine-tune is trained to write."""
        return self.targets[0]


@dataclass(frozen=True)
class Document:
    """A corpus passage source for retrieval: stable id, a title and the text."""

    id: str
    title: str
    text: str
    meta: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)


def stable_hash(obj: Any, length: int = 16) -> str:
    """SHA-256 of a canonical JSON rendering: equal content gives an equal key on any machine."""
    blob = json.dumps(obj, sort_keys=True, ensure_ascii=False, default=_default).encode("utf-8")
    return hashlib.sha256(blob).hexdigest()[:length]


def _default(obj: Any) -> Any:
    if isinstance(obj, (Example, Document)):
        return obj.__dict__
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    if hasattr(obj, "model_dump"):
        return obj.model_dump(mode="json")
    raise TypeError(f"cannot hash {type(obj).__name__}")


def examples_hash(examples: list[Example]) -> str:
    """Hash of the content an arm sees: ids, inputs and targets (meta does not change outputs)."""
    return stable_hash([(e.id, e.input, list(e.targets), e.split) for e in examples])
