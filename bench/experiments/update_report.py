"""The knowledge-update experiment's section: tables (bench.tables' `Table`, rendered by the
project's Markdown, HTML and terminal renderers), one figure per task, report.md and report.html."""

from __future__ import annotations

import math
from pathlib import Path

from ..plots import PALETTE, _plt, _png
from ..render_html import html_table, img, page
from ..render_markdown import markdown_table
from ..render_terminal import rich_table
from ..stats import Estimate
from ..store import atomic_write_bytes, atomic_write_text
from ..tables import Row, Table, fmt
from .reindex import ReindexCost
from .update_figures import ConditionResult, ExperimentResult

NEW_COLOUR, OLD_COLOUR = "#2ca02c", "#d62728"


def _est(e: Estimate | None) -> str:
    return "—" if e is None or e.n == 0 or math.isnan(e.value) else fmt(e)


def _of(result: ExperimentResult, task: str) -> list[ConditionResult]:
    return [c for c in result.conditions if c.task == task]


def shares_table(result: ExperimentResult, task: str, *, unseen: bool = False) -> Table:
    """Per variant and state: new and old answers' shares; retrieval of the update's document."""
    rows = []
    for c in _of(result, task):
        s = c.unseen if unseen else c.all
        rows.append(Row([c.arm, c.state, str(s.n), _est(s.new), _est(s.old), _est(s.update_retrieved)]))
    which = "outside the train split" if unseen else "all"
    return Table(title=f"{task}: changed questions ({which})",
                 header=["arm", "state", "n", "new answer [95% CI]", "old answer [95% CI]",
                         "retrieved the update's document"],
                 rows=rows, numeric_from=2)


def catch_up_table(result: ExperimentResult, task: str) -> Table:
    """Per variant after the update: what bringing it up to date took."""
    rows = [Row([c.arm, c.state, _s(c.catch_up.reindex_s), _s(c.catch_up.retrain_s), _total(c)])
            for c in _of(result, task) if c.world == "after"]
    return Table(title=f"{task}: the cost of catching up (seconds)",
                 header=["arm", "state", "re-index s", "retraining s", "catch-up s"], rows=rows,
                 notes=reindex_notes(result), numeric_from=2)


def reindex_notes(result: ExperimentResult) -> list[str]:
    """One line per re-index measured (variants with the same retrieval settings share one)."""
    arms_of: dict[ReindexCost, list[str]] = {}
    for name, cost in result.reindex.items():
        arms_of.setdefault(cost, []).append(name)
    return [f"re-index ({', '.join(names)}): {r.documents} documents, {r.chunks} chunks embedded and indexed from "
            f"scratch on {r.device}, {_seconds(r.embedding_s)} s embedding and {_seconds(r.index_build_s)} s index "
            "building of the whole updated corpus" for r, names in arms_of.items()]


def _s(value: float | None) -> str:
    return "—" if value is None else _seconds(value)


def _seconds(value: float) -> str:
    """Seconds to a precision that shows a sub-second re-index and an hour of training alike."""
    return f"{value:.0f}" if value >= 100 else f"{value:.1f}" if value >= 1 else f"{value:.3f}"


def _total(c: ConditionResult) -> str:
    if c.stale:
        first = c.catch_up.first_training_s
        retrain = f"; retraining ≈ {_seconds(first)} s, the first training" if first is not None else ""
        return f"{_seconds(c.catch_up.total_s)} (stale{retrain})"
    if not c.catch_up_steps:
        return "0 (nothing to update)"
    return _seconds(c.catch_up.total_s)


def provenance_table(result: ExperimentResult) -> Table:
    p = result.provenance
    keys = ("suite", "profile", "model", "model_fingerprint", "device", "dtype", "seed", "git_sha", "code_fingerprint",
            "started", "wall_s", "model_load_s", "stale_only", "corpus_before", "corpus_after")
    rows = [Row([k, str(p.get(k))]) for k in keys]
    rows.append(Row(["update_documents", ", ".join(p.get("update_documents", []))]))
    return Table(title="Provenance", header=["what", "value"], rows=rows, numeric_from=None)


def intro(result: ExperimentResult) -> str:
    p, questions = result.provenance, result.questions
    n = sum(len(q) for q in questions.values())
    in_train = sum(q.split == "train" for qs in questions.values() for q in qs)
    return (f"Model `{p['model']}` on {p['device']} ({p['dtype']}), seed {p['seed']}. **Before**: the corpus without "
            f"its update files ({p['corpus_before']} of {p['corpus_after']} documents), fine-tunes trained on the "
            f"answers from before the update. **After**: the updated corpus, re-indexed for retrieval; a fine-tune "
            f"answers as trained before (stale) or is trained on the updated answers (retrained). "
            f"The questions are the {n} whose answer the update changed, from every split. {in_train} of them come "
            "from the train split, which a fine-tune was trained on (with the old answer before the update, the new "
            "one when retrained): what a stale model repeats is exactly what is measured; the second table leaves "
            "them out. "
            "A share counts outputs that contain a reference answer (normalised, as whole words: the containment "
            "metric) from after the update (new) or from before it (old), with 95% bootstrap CIs; an output can "
            "contain both or neither.")


