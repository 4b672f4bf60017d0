"""From a loaded run to a decision: paired tests against the best arm, costs, break-even, verdicts.

Arms that cannot be told apart are priced at a query volume (one-off training seconds plus the
volume times the seconds per query), so a fine-tune's training is weighed against the queries it
makes cheaper rather than ranked before them.

Reads only results (through `bench.results`): no model, no torch. `decide` returns typed
`TaskDecision`s; `analyse` is the same as the dicts decision.json stores.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .collapse import Collapse, diagnose
from .config import DEFAULT_QUERY_VOLUME, query_volume_problem
from .errors import ConfigError
from .metrics import get_metric
from .predictions import ScoredPrediction
from .results import ArmCosts, RunResults, TaskResults, load_run
from .stats import holm, mcnemar, paired_bootstrap

ALPHA = 0.05
# A per-query saving smaller than this share of the dearer arm's latency is not counted: on the
# 2-core CPU the same cell's latency varied by up to 17% between identical runs, and a merged
# LoRA (the base model's exact computation) came out 13% faster than zero-shot in one run.
LATENCY_NOISE = 0.25


@dataclass(frozen=True)
class PairedTest:
    """The best arm against another arm on one metric, on the examples both predicted."""

    metric: str
    """The metric compared."""
    difference: float
    """best arm's score minus the other arm's."""
    low: float
    """Lower end of the difference's 95% paired-bootstrap interval."""
    high: float
    """Upper end of that interval."""
    p_value: float
    """Two-sided p-value for 'no difference' (exact McNemar for accuracy, paired bootstrap otherwise)."""
    test: str
    """Which test gave p_value."""
    n: int
    """Examples compared."""
    p_holm: float
    """p_value after Holm's correction across the task's comparisons on this metric."""


@dataclass(frozen=True)
class BreakEven:
    """When a fine-tune's training time is repaid by queries cheaper than another arm's."""

    trained: str
    """The trained arm variant."""
    versus: str
    """The untrained arm variant it is compared with."""
    train_s: float
    """Training seconds to repay."""
    saved_s_per_query: float
    """The other arm's latency minus the trained arm's (negative: the trained arm is dearer)."""
    queries: int | None
    """Queries until training is repaid; None when the saving is nil or within timing noise."""
    why_none: str | None
    """Why there is no count ('never (...)'); None when there is one."""


@dataclass(frozen=True)
class Crossover:
    """Two arms that cannot be told apart, priced in total seconds (one-off training plus queries):
    the query volume from which the arm with the cheaper queries has repaid its larger one-off cost."""

    cheaper_from: str
    """The arm with the cheaper queries and the larger one-off cost: cheaper in all from `queries` on."""
    cheaper_below: str
    """The other arm: cheaper in all below `queries`."""
    extra_train_s: float
    """cheaper_from's one-off (training) seconds minus cheaper_below's."""
    saved_s_per_query: float
    """cheaper_below's seconds per query minus cheaper_from's."""
    queries: int
    """The smallest query volume at which cheaper_from costs less in all."""
    within_noise: bool
    """The per-query saving is within timing noise (LATENCY_NOISE of cheaper_below's latency), so the
    crossover may not be real."""


@dataclass(frozen=True)
class Pricing:
    """The arms that cannot be told apart, priced at the decision's query volume."""

    cheapest: str
    """The arm with the least total seconds at the volume (on a tie the best arm, then the first declared)."""
    total_s: float
    """cheapest's one-off training seconds plus the volume times its seconds per query."""
    crossovers: list[Crossover]
    """Every pair of those arms whose order by total seconds changes with the volume (a pair where one
    arm costs less at every volume has none)."""

    @property
    def cheaper_below(self) -> Crossover | None:
        """The crossover under which another arm is cheaper than `cheapest` (its cheaper queries
        repay its training only from there); the highest such volume, None if there is none."""
        below = [c for c in self.crossovers if c.cheaper_from == self.cheapest]
        return max(below, key=lambda c: c.queries, default=None)

    @property
    def cheaper_from(self) -> Crossover | None:
        """The crossover from which another arm's cheaper queries have repaid its larger one-off cost
        and it is cheaper than `cheapest`; the lowest such volume, None if there is none."""
        above = [c for c in self.crossovers if c.cheaper_below == self.cheapest]
        return min(above, key=lambda c: c.queries, default=None)

    def to_json(self) -> dict[str, Any]:
        return {"cheapest": self.cheapest, "total_s": self.total_s, "crossovers": [asdict(c) for c in self.crossovers]}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Pricing:
        return cls(d["cheapest"], d["total_s"], [Crossover(**c) for c in d["crossovers"]])


