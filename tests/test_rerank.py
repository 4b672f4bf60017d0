"""Reranking with a cross-encoder: it reorders the retriever's candidates by its own scores, is
recorded in every prediction and in the costs, keys the cache, and a bad path fails in one line.

The cross-encoder and the embedder are tiny random BERTs written to tmp (offline, a second to
build); the generator is the tiny random Llama (`tiny_lm`).
"""

import json
import re
from pathlib import Path

import numpy as np
import pytest
import yaml
from pydantic import ValidationError

from bench.arms import build_arms, suite_context
from bench.config import RagArm as RagSpec
from bench.config import Rerank, SuiteError
from bench.predictions import Prediction
from bench.retrieval import RetrievalError
from bench.retrieval.embedding import Embedder
from bench.retrieval.factory import build_retriever
from bench.retrieval.lexical import LexicalRetriever
from bench.retrieval.rerank import RerankedSearcher, Reranker, reranker_identity, reranker_problem
from bench.retrieval.retriever import Item
from bench.suites import load_suite
from bench.tables import retriever_costs

CLAUSES = ["The tenant pays the rent on the first day of each month.",
           "The landlord may raise the rent once a year with notice.",
           "The rent includes water but not power.",
           "Late rent is due within seven days of a reminder.",
           "The tenant keeps the garden tidy and the rent book safe.",
           "The bond equals four weeks of rent.",
           "The landlord repairs the roof after a storm.",
           "Pets need the landlord's consent."]
QUERY = "When is the rent paid?"
QA = [{"id": f"q{i}", "question": q, "answers": [a], "doc": d, "split": s} for i, (q, a, d, s) in enumerate([
    ("When is the rent paid?", "first day", "c0", "test"),
    ("Who repairs the roof?", "the landlord", "c6", "test"),
    ("What does the bond equal?", "four weeks", "c5", "train")])]


def write_bert(folder: Path, *, cross_encoder: bool, outputs: int = 1, seed: int = 0) -> Path:
    """A one-layer BERT (a cross-encoder with `outputs` scores, or a plain encoder) and a WordPiece
    vocabulary of the words used here, saved as a model directory."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertModel, BertTokenizerFast

    words = sorted({w for text in [*CLAUSES, *(q["question"] for q in QA), "roof storm"]
                    for w in re.findall(r"\w+", text.lower())})
    pieces = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words]
    tokenizer = BertTokenizerFast(vocab={piece: i for i, piece in enumerate(pieces)})
    config = BertConfig(vocab_size=len(pieces), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=128, num_labels=outputs, initializer_range=0.5)
    torch.manual_seed(seed)
    model = BertForSequenceClassification(config) if cross_encoder else BertModel(config)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # nothing here may download


@pytest.fixture(scope="module")
def cross_encoder(tmp_path_factory):
    return write_bert(tmp_path_factory.mktemp("cross-encoder"), cross_encoder=True)


@pytest.fixture(scope="module")
def encoder(tmp_path_factory):
    return write_bert(tmp_path_factory.mktemp("encoder"), cross_encoder=False)


def items():
    return [Item(f"c{i}", f"c{i}", text) for i, text in enumerate(CLAUSES)]


def quiet(message):
    pass


def independent_scores(path: Path, query: str, texts: list[str]) -> np.ndarray:
    """The cross-encoder's raw scores, computed apart from the code under test."""
    import torch
    from sentence_transformers import CrossEncoder

    return CrossEncoder(str(path), device="cpu").predict([(query, t) for t in texts],
                                                         activation_fn=torch.nn.Identity())


# -- the reranker over a retriever's candidates -------------------------------------------------

def test_the_cross_encoder_reorders_the_candidates_and_keeps_the_k_best(cross_encoder, tmp_path):
    bm25 = LexicalRetriever(items(), cache_dir=tmp_path, log=quiet)
    first = bm25.search([QUERY], 5)
    candidates = first.positions[0]
    assert len(candidates) == 5                                    # 'rent' is in five clauses
    scores = independent_scores(cross_encoder, QUERY, [CLAUSES[p] for p in candidates])
    best = sorted(range(5), key=lambda j: -scores[j])[:3]

    hits = RerankedSearcher(bm25, Reranker(str(cross_encoder)), candidates=5).search([QUERY], 3)
    assert hits.positions[0] == [candidates[j] for j in best]
    assert hits.positions[0] != candidates[:3]                     # the order changed
    assert hits.ranks["bm25"][0] == [j + 1 for j in best]          # where each came from
    assert hits.ranks["rerank"][0] == [1, 2, 3]
    assert hits.rerank_scores[0] == pytest.approx([float(scores[j]) for j in best], abs=1e-3)
    assert hits.scores[0] == [first.scores[0][j] for j in best]    # the retriever's own scores stay
    assert hits.rerank_tokens[0] > 5 * len(QUERY.split())          # it read every candidate with the query
    assert hits.seconds_by["rerank"][0] > 0 and hits.seconds[0] >= hits.seconds_by["rerank"][0]


