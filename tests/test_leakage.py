"""Leakage checks (bench.leakage) on a tiny suite with planted leaks, a clean one, the CLI warning,
the run's leakage.json and the report section built from it."""

import io
import json
import random
from pathlib import Path

import pytest
from rich.console import Console

from bench.__main__ import main
from bench.leakage import LEAKAGE_FILE, LeakageReport, LeakageThresholds, find_leakage
from bench.suites import load_suite
from bench.text_overlap import SubstringIndex, jaccard, near_duplicates, normalise, shingles

SUITE = """\
name: leaky
model: random:tiny-llama
seed: 0
tasks:
  - name: facts
    kind: qa
    data:
      file: data/facts.jsonl
    input_field: question
    target_field: answers
    instruction: Answer briefly.
    metrics: [exact_match]
    max_new_tokens: 4
corpus:
  files: [corpus/docs.jsonl]
arms:
  - arm: prompt
    name: zero-shot
  - arm: prompt
    name: all-shot
    shots: 5
  - arm: rag
    name: rag-examples
    mode: examples
    k: 2
"""

TRAIN = [
    ("tr1", "The harbour bridge was painted green in the spring of the year after the flood.", "green"),
    ("tr2", "Which river runs through the old mill town beside the northern hills?", "the Alder"),
    ("tr3", "The committee decided that the annual meeting would be held in the town hall on the first Monday "
            "of March.", "March"),
    ("tr4", "Who keeps the records of the county archive?", "the clerk of the county court"),
    ("tr5", "Is the ferry free for children under five?", "yes"),
]
VALIDATION = [
    ("va1", "Under the old rules every tenant who paid rent late had to pay a small fee to the landlord each week.",
     "a small fee"),
]
PLANTED = [  # one leak of each kind
    ("te-exact", "the HARBOUR bridge was painted green, in the spring of the year after the flood!", "green"),
    ("te-near", "The committee decided that the annual meeting would be held in the village hall on the first "
                "Monday of March.", "March"),
    ("te-ngram", "Under the old rules every tenant who paid rent late had to pay, but what replaced that charge "
                 "when the reform came?", "nothing at all"),
    ("te-corpus", "Bonds must be lodged with the housing commission within ten working days of payment.", "ten days"),
    ("te-demo", "Who is responsible for the county archive today?", "the clerk of the county court"),
]
CLEAN_TEST = [  # short common answers that train also has: never a leak
    ("te-short", "Is the bridge open on Sundays?", "yes"),
    ("te-clean", "How many lanes does the new ring road have in each direction?", "three lanes in each direction"),
]
DOCS = [{"id": "d1", "title": "Bonds", "text": "Section 4. Bonds must be lodged with the housing commission within "
                                              "ten working days of payment. A receipt is given."},
        {"id": "d2", "title": "Repairs", "text": "Section 5. The landlord repairs the roof and the walls."}]


