"""Loads a suite's retrieval corpus into Documents, checking every one as it is read.

A corpus is JSONL files (an id, a title and a text per line) and/or a folder of .txt/.md files
(one document each); every problem is appended to the caller's list rather than raised.
"""

from __future__ import annotations

from pathlib import Path

from .config import SuiteSpec
from .data import Document
from .records import read_records, shown_path
from .yaml_problems import Problem, yaml_line

CORPUS_SUFFIXES = (".txt", ".md")


def load_corpus(path: Path, spec: SuiteSpec, problems: list[Problem]) -> list[Document]:
    """The documents of `spec.corpus` (none without one), for the suite at `path`."""
    if spec.corpus is None:
        return []
    c, docs, seen = spec.corpus, [], {}
    for rel in c.files:
        f = path.parent / rel
        if not f.is_file():
            problems.append(Problem(shown_path(path), yaml_line(path, ("corpus", "files")), "corpus.files",
                                    f"file not found: {shown_path(f)}"))
            continue
        for line, rec in read_records(f, problems):
            shown = shown_path(f)
            did, text = rec.get(c.id_field), rec.get(c.text_field)
            if did is None:
                problems.append(Problem(shown, line, c.id_field, "missing document id"))
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
        docs += _folder_documents(path, c.folder, seen, problems)
    if not docs and not problems:
        problems.append(Problem(shown_path(path), None, "corpus",
                                "the corpus is empty; expected at least one document"))
    return docs


def _folder_documents(path: Path, folder: str, seen: dict[str, str], problems: list[Problem]) -> list[Document]:
    """One Document per .txt/.md file under `folder` (sorted, so ids and order are stable)."""
    root = path.parent / folder
    line = yaml_line(path, ("corpus", "folder"))
    if not root.is_dir():
        problems.append(Problem(shown_path(path), line, "corpus.folder", f"folder not found: {shown_path(root)}"))
        return []
    docs = []
    files = sorted(f for f in root.rglob("*") if f.is_file() and f.suffix.lower() in CORPUS_SUFFIXES)
    if not files:
        problems.append(Problem(shown_path(path), line, "corpus.folder", f"no .txt or .md files in {shown_path(root)}"))
    for f in files:
        did = f.relative_to(root).as_posix()
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
