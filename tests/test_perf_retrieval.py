"""`python -m bench.perf retrieval` and `faiss-scale`, on tiny inputs.

The embedder is a randomly initialised two-layer BERT with a character vocabulary, built once
here as a sentence-transformers folder (the rag arm loads it by path, as a user's own embedder):
no real model is loaded, and dense retrieval with it is as good as chance, which is the point of
the identifier test: only BM25 (and the filter) can find the clause a question names.
"""

import json
import os
import string

import faiss
import numpy as np
import pytest
import yaml

from bench.perf.__main__ import build_parser, main
from bench.perf.generated_corpus import ASKS_BY, GOLD_FIELD, generated_leases
from bench.perf.retrieval import document_figures, gold_rank

# Six clauses of one lease template; a question shares no word with its clause but the clause
# number, whose digits every other number reuses in another order.
CLAUSES = [("K-3947", "A", "The tenant pays the bond to the board before moving in."),
           ("K-3974", "B", "The landlord repairs the roof after a storm."),
           ("K-3479", "C", "The tenant keeps the garden tidy and mows the lawn."),
           ("K-3497", "D", "The landlord gives sixty days notice of a rent increase."),
           ("K-3749", "E", "The tenant may keep a small pet with consent."),
           ("K-3794", "F", "The landlord returns the bond at the end of the lease.")]


@pytest.fixture(scope="module")
def tiny_embedder(tmp_path_factory):
    """A sentence-transformers folder: random BERT (hidden 32), WordPiece over single characters."""
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Pooling, Transformer
    from transformers import BertConfig, BertModel, BertTokenizerFast

    root = tmp_path_factory.mktemp("embedder")
    chars = string.ascii_lowercase + string.digits
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    vocab = specials + list(chars + string.punctuation) + [f"##{c}" for c in chars]
    tokenizer = BertTokenizerFast(vocab={t: i for i, t in enumerate(vocab)}, model_max_length=128)
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=128)
    BertModel(config).save_pretrained(root / "bert")
    tokenizer.save_pretrained(root / "bert")
    encoder = Transformer(str(root / "bert"), max_seq_length=128)
    SentenceTransformer(modules=[encoder, Pooling(32, "mean")]).save(str(root / "st"))
    return str(root / "st")


def write_suite(root, embedder):
    """Task `clauses` (a contract per question: filterable) and task `plain` (no contract field)."""
    docs = [{"id": f"clause-{cid}", "title": "Lease clause", "contract_id": contract, "text": f"Clause {cid}. {text}"}
            for cid, contract, text in CLAUSES]
    # each contract also holds a schedule without a clause number: a filter leaves two documents
    docs += [{"id": f"schedule-{contract}", "title": "Schedule", "contract_id": contract,
              "text": "The schedule lists the rooms and the furniture in them."} for _, contract, _ in CLAUSES]
    clauses = [{"id": f"q{i}", "question": f"Which obligations come under {cid}?", "answers": [text],
                "doc": f"clause-{cid}", "contract": contract, "split": "test"}
               for i, (cid, contract, text) in enumerate(CLAUSES)]
    plain = [{"id": f"p{i}", "question": f"What does clause {cid} say?", "answers": [text], "doc": f"clause-{cid}",
              "split": "test"} for i, (cid, _, text) in enumerate(CLAUSES[:4])]
    train = {"id": "t0", "question": "Who keeps the garden?", "answers": ["the tenant"], "doc": "clause-K-3479",
             "contract": "C", "split": "train"}  # a suite needs a train split; never searched here
    clauses.append(train)
    plain.append({k: v for k, v in train.items() if k != "contract"})
    (root / "data").mkdir(parents=True)
    (root / "corpus.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs))
    for name, rows in (("clauses", clauses), ("plain", plain)):
        (root / "data" / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))

    def task(name):
        return {"name": name, "kind": "qa", "data": {"file": f"data/{name}.jsonl"}, "input_field": "question",
                "target_field": "answers", "gold_doc_field": "doc", "instruction": "Answer briefly.",
                "metrics": ["exact_match"]}

    rag = {"arm": "rag", "embedder": embedder, "chunk_tokens": 120, "chunk_overlap": 8}
    (root / "suite.yaml").write_text(yaml.safe_dump({
        "name": "leases", "model": "random:tiny-llama", "seed": 0,
        "tasks": [task("clauses"), task("plain")], "corpus": {"files": ["corpus.jsonl"]},
        "arms": [{**rag, "name": "rag-dense"},
                 {**rag, "name": "rag-filtered", "retriever": "hybrid", "tasks": ["clauses"],
                  "filter": {"doc_field": "contract_id", "example_field": "contract"}}]}, sort_keys=False))
    return root / "suite.yaml"


