"""Chunking that follows a document's structure (sections, subsections, items), with stable ids.

A tiny WordPiece tokenizer written to tmp stands in for the embedder's (fast, offline).
"""

import re
from types import SimpleNamespace

import pytest
from pydantic import ValidationError

from bench.arms import ArmContext
from bench.arms.rag import RagArm
from bench.config import RagArm as RagSpec
from bench.config import TaskSpec
from bench.data import Document, Example
from bench.retrieval import RetrievalError
from bench.retrieval.chunking import boundary_level, chunk_documents, chunking_key
from bench.suites import Task

LEASE = """RESIDENTIAL TENANCY AGREEMENT
Reference KES-0042

1. Parties
The landlord is Ada Moss of 4 Quay Lane. The tenant is Bo Lin.

2. Premises
Flat 3, 12 Harbour Road, Kestrel, with one parking space.

3. Rent
(a) The rent is K$1,200 per month, payable in advance on the first day of each month by bank transfer.
(b) The rent may be increased once in any twelve months with sixty days written notice to the tenant.
(c) Late rent attracts no fee.

4. Bond
The bond is four weeks rent, lodged with the board within ten business days of payment.

5. Pets
The tenant may keep one cat.
"""
GUIDE = """# Tenant guide

## Pets
Cats are allowed with consent.

## Repairs
### Urgent repairs
A burst pipe is repaired within 24 hours of notice.
### Other repairs
Other repairs are done within fourteen days.
"""


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import BertTokenizerFast

    words = sorted({w for text in (LEASE, GUIDE, "longer section now and then") for w in re.findall(r"\w+",
                                                                                                     text.lower())})
    pieces = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words]
    return BertTokenizerFast(vocab={piece: i for i, piece in enumerate(pieces)})


def lease(text=LEASE):
    return Document("lease-42", "Lease KES-0042", text)


def by_id(chunks):
    return {c.id: c for c in chunks}


def test_lines_that_open_sections_and_lines_that_do_not():
    assert [boundary_level(line) for line in ("# Title", "### Deep", "Article IV Rent", "Section 12 Bond", "§ 3 Pets",
                                              "1. Parties", "2) Premises", "2.3 Rent", "4.1.2 Keys", "(a) rent",
                                              "(iv) keys")] == [1, 3, 7, 9, 9, 9, 9, 10, 11, 20, 20]
    for prose in ("12 months after the start", "2022. The year", "#hashtag", "The tenant pays.", "3.5"):
        assert boundary_level(prose) is None, prose


def test_each_section_is_a_chunk_and_an_over_long_one_is_cut_at_its_items(tokenizer):
    chunks = chunk_documents([lease()], tokenizer, 40, 4, how="structure")
    got = by_id(chunks)
    assert list(got) == ["lease-42#s0", "lease-42#s1", "lease-42#s2", "lease-42#s3.0", "lease-42#s3.1",
                         "lease-42#s3.2", "lease-42#s4", "lease-42#s5"]
    assert got["lease-42#s1"].text.startswith("1. Parties") and "Bo Lin" in got["lease-42#s1"].text
    assert got["lease-42#s0"].text.startswith("RESIDENTIAL") and "KES-0042" in got["lease-42#s0"].text
    # the rent section is too long: its items are chunks, titled with the section they came from, and
    # its heading line joins the first item rather than standing alone
    assert got["lease-42#s3.0"].text.startswith("3. Rent\n(a) The rent is K$1,200")
    assert got["lease-42#s3.1"].text.startswith("(b)") and got["lease-42#s3.1"].title == "Lease KES-0042 › 3. Rent"
    assert got["lease-42#s4"].title == "Lease KES-0042"
    for c in chunks:
        assert LEASE[c.start_char:c.start_char + len(c.text)] == c.text   # an exact span of the document
        assert c.n_tokens <= 40 and c.doc_id == "lease-42"


def test_markdown_headings_nest_and_a_section_without_structure_left_becomes_token_windows(tokenizer):
    doc = Document("guide", "Tenant guide", GUIDE)
    got = by_id(chunk_documents([doc], tokenizer, 24, 2, how="structure"))
    assert got["guide#s0"].text.startswith("# Tenant guide\n\n## Pets")    # the title line joins the first section
    assert got["guide#s1.0"].text.startswith("## Repairs\n### Urgent repairs")
    assert got["guide#s1.1"].title == "Tenant guide › Repairs" and got["guide#s1.1"].text.startswith("### Other")
    long = Document("long", "", "1. Short\nA line.\n\n2. Long\n" + " ".join(["longer section now and then"] * 12))
    ids = [c.id for c in chunk_documents([long], tokenizer, 20, 2, how="structure")]
    assert ids[0] == "long#s0" and len(ids) > 3 and all(i.startswith("long#s1.w") for i in ids[1:])