@dataclass(frozen=True)
class TaskDecision:
    """Everything decided about one task (one entry of decision.json)."""

    primary: str
    """The metric that decides the best arm (the task's first)."""
    best: str
    """The arm variant with the highest primary score."""
    comparisons: dict[str, dict[str, PairedTest]]
    """Every other arm variant -> metric -> its test against the best arm."""
    costs: dict[str, ArmCosts]
    """Arm variant -> what it cost."""
    break_even: list[BreakEven]
    """Break-even points of every trained arm against every dearer untrained one."""
    verdict: str
    """One paragraph, never stronger than the statistics."""
    query_volume: int = DEFAULT_QUERY_VOLUME
    """Queries every arm is priced at: one-off training seconds plus this many times the seconds per query."""
    pricing: Pricing | None = None
    """The best arm and those that cannot be told apart from it, priced at query_volume; None when fewer
    than two of them have a measured latency."""
    collapses: list[Collapse] = field(default_factory=list)
    """The arms whose predictions collapsed (one label, empty, truncated or identical outputs), in the
    task's arm order; the verdict names each, and every report format warns under the task's table."""

    def collapse(self, arm: str) -> Collapse | None:
        """The arm's collapse; None when its outputs look like answers."""
        return next((c for c in self.collapses if c.arm == arm), None)

    def total_s(self, arm: str) -> float | None:
        """The arm's total seconds at query_volume; None without a measured latency."""
        return self.costs[arm].total_s(self.query_volume)

    def vs_best(self, arm: str) -> PairedTest | None:
        """The arm's test against the best arm on the primary metric; None for the best arm itself."""
        return self.comparisons.get(arm, {}).get(self.primary)

    def to_json(self) -> dict[str, Any]:
        return {"primary": self.primary, "best": self.best,
                "comparisons": {a: {m: asdict(t) for m, t in c.items()} for a, c in self.comparisons.items()},
                "costs": {a: c.to_json() for a, c in self.costs.items()},
                "break_even": [asdict(b) for b in self.break_even], "verdict": self.verdict,
                "query_volume": self.query_volume, "totals_s": {a: rounded_s(self.total_s(a)) for a in self.costs},
                "pricing": self.pricing.to_json() if self.pricing else None,
                "collapses": [asdict(c) for c in self.collapses]}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> TaskDecision:
        """Read an entry of decision.json back, including those written before `why_none` or the query
        volume or the collapses existed (`totals_s` is derived from the costs, so it is not read)."""
        breaks = [BreakEven(**{"why_none": None, **b}) for b in d["break_even"]]
        pricing = Pricing.from_json(d["pricing"]) if d.get("pricing") else None
        return cls(d["primary"], d["best"],
                   {a: {m: PairedTest(**t) for m, t in c.items()} for a, c in d["comparisons"].items()},
                   {a: ArmCosts.from_json(c) for a, c in d["costs"].items()}, breaks, d["verdict"],
                   d.get("query_volume", DEFAULT_QUERY_VOLUME), pricing,
                   [Collapse(**c) for c in d.get("collapses", [])])


def rounded_s(seconds: float | None) -> float | None:
    """Seconds to the millisecond for decision.json and results.csv (a sum of floats ends in ...99999)."""
    return None if seconds is None else round(seconds, 3)


