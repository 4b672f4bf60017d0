"""The seed spread's figures, from its cells' stored predictions alone (no model, no suite files).

Per variant and task: the first metric at each training seed (with its 95% bootstrap interval),
their mean, standard deviation, min and max. Per seeded variant against every other variant of
the task: the paired test at each seed (as a run's decision makes it) and the weakest of them, and
the test over seeds and examples (bench.experiments.seed_stats), Holm-corrected over the task's
comparisons, which gives the verdict.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..decision import ALPHA
from ..metrics import get_metric
from ..predictions import ScoredPrediction
from ..stats import Comparison, Estimate, holm, p_phrase
from .cells import CellRef, TaskInfo, estimate, spread
from .paired import paired_test
from .seed_stats import SeedAwareTest, seeds_and_examples

FIXED = "fixed"
"""The group of the variants trained once or not at all (run as `bench run` runs them)."""


@dataclass(frozen=True)
class SeedRecord:
    """What seed_spread.json keeps to rebuild every figure from the stored predictions."""

    provenance: dict[str, Any]
    tasks: dict[str, TaskInfo]
    seeds: tuple[int, ...]
    seeded: tuple[str, ...]
    """The variants trained with each seed: the fine-tunes asked and the retrieval variants built on them."""
    cells: tuple[CellRef, ...]

    @staticmethod
    def seed_of(cell: CellRef) -> int | None:
        return None if cell.group == FIXED else int(cell.group.removeprefix("seed-"))

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> SeedRecord:
        return cls(d["provenance"], {t: TaskInfo.from_json(i) for t, i in d["tasks"].items()}, tuple(d["seeds"]),
                   tuple(d["seeded"]), tuple(CellRef(**c) for c in d["cells"]))


@dataclass(frozen=True)
class ArmSpread:
    """One variant on one task: its first metric at each training seed and their spread."""

    arm: str
    task: str
    seeded: bool
    seeds: tuple[int | None, ...]
    """The training seed of each score (None: a variant run once)."""
    scores: tuple[Estimate, ...]
    mean: float
    sd: float
    """Sample standard deviation over seeds (nan for one score)."""
    low: float
    """The lowest seed's score."""
    high: float
    """The highest seed's score."""


@dataclass(frozen=True)
class SeedComparison:
    """A seeded variant against another variant of the task, on the task's first metric."""

    task: str
    arm: str
    other: str
    metric: str
    per_seed: tuple[tuple[int | None, Comparison], ...]
    """The paired test at each seed (against the other's cell of the same seed, or its only cell)."""
    seed_aware: SeedAwareTest
    p_holm: float
    """The seed-aware p-value, Holm-corrected over the task's comparisons."""

    @property
    def weakest_p(self) -> float:
        """The per-seed tests reported as the weakest of them (the largest p-value)."""
        return max(c.p_value for _, c in self.per_seed)

    @property
    def every_seed_significant(self) -> bool:
        """Each seed's paired test is significant, all in the direction of the mean gap."""
        sign = 1 if self.seed_aware.difference > 0 else -1
        return all(c.p_value < ALPHA and c.difference * sign > 0 for _, c in self.per_seed)


@dataclass(frozen=True)
class SeedResult:
    """Everything seed_spread.json holds and the report draws."""

    record: SeedRecord
    spreads: tuple[ArmSpread, ...]
    comparisons: tuple[SeedComparison, ...]
    experiment: str = "seed-spread"

    def spread_of(self, arm: str, task: str) -> ArmSpread:
        return next(s for s in self.spreads if s.arm == arm and s.task == task)

    def to_json(self) -> dict[str, Any]:
        return {"experiment": self.experiment, "record": dataclasses.asdict(self.record),
                "spreads": [dataclasses.asdict(s) for s in self.spreads],
                "comparisons": [{**dataclasses.asdict(c), "weakest_p": c.weakest_p, "verdict": verdict(self, c)}
                                for c in self.comparisons]}


def seed_result(folder: Path, record: SeedRecord, *, n_boot: int) -> SeedResult:
    seed = int(record.provenance.get("seed", 0))
    rows = {c: c.predictions(folder) for c in record.cells}
    spreads, comparisons = [], []
    for task, info in record.tasks.items():
        cells = {arm: [c for c in record.cells if c.task == task and c.arm == arm]
                 for arm in dict.fromkeys(c.arm for c in record.cells if c.task == task)}
        spreads += [arm_spread(record, arm, task, own, rows, info.primary, seed, n_boot) for arm, own in cells.items()]
        comparisons += task_comparisons(record, task, cells, rows, info.primary, seed, n_boot)
    return SeedResult(record, tuple(spreads), tuple(comparisons))


