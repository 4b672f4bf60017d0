"""Write the legal suite's `lease_qa` data: corpus/leases.jsonl (44 invented residential tenancy
agreements of the Province of Kestrel) and data/lease_qa.jsonl (8 questions on each), from the
hand-written pools and wording in lease_facts.py, lease_text.py and lease_questions.py combined by
one seeded random generator: rerunning it writes the same bytes.

    python suites/legal/make_leases.py && python suites/legal/assign_splits.py

assign_splits.py then adds each question's split, by agreement. Questions of one fact share a few
phrasings, so two questions about different agreements can read alike; a question's wording is drawn
again (up to WORDING_TRIES times) while it is a near duplicate of a question in another split, as
the suite's leakage checks define one, with some margin (bench.leakage: character 5-gram Jaccard
0.8, one shared 13-word sequence). Before writing, every answer is checked to be in its
agreement's text (yes/no: the deciding sentence), so a broken template fails here rather than in
the suite's quality gates.
"""

from __future__ import annotations

import json
import random
import re
import string
import sys
from functools import partial
from pathlib import Path

from assign_splits import _cut
from lease_facts import Lease, draw_leases
from lease_questions import candidates, choose, record, shared_answers, wording
from lease_text import render

HERE = Path(__file__).parent
SEED = "trident-legal-lease-questions"
WORDING_TRIES = 200
NEAR_JACCARD = 0.7  # below the leakage check's 0.8
SHARED_WORDS = 11   # below its 13


def normalised(text: str) -> str:
    """As bench.metrics.normalize_answer: lower case, no punctuation or articles, single spaces."""
    text = "".join(ch for ch in text.lower() if ch not in string.punctuation)
    return " ".join(re.sub(r"\b(a|an|the)\b", " ", text).split())


def document(lease: Lease, title: str, text: str) -> dict:
    """One line of corpus/leases.jsonl; every field but id, title and text is metadata a rag
    `filter` can match (agreement_ref is what lease_qa's questions carry)."""
    return {"id": lease.id, "title": title, "text": text, "agreement_ref": lease.ref,
            "premises": lease.premises.short, "landlord": lease.landlord, "tenants": list(lease.tenants),
            "style": lease.style, "start": lease.start.isoformat()}


def problems_of(row: dict, text: str) -> list[str]:
    """Answers (or the yes/no evidence) missing from the agreement's text."""
    body = normalised(text)
    probes = [row["evidence"]] if "evidence" in row else row["answers"]
    return [f"{row['id']}: {p!r} not in {row['agreement']}" for p in probes if normalised(p) not in body]


def main() -> None:
    leases = draw_leases()
    rendered = {lease.id: render(lease) for lease in leases}
    options = {lease.id: candidates(lease, rendered[lease.id].evidence) for lease in leases}
    shared = shared_answers([facts for facts, _ in options.values()])
    rng, split_of = random.Random(SEED), _cut([lease.id for lease in leases])
    rows, asked = [], Asked()
    for lease in leases:
        facts, yes_no = options[lease.id]
        for number, (q, mode) in enumerate(choose(lease, facts, yes_no, shared, rng), 1):
            text = asked.distinct(partial(wording, lease, q, mode, rng), split_of[lease.id])
            rows.append(record(lease, number, q, mode, text))
    bad = [p for row in rows for p in problems_of(row, rendered[row["agreement"]].text)]
    if bad:
        sys.exit("\n".join(bad))
    docs = [document(lease, rendered[lease.id].title, rendered[lease.id].text) for lease in leases]
    write(HERE / "corpus" / "leases.jsonl", docs)
    write(HERE / "data" / "lease_qa.jsonl", rows)
    print(f"{len(docs)} agreements, {len(rows)} questions; run assign_splits.py next")


class Asked:
    """The questions written so far, by split, to keep a new one from reading like another split's."""

    def __init__(self) -> None:
        self.by_split: dict[str, list[tuple[frozenset[str], set[str]]]] = {}

    def distinct(self, draw, split: str) -> str:
        """The first of up to WORDING_TRIES wordings from `draw()` that is no near duplicate of a
        question of another split (else the least similar one: the quality gates will say so)."""
        best, best_score = "", 2.0
        for _ in range(WORDING_TRIES):
            text = draw()
            score = self.similarity(text, split)
            if score < best_score:
                best, best_score = text, score
            if score < NEAR_JACCARD:
                break
        self.by_split.setdefault(split, []).append(overlap_keys(best))
        return best

    def similarity(self, text: str, split: str) -> float:
        """The highest Jaccard with another split's question; 1.0 when a word sequence is shared."""
        grams, words = overlap_keys(text)
        others = [k for s, keys in self.by_split.items() if s != split for k in keys]
        if any(words & w for _, w in others):
            return 1.0
        return max((len(grams & g) / len(grams | g) for g, _ in others), default=0.0)


def overlap_keys(text: str) -> tuple[frozenset[str], set[str]]:
    """(character 5-grams, SHARED_WORDS-word sequences) of the text normalised as bench.text_overlap
    does: lower case, every run of punctuation and spaces one space."""
    norm = " ".join(re.sub(r"[\W_]+", " ", text.lower()).split())
    words = norm.split()
    return (frozenset(norm[i:i + 5] for i in range(len(norm) - 4)),
            {" ".join(words[i:i + SHARED_WORDS]) for i in range(len(words) - SHARED_WORDS + 1)})


def write(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


if __name__ == "__main__":
    main()
