"""The prompt-sensitivity experiment's section: tables (bench.tables' `Table`, rendered by the
project's Markdown, HTML and terminal renderers), one strip plot per task, report.md and
report.html. Reads only the figures, so `bench report DIR` rebuilds it without a model."""

from __future__ import annotations

from html import escape
from pathlib import Path

from ..plots import PALETTE, _plt, _png
from ..render_html import html_table, img, page
from ..render_markdown import markdown_table
from ..render_terminal import rich_table
from ..store import atomic_write_bytes, atomic_write_text
from ..tables import Row, Table
from .sensitivity_figures import SensitivityResult, TaskSensitivity

ONE_ARM = "One arm variant ran on this task: there is no gap between arms to set against the spread."


def scores_table(t: TaskSensitivity) -> Table:
    """Per arm variant: the score under the suite's instruction (with its CI) and, beside it, the
    spread across every wording, then each paraphrase's score."""
    paraphrases = [f"paraphrase {i}" for i in range(1, len(t.wordings))]
    rows = [Row([a.arm, a.kind, f"{a.declared.value:.3f} [{a.declared.low:.3f}, {a.declared.high:.3f}]",
                 f"{a.mean:.3f}", f"{a.minimum:.3f}", f"{a.maximum:.3f}", f"{a.sd:.3f}", f"{a.spread:.3f}",
                 *[f"{s.value:.3f}" for s in a.scores[1:]]]) for a in t.arms]
    return Table(title=f"{t.task}: {t.metric} under {len(t.wordings)} wordings ({t.n} test examples)",
                 header=["arm", "kind", "suite's instruction [95% CI]", "mean", "min", "max", "sd", "spread",
                         *paraphrases], rows=rows, numeric_from=2,
                 notes=["spread: max - min across the wordings (the suite's instruction and its paraphrases); sd: "
                        "sample standard deviation across them; every wording asks the same test examples"])


def comparisons_table(t: TaskSensitivity) -> Table:
    """The best arm under the suite's instruction against every other: gap against spreads."""
    rows = [Row([c.other, f"{c.gap:+.3f}", f"{c.best_spread:.3f}", f"{c.other_spread:.3f}",
                 f"{c.other_not_behind} of {c.wordings}", "yes" if c.within_spread else "no"],
                emphasis=frozenset({5}) if c.within_spread else frozenset()) for c in t.comparisons]
    return Table(title=f"{t.task}: {t.best} (best under the suite's instruction) against each arm",
                 header=["arm", "gap (best - arm)", f"{t.best} spread", "arm spread", "arm at least as high under",
                         "spread exceeds gap"], rows=rows, numeric_from=1,
                 notes=[c.verdict for c in t.comparisons])


def wordings_table(t: TaskSensitivity) -> Table:
    rows = [Row(["suite's instruction" if i == 0 else f"paraphrase {i}", text]) for i, text in enumerate(t.wordings)]
    return Table(title=f"{t.task}: the wordings", header=["wording", "text"], rows=rows, numeric_from=None)


def provenance_table(result: SensitivityResult) -> Table:
    p = result.provenance
    keys = ("suite", "profile", "model", "model_fingerprint", "device", "dtype", "batch_size", "seed", "git_sha",
            "code_fingerprint", "started", "wall_s", "model_load_s", "test_limit", "retrain", "use_cache")
    cached = sum(c.cached for c in result.cells)
    rows = [Row([k, str(p.get(k))]) for k in keys] + [Row(["cells", f"{len(result.cells)} ({cached} from the cache)"])]
    return Table(title="Provenance", header=["what", "value"], rows=rows, numeric_from=None)


def intro(result: SensitivityResult) -> str:
    p = result.provenance
    size = f"a seeded {p['test_limit']} test examples per task" if p.get("test_limit") else "every test example"
    return (f"Model `{p['model']}` on {p['device']} ({p['dtype']}), seed {p['seed']}, {size}. Every arm variant is "
            "scored under the suite's instruction and under each paraphrase the task lists (same meaning, other "
            "words). Fine-tunes are trained once, with the suite's instruction (the model `bench run` trains), and "
            "evaluated under each wording: this measures how much the wording met at answer time moves an arm, not "
            "how much the training prompt's wording matters. A verdict says when the spread of either arm across "
            "the wordings exceeds the gap between them under the suite's instruction: then which arm is ahead "
            "depends on words that mean the same thing. On a small test subsample, a wording that changes a "
            "handful of answers already moves a score by several points: read the spread beside the CIs.")