def test_document_level_figures_count_a_document_at_its_best_chunk():
    assert gold_rank(["x", "x", "g", "g"], "g") == 2 and gold_rank(["x"], "g") is None
    found = [["g", "x"], ["x", "x", "g"], ["x"], ["x", "y", "z", "w", "v", "g"]]
    figures = document_figures(found, ["g"] * 4, seed=0)
    assert figures["recall_at_1"].value == pytest.approx(1 / 4)           # only the first question
    assert figures["recall_at_5"].value == pytest.approx(2 / 4)           # the 6th chunk is past 5
    assert figures["recall_at_10"].value == pytest.approx(3 / 4)
    # 1/1, 1/2 (g is the 2nd distinct document), 0, 1/6
    assert figures["mrr_at_10"].value == pytest.approx((1 + 1 / 2 + 0 + 1 / 6) / 4)
    assert figures["mrr_at_10"].low <= figures["mrr_at_10"].value <= figures["mrr_at_10"].high


def test_retrieval_table_bm25_finds_the_clause_its_number_names(tmp_path, monkeypatch, capsys, tiny_embedder):
    monkeypatch.setenv("TRIDENT_CACHE", str(tmp_path / "cache"))
    suite = write_suite(tmp_path / "suite", tiny_embedder)
    main(["retrieval", "--suite", str(suite), "--out", str(tmp_path / "out")])
    printed = capsys.readouterr().out
    result = json.loads((tmp_path / "out" / "retrieval.json").read_text())
    rows = {(r["task"], r["retriever"]): r for r in result["rows"]}
    assert list(rows) == [("clauses", c) for c in ("dense", "bm25", "hybrid", "hybrid+filter")] + [
        ("plain", c) for c in ("dense", "bm25", "hybrid")]
    # each task's rows use the first corpus-mode rag variant that runs on it
    assert result["variants"] == {"clauses": "rag-dense", "plain": "rag-dense"}
    assert result["settings"]["rag-dense"]["chunk_tokens"] == 120 and not (tmp_path / "cache").exists()
    # the one note: `plain` has no contract field to filter by
    assert len(result["notes"]) == 1 and result["notes"][0].startswith("plain: hybrid+filter skipped")
    assert "'contract' is missing" in result["notes"][0]

    bm25 = rows[("clauses", "bm25")]
    assert bm25["questions"] == 6 and bm25["documents"] == 12
    assert bm25["recall_at_1"]["value"] == 1.0 and bm25["mrr_at_10"]["value"] == 1.0
    # under the filter only the contract's clause and schedule remain, and BM25 ranks the clause
    # first, so the fusion does too whatever the (random) dense ranking says
    filtered = rows[("clauses", "hybrid+filter")]
    assert filtered["filter"] == "contract_id=contract" and filtered["recall_at_1"]["value"] == 1.0
    for r in result["rows"]:
        values = [r[f]["value"] for f in ("recall_at_1", "recall_at_5", "recall_at_10")]
        assert values == sorted(values) and all(0.0 <= v <= 1.0 for v in values)
        assert r["recall_at_1"]["value"] <= r["mrr_at_10"]["value"] <= r["recall_at_10"]["value"]
        assert r["recall_at_1"]["low"] <= r["recall_at_1"]["value"] <= r["recall_at_1"]["high"]
        assert r["index_bytes"] > 0 and r["memory_bytes"] > 0 and 0 < r["query_ms_p50"] <= r["query_ms_p95"]
        assert (r["embed_s"] is None) == (r["retriever"] == "bm25")
    assert rows[("clauses", "dense")]["index"] == "flat" and rows[("clauses", "hybrid")]["index"] == "flat+bm25"

    table = (tmp_path / "out" / "retrieval.md").read_text()
    assert table in printed
    body = [line for line in table.splitlines() if line.startswith("| clauses") or line.startswith("| plain")]
    assert len(body) == 7 and "| clauses | bm25 | 6 |" in table and "1.000 [1.00, 1.00]" in table
    assert "python -m bench.perf retrieval --suite" in table