def test_asked_for_more_than_its_candidates_the_rest_follow_in_the_retrievers_order(cross_encoder, tmp_path):
    bm25 = LexicalRetriever(items(), cache_dir=tmp_path, log=quiet)
    first = bm25.search([QUERY], 5).positions[0]
    hits = RerankedSearcher(bm25, Reranker(str(cross_encoder)), candidates=3).search_batch([QUERY], 5)
    assert sorted(hits.positions[0][:3]) == sorted(first[:3]) and hits.positions[0][3:] == first[3:]
    assert hits.ranks["rerank"][0][3:] == [None, None] and len(hits.rerank_scores[0]) == 3


def test_a_hybrid_records_its_fused_rank_beside_each_retrievers(cross_encoder, encoder, tmp_path):
    embedder = Embedder(str(encoder))
    hybrid = build_retriever("hybrid", items(), embedder, cache_root=tmp_path, log=quiet,
                             reranker=Reranker(str(cross_encoder)), candidates=6)
    hits = hybrid.search([QUERY], 2)
    assert hybrid.name == "hybrid+rerank" and hybrid.costs["retriever"] == "hybrid+rerank"
    assert set(hits.ranks) == {"dense", "bm25", "hybrid", "rerank"}
    assert all(1 <= r <= 6 for r in hits.ranks["hybrid"][0]) and hits.ranks["rerank"][0] == [1, 2]


# -- the arm: predictions, costs, cache key ------------------------------------------------------

def write_suite(root: Path, arms: list[dict]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "corpus.jsonl").write_text("".join(json.dumps({"id": f"c{i}", "title": "", "text": t}) + "\n"
                                               for i, t in enumerate(CLAUSES)))
    (root / "qa.jsonl").write_text("".join(json.dumps(q) + "\n" for q in QA))
    (root / "suite.yaml").write_text(yaml.safe_dump({
        "name": "rerankmini", "model": "random:tiny-llama", "seed": 0,
        "tasks": [{"name": "qa", "kind": "qa", "data": {"file": "qa.jsonl"}, "input_field": "question",
                   "target_field": "answers", "gold_doc_field": "doc", "instruction": "Answer briefly.",
                   "metrics": ["exact_match"], "max_new_tokens": 3}],
        "corpus": {"files": ["corpus.jsonl"]}, "arms": arms}, sort_keys=False))
    return root / "suite.yaml"


def rag(name, encoder, **settings):
    return {"arm": "rag", "name": name, "retriever": "bm25", "embedder": str(encoder), "k": 2, **settings}


