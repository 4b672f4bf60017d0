"""BM25 and hybrid retrieval, document filters and per-retriever costs.

Uses the real embedded MiniLM (a second to load) and the tiny random Llama (`tiny_lm`).
"""

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from rich.console import Console

from bench.arms import build_arms, spec_key, suite_context
from bench.config import RagArm as RagSpec
from bench.config import RetrievalFilter, SuiteError
from bench.predictions import Prediction
from bench.retrieval import RetrievalError
from bench.retrieval.embedding import Embedder
from bench.retrieval.factory import build_retriever
from bench.retrieval.hybrid import reciprocal_rank_fusion
from bench.retrieval.lexical import LexicalRetriever
from bench.retrieval.retriever import Item
from bench.retrieval.terms import terms
from bench.suites import load_suite

# Six clauses of one lease template, told apart only by their clause numbers, which differ only
# in the order of their digits. The query shares no word with any clause but the number: the
# identifier is the only signal.
CLAUSES = [("K-4821", "The tenant pays the bond to the board before moving in."),
           ("K-4812", "The landlord repairs the roof after a storm."),
           ("K-4281", "The tenant keeps the garden tidy and mows the lawn."),
           ("K-4218", "The landlord gives sixty days notice of a rent increase."),
           ("K-4128", "The tenant may keep a small pet with consent."),
           ("K-4182", "The landlord returns the bond at the end of the lease.")]
QUERY = "Which obligations come under XY?"  # XY: a clause number


def clause_items():
    return [Item(f"c{i}", f"c{i}", f"Clause {cid}. {text}") for i, (cid, text) in enumerate(CLAUSES)]


@pytest.fixture(scope="module")
def embedder():
    return Embedder("all-minilm-l6-v2")


def quiet(message):
    pass


# -- terms ----------------------------------------------------------------------------------------

def test_terms_keep_numbers_and_identifiers_whole_and_add_their_parts():
    got = terms("Pay K$4,800 under AB-1234 (s12) by 2022-07-01, the tenant's e-mail says.")
    for whole in ("k$4,800", "ab-1234", "s12", "2022-07-01"):
        assert whole in got
    assert got[got.index("ab-1234") + 1: got.index("ab-1234") + 3] == ["ab", "1234"]   # parts follow the whole
    assert "01" in got and "says" in got and "says." not in got                       # edge punctuation dropped
    assert ["tenant", "s"] == got[got.index("tenant"): got.index("tenant") + 2]        # possessives split
    assert terms("AB-1234") == terms("ab-1234") and terms("... ,") == []


# -- the identifier is the only signal ------------------------------------------------------------

def test_bm25_and_hybrid_find_the_clause_the_identifier_names_where_dense_may_not(embedder, tmp_path):
    items = clause_items()
    bm25 = build_retriever("bm25", items, embedder, cache_root=tmp_path, log=quiet)
    hybrid = build_retriever("hybrid", items, embedder, cache_root=tmp_path, log=quiet)
    dense = build_retriever("dense", items, embedder, cache_root=tmp_path, log=quiet)
    dense_top1 = 0
    for target, (clause, _) in enumerate(CLAUSES):
        query = QUERY.replace("XY", clause)
        found = bm25.search([query], 3)
        assert found.positions[0][0] == target and found.ranks["bm25"] == [[1, 2, 3][:len(found.positions[0])]]
        fused = hybrid.search([query], 3)
        assert fused.positions[0][0] == target
        assert set(fused.ranks) == {"dense", "bm25"} and fused.ranks["bm25"][0][0] == 1  # why: first by its words
        dense_rank = fused.ranks["dense"][0][0]
        assert fused.scores[0][0] == pytest.approx(1 / 61 + 1 / (60 + dense_rank), abs=1e-6)  # rrf_k 60, (1, 1)
        assert fused.seconds[0] >= max(fused.seconds_by["dense"][0], fused.seconds_by["bm25"][0])
        dense_top1 += dense.search([query], 1).positions[0] == [target]
    assert dense_top1 < len(CLAUSES)  # MiniLM alone confuses numbers that differ in digit order


