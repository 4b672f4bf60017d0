"""Leakage between a suite's splits, found before anything runs (no model): `bench validate` and
`bench run` print a warning per finding, the runner writes leakage.json into the run directory, and
the report renders it. A leak is reported, never an error: the run goes on.

Checks, per task, each counting test examples (one may be counted by several checks):

- exact_duplicate: a test input equals a train or validation input once normalised (case,
  punctuation and white space; bench.text_overlap.normalise);
- near_duplicate: a test input's character n-gram set has Jaccard >= a threshold with a train or
  validation input's (exact duplicates are left to the check above);
- ngram_overlap: a test input shares one n-word sequence (13 words) with a train or validation
  input, the rule lm-evaluation-harness's decontamination counts by; inputs shorter than n words
  cannot be caught by it (the two checks above can);
- input_in_corpus: a test input appears word for word in a document of its task's corpus;
- reference_in_demos: a test reference appears in a demonstration (input or answer) that a prompt
  variant with `shots` puts in front of it (the very examples `bench.arms.prompt.pick_demos` draws);
- reference_in_pool: a test reference appears in a train example that an examples-mode retrieval
  variant may put in front of it. Which examples it retrieves needs the embedder (a model), so the
  whole train split, its retrieval pool, is searched: an upper bound on what the prompts hold.

Reference checks skip classification tasks (every demonstration shows a label: that is the task,
not a leak) and references shorter than `min_match_words` words ('yes', '5', '14 days' occur
anywhere by chance); the corpus check skips test inputs that short for the same reason.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field
from rich.console import Console
from rich.markup import escape

from .config import ArmSpec, PromptArm, RagArm, Strict
from .data import Example
from .text_overlap import SubstringIndex, near_duplicates, normalise, shingles, word_ngrams

if TYPE_CHECKING:
    from .suites import Suite, Task

LEAKAGE_FILE = "leakage.json"
"""What the runner writes into the run directory and the report reads back."""

Check = Literal["exact_duplicate", "near_duplicate", "ngram_overlap", "input_in_corpus", "reference_in_demos",
                "reference_in_pool"]


class LeakageThresholds(Strict):
    """Every threshold of the leakage checks, declared once."""

    char_ngram: int = Field(5, ge=1, description="characters per shingle in the near-duplicate check")
    near_jaccard: float = Field(
        0.8, gt=0, le=1, description="Jaccard similarity of two inputs' shingle sets at or above which the test "
                                     "input is a near duplicate")
    word_ngram: int = Field(
        13, ge=1, description="words per n-gram in the overlap check; one shared n-gram flags a test input "
                              "(13, as lm-evaluation-harness's decontamination counts)")
    min_match_words: int = Field(
        4, ge=1, description="texts searched for word for word (test references in demonstrations, test inputs "
                             "in the corpus) must have at least this many words once normalised: shorter ones "
                             "('yes', '5', '14 days') occur anywhere by chance")
    examples_shown: int = Field(3, ge=1, description="matches kept per task and check for the warning and report")


def describe(check: Check, th: LeakageThresholds) -> str:
    """What a flagged test example is, in the words of warnings and the report."""
    return {
        "exact_duplicate": "test inputs equal a train/validation input (case, punctuation and spaces ignored)",
        "near_duplicate": f"test inputs are near duplicates of a train/validation input (character "
                          f"{th.char_ngram}-gram Jaccard ≥ {th.near_jaccard:g}, not exact)",
        "ngram_overlap": f"test inputs share a {th.word_ngram}-word sequence with a train/validation input",
        "input_in_corpus": f"test inputs (of ≥ {th.min_match_words} words) appear word for word in the corpus",
        "reference_in_demos": f"test references (of ≥ {th.min_match_words} words) appear in the demonstrations "
                              "a prompt variant puts before them",
        "reference_in_pool": f"test references (of ≥ {th.min_match_words} words) appear in the train examples "
                             "an examples-mode retrieval variant retrieves demonstrations from",
    }[check]


@dataclass(frozen=True)
class Match:
    """One flagged test example and what it matched."""

    test_id: str
    """The test example's id."""
    other: str
    """What it matched, e.g. 'train ct-201', 'corpus document s12', '3-shot demonstration qa-s1-2'."""
    detail: str
    """How: the Jaccard, the shared n-gram or the reference found."""

    def text(self) -> str:
        return f"test {self.test_id} ~ {self.other} ({self.detail})"


