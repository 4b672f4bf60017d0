"""Quality gates of the built-in legal suite (issue: large and hard enough that arms separate)."""

import itertools
import re
from collections import Counter

import pytest

from bench.metrics import normalize_answer
from bench.suites import load_suite


@pytest.fixture(scope="module")
def legal():
    return load_suite("legal", apply_limits=False)


def grams(text: str) -> set[str]:
    t = re.sub(r"\s+", " ", text.lower())
    return {t[i:i + 5] for i in range(max(1, len(t) - 4))}


def jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / max(1, len(a | b))


def test_sizes(legal):
    sizes = {name: sum(t.full_sizes.values()) for name, t in legal.tasks.items()}
    assert sizes["clause_type"] >= 500 and sizes["tenancy_qa"] >= 300 and sizes["plain_summary"] >= 250
    sections = [d for d in legal.corpus if re.fullmatch(r"s\d+", d.id)]
    assert 40 <= len(sections) <= 80
    assert any(d.meta.get("amends") for d in legal.corpus), "amending instruments are part of the corpus"


@pytest.mark.parametrize("task", ["clause_type", "tenancy_qa", "plain_summary"])
def test_no_exact_or_near_duplicates_across_splits(legal, task):
    t = legal.tasks[task]
    by_split = {s: [(e.id, grams(e.input)) for e in t.split(s)] for s in ("train", "validation", "test")}
    flagged = []
    for a, b in itertools.combinations(by_split, 2):
        for (ia, ga), (ib, gb) in itertools.product(by_split[a], by_split[b]):
            if jaccard(ga, gb) >= 0.6:
                flagged.append((ia, ib))
    assert not flagged, flagged[:10]


def test_every_qa_gold_section_exists_and_holds_the_answer(legal):
    docs = {d.id: normalize_answer(d.text) for d in legal.corpus}
    bad = []
    for split in ("train", "validation", "test"):
        for e in legal.tasks["tenancy_qa"].split(split):
            text = docs.get(e.meta["section"])
            if text is None:
                bad.append((e.id, "no such section"))
                continue
            yes_no = normalize_answer(e.target) in ("yes", "no")
            probe = e.meta.get("evidence") if yes_no else e.target
            if not probe or normalize_answer(probe) not in text:
                bad.append((e.id, probe))
            if e.meta.get("amended"):
                original = docs.get(e.meta.get("original_section"))
                if original is None or (not yes_no and normalize_answer(e.meta["original_answers"][0]) not in original):
                    bad.append((e.id, "original answer not in original section"))
    assert not bad, bad[:10]


def test_qa_test_sections_are_never_seen_in_train(legal):
    qa = legal.tasks["tenancy_qa"]
    def section(e):
        return e.meta.get("original_section") or e.meta["section"]
    train = {section(e) for e in qa.split("train")}
    test = {section(e) for e in qa.split("test")}
    assert test and not (train & test)
    assert any(e.meta.get("amended") for e in qa.split("test")) or any(e.meta.get("amended") for e in qa.split("train"))


def test_label_balance_within_bounds(legal):
    ct = legal.tasks["clause_type"]
    for split in ("train", "validation", "test"):
        counts = Counter(e.target for e in ct.split(split))
        assert set(counts) == set(ct.spec.labels), f"{split} lacks a label"
        mean = sum(counts.values()) / len(counts)
        assert max(counts.values()) <= 1.5 * mean and min(counts.values()) >= 0.5 * mean, (split, counts)


def test_split_shares_near_60_15_25(legal):
    for t in legal.tasks.values():
        n = sum(t.full_sizes.values())
        for split, share in (("train", 0.60), ("validation", 0.15), ("test", 0.25)):
            assert abs(t.full_sizes[split] / n - share) < 0.06, (t.name, split, t.full_sizes)


def test_profiles_share_legal_tasks_so_primary_metrics_agree(legal):
    # legal-smoke's own copy of the tasks once listed exact_match first for QA: the profiles
    # cannot differ from legal's single declaration in anything but `limit`.
    for profile in ("smoke", "full"):
        other = load_suite("legal", profile=profile, apply_limits=False)
        for name, task in legal.tasks.items():
            assert other.tasks[name].spec.metrics[0] == task.spec.metrics[0]
            assert other.tasks[name].spec.model_dump(exclude={"limit"}) == task.spec.model_dump(exclude={"limit"})
    smoke = load_suite("legal", profile="smoke")
    assert smoke.tasks["tenancy_qa"].spec.metrics[0] == legal.tasks["tenancy_qa"].spec.metrics[0] == "token_f1"
    sizes = {n: len(t.split("test")) for n, t in smoke.tasks.items()}
    assert sizes == {"clause_type": 6, "tenancy_qa": 4, "plain_summary": 3, "lease_qa": 4}
    full = load_suite("legal", profile="full")
    assert len(full.tasks["plain_summary"].split("test")) == full.tasks["plain_summary"].full_sizes["test"] > 40
