"""A task's own `corpus:` replaces the suite's for that task alone: loading, validation against it,
retrieval that never sees the other task's documents, and cache keys that hash the corpus used.

No real embedder: a stub with the byte tokenizer and hashed bag-of-words vectors stands in for
it (the arm only needs its tokenizer to chunk and, for dense retrieval, its vectors).
"""

from __future__ import annotations

import json
import zlib
from pathlib import Path

import numpy as np
import pytest
import yaml

import bench.arms.rag as rag_module
from bench.arms import suite_context
from bench.arms.rag import RagArm
from bench.config import FinetuneArm as FinetuneSpec
from bench.config import RagArm as RagSpec
from bench.config import SuiteError
from bench.data import stable_hash
from bench.models import byte_tokenizer
from bench.suites import load_suite

STATUTE = [{"id": "s1", "title": "Bonds", "text": "A bond may not exceed three weeks' rent under section one."},
           {"id": "s2", "title": "Pets", "text": "A landlord answers a request to keep a pet within 21 days."}]
LEASES = [{"id": "l1", "title": "Lease", "text": "Lease AB-1. The rent is K$612 per week and the bond is K$1,836.",
           "agreement_ref": "AB-1"},
          {"id": "l2", "title": "Lease", "text": "Lease AB-2. The rent is K$455 per week and the bond is K$1,365.",
           "agreement_ref": "AB-2"}]
LAW_QA = [{"id": "q1", "question": "How many weeks' rent may a bond be?", "answers": ["three weeks"], "doc": "s1",
           "split": "train"},
          {"id": "q3", "question": "Who answers a request to keep a pet?", "answers": ["landlord"], "doc": "s2",
           "split": "train"},
          {"id": "q2", "question": "Within how many days is a pet request answered?", "answers": ["21 days"],
           "doc": "s2", "split": "test"}]
LEASE_QA = [{"id": "p1", "question": "What is the bond under lease AB-1?", "answers": ["K$1,836"], "doc": "l1",
             "ref": "AB-1", "split": "train"},
            {"id": "p2", "question": "What is the rent under lease AB-2?", "answers": ["K$455"], "doc": "l2",
             "ref": "AB-2", "split": "test"}]


def rows(records: list[dict]) -> str:
    return "".join(json.dumps(r) + "\n" for r in records)


def task(name: str, data: str, **extra) -> dict:
    return {"name": name, "kind": "qa", "data": {"file": data}, "input_field": "question", "target_field": "answers",
            "gold_doc_field": "doc", "instruction": "Answer briefly.", "metrics": ["exact_match"],
            "max_new_tokens": 3, **extra}