def analyse(run_dir: Path, *, seed: int = 0, query_volume: int | None = None) -> dict[str, Any]:
    """decision.json's content for a run directory: `decide` in the JSON form."""
    return {task: d.to_json() for task, d in decide(load_run(run_dir), seed=seed, query_volume=query_volume).items()}


def decisions_from_json(decision: dict[str, Any]) -> dict[str, TaskDecision]:
    return {task: TaskDecision.from_json(d) for task, d in decision.items()}


def decide(run: RunResults, *, seed: int = 0, query_volume: int | None = None) -> dict[str, TaskDecision]:
    """Per task with arms: the best arm by the first metric, paired tests of every other arm
    against it (Holm-corrected within the task), cost per arm, break-even points, the arms that
    cannot be told apart priced at `query_volume` (None: the run's), the arms whose predictions
    collapsed, and a verdict."""
    volume = run.query_volume if query_volume is None else query_volume
    problem = query_volume_problem(volume)
    if problem:
        raise ConfigError(f"--query-volume: {problem}")
    out = {}
    for name, task in run.tasks.items():
        if not task.arms:
            continue
        primary = task.metrics[0]
        best = max(task.arms, key=lambda a: task.arms[a].metrics[primary].value)
        rows = {a: {p.id: p for p in run.predictions(a, name)} for a in task.arms}
        comparisons = _paired_tests(task, best, rows, seed)
        costs = {a: run.costs(a, name) for a in task.arms}
        collapses = _collapses(run, task, rows)
        text = verdict(name, task, primary, best, comparisons, costs, query_volume=volume, gpu=run.gpu,
                       collapses=collapses)
        out[name] = TaskDecision(primary, best, comparisons, costs, break_even_points(costs), text, volume,
                                 price(costs, tied_arms(best, comparisons, primary), volume), collapses)
    return out


def _collapses(run: RunResults, task: TaskResults, rows: dict[str, dict[str, ScoredPrediction]]) -> list[Collapse]:
    """Every arm of the task whose stored predictions collapsed, in the task's arm order."""
    found = [diagnose(arm, task.name, task.kind, list(rows[arm].values()), run.max_new_tokens.get(task.name))
             for arm in task.arms]
    return [c for c in found if c is not None]


def _paired_tests(task: TaskResults, best: str, rows: dict[str, dict[str, ScoredPrediction]],
                  seed: int) -> dict[str, dict[str, PairedTest]]:
    """Every arm against the best on the examples both predicted; p-values Holm-corrected per metric."""
    raw: dict[str, dict[str, dict[str, Any]]] = {}
    ids = sorted(rows[best])
    for arm in task.arms:
        if arm == best:
            continue
        common = [i for i in ids if i in rows[arm]]
        refs = [rows[best][i].references for i in common]
        pa, pb = [rows[best][i].output for i in common], [rows[arm][i].output for i in common]
        raw[arm] = {m: paired_bootstrap(get_metric(m), pa, pb, refs, seed=seed).to_dict() for m in task.metrics}
        if "accuracy" in task.metrics:
            # accuracy is a paired binary outcome: the exact McNemar test is the right test
            # (the bootstrap's p-value is unreliable on small test sets); its CI is kept.
            raw[arm]["accuracy"]["p_value"] = mcnemar([p.strip() in r for p, r in zip(pa, refs)],
                                                      [p.strip() in r for p, r in zip(pb, refs)])
            raw[arm]["accuracy"]["test"] = "McNemar (exact)"
    for m in task.metrics:
        arms = list(raw)
        for arm, p in zip(arms, holm([raw[a][m]["p_value"] for a in arms]) if arms else []):
            raw[arm][m]["p_holm"] = p
    return {arm: {m: PairedTest(**t) for m, t in tests.items()} for arm, tests in raw.items()}


def train_seconds(costs: dict[str, Any]) -> float | None:
    """Training seconds in a flat cost dict (decision.json's form); None for an arm that did not train."""
    return ArmCosts.from_json(costs).train_s


