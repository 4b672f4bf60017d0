"""Everything a reader decides from, built from a run directory alone (no model, no torch):
terminal tables, report.md, a self-contained report.html, results.csv, plots and decision.json.

The pipeline: `results.load_run` reads the run once, `decision.decide` analyses it,
`tables.report_tables` builds every table once, and each renderer (`render_markdown`,
`render_html`, `render_csv`, `render_terminal`) lays the same tables out for its format.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from rich.table import Table as RichTable

from .config import DEFAULT_QUERY_VOLUME
from .decision import decide, decisions_from_json
from .render_csv import csv_text
from .render_html import html_report
from .render_markdown import markdown_report
from .render_terminal import rich_table
from .results import ArmCosts, RunResults, load_run
from .store import COMPLETE, REPORTING, atomic_write_bytes, atomic_write_text, set_run_status, write_json
from .tables import cost_tables as _cost_tables
from .tables import report_tables, score_table


def write_report(run_dir: Path | RunResults, query_volume: int | None = None) -> dict[str, Path]:
    """Write report.md, report.html, results.csv, decision.json and plots/*.png; return their paths
    (keys md, html, csv, decision). A RunResults already loaded is not read again. `query_volume`
    prices the verdicts (None: the run's, from its suite or `bench run --query-volume`); decision.json
    records the one used."""
    from .plots import report_plots  # matplotlib is slow to import: only when figures are drawn

    run = _loaded(run_dir)
    folder = run.run_dir
    volume = run.query_volume if query_volume is None else query_volume
    decisions = decide(run, seed=run.seed, query_volume=volume)
    tables = report_tables(run, decisions, volume)
    pngs = report_plots(run, decisions)
    for name, data in pngs.items():
        atomic_write_bytes(folder / "plots" / f"{name}.png", data)
    out = {"md": folder / "report.md", "html": folder / "report.html", "csv": folder / "results.csv",
           "decision": folder / "decision.json"}
    write_json(out["decision"], {task: d.to_json() for task, d in decisions.items()})
    atomic_write_text(out["md"], markdown_report(run, decisions, tables, {k: f"plots/{k}.png" for k in pngs}))
    atomic_write_text(out["html"], html_report(run, decisions, tables, pngs))
    atomic_write_text(out["csv"], csv_text(tables.results))
    return out


def finish_report(run_dir: Path, query_volume: int | None = None) -> tuple[RunResults, dict[str, Path]]:
    """Write every report file of a run whose cells all finished, then mark it complete (what `bench run`
    does after its cells and `bench report` does again). run.json says 'reporting' while the files are
    written, so a kill or a full disk in between leaves a run that lists as unfinished and that this
    finishes. Returns the run as loaded and write_report's paths."""
    run = load_run(run_dir)  # refuses a run stopped or failed while predicting: it has no scores
    set_run_status(run.run_dir, REPORTING)
    paths = write_report(run, query_volume)
    set_run_status(run.run_dir, COMPLETE)
    return replace(run, status=COMPLETE), paths


def terminal_tables(run_dir: Path | RunResults, decision: dict[str, Any] | None = None) -> list[RichTable]:
    """One table per task: floor and arm variants against metrics, the test against the best arm
    and the scoring mode; retrieval quality in the caption. `decision` is decision.json's content
    (analysed afresh when None)."""
    run = _loaded(run_dir)
    decisions = decisions_from_json(decision) if decision is not None else decide(run, seed=run.seed)
    return [rich_table(score_table(task, decisions.get(name)),
                       title=f"{run.suite} · {task.name} ({task.kind}, n={task.n} test): score [95% CI]")
            for name, task in run.tasks.items()]


def terminal_cost_table(run_dir: Path | RunResults, decision: dict[str, Any]) -> RichTable:
    """The costs summary (latency, prompt tokens, training and the total at the query volume that
    decision.json priced at) for the terminal."""
    run = _loaded(run_dir)
    decisions = decisions_from_json(decision)
    volume = next((d.query_volume for d in decisions.values()), run.query_volume)
    summary = _cost_tables({t: d.costs for t, d in decisions.items()}, run.arm_kinds, volume)[0]
    return rich_table(summary, title=f"{run.suite} · costs (seconds of the run's {_device(run)})")


def _device(run: RunResults) -> str:
    return f"GPU, {run.gpu}" if run.gpu else "CPU"


def _loaded(run: Path | RunResults) -> RunResults:
    return run if isinstance(run, RunResults) else load_run(run)


def cost_tables(decision: dict[str, Any], run: dict[str, Any]) -> list[tuple[str, list[str], list[list[str]]]]:
    """The cost tables as (title, header, rows) from decision.json's and run.json's content (for scripts)."""
    costs = {task: {a: ArmCosts.from_json(c) for a, c in d["costs"].items()} for task, d in decision.items()}
    kinds = {a["name"]: a["arm"] for a in run.get("spec", {}).get("arms", [])}
    volume = next((d.get("query_volume", DEFAULT_QUERY_VOLUME) for d in decision.values()), DEFAULT_QUERY_VOLUME)
    return [(t.title, t.header, [r.cells for r in t.rows]) for t in _cost_tables(costs, kinds, volume)]
