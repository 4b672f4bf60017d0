"""`bench compare RUN_A RUN_B ...`: runs side by side (two base models, two LoRA ranks, two suites'
shared arms). Rows: (task, metric, arm variant); columns: runs. No model is loaded."""

from __future__ import annotations

from pathlib import Path

from rich.table import Table as RichTable

from .render_markdown import markdown_table
from .render_terminal import rich_table
from .results import RunResults, load_run
from .store import COMPLETE
from .tables import Row, Table, fmt


def compare_runs(run_dirs: list[Path]) -> tuple[RichTable, str]:
    """The comparison as a terminal table and as Markdown (for `--out`)."""
    table = comparison_table([load_run(d) for d in run_dirs])
    md = markdown_table(table) + ([""] + [f"Note: {n}" for n in table.notes] if table.notes else [])
    return rich_table(table, fold=True), "\n".join(md) + "\n"


def comparison_table(runs: list[RunResults]) -> Table:
    """One row per (task, metric, arm variant) found in any run, one column per run; notes warn
    where the runs' test examples differ."""
    keys = list(dict.fromkeys((name, m, arm) for run in runs for name, task in run.tasks.items()
                              for m in task.metrics for arm in ["floor", *task.arms]))
    rows = [Row([t, m, a, *[_score(run, t, m, a) for run in runs]]) for t, m, a in keys]
    notes = []
    for t in sorted({t for run in runs for t in run.tasks}):
        if len({run.test_hashes.get(t) for run in runs if t in run.test_hashes}) > 1:
            notes.append(f"{t}: the runs used different test examples; compare with care.")
    # load_run refuses runs stopped while predicting; one whose report was never finished has whole scores
    for run in runs:
        if run.status != COMPLETE:
            notes.append(f"{_label(run)} is unfinished (run.json status '{run.status}'): its report was never "
                         f"finished; `bench report {run.run_dir}` finishes it.")
    header = ["task", "metric", "arm variant", *[_label(run) for run in runs]]
    return Table("comparison of runs: score [95% CI]", header, rows, notes, numeric_from=3)


def _label(run: RunResults) -> str:
    return f"{run.suite}/{run.run_dir.name} ({run.model_spec}, {run.dtype})"


def _score(run: RunResults, task: str, metric: str, arm: str) -> str:
    found = run.tasks.get(task)
    if found is None:
        return "—"
    if arm == "floor":
        return fmt(found.floor.metrics.get(metric))
    return fmt(found.arms[arm].metrics.get(metric) if arm in found.arms else None)
