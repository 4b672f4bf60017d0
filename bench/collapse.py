"""Predictions that collapsed: an arm whose outputs say nothing about the task, however they score.

A one-epoch LoRA that answers the majority label for every test example scores exactly the
majority floor; read as an ordinary row, that looks like a result. `diagnose` looks at one cell's
stored predictions (no model) and names what went wrong, so the verdict and every report format
can say it in words:

- one_label: a classification arm gives one label for nearly every example, although the test
  references do not hold that label nearly that often;
- empty_outputs: the output is empty (or whitespace) for most examples;
- identical_outputs: a qa or generation arm gives the same answer to nearly every distinct input,
  although the references do not hold that answer nearly that often;
- truncated_outputs: a qa or generation arm runs into the task's `max_new_tokens` for most examples.

Each threshold is declared once, here; the fine-tune's evaluation log (bench/training/recipe.py)
imports COLLAPSE_SHARE so training and the report call the same thing a collapse.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from .predictions import ScoredPrediction

COLLAPSE_SHARE = 0.9
"""A model giving one label (or one answer) for at least this share of examples is said to collapse,
unless the references themselves hold that label for this share too (then answering it is right)."""

DEGENERATE_SHARE = 0.5
"""Empty or truncated outputs for more than this share of examples (most of them) mark an arm's
outputs as broken: no reference concentration can make an empty answer right."""

COLLAPSE_MIN_EXAMPLES = 5
"""Fewer test examples than this are too few to call one label's share a collapse (with two labels,
four answers alike happen by chance one time in eight). Empty and truncated outputs need no minimum."""

Kind = Literal["one_label", "empty_outputs", "truncated_outputs", "identical_outputs"]

KIND_NAMES: dict[str, str] = {"one_label": "collapsed onto one label", "empty_outputs": "empty outputs",
                              "truncated_outputs": "truncated outputs",
                              "identical_outputs": "collapsed onto one output"}
"""Each kind in the words the warnings and verdicts use."""


@dataclass(frozen=True)
class Collapse:
    """What is wrong with one (arm variant, task)'s predictions."""

    arm: str
    """The arm variant."""
    task: str
    """The task."""
    kind: Kind
    """one_label, empty_outputs, truncated_outputs or identical_outputs."""
    share: float
    """Share of the test examples (distinct inputs, for identical_outputs) the diagnosis is about."""
    detail: str
    """The counts behind it in words, e.g. "predicted 'payment' for 6 of 6 test examples (100%), while the
    references hold it for 1 (17%)"."""
    output: str = ""
    """The repeated label or answer (one_label, identical_outputs); '' for the other kinds."""
    max_new_tokens: int | None = None
    """The token limit the outputs ran into (truncated_outputs)."""

    def warning(self) -> str:
        """The line every report format shows under the task's table."""
        return f"{self.arm}: {KIND_NAMES[self.kind]}: {self.detail}"

    def sentence(self, *, at_floor: bool = False) -> str:
        """What the verdict says about the arm; `at_floor`: its primary score equals the floor's."""
        share = f"{self.share:.0%} of test examples"
        if self.kind == "one_label":
            score = "the majority floor's" if at_floor else "that of answering one label every time"
            return (f"{self.arm} predicted '{self.output}' for {share} ({KIND_NAMES[self.kind]}): its score is "
                    f"{score}, not evidence that it learned the task.")
        if self.kind == "identical_outputs":
            return (f"{self.arm} gave the same output ('{_short(self.output)}') for {self.share:.0%} of test "
                    f"inputs ({KIND_NAMES[self.kind]}): its score is that one answer's, not evidence that it can do "
                    "the task.")
        if self.kind == "empty_outputs":
            return (f"{self.arm} gave an empty output for {share} ({KIND_NAMES[self.kind]}): its score is not "
                    "evidence that it can do the task.")
        return (f"{self.arm} ran into the {self.max_new_tokens}-token limit for {share} ({KIND_NAMES[self.kind]}): "
                "its score rates answers cut off mid-way; raise the task's max_new_tokens or find why it does not "
                "stop.")