def write_suite(root: Path, *, leases=LEASES, lease_qa=LEASE_QA, lease_corpus=None, arms=None,
                suite_corpus=True) -> Path:
    (root / "data").mkdir(parents=True, exist_ok=True)
    (root / "corpus").mkdir(exist_ok=True)
    (root / "corpus" / "statute.jsonl").write_text(rows(STATUTE))
    (root / "corpus" / "leases.jsonl").write_text(rows(leases))
    (root / "data" / "law.jsonl").write_text(rows(LAW_QA))
    (root / "data" / "leases.jsonl").write_text(rows(lease_qa))
    law = task("law", "data/law.jsonl")
    if not suite_corpus:
        law.pop("gold_doc_field")  # its gold documents would be in no corpus
    spec = {"name": "two-corpora", "model": "random:tiny-llama", "seed": 0,
            "tasks": [law,
                      task("leases", "data/leases.jsonl",
                           corpus=lease_corpus or {"files": ["corpus/leases.jsonl"]})],
            "arms": arms or [{"arm": "rag", "name": "rag-k2", "k": 2, "retriever": "bm25", "chunk_tokens": 64,
                              "chunk_overlap": 8}]}
    if suite_corpus:
        spec["corpus"] = {"files": ["corpus/statute.jsonl"]}
    (root / "suite.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    return root / "suite.yaml"


class StubEmbedder:
    """The parts of bench.retrieval.embedding.Embedder the rag arm uses, without a model."""

    dim, identity, name, max_seq_length, batch_size, dtype = 64, "stub-embedder", "stub", 128, 8, "float32"

    def __init__(self, *args, **kwargs):
        self.tokenizer = byte_tokenizer()
        self.key = {"embedder": self.identity, "dim": self.dim}
        self.progress = kwargs.get("progress", lambda label, total, **kw: lambda n: None)

    def encode(self, texts, batch_size=None, progress=None):
        vecs = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            for word in text.lower().split():
                vecs[i, zlib.crc32(word.encode()) % self.dim] += 1.0
        return vecs / np.maximum(np.linalg.norm(vecs, axis=1, keepdims=True), 1e-12)


@pytest.fixture()
def stub(monkeypatch, env):
    monkeypatch.setattr(rag_module, "Embedder", StubEmbedder)


def context(suite, lm=None):
    return suite_context(suite, lambda: lm, batch_size=2)


def problems(path: Path) -> list[str]:
    with pytest.raises(SuiteError) as e:
        load_suite(str(path))
    return [str(p) for p in e.value.problems]


# -- loading -----------------------------------------------------------------------------------------

def test_a_task_corpus_is_loaded_into_its_task_and_replaces_the_suite_corpus_for_it(tmp_path):
    suite = load_suite(str(write_suite(tmp_path)))
    assert [d.id for d in suite.corpus] == ["s1", "s2"]
    assert suite.tasks["law"].corpus is None
    assert [d.id for d in suite.tasks["leases"].corpus] == ["l1", "l2"]
    assert suite.tasks["leases"].corpus[0].meta == {"agreement_ref": "AB-1"}
    ctx = context(suite)
    assert [d.id for d in ctx.corpus_for(suite.tasks["law"])] == ["s1", "s2"]
    assert [d.id for d in ctx.corpus_for(suite.tasks["leases"])] == ["l1", "l2"]


def test_a_task_corpus_needs_no_suite_corpus(tmp_path):
    arms = [{"arm": "rag", "name": "rag", "tasks": ["leases"]}]
    suite = load_suite(str(write_suite(tmp_path, suite_corpus=False, arms=arms)))
    assert suite.corpus == [] and [d.id for d in suite.tasks["leases"].corpus] == ["l1", "l2"]


# -- validation against the task's own corpus -------------------------------------------------------

def test_a_gold_id_of_the_suite_corpus_is_an_error_on_a_task_with_its_own(tmp_path):
    # s1 is a document of the suite's corpus, not of the leases task's: retrieval for that task
    # could never find it, so it is refused, located at the task's gold_doc_field
    bad = [dict(LEASE_QA[0]), dict(LEASE_QA[1], doc="s1")]
    found = problems(write_suite(tmp_path, lease_qa=bad))
    assert len(found) == 1
    assert "suite.yaml" in found[0] and "tasks[1].gold_doc_field" in found[0]
    assert "'s1' (example p2)" in found[0] and "expected ids of the task's own corpus" in found[0]


def test_a_missing_task_corpus_file_is_located_at_the_task(tmp_path):
    found = problems(write_suite(tmp_path, lease_corpus={"files": ["corpus/missing.jsonl"]}))
    assert any("tasks[1].corpus.files" in p and "file not found" in p for p in found), found
    assert not any("gold_doc_field" in p for p in found)  # the corpus's own problem says it all


def test_corpus_retrieval_on_a_task_without_any_corpus_names_that_task(tmp_path):
    arms = [{"arm": "rag", "name": "rag"}]  # runs on both tasks; only leases has a corpus
    found = problems(write_suite(tmp_path, suite_corpus=False, arms=arms))
    assert len(found) == 1 and "arms[0].mode" in found[0]
    assert "corpus retrieval needs a `corpus:` in suite.yaml or on task law" in found[0]


def test_a_filter_is_checked_against_the_task_corpus_metadata(tmp_path):
    arms = [{"arm": "rag", "name": "rag-filter", "tasks": ["leases"],
             "filter": {"doc_field": "agreement_ref", "example_field": "ref"}}]
    assert load_suite(str(write_suite(tmp_path / "ok", arms=arms)))  # the leases carry agreement_ref
    found = problems(write_suite(tmp_path / "bad", arms=[dict(arms[0], tasks=["law"])]))
    assert len(found) == 1 and "task law" in found[0] and "filter.doc_field 'agreement_ref'" in found[0]


@pytest.mark.parametrize("corpus, words", [
    ({"files": ["corpus/leases.jsonl"], "update": ["corpus/statute.jsonl"]}, "a task's corpus takes no 'update'"),
])
def test_a_task_corpus_takes_no_update_files(tmp_path, corpus, words):
    found = problems(write_suite(tmp_path, lease_corpus=corpus))
    assert any(words in p and "tasks[1]" in p for p in found), found


# -- retrieval sees only the task's own documents ---------------------------------------------------

@pytest.mark.parametrize("retriever", ["bm25", "dense"])
def test_retrieval_for_each_task_searches_only_its_own_documents(tmp_path, stub, retriever):
    suite = load_suite(str(write_suite(tmp_path)))
    arm = RagArm(RagSpec(arm="rag", name="r", k=4, retriever=retriever, chunk_tokens=64, chunk_overlap=8))
    ctx = context(suite)
    for name, own in (("law", {"s1", "s2"}), ("leases", {"l1", "l2"})):
        searcher, chunks = arm.retriever(ctx, suite.tasks[name], "cpu")
        assert {c.doc_id for c in chunks} == own
        # a query in the other corpus's words still finds only this task's documents
        other = "rent K$612 bond lease AB-1" if name == "law" else "pet request landlord days"
        hits = searcher.search([other], 4)
        assert {searcher.items[p].source_id for p in hits.positions[0]} <= own


def test_predictions_retrieve_the_gold_document_of_the_task_corpus(tmp_path, stub, tiny_lm):
    suite = load_suite(str(write_suite(tmp_path)))
    arm = RagArm(next(a for a in suite.spec.arms if a.name == "rag-k2"))
    t = suite.tasks["leases"]
    result = arm.predict(context(suite, tiny_lm), t, t.split("test"))
    (record,) = [p.to_record() for p in result.predictions]
    assert record["retrieved"][0] == "l2" and set(record["retrieved"]) <= {"l1", "l2"}


# -- cache keys hash the corpus used ------------------------------------------------------------------

def test_rag_cache_keys_hash_the_corpus_each_task_uses(tmp_path):
    suite = load_suite(str(write_suite(tmp_path / "a")))
    arm = RagArm(RagSpec(arm="rag", name="r"))
    ctx = context(suite)
    law, leases = (arm.cache_key(ctx, suite.tasks[n])["corpus"] for n in ("law", "leases"))
    assert law == stable_hash(list(suite.corpus))  # a task without its own: the key it always had
    assert leases == stable_hash(suite.tasks["leases"].corpus) and leases != law
    changed = [dict(LEASES[0]), dict(LEASES[1], text=LEASES[1]["text"].replace("K$455", "K$456"))]
    other = load_suite(str(write_suite(tmp_path / "b", leases=changed)))
    octx = context(other)
    assert arm.cache_key(octx, other.tasks["leases"])["corpus"] != leases
    assert arm.cache_key(octx, other.tasks["law"])["corpus"] == law


def test_a_finetune_learns_from_and_is_keyed_by_its_tasks_corpora(tmp_path):
    from bench.arms.finetune import FinetuneArm

    suite = load_suite(str(write_suite(tmp_path)))
    ctx = context(suite)
    per_task = FinetuneArm(FinetuneSpec(arm="finetune", name="k", knowledge="mixed"))
    assert [d.id for d in per_task.corpus(ctx, suite.tasks["leases"])] == ["l1", "l2"]
    assert per_task.cache_key(ctx, suite.tasks["law"])["corpus"] == stable_hash(list(suite.corpus))
    both = FinetuneArm(FinetuneSpec(arm="finetune", name="m", knowledge="mixed", scope="multi_task"))
    assert [d.id for d in both.corpus(ctx, suite.tasks["law"])] == ["s1", "s2", "l1", "l2"]
