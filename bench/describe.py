"""`bench describe SUITE`: the counts and length statistics a data card needs, as Markdown."""

from __future__ import annotations

from collections import Counter

import numpy as np

from .config import SPLITS
from .suites import Suite


def _lengths(texts: list[str]) -> str:
    words = np.array([len(t.split()) for t in texts])
    return f"{words.min()} / {int(np.median(words))} / {words.mean():.0f} / {words.max()}"


def describe(suite: Suite) -> str:
    lines = [f"### {suite.spec.name}: counts and lengths", "",
             "| task | kind | " + " | ".join(SPLITS) + " | input words (min / median / mean / max) "
             "| reference words (min / median / mean / max) |",
             "|---|---|" + "---|" * len(SPLITS) + "---|---|"]
    for t in suite.tasks.values():
        every = [e for s in SPLITS for e in t.split(s)]
        lines.append(f"| {t.name} | {t.spec.kind} | " + " | ".join(str(t.full_sizes.get(s, 0)) for s in SPLITS) +
                     f" | {_lengths([e.input for e in every])} | {_lengths([e.target for e in every])} |")
    for t in suite.tasks.values():
        if not t.spec.labels:
            continue
        lines += ["", f"Labels of `{t.name}` per split:", "", "| label | " + " | ".join(SPLITS) + " |",
                  "|---|" + "---|" * len(SPLITS)]
        counts = {s: Counter(e.target for e in t.split(s)) for s in SPLITS}
        for label in t.spec.labels:
            lines.append(f"| {label} | " + " | ".join(str(counts[s][label]) for s in SPLITS) + " |")
    if suite.corpus:
        words = [len(d.text.split()) for d in suite.corpus]
        lines += ["", f"Corpus: {len(suite.corpus)} documents, {sum(words)} words "
                      f"(per document min {min(words)}, median {int(np.median(words))}, max {max(words)})."]
    return "\n".join(lines)