def diagnose(arm: str, task: str, kind: str, predictions: Sequence[ScoredPrediction],
             max_new_tokens: int | None = None) -> Collapse | None:
    """The cell's collapse, or None when its outputs look like answers. At most one per cell, the most
    telling first: empty outputs, then one label (classification) or one answer (qa, generation), then
    truncation (qa, generation; only when the task's `max_new_tokens` is known)."""
    if not predictions:
        return None
    found = [_empty(arm, task, predictions)]
    if kind == "classification":
        found.append(_one_label(arm, task, predictions))
    else:
        found += [_identical(arm, task, predictions),
                  _truncated(arm, task, predictions, max_new_tokens) if max_new_tokens else None]
    return next((c for c in found if c is not None), None)


def _norm(text: str) -> str:
    # 'Yes', ' yes ' and 'yes\n' are one answer; the metrics normalise at least this much too
    return " ".join(text.split()).casefold()


def _short(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _count(n: int, total: int) -> str:
    return f"{n} of {total} test examples ({n / total:.0%})"


def _empty(arm: str, task: str, predictions: Sequence[ScoredPrediction]) -> Collapse | None:
    n = sum(1 for p in predictions if not p.output.strip())
    share = n / len(predictions)
    if share <= DEGENERATE_SHARE:
        return None
    return Collapse(arm, task, "empty_outputs", share, f"gave an empty output for {_count(n, len(predictions))}")


def _top(outputs: Sequence[str], references: Sequence[Sequence[str]]) -> tuple[str, int, int]:
    """The most frequent output (first seen on a tie), how often it was given, and how many of the
    references hold it (an example with several acceptable answers counts once)."""
    top, n = Counter(_norm(o) for o in outputs).most_common(1)[0]
    in_refs = sum(1 for refs in references if top in {_norm(r) for r in refs})
    return top, n, in_refs


def _one_label(arm: str, task: str, predictions: Sequence[ScoredPrediction]) -> Collapse | None:
    total = len(predictions)
    if total < COLLAPSE_MIN_EXAMPLES:
        return None
    top, n, in_refs = _top([p.output for p in predictions], [p.references for p in predictions])
    # a test set that really is 95% one label is answered right by predicting it: not a collapse
    if n / total < COLLAPSE_SHARE or in_refs / total >= COLLAPSE_SHARE:
        return None
    label = next(p.output.strip() for p in predictions if _norm(p.output) == top)  # as the arm wrote it
    detail = (f"predicted '{label}' for {_count(n, total)}, while the references hold it for {in_refs} "
              f"({in_refs / total:.0%})")
    return Collapse(arm, task, "one_label", n / total, detail, output=label)


def _identical(arm: str, task: str, predictions: Sequence[ScoredPrediction]) -> Collapse | None:
    # one vote per distinct input: a test set that repeats an input may rightly get one answer for both
    # (run directories that did not store inputs count every example as distinct)
    distinct = list({p.input or f"id:{p.id}": p for p in predictions}.values())
    total = len(distinct)
    if total < COLLAPSE_MIN_EXAMPLES:
        return None
    top, n, in_refs = _top([p.output for p in distinct], [p.references for p in distinct])
    if not top or n / total < COLLAPSE_SHARE or in_refs / total >= COLLAPSE_SHARE:
        return None
    answer = next(p.output.strip() for p in distinct if _norm(p.output) == top)
    detail = (f"gave the same output ('{_short(answer)}') for {n} of {total} distinct test inputs ({n / total:.0%}), "
              f"while the references hold it for {in_refs} ({in_refs / total:.0%})")
    return Collapse(arm, task, "identical_outputs", n / total, detail, output=answer)


def _truncated(arm: str, task: str, predictions: Sequence[ScoredPrediction], max_new_tokens: int) -> Collapse | None:
    # the decoder stops at the end-of-turn token; an output as long as the budget never reached it
    n = sum(1 for p in predictions if p.prediction.output_tokens >= max_new_tokens)
    share = n / len(predictions)
    if share <= DEGENERATE_SHARE:
        return None
    detail = f"stopped at the {max_new_tokens}-token limit (max_new_tokens) for {_count(n, len(predictions))}"
    return Collapse(arm, task, "truncated_outputs", share, detail, max_new_tokens=max_new_tokens)