def test_reciprocal_rank_fusion_sums_weighted_reciprocal_ranks():
    fused = reciprocal_rank_fusion({"dense": [7, 8, 9], "bm25": [9, 5]}, {"dense": 1.0, "bm25": 2.0}, 10)
    scores = dict(fused)
    assert scores[9] == pytest.approx(1 / 13 + 2 / 11) and scores[5] == pytest.approx(2 / 12)
    assert [p for p, _ in fused] == [9, 5, 7, 8]   # 2/12 > 1/11 > 1/12
    tie = reciprocal_rank_fusion({"dense": [1, 2], "bm25": [2, 1]}, {"dense": 1.0, "bm25": 1.0}, 60)
    assert [p for p, _ in tie] == [1, 2]           # equal sums: the lower position, deterministically


# -- the lexical index's cache --------------------------------------------------------------------

def test_a_cache_hit_skips_reindexing_and_a_changed_document_invalidates_it(tmp_path, monkeypatch):
    import bm25s

    first = LexicalRetriever(clause_items(), cache_dir=tmp_path, log=quiet)
    assert first.indexes["bm25"].cached is False and first.indexes["bm25"].bytes > 0

    def refuse(*a, **k):
        raise AssertionError("re-indexed on a cache hit")

    with monkeypatch.context() as m:
        m.setattr(bm25s.BM25, "index", refuse)
        second = LexicalRetriever(clause_items(), cache_dir=tmp_path, log=quiet)
    assert second.indexes["bm25"].cached is True and second.costs["bm25_key"] == first.costs["bm25_key"]
    query = ["the roof after a storm"]
    assert second.search(query, 2).positions == first.search(query, 2).positions
    assert second.search(query, 2).scores == first.search(query, 2).scores

    changed = clause_items()
    changed[1] = Item("c1", "c1", "Clause CD-5678. The landlord fixes a burst pipe within a day.")
    third = LexicalRetriever(changed, cache_dir=tmp_path, log=quiet)
    assert third.indexes["bm25"].cached is False and third.costs["bm25_key"] != first.costs["bm25_key"]
    assert third.search(["burst pipe"], 1).positions == [[1]]   # the new text is what is searched
    assert first.search(["burst pipe"], 1).positions == [[]]


# -- the arm: settings, traces, costs, filters ----------------------------------------------------

CONTRACT_DOCS = [
    {"id": "a-rent", "title": "Rent", "contract_id": "A", "text": "Rent of K$4,800 is due on the first of the month."},
    {"id": "a-pets", "title": "Pets", "contract_id": "A", "text": "No pets may be kept at the premises."},
    {"id": "b-rent", "title": "Rent", "contract_id": "B", "text": "Rent of K$5,100 is due on the fifth of the month."},
    {"id": "b-pets", "title": "Pets", "contract_id": "B", "text": "One cat may be kept with written consent."},
    {"id": "general", "title": "About", "text": "These leases follow the residential tenancies act."},
]
CONTRACT_QA = [
    {"id": "qa", "question": "When is the rent due?", "answers": ["the first"], "contract": "A", "doc": "a-rent",
     "split": "test"},
    {"id": "qb", "question": "When is the rent due?", "answers": ["the fifth"], "contract": "B", "doc": "b-rent",
     "split": "test"},
    {"id": "qt", "question": "Can I keep a cat?", "answers": ["with consent"], "contract": "B", "doc": "b-pets",
     "split": "train"},
    {"id": "qt2", "question": "How much is the rent?", "answers": ["K$4,800"], "contract": "A", "doc": "a-rent",
     "split": "train"},
]