def test_retrieval_refuses_bad_options_in_one_line_before_building(tmp_path, capsys, tiny_embedder):
    suite = str(write_suite(tmp_path / "suite", tiny_embedder))
    for options, message in ((["--retrievers", "dense,bm26"], "unknown retriever configuration 'bm26'; did you mean"),
                             (["--tasks", "clauses,nope"], "unknown task 'nope'"),
                             (["--variant", "rag-x"], "unknown rag variant 'rag-x'"),
                             (["--filter", "contract_id"], "--filter: expected DOC_FIELD=EXAMPLE_FIELD")):
        with pytest.raises(SystemExit) as exit_:
            main(["retrieval", "--suite", suite, "--out", str(tmp_path / "out"), *options])
        err = capsys.readouterr().err
        assert exit_.value.code == 2 and message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def faiss_scale(capsys, *options):
    main(["faiss-scale", "--vectors", "5000", "--dim", "32", "--queries", "100", *options])
    return json.loads(capsys.readouterr().out)


def test_faiss_scale_reports_recall_against_exact_search(capsys):
    out = faiss_scale(capsys, "--index", "ivfpq,flat")
    assert out["faiss_device"].startswith("cpu") and out["vectors"] == 5000
    ivfpq, flat = out["indexes"]["ivfpq"], out["indexes"]["flat"]
    assert flat["recall_at_10"] == 1.0                       # exact search agrees with itself
    assert 0.0 <= ivfpq["recall_at_10"] <= 1.0
    assert ivfpq["params"]["pq_bytes"] == 4 and ivfpq["bytes"] < flat["bytes"]   # 4 bytes a vector, not 128
    for figures in (ivfpq, flat):
        assert figures["device"] == "cpu" and figures["build_s"] >= 0 and figures["bytes"] > 0
        assert 0 < figures["query_ms_p50"] <= figures["query_ms_p95"] and figures["batched_queries_per_s"] > 0
        assert figures["peak_rss_bytes"] > 0 and figures["rss_growth_bytes"] is not None
    assert ivfpq["train_s"] is not None and flat["train_s"] is None


def test_faiss_scale_moves_what_faiss_gpu_has_to_the_gpu(capsys, monkeypatch):
    """faiss-gpu's functions stood in for: flat goes to the GPU, HNSW (no GPU version) stays."""
    moved = []
    monkeypatch.setattr(faiss, "get_num_gpus", lambda: 1)
    monkeypatch.setattr(faiss, "StandardGpuResources", lambda: "gpu-resources", raising=False)
    monkeypatch.setattr(faiss, "index_cpu_to_gpu", lambda res, device, index: moved.append(res) or index,
                        raising=False)
    monkeypatch.setattr(faiss, "index_gpu_to_cpu", lambda index: index, raising=False)
    monkeypatch.setattr(faiss, "knn_gpu", lambda res, xq, xb, k, metric: faiss.knn(xq, xb, k, metric))
    out = faiss_scale(capsys, "--index", "flat,hnsw")
    assert out["faiss_device"].startswith("gpu") and moved == ["gpu-resources"]
    assert out["indexes"]["flat"]["device"] == "gpu" and out["indexes"]["hnsw"]["device"] == "cpu"
    assert out["indexes"]["flat"]["recall_at_10"] == 1.0


