"""The retrieval arm: chunking, the embedding/index cache, both modes, the combined arm, bad input.

Uses the real embedded MiniLM (22M parameters, a second to load) and the tiny random Llama.
"""

import json
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

from bench.arms import build_arms, suite_context
from bench.arms.rag import RagArm
from bench.config import RagArm as RagSpec
from bench.data import Document
from bench.retrieval import RetrievalError
from bench.retrieval import index as ix
from bench.retrieval.chunking import check_documents, chunk_documents
from bench.retrieval.embedding import Embedder
from bench.retrieval.retriever import Item, Retriever
from bench.runner import RunOptions, run_suite
from bench.suites import load_suite

DOCS = [
    {"id": "bonds", "title": "Bonds",
     "text": "A bond must be lodged with the Rental Bond Board within ten business days."},
    {"id": "pets", "title": "Pets",
     "text": "A landlord may not refuse consent to keep a cat or a small dog without a reason."},
    {"id": "repairs", "title": "Urgent repairs",
     "text": "Urgent repairs such as a burst water pipe must be done within 24 hours."},
    {"id": "rent", "title": "Rent increases",
     "text": "Rent may be increased only once in any twelve month period, with 60 days notice."},
]
QA = [
    {"id": "q1", "question": "Within how many days must a bond be lodged with the board?",
     "answers": ["ten business days"], "doc": "bonds", "split": "test"},
    {"id": "q2", "question": "How often can the rent go up?",
     "answers": ["once in twelve months"], "doc": "rent", "split": "test"},
    {"id": "q3", "question": "How quickly must a burst pipe be repaired?",
     "answers": ["24 hours"], "doc": "repairs", "split": "train"},
    {"id": "q4", "question": "Can a landlord refuse a cat?", "answers": ["no"], "doc": "pets", "split": "train"},
]
TOPICS = [
    ("t1", "The cat sat on the warm windowsill and purred.", "animals"),
    ("t2", "My dog barks at every passing cyclist.", "animals"),
    ("t3", "The stock market fell three percent on Monday.", "finance"),
    ("t4", "Interest rates were raised by the central bank.", "finance"),
    ("t5", "A kitten chased the ball of yarn under the sofa.", "animals"),
    ("t6", "Bond yields climbed after the inflation report.", "finance"),
]