def figure(result: ExperimentResult, task: str) -> bytes:
    """Per variant and state (one row each, grouped by variant): the new- and old-answer shares with
    CI whiskers, and beside them on the same rows the seconds catching up took."""
    plt = _plt()
    conds = _of(result, task)
    fig, (ax, cost) = plt.subplots(1, 2, sharey=True, figsize=(9, 0.42 * len(conds) + 1.3),
                                   gridspec_kw={"width_ratios": [3, 1.4]})
    for j, (name, colour) in enumerate((("new", NEW_COLOUR), ("old", OLD_COLOUR))):
        values = [getattr(c.all, name) for c in conds]
        ys = [i + (j - 0.5) * 0.38 for i in range(len(conds))]
        ax.barh(ys, [v.value for v in values], 0.38, color=colour, label=f"{name} answer",
                xerr=[[v.value - v.low for v in values], [v.high - v.value for v in values]], capsize=2)
    ax.set_yticks(range(len(conds)), [f"{c.arm} · {c.state}" for c in conds], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("share of changed questions (95% CI)")
    ax.set_title(f"{task}: {conds[0].all.n if conds else 0} changed questions", fontsize=9, pad=18)
    ax.legend(fontsize=7, ncols=2, loc="lower center", bbox_to_anchor=(0.5, 1.0), frameon=False)
    _cost_bars(cost, conds)
    for i in range(1, len(conds)):  # a rule between variants
        if conds[i].arm != conds[i - 1].arm:
            for a in (ax, cost):
                a.axhline(i - 0.5, color="#bbb", linewidth=0.6)
    return _png(fig)


def _cost_bars(ax, conds: list[ConditionResult]) -> None:
    """Catch-up seconds on the rows after the update: re-index blue, retraining (with any re-index) orange."""
    for i, c in enumerate(conds):
        if c.world != "after":
            continue
        colour = PALETTE[1] if "retraining" in c.catch_up_steps else PALETTE[0]
        ax.barh(i, c.catch_up.total_s, 0.6, color=colour)
        label = _seconds(c.catch_up.total_s) + (" (stale)" if c.stale else "")
        ax.annotate(label, (c.catch_up.total_s, i), xytext=(3, 0), textcoords="offset points", va="center",
                    fontsize=6)
    ax.set_xlabel("catch-up seconds")
    ax.set_title("re-index (blue), retraining (orange)", fontsize=8)
    ax.margins(x=0.35)


def write_update_report(folder: Path, result: ExperimentResult) -> dict[str, Path]:
    """report.md, report.html and plots/knowledge-update-<task>.png in `folder`; returns their paths."""
    tasks = list(result.questions)
    pngs = {task: figure(result, task) for task in tasks}
    for task, data in pngs.items():
        atomic_write_bytes(folder / "plots" / f"knowledge-update-{task}.png", data)
    out = {"md": folder / "report.md", "html": folder / "report.html"}
    atomic_write_text(out["md"], markdown_report(folder.name, result))
    atomic_write_text(out["html"], html_report(folder.name, result, pngs))
    return out


def markdown_report(name: str, result: ExperimentResult) -> str:
    lines = [f"# {result.provenance['suite']}: knowledge update (`{name}`)", "", intro(result)]
    for task in result.questions:
        lines += ["", f"## {task}: who answers with the new facts", "", *markdown_table(shares_table(result, task)),
                  "", f"![knowledge update, {task}](plots/knowledge-update-{task}.png)", "",
                  "The same, on the changed questions outside the train split (no fine-tune was trained on them):", "",
                  *markdown_table(shares_table(result, task, unseen=True))]
        costs = catch_up_table(result, task)
        lines += ["", f"### {costs.title}", "", *markdown_table(costs), *[f"\n{n}." for n in costs.notes]]
    lines += ["", "## Provenance", "", *markdown_table(provenance_table(result)), ""]
    return "\n".join(lines)


def html_report(name: str, result: ExperimentResult, pngs: dict[str, bytes]) -> str:
    from html import escape

    sections = [f"<h1>{escape(result.provenance['suite'])}: knowledge update</h1>",
                f'<p class="meta">{escape(name)}. {escape(intro(result).replace("**", ""))}</p>']
    for task in result.questions:
        costs = catch_up_table(result, task)
        sections += [f"<h2>{escape(task)}: who answers with the new facts</h2>", html_table(shares_table(result, task)),
                     img(pngs[task], f"knowledge update, {task}"),
                     "<p>The same, on the changed questions outside the train split (no fine-tune was trained on "
                     "them):</p>", html_table(shares_table(result, task, unseen=True)),
                     f"<h3>{escape(costs.title)}</h3>", html_table(costs),
                     *[f"<p>{escape(n)}.</p>" for n in costs.notes]]
    sections += ["<h2>Provenance</h2>", html_table(provenance_table(result))]
    return page(f"{result.provenance['suite']} knowledge update {name}", sections)



def terminal_tables(result: ExperimentResult) -> list:
    """The shares and catch-up tables of every task, for the terminal (rich tables)."""
    out = []
    for task in result.questions:
        out += [rich_table(shares_table(result, task)), rich_table(catch_up_table(result, task))]
    return out
