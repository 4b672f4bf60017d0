"""report.md: GitHub-flavoured Markdown that pastes into a pull request, drawn from `bench.tables`."""

from __future__ import annotations

import html

from .decision import TaskDecision
from .results import RunResults
from .tables import ReportTables, Table, TaskTables

BREAK_EVEN = ("Break-even: queries after which a fine-tune's training time is repaid by its cheaper queries "
              "(measured latency per query).")
LEAKAGE = ("Test examples that the train or validation split, the corpus or a prompt's demonstrations already "
           "hold, checked before the run without a model (a leak is reported; the run went on).")
CROSSOVERS = ("Crossovers: among arms that cannot be told apart, the query volume from which the arm with the cheaper "
              "queries costs less in all (training included).")


def markdown_table(table: Table) -> list[str]:
    """The table's lines; each cell is escaped (`_cell`) so it cannot split the row or become HTML."""
    width = len(table.header)
    return [_row(table.header, width), "|" + "---|" * width, *[_row(r.cells, width) for r in table.rows]]


def markdown_warnings(table: Table) -> list[str]:
    """The table's warnings as a bold-headed list under it; nothing when it has none."""
    if not table.warnings:
        return []
    return ["", "**Warnings:**", "", *[f"- {_cell(w)}" for w in table.warnings]]


def _row(cells: list[str], width: int) -> str:
    # blank tail cells are written '| |', as report.md always had them (keeps old reports comparable)
    return "| " + " | ".join(_cell(c) for c in cells) + " |" + " |" * (width - len(cells))


def _cell(text: str) -> str:
    """A cell's text as Markdown that shows it literally: '|' would split the cell, and GitHub
    renders raw HTML, so a label like '<script>' (here in a floor row) must arrive as text."""
    return html.escape(text, quote=False).replace("|", "\\|")


def markdown_report(run: RunResults, decisions: dict[str, TaskDecision], tables: ReportTables,
                    plots: dict[str, str]) -> str:
    """The whole report.md; `plots` maps a plot's name to its path relative to the run directory."""
    lines = _intro(run, decisions) + _leakage_section(tables.leakage)
    for task in tables.tasks:
        lines += _task_section(task, plots)
    for i, table in enumerate(tables.costs):
        lines += ["", f"{'##' if i == 0 else '###'} {table.title}", "", *markdown_table(table)]
    if tables.break_even:
        lines += ["", BREAK_EVEN, "", *markdown_table(tables.break_even)]
    if tables.crossovers:
        lines += ["", CROSSOVERS, "", *markdown_table(tables.crossovers)]
    if "loss" in plots:
        lines += ["", f"![training loss]({plots['loss']})"]
    lines += ["", f"## {tables.provenance.title}", "", *markdown_table(tables.provenance)]
    load = f"{run.model_load_s} s" if run.model_load_s is not None else "skipped (every prediction was cached)"
    lines += ["", f"Wall time {run.wall_s} s; model load {load}.", ""]
    return "\n".join(lines)


def _leakage_section(table: Table | None) -> list[str]:
    """The leakage checks, right under the verdicts: a leak qualifies every score below it."""
    if table is None:
        return []
    return ["", f"## {table.title}", "", LEAKAGE, "", *markdown_table(table), *markdown_warnings(table), "",
            "Checks (each counts test examples; one may be flagged by several):", "",
            *[f"- {_cell(note)}" for note in table.notes]]


def _intro(run: RunResults, decisions: dict[str, TaskDecision]) -> list[str]:
    about = (f"Model `{run.model_spec}` on {run.device} ({run.dtype}), seed {run.seed}, git `{run.git_sha}`, "
             f"started {run.started}. Scores on the test split with 95% percentile-bootstrap CIs; each arm is "
             "compared with the task's best arm on the same examples (McNemar for accuracy, paired bootstrap "
             "otherwise; Holm-corrected within the task).")
    lines = [f"# {run.suite}: results of run `{run.run_dir.name}`", "", about, "", "## Verdicts", ""]
    return lines + [f"- {d.verdict}" for d in decisions.values()]


def _task_section(task: TaskTables, plots: dict[str, str]) -> list[str]:
    lines = ["", f"## {task.scores.title}", "", *markdown_table(task.scores), *markdown_warnings(task.scores)]
    if task.retrieval:
        lines += ["", f"{task.retrieval.title}:", "", *markdown_table(task.retrieval)]
    for key in (f"{task.task.name}-bars", f"{task.task.name}-cost", f"{task.task.name}-retrieval"):
        if key in plots:
            lines += ["", f"![{key}]({plots[key]})"]
    return lines