def write_suite(root: Path, docs=DOCS, arms=None) -> Path:
    (root / "data").mkdir(parents=True, exist_ok=True)
    (root / "corpus.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs))
    (root / "data" / "qa.jsonl").write_text("".join(json.dumps(q) + "\n" for q in QA))
    (root / "data" / "topic.jsonl").write_text("".join(
        json.dumps({"id": i, "text": t, "label": l, "split": "test" if i in ("t5", "t6") else "train"}) + "\n"
        for i, t, l in TOPICS))
    arms = arms or [{"arm": "prompt", "name": "zero-shot"},
                    {"arm": "rag", "name": "rag-k2", "k": 2, "chunk_tokens": 32, "chunk_overlap": 4, "tasks": ["qa"]},
                    {"arm": "rag", "name": "rag-ex", "mode": "examples", "k": 2, "tasks": ["topic"]}]
    import yaml

    (root / "suite.yaml").write_text(yaml.safe_dump({
        "name": "ragmini", "model": "random:tiny-llama", "seed": 0,
        "tasks": [{"name": "qa", "kind": "qa", "data": {"file": "data/qa.jsonl"}, "input_field": "question",
                   "target_field": "answers", "gold_doc_field": "doc", "instruction": "Answer briefly.",
                   "metrics": ["exact_match"], "max_new_tokens": 3},
                  {"name": "topic", "kind": "classification", "data": {"file": "data/topic.jsonl"},
                   "input_field": "text", "target_field": "label", "labels": ["animals", "finance"],
                   "instruction": "What is the text about?", "metrics": ["accuracy"]}],
        "corpus": {"files": ["corpus.jsonl"]}, "arms": arms}, sort_keys=False))
    return root / "suite.yaml"


@pytest.fixture(scope="module")
def embedder():
    return Embedder("all-minilm-l6-v2")


@pytest.fixture()
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TRIDENT_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def ctx_for(suite, lm, logs=None):
    return suite_context(suite, lambda: lm, batch_size=4, log=(logs.append if logs is not None else (lambda m: None)))


def records(result):
    """An ArmResult's predictions as the flat records the run's prediction files hold."""
    return [p.to_record() for p in result.predictions]


def docs(rows=DOCS):
    return [Document(d["id"], d["title"], d["text"]) for d in rows]


# -- chunking ---------------------------------------------------------------------------------------

def test_chunks_overlap_cover_the_text_and_have_stable_ids(embedder):
    text = " ".join(f"word{i}" for i in range(300))
    doc = [Document("d1", "Title", text)]
    a = chunk_documents(doc, embedder.tokenizer, 40, 8)
    b = chunk_documents(doc, embedder.tokenizer, 40, 8)
    assert [c.id for c in a] == [c.id for c in b] == [f"d1#{i}" for i in range(len(a))]
    assert len(a) > 3 and all(c.n_tokens <= 40 for c in a)
    assert all(c.text in text for c in a)                       # exact spans of the document
    assert "word0" in a[0].text and "word299" in a[-1].text     # nothing lost at either end
    assert a[0].text.split()[-1] in a[1].text                   # consecutive chunks overlap


@pytest.mark.parametrize("bad, message", [
    ([], "corpus is empty"),
    ([Document("a", "", "text"), Document("a", "", "more")], "duplicate document id 'a'"),
    ([Document("a", "", "   ")], "document 'a' has no text"),
])
def test_bad_corpora_fail_with_one_line(bad, message):
    with pytest.raises(RetrievalError, match=message) as e:
        check_documents(bad)
    assert "\n" not in str(e.value)


def test_overlap_not_smaller_than_size_is_refused(embedder):
    with pytest.raises(RetrievalError, match="chunk_overlap"):
        chunk_documents(docs(), embedder.tokenizer, 32, 32)


# -- embedding cache and index --------------------------------------------------------------------

def items_of(rows=DOCS):
    return [Item(d["id"], d["id"], d["title"] + "\n" + d["text"]) for d in rows]


def test_cache_hit_skips_embedding_and_a_changed_document_invalidates_it(embedder, tmp_path, monkeypatch):
    first = Retriever(items_of(), embedder, cache_dir=tmp_path, log=lambda m: None)
    assert first.costs["embedding_cached"] is False and first.costs["index_cached"] is False

    def refuse(*a, **k):
        raise AssertionError("re-embedded on a cache hit")

    with monkeypatch.context() as m:
        m.setattr(Embedder, "encode", refuse)
        second = Retriever(items_of(), embedder, cache_dir=tmp_path, log=lambda m: None)
    assert second.costs["embedding_cached"] is True and second.costs["index_cached"] is True
    np.testing.assert_array_equal(first.vectors, second.vectors)

    changed = [dict(d) for d in DOCS]
    changed[2]["text"] = "Urgent repairs must be done within 48 hours."
    third = Retriever(items_of(changed), embedder, cache_dir=tmp_path, log=lambda m: None)
    assert third.costs["embedding_cached"] is False
    assert third.costs["embeddings_key"] != first.costs["embeddings_key"]


def test_an_index_of_another_embedder_or_dimension_is_rebuilt_never_mixed(tmp_path):
    vecs = np.eye(4, 8, dtype=np.float32)
    built = ix.build(vecs, "flat")
    path = tmp_path / "index-flat.faiss"
    ix.save(built.index, path, {"embedder": "other@1", "dim": 8, "kind": "flat", "n": 4, "vectors": "k"})
    index, reason = ix.load(path, {"embedder": "mine@1", "dim": 8, "kind": "flat", "n": 4, "vectors": "k"})
    assert index is None and "embedder='other@1'" in reason and "rebuilding" in reason
    index, reason = ix.load(path, {"embedder": "other@1", "dim": 16, "kind": "flat", "n": 4, "vectors": "k"})
    assert index is None and "dim=8" in reason
    index, reason = ix.load(path, {"embedder": "other@1", "dim": 8, "kind": "flat", "n": 4, "vectors": "k"})
    assert index is not None and reason is None


@pytest.mark.parametrize("kind", ["hnsw", "ivf"])
def test_approximate_indexes_report_recall_against_exact_search(kind):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2000, 32)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    built = ix.build(x, kind)
    recall = ix.approx_recall(built.index, x, x[:50], 10)
    assert 0.3 < recall <= 1.0
    assert ix.approx_recall(ix.build(x, "flat").index, x, x[:50], 10) == 1.0