def test_ids_are_stable_across_runs_and_editing_a_later_section_keeps_earlier_chunks(tokenizer):
    first = chunk_documents([lease()], tokenizer, 40, 4, how="structure")
    assert first == chunk_documents([lease()], tokenizer, 40, 4, how="structure")
    edited = LEASE.replace("The tenant may keep one cat.", "The tenant may keep one cat and two small dogs, and "
                                                           "must clean up after them in the shared garden.")
    again = chunk_documents([lease(edited)], tokenizer, 40, 4, how="structure")
    before = [c for c in first if not c.id.startswith("lease-42#s5")]
    assert again[:len(before)] == before                                # same ids, texts, spans, titles
    assert by_id(again)["lease-42#s5"].text != by_id(first)["lease-42#s5"].text
    grown = LEASE.replace("(c) Late rent attracts no fee.", "(c) Late rent attracts no fee.\n(d) Rent is paid to "
                                                            "the agent when the landlord is away.")
    regrown = by_id(chunk_documents([lease(grown)], tokenizer, 40, 4, how="structure"))
    kept = by_id(first)["lease-42#s4"]
    assert "lease-42#s3.3" in regrown and (kept.title, kept.text) == (regrown["lease-42#s4"].title,
                                                                     regrown["lease-42#s4"].text)
    assert regrown["lease-42#s4"].start_char > kept.start_char   # a section after the change keeps its id


def test_a_document_without_structure_is_cut_into_windows(tokenizer):
    doc = Document("plain", "", " ".join(["longer section now and then"] * 10))
    chunks = chunk_documents([doc], tokenizer, 16, 2, how="structure")
    assert [c.id for c in chunks] == [f"plain#s0.w{i}" for i in range(len(chunks))] and len(chunks) > 2
    assert chunk_documents([Document("one", "", "Just a line.")], tokenizer, 16, 2, how="structure")[0].id == "one#s0"


def test_token_windows_keep_their_ids_and_cache_key(tokenizer):
    chunks = chunk_documents([lease()], tokenizer, 30, 4)
    assert [c.id for c in chunks] == [f"lease-42#{i}" for i in range(len(chunks))]
    assert chunking_key(254, 32) == {"chunk_tokens": 254, "chunk_overlap": 32, "version": 1}  # existing caches hold
    assert chunking_key(254, 32, "structure") != chunking_key(254, 32)
    with pytest.raises(RetrievalError, match="unknown chunking 'headings'; expected one of tokens, structure"):
        chunk_documents([lease()], tokenizer, 30, 4, how="headings")


def test_structure_chunking_is_a_corpus_setting():
    assert RagSpec(arm="rag", name="r", chunking="structure").chunking == "structure"
    assert RagSpec(arm="rag", name="r").chunking == "tokens"
    with pytest.raises(ValidationError, match="chunking cuts corpus documents; it needs mode: corpus"):
        RagSpec(arm="rag", name="r", mode="examples", chunking="structure")


def test_a_rag_variant_retrieves_sections_and_keys_its_index_apart(tokenizer, tmp_path, monkeypatch):
    monkeypatch.setenv("TRIDENT_CACHE", str(tmp_path / "cache"))
    question = Example("q1", "How often may the rent be increased?", ("once in any twelve months",), "test")
    spec = TaskSpec(name="qa", kind="qa", data={"file": "qa.jsonl"}, input_field="question", target_field="answer",
                    instruction="Answer briefly.", metrics=["token_f1"])
    task = Task(spec, {"test": [question]})
    ctx = ArmContext(get_model=lambda: None, seed=0, batch_size=1, corpus=(lease(),))

    def searcher(chunking):
        arm = RagArm(RagSpec(arm="rag", name="r", retriever="bm25", chunk_tokens=40, chunk_overlap=4,
                             chunking=chunking))
        arm._embedder = SimpleNamespace(tokenizer=tokenizer, max_seq_length=128)  # sizes chunks; bm25 needs no vectors
        return arm.retriever(ctx, task, "cpu")

    sections, chunks = searcher("structure")
    hits = sections.search([question.input], 1)
    assert chunks[hits.positions[0][0]].id == "lease-42#s3.1"      # the (b) item that answers it
    windows, _ = searcher("tokens")
    assert [it.id for it in windows.items][0] == "lease-42#0"
    assert windows.costs["bm25_key"] != sections.costs["bm25_key"]  # one corpus, two chunkings, two indexes
