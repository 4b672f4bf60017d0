"""Reads data files (JSONL, CSV, parquet) into numbered records; unreadable lines become Problems.

JSONL is parsed here line by line so errors carry line numbers; CSV and parquet go through
`datasets` (row numbers). Files are named relative to the working directory (`shown_path`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .yaml_problems import Problem


def shown_path(path: Path) -> str:
    """How problems name a file: relative to the working directory when it is under it."""
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


OUTSIDE_OPT_IN = "--allow-outside-paths"


def outside_problem(root: Path, f: Path, allow_outside: bool) -> str | None:
    """Why `f` may not be read, or None. Data must live in the suite folder `root` (after '..' and
    symlinks are resolved): a suite from elsewhere could otherwise name any file the user can read
    (an SSH key, a password file) and copy it into prompts, predictions and reports. The person
    running the suite, not its author, opts out with --allow-outside-paths."""
    if allow_outside or f.resolve().is_relative_to(root.resolve()):
        return None
    return (f"{shown_path(f)} lies outside the suite folder (an absolute path, '..' or a symlink); "
            f"move it beside suite.yaml or pass {OUTSIDE_OPT_IN}")


def read_records(f: Path, problems: list[Problem]) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield (line or row number, record) from JSONL, CSV or parquet; bad lines become problems."""
    shown = shown_path(f)
    suffix = f.suffix.lower()
    if suffix in (".jsonl", ".json"):
        try:
            raw = f.read_bytes().decode("utf-8")
        except UnicodeDecodeError as e:
            line = f.read_bytes()[: e.start].count(b"\n") + 1
            problems.append(Problem(shown, line, "", f"not valid UTF-8 (byte {e.start}); save the file as UTF-8"))
            return
        for n, text in enumerate(raw.splitlines(), 1):
            if not text.strip():
                continue
            try:
                rec = json.loads(text)
            except json.JSONDecodeError as e:
                problems.append(Problem(shown, n, "", f"not valid JSON ({e.msg} at column {e.colno})"))
                continue
            if not isinstance(rec, dict):
                problems.append(Problem(shown, n, "", f"expected a JSON object per line, got {type(rec).__name__}"))
                continue
            yield n, rec
    elif suffix in (".csv", ".parquet"):
        import datasets

        try:
            ds = datasets.load_dataset("csv" if suffix == ".csv" else "parquet", data_files=str(f), split="train")
        except Exception as e:  # datasets raises many types; the message is what the user needs
            # The type only: the library's message may quote the file's first line, and that line
            # may be someone's secret if the path was wrong.
            expected = "comma-separated values under a header row" if suffix == ".csv" else "a parquet table"
            problems.append(Problem(shown, None, "", f"cannot read {suffix[1:]} ({type(e).__name__}); "
                                                     f"expected {expected}"))
            return
        first = 2 if suffix == ".csv" else 1  # CSV: row 1 is the header
        for i, rec in enumerate(ds):
            yield i + first, rec
    else:
        problems.append(Problem(shown, None, "",
                                f"unsupported data format '{suffix}'; expected .jsonl, .csv or .parquet"))