def test_auto_picks_exact_search_for_small_corpora_and_says_when_memory_is_short():
    assert ix.choose_kind(10_000) == "flat"
    assert ix.choose_kind(500_000) == "hnsw" and ix.choose_kind(5_000_000) == "ivf"
    with pytest.raises(RetrievalError, match="GiB is available; use `index: ivf`"):
        ix.check_memory(10_000_000, 384, "flat", available=8 * 2**30)



def test_the_index_searches_on_a_gpu_when_faiss_gpu_sees_one(embedder, tmp_path, monkeypatch):
    """faiss-gpu's functions stood in for (this machine has faiss-cpu): auto copies a flat index to
    GPU 0 after caching the CPU one, keeps HNSW (no GPU version) and `cpu` on the CPU, and `gpu`
    that cannot be kept fails before anything is embedded."""
    import faiss

    moved = []
    monkeypatch.setattr(ix, "_GPU_RESOURCES", [])
    monkeypatch.setattr(faiss, "get_num_gpus", lambda: 1, raising=False)
    monkeypatch.setattr(faiss, "StandardGpuResources", lambda: "gpu-resources", raising=False)
    monkeypatch.setattr(faiss, "index_cpu_to_gpu", lambda res, dev, index: moved.append((res, dev)) or index,
                        raising=False)
    flat = Retriever(items_of(), embedder, cache_dir=tmp_path, log=lambda m: None)
    assert flat.costs["index_device"] == "gpu" and moved == [("gpu-resources", 0)]
    assert (tmp_path / flat.costs["embeddings_key"] / "index-flat.faiss").is_file()   # the CPU index cached
    assert flat.search(["How long is the notice period?"], 1).positions[0]
    for kind, device in (("hnsw", "auto"), ("flat", "cpu")):
        kept = Retriever(items_of(), embedder, kind=kind, cache_dir=tmp_path, log=lambda m: None, index_device=device)
        assert kept.costs["index_device"] == "cpu"
    assert len(moved) == 1
    with pytest.raises(RetrievalError, match="a hnsw index has no GPU version"):
        Retriever(items_of(), embedder, kind="hnsw", cache_dir=tmp_path, index_device="gpu")
    monkeypatch.setattr(faiss, "get_num_gpus", lambda: 0)

    def refuse(*a, **k):
        raise AssertionError("embedded before refusing")

    monkeypatch.setattr(Embedder, "encode", refuse)
    with pytest.raises(RetrievalError, match="faiss sees no GPU; install faiss-gpu"):
        Retriever(items_of(), embedder, cache_dir=tmp_path / "other", index_device="gpu")
    with pytest.raises(ValueError, match="faiss has no GPU version of hnsw"):
        RagSpec(arm="rag", name="r", index="hnsw", index_device="gpu")
    with pytest.raises(ValueError, match="this variant is retriever: bm25"):
        RagSpec(arm="rag", name="r", retriever="bm25", index_device="cpu")


# -- the arm --------------------------------------------------------------------------------------

