"""The learning curve's report: per task a table of scores by train size, the pairs' verdicts, a
figure (score against train size, 95% CI bands), the cells' training costs; report.md and report.html."""

from __future__ import annotations

from html import escape
from pathlib import Path

from ..plots import PALETTE, _plt, _png
from ..render_html import html_table, img, page
from ..render_markdown import markdown_table
from ..render_terminal import rich_table
from ..stats import p_phrase
from ..store import atomic_write_bytes, atomic_write_text
from ..tables import Row, Table, fmt
from .curve_figures import CurveResult, PairCurve, Point


def _label(result: CurveResult, task: str, size: int) -> str:
    return f"all ({size})" if size == result.record.train_n[task] else str(size)


def scores_table(result: CurveResult, task: str) -> Table:
    """Arms by train size: the first metric with its 95% CI; a flat variant once, under 'all'."""
    info, sizes = result.record.tasks[task], result.sizes_of(task)
    rows = []
    for arm in dict.fromkeys(p.arm for p in result.of(task)):
        at = {p.size: p for p in result.of(task) if p.arm == arm}
        flat = arm in result.record.flat
        rows.append(Row([arm + (" (flat: no train data)" if flat else ""),
                         *[fmt(at[s].metrics[info.primary]) if s in at else "—" for s in sizes]]))
    floor = info.floor.get(info.primary)
    rows.append(Row([f"floor: {info.floor_name}", *["" for _ in sizes[:-1]], fmt(floor)], kind="floor"))
    skipped = [f"{s.arm} at {s.size}: {s.why}" for s in result.record.skipped if s.task == task]
    return Table(title=f"{task}: {info.primary} [95% CI] by train examples available (test n = {info.n})",
                 header=["arm", *[_label(result, task, s) for s in sizes]], rows=rows,
                 notes=["not run: " + "; ".join(skipped)] if skipped else [])


def pairs_table(result: CurveResult, task: str) -> Table:
    """Per pair: the smallest size at which each beats the other, and the test at every size."""
    rows = []
    for pair in (p for p in result.pairs if p.task == task):
        tests = "; ".join(f"{_label(result, task, t.size)}: {t.difference:+.3f} ({p_phrase(t.p_holm, 'p_holm')})"
                          for t in pair.tests)
        rows.append(Row([f"{pair.a} vs {pair.b}", _won(result, task, pair.a_from), _won(result, task, pair.b_from),
                         tests]))
    metric = result.record.tasks[task].primary
    return Table(title=f"{task}: from which train size one arm beats the other ({metric})",
                 header=["A vs B", "A beats B from", "B beats A from", "A − B at each size"], rows=rows,
                 notes=["paired test at each size (exact McNemar for accuracy, else paired bootstrap), Holm-corrected "
                        "over the sizes the pair was tested at; a variant that uses no train data is compared by its "
                        "one cell at every size"], numeric_from=None)


def _wins(result: CurveResult, task: str) -> list[PairCurve]:
    """The task's pairs in which one variant beats the other at some size (the table has the rest)."""
    return [p for p in result.pairs if p.task == task and (p.a_from is not None or p.b_from is not None)]


def _won(result: CurveResult, task: str, size: int | None) -> str:
    return "not within the sizes tried" if size is None else _label(result, task, size)


def cells_table(result: CurveResult) -> Table:
    """Every cell: trained-on examples and training seconds (fine-tunes), whether it came from the cache."""
    rows = [Row([p.arm, p.task, _label(result, p.task, p.size),
                 "—" if p.cell.train_examples is None else str(p.cell.train_examples),
                 "—" if p.cell.train_s is None else f"{p.cell.train_s:.1f}", f"{p.cell.predict_s:.1f}",
                 "yes" if p.cell.cached else "no"]) for p in result.points]
    return Table(title="Cells", header=["arm", "task", "train size", "trained on", "training s", "cell s", "cached"],
                 rows=rows, numeric_from=2,
                 notes=["'trained on' is below the size where a fine-tune's train_limit or validation hold-out takes "
                        "its share; 'cell s' is the time the cell took when it was computed (cached or not)"])


def provenance_table(result: CurveResult) -> Table:
    p = result.record.provenance
    return Table(title="Provenance", header=["what", "value"], rows=[Row([k, str(v)]) for k, v in p.items()],
                 numeric_from=None)


def intro(result: CurveResult) -> str:
    p = result.record.provenance
    return (f"Model `{p['model']}` on {p['device']} ({p['dtype']}), seed {p['seed']}. Every variant that uses train "
            f"data ({', '.join(result.record.learners)}) ran with the first n examples of one seeded order of each "
            "task's train split (so each smaller set is a subset of every larger one), validation and test untouched; "
            f"the variants that use none ({', '.join(result.record.flat) or 'none'}) ran once, with the full split, "
            "and are drawn as flat lines. 'all' cells are those of `bench run` (the same cache keys).")


