"""Quality gates of the legal suite's lease_qa task: look-alike leases with their own corpus,
questions that name their agreement, answers in the gold agreement, splits by agreement, and no
question in one split that reads like another split's."""

import itertools
import re
from collections import Counter

import pytest

from bench.metrics import normalize_answer
from bench.suites import load_suite

SPLITS = ("train", "validation", "test")


@pytest.fixture(scope="module")
def legal():
    return load_suite("legal", apply_limits=False)


@pytest.fixture(scope="module")
def questions(legal):
    return [e for split in SPLITS for e in legal.tasks["lease_qa"].split(split)]


@pytest.fixture(scope="module")
def leases(legal):
    return {d.id: d for d in legal.tasks["lease_qa"].corpus}


def overlap_text(text: str) -> str:
    """Lower case, every run of punctuation and spaces one space (as the leakage checks read text)."""
    return " ".join(re.sub(r"[\W_]+", " ", text.lower()).split())


def grams(text: str) -> set[str]:
    t = overlap_text(text)
    return {t[i:i + 5] for i in range(max(1, len(t) - 4))}


def jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / max(1, len(a | b))


def test_sizes_and_lengths(legal, questions, leases):
    assert len(leases) >= 40 and len(questions) >= 300
    words = [len(d.text.split()) for d in leases.values()]
    assert 250 <= min(words) and max(words) <= 900, (min(words), max(words))   # a few hundred words each
    assert all(1 <= len(e.targets) <= 3 for e in questions)
    assert all(len(e.target.split()) <= 7 for e in questions)                    # short answers
    assert len({e.id for e in questions}) == len(questions)
    assert len({normalize_answer(e.input) for e in questions}) == len(questions)  # no question twice


def test_the_leases_are_the_tasks_own_corpus_and_no_other_tasks(legal, leases):
    assert not set(leases) & {d.id for d in legal.corpus}
    assert {t.name for t in legal.tasks.values() if t.corpus is not None} == {"lease_qa"}
    assert all(re.fullmatch(r"s\d+|amd2022-\d+|reg2024-\d+", d.id) for d in legal.corpus)


def test_every_answer_is_in_its_gold_agreement(questions, leases):
    bad = []
    for e in questions:
        text = normalize_answer(leases[e.meta["agreement"]].text)
        yes_no = normalize_answer(e.target) in ("yes", "no")
        probes = [e.meta.get("evidence")] if yes_no else list(e.targets)
        if yes_no and (len(e.targets) != 1 or not probes[0]):
            bad.append((e.id, "a yes/no question needs one answer and its evidence"))
        bad += [(e.id, p) for p in probes if not p or normalize_answer(p) not in text]
    assert not bad, bad[:10]


def test_every_question_names_its_agreement_unambiguously(questions, leases):
    def names(doc, mode):
        meta = doc.meta
        return {"reference": [meta["agreement_ref"]], "address": [meta["premises"]], "parties": meta["tenants"]}[mode]

    bad = []
    for e in questions:
        asked = normalize_answer(e.input)
        given = [n for n in names(leases[e.meta["agreement"]], e.meta["named_by"]) if normalize_answer(n) in asked]
        others = [d.id for d in leases.values() if d.id != e.meta["agreement"]
                  and any(normalize_answer(n) in asked for n in names(d, e.meta["named_by"]))]
        if not given or others:
            bad.append((e.id, e.input, others))
    assert not bad, bad[:10]
    assert set(Counter(e.meta["named_by"] for e in questions)) == {"reference", "address", "parties"}


def test_the_filter_field_picks_out_the_gold_agreement(questions, leases):
    by_ref = Counter(d.meta["agreement_ref"] for d in leases.values())
    assert set(by_ref.values()) == {1}
    gold_of = {d.meta["agreement_ref"]: d.id for d in leases.values()}
    assert all(gold_of[e.meta["agreement_ref"]] == e.meta["agreement"] for e in questions)


def test_splits_are_by_agreement(legal):
    task = legal.tasks["lease_qa"]
    agreements = {s: {e.meta["agreement"] for e in task.split(s)} for s in SPLITS}
    for a, b in itertools.combinations(SPLITS, 2):
        assert not agreements[a] & agreements[b], (a, b)
    assert all(agreements.values())


def test_no_question_reads_like_one_of_another_split(legal):
    """Exact and near duplicates as the leakage checks define them (character 5-gram Jaccard >= 0.8,
    or one shared 13-word sequence), and, stricter, a question of the same wording (Jaccard >= 0.6)
    with the same answer: that one a model could answer from a train question alone. Yes/no
    answers repeat by nature; the floor (most frequent train answer) shows what guessing earns."""
    task = legal.tasks["lease_qa"]
    rows = {s: [(e, grams(e.input), normalize_answer(e.target)) for e in task.split(s)] for s in SPLITS}
    flagged = []
    for a, b in itertools.combinations(SPLITS, 2):
        for (ea, ga, aa), (eb, gb, ab) in itertools.product(rows[a], rows[b]):
            j = jaccard(ga, gb)
            same_answer = aa == ab and aa not in ("yes", "no")
            if j >= 0.8 or (j >= 0.6 and same_answer) or shares_words(ea.input, eb.input, 13):
                flagged.append((ea.id, eb.id, round(j, 2)))
    assert not flagged, flagged[:10]


def shares_words(a: str, b: str, n: int) -> bool:
    def seqs(text):
        words = overlap_text(text).split()
        return {tuple(words[i:i + n]) for i in range(len(words) - n + 1)}
    return bool(seqs(a) & seqs(b))


def test_bonds_and_rent_in_advance_keep_to_the_act(leases):
    """s 13 as amended (3 weeks' rent; 6 over K$1,150 a week; 2 for social housing) and s 20 (2 weeks
    in advance, 4 for a term of 30 months or more)."""
    money = r"K\$([\d,]+(?:\.\d\d)?)"
    for doc in leases.values():
        text = doc.text
        amount, period = re.search(money + r" per (week|fortnight|calendar month)", text).groups()
        weekly = float(amount.replace(",", "")) * {"week": 1, "fortnight": 0.5, "calendar month": 12 / 52}[period]
        bond = float(re.search(r"[Bb]ond(?: is|:|\.)? " + money, text).group(1).replace(",", ""))
        cap = 2 if "social housing" in doc.title else 6 if weekly > 1150 else 3
        assert bond <= cap * weekly + 1e-6, (doc.id, bond, weekly)
        paid = re.search(r"(\w+) weeks?' rent \(" + money + r"\) is payable on signing", text)
        if paid:
            term = re.search(r"(\d+) months", text)
            long_term = term is not None and int(term.group(1)) >= 30
            assert float(paid.group(2).replace(",", "")) <= (4 if long_term else 2) * weekly + 0.01, doc.id


def test_profiles_keep_the_lease_cells_small_by_default(legal):
    default = load_suite("legal")
    assert len(default.tasks["lease_qa"].split("test")) == 40
    full = load_suite("legal", profile="full")
    assert len(full.tasks["lease_qa"].split("test")) == full.tasks["lease_qa"].full_sizes["test"] > 40
    on_leases = [a.name for a in default.spec.arms if not a.tasks or "lease_qa" in a.tasks]
    assert on_leases == ["zero-shot", "rag-k3", "rag-k3-filter"]       # no fine-tune in the default run