def contract_suite(root: Path, arms, qa=CONTRACT_QA, docs=CONTRACT_DOCS) -> Path:
    (root / "data").mkdir(parents=True, exist_ok=True)
    (root / "corpus.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs))
    (root / "data" / "qa.jsonl").write_text("".join(json.dumps(q) + "\n" for q in qa))
    (root / "suite.yaml").write_text(yaml.safe_dump({
        "name": "contracts", "model": "random:tiny-llama", "seed": 0,
        "tasks": [{"name": "qa", "kind": "qa", "data": {"file": "data/qa.jsonl"}, "input_field": "question",
                   "target_field": "answers", "gold_doc_field": "doc", "instruction": "Answer briefly.",
                   "metrics": ["exact_match"], "max_new_tokens": 2}],
        "corpus": {"files": ["corpus.jsonl"]}, "arms": arms}, sort_keys=False))
    return root / "suite.yaml"


FILTER = {"doc_field": "contract_id", "example_field": "contract"}


def rag(name, **settings):
    return {"arm": "rag", "name": name, "k": 4, **settings}


def ctx_for(suite, lm):
    return suite_context(suite, lambda: lm, batch_size=4, log=quiet)


def test_corpus_documents_carry_their_other_columns_as_metadata(tmp_path):
    suite = load_suite(str(contract_suite(tmp_path, [rag("dense")])))
    by_id = {d.id: d for d in suite.corpus}
    assert by_id["b-pets"].meta == {"contract_id": "B"} and by_id["general"].meta == {}


@pytest.mark.parametrize("retriever", ["dense", "bm25", "hybrid"])
def test_a_filter_keeps_each_query_to_its_own_contracts_documents(tmp_path, monkeypatch, tiny_lm, retriever):
    monkeypatch.setenv("TRIDENT_CACHE", str(tmp_path / "cache"))
    suite = load_suite(str(contract_suite(tmp_path, [rag("filtered", retriever=retriever, filter=FILTER),
                                                     rag("open", retriever=retriever)])))
    task = suite.tasks["qa"]
    ctx = ctx_for(suite, tiny_lm)
    arms = build_arms(suite.spec.arms)
    filtered = arms["filtered"].predict(ctx, task, task.split("test"))
    for p in filtered.predictions:
        contract = "a-" if p.id == "qa" else "b-"
        assert p.retrieval.documents and all(d.startswith(contract) for d in p.retrieval.documents)
    # without the filter the same questions reach the other contract's clauses (k=4 of 5 documents)
    unfiltered = arms["open"].predict(ctx, task, task.split("test"))
    assert any(not d.startswith("a-") for d in unfiltered.predictions[0].retrieval.documents)


def test_a_filter_also_holds_for_the_passages_of_retrieval_aware_training(tmp_path, monkeypatch, tiny_lm):
    monkeypatch.setenv("TRIDENT_CACHE", str(tmp_path / "cache"))
    arms = [rag("filtered", retriever="hybrid", filter=FILTER, k=2), rag("open", retriever="hybrid", k=2)]
    suite = load_suite(str(contract_suite(tmp_path, arms)))
    task, ctx = suite.tasks["qa"], ctx_for(suite, tiny_lm)
    built = build_arms(suite.spec.arms)
    filtered = built["filtered"].training_contexts(ctx, task, task.split("train"))
    assert "cat may be kept" in filtered["qt"] and "No pets" not in filtered["qt"]  # contract B's only
    assert "No pets" in built["open"].training_contexts(ctx, task, task.split("train"))["qt"]


def test_an_example_without_the_filter_field_fails_with_one_line(tmp_path, monkeypatch, tiny_lm):
    monkeypatch.setenv("TRIDENT_CACHE", str(tmp_path / "cache"))
    qa = [dict(q) for q in CONTRACT_QA]
    del qa[1]["contract"]
    path = contract_suite(tmp_path, [rag("filtered", retriever="bm25", filter=FILTER)], qa=qa)
    with pytest.raises(SuiteError) as caught:                  # bench validate says it first, located
        load_suite(str(path))
    assert "arms[0].filter" in str(caught.value) and "'contract' is missing from example 'qb'" in str(caught.value)
    # at run time (a suite checked before the data changed, or an arm built in code): one line, same words
    suite = load_suite(str(contract_suite(tmp_path / "ok", [rag("filtered", retriever="bm25", filter=FILTER)])))
    task = suite.tasks["qa"]
    bad = [dataclasses.replace(e, meta={k: v for k, v in e.meta.items() if k != "contract"}) if e.id == "qb" else e
           for e in task.split("test")]
    with pytest.raises(RetrievalError) as caught:
        build_arms(suite.spec.arms)["filtered"].predict(ctx_for(suite, tiny_lm), task, bad)
    message = str(caught.value)
    assert "\n" not in message
    assert message == ("rag variant 'filtered', task 'qa': filter.example_field 'contract' is missing from "
                       "example 'qb'")


def test_a_corpus_without_the_filter_metadata_or_an_unknown_value_fails_with_one_line(tmp_path):
    path = contract_suite(tmp_path, [rag("filtered", filter={"doc_field": "lease", "example_field": "contract"})])
    with pytest.raises(SuiteError, match=r"filter.doc_field 'lease' is in no corpus document's metadata "
                                         r"\(their metadata fields: contract_id\)"):
        load_suite(str(path))
    qa = [dict(q) for q in CONTRACT_QA]
    qa[0]["contract"] = "Z"
    with pytest.raises(SuiteError, match="example 'qa' has contract 'Z', which no corpus document's 'contract_id'"):
        load_suite(str(contract_suite(tmp_path / "z", [rag("filtered", filter=FILTER)], qa=qa)))


def test_settings_that_do_nothing_are_refused():
    with pytest.raises(ValueError, match="rrf_k applies to retriever: hybrid only"):
        RagSpec(arm="rag", name="r", retriever="bm25", rrf_k=10)
    with pytest.raises(ValueError, match="filter restricts corpus documents; it needs mode: corpus"):
        RagSpec(arm="rag", name="r", mode="examples", filter=FILTER)
    with pytest.raises(ValueError, match="greater than 0"):
        RagSpec(arm="rag", name="r", retriever="hybrid", hybrid_weights=(1, 0))


def test_retrieval_settings_key_the_predictions_and_a_retrieval_aware_fine_tune(tmp_path, monkeypatch, tiny_lm):
    monkeypatch.setenv("TRIDENT_CACHE", str(tmp_path / "cache"))
    base = RagSpec(arm="rag", name="r")
    variants = [{"retriever": "bm25"}, {"retriever": "hybrid"}, {"retriever": "hybrid", "rrf_k": 10},
                {"retriever": "hybrid", "hybrid_weights": (1.0, 2.0)}, {"filter": FILTER}]
    keys = [spec_key(base)] + [spec_key(RagSpec(arm="rag", name="r", **v)) for v in variants]
    assert len({json.dumps(k, sort_keys=True) for k in keys}) == len(keys)
    arms = [rag("r", retriever="bm25", k=1),
            {"arm": "finetune", "name": "ft", "rank": 4, "epochs": 1, "retrieval_from": "r", "max_length": 128}]
    suite = load_suite(str(contract_suite(tmp_path, arms)))
    ctx, task = ctx_for(suite, tiny_lm), suite.tasks["qa"]

    def key(**rag_settings):
        built = build_arms([suite.spec.arms[0].model_copy(update=rag_settings), suite.spec.arms[1]])
        return built["ft"].artifact_key(ctx, tiny_lm, task)

    keys = [key(), key(retriever="dense"), key(retriever="hybrid"), key(retriever="hybrid", rrf_k=10),
            key(filter=RetrievalFilter(**FILTER))]
    assert len(set(keys)) == len(keys) and key() == keys[0]


def test_a_hybrid_run_records_ranks_and_costs_per_retriever_and_loads_them_back(tmp_path, monkeypatch):
    from bench.results import load_run
    from bench.runner import RunOptions, run_suite
    from bench.tables import retrieval_table

    monkeypatch.setenv("TRIDENT_CACHE", str(tmp_path / "cache"))
    path = contract_suite(tmp_path / "s", [rag("hybrid", retriever="hybrid", filter=FILTER, k=2)])
    run_dir = run_suite(str(path), RunOptions(results=tmp_path / "results", dtype="float32"), Console(quiet=True))
    rows = [json.loads(line) for line in (run_dir / "predictions" / "hybrid" / "qa.jsonl").read_text().splitlines()]
    for row in rows:
        ranks = row["retrieval_ranks"]
        assert set(ranks) == {"dense", "bm25"} and all(len(r) == len(row["retrieved"]) for r in ranks.values())
        assert all(r is None or r >= 1 for r in ranks["dense"] + ranks["bm25"])
        assert Prediction.from_record(row).retrieval.ranks == {k: tuple(v) for k, v in ranks.items()}
    loaded = load_run(run_dir).predictions("hybrid", "qa")  # what the report reads
    assert [p.prediction.retrieval.ranks["bm25"] for p in loaded] == [tuple(r["retrieval_ranks"]["bm25"])
                                                                      for r in rows]
    costs = json.loads((run_dir / "run.json").read_text())["cells"][0]["costs"]
    assert costs["retriever"] == "hybrid"
    for name in ("dense", "bm25"):
        assert costs[f"{name}_index_bytes"] > 0 and costs[f"{name}_index_cached"] is False
        assert costs[f"{name}_index_build_s"] >= 0
        assert 0 < costs[f"{name}_query_latency_ms_p50"] <= costs[f"{name}_query_latency_ms_p95"]
    assert costs["query_latency_ms_p50"] >= costs["dense_query_latency_ms_p50"]   # the whole search
    assert "index_bytes" not in costs and "bm25_key" not in costs                 # each said once
    scores = json.loads((run_dir / "scores.json").read_text())
    assert scores["tasks"]["qa"]["arms"]["hybrid"]["retrieval"]["mrr"]["value"] > 0
    run = load_run(run_dir)
    table = retrieval_table(run.tasks["qa"], {"hybrid": run.costs("hybrid", "qa")})  # the report's, beside recall
    assert table.header == ["arm variant", "recall@1", "recall@2", "mrr", "retriever", "index build s", "index KiB",
                            "memory KiB", "query ms p50", "query ms p95"]
    cells = table.rows[0].cells
    assert cells[4] == "hybrid" and all(c.startswith("dense ") and " · bm25 " in c for c in cells[5:])


def test_old_prediction_records_without_ranks_still_load():
    row = {"id": "q", "prompt_hash": "h", "output": "x", "references": ["x"], "mode": "generate", "latency_s": 0.1,
           "prompt_tokens": 3, "output_tokens": 1, "retrieved": ["d"], "retrieved_chunks": ["d#0"],
           "retrieval_scores": [0.5], "retrieval_latency_s": 0.01}
    trace = Prediction.from_record(row).retrieval
    assert trace.ranks == {} and "retrieval_ranks" not in trace.to_record()


def test_dense_search_under_a_filter_is_exact_over_the_allowed_items(embedder, tmp_path):
    dense = build_retriever("dense", clause_items(), embedder, cache_root=tmp_path, log=quiet)
    query = ["Who repairs the roof after a storm?"]
    everything = dense.search(query, 6)
    allowed = [np.array([0, 2, 4])]
    kept = dense.search(query, 2, allowed=allowed)
    assert set(kept.positions[0]) <= {0, 2, 4} and len(kept.positions[0]) == 2
    assert kept.positions[0] == [p for p in everything.positions[0] if p in (0, 2, 4)][:2]  # same order as unfiltered
    assert dense.search_batch(query, 2, allowed=allowed).positions == kept.positions


def test_a_query_bm25_finds_nothing_for_counts_as_a_retrieval_miss(tmp_path):
    from bench.predictions import RetrievalTrace
    from bench.scoring import retrieval_scores

    task = load_suite(str(contract_suite(tmp_path, [rag("bm25", retriever="bm25")]))).tasks["qa"]

    def prediction(example_id, documents):
        return Prediction(example_id, "h", "", ("x",), "generate", 0.1, 3, 0, retrieval=RetrievalTrace(documents))

    scores = retrieval_scores(task, [prediction("qa", ("a-rent",)), prediction("qb", ())], seed=0)
    assert scores["recall@1"]["value"] == 0.5 and scores["mrr"]["value"] == 0.5  # dicts, as scores.json holds them
