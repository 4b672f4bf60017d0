"""The seed spread's report: per task the score at each training seed with mean and spread, the
comparisons with their verdicts, a figure (every seed's score with its CI, per variant); the
cells; report.md and report.html."""

from __future__ import annotations

import math
from html import escape
from pathlib import Path

from ..plots import PALETTE, _plt, _png
from ..render_html import html_table, img, page
from ..render_markdown import markdown_table
from ..render_terminal import rich_table
from ..stats import format_p as _p
from ..stats import p_phrase
from ..store import atomic_write_bytes, atomic_write_text
from ..tables import Row, Table, fmt
from .seed_figures import SeedResult, verdict


def _num(x: float) -> str:
    return "—" if math.isnan(x) else f"{x:.3f}"


def spread_table(result: SeedResult, task: str) -> Table:
    """Per variant: the first metric at each training seed, then mean, sd and range over seeds."""
    info, seeds = result.record.tasks[task], result.record.seeds
    rows = []
    for s in (s for s in result.spreads if s.task == task):
        by_seed = dict(zip(s.seeds, s.scores))
        once = "" if s.seeded else fmt(s.scores[0])
        rows.append(Row([s.arm, *[fmt(by_seed[x]) if x in by_seed else "" for x in seeds], once, _num(s.mean),
                         _num(s.sd), f"{s.low:.3f} – {s.high:.3f}" if s.seeded else ""]))
    floor = info.floor.get(info.primary)
    rows.append(Row([f"floor: {info.floor_name}", *["" for _ in seeds], fmt(floor), "", "", ""], kind="floor"))
    return Table(title=f"{task}: {info.primary} [95% CI] by training seed (test n = {info.n})",
                 header=["arm", *[f"seed {x}" for x in seeds], "run once", "mean", "sd", "min – max"], rows=rows,
                 notes=["sd: sample standard deviation over the seeds; a variant run once has no seed spread of its "
                        "own"])


def comparisons_table(result: SeedResult, task: str) -> Table:
    """Per comparison: the gap over seeds and examples, and each seed's own paired test."""
    rows = []
    for c in (c for c in result.comparisons if c.task == task):
        t = c.seed_aware
        per_seed = "; ".join(f"{'' if s is None else f'seed {s}: '}{x.difference:+.3f} ({p_phrase(x.p_value)})"
                             for s, x in c.per_seed)
        rows.append(Row([f"{c.arm} − {c.other}", f"{t.difference:+.3f} [{t.low:+.3f}, {t.high:+.3f}]",
                         _p(c.p_holm), f"{t.df:.1f}", per_seed, _p(c.weakest_p)],
                        emphasis=frozenset({2}) if c.p_holm < 0.05 else frozenset()))
    metric = result.record.tasks[task].primary
    return Table(title=f"{task}: gaps that account for training variance ({metric})",
                 header=["A − B", "over seeds and examples [95% CI]", "p (Holm)", "df", "each seed's paired test",
                         "weakest seed p"], rows=rows, numeric_from=None,
                 notes=["over seeds and examples: mean over A's seeds minus mean over B's, its variance from "
                        "resampling test examples plus each seeded arm's variance over its seeds, Student's t with "
                        "Welch–Satterthwaite df, Holm-corrected over the task's comparisons; each seed's paired test "
                        "is a run's (exact McNemar for accuracy, else paired bootstrap), shown for comparison only"])


def cells_table(result: SeedResult) -> Table:
    rows = [Row([c.arm, c.task, c.group, "—" if c.train_s is None else f"{c.train_s:.1f}", f"{c.predict_s:.1f}",
                 "yes" if c.cached else "no", c.cache_key]) for c in result.record.cells]
    return Table(title="Cells", header=["arm", "task", "group", "training s", "cell s", "cached", "cache key"],
                 rows=rows, numeric_from=None)


def provenance_table(result: SeedResult) -> Table:
    p = result.record.provenance
    return Table(title="Provenance", header=["what", "value"], rows=[Row([k, str(v)]) for k, v in p.items()],
                 numeric_from=None)


def intro(result: SeedResult) -> str:
    p, r = result.record.provenance, result.record
    return (f"Model `{p['model']}` on {p['device']} ({p['dtype']}), suite seed {p['seed']}. "
            f"{', '.join(p['finetunes'])} trained with training seeds {', '.join(map(str, r.seeds))} (LoRA "
            "initialisation, batch order, dropout, the validation sample scored in training; the examples trained "
            f"on are the same), and the retrieval variants built on them ran on each model: "
            f"{', '.join(a for a in r.seeded if a not in p['finetunes']) or 'none'}. Every other variant ran once. "
            "At the suite seed the cells are those of `bench run` (the same cache keys).")


