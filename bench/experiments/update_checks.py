"""Checks of a suite's update declarations (`corpus.update`, a task's `update:`), called by
bench.suites while it loads the suite, so `bench validate` reports them with everything else.

Two kinds: per record, as it is read (the changed flag is a boolean, a changed example carries
its answer before the update), with the record's file and line; and per task, once the data
and corpus are loaded (some example is changed, the corpus has an update, the old gold
documents are documents from before it), located in suite.yaml.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..config import CorpusSpec, TaskSpec
from ..data import Document
from ..records import read_records, shown_path
from ..yaml_problems import Problem, yaml_line

if TYPE_CHECKING:  # bench.suites imports this module
    from ..suites import Task

SHOWN_IDS = 3  # document ids named in one problem; the count says how many there are


def reference_texts(value: Any) -> tuple[str, ...] | None:
    """The answers a field value holds (text, a whole number, or a non-empty list of those), or
    None when it holds none: the form `target_field` takes, read the same way."""
    values = value if isinstance(value, list) else [value]
    texts = [_text(v) for v in values]
    if not values or None in texts:
        return None
    return tuple(t for t in texts if t is not None)


def document_id(value: Any) -> str | None:
    """A document id as text (text or a whole number), or None."""
    return _text(value)


def _text(value: Any) -> str | None:
    if isinstance(value, str):
        return value if value.strip() else None
    if isinstance(value, int) and not isinstance(value, bool):  # a boolean would become 'True'
        return str(value)
    return None


def is_changed(task: TaskSpec, meta: Mapping[str, Any]) -> bool:
    """Whether the update changed this example (its changed field is true; missing means no)."""
    return task.update is not None and meta.get(task.update.changed_field) is True


def record_problems(task: TaskSpec, rec: Mapping[str, Any], shown: str, line: int) -> list[Problem]:
    """What is wrong with one record's update fields (none when the task declares no update)."""
    u = task.update
    if u is None:
        return []
    flag = rec.get(u.changed_field)
    if flag is not None and not isinstance(flag, bool):
        return [Problem(shown, line, u.changed_field, f"expected true or false, got {type(flag).__name__}")]
    if flag is not True:
        return []
    out = []
    old = rec.get(u.old_target_field)
    if old is None:
        out.append(Problem(shown, line, u.old_target_field, f"missing on a changed example ({u.changed_field} is "
                                                            "true); expected its answer before the update"))
    elif reference_texts(old) is None:
        out.append(Problem(shown, line, u.old_target_field, "expected non-empty text or a non-empty list of texts, "
                                                            f"got {type(old).__name__}"))
    gold = rec.get(u.old_gold_doc_field) if u.old_gold_doc_field else None
    if gold is not None and document_id(gold) is None:
        out.append(Problem(shown, line, str(u.old_gold_doc_field), "expected a document id (text or a whole "
                                                                  f"number), got {type(gold).__name__}"))
    return out


def update_document_ids(root: Path, corpus: CorpusSpec | None) -> set[str]:
    """Ids of the documents in the corpus's update files (unreadable lines are skipped here: the
    corpus loader reports them)."""
    ids: set[str] = set()
    for rel in corpus.update if corpus else []:
        f = root / rel
        if f.is_file():
            ids |= {str(rec[corpus.id_field]) for _, rec in read_records(f, []) if rec.get(corpus.id_field) is not None}
    return ids


def task_problems(path: Path, index: int, task: Task, corpus: CorpusSpec | None,
                  documents: Sequence[Document] | None) -> list[Problem]:
    """A task's update declaration against its loaded data and the corpus. `documents`: the
    loaded corpus, or None when it did not load whole (its ids are then not checked)."""
    u = task.spec.update
    if u is None:
        return []
    where = (shown_path(path), yaml_line(path, ("tasks", index, "update")), f"tasks[{index}].update")
    out = []
    if corpus is None or not corpus.update:
        out.append(Problem(*where, "the task declares an update, but the corpus has no `update` files; list the "
                                   "files of the change under corpus.update"))
    examples = [e for split in task.examples.values() for e in split]
    if examples and not any(is_changed(task.spec, e.meta) for e in examples):
        out.append(Problem(*where, f"no example has {u.changed_field}: true; expected the examples whose answer "
                                   "the update changes"))
    if documents is not None and corpus is not None and u.old_gold_doc_field:
        out += _old_gold_problems(where, task, {d.id for d in documents}, update_document_ids(path.parent, corpus))
    return out


def _old_gold_problems(where: tuple[str, int | None, str], task: Task, known: set[str],
                       update: set[str]) -> list[Problem]:
    """Old gold documents must be corpus documents from before the update."""
    field = str(task.spec.update.old_gold_doc_field)
    gold = {e.id: document_id(e.meta.get(field)) for split in task.examples.values() for e in split
            if is_changed(task.spec, e.meta) and e.meta.get(field) is not None}
    bad = [(example, doc) for example, doc in sorted(gold.items()) if doc not in known or doc in update]
    if not bad:
        return []
    named = ", ".join(f"{doc!r} (example {example})" for example, doc in bad[:SHOWN_IDS])
    more = f" and {len(bad) - SHOWN_IDS} more" if len(bad) > SHOWN_IDS else ""
    return [Problem(*where, f"{len(bad)} {field} id(s) name no corpus document from before the update: "
                            f"{named}{more}")]
