"""From a run directory to a decision: paired tests against the best arm, costs, verdicts.

Reads only results/ (predictions, scores.json, run.json): no model, no torch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .metrics import get_metric
from .stats import holm, mcnemar, paired_bootstrap
from .store import read_json, read_jsonl

ALPHA = 0.05
TRAIN_TIME_KEYS = ("train_s", "train_wall_s", "training_s", "train_seconds")
# A per-query saving smaller than this share of the dearer arm's latency is not counted: on the
# 2-core CPU the same cell's latency varied by up to 17% between identical runs, and a merged
# LoRA (the base model's exact computation) came out 13% faster than zero-shot in one run.
LATENCY_NOISE = 0.25


def load_predictions(run_dir: Path, arm: str, task: str) -> list[dict[str, Any]]:
    return read_jsonl(run_dir / "predictions" / arm / f"{task}.jsonl")


def analyse(run_dir: Path, *, seed: int = 0) -> dict[str, Any]:
    """Per task: the best arm by the first metric, paired tests of every other arm against it
    (Holm-corrected within the task), cost per arm, break-even points and a verdict."""
    scores, run = read_json(run_dir / "scores.json"), read_json(run_dir / "run.json")
    cells = {(c["arm"], c["task"]): c for c in run["cells"]}
    out: dict[str, Any] = {}
    for task, s in scores["tasks"].items():
        arms = list(s["arms"])
        if not arms:
            continue
        primary = s["metrics"][0]
        best = max(arms, key=lambda a: s["arms"][a]["metrics"][primary]["value"])
        rows = {a: _aligned(load_predictions(run_dir, a, task)) for a in arms}
        ids = sorted(rows[best])
        comparisons: dict[str, dict[str, Any]] = {}
        for a in arms:
            if a == best:
                continue
            common = [i for i in ids if i in rows[a]]
            refs = [rows[best][i]["references"] for i in common]
            pa = [rows[best][i]["output"] for i in common]
            pb = [rows[a][i]["output"] for i in common]
            comparisons[a] = {m: paired_bootstrap(get_metric(m), pa, pb, refs, seed=seed).to_dict() for m in s["metrics"]}
            if "accuracy" in s["metrics"]:
                # accuracy is a paired binary outcome: the exact McNemar test is the right test
                # (the bootstrap's p-value is unreliable on small test sets); its CI is kept.
                acc = comparisons[a]["accuracy"]
                acc["p_value"] = mcnemar([p.strip() in r for p, r in zip(pa, refs)],
                                         [p.strip() in r for p, r in zip(pb, refs)])
                acc["test"] = "McNemar (exact)"
        for m in s["metrics"]:
            names = list(comparisons)
            adjusted = holm([comparisons[a][m]["p_value"] for a in names]) if names else []
            for a, p in zip(names, adjusted):
                comparisons[a][m]["p_holm"] = p
        costs = {a: arm_costs(cells.get((a, task), {})) for a in arms}
        out[task] = {"primary": primary, "best": best, "comparisons": comparisons, "costs": costs,
                     "break_even": break_even(costs, s, primary),
                     "verdict": verdict(task, s, primary, best, comparisons, costs)}
    return out


def _aligned(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["id"]: r for r in rows}


def arm_costs(cell: dict[str, Any]) -> dict[str, Any]:
    """The cell's measured costs: per-query latency and prompt tokens, plus what the arm reported."""
    n = max(1, cell.get("n", 0))
    base = {"latency_s": cell.get("mean_latency_s"), "prompt_tokens": round(cell.get("prompt_tokens", 0) / n, 1),
            "predict_s": cell.get("predict_s"), "cached": cell.get("cached")}
    extra = {k: v for k, v in (cell.get("costs") or {}).items() if isinstance(v, (int, float, str)) or v is None}
    return {**base, **extra}


def train_seconds(costs: dict[str, Any]) -> float | None:
    for key in TRAIN_TIME_KEYS:
        if isinstance(costs.get(key), (int, float)):
            return float(costs[key])
    return None


def break_even(costs: dict[str, dict[str, Any]], s: dict[str, Any], primary: str) -> list[dict[str, Any]]:
    """For each trained arm and each untrained arm whose queries cost more: how many queries
    until the training time is repaid by the cheaper queries (measured latency per query)."""
    out = []
    for ft, fc in costs.items():
        t = train_seconds(fc)
        if t is None or fc.get("latency_s") is None:
            continue
        for other, oc in costs.items():
            if other == ft or train_seconds(oc) is not None or oc.get("latency_s") is None:
                continue
            saved = oc["latency_s"] - fc["latency_s"]
            real = saved > LATENCY_NOISE * oc["latency_s"]
            why = None if real else ("never (not cheaper per query)" if saved <= 0 else
                                     f"never (latencies within {LATENCY_NOISE:.0%}: timing noise)")
            out.append({"trained": ft, "versus": other, "train_s": t, "saved_s_per_query": round(saved, 5),
                        "queries": int(t / saved) + 1 if real else None, "why_none": why})
    return out


def _fmt_p(p: float) -> str:
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def verdict(task: str, s: dict[str, Any], primary: str, best: str, comparisons: dict[str, Any],
            costs: dict[str, Any]) -> str:
    """One paragraph, never stronger than the statistics: significance after Holm correction."""
    est = s["arms"][best]["metrics"][primary]
    floor = s["floor"]["metrics"].get(primary, {}).get("value")
    text = f"On {task}, {best} scores highest on {primary}: {est['value']:.3f} [{est['low']:.3f}, {est['high']:.3f}]."
    if floor is not None and est["high"] < floor:
        text += f" Every arm scores below the floor ({floor:.3f}): none beats the no-skill baseline."
    elif floor is not None and est["low"] <= floor:
        text += f" Its interval includes the floor ({floor:.3f}): no arm is clearly better than the no-skill baseline."
    if not comparisons:
        return text
    ties = [a for a, c in comparisons.items() if c[primary]["p_holm"] >= ALPHA]
    beaten = [a for a in comparisons if a not in ties]
    if beaten:
        parts = [f"{a} ({comparisons[a][primary]['difference']:+.3f}, {_fmt_p(comparisons[a][primary]['p_holm'])})"
                 for a in beaten]
        test = "McNemar" if primary == "accuracy" else "paired bootstrap"
        text += f" It is significantly better than {', '.join(parts)} ({test}, Holm-corrected)."
    if ties:
        parts = [f"{a} ({comparisons[a][primary]['difference']:+.3f}, {_fmt_p(comparisons[a][primary]['p_holm'])})"
                 for a in ties]
        text += (f" There is no significant difference from {', '.join(parts)}; among those, the cheaper arm "
                 f"is the sensible choice.")
        cheapest = min([best, *ties], key=lambda a: (train_seconds(costs[a]) or 0, costs[a].get("latency_s") or 0))
        if cheapest != best:
            text += f" The cheapest of them is {cheapest}."
    c = costs[best]
    bits = [f"{c['latency_s']:.3f} s per query" if c.get("latency_s") is not None else None,
            f"{c['prompt_tokens']:.0f} prompt tokens per query" if c.get("prompt_tokens") else None,
            f"{train_seconds(c):.0f} s of training" if train_seconds(c) is not None else None]
    bits = [b for b in bits if b]
    if bits:
        text += f" {best} costs {', '.join(bits)}."
    return text
