"""From a loaded run to a decision: paired tests against the best arm, costs, break-even, verdicts.

Reads only results (through `bench.results`): no model, no torch. `decide` returns typed
`TaskDecision`s; `analyse` is the same as the dicts decision.json stores.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

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

    def vs_best(self, arm: str) -> PairedTest | None:
        """The arm's test against the best arm on the primary metric; None for the best arm itself."""
        return self.comparisons.get(arm, {}).get(self.primary)

    def to_json(self) -> dict[str, Any]:
        return {"primary": self.primary, "best": self.best,
                "comparisons": {a: {m: asdict(t) for m, t in c.items()} for a, c in self.comparisons.items()},
                "costs": {a: c.to_json() for a, c in self.costs.items()},
                "break_even": [asdict(b) for b in self.break_even], "verdict": self.verdict}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> TaskDecision:
        """Read an entry of decision.json back, including those written before `why_none` existed."""
        breaks = [BreakEven(**{"why_none": None, **b}) for b in d["break_even"]]
        return cls(d["primary"], d["best"],
                   {a: {m: PairedTest(**t) for m, t in c.items()} for a, c in d["comparisons"].items()},
                   {a: ArmCosts.from_json(c) for a, c in d["costs"].items()}, breaks, d["verdict"])


def analyse(run_dir: Path, *, seed: int = 0) -> dict[str, Any]:
    """decision.json's content for a run directory: `decide` in the JSON form."""
    return {task: d.to_json() for task, d in decide(load_run(run_dir), seed=seed).items()}


def decisions_from_json(decision: dict[str, Any]) -> dict[str, TaskDecision]:
    return {task: TaskDecision.from_json(d) for task, d in decision.items()}


def decide(run: RunResults, *, seed: int = 0) -> dict[str, TaskDecision]:
    """Per task with arms: the best arm by the first metric, paired tests of every other arm
    against it (Holm-corrected within the task), cost per arm, break-even points and a verdict."""
    out = {}
    for name, task in run.tasks.items():
        if not task.arms:
            continue
        primary = task.metrics[0]
        best = max(task.arms, key=lambda a: task.arms[a].metrics[primary].value)
        rows = {a: {p.id: p for p in run.predictions(a, name)} for a in task.arms}
        comparisons = _paired_tests(task, best, rows, seed)
        costs = {a: run.costs(a, name) for a in task.arms}
        out[name] = TaskDecision(primary, best, comparisons, costs, break_even_points(costs),
                                 verdict(name, task, primary, best, comparisons, costs))
    return out


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
            out.append(BreakEven(ft, other, t, round(saved, 5), int(t / saved) + 1 if real else None, why))
    return out


def break_even(costs: dict[str, dict[str, Any]], s: Any = None, primary: str | None = None) -> list[dict[str, Any]]:
    """`break_even_points` on flat cost dicts, as decision.json stores them (`s` and `primary` are unused)."""
    return [asdict(b) for b in break_even_points({a: ArmCosts.from_json(c) for a, c in costs.items()})]


def _fmt_p(p: float) -> str:
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def verdict(task: str, s: TaskResults, primary: str, best: str, comparisons: dict[str, dict[str, PairedTest]],
            costs: dict[str, ArmCosts]) -> str:
    """One paragraph, never stronger than the statistics: significance after Holm correction."""
    est = s.arms[best].metrics[primary]
    floor = s.floor.metrics[primary].value if primary in s.floor.metrics else None
    text = f"On {task}, {best} scores highest on {primary}: {est.value:.3f} [{est.low:.3f}, {est.high:.3f}]."
    if floor is not None and est.high < floor:
        text += f" Every arm scores below the floor ({floor:.3f}): none beats the no-skill baseline."
    elif floor is not None and est.low <= floor:
        text += f" Its interval includes the floor ({floor:.3f}): no arm is clearly better than the no-skill baseline."
    if not comparisons:
        return text
    ties = [a for a, c in comparisons.items() if c[primary].p_holm >= ALPHA]
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
        cheapest = min([best, *ties], key=lambda a: (costs[a].train_s or 0, costs[a].latency_s or 0))
        if cheapest != best:
            text += f" The cheapest of them is {cheapest}."
    return text + _cost_sentence(best, costs[best])


def _cost_sentence(best: str, c: ArmCosts) -> str:
    bits = [f"{c.latency_s:.3f} s per query" if c.latency_s is not None else None,
            f"{c.prompt_tokens:.0f} prompt tokens per query" if c.prompt_tokens else None,
            f"{c.train_s:.0f} s of training" if c.train_s is not None else None]
    bits = [b for b in bits if b]
    return f" {best} costs {', '.join(bits)}." if bits else ""