def test_faiss_scale_refuses_bad_options_in_one_line(capsys):
    for options, message in ((["--index", "ivfqp"], "unknown index kind 'ivfqp'; did you mean 'ivfpq'?"),
                             (["--pq-bytes", "7"], "--pq-bytes 7 must be at least 1 and divide --dim 32"),
                             (["--faiss-device", "gpu"], "faiss sees no GPU")):
        with pytest.raises(SystemExit) as exit_:
            faiss_scale(capsys, *options)
        err = capsys.readouterr().err
        assert exit_.value.code == 2 and message in err and len(err.strip().splitlines()) == 1


def test_faiss_scale_docs_go_through_the_rag_arms_indexing(capsys, monkeypatch, tmp_path, tiny_embedder):
    monkeypatch.setenv("TRIDENT_CACHE", str(tmp_path / "cache"))
    out = faiss_scale(capsys, "--index", "flat", "--docs", "30", "--embedder", tiny_embedder)
    arm = out["rag_arm"]
    assert arm["documents"] == 30 and arm["chunks"] >= 30 and arm["queries"] == 100
    assert arm["index"] == "flat" and arm["embedder"].startswith("dir:")
    assert arm["recall_at_10"] == 1.0                         # the arm's flat index is exact search
    gold = arm["gold_document_in_top_10"]
    assert set(gold) == {"dense", "bm25", "hybrid"} and arm["gold_document_by_chance"] == 0.333333
    assert gold["bm25"]["reference"] == 1.0     # the reference number, kept whole, finds its lease
    assert all(set(shares) == {"all", "reference", "content"} for shares in gold.values())
    assert all(0.0 <= x <= 1.0 for shares in gold.values() for x in shares.values())
    assert set(arm["query_ms_p50_by_retriever"]) == {"dense", "bm25", "hybrid"} and arm["bm25_bytes"] > 0
    assert arm["index_bytes"] > 0 and 0 < arm["query_ms_p50"] <= arm["query_ms_p95"]
    assert not list((tmp_path / "cache").glob("**/vectors.npy"))   # built in its own empty cache, never the user's
    assert os.environ["TRIDENT_CACHE"] == str(tmp_path / "cache")  # and the user's is set back
    assert np.isfinite(arm["embedding_s"])


def test_command_line_defaults_measure_what_the_issues_ask():
    parse = build_parser().parse_args
    scale = parse(["faiss-scale"])
    assert (scale.vectors, scale.dim, scale.index, scale.queries, scale.docs) == (1_000_000, 384, ["ivfpq"], 1000, 0)
    assert scale.faiss_device == "auto" and scale.refine == 0
    table = parse(["retrieval"])
    assert (table.suite, table.retrievers, table.split, table.tasks) == (
        "legal", ["dense", "bm25", "hybrid", "hybrid+filter"], "test", None)


def test_generated_questions_ask_a_fact_of_their_lease_both_ways():
    docs, questions = generated_leases(50, 40, seed=3)
    by_id = {d.id: d for d in docs}
    assert len(docs) == 50 and len(by_id) == 50
    assert [q.meta[ASKS_BY] for q in questions[:4]] == ["reference", "content", "reference", "content"]
    for q in questions:
        lease = by_id[q.meta[GOLD_FIELD]]
        assert q.targets[0] in lease.text                       # the answer is in the gold lease
        named_by_ref = lease.id in q.input
        assert named_by_ref == (q.meta[ASKS_BY] == "reference")  # content questions never give the number
    assert generated_leases(50, 40, seed=3)[1] == questions     # seeded