def arm_spread(record: SeedRecord, arm: str, task: str, cells: list[CellRef],
               rows: dict[CellRef, list[ScoredPrediction]], metric: str, seed: int, n_boot: int) -> ArmSpread:
    scores = tuple(estimate(metric, rows[c], seed=seed, n_boot=n_boot) for c in cells)
    mean, sd, low, high = spread([s.value for s in scores])
    return ArmSpread(arm, task, arm in record.seeded, tuple(record.seed_of(c) for c in cells), scores, mean, sd,
                     low, high)


def task_comparisons(record: SeedRecord, task: str, cells: dict[str, list[CellRef]],
                     rows: dict[CellRef, list[ScoredPrediction]], metric: str, seed: int,
                     n_boot: int) -> list[SeedComparison]:
    """Each seeded variant against every other variant of the task (a pair of seeded ones once)."""
    arms = list(cells)
    # two seeded variants are compared once, in the order they ran
    pairs = [(a, b) for i, a in enumerate(arms) if a in record.seeded for b in arms
             if b != a and not (b in record.seeded and arms.index(b) < i)]
    raw = [_compare(record, task, a, b, cells, rows, metric, seed, n_boot) for a, b in pairs]
    adjusted = holm([r[1].p_value for r in raw]) if raw else []
    return [SeedComparison(task, a, b, metric, per_seed, test, p)
            for (a, b), (per_seed, test), p in zip(pairs, raw, adjusted)]


def _compare(record: SeedRecord, task: str, a: str, b: str, cells: dict[str, list[CellRef]],
             rows: dict[CellRef, list[ScoredPrediction]], metric: str, seed: int,
             n_boot: int) -> tuple[tuple[tuple[int | None, Comparison], ...], SeedAwareTest]:
    b_by_seed = {record.seed_of(c): c for c in cells[b]}

    def partner(cell: CellRef) -> CellRef:
        """B's cell of the same training seed; a variant run once has one cell for every seed."""
        return b_by_seed.get(record.seed_of(cell), cells[b][0])

    per_seed = tuple((record.seed_of(c), paired_test(metric, rows[c], rows[partner(c)], seed=seed)) for c in cells[a])
    ids = sorted(r.id for r in rows[cells[a][0]])
    refs = [list(_by_id(rows[cells[a][0]])[i].references) for i in ids]

    def outputs(arm: str) -> list[list[str]]:
        return [[_by_id(rows[c])[i].output for i in ids] for c in cells[arm]]

    test = seeds_and_examples(get_metric(metric), outputs(a), outputs(b), refs, n_boot=n_boot, seed=seed)
    return per_seed, test


def _by_id(rows: list[ScoredPrediction]) -> dict[str, ScoredPrediction]:
    return {r.id: r for r in rows}


def verdict(result: SeedResult, c: SeedComparison) -> str:
    """One sentence, never stronger than the test over seeds and examples; it says when each seed's
    own paired test would have claimed more, and when the seeds spread wider than the gap."""
    t, mine = c.seed_aware, result.spread_of(c.arm, c.task)
    ahead, behind = (c.arm, c.other) if t.difference > 0 else (c.other, c.arm)
    gap = (f"{c.metric} {c.arm} − {c.other} {t.difference:+.3f} [{t.low:+.3f}, {t.high:+.3f}] over "
           f"{len(mine.seeds)} seeds and {t.n} examples, {p_phrase(c.p_holm, 'Holm-corrected p')}")
    spreads = "; ".join(_spread_words(result.spread_of(arm, c.task)) for arm in (c.arm, c.other)
                        if result.spread_of(arm, c.task).seeded)
    if c.p_holm < ALPHA:
        text = f"{ahead} beats {behind} ({gap}): the gap holds against training variance ({spreads})."
    elif c.every_seed_significant:
        text = (f"Each seed's paired test puts {ahead} ahead of {behind} (the weakest {p_phrase(c.weakest_p)}), but "
                f"over seeds and examples the gap is not significant ({gap}): {spreads}, too wide for "
                f"{len(mine.seeds)} seeds to tell the arms apart.")
    else:
        text = f"No significant difference between {c.arm} and {c.other} over seeds and examples ({gap}; {spreads})."
    if mine.high - mine.low > abs(t.difference):
        text += f" {c.arm}'s seeds spread wider ({mine.high - mine.low:.3f}) than the gap."
    if _trained_once(result, c.other, c.task):
        text += f" {c.other} was trained once: its own seed variance is not counted."
    return text


def _spread_words(s: ArmSpread) -> str:
    return f"{s.arm}'s seeds score {s.low:.3f} to {s.high:.3f}, sd {s.sd:.3f}"


def _trained_once(result: SeedResult, arm: str, task: str) -> bool:
    return arm not in result.record.seeded and any(
        c.train_s is not None for c in result.record.cells if c.arm == arm and c.task == task)
