"""The terms BM25 matches on: lowercase words, with numbers and identifiers kept whole.

Word-piece tokenizers and `str.split` both lose what a lexical retriever is for. A contract
number `AB-1234`, an amount `K$4,800`, a date `2022-07-01`, a section `s12` or `4.2` is the one
signal that tells two otherwise similar passages apart, and it is rare, so BM25 weighs it
heavily, but only if it survives tokenisation as one term. TERM is a run of letters or digits
(any script), joined across single inner connectors `- . , / $ : _` when a letter or digit
follows at once: `k$4,800`, `2022-07-01`, `ab-1234`, `e-mail`, `foo_bar`. A connector at the
edge of a word is punctuation (`days,` -> `days`; `$4,800` -> `4,800`). Apostrophes split
(`tenant's` -> `tenant`, `s`), so a possessive matches the plain word.

A joined term also yields its parts (`ab-1234` -> `ab-1234`, `ab`, `1234`): the whole term is an
exact, rare match; the parts let `AB 1234` or `1234` alone still find the passage, with the
weight of their (lower) rarity.

No stemming and no stop-word list: both are language-specific choices (and a stemmer another
dependency) made for prose, while BM25 is here for the exact terms the dense retriever blurs;
the dense side of a `hybrid` retriever already matches inflections, and BM25's IDF makes
frequent words nearly weightless on its own.
"""

from __future__ import annotations

import re

TERM = re.compile(r"[^\W_]+(?:[-.,/$:_][^\W_]+)*")
"""Letters/digits, joined across single inner connectors (see the module docstring)."""
PART = re.compile(r"[^\W_]+")
"""A joined term's parts: its letter/digit runs."""
TERMS_VERSION = 1
"""Bump when `terms` changes: it keys every cached lexical index."""


def terms(text: str) -> list[str]:
    """`text`'s terms in order, each joined term followed by its parts."""
    out: list[str] = []
    for term in TERM.findall(text.lower()):
        out.append(term)
        parts = PART.findall(term)
        if len(parts) > 1:
            out.extend(parts)
    return out
