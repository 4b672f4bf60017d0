"""The forgetting experiment's section: tables (bench.tables' `Table`, rendered by the project's
Markdown, HTML and terminal renderers), one forest plot of the drops, report.md and report.html.
Reads only the figures, so `bench report DIR` rebuilds it without a model."""

from __future__ import annotations

from html import escape
from pathlib import Path

from ..control import BASE_VARIANT
from ..decision import ALPHA
from ..plots import PALETTE, _plt, _png
from ..render_html import html_table, img, page
from ..render_markdown import markdown_table
from ..render_terminal import rich_table
from ..stats import format_p as _p
from ..store import atomic_write_bytes, atomic_write_text
from ..tables import Row, Table
from .forgetting_figures import Drop, ForgettingResult, Score

PLOT = "forgetting.png"


def _score(s: Score) -> str:
    return f"{s.value:.3f} [{s.low:.3f}, {s.high:.3f}]"


def drops_table(result: ForgettingResult) -> Table:
    """Per trained model and control task: base and fine-tuned scores, the drop and the paired test."""
    rows = [Row([d.cell, d.trained_on, d.control_task, d.metric, _score(d.base), _score(d.tuned),
                 f"{d.drop:+.3f} [{d.low:+.3f}, {d.high:+.3f}]", _p(d.p_value), _p(d.p_holm)],
                emphasis=frozenset({6, 8}) if d.p_holm < ALPHA else frozenset()) for d in result.drops]
    return Table(title="Drop on the control set (base model minus fine-tuned)",
                 header=["trained model", "trained on", "control task", "metric", "base [95% CI]",
                         "fine-tuned [95% CI]", "drop [95% CI]", "p", "p (Holm)"], rows=rows, numeric_from=4,
                 notes=[f"drop > 0: the fine-tune answers fewer control items right than the base model; p: "
                        f"{_tests(result.drops)} on the same items, Holm-corrected across all "
                        f"{len(result.drops)} comparisons (emphasised where below {ALPHA})", *result.skipped])


def _tests(drops: list[Drop]) -> str:
    return " / ".join(sorted({d.test for d in drops})) or "no test"


def categories_table(result: ForgettingResult, task: str) -> Table:
    """Per item category: the base model's and each trained model's mean score."""
    by = result.categories[task]
    cells = list(dict.fromkeys(name for scores in by.values() for name in scores))
    rows = [Row([cat, *[f"{scores[c]:.3f}" if c in scores else "—" for c in cells]]) for cat, scores in by.items()]
    return Table(title=f"{task}: {result.control[task]['metric']} by item category", header=["category", *cells],
                 rows=rows, numeric_from=1)


def control_table(result: ForgettingResult) -> Table:
    rows = [Row([name, str(c["items"]), c["metric"], c["description"]]) for name, c in result.control.items()]
    return Table(title="The control set (bench/control)", header=["task", "items", "metric", "what it asks"],
                 rows=rows, numeric_from=None)


def provenance_table(result: ForgettingResult) -> Table:
    p = result.provenance
    keys = ("suite", "profile", "model", "model_fingerprint", "device", "dtype", "batch_size", "seed", "git_sha",
            "code_fingerprint", "started", "wall_s", "model_load_s", "control_limit", "retrain", "use_cache")
    rows = [Row([k, str(p.get(k))]) for k in keys]
    trained = [c for c in result.cells if c.arm != BASE_VARIANT and c.train_s is not None]
    rows.append(Row(["cells", f"{len(result.cells)} ({sum(c.cached for c in result.cells)} from the cache)"]))
    rows += [Row([f"training of {c.arm}", f"{c.train_s:.1f} s (the trained model's record)"])
             for c in trained if c.task == trained[0].task]
    return Table(title="Provenance", header=["what", "value"], rows=rows, numeric_from=None)


