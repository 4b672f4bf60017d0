"""The knowledge-update experiment on a tiny suite whose update changes one fact (the largest bond,
four weeks' rent before, three weeks' after): retrieval switches documents, a stale fine-tune is
reported stale, shares come with n and CIs, cells are cached, and bad declarations are located.

A random model cannot answer, so one test has generation echo the first retrieved passage: that
proves the new/old classification end to end without a real model.
"""

import io
import json
import re
from pathlib import Path

import numpy as np
import pytest
import yaml
from rich.console import Console

from bench.__main__ import main
from bench.config import SuiteError
from bench.errors import ConfigError
from bench.experiments.knowledge_update import plan_update, run_knowledge_update
from bench.generate import Generation
from bench.runner import RunOptions
from bench.suites import load_suite

BASE = [
    {"id": "bond", "title": "Bonds", "text": "A landlord may take a bond of at most four weeks' rent."},
    {"id": "pets", "title": "Pets", "text": "A landlord may not refuse consent to keep a cat without a reason."},
    {"id": "repairs", "title": "Urgent repairs", "text": "Urgent repairs must be done within 24 hours."},
]
UPDATE = [{"id": "bond-2024", "title": "Bond amendment 2024",
           "text": "The maximum bond a landlord may take is now three weeks' rent."}]
CHANGED = {"amended": True, "answers": ["three weeks"], "doc": "bond-2024", "old_answers": ["four weeks"],
           "old_doc": "bond"}
QA = [
    {"id": "q-bond", "question": "What is the maximum bond a landlord may take?", "split": "test", **CHANGED},
    {"id": "q-bond-2", "question": "What maximum bond may a landlord now take?", "split": "train", **CHANGED},
    {"id": "q-pets", "question": "Can a landlord refuse a cat?", "answers": ["no"], "doc": "pets", "split": "train"},
    {"id": "q-fix", "question": "How fast must urgent repairs be done?", "answers": ["24 hours"], "doc": "repairs",
     "split": "train"},
    {"id": "q-pets-2", "question": "May a landlord say no to a cat?", "answers": ["no"], "doc": "pets",
     "split": "validation"},
    {"id": "q-fix-2", "question": "Within what time must urgent repairs be made?", "answers": ["24 hours"],
     "doc": "repairs", "split": "test"},
]
UPDATE_DECLARATION = {"changed_field": "amended", "old_target_field": "old_answers", "old_gold_doc_field": "old_doc"}
ARMS = [{"arm": "prompt", "name": "zero-shot"},
        {"arm": "rag", "name": "rag-k1", "k": 1, "chunk_tokens": 64, "chunk_overlap": 8},
        {"arm": "finetune", "name": "lora", "method": "lora", "rank": 4, "alpha": 8, "dropout": 0.0, "epochs": 1,
         "batch_size": 4, "max_length": 96, "evals_per_epoch": 1, "holdout": 0.0},
        {"arm": "rag", "name": "rag-k1+lora", "k": 1, "chunk_tokens": 64, "chunk_overlap": 8, "finetuned": "lora"}]


def write_suite(root: Path, *, qa=QA, update_files=("corpus/update.jsonl",), declaration=UPDATE_DECLARATION,
                arms=ARMS) -> Path:
    (root / "data").mkdir(parents=True, exist_ok=True)
    (root / "corpus").mkdir(exist_ok=True)
    (root / "corpus" / "base.jsonl").write_text("".join(json.dumps(d) + "\n" for d in BASE))
    (root / "corpus" / "update.jsonl").write_text("".join(json.dumps(d) + "\n" for d in UPDATE))
    (root / "data" / "qa.jsonl").write_text("".join(json.dumps(q) + "\n" for q in qa))
    task = {"name": "qa", "kind": "qa", "data": {"file": "data/qa.jsonl"}, "input_field": "question",
            "target_field": "answers", "gold_doc_field": "doc", "instruction": "Answer briefly.",
            "metrics": ["containment"], "max_new_tokens": 4}
    if declaration is not None:
        task["update"] = declaration
    (root / "suite.yaml").write_text(yaml.safe_dump({
        "name": "bonds", "model": "random:tiny-llama", "seed": 0, "tasks": [task],
        "corpus": {"files": ["corpus/base.jsonl"], "update": list(update_files)}, "arms": arms}, sort_keys=False))
    return root / "suite.yaml"