def figure(t: TaskSensitivity) -> bytes:
    """One column per arm: a point per wording (the suite's instruction a black diamond), a line from
    the lowest to the highest, a tick at the mean."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(max(4.5, 0.9 * len(t.arms) + 1.5), 3.6))
    k = len(t.wordings)
    for x, a in enumerate(t.arms):
        ax.vlines(x, a.minimum, a.maximum, color="#999", linewidth=1.2)
        ax.hlines(a.mean, x - 0.18, x + 0.18, color="#555", linewidth=1.2)
        for s in a.scores[1:]:
            offset = (s.wording - (k / 2)) * 0.05  # a small fixed offset, so equal scores stay visible
            ax.plot(x + offset, s.value, "o", color=PALETTE[(s.wording - 1) % len(PALETTE)], markersize=5,
                    label=f"paraphrase {s.wording}" if x == 0 else None)
        ax.plot(x, a.declared.value, "D", color="black", markersize=6,
                label="suite's instruction" if x == 0 else None)
    ax.set_xticks(range(len(t.arms)), [a.arm for a in t.arms], rotation=30, ha="right", fontsize=8)
    ax.set_xlim(-0.6, len(t.arms) - 0.4)
    ax.set_ylabel(f"{t.metric} ({t.n} test examples)")
    ax.set_title(f"{t.task}: {t.metric} under {k} wordings (line: min to max, tick: mean)", fontsize=9)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
    return _png(fig)


def plot_name(task: str) -> str:
    return f"prompt-sensitivity-{task}.png"


def write_sensitivity_report(folder: Path, result: SensitivityResult) -> dict[str, Path]:
    """report.md, report.html and plots/prompt-sensitivity-<task>.png in `folder`; returns their paths."""
    pngs = {t.task: figure(t) for t in result.tasks}
    for task, data in pngs.items():
        atomic_write_bytes(folder / "plots" / plot_name(task), data)
    out = {"md": folder / "report.md", "html": folder / "report.html"}
    atomic_write_text(out["md"], markdown_report(folder.name, result))
    atomic_write_text(out["html"], html_report(folder.name, result, pngs))
    return out


def markdown_report(name: str, result: SensitivityResult) -> str:
    lines = [f"# {result.provenance['suite']}: prompt sensitivity (`{name}`)", "", intro(result)]
    for t in result.tasks:
        comparisons = comparisons_table(t)
        lines += ["", f"## {t.task}", "", *markdown_table(scores_table(t)), "",
                  f"![prompt sensitivity, {t.task}](plots/{plot_name(t.task)})", ""]
        if t.comparisons:
            lines += [f"### {comparisons.title}", "", *markdown_table(comparisons), "",
                      *[f"- {v}" for v in comparisons.notes], ""]
        else:
            lines += [ONE_ARM, ""]
        lines += [f"### {t.task}: the wordings", "", *markdown_table(wordings_table(t))]
    lines += ["", "## Provenance", "", *markdown_table(provenance_table(result)), ""]
    return "\n".join(lines)


def html_report(name: str, result: SensitivityResult, pngs: dict[str, bytes]) -> str:
    sections = [f"<h1>{escape(result.provenance['suite'])}: prompt sensitivity</h1>",
                f'<p class="meta">{escape(name)}. {escape(intro(result))}</p>']
    for t in result.tasks:
        comparisons = comparisons_table(t)
        sections += [f"<h2>{escape(t.task)}</h2>", html_table(scores_table(t)),
                     img(pngs[t.task], f"prompt sensitivity, {t.task}")]
        if t.comparisons:
            sections += [f"<h3>{escape(comparisons.title)}</h3>", html_table(comparisons),
                         "<ul>" + "".join(f"<li>{escape(v)}</li>" for v in comparisons.notes) + "</ul>"]
        else:
            sections += [f"<p>{escape(ONE_ARM)}</p>"]
        sections += [f"<h3>{escape(t.task)}: the wordings</h3>", html_table(wordings_table(t))]
    sections += ["<h2>Provenance</h2>", html_table(provenance_table(result))]
    return page(f"{result.provenance['suite']} prompt sensitivity {name}", sections)


def terminal_tables(result: SensitivityResult) -> list:
    """Each task's scores and comparisons, for the terminal (rich tables; verdicts as captions)."""
    return [rich_table(table) for t in result.tasks
            for table in (scores_table(t), *([comparisons_table(t)] if t.comparisons else []))]