def figure(result: SeedResult, task: str) -> bytes:
    """Per variant (one row each): each seed's score with its 95% CI, the mean over seeds as a bar."""
    plt = _plt()
    spreads = [s for s in result.spreads if s.task == task]
    info = result.record.tasks[task]
    fig, ax = plt.subplots(figsize=(6.5, 0.5 * len(spreads) + 1.4))
    for i, s in enumerate(spreads):
        colour = PALETTE[i % len(PALETTE)]
        offsets = [0.0] if len(s.scores) == 1 else [(j / (len(s.scores) - 1) - 0.5) * 0.4 for j in range(len(s.scores))]
        for dy, seed, e in zip(offsets, s.seeds, s.scores):
            ax.errorbar([e.value], [i + dy], xerr=[[e.value - e.low], [e.high - e.value]], fmt="o", color=colour,
                        markersize=4, capsize=2, linewidth=1)
            if seed is not None:
                ax.annotate(str(seed), (e.value, i + dy), xytext=(3, 2), textcoords="offset points", fontsize=6)
        if s.seeded:
            ax.vlines(s.mean, i - 0.3, i + 0.3, colors=colour, linewidth=2)
    floor = info.floor.get(info.primary)
    if floor:
        ax.axvline(floor.value, color="black", linestyle="dashed", linewidth=1)
    ax.set_yticks(range(len(spreads)), [s.arm + (" (seeds)" if s.seeded else "") for s in spreads], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel(f"{info.primary} (95% CI); labels: training seed; bar: mean over seeds; dashed: floor")
    ax.set_title(f"{task}: scores by training seed (test n = {info.n})", fontsize=9)
    return _png(fig)


def write_seed_report(folder: Path, result: SeedResult) -> None:
    """report.md, report.html and plots/seed-spread-<task>.png in `folder`."""
    pngs = {task: figure(result, task) for task in result.record.tasks}
    for task, data in pngs.items():
        atomic_write_bytes(folder / "plots" / f"seed-spread-{task}.png", data)
    atomic_write_text(folder / "report.md", markdown_report(folder.name, result))
    atomic_write_text(folder / "report.html", html_report(folder.name, result, pngs))


def _verdicts(result: SeedResult, task: str) -> list[str]:
    return [verdict(result, c) for c in result.comparisons if c.task == task]


def markdown_report(name: str, result: SeedResult) -> str:
    lines = [f"# {result.record.provenance['suite']}: training-seed spread (`{name}`)", "", intro(result)]
    for task in result.record.tasks:
        spreads, comparisons = spread_table(result, task), comparisons_table(result, task)
        lines += ["", f"## {task}", "", *markdown_table(spreads), *[f"\n{n}." for n in spreads.notes], "",
                  f"![seed spread, {task}](plots/seed-spread-{task}.png)", "", f"### {comparisons.title}", "",
                  *markdown_table(comparisons), *[f"\n{n}." for n in comparisons.notes], "",
                  *[f"- {v}" for v in _verdicts(result, task)]]
    lines += ["", "## Cells", "", *markdown_table(cells_table(result)),
              "", "## Provenance", "", *markdown_table(provenance_table(result)), ""]
    return "\n".join(lines)


def html_report(name: str, result: SeedResult, pngs: dict[str, bytes]) -> str:
    sections = [f"<h1>{escape(result.record.provenance['suite'])}: training-seed spread</h1>",
                f'<p class="meta">{escape(name)}. {escape(intro(result))}</p>']
    for task in result.record.tasks:
        spreads, comparisons = spread_table(result, task), comparisons_table(result, task)
        sections += [f"<h2>{escape(task)}</h2>", html_table(spreads), *[f"<p>{escape(n)}.</p>" for n in spreads.notes],
                     img(pngs[task], f"seed spread, {task}"), f"<h3>{escape(comparisons.title)}</h3>",
                     html_table(comparisons), *[f"<p>{escape(n)}.</p>" for n in comparisons.notes],
                     "<ul>" + "".join(f"<li>{escape(v)}</li>" for v in _verdicts(result, task)) + "</ul>"]
    sections += ["<h2>Cells</h2>", html_table(cells_table(result)), "<h2>Provenance</h2>",
                 html_table(provenance_table(result))]
    return page(f"{result.record.provenance['suite']} seed spread {name}", sections)


def terminal_tables(result: SeedResult) -> list:
    out = []
    for task in result.record.tasks:
        out += [rich_table(spread_table(result, task)), rich_table(comparisons_table(result, task))]
    return out
