"""Cross-checks that need a suite's loaded data: what each arm variant needs from the tasks it
runs on, a rag variant's document filter against the corpus and the examples, and gold document
ids against the corpus. "The corpus" of a task is its own `corpus:` when it has one, else the
suite's.

Each returns Problems located in suite.yaml, so `bench validate` reports at once what `bench run`
would otherwise fail on only after other cells had run (a fine-tune on a task without train
examples fails at training time, possibly an hour into the run).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .data import Document
from .records import shown_path
from .yaml_problems import Problem, yaml_line

if TYPE_CHECKING:  # suites imports this module
    from .suites import Task

SHOWN_GOLD_IDS = 3  # unknown gold ids named in the problem; the count says how many there are


def check_arm_needs(path: Path, at: tuple[str, ...], arms: Sequence[Any], tasks: dict[str, Task],
                    with_corpus: set[str]) -> list[Problem]:
    """Arm variants (the suite's `arms`, or a profile's at `at`) against what they need: train
    examples to fine-tune on or retrieve, a classification task for a head, a reranker that
    exists, a corpus to learn (`with_corpus`: the tasks that have one, their own or the suite's)."""
    out, shown = [], ".".join(at)
    for i, arm in enumerate(arms):
        runs_on = [task for task in tasks.values() if not arm.tasks or task.name in arm.tasks]
        needs = _variant_needs(arm, [task.name for task in runs_on if task.name not in with_corpus])
        for task in runs_on:
            needs += _task_needs(arm, task)
        for key, why in needs:
            line = yaml_line(path, (*at, i, key)) if key else yaml_line(path, (*at, i))
            out.append(Problem(shown_path(path), line, f"{shown}[{i}]" + (f".{key}" if key else ""), why))
    return out


def _variant_needs(arm: Any, without_corpus: list[str]) -> list[tuple[str, str]]:
    """(the key at fault, or '' for the whole variant; what is missing) of the variant itself;
    `without_corpus`: the tasks it runs on that have no corpus, their own or the suite's."""
    out = []
    if arm.arm == "finetune" and arm.knowledge != "none" and without_corpus:
        names = ", ".join(without_corpus)
        which = f"tasks {names} have" if len(without_corpus) > 1 else f"task {names} has"
        out.append(("knowledge", f"knowledge: {arm.knowledge} trains on the corpus of the tasks it learns, but {which} "
                                 "no `corpus:` (of its own or the suite's); add one, use knowledge: none, or restrict "
                                 "the variant to other tasks with `tasks:`"))
    if arm.arm == "finetune" and arm.method == "head" and arm.scope == "multi_task":
        out.append(("scope", "method head trains one classifier per task; use scope: per_task"))
    if arm.arm == "rag" and arm.rerank is not None:
        from .retrieval.rerank import reranker_problem  # imported here: the retrieval package is heavier

        why = reranker_problem(arm.rerank.model)  # a missing directory, before a hub lookup or any compute
        if why:
            out.append(("rerank", why))
    return out


def _task_needs(arm: Any, task: Task) -> list[tuple[str, str]]:
    """(the key at fault, or ''; what is missing) of one variant on one task it runs on."""
    n_train, kind, out = len(task.split("train")), task.spec.kind, []
    restrict = "or restrict the variant to other tasks with `tasks:`"
    if arm.arm == "finetune":
        if n_train < 2:
            out.append(("", f"fine-tuning needs at least 2 train examples; task {task.name} has {n_train}: "
                            f"add some, {restrict}"))
        if arm.method == "head" and kind != "classification":
            out.append(("method", f"method head is for classification tasks; task {task.name} is {kind}: "
                                  f"use method lora, {restrict}"))
        if arm.select_on == "metric" and arm.scope == "per_task" and kind != "classification":
            out.append(("select_on", f"select_on: metric needs a classification task; task {task.name} is {kind}: "
                                     f"use select_on: loss, {restrict}"))
        raft = arm.gold_passage == "forced" or arm.distractor_share > 0
        if arm.retrieval_from and raft and not task.spec.gold_doc_field:
            out.append(("gold_passage", f"gold_passage: forced and distractor_share need the gold document of each "
                                        f"train question; task {task.name} has no gold_doc_field: add one, or use "
                                        f"gold_passage: as_retrieved and distractor_share: 0, {restrict}"))
    if arm.arm == "rag" and arm.mode == "examples" and n_train == 0:
        out.append(("mode", f"mode: examples retrieves train examples; task {task.name} has none: add some, "
                            f"{restrict}"))
    return out


def check_filters(path: Path, at: tuple[str, ...], arms: Sequence[Any], tasks: dict[str, Task],
                  corpora: Mapping[str, Sequence[Document] | None]) -> list[Problem]:
    """A rag variant's `filter` against the metadata of each task's corpus (`corpora`: task name ->
    its documents) and every example of the tasks it runs on (any of them may be a query: test
    examples, and train ones for retrieval-aware fine-tuning). A task missing from `corpora`, or
    without documents, is skipped: its corpus did not load whole or is absent, and that is
    reported on its own."""
    from .retrieval.filters import filter_problem  # imported here: the retrieval package is heavier

    out, shown = [], ".".join(at)
    for i, arm in enumerate(arms):
        f = getattr(arm, "filter", None)
        if arm.arm != "rag" or f is None:
            continue
        for task in tasks.values():
            corpus = corpora.get(task.name)
            if (arm.tasks and task.name not in arm.tasks) or not corpus:
                continue
            examples = [e for split in task.examples.values() for e in split]
            why = filter_problem(f.doc_field, f.example_field, corpus, examples)
            if why:
                out.append(Problem(shown_path(path), yaml_line(path, (*at, i, "filter")), f"{shown}[{i}].filter",
                                   f"task {task.name}: {why}"))
    return out


def check_gold_documents(path: Path, index: int, task: Task, corpus: Sequence[Document] | None) -> list[Problem]:
    """Every gold document id of the task (its `gold_doc_field`) names a document of the task's
    corpus (its own, else the suite's); a gold id that names none would score as a retrieval miss
    on every arm, quietly. `corpus` None: neither the task nor the suite has one."""
    field = task.spec.gold_doc_field
    if not field:
        return []
    gold = {e.id: e.meta[field] for split in task.examples.values() for e in split if field in e.meta}
    where = (shown_path(path), yaml_line(path, ("tasks", index, "gold_doc_field")), f"tasks[{index}].gold_doc_field")
    if corpus is None:
        return [Problem(*where, "gold documents are corpus documents, but there is no `corpus:` (the suite's or "
                                "the task's own)")] if gold else []
    known = {d.id for d in corpus}
    unknown = [(example, doc) for example, doc in sorted(gold.items()) if doc not in known]
    if not unknown:
        return []
    named = ", ".join(f"{doc!r} (example {example})" for example, doc in unknown[:SHOWN_GOLD_IDS])
    more = f" and {len(unknown) - SHOWN_GOLD_IDS} more" if len(unknown) > SHOWN_GOLD_IDS else ""
    whose = "the task's own corpus" if task.corpus is not None else "the suite's corpus"
    return [Problem(*where, f"{len(unknown)} gold document id(s) name no corpus document: {named}{more}; "
                            f"expected ids of {whose}")]
