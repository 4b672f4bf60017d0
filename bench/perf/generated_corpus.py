"""A seeded corpus of any size for scale benchmarks: short lease summaries and questions on them.

Each document is one residential lease of the (invented) Province of Kestrel in three sentences
(parties, premises, rent, due day, notice, a special term) with its own reference number, about
60 words, so it is one chunk. Documents differ in names, numbers and terms but share a template,
as the agreements of one collection do. Each question asks for one fact of one lease, its gold
document, and names that lease one of two ways, alternately: by its reference number alone
("reference": a lexical match, which a sentence embedder all but ignores among 10^5 look-alike
leases), or by its premises and parties ("content": what a dense retriever can match). Written
for this project.
"""

from __future__ import annotations

import numpy as np

from ..config import TaskSpec
from ..data import Document, Example
from ..suites import Task

FIRST = ("Ada", "Bram", "Cleo", "Dov", "Esme", "Fitz", "Gwen", "Hal", "Iris", "Jude", "Kit", "Lior", "Mira", "Nico",
         "Oona", "Pim", "Rhea", "Saul", "Tove", "Umar")
LAST = ("Arden", "Blackwood", "Carrow", "Dunmore", "Elston", "Fairley", "Garrick", "Holm", "Ivers", "Jessop", "Kell",
        "Lorne", "Marsh", "Nettles", "Orme", "Pellow")
STREETS = ("Harbour", "Mill", "Quarry", "Orchard", "Station", "Tanner", "Wren", "Kiln", "Ferry", "Chapel", "Salt",
           "Rope")
STREET_KINDS = ("Street", "Lane", "Road", "Row", "Close")
TERMS = ("pets may be kept with the landlord's written consent", "no one may smoke anywhere on the premises",
         "the tenant keeps the garden and mows the lawn", "one parking space behind the building is included",
         "the landlord services the boiler every autumn", "the tenant may not sublet any room",
         "the landlord repaints the interior every five years", "the tenant insures the contents")
GOLD_FIELD = "doc"
"""Example.meta key holding the id of the lease a question is about."""
ASKS_BY = "asks_by"
"""Example.meta key saying how the question names its lease: one of QUESTIONS' keys."""


def _lease(rng: np.random.Generator, i: int) -> tuple[Document, dict[str, str]]:
    ref = f"KL-{i:06d}"
    facts = {"ref": ref, "tenant": f"{rng.choice(FIRST)} {rng.choice(LAST)}",
             "landlord": f"{rng.choice(FIRST)} {rng.choice(LAST)}",
             "address": f"{rng.integers(1, 200)} {rng.choice(STREETS)} {rng.choice(STREET_KINDS)}",
             "rent": f"K${int(rng.integers(40, 400)) * 10:,}", "day": str(rng.integers(1, 29)),
             "notice": str(rng.choice((14, 21, 28, 30, 42, 60, 90))), "term": str(rng.choice(TERMS))}
    text = (f"Lease {ref} is between {facts['tenant']} (tenant) and {facts['landlord']} (landlord) for "
            f"{facts['address']}. Rent is {facts['rent']} a month, due on day {facts['day']}; either party "
            f"ends the lease with {facts['notice']} days' notice. Special term: {facts['term']}.")
    return Document(id=ref, title=f"Lease {ref}", text=text), facts


QUESTIONS: dict[str, tuple[tuple[str, str], ...]] = {
    "reference": (("What is the monthly rent under lease {ref}?", "rent"),
                  ("Who is the tenant under lease {ref}?", "tenant"),
                  ("How many days' notice ends lease {ref}?", "notice"),
                  ("Which premises does lease {ref} let?", "address")),
    "content": (("What is the monthly rent for {address}, let by {landlord} to {tenant}?", "rent"),
                ("On which day is rent due for {address}, which {tenant} rents from {landlord}?", "day"),
                ("How many days' notice ends {tenant}'s lease of {address} from {landlord}?", "notice"),
                ("What special term binds {tenant} and {landlord} for {address}?", "term"))}
"""Question templates (text, the fact answered) by how they name the lease."""


def generated_leases(n_docs: int, n_questions: int, seed: int) -> tuple[list[Document], list[Example]]:
    """`n_docs` leases and `n_questions` test questions on leases drawn at random (seeded), naming
    their lease by reference and by content in turn."""
    rng = np.random.default_rng(seed)
    leases = [_lease(rng, i) for i in range(n_docs)]
    kinds = list(QUESTIONS)
    questions = []
    for q in range(n_questions):
        doc, facts = leases[int(rng.integers(0, n_docs))]
        asks_by = kinds[q % len(kinds)]
        template, fact = QUESTIONS[asks_by][int(rng.integers(0, len(QUESTIONS[asks_by])))]
        questions.append(Example(id=f"q{q}", input=template.format(**facts), targets=(facts[fact],),
                                 split="test", meta={GOLD_FIELD: doc.id, ASKS_BY: asks_by}))
    return [doc for doc, _ in leases], questions


def generated_task(questions: list[Example]) -> Task:
    """A QA task holding `questions` as its test split, for arms that take a Task (no data file)."""
    spec = TaskSpec.model_validate({
        "name": "generated_leases", "kind": "qa", "data": {"file": "generated.jsonl"}, "input_field": "question",
        "target_field": "answer", "gold_doc_field": GOLD_FIELD, "metrics": ["exact_match"],
        "instruction": "Answer the question about the lease in a few words."})
    return Task(spec=spec, examples={"test": list(questions)})