def test_top1_finds_the_answer_document_and_the_prompt_contains_it(tmp_path, cache, tiny_lm, monkeypatch):
    suite = load_suite(str(write_suite(tmp_path / "s")))
    task = suite.tasks["qa"]
    arm = RagArm(next(a for a in suite.spec.arms if a.name == "rag-k2"))
    seen = {}
    import bench.backends as backends  # the hf engine, which every arm's answers go through

    real = backends.generate

    def spy(model, tok, prompts, **kw):
        seen["prompts"] = prompts
        return real(model, tok, prompts, **kw)

    monkeypatch.setattr(backends, "generate", spy)
    result = arm.predict(ctx_for(suite, tiny_lm), task, task.split("test"))
    rows = records(result)
    for row, prompt, ex in zip(rows, seen["prompts"], task.split("test")):
        gold = ex.meta["doc"]
        assert row["retrieved"][0] == gold and row["retrieved_chunks"][0] == f"{gold}#0"
        assert len(row["retrieval_scores"]) == 2 and row["retrieval_scores"][0] >= row["retrieval_scores"][1]
        assert next(d["text"] for d in DOCS if d["id"] == gold) in prompt
        assert row["context_tokens"] > 0 and row["context_tokens"] <= row["context_budget"]
    costs = result.costs.to_record()
    for key in ("embedding_s", "dense_index_build_s", "dense_index_bytes", "query_latency_ms_p50",
                "query_latency_ms_p95", "dense_query_latency_ms_p50", "prompt_tokens_added_mean"):
        assert key in costs


def test_context_is_cut_to_the_token_budget(tmp_path, cache, tiny_lm):
    suite = load_suite(str(write_suite(tmp_path / "s")))
    task = suite.tasks["qa"]
    spec = RagSpec(arm="rag", name="tight", k=4, max_context_tokens=60)
    rows = records(RagArm(spec).predict(ctx_for(suite, tiny_lm), task, task.split("test")))
    assert all(r["context_tokens"] <= 60 and r["context_truncated"] for r in rows)
    assert all(len(r["retrieved"]) == 4 for r in rows)  # recall@k still sees all k retrieved


def test_examples_mode_uses_the_nearest_labelled_examples(tmp_path, cache, tiny_lm):
    suite = load_suite(str(write_suite(tmp_path / "s")))
    task = suite.tasks["topic"]
    arm = RagArm(next(a for a in suite.spec.arms if a.name == "rag-ex"))
    rows = records(arm.predict(ctx_for(suite, tiny_lm), task, task.split("test")))
    by_id = {r["id"]: r for r in rows}
    assert set(by_id["t5"]["retrieved_examples"]) == {"t1", "t2"}  # the kitten: the two animal examples
    assert set(by_id["t6"]["retrieved_examples"]) == {"t3", "t4"}  # bond yields: the two finance ones
    assert all(r["output"] in ("animals", "finance") and r["items_in_prompt"] == 2 for r in rows)


def test_rag_on_a_finetune_variant_shares_that_variants_trained_model(tmp_path, cache, tiny_lm, monkeypatch):
    """Composition: the retrieval variant is handed the fine-tune variant's own arm object, so
    one trained model is loaded once and serves both cells, and its costs travel with it."""
    import bench.training.artifacts as artifacts

    arms = [{"arm": "finetune", "name": "lora-r4", "rank": 4, "epochs": 1, "tasks": ["qa"]},
            {"arm": "rag", "name": "rag+lora", "k": 1, "finetuned": "lora-r4", "tasks": ["qa"]}]
    suite = load_suite(str(write_suite(tmp_path / "s", arms=arms)))
    built = build_arms(suite.spec.arms)
    assert built["rag+lora"].provider is built["lora-r4"]
    loads = []
    real_load = artifacts.load_trained
    monkeypatch.setattr(artifacts, "load_trained", lambda *a, **k: loads.append(1) or real_load(*a, **k))
    ctx, task = ctx_for(suite, tiny_lm), suite.tasks["qa"]
    built["lora-r4"].predict(ctx, task, task.split("test"))
    result = built["rag+lora"].predict(ctx, task, task.split("test"))
    assert loads == [1]                                          # one trained model in memory
    assert built["rag+lora"].model(ctx, task) is built["lora-r4"].trained_model(ctx, task)
    rows, costs = records(result), result.costs.to_record()
    assert len(rows) == 2 and rows[0]["retrieved"]
    assert costs["builds_on"] == "lora-r4" and costs["train_wall_s"] > 0   # carries the training it needs


