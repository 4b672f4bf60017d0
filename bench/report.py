"""Build the terminal table and report.md from a run directory alone (no model, no torch)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.table import Table

from .store import atomic_write_text, read_json


def fmt(est: dict[str, float] | None) -> str:
    if not est:
        return "—"
    return f"{est['value']:.3f} [{est['low']:.3f}, {est['high']:.3f}]"


def retrieval_summary(scores: dict[str, Any] | None) -> str:
    """'recall@1 0.62 · recall@4 0.85 · mrr 0.71' (point values; CIs are in scores.json)."""
    if not scores:
        return ""
    return " · ".join(f"{k} {v['value']:.2f}" for k, v in scores.items())


def _costs(costs: dict[str, Any]) -> str:
    return "; ".join(f"{k} {v}" for k, v in costs.items() if not isinstance(v, (list, dict))) or "—"


def _columns(scores: dict[str, Any]) -> list[tuple[str, str]]:
    return [(t, m) for t, s in scores["tasks"].items() for m in s["metrics"]]


def _rows(scores: dict[str, Any]) -> list[tuple[str, list[str]]]:
    """(row name, cells): the floor first, then every arm variant in the order it ran."""
    cols = _columns(scores)
    arms: list[str] = []
    for s in scores["tasks"].values():
        arms += [a for a in s["arms"] if a not in arms]
    rows = [("floor", [fmt(scores["tasks"][t]["floor"]["metrics"].get(m)) for t, m in cols])]
    for a in arms:
        rows.append((a, [fmt(scores["tasks"][t]["arms"].get(a, {}).get("metrics", {}).get(m)) for t, m in cols]))
    return rows


def terminal_tables(run_dir: Path) -> list[Table]:
    """One table per task (rows: floor and arm variants; columns: metrics), so cells never wrap."""
    scores = read_json(run_dir / "scores.json")
    tables = []
    for t, s in scores["tasks"].items():
        table = Table(title=f"{scores['suite']} · {t} ({s['kind']}, n={s['n']} test): score [95% CI]",
                      caption=f"floor: {s['floor']['name']}")
        table.add_column("arm variant", style="bold", overflow="fold")
        for m in s["metrics"]:
            table.add_column(m, justify="right", no_wrap=True, min_width=20)
        table.add_column("mode", overflow="fold")
        retrieval = any("retrieval" in r for r in s["arms"].values())
        if retrieval:
            table.add_column("retrieval", overflow="fold")
        table.add_row("floor", *[fmt(s["floor"]["metrics"].get(m)) for m in s["metrics"]], "", *([""] if retrieval else []),
                      style="dim")
        for a, r in s["arms"].items():
            extra = [retrieval_summary(r.get("retrieval"))] if retrieval else []
            table.add_row(a, *[fmt(r["metrics"].get(m)) for m in s["metrics"]], r["mode"], *extra)
        tables.append(table)
    return tables


def markdown(run_dir: Path) -> str:
    scores, run = read_json(run_dir / "scores.json"), read_json(run_dir / "run.json")
    cols = _columns(scores)
    head = "| arm variant | " + " | ".join(f"{t} {m} (n={scores['tasks'][t]['n']})" for t, m in cols) + " |"
    lines = [f"# {scores['suite']}: results of run `{run_dir.name}`", "",
             f"Model `{run['model']['spec']}` on {run['model']['device']} ({run['model']['dtype']}), seed {run['seed']}, "
             f"git `{run.get('git_sha')}`. Scores on the test split with 95% percentile-bootstrap CIs.", "",
             head, "|" + "---|" * (len(cols) + 1)]
    lines += ["| " + " | ".join([name, *cells]) + " |" for name, cells in _rows(scores)]
    lines += ["", "Floors: " + "; ".join(f"{t}: {s['floor']['name']}" for t, s in scores["tasks"].items()) + ".", "",
              "## How each score was produced", "", "| arm variant | task | mode | cached | predict s | mean latency s | prompt tokens / example |",
              "|---|---|---|---|---|---|---|"]
    for c in run["cells"]:
        mode = scores["tasks"][c["task"]]["arms"][c["arm"]]["mode"]
        cached = f"yes (from {c['predicted_at']})" if c["cached"] else "no"
        lines.append(f"| {c['arm']} | {c['task']} | {mode} | {cached} | {c['predict_s']} | {c['mean_latency_s']} | "
                     f"{c['prompt_tokens'] / max(1, c['n']):.0f} |")
    with_retrieval = [(t, a, r["retrieval"]) for t, s in scores["tasks"].items() for a, r in s["arms"].items()
                      if r.get("retrieval")]
    if with_retrieval:
        lines += ["", "## Retrieval quality (gold documents)", "", "| arm variant | task | " +
                  " | ".join(with_retrieval[0][2]) + " |", "|---|---|" + "---|" * len(with_retrieval[0][2])]
        for t, a, r in with_retrieval:
            lines.append(f"| {a} | {t} | " + " | ".join(fmt(v) for v in r.values()) + " |")
    costed = [c for c in run["cells"] if c.get("costs")]
    if costed:
        lines += ["", "## Costs", "", "| arm variant | task | costs |", "|---|---|---|"]
        lines += [f"| {c['arm']} | {c['task']} | {_costs(c['costs'])} |" for c in costed]
    t = run["timings"]
    load = f"{t['model_load_s']} s" if t["model_load_s"] is not None else "skipped (every prediction was cached)"
    lines += ["", f"Wall time {t['wall_s']} s; model load {load}.", ""]
    return "\n".join(lines)


def write_report(run_dir: Path) -> Path:
    path = run_dir / "report.md"
    atomic_write_text(path, markdown(run_dir))
    return path
