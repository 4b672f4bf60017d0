"""The errors a user can cause, and nothing else; `unknown_name` writes the commonest one's message.

`bench` prints a `BenchError` as one line (exit 2) and lets every other exception through with
its traceback: anything that is not one of these is a bug in trident, and hiding it behind a
one-line message would make a bug look like a user mistake. Raise the subclass that says whose
move it is; keep the cause (`raise ... from e`) so `TRIDENT_DEBUG=1` shows where it came from.
"""

from __future__ import annotations

import difflib


class BenchError(Exception):
    """A problem the user can fix: the message says what is wrong and what to do."""

    exit_code = 2


class ConfigError(BenchError):
    """A suite, a command-line option or a name that does not exist (arm, task, metric, ...)."""


class DataError(BenchError):
    """Examples or corpus documents an arm cannot use (too few, unknown labels, empty answers)."""


class ModelError(BenchError):
    """A model spec that cannot be resolved or loaded, or a dtype/device that cannot be used."""


class ResourceError(BenchError):
    """The machine ran out of something (disk, memory) or lacks a package or a GPU the choice needs."""


class TrainingError(BenchError):
    """Training could not produce a trustworthy model (NaN loss, out of memory at batch 1, ...)."""


class RetrievalError(BenchError):
    """Retrieval cannot run as declared (no corpus, no train examples, bad chunking)."""


def unknown_name(kind: str, name: str, known: list[str]) -> str:
    """'unknown metric 'acc'; did you mean 'accuracy'? known: ...' — used by every registry."""
    close = difflib.get_close_matches(name, known, n=1)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    return f"unknown {kind} '{name}'{hint} (known: {', '.join(sorted(known))})"