def test_the_rag_arm_records_reranking_in_predictions_and_costs(cross_encoder, encoder, tmp_path, monkeypatch,
                                                               tiny_lm):
    monkeypatch.setenv("TRIDENT_CACHE", str(tmp_path / "cache"))
    reranked = rag("rr", encoder, rerank={"model": str(cross_encoder), "candidates": 4})
    suite = load_suite(str(write_suite(tmp_path / "s", [rag("plain", encoder), reranked])))
    task = suite.tasks["qa"]
    arms = build_arms(suite.spec.arms)
    ctx = suite_context(suite, lambda: tiny_lm, batch_size=4)
    result = arms["rr"].predict(ctx, task, task.split("test"))
    for p in result.predictions:
        row = p.to_record()
        ranks = row["retrieval_ranks"]
        assert set(ranks) == {"bm25", "rerank"} and ranks["rerank"] == [1, 2]
        assert all(1 <= r <= 4 for r in ranks["bm25"])
        assert len(row["rerank_scores"]) == 2 and row["rerank_scores"][0] >= row["rerank_scores"][1]
        loaded = Prediction.from_record(json.loads(json.dumps(row))).retrieval   # the on-disk shape loads back
        assert loaded.rerank_scores == p.retrieval.rerank_scores and loaded.ranks == p.retrieval.ranks
    costs = result.costs.to_record()
    assert costs["retriever"] == "bm25+rerank" and costs["rerank_model"] == reranker_identity(str(cross_encoder))
    assert costs["rerank_candidates"] == 4 and costs["rerank_tokens_per_query_mean"] > 0
    assert costs["rerank_tokens_total"] == pytest.approx(2 * costs["rerank_tokens_per_query_mean"], abs=1)
    assert 0 < costs["rerank_query_latency_ms_p50"] <= costs["rerank_query_latency_ms_p95"]
    assert costs["rerank_memory_bytes"] > 0 and costs["bm25_memory_bytes"] > 0
    assert costs["query_latency_ms_p50"] >= costs["rerank_query_latency_ms_p50"]   # the whole search
    cells = retriever_costs(costs)   # the report's retrieval table, beside recall
    assert cells[0] == "bm25+rerank" and cells[3].startswith("bm25 ") and " · rerank " in cells[3]
    assert " · rerank " in cells[4] and " · rerank " not in cells[1]   # no index to build for a cross-encoder

    plain = arms["plain"].predict(ctx, task, task.split("test")).predictions
    assert all("rerank_scores" not in p.to_record() for p in plain)
    assert "rerank_query_latency_ms_p50" not in arms["plain"].predict(ctx, task, task.split("test")).costs.to_record()


def test_reranker_settings_and_weights_key_the_predictions(cross_encoder, encoder, tmp_path, monkeypatch):
    monkeypatch.setenv("TRIDENT_CACHE", str(tmp_path / "cache"))
    suite = load_suite(str(write_suite(tmp_path / "s", [rag("plain", encoder)])))
    ctx = suite_context(suite, lambda: None, batch_size=4)
    task = suite.tasks["qa"]

    def key(**rerank):
        spec = suite.spec.arms[0].model_copy(update={"rerank": Rerank(**rerank) if rerank else None})
        return build_arms([spec])["plain"].cache_key(ctx, task)

    keys = [key(), key(model=str(cross_encoder)), key(model=str(cross_encoder), candidates=8),
            key(model="cross-encoder/some-hub-model")]
    assert len({json.dumps(k, sort_keys=True) for k in keys}) == len(keys)
    before = key(model=str(cross_encoder))
    (cross_encoder / "extra.json").write_text("{}")   # other files behind the same path: other weights
    try:
        assert key(model=str(cross_encoder)) != before
    finally:
        (cross_encoder / "extra.json").unlink()


# -- bad input ----------------------------------------------------------------------------------

def test_a_missing_reranker_path_fails_validation_in_one_line(encoder, tmp_path):
    missing = str(tmp_path / "no" / "such-cross-encoder")
    path = write_suite(tmp_path / "s", [rag("rr", encoder, rerank={"model": missing})])
    with pytest.raises(SuiteError) as e:
        load_suite(str(path))
    [problem] = e.value.problems
    assert problem.field == "arms[0].rerank" and problem.line is not None
    assert f"rerank.model '{missing}' does not exist" in problem.message and "\n" not in str(problem)
    with pytest.raises(RetrievalError, match="does not exist; expected a cross-encoder directory or a hub id"):
        Reranker(missing)


def test_a_directory_that_is_no_model_and_a_model_with_two_outputs_are_refused(tmp_path):
    (tmp_path / "empty").mkdir()
    assert "has no config.json" in reranker_problem(str(tmp_path / "empty"))
    assert reranker_problem("cross-encoder/ms-marco-MiniLM-L6-v2") is None   # a hub id: loaded when run
    assert reranker_identity("cross-encoder/ms-marco-MiniLM-L6-v2") == "hub:cross-encoder/ms-marco-MiniLM-L6-v2"
    two = write_bert(tmp_path / "two", cross_encoder=True, outputs=2)
    with pytest.raises(RetrievalError, match="has 2 outputs; expected one relevance score"):
        Reranker(str(two))


def test_candidates_must_cover_k():
    with pytest.raises(ValidationError, match=r"rerank.candidates \(3\) must be at least k \(4\)"):
        RagSpec(arm="rag", name="r", k=4, rerank={"model": "x/y", "candidates": 3})
    assert RagSpec(arm="rag", name="r", k=4, rerank={"model": "x/y"}).rerank.candidates == 20