def write_suite(root: Path, test: list[tuple[str, str, str]]) -> Path:
    (root / "data").mkdir(parents=True)
    (root / "corpus").mkdir()
    rows = [{"id": i, "question": q, "answers": [a], "split": split}
            for split, part in (("train", TRAIN), ("validation", VALIDATION), ("test", test)) for i, q, a in part]
    (root / "data" / "facts.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (root / "corpus" / "docs.jsonl").write_text("".join(json.dumps(d) + "\n" for d in DOCS))
    (root / "suite.yaml").write_text(SUITE)
    return root / "suite.yaml"


ALL_SHOWN = LeakageThresholds(examples_shown=20)  # every match kept, so the tests see every flagged id


def flagged(report: LeakageReport) -> dict[str, set[str]]:
    return {r.check: {m.test_id for m in r.examples} for r in report.results}


def test_every_planted_leak_is_found_by_its_check(tmp_path):
    report = find_leakage(load_suite(str(write_suite(tmp_path, PLANTED + CLEAN_TEST))), thresholds=ALL_SHOWN)
    found = flagged(report)
    assert found["exact_duplicate"] == {"te-exact"}
    assert found["near_duplicate"] == {"te-near"}  # the exact duplicate is not counted twice
    # te-ngram's characters overlap too little to be near, but it shares 13 words in a row; te-near's changed
    # word is its 13th, so it shares only 12 in a row: each check catches what the other misses
    assert found["ngram_overlap"] == {"te-exact", "te-ngram"}
    assert found["input_in_corpus"] == {"te-corpus"}
    assert found["reference_in_demos"] == {"te-demo"}
    assert found["reference_in_pool"] == {"te-demo"}
    by_check = {r.check: r for r in report.results}
    assert by_check["exact_duplicate"].examples[0].other == "train tr1"
    assert by_check["ngram_overlap"].examples[1].other == "validation va1"
    assert by_check["input_in_corpus"].examples[0].other == "corpus document d1"
    assert by_check["reference_in_pool"].examples[0].other == "train tr4 (retrieval pool of rag-examples)"
    assert by_check["reference_in_demos"].examples[0].other == "all-shot demonstration tr4"
    # only te-demo's and te-clean's references have 4 words or more: 'yes', 'green', 'ten days' are not judged
    assert by_check["reference_in_demos"].checked == 2 and by_check["exact_duplicate"].checked == 7


def test_a_clean_suite_finds_nothing_and_short_common_answers_are_not_flagged(tmp_path):
    report = find_leakage(load_suite(str(write_suite(tmp_path, CLEAN_TEST))))
    assert report.findings() == [] and report.warnings() == []
    assert {r.check for r in report.results} == {"exact_duplicate", "near_duplicate", "ngram_overlap",
                                                 "input_in_corpus", "reference_in_demos", "reference_in_pool"}
    # with the length floor at one word, te-short's 'yes' matches train's 'yes': the floor is what keeps it out
    loose = find_leakage(load_suite(str(tmp_path / "suite.yaml")), thresholds=LeakageThresholds(min_match_words=1))
    assert flagged(loose)["reference_in_demos"] == {"te-short"}


def test_reference_checks_follow_the_arms_that_use_demonstrations(tmp_path):
    suite = load_suite(str(write_suite(tmp_path, PLANTED)))
    zero_shot_only = find_leakage(suite, arms=[suite.spec.arms[0]])
    assert {r.check for r in zero_shot_only.results} == {"exact_duplicate", "near_duplicate", "ngram_overlap",
                                                         "input_in_corpus"}


def test_the_report_survives_json():
    report = LeakageReport(LeakageThresholds(near_jaccard=0.7), ())
    assert LeakageReport.from_json(json.loads(json.dumps(report.to_json()))) == report


def test_validate_prints_one_warning_per_finding_and_still_succeeds(tmp_path, capsys):
    assert main(["validate", str(write_suite(tmp_path, PLANTED))]) == 0
    out = capsys.readouterr().out
    warnings = [line for line in out.splitlines() if line.startswith("warning leakage in facts")]
    assert len(warnings) == 6, out
    assert any("1 of 5 test inputs equal a train/validation input" in w and "te-exact ~ train tr1" in w
               for w in warnings), out


def test_near_duplicates_agree_with_comparing_every_pair():
    rng = random.Random(0)
    words = "the a tenant landlord bond rent pays owes notice days weeks court".split()
    texts = [" ".join(rng.choice(words) for _ in range(rng.randint(3, 12))) for _ in range(120)]
    sets = [shingles(t, 5) for t in texts]
    queries, pool = sets[:40], sets[40:]
    for threshold in (0.5, 0.8):
        brute = {i: max(jaccard(q, p) for p in pool) for i, q in enumerate(queries)}
        expected = {i for i, best in brute.items() if best >= threshold}
        found = near_duplicates(queries, pool, threshold)
        assert set(found) == expected
        assert all(abs(score - brute[i]) < 1e-12 for i, (_, score) in found.items())


def test_substring_search_respects_word_boundaries():
    index = SubstringIndex([("a", "Pay within 15 days."), ("b", "Notice: 5 days")])
    assert index.find(normalise("5 days")) == "b"
    assert index.find(normalise("within 15")) == "a"
    assert index.find(normalise("days notice")) is None  # never across two texts
    assert normalise("The Tenant’s  BOND.") == "the tenant s bond"


@pytest.fixture()
def isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("TRIDENT_CACHE", str(tmp_path / "cache"))
    return tmp_path


def test_run_warns_writes_leakage_json_and_the_report_shows_it(isolated):
    from bench.report import finish_report
    from bench.runner import RunOptions, run_suite

    path = write_suite(isolated / "leaky", PLANTED)
    out = io.StringIO()
    run_dir = run_suite(str(path), RunOptions(results=isolated / "results", arms=["zero-shot", "all-shot"],
                                              dtype="float32"), Console(file=out, width=400))
    assert "warning leakage in facts: 1 of 5 test inputs equal a train/validation input" in out.getvalue()
    stored = LeakageReport.from_json(json.loads((run_dir / LEAKAGE_FILE).read_text()))
    assert "reference_in_pool" not in {r.check for r in stored.results}  # rag-examples is not in this run
    assert flagged(stored)["reference_in_demos"] == {"te-demo"}
    _, paths = finish_report(run_dir)
    md, html = paths["md"].read_text(), paths["html"].read_text()
    assert "## Leakage" in md and "| facts | exact_duplicate | 1 of 5 | test te-exact ~ train tr1 (identical) |" in md
    assert "te-exact ~ train tr1" in html and "<h2>Leakage</h2>" in html