def test_finetuned_must_name_a_finetune_variant(tmp_path, cache, tiny_lm):
    """Caught when the suite is loaded (bench validate), and by build_arms for specs made in code."""
    from bench.config import FinetuneArm, PromptArm, SuiteError
    from bench.errors import ConfigError

    arms = [{"arm": "prompt", "name": "zero-shot"}, {"arm": "rag", "name": "bad", "finetuned": "zero-shot"}]
    message = "'zero-shot' is a prompt variant; expected a finetune variant"
    with pytest.raises(SuiteError, match=message):
        load_suite(str(write_suite(tmp_path / "s", arms=arms)))
    specs = [PromptArm(arm="prompt", name="zero-shot"), RagSpec(arm="rag", name="bad", finetuned="zero-shot")]
    with pytest.raises(ConfigError, match=message):
        build_arms(specs)
    with pytest.raises(ConfigError, match="unknown arm variant 'lora'"):
        build_arms([FinetuneArm(arm="finetune", name="lora-r4"), RagSpec(arm="rag", name="r", finetuned="lora")])


def test_corpus_mode_without_a_corpus_says_what_to_do(tmp_path, cache, tiny_lm):
    suite = load_suite(str(write_suite(tmp_path / "s")))
    suite.corpus = []
    with pytest.raises(RetrievalError, match="needs a corpus.*mode: examples"):
        RagArm(RagSpec(arm="rag", name="r")).predict(ctx_for(suite, tiny_lm), suite.tasks["qa"],
                                                     suite.tasks["qa"].split("test"))


def test_run_stores_retrieval_fields_recall_and_costs(tmp_path, cache):
    path = write_suite(tmp_path / "s")
    run_dir = run_suite(str(path), RunOptions(results=tmp_path / "results", dtype="float32"), Console(quiet=True))
    scores = json.loads((run_dir / "scores.json").read_text())
    rag = scores["tasks"]["qa"]["arms"]["rag-k2"]
    assert rag["retrieval"]["recall@1"]["value"] == 1.0 and "recall@2" in rag["retrieval"]
    rows = [json.loads(l) for l in (run_dir / "predictions" / "rag-k2" / "qa.jsonl").read_text().splitlines()]
    assert all({"retrieved", "retrieved_chunks", "retrieval_scores"} <= set(r) for r in rows)
    cells = json.loads((run_dir / "run.json").read_text())["cells"]
    cell = next(c for c in cells if c["arm"] == "rag-k2")
    assert cell["costs"]["index"] == "flat" and cell["costs"]["items"] >= 4


# -- corpus folders -------------------------------------------------------------------------------

def test_a_folder_of_text_and_markdown_files_is_a_corpus(tmp_path):
    path = write_suite(tmp_path / "s")
    folder = tmp_path / "s" / "docs"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.md").write_text("# Bonds\nA bond must be lodged within ten days.\n")
    (folder / "sub" / "b.txt").write_text("Pets are allowed with consent.\n")
    (folder / "skip.bin").write_bytes(b"\x00")
    text = path.read_text().replace("files:\n  - corpus.jsonl", "folder: docs")
    path.write_text(text.replace("  gold_doc_field: doc\n", ""))  # the qa gold ids name corpus.jsonl's documents
    suite = load_suite(str(path))
    assert [(d.id, d.title) for d in suite.corpus] == [("a.md", "Bonds"), ("sub/b.txt", "b")]


def test_an_empty_corpus_folder_is_a_located_problem(tmp_path):
    from bench.config import SuiteError

    path = write_suite(tmp_path / "s")
    (tmp_path / "s" / "docs").mkdir()
    path.write_text(path.read_text().replace("files:\n  - corpus.jsonl", "folder: docs"))
    with pytest.raises(SuiteError, match="corpus.folder: no .txt or .md files"):
        load_suite(str(path))


def test_batched_search_agrees_with_one_query_at_a_time(embedder, tmp_path):
    r = Retriever(items_of(), embedder, cache_dir=tmp_path, log=lambda m: None)
    qs = [q["question"] for q in QA]
    one, many = r.search(qs, 2), r.search_batch(qs, 2, batch_size=3)
    assert one.positions == many.positions


# -- retrieval on a fine-tune, through the runner -----------------------------------------------------