@dataclass(frozen=True)
class CheckResult:
    """One check on one task."""

    task: str
    """The task's name."""
    check: Check
    """Which check."""
    flagged: int
    """Test examples it flagged."""
    checked: int
    """Test examples it could judge (for reference checks: those with a reference long enough)."""
    examples: tuple[Match, ...]
    """The first few matches (by test id), at most `examples_shown`."""


@dataclass(frozen=True)
class LeakageReport:
    """Every check that applies to the suite's tasks, clean ones included."""

    thresholds: LeakageThresholds
    """The thresholds the checks ran with."""
    results: tuple[CheckResult, ...]
    """Per task (suite order) and check (the order of `Check`)."""

    def findings(self) -> list[CheckResult]:
        return [r for r in self.results if r.flagged]

    def warnings(self) -> list[str]:
        """One line per (task, check) that flagged anything, with its first match."""
        return [f"leakage in {r.task}: {r.flagged} of {r.checked} {describe(r.check, self.thresholds)}; e.g. "
                f"{r.examples[0].text()}" for r in self.findings()]

    def print_warnings(self, console: Console, summary: bool = False) -> None:
        """A yellow warning line per finding; with `summary`, a line saying so when there is none."""
        for line in self.warnings():
            console.print(f"[yellow]warning[/yellow] {escape(line)}", highlight=False, soft_wrap=True)
        if summary and not self.findings():
            console.print(f"leakage: none found ({len(self.results)} checks on the tasks' test examples)")

    def to_json(self) -> dict[str, Any]:
        return {"thresholds": self.thresholds.model_dump(), "results": [asdict(r) for r in self.results]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LeakageReport:
        results = tuple(CheckResult(r["task"], r["check"], r["flagged"], r["checked"],
                                    tuple(Match(**m) for m in r["examples"])) for r in data["results"])
        return cls(LeakageThresholds.model_validate(data["thresholds"]), results)


def find_leakage(suite: Suite, arms: Sequence[ArmSpec] | None = None, tasks: Sequence[str] | None = None,
                 thresholds: LeakageThresholds | None = None) -> LeakageReport:
    """Run every check that applies on `tasks` (default: all) with the demonstrations of `arms`
    (default: the suite's arm variants), on the examples as `suite` holds them (after its limits)."""
    th = thresholds or LeakageThresholds()
    variants = list(suite.spec.arms if arms is None else arms)
    results: list[CheckResult] = []
    for name in tasks or list(suite.tasks):
        task = suite.tasks[name]
        corpus = task.corpus if task.corpus is not None else suite.corpus
        results += _input_checks(task, th)
        if corpus:
            index = SubstringIndex([(f"corpus document {d.id}", d.text) for d in corpus])
            results.append(_substring_check(task, "input_in_corpus", th, lambda e: [e.input], [index]))
        if task.spec.kind != "classification":
            results += _reference_checks(task, variants, suite.spec.seed, th)
    return LeakageReport(th, tuple(results))


def _result(task: Task, check: Check, th: LeakageThresholds, matches: list[Match], checked: int) -> CheckResult:
    matches = sorted(matches, key=lambda m: m.test_id)
    return CheckResult(task.name, check, len(matches), checked, tuple(matches[:th.examples_shown]))


def _input_checks(task: Task, th: LeakageThresholds) -> list[CheckResult]:
    """Test inputs against train and validation inputs: exact, near and n-gram overlap."""
    test = task.split("test")
    others = task.split("train") + task.split("validation")
    norm_test, norm_other = [normalise(e.input) for e in test], [normalise(e.input) for e in others]
    where = [f"{e.split} {e.id}" for e in others]
    first_of = {}
    for j, text in enumerate(norm_other):
        first_of.setdefault(text, j)
    exact = [Match(e.id, where[first_of[t]], "identical") for e, t in zip(test, norm_test) if t in first_of]
    near_found = near_duplicates([shingles(t, th.char_ngram) for t in norm_test],
                                 [shingles(t, th.char_ngram) for t in norm_other], th.near_jaccard)
    near = [Match(test[i].id, where[j], f"Jaccard {score:.2f}") for i, (j, score) in sorted(near_found.items())
            if norm_test[i] not in first_of]
    ngram_of: dict[str, int] = {}
    for j, text in enumerate(norm_other):
        for gram in word_ngrams(text, th.word_ngram):
            ngram_of.setdefault(gram, j)
    overlap = []
    for e, text in zip(test, norm_test):
        shared = next((g for g in word_ngrams(text, th.word_ngram) if g in ngram_of), None)
        if shared is not None:
            overlap.append(Match(e.id, where[ngram_of[shared]], f"'{shared}'"))
    return [_result(task, "exact_duplicate", th, exact, len(test)),
            _result(task, "near_duplicate", th, near, len(test)),
            _result(task, "ngram_overlap", th, overlap, len(test))]


def _substring_check(task: Task, check: Check, th: LeakageThresholds, phrases: Callable[[Example], Sequence[str]],
                     indexes: Sequence[SubstringIndex]) -> CheckResult:
    """Flag a test example when one of its phrases (`phrases(example)`: its input, or its references)
    long enough to count is found in one of `indexes` (the same for every test example: a prompt
    variant's demonstrations do not depend on the input)."""
    matches, checked = [], 0
    for e in task.split("test"):
        long_enough = [p for p in map(normalise, phrases(e)) if len(p.split()) >= th.min_match_words]
        if not long_enough:
            continue
        checked += 1
        hit = next(((p, label) for p in long_enough for index in indexes if (label := index.find(p))), None)
        if hit:
            phrase, label = hit
            matches.append(Match(e.id, label, f"'{phrase}'" if check != "input_in_corpus" else "whole input"))
    return _result(task, check, th, matches, checked)


def _demonstration_texts(examples: Sequence[Example], label: Callable[[Example], str]) -> SubstringIndex:
    # input and answer apart, so a reference is never found across the seam between them
    return SubstringIndex([(label(e), text) for e in examples for text in (e.input, e.target)])


def _reference_checks(task: Task, arms: Sequence[ArmSpec], seed: int, th: LeakageThresholds) -> list[CheckResult]:
    """Test references in the demonstrations of prompt variants with shots, and in the retrieval pool
    of examples-mode retrieval variants, that run on this task."""
    from .arms.prompt import pick_demos  # the prompt arm's own draw, so these are the demonstrations it uses

    applies = [a for a in arms if not a.tasks or task.name in a.tasks]
    shots = sorted({a.shots for a in applies if isinstance(a, PromptArm) and a.shots > 0})
    out = []
    if shots and task.split("train"):
        names = {k: ", ".join(a.name for a in applies if isinstance(a, PromptArm) and a.shots == k) for k in shots}
        demos = [_demonstration_texts(pick_demos(task, k, seed), lambda e, k=k: f"{names[k]} demonstration {e.id}")
                 for k in shots]
        out.append(_substring_check(task, "reference_in_demos", th, lambda e: e.targets, demos))
    pool_users = [a.name for a in applies if isinstance(a, RagArm) and a.mode == "examples"]
    if pool_users and task.split("train"):
        users = ", ".join(pool_users)
        pool = [_demonstration_texts(task.split("train"), lambda e: f"train {e.id} (retrieval pool of {users})")]
        out.append(_substring_check(task, "reference_in_pool", th, lambda e: e.targets, pool))
    return out