def break_even_points(costs: dict[str, ArmCosts]) -> list[BreakEven]:
    """For each trained arm and each untrained arm whose queries cost more: how many queries
    until the training time is repaid by the cheaper queries (measured latency per query)."""
    out = []
    for ft, fc in costs.items():
        t = fc.train_s
        if t is None or fc.latency_s is None:
            continue
        for other, oc in costs.items():
            if other == ft or oc.train_s is not None or oc.latency_s is None:
                continue
            saved = oc.latency_s - fc.latency_s
            real = saved > LATENCY_NOISE * oc.latency_s
            why = None if real else ("never (not cheaper per query)" if saved <= 0 else
                                     f"never (latencies within {LATENCY_NOISE:.0%}: timing noise)")
            out.append(BreakEven(ft, other, t, round(saved, 5), _repaid_after(t, saved) if real else None, why))
    return out


def _repaid_after(extra_s: float, saved_s_per_query: float) -> int:
    """The smallest number of queries whose savings exceed `extra_s` one-off seconds."""
    return int(extra_s / saved_s_per_query) + 1


def tied_arms(best: str, comparisons: dict[str, dict[str, PairedTest]], primary: str) -> list[str]:
    """The best arm and every arm not significantly different from it (Holm-corrected), in that order."""
    return [best, *[a for a, c in comparisons.items() if c[primary].p_holm >= ALPHA]]


def crossover(a: str, ca: ArmCosts, b: str, cb: ArmCosts) -> Crossover | None:
    """Where a and b swap places by total seconds; None when one costs less at every volume (or a
    latency is missing). total(V) = train_s + V * latency_s; the lines cross at
    (train_fast - train_slow) / (latency_slow - latency_fast) when that is positive."""
    if ca.latency_s is None or cb.latency_s is None or ca.latency_s == cb.latency_s:
        return None
    (fast, cf), (slow, cs) = sorted([(a, ca), (b, cb)], key=lambda arm: arm[1].latency_s)
    extra = (cf.train_s or 0.0) - (cs.train_s or 0.0)
    if extra <= 0:  # cheaper per query and no dearer up front: cheaper at every volume
        return None
    saved = cs.latency_s - cf.latency_s
    return Crossover(fast, slow, round(extra, 3), round(saved, 5), _repaid_after(extra, saved),
                     saved <= LATENCY_NOISE * cs.latency_s)


def price(costs: dict[str, ArmCosts], arms: list[str], query_volume: int) -> Pricing | None:
    """The cheapest of `arms` in total seconds at `query_volume`, with every crossover between two
    of them; None when fewer than two have a measured latency (there is nothing to choose between)."""
    priced = [a for a in arms if costs[a].latency_s is not None]
    if len(priced) < 2:
        return None
    cheapest = min(priced, key=lambda a: costs[a].total_s(query_volume))  # min keeps the first on a tie
    pairs = [(a, b) for i, a in enumerate(priced) for b in priced[i + 1:]]
    crossings = [x for a, b in pairs if (x := crossover(a, costs[a], b, costs[b])) is not None]
    return Pricing(cheapest, round(costs[cheapest].total_s(query_volume), 3), crossings)


def break_even(costs: dict[str, dict[str, Any]], s: Any = None, primary: str | None = None) -> list[dict[str, Any]]:
    """`break_even_points` on flat cost dicts, as decision.json stores them (`s` and `primary` are unused)."""
    return [asdict(b) for b in break_even_points({a: ArmCosts.from_json(c) for a, c in costs.items()})]


