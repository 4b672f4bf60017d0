"""The two states of knowledge of a suite with an update, as in-memory variants of the loaded
suite that the runner's cells run unchanged.

- after: the suite as loaded (the corpus with its `update` files, every answer as updated);
- before: the corpus without the update files, and each changed example's answer and gold
  document replaced by the ones from before the update, in every split, so a fine-tune trained
  in this world learns the old facts.

In both, an update task's test split is replaced by its changed examples (from every split),
the questions the experiment asks. Because a cell's cache key holds the corpus and data
hashes, each world's cells are cached apart from each other and from `bench run`'s.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

from ..config import SPLITS, TaskSpec
from ..data import Example
from ..errors import ConfigError
from ..suites import Suite, Task
from .update_checks import document_id, is_changed, reference_texts, update_document_ids


@dataclass(frozen=True)
class ChangedQuestion:
    """One example the update changed: what it asks and its answers on either side of the update."""

    task: str
    id: str
    split: str
    """The split the suite puts it in: a fine-tune trained on the train questions."""
    input: str
    new_references: tuple[str, ...]
    """The answers after the update (the example's target)."""
    old_references: tuple[str, ...]
    """The answers before the update (the task's `update.old_target_field`)."""
    new_gold: str | None
    """The document that answers it after the update (`gold_doc_field`), if named."""
    old_gold: str | None
    """The document that answered it before (`update.old_gold_doc_field`), if named."""


@dataclass(frozen=True)
class Worlds:
    """The suite before and after its update, and what the experiment asks."""

    before: Suite
    after: Suite
    questions: dict[str, tuple[ChangedQuestion, ...]]
    """Update task -> its changed questions, in split order (train, validation, test)."""
    update_documents: frozenset[str]
    """Ids of the documents the update adds to the corpus."""


def update_tasks(suite: Suite) -> list[str]:
    """The tasks that declare an update, in the suite's order."""
    return [name for name, task in suite.tasks.items() if task.spec.update is not None]


def build_worlds(suite: Suite, tasks: Sequence[str]) -> Worlds:
    """The before and after variants of `suite` for the update tasks `tasks`."""
    if suite.spec.corpus is None or not suite.spec.corpus.update:
        raise ConfigError(f"suite '{suite.spec.name}' has no corpus.update files: nothing changes between before and "
                          "after (see README, 'The knowledge-update experiment')")
    added = frozenset(update_document_ids(suite.root, suite.spec.corpus))
    before_corpus = [d for d in suite.corpus if d.id not in added]
    questions = {name: changed_questions(suite.tasks[name]) for name in tasks}
    before_tasks = {name: _before_task(t) if name in tasks else t for name, t in suite.tasks.items()}
    before = dataclasses.replace(suite, tasks=_asking(before_tasks, tasks), corpus=before_corpus)
    after = dataclasses.replace(suite, tasks=_asking(dict(suite.tasks), tasks))
    return Worlds(before=before, after=after, questions=questions, update_documents=added)


def changed_questions(task: Task) -> tuple[ChangedQuestion, ...]:
    spec, out = task.spec, []
    for e in _changed(task):
        old_gold = e.meta.get(spec.update.old_gold_doc_field) if spec.update.old_gold_doc_field else None
        new_gold = e.meta.get(spec.gold_doc_field) if spec.gold_doc_field else None
        out.append(ChangedQuestion(task=task.name, id=e.id, split=e.split, input=e.input, new_references=e.targets,
                                   old_references=_old_references(spec, e),
                                   new_gold=document_id(new_gold) if new_gold is not None else None,
                                   old_gold=document_id(old_gold) if old_gold is not None else None))
    return tuple(out)


def _changed(task: Task) -> list[Example]:
    return [e for split in SPLITS for e in task.split(split) if is_changed(task.spec, e.meta)]


def _old_references(spec: TaskSpec, e: Example) -> tuple[str, ...]:
    old = reference_texts(e.meta.get(spec.update.old_target_field))
    if old is None:  # validation refuses such a suite; reaching this is a bug
        raise AssertionError(f"changed example {e.id} has no answer before the update")
    return old


def _before_task(task: Task) -> Task:
    """The task as it was before the update: changed examples carry their old answer and gold."""
    examples = {split: [_before_example(task.spec, e) for e in rows] for split, rows in task.examples.items()}
    return dataclasses.replace(task, examples=examples)


def _before_example(spec: TaskSpec, e: Example) -> Example:
    if not is_changed(spec, e.meta):
        return e
    meta = dict(e.meta)
    if spec.gold_doc_field:
        field = spec.update.old_gold_doc_field
        old_gold = document_id(meta.get(field)) if field and meta.get(field) is not None else None
        if old_gold is None:
            meta.pop(spec.gold_doc_field, None)  # the new gold document did not exist yet
        else:
            meta[spec.gold_doc_field] = old_gold
    return dataclasses.replace(e, targets=_old_references(spec, e), meta=meta)


def _asking(tasks: dict[str, Task], asked: Sequence[str]) -> dict[str, Task]:
    """Every task, the asked ones with their changed examples as the test split."""
    return {name: _asking_changed(t) if name in asked else t for name, t in tasks.items()}


def _asking_changed(task: Task) -> Task:
    examples = {split: rows for split, rows in task.examples.items() if split != "test"}
    return dataclasses.replace(task, examples={**examples, "test": _changed(task)})
