"""Write the control set's data files from its sources (`python -m bench.control.make_control`).

Multiple-choice items (written knowledge and common sense, templated reading passages) go to
data/general_mc.jsonl with their options lettered A-D in the input; the correct option's letter
rotates A, B, C, D through the file, so no letter is right more often than another (a model that
always says 'A' scores 25%). Short-answer items (written, and templated sums) go to
data/general_short.jsonl. The output is deterministic: tests/test_forgetting.py checks that the
shipped files are exactly what this writes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .templated import reading_items, sums
from .written_mc import COMMON_SENSE, KNOWLEDGE, MC
from .written_short import WRITTEN

DATA = Path(__file__).parent / "data"
LETTERS = ("A", "B", "C", "D")
READING_ITEMS = 100
SUMS = 40


def lettered(question: str, options: list[str]) -> str:
    """The input the model sees: the question, then one lettered option per line."""
    return "\n".join([question, *[f"{letter}. {text}" for letter, text in zip(LETTERS, options)]])


def mc_rows() -> list[dict[str, Any]]:
    reading = [(f"{r.passage}\n{r.question}", r.answer, *r.wrong) for r in reading_items(READING_ITEMS)]
    sources: list[tuple[str, list[MC]]] = [("knowledge", KNOWLEDGE), ("common_sense", COMMON_SENSE),
                                          ("reading", reading)]
    rows = []
    for category, items in sources:
        for i, (question, right, *wrong) in enumerate(items, start=1):
            place = len(rows) % len(LETTERS)
            options = wrong[:place] + [right] + wrong[place:]
            rows.append({"id": f"{category}-{i:03d}", "category": category, "question": question, "options": options,
                         "label": LETTERS[place], "input": lettered(question, options)})
    return rows


def short_rows() -> list[dict[str, Any]]:
    sources = [*WRITTEN.items(), ("arithmetic", sums(SUMS))]
    return [{"id": f"{category}-{i:03d}", "category": category, "question": question, "answers": list(answers)}
            for category, items in sources for i, (question, answers) in enumerate(items, start=1)]


def render(rows: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)


FILES = {"general_mc.jsonl": mc_rows, "general_short.jsonl": short_rows}
"""Data file -> what writes its rows."""


def main() -> None:
    DATA.mkdir(exist_ok=True)
    for name, rows in FILES.items():
        (DATA / name).write_text(render(rows()), encoding="utf-8")
        print(f"{DATA / name}: {len(rows())} items")


if __name__ == "__main__":
    main()