def echo_first_passage(model, tokenizer, prompts, *, max_new_tokens, batch_size=16, device="cpu", progress=None):
    """Generation that answers with the first retrieved passage's text (or 'I do not know')."""
    texts = []
    for p in prompts:
        found = re.search(r"\[1\] [^\n]*\n([^\n]*)", p)
        texts.append(found.group(1) if found else "I do not know")
    n = len(prompts)
    return Generation(texts, np.full(n, 0.01), np.ones(n, dtype=int), np.ones(n, dtype=int))


def options(root: Path, **kw) -> RunOptions:
    return RunOptions(results=root / "results", device="cpu", dtype="float32", batch_size=4, n_boot=200, **kw)


def quiet() -> Console:
    return Console(file=io.StringIO(), width=160)


def by_state(result, arm):
    return {c.state: c for c in result.conditions if c.arm == arm}


def test_the_experiment_sees_the_fact_change_and_caches_every_cell(env, monkeypatch):
    monkeypatch.setattr("bench.backends.generate", echo_first_passage)  # what the hf engine decodes with
    path = write_suite(env / "s")
    folder, result = run_knowledge_update(str(path), options(env), quiet())

    rag = by_state(result, "rag-k1")
    before, after = rag["before"], rag["re-indexed"]
    # retrieval switches from the statute's document to the update's
    assert [q.retrieved for q in before.questions] == [("bond",), ("bond",)]
    assert [q.retrieved for q in after.questions] == [("bond-2024",), ("bond-2024",)]
    assert before.all.update_retrieved.value == 0 and after.all.update_retrieved.value == 1
    # the echoed passage is read against each set of references: old facts before, new after
    assert (before.all.old.value, before.all.new.value) == (1.0, 0.0)
    assert (after.all.new.value, after.all.old.value) == (1.0, 0.0)
    assert after.catch_up.reindex_s > 0 and after.catch_up.retrain_s is None
    # shares carry n and a CI, on all changed questions and on those outside train
    assert after.all.n == 2 and after.unseen.n == 1 and [q.split for q in after.questions] == ["train", "test"]
    assert after.all.new.low <= after.all.new.value <= after.all.new.high

    lora = by_state(result, "lora")
    assert list(lora) == ["before", "stale", "retrained"]
    assert [q.output for q in lora["stale"].questions] == [q.output for q in lora["before"].questions]
    assert lora["stale"].stale and lora["stale"].source == "before" and lora["stale"].catch_up.total_s == 0
    assert lora["stale"].catch_up.first_training_s > 0 and lora["retrained"].catch_up.retrain_s > 0
    composed = by_state(result, "rag-k1+lora")
    assert list(composed) == ["before", "re-indexed, stale fine-tune", "re-indexed, retrained"]
    stale = composed["re-indexed, stale fine-tune"]
    assert stale.all.new.value == 1.0 and stale.cache_key != composed["re-indexed, retrained"].cache_key
    assert by_state(result, "zero-shot")["unchanged"].catch_up_steps == ()

    saved = json.loads((folder / "knowledge_update.json").read_text())
    assert saved["experiment"] == "knowledge-update" and len(saved["conditions"]) == len(result.conditions)
    report = (folder / "report.md").read_text()
    assert "| rag-k1 | re-indexed | 2 | 1.000 [1.000, 1.000] | 0.000 [0.000, 0.000] |" in report
    assert "stale" in report and (folder / "plots" / "knowledge-update-qa.png").stat().st_size > 0
    assert "<table>" in (folder / "report.html").read_text()
    assert (folder / "before" / "predictions" / "rag-k1" / "qa.jsonl").is_file()

    _, again = run_knowledge_update(str(path), options(env), quiet())
    assert all(c.cached for c in again.conditions)
    assert [c.all for c in again.conditions] == [c.all for c in result.conditions]