def intro(result: ForgettingResult) -> str:
    p = result.provenance
    return (f"Model `{p['model']}` on {p['device']} ({p['dtype']}), seed {p['seed']}. The project's general "
            "control set (written by us: knowledge, common-sense and reading questions with four options scored by "
            "label likelihood, and short answers scored by exact match) is answered by the base model under the "
            "shared template and by every model the suite's fine-tune variants train (the same trained-model cache "
            "entries as `bench run`: no retraining when the run was made). The drop is the base model's score "
            "minus the fine-tuned model's on the same items, with a 95% paired-bootstrap interval and a paired test.")


def figure(result: ForgettingResult) -> bytes:
    """One row per (trained model, control task): the drop with its interval; zero marked."""
    plt = _plt()
    drops = result.drops
    tasks = list(result.control)
    fig, ax = plt.subplots(figsize=(6.5, 0.38 * len(drops) + 1.4))
    for i, d in enumerate(drops):
        colour = PALETTE[tasks.index(d.control_task) % len(PALETTE)]
        ax.errorbar([d.drop], [i], xerr=[[d.drop - d.low], [d.high - d.drop]], fmt="o", color=colour, capsize=3,
                    label=d.control_task if d.control_task not in [x.control_task for x in drops[:i]] else None)
        mark = " *" if d.p_holm < ALPHA else ""
        ax.annotate(f"p={d.p_holm:.2g}{mark}", (d.high, i), xytext=(4, 0), textcoords="offset points", va="center",
                    fontsize=6)
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_yticks(range(len(drops)), [f"{d.cell} · {d.control_task}" for d in drops], fontsize=7)
    ax.invert_yaxis()
    ax.margins(x=0.25)
    ax.set_xlabel("drop: base minus fine-tuned (95% CI); right of 0: forgotten")
    ax.set_title("Forgetting on the general control set (p: Holm-corrected; *: below 0.05)", fontsize=9)
    ax.legend(fontsize=7, loc="lower right")
    return _png(fig)


def write_forgetting_report(folder: Path, result: ForgettingResult) -> dict[str, Path]:
    """report.md, report.html and plots/forgetting.png in `folder`; returns their paths."""
    png = figure(result)
    atomic_write_bytes(folder / "plots" / PLOT, png)
    out = {"md": folder / "report.md", "html": folder / "report.html"}
    atomic_write_text(out["md"], markdown_report(folder.name, result))
    atomic_write_text(out["html"], html_report(folder.name, result, png))
    return out


def markdown_report(name: str, result: ForgettingResult) -> str:
    drops = drops_table(result)
    lines = [f"# {result.provenance['suite']}: forgetting (`{name}`)", "", intro(result), "",
             *markdown_table(control_table(result)), "", f"## {drops.title}", "", *markdown_table(drops), "",
             *[f"- {n}" for n in drops.notes], "", f"![forgetting](plots/{PLOT})", "", "## Verdicts", "",
             *[f"- {d.verdict}" for d in result.drops]]
    for task in result.categories:
        lines += ["", f"## {categories_table(result, task).title}", "",
                  *markdown_table(categories_table(result, task))]
    lines += ["", "## Provenance", "", *markdown_table(provenance_table(result)), ""]
    return "\n".join(lines)


def html_report(name: str, result: ForgettingResult, png: bytes) -> str:
    drops = drops_table(result)
    sections = [f"<h1>{escape(result.provenance['suite'])}: forgetting</h1>",
                f'<p class="meta">{escape(name)}. {escape(intro(result))}</p>', html_table(control_table(result)),
                f"<h2>{escape(drops.title)}</h2>", html_table(drops),
                "<ul>" + "".join(f"<li>{escape(n)}</li>" for n in drops.notes) + "</ul>", img(png, "forgetting"),
                "<h2>Verdicts</h2>", "<ul>" + "".join(f"<li>{escape(d.verdict)}</li>" for d in result.drops) + "</ul>"]
    for task in result.categories:
        table = categories_table(result, task)
        sections += [f"<h2>{escape(table.title)}</h2>", html_table(table)]
    sections += ["<h2>Provenance</h2>", html_table(provenance_table(result))]
    return page(f"{result.provenance['suite']} forgetting {name}", sections)


def terminal_tables(result: ForgettingResult) -> list:
    return [rich_table(drops_table(result))]
