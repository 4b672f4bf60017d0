"""Loads a retrieval corpus (the suite's, or a task's own) into Documents, checking every one
as it is read.

A corpus is JSONL files (an id, a title and a text per line) and/or a folder of .txt/.md files
(one document each), plus the JSONL files of its `update` (a later change, read right after
`files`); every problem is appended to the caller's list rather than raised, located at the
corpus's place in suite.yaml (`corpus`, or `tasks[i].corpus`).
"""

from __future__ import annotations

from pathlib import Path

from .config import CorpusSpec
from .data import Document
from .records import outside_problem, read_records, shown_path
from .yaml_problems import Problem, yaml_line

CORPUS_SUFFIXES = (".txt", ".md")
SUITE_CORPUS_AT: tuple[str | int, ...] = ("corpus",)


def corpus_field(at: tuple[str | int, ...]) -> str:
    """How a problem names the corpus at YAML path `at`: 'corpus' or 'tasks[2].corpus'."""
    return "".join(f"[{k}]" if isinstance(k, int) else ("." if i else "") + k for i, k in enumerate(at))


def load_corpus(path: Path, corpus: CorpusSpec | None, problems: list[Problem], *,
                at: tuple[str | int, ...] = SUITE_CORPUS_AT, allow_outside: bool = False) -> list[Document]:
    """The documents of `corpus` (none without one), declared at `at` in the suite.yaml at `path`;
    files outside the suite folder are problems unless `allow_outside` (see `records.outside_problem`)."""
    if corpus is None:
        return []
    c, docs, seen, shown_at = corpus, [], {}, corpus_field(at)
    before = len(problems)  # the caller's list may already hold other problems
    # the update's files come right after `files`: the order (and so the corpus hash) a suite had
    # when its update files were listed at the end of `files`
    for key, rel in [("files", rel) for rel in c.files] + [("update", rel) for rel in c.update]:
        f = path.parent / rel
        why = outside_problem(path.parent, f, allow_outside)
        if why is None and not f.is_file():
            why = f"file not found: {shown_path(f)}"
        if why:
            problems.append(Problem(shown_path(path), yaml_line(path, (*at, key)), f"{shown_at}.{key}", why))
            continue
        for line, rec in read_records(f, problems):
            shown = shown_path(f)
            did, text = rec.get(c.id_field), rec.get(c.text_field)
            if did is None:
                problems.append(Problem(shown, line, c.id_field, "missing document id"))
                continue
            if isinstance(did, bool) or not isinstance(did, (str, int)) or not str(did).strip():
                # a boolean id would silently become 'True'
                problems.append(Problem(shown, line, c.id_field, "expected a non-empty string or whole-number "
                                                                 f"document id, got {type(did).__name__}"))
                continue
            if not isinstance(text, str) or not text.strip():
                problems.append(Problem(shown, line, c.text_field, f"document {did!r} has no text"))
                continue
            if str(did) in seen:
                first = seen[str(did)]
                problems.append(Problem(shown, line, c.id_field, f"duplicate document id {did!r} (first at {first})"))
                continue
            seen[str(did)] = f"{shown}:{line}"
            meta = {k: v for k, v in rec.items() if k not in (c.id_field, c.title_field, c.text_field)}
            docs.append(Document(id=str(did), title=str(rec.get(c.title_field) or ""), text=text, meta=meta))
    if c.folder is not None:
        docs += _folder_documents(path, c.folder, at, seen, problems, allow_outside)
    if not docs and len(problems) == before:
        problems.append(Problem(shown_path(path), yaml_line(path, at), shown_at,
                                "the corpus is empty; expected at least one document"))
    return docs


def _folder_documents(path: Path, folder: str, at: tuple[str | int, ...], seen: dict[str, str],
                      problems: list[Problem], allow_outside: bool) -> list[Document]:
    """One Document per .txt/.md file under `folder` (sorted, so ids and order are stable)."""
    root = path.parent / folder
    line, field = yaml_line(path, (*at, "folder")), f"{corpus_field(at)}.folder"
    why = outside_problem(path.parent, root, allow_outside)
    if why:
        problems.append(Problem(shown_path(path), line, field, why))
        return []
    if not root.is_dir():
        problems.append(Problem(shown_path(path), line, field, f"folder not found: {shown_path(root)}"))
        return []
    docs = []
    files = sorted(f for f in root.rglob("*") if f.is_file() and f.suffix.lower() in CORPUS_SUFFIXES)
    if not files:
        problems.append(Problem(shown_path(path), line, field, f"no .txt or .md files in {shown_path(root)}"))
    for f in files:
        did = f.relative_to(root).as_posix()
        why = outside_problem(path.parent, f, allow_outside)  # a symlink in the folder may lead anywhere
        if why:
            problems.append(Problem(shown_path(path), line, field, why))
            continue
        try:
            text = f.read_text(encoding="utf-8")
        except UnicodeDecodeError as e:
            problems.append(Problem(shown_path(f), None, "",
                                    f"not valid UTF-8 (byte {e.start}); save the file as UTF-8"))
            continue
        if not text.strip():
            problems.append(Problem(shown_path(f), None, "", f"document {did!r} has no text"))
            continue
        if did in seen:
            problems.append(Problem(shown_path(f), None, "", f"duplicate document id {did!r} (first at {seen[did]})"))
            continue
        seen[did] = shown_path(f)
        heading = next((l.lstrip("#").strip() for l in text.splitlines() if l.startswith("#")), None)
        title = heading if f.suffix.lower() == ".md" and heading else f.stem.replace("_", " ")
        docs.append(Document(id=did, title=title, text=text.strip(), meta={"path": shown_path(f)}))
    return docs