def test_stale_only_skips_retraining_and_arms_restrict(env):
    path = write_suite(env / "s")
    plan = plan_update(str(path), options(env, arms=["lora", "rag-k1+lora"]), stale_only=True)
    assert [(c.arm, c.state) for c in plan.conditions] == [
        ("lora", "before"), ("lora", "stale"), ("rag-k1+lora", "before"),
        ("rag-k1+lora", "re-indexed, stale fine-tune")]
    before, after = plan.worlds.before, plan.worlds.after
    assert [d.id for d in before.corpus] == ["bond", "pets", "repairs"]
    assert [d.id for d in after.corpus] == ["bond", "pets", "repairs", "bond-2024"]
    # the before world teaches the old fact in every split; both ask only the changed questions
    assert {e.id: e.targets for e in before.tasks["qa"].split("train")}["q-bond-2"] == ("four weeks",)
    assert [e.id for e in before.tasks["qa"].split("test")] == ["q-bond-2", "q-bond"]
    assert {e.id: e.meta["doc"] for e in before.tasks["qa"].split("test")}["q-bond"] == "bond"
    assert {e.id: e.targets for e in after.tasks["qa"].split("test")}["q-bond"] == ("three weeks",)


def test_a_run_sees_the_corpus_files_then_the_update(env):
    suite = load_suite(str(write_suite(env / "s")))
    assert [d.id for d in suite.corpus] == ["bond", "pets", "repairs", "bond-2024"]


def test_dry_run_prints_the_plan_and_loads_no_model(env, capsys):
    path = write_suite(env / "s")
    assert main(["experiment", "knowledge-update", str(path), "--dry-run", "--stale-only"]) == 0
    out = capsys.readouterr().out
    assert "qa: 2 changed questions (train 1, validation 0, test 1)" in out
    assert "lora: before; stale" in out and "3 documents before the update, 4 after" in out


def test_a_suite_without_an_update_says_so(env):
    path = write_suite(env / "s", declaration=None)
    with pytest.raises(ConfigError, match="no task declares `update:`"):
        plan_update(str(path), options(env))


def problems_of(path):
    with pytest.raises(SuiteError) as info:
        load_suite(str(path))
    return [str(p) for p in info.value.problems]


def test_bad_update_declarations_are_located(env):
    found = problems_of(write_suite(env / "a", update_files=("corpus/gone.jsonl",)))
    assert any("suite.yaml:" in p and "corpus.update" in p and "file not found" in p for p in found), found
    no_old = [dict(QA[0], old_answers=None), *QA[1:]]
    found = problems_of(write_suite(env / "b", qa=no_old))
    assert any("qa.jsonl:1: old_answers: missing on a changed example" in p for p in found), found
    wrong_flag = [dict(QA[0], amended="yes"), *QA[1:]]
    assert any("qa.jsonl:1: amended: expected true or false" in p for p in problems_of(write_suite(env / "c",
                                                                                                qa=wrong_flag)))
    new_doc_as_old = [dict(QA[0], old_doc="bond-2024"), *QA[1:]]
    found = problems_of(write_suite(env / "d", qa=new_doc_as_old))
    assert any("tasks[0].update" in p and "no corpus document from before the update" in p for p in found), found
    unchanged = [{k: v for k, v in q.items() if k != "amended"} for q in QA]
    found = problems_of(write_suite(env / "e", qa=unchanged))
    assert any("no example has amended: true" in p for p in found), found
    no_update_files = problems_of(write_suite(env / "f", update_files=()))
    assert any("the corpus has no `update` files" in p for p in no_update_files), no_update_files