def figure(result: CurveResult, task: str) -> bytes:
    """Score against train size (log scale), one line with a 95% CI band per variant that uses
    train data; flat variants as horizontal lines with their band; the floor dashed."""
    plt = _plt()
    info, sizes = result.record.tasks[task], result.sizes_of(task)
    fig, ax = plt.subplots(figsize=(6, 3.8))
    for j, arm in enumerate(dict.fromkeys(p.arm for p in result.of(task))):
        pts = sorted((p for p in result.of(task) if p.arm == arm), key=lambda p: p.size)
        _draw(ax, pts, info.primary, PALETTE[j % len(PALETTE)], (sizes[0], sizes[-1]))
    floor = info.floor.get(info.primary)
    if floor:
        ax.axhline(floor.value, color="black", linestyle="dashed", linewidth=1, label=f"floor ({info.floor_name})")
    ax.set_xscale("log", base=2)
    ax.set_xticks(sizes, [_label(result, task, s) for s in sizes], fontsize=7)
    ax.minorticks_off()
    ax.set_ylim(0, 1)
    ax.set_xlabel("train examples available")
    ax.set_ylabel(f"{info.primary} (95% CI)")
    ax.set_title(f"{task}: learning curve (test n = {info.n})", fontsize=9)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False)
    return _png(fig)


def _draw(ax, pts: list[Point], metric: str, colour: str, span: tuple[int, int]) -> None:
    est = [p.metrics[metric] for p in pts]
    if pts[0].flat:
        ax.hlines(est[0].value, *span, colors=colour, linestyles="dotted", label=f"{pts[0].arm} (no train data)")
        ax.fill_between(span, est[0].low, est[0].high, color=colour, alpha=0.10, linewidth=0)
        return
    xs = [p.size for p in pts]
    ax.plot(xs, [e.value for e in est], marker="o", markersize=3, color=colour, label=pts[0].arm)
    ax.fill_between(xs, [e.low for e in est], [e.high for e in est], color=colour, alpha=0.18, linewidth=0)


def write_curve_report(folder: Path, result: CurveResult) -> None:
    """report.md, report.html and plots/learning-curve-<task>.png in `folder`."""
    pngs = {task: figure(result, task) for task in result.record.tasks}
    for task, data in pngs.items():
        atomic_write_bytes(folder / "plots" / f"learning-curve-{task}.png", data)
    atomic_write_text(folder / "report.md", markdown_report(folder.name, result))
    atomic_write_text(folder / "report.html", html_report(folder.name, result, pngs))


def markdown_report(name: str, result: CurveResult) -> str:
    lines = [f"# {result.record.provenance['suite']}: learning curve (`{name}`)", "", intro(result)]
    for task in result.record.tasks:
        scores, pairs = scores_table(result, task), pairs_table(result, task)
        lines += ["", f"## {task}", "", *markdown_table(scores), *[f"\n{n}." for n in scores.notes], "",
                  f"![learning curve, {task}](plots/learning-curve-{task}.png)", "", f"### {pairs.title}", "",
                  *markdown_table(pairs), "", *[f"- {p.sentence()}." for p in _wins(result, task)],
                  *[f"\n{n}." for n in pairs.notes]]
    cells = cells_table(result)
    lines += ["", "## Cells", "", *markdown_table(cells), *[f"\n{n}." for n in cells.notes],
              "", "## Provenance", "", *markdown_table(provenance_table(result)), ""]
    return "\n".join(lines)


def html_report(name: str, result: CurveResult, pngs: dict[str, bytes]) -> str:
    sections = [f"<h1>{escape(result.record.provenance['suite'])}: learning curve</h1>",
                f'<p class="meta">{escape(name)}. {escape(intro(result))}</p>']
    for task in result.record.tasks:
        scores, pairs = scores_table(result, task), pairs_table(result, task)
        sections += [f"<h2>{escape(task)}</h2>", html_table(scores), *[f"<p>{escape(n)}.</p>" for n in scores.notes],
                     img(pngs[task], f"learning curve, {task}"), f"<h3>{escape(pairs.title)}</h3>", html_table(pairs),
                     "<ul>" + "".join(f"<li>{escape(p.sentence())}.</li>" for p in _wins(result, task)) + "</ul>",
                     *[f"<p>{escape(n)}.</p>" for n in pairs.notes]]
    sections += ["<h2>Cells</h2>", html_table(cells_table(result)), "<h2>Provenance</h2>",
                 html_table(provenance_table(result))]
    return page(f"{result.record.provenance['suite']} learning curve {name}", sections)


def terminal_tables(result: CurveResult) -> list:
    out = []
    for task in result.record.tasks:
        out += [rich_table(scores_table(result, task)), rich_table(pairs_table(result, task))]
    return out
