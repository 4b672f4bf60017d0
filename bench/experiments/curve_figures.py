"""The learning curve's figures, from its cells' stored predictions alone (no model, no suite files).

Per arm variant, task and train size: every metric with its 95% bootstrap interval. Per pair of
variants on a task: a paired test at each train size both ran at (a variant that uses no train
data is the same cell at every size), Holm-corrected over those sizes, because the question
"from which size on does A beat B" looks at every size and would otherwise find a win by chance;
the smallest size whose corrected test says A beats B, and the same for B over A.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..decision import ALPHA
from ..predictions import ScoredPrediction
from ..stats import Estimate, holm, p_phrase
from .cells import CellRef, TaskInfo, estimate
from .paired import paired_test


@dataclass(frozen=True)
class Skipped:
    """A cell the plan left out at one size."""

    arm: str
    task: str
    size: int
    why: str


@dataclass(frozen=True)
class CurveRecord:
    """What learning_curve.json keeps to rebuild every figure from the stored predictions."""

    provenance: dict[str, Any]
    tasks: dict[str, TaskInfo]
    train_n: dict[str, int]
    """Task -> its full train split's size (the 'all' point)."""
    sizes: tuple[int, ...]
    """The sizes asked below the full split, ascending."""
    learners: tuple[str, ...]
    """Variants that use train data."""
    flat: tuple[str, ...]
    """Variants that use none: run once, with the full split."""
    skipped: tuple[Skipped, ...]
    cells: tuple[CellRef, ...]

    def size_of(self, cell: CellRef) -> int:
        """The train examples a cell's suite variant offered (its group's size, or the full split)."""
        size = cell.group.removeprefix("size-")
        return self.train_n[cell.task] if size == "all" else int(size)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> CurveRecord:
        return cls(d["provenance"], {t: TaskInfo.from_json(i) for t, i in d["tasks"].items()}, d["train_n"],
                   tuple(d["sizes"]), tuple(d["learners"]), tuple(d["flat"]),
                   tuple(Skipped(**s) for s in d["skipped"]), tuple(CellRef(**c) for c in d["cells"]))


@dataclass(frozen=True)
class Point:
    """One variant on one task at one train size."""

    arm: str
    task: str
    size: int
    flat: bool
    """The variant uses no train data: this one cell stands for every size."""
    metrics: dict[str, Estimate]
    cell: CellRef


@dataclass(frozen=True)
class SizeTest:
    """A minus B at one train size on the task's first metric."""

    size: int
    difference: float
    low: float
    high: float
    p_value: float
    p_holm: float
    """Holm-corrected over the sizes this pair was tested at."""
    test: str


@dataclass(frozen=True)
class PairCurve:
    """Two variants on one task across the train sizes."""

    task: str
    a: str
    b: str
    metric: str
    tests: tuple[SizeTest, ...]
    a_from: int | None
    """The smallest size at which A beats B significantly (Holm over sizes); None: not within the sizes tried."""
    b_from: int | None
    """The same for B over A."""

    def sentence(self) -> str:
        return f"{self._side(self.a, self.b, self.a_from)}; {self._side(self.b, self.a, self.b_from)}"

    def _side(self, winner: str, loser: str, size: int | None) -> str:
        if size is None:
            return f"{winner} beats {loser}: not within the sizes tried"
        t = next(t for t in self.tests if t.size == size)
        diff = t.difference if winner == self.a else -t.difference
        return (f"{winner} beats {loser} from {size} train examples ({self.metric} {diff:+.3f}, "
                f"{p_phrase(t.p_holm, 'Holm-corrected p')})")


@dataclass(frozen=True)
class CurveResult:
    """Everything learning_curve.json holds and the report draws."""

    record: CurveRecord
    points: tuple[Point, ...]
    pairs: tuple[PairCurve, ...]
    experiment: str = "learning-curve"

    def of(self, task: str) -> list[Point]:
        return [p for p in self.points if p.task == task]

    def sizes_of(self, task: str) -> list[int]:
        """The task's train sizes, ascending, the full split last."""
        return sorted({p.size for p in self.of(task)} | {self.record.train_n[task]})

    def to_json(self) -> dict[str, Any]:
        return {"experiment": self.experiment, "record": dataclasses.asdict(self.record),
                "points": [{"arm": p.arm, "task": p.task, "size": p.size, "flat": p.flat, "group": p.cell.group,
                            "metrics": {m: e.to_dict() for m, e in p.metrics.items()}} for p in self.points],
                "pairs": [{**dataclasses.asdict(p), "verdict": p.sentence()} for p in self.pairs]}


def curve_result(folder: Path, record: CurveRecord, *, n_boot: int) -> CurveResult:
    seed = int(record.provenance.get("seed", 0))
    rows = {c: c.predictions(folder) for c in record.cells}
    order = {arm: i for i, arm in enumerate(dict.fromkeys(c.arm for c in record.cells))}  # run order
    cells = sorted(record.cells, key=lambda c: (order[c.arm], record.size_of(c)))
    points = tuple(Point(c.arm, c.task, record.size_of(c), c.arm in record.flat,
                         {m: estimate(m, rows[c], seed=seed, n_boot=n_boot) for m in record.tasks[c.task].metrics}, c)
                   for c in cells)
    pairs = tuple(pair for task in record.tasks for pair in task_pairs(record, task, points, rows, seed))
    return CurveResult(record, points, pairs)


def task_pairs(record: CurveRecord, task: str, points: tuple[Point, ...], rows: dict[CellRef, list[ScoredPrediction]],
               seed: int) -> list[PairCurve]:
    """Every pair of the task's variants, unless both use no train data (the run's report has them)."""
    mine = [p for p in points if p.task == task]
    arms = list(dict.fromkeys(p.arm for p in mine))
    return [pair_curve(record, task, a, b, mine, rows, seed) for i, a in enumerate(arms) for b in arms[i + 1:]
            if not (a in record.flat and b in record.flat)]


def pair_curve(record: CurveRecord, task: str, a: str, b: str, points: list[Point],
               rows: dict[CellRef, list[ScoredPrediction]], seed: int) -> PairCurve:
    metric = record.tasks[task].primary
    sizes = sorted({p.size for p in points if p.arm in (a, b)})
    raw = []
    for size in sizes:
        ca, cb = _cell_at(points, a, size), _cell_at(points, b, size)
        if ca is not None and cb is not None:
            raw.append((size, paired_test(metric, rows[ca], rows[cb], seed=seed)))
    adjusted = holm([c.p_value for _, c in raw]) if raw else []
    tests = tuple(SizeTest(size, c.difference, c.low, c.high, c.p_value, p, c.test)
                  for (size, c), p in zip(raw, adjusted))
    a_from = next((t.size for t in tests if t.p_holm < ALPHA and t.difference > 0), None)
    b_from = next((t.size for t in tests if t.p_holm < ALPHA and t.difference < 0), None)
    return PairCurve(task, a, b, metric, tests, a_from, b_from)


def _cell_at(points: list[Point], arm: str, size: int) -> CellRef | None:
    """The arm's cell at `size`; a variant that uses no train data has one cell for every size."""
    for p in points:
        if p.arm == arm and (p.size == size or p.flat):
            return p.cell
    return None