def _fmt_p(p: float) -> str:
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def verdict(task: str, s: TaskResults, primary: str, best: str, comparisons: dict[str, dict[str, PairedTest]],
            costs: dict[str, ArmCosts], *, query_volume: int = DEFAULT_QUERY_VOLUME, gpu: str | None = None,
            collapses: Sequence[Collapse] = ()) -> str:
    """One paragraph, never stronger than the statistics: significance after Holm correction; among
    the arms that cannot be told apart, the cheapest in total seconds at `query_volume` (on `gpu`
    when the run used one) and the volume at which that answer changes. Every arm in `collapses` is
    named with what its predictions did, the best arm's right after its score and the floor, so a
    collapsed arm is never the winner without that sentence."""
    est = s.arms[best].metrics[primary]
    floor = s.floor.metrics[primary].value if primary in s.floor.metrics else None
    text = f"On {task}, {best} scores highest on {primary}: {est.value:.3f} [{est.low:.3f}, {est.high:.3f}]."
    if floor is not None and est.high < floor:
        text += f" Every arm scores below the floor ({floor:.3f}): none beats the no-skill baseline."
    elif floor is not None and est.low <= floor:
        text += f" Its interval includes the floor ({floor:.3f}): no arm is clearly better than the no-skill baseline."
    collapsed = {c.arm: _collapse_sentence(c, s, primary, floor) for c in collapses}
    if best in collapsed:  # before anything compares it with the other arms
        text += collapsed.pop(best)
    if not comparisons:
        return text + "".join(collapsed.values())
    ties = tied_arms(best, comparisons, primary)[1:]
    beaten = [a for a in comparisons if a not in ties]

    def listed(arms: list[str]) -> str:
        return ", ".join(f"{a} ({comparisons[a][primary].difference:+.3f}, {_fmt_p(comparisons[a][primary].p_holm)})"
                         for a in arms)

    if beaten:
        test = "McNemar" if primary == "accuracy" else "paired bootstrap"
        text += f" It is significantly better than {listed(beaten)} ({test}, Holm-corrected)."
    if ties:
        text += (f" There is no significant difference from {listed(ties)}; among those, the cheaper arm "
                 f"is the sensible choice.")
        pricing = price(costs, [best, *ties], query_volume)
        if pricing:
            text += _pricing_sentence(pricing, query_volume, gpu)
    return text + "".join(collapsed.values()) + _cost_sentence(best, costs[best])


def _collapse_sentence(c: Collapse, s: TaskResults, primary: str, floor: float | None) -> str:
    """' lora predicted 'other' for 98% of test examples (collapsed onto one label): its score is the
    majority floor's, ...': the floor is named when the arm's score equals it to the three decimals shown."""
    at_floor = floor is not None and round(s.arms[c.arm].metrics[primary].value, 3) == round(floor, 3)
    return " " + c.sentence(at_floor=at_floor)


def _pricing_sentence(p: Pricing, query_volume: int, gpu: str | None) -> str:
    """'At 10,000 queries the cheapest ... is lora (2,158 s in all); below 214 queries rag-k3 is cheaper.'"""
    where = f", on a GPU: {gpu}" if gpu else ""  # seconds of the run's device; a GPU's are not a CPU's
    text = (f" At {query_volume:,} queries the cheapest of the arms that cannot be told apart is {p.cheapest} "
            f"({p.total_s:,.0f} s in all{where})")
    below, above = p.cheaper_below, p.cheaper_from
    flips = []
    if below:
        flips.append(f"below {below.queries:,} queries {below.cheaper_below} is cheaper{_noise(below)}")
    if above:
        flips.append(f"from {above.queries:,} queries {above.cheaper_from} is cheaper{_noise(above)}")
    return text + ("; " + ", and ".join(flips) + "." if flips else "; it is the cheapest at every volume.")


def _noise(c: Crossover) -> str:
    return f" (a per-query difference within timing noise, {LATENCY_NOISE:.0%})" if c.within_noise else ""


def _cost_sentence(best: str, c: ArmCosts) -> str:
    bits = [f"{c.latency_s:.3f} s per query" if c.latency_s is not None else None,
            f"{c.prompt_tokens:.0f} prompt tokens per query" if c.prompt_tokens else None,
            f"{c.train_s:.0f} s of training" if c.train_s is not None else None]
    bits = [b for b in bits if b]
    return f" {best} costs {', '.join(bits)}." if bits else ""
