"""Text overlap primitives for the leakage checks (bench.leakage): normalisation, character
shingles, word n-grams, near-duplicate search and normalised substring search. Plain Python sets
and dicts: exact answers, no dependency, and fast at the sizes suites have (hundreds to tens of
thousands of examples).

Near duplicates are found with prefix filtering (the AllPairs idea): under one global order of
shingles, rarest first, two sets with Jaccard >= t always share one of the first
|x| - ceil(t * |x|) + 1 shingles of each, so only pairs that do are compared. It gives the same
pairs as comparing every test input with every train input, at a fraction of the cost once the
splits grow; MinHash (datasketch) would be approximate and is not needed at these sizes.
"""

from __future__ import annotations

import math
import re
import unicodedata
from bisect import bisect_right
from collections import Counter, defaultdict
from collections.abc import Sequence

_NOT_WORD = re.compile(r"[\W_]+")
_SEPARATOR = "|"  # never inside a normalised text (only letters, digits and spaces), so no match spans two texts


def normalise(text: str) -> str:
    """Lower case, Unicode compatibility forms folded (NFKC), every run of punctuation, symbols and
    white space made one space: 'The Tenant’s  BOND.' -> 'the tenant s bond'."""
    folded = unicodedata.normalize("NFKC", text).lower()
    return " ".join(_NOT_WORD.sub(" ", folded).split())


def shingles(normalised: str, n: int) -> frozenset[str]:
    """The character n-grams of a normalised text (the text itself when it is shorter than n)."""
    if len(normalised) <= n:
        return frozenset({normalised})
    return frozenset(normalised[i:i + n] for i in range(len(normalised) - n + 1))


def word_ngrams(normalised: str, n: int) -> list[str]:
    """The n-word sequences of a normalised text, in order (none when it has fewer than n words)."""
    words = normalised.split()
    return [" ".join(words[i:i + n]) for i in range(len(words) - n + 1)]


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    inter = len(a & b)
    return inter / (len(a) + len(b) - inter) if inter else 0.0


def _prefix_length(size: int, threshold: float) -> int:
    # the small epsilon keeps 0.8 * 5 = 4.000000000000001 from rounding up to 5 and shortening the prefix
    return size - math.ceil(threshold * size - 1e-9) + 1


def near_duplicates(queries: Sequence[frozenset[str]], pool: Sequence[frozenset[str]],
                    threshold: float) -> dict[int, tuple[int, float]]:
    """For each query with a pool set of Jaccard >= `threshold`: query index -> (index of its most
    similar pool set, the Jaccard). Exact (see the module docstring)."""
    freq = Counter(s for group in (queries, pool) for sh in group for s in sh)

    def prefix(sh: frozenset[str]) -> list[str]:
        return sorted(sh, key=lambda s: (freq[s], s))[:_prefix_length(len(sh), threshold)]

    index: dict[str, list[int]] = defaultdict(list)
    for j, sh in enumerate(pool):
        for s in prefix(sh):
            index[s].append(j)
    found: dict[int, tuple[int, float]] = {}
    for i, sh in enumerate(queries):
        candidates = sorted({j for s in prefix(sh) for j in index.get(s, ())})
        best = max(((jaccard(sh, pool[j]), -j) for j in candidates
                    if min(len(sh), len(pool[j])) >= threshold * max(len(sh), len(pool[j])) - 1e-9),
                   default=(0.0, 0))
        if best[0] >= threshold:
            found[i] = (-best[1], best[0])
    return found


class SubstringIndex:
    """Normalised texts, each labelled, searched for a normalised phrase that starts and ends on word
    boundaries ('5 days' is not found inside '15 days')."""

    def __init__(self, labelled: Sequence[tuple[str, str]]):
        """`labelled`: (label, text) pairs; the text is normalised here."""
        self.labels = [label for label, _ in labelled]
        parts = [f" {normalise(text)} " for _, text in labelled]
        self.starts = [0]
        for p in parts[:-1]:
            self.starts.append(self.starts[-1] + len(p) + len(_SEPARATOR))
        self.haystack = _SEPARATOR.join(parts)

    def find(self, normalised_phrase: str) -> str | None:
        """The label of the first text that holds the phrase, or None."""
        if not normalised_phrase or not self.labels:
            return None
        at = self.haystack.find(f" {normalised_phrase} ")
        return None if at < 0 else self.labels[bisect_right(self.starts, at) - 1]