def test_the_finetune_cell_trains_even_when_declared_after_the_variant_built_on_it(tmp_path, cache, monkeypatch):
    """The runner runs a fine-tune before the retrieval variant that builds on it, so its training
    is timed in its own cell; the retrieval cell carries that training as a cost, and the report
    keeps the declared order."""
    import bench.arms.finetune as ft
    import bench.arms.rag as rag_mod
    import bench.training.recipe as recipe

    arms = [{"arm": "rag", "name": "rag+lora", "k": 1, "finetuned": "lora-r4", "tasks": ["qa"]},
            {"arm": "finetune", "name": "lora-r4", "rank": 4, "epochs": 1, "tasks": ["qa"]}]
    path = write_suite(tmp_path / "s", arms=arms)
    running, trained_in = [], []
    for cls in (ft.FinetuneArm, rag_mod.RagArm):
        real = cls.predict

        def spy(self, *a, _real=real, **k):
            running.append(self.spec.name)
            return _real(self, *a, **k)

        monkeypatch.setattr(cls, "predict", spy)
    real_train = recipe.train
    monkeypatch.setattr(recipe, "train", lambda *a, **k: trained_in.append(running[-1]) or real_train(*a, **k))
    run_dir = run_suite(str(path), RunOptions(results=tmp_path / "results", dtype="float32"), Console(quiet=True))
    assert running == ["lora-r4", "rag+lora"] and trained_in == ["lora-r4"]
    scores = json.loads((run_dir / "scores.json").read_text())
    assert list(scores["tasks"]["qa"]["arms"]) == ["rag+lora", "lora-r4"]      # declared order
    cells = {c["arm"]: c for c in json.loads((run_dir / "run.json").read_text())["cells"]}
    assert cells["rag+lora"]["costs"]["builds_on"] == "lora-r4"
    assert cells["rag+lora"]["costs"]["train_wall_s"] == cells["lora-r4"]["costs"]["train_wall_s"] > 0


# -- retrieval-aware fine-tuning (a fine-tune's `retrieval_from:`) -----------------------------------

RAFT_QA = QA + [
    {"id": "q5", "question": "Who holds the bond money?", "answers": ["the Rental Bond Board"], "doc": "bonds",
     "split": "train"},
    {"id": "q6", "question": "How much notice is needed before a rent increase?", "answers": ["60 days"],
     "doc": "rent", "split": "train"},
    {"id": "q7", "question": "May a landlord say no to a small dog?", "answers": ["only with a reason"],
     "doc": "pets", "split": "validation"},
]
RAFT_ARMS = [{"arm": "rag", "name": "rag-k1", "k": 1, "chunk_tokens": 32, "chunk_overlap": 4, "tasks": ["qa"]},
             {"arm": "finetune", "name": "lora-raft", "rank": 4, "epochs": 1, "retrieval_from": "rag-k1",
              "gold_passage": "forced", "max_length": 256, "tasks": ["qa"]},
             {"arm": "rag", "name": "rag-k1+raft", "k": 1, "chunk_tokens": 32, "chunk_overlap": 4,
              "finetuned": "lora-raft", "tasks": ["qa"]}]


def raft_suite(tmp_path, arms=RAFT_ARMS):
    path = write_suite(tmp_path / "s", arms=arms)
    (path.parent / "data" / "qa.jsonl").write_text("".join(json.dumps(q) + "\n" for q in RAFT_QA))
    return load_suite(str(path))


def chunk(doc, n=0):
    from bench.retrieval.chunking import Chunk

    return Chunk(f"{doc}#{n}", doc, doc.title(), f"text of {doc} {n}", 0, 4)


def test_choose_passages_follows_the_raft_recipe():
    from bench.arms.rag import choose_passages

    ranked = [chunk("a"), chunk("b"), chunk("gold", 1), chunk("c")]
    every = ranked + [chunk("gold", 0), chunk("lost")]

    def ids(found):
        return [c.id for c in found]

    assert ids(choose_passages(ranked, 2, "gold", every, force_gold=False, distractors_only=False)) == ["a#0", "b#0"]
    # forced: the gold document's best-ranked chunk replaces the last passage
    assert ids(choose_passages(ranked, 2, "gold", every, force_gold=True, distractors_only=False)) == ["a#0", "gold#1"]
    # ranked nowhere: its first chunk of the corpus
    assert ids(choose_passages(ranked[:2], 2, "lost", every, force_gold=True, distractors_only=False)) == [
        "a#0", "lost#0"]
    # already in the top k: unchanged
    assert ids(choose_passages(ranked, 3, "gold", every, force_gold=True, distractors_only=False)) == [
        "a#0", "b#0", "gold#1"]
    # distractors only: every gold chunk left out, the next ones move up
    assert ids(choose_passages(ranked, 3, "gold", every, force_gold=True, distractors_only=True)) == [
        "a#0", "b#0", "c#0"]


def test_retrieval_aware_training_puts_passages_in_train_prompts_and_never_searches_test(
        tmp_path, cache, tiny_lm, monkeypatch):
    import bench.training.sft as sft

    suite = raft_suite(tmp_path)
    built = build_arms(suite.spec.arms)
    assert built["lora-raft"].retrieval is built["rag-k1"]
    queries, encoded = [], []
    real_search, real_encode = Retriever.search_batch, sft.encode_task
    monkeypatch.setattr(Retriever, "search_batch",
                        lambda self, q, k, **kw: queries.extend(q) or real_search(self, q, k, **kw))
    monkeypatch.setattr(sft, "encode_task", lambda *a, **k: encoded.append((a, k)) or real_encode(*a, **k))
    ctx, task = ctx_for(suite, tiny_lm), suite.tasks["qa"]
    result = built["rag-k1+raft"].predict(ctx, task, task.split("test"))
    assert len(result.predictions) == 2 and result.costs.training.train_examples == 4
    test_questions = {e.input for e in task.split("test")}
    assert queries and not test_questions & set(queries)            # train-time retrieval never sees test
    assert set(queries) == {e.input for e in task.split("train") + task.split("validation")}
    train_call = encoded[0]
    contexts = train_call[0][4]
    titles = {"q3": "Urgent repairs", "q4": "Pets", "q5": "Bonds", "q6": "Rent increases"}
    for qid, title in titles.items():                              # gold forced in: k=1, so it is the passage
        assert contexts[qid].startswith(f"[1] {title}")
    rows = real_encode(*train_call[0], **train_call[1])
    prompt = tiny_lm.tokenizer.decode(rows[0]["input_ids"])
    assert "Context:" in prompt and contexts[rows[0]["id"]].splitlines()[0] in prompt


def test_the_retriever_settings_key_the_trained_model(tmp_path, cache, tiny_lm):
    suite = raft_suite(tmp_path)
    ctx, task = ctx_for(suite, tiny_lm), suite.tasks["qa"]

    def key(arms):
        built = build_arms([suite.spec.arms[0].model_copy(update=arms.get("rag", {})),
                            suite.spec.arms[1].model_copy(update=arms.get("ft", {}))])
        return built["lora-raft"].artifact_key(ctx, tiny_lm, task)

    base = key({})
    assert key({"rag": {"k": 2}}) != base
    assert key({"rag": {"max_context_tokens": 64}}) != base
    assert key({"ft": {"distractor_share": 0.2}}) != base
    assert key({"rag": {"calibrate": True}}) == base                    # answer-time only


def test_retrieval_from_must_name_a_corpus_rag_variant(tmp_path, cache):
    from bench.config import SuiteError

    arms = [{"arm": "prompt", "name": "zero-shot"},
            {"arm": "finetune", "name": "lora", "retrieval_from": "zero-shot", "tasks": ["qa"]}]
    with pytest.raises(SuiteError, match="retrieval_from: 'zero-shot' must be a rag variant with mode: corpus"):
        raft_suite(tmp_path, arms)
    arms[1]["retrieval_from"] = "rag-k9"
    with pytest.raises(SuiteError, match="unknown arm variant 'rag-k9'"):
        raft_suite(tmp_path, arms)


def test_raft_settings_need_a_gold_document_field(tmp_path, cache):
    from bench.config import SuiteError

    path = write_suite(tmp_path / "s", arms=RAFT_ARMS)
    path.write_text(path.read_text().replace("  gold_doc_field: doc\n", ""))
    with pytest.raises(SuiteError, match=r"arms\[1\].gold_passage.*task qa has no gold_doc_field"):
        load_suite(str(path))
