"""The sweep's report: every trial's validation scores and the choice (bench.tables' `Table`, drawn by
the project's Markdown, HTML and terminal renderers), one figure per variant and task, report.md and
report.html. Everything comes from sweep.json's typed figures, so `bench report` rebuilds it without
a model."""

from __future__ import annotations

import math
from pathlib import Path

from ..errors import ConfigError
from ..plots import PALETTE, _plt, _png
from ..render_html import html_table, img, page
from ..render_markdown import markdown_table
from ..render_terminal import rich_table
from ..stats import Estimate
from ..store import atomic_write_bytes, atomic_write_text, read_json
from ..tables import Row, Table, fmt
from .sweep_results import (
    LOSS,
    RECORD_FILE,
    SweepResult,
    TrialInfo,
    TrialScore,
    VariantResult,
    result_from_json,
    value,
)

CHOSEN_COLOUR, OTHER_COLOUR, TEST_COLOUR = PALETTE[3], PALETTE[0], PALETTE[2]


def _loss(s: TrialScore | None) -> str:
    return "—" if s is None or s.loss is None else f"{s.loss:.4f}"


def _est(e: Estimate | None) -> str:
    return "—" if e is None or e.n == 0 or math.isnan(e.value) else fmt(e)


def trials_table(v: VariantResult, task: str, metrics: list[str]) -> Table:
    """One row per trial: its settings, validation loss and metrics, training, and which was chosen."""
    choice = v.chosen_for(task)
    rows = [_trial_row(v, t, v.score(t.name, task), metrics, chosen=choice is not None and choice.trial == t.name)
            for t in v.trials]
    direction = "lowest" if v.metric == LOSS else "highest"
    mean = " (mean over the tasks it trains on)" if any(len(c.tasks) > 1 for c in v.choices) else ""
    return Table(title=f"{v.variant} · {task}: trials on {v.validation_n[task]} validation examples",
                 header=["trial", *v.space, "validation loss", *[f"{m} [95% CI]" for m in metrics],
                         "kept step / steps", "training s", ""],
                 rows=rows, numeric_from=1,
                 notes=[f"Chosen: the {direction} validation {v.metric}{mean}; a tie goes to the lower validation "
                        "loss, then to the earlier trial. Validation loss is that of the weights training kept."])


def _trial_row(v: VariantResult, t: TrialInfo, s: TrialScore | None, metrics: list[str], *, chosen: bool) -> Row:
    marks = [m for m, on in (("chosen", chosen), ("as declared", t.declared)) if on]
    if s is not None and s.error:
        marks.append(f"failed: {s.error}")
    steps = "—" if s is None or s.steps is None else f"{'—' if s.best_step is None else s.best_step} / {s.steps}"
    train = "—" if s is None or s.train_s is None else f"{s.train_s:.1f}" + (" (cached)" if s.cached else "")
    cells = [str(t.number), *[value(t.settings[k]) for k in v.space], _loss(s),
             *[_est(s.metrics.get(m)) if s else "—" for m in metrics], steps, train, ", ".join(marks)]
    return Row(cells, emphasis=frozenset(range(len(cells) - 1)) if chosen else frozenset())


def choice_table(v: VariantResult, metrics_of: dict[str, list[str]]) -> Table:
    """Per trained model: the chosen trial and its test scores beside the floor."""
    rows = []
    for c in v.choices:
        trial = next((t for t in v.trials if t.name == c.trial), None)
        settings = (", ".join(f"{k} {value(trial.settings[k])}" for k in v.space) if trial
                    else "none (every trial failed)")
        chosen_value = "—" if c.validation_value is None else f"{c.validation_value:.4f}"
        for task in c.tasks:
            test = [f"{m} {_est(c.test.get(task, {}).get(m))} (floor {_est(c.test_floor.get(task, {}).get(m))})"
                    for m in metrics_of[task]] if c.trial else ["not scored"]
            rows.append(Row([task, str(trial.number) if trial else "—", settings, chosen_value,
                             str(c.test_n.get(task, "—")), "; ".join(test)]))
    return Table(title=f"{v.variant}: the chosen trials on test",
                 header=["task", "trial", "settings", f"validation {v.metric}", "test n", "test scores [95% CI]"],
                 rows=rows, numeric_from=None,
                 notes=["Only the chosen trial ran on the test split. Its validation score is the best of "
                        f"{len(v.trials)}, so it is optimistic; the test score is the estimate to quote."])


def provenance_table(result: SweepResult) -> Table:
    p = result.provenance
    keys = ("suite", "profile", "model", "model_fingerprint", "device", "dtype", "batch_size", "seed", "git_sha",
            "code_fingerprint", "started", "wall_s", "model_load_s", "retrain", "use_cache", "n_boot")
    return Table(title="Provenance", header=["what", "value"], rows=[Row([k, str(p.get(k))]) for k in keys],
                 numeric_from=None)


def figure(v: VariantResult, task: str) -> bytes:
    """Each trial's validation score by the sweep's metric (95% CI where it has one), the chosen trial
    in red, and beside it, for a task metric, the chosen trial's test score (the only test score)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 0.35 * len(v.trials) + 1.4))
    choice = v.chosen_for(task)
    for i, t in enumerate(v.trials):
        s = v.score(t.name, task)
        y = s.value(v.metric) if s else None
        if y is None:
            continue
        colour = CHOSEN_COLOUR if choice and choice.trial == t.name else OTHER_COLOUR
        e = s.metrics.get(v.metric)
        err = [[y - e.low], [e.high - y]] if e is not None and v.metric != LOSS else None
        ax.errorbar([y], [i], xerr=err, fmt="o", color=colour, capsize=3)
    if choice and choice.trial and v.metric != LOSS and v.metric in choice.test.get(task, {}):
        e, i = choice.test[task][v.metric], next(j for j, t in enumerate(v.trials) if t.name == choice.trial)
        ax.errorbar([e.value], [i + 0.3], xerr=[[e.value - e.low], [e.high - e.value]], fmt="D", color=TEST_COLOUR,
                    capsize=3, label="test (chosen trial only)")
        ax.legend(fontsize=7, loc="lower center", bbox_to_anchor=(0.5, 1.0), frameon=False)
    ax.set_yticks(range(len(v.trials)), [f"{t.number}: " + ", ".join(f"{k} {value(t.settings[k])}" for k in v.space)
                                         for t in v.trials], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel(f"validation {v.metric}" + (" (95% CI)" if v.metric != LOSS else "") + "; red: chosen")
    ax.set_title(f"{v.variant} · {task}", fontsize=9, pad=16)
    return _png(fig)


def _metrics_of(v: VariantResult) -> dict[str, list[str]]:
    """Each task's metrics, as scored (the order of the task's declaration)."""
    out: dict[str, list[str]] = {}
    for task in v.tasks:
        names = [m for s in v.scores if s.task == task for m in s.metrics]
        names += [m for c in v.choices for m in c.test.get(task, {})]
        out[task] = list(dict.fromkeys(names))
    return out


def _plot_name(v: VariantResult, task: str) -> str:
    return f"sweep-{v.variant}-{task}.png"


def intro(result: SweepResult) -> str:
    p = result.provenance
    return (f"Model `{p['model']}` on {p['device']} ({p['dtype']}), seed {p['seed']}. Each trial is the fine-tune "
            "variant with one combination of the searched settings, trained and early-stopped on validation as the "
            "variant declares, then scored on the validation examples by the arm's own scorer. The trials ran on a "
            "copy of the suite whose test split is those validation examples, so no test example was in the data "
            "they saw; the choice uses validation scores alone, and only the chosen trial ran on the test split.")


def markdown_report(name: str, result: SweepResult) -> str:
    lines = [f"# {result.provenance['suite']}: validation-only sweep (`{name}`)", "", intro(result)]
    for v in result.variants:
        metrics_of = _metrics_of(v)
        lines += ["", f"## {_heading(v)}"]
        for task in v.tasks:
            table = trials_table(v, task, metrics_of[task])
            lines += ["", f"### {table.title}", "", *markdown_table(table), "", *table.notes, "",
                      f"![{v.variant} sweep, {task}](plots/{_plot_name(v, task)})"]
        choices = choice_table(v, metrics_of)
        lines += ["", f"### {choices.title}", "", *markdown_table(choices), "", *choices.notes, *_use_it(v)]
    lines += ["", "## Provenance", "", *markdown_table(provenance_table(result)), ""]
    return "\n".join(lines)


def _heading(v: VariantResult) -> str:
    space = "; ".join(f"{k} {', '.join(value(x) for x in xs)}" for k, xs in v.space.items())
    return f"{v.variant}: {v.search} search, {len(v.trials)} trials ({space}), chosen by validation {v.metric}"


def _use_it(v: VariantResult) -> list[str]:
    """How to make `bench run` train a chosen trial that is not the declared settings."""
    out = []
    for c in v.choices:
        trial = next((t for t in v.trials if t.name == c.trial), None)
        if trial and not trial.declared:
            settings = ", ".join(f"`{k}: {value(x)}`" for k, x in trial.settings.items())
            out.append(f"To have `bench run` train it for {', '.join(c.tasks)}: set {settings} on `{v.variant}`.")
    return ["", *out] if out else []


def html_report(name: str, result: SweepResult, pngs: dict[str, bytes]) -> str:
    from html import escape

    sections = [f"<h1>{escape(result.provenance['suite'])}: validation-only sweep</h1>",
                f'<p class="meta">{escape(name)}. {escape(intro(result))}</p>']
    for v in result.variants:
        metrics_of = _metrics_of(v)
        sections.append(f"<h2>{escape(_heading(v))}</h2>")
        for task in v.tasks:
            table = trials_table(v, task, metrics_of[task])
            sections += [f"<h3>{escape(table.title)}</h3>", html_table(table),
                         *[f"<p>{escape(n)}</p>" for n in table.notes],
                         img(pngs[_plot_name(v, task)], f"{v.variant} sweep, {task}")]
        choices = choice_table(v, metrics_of)
        sections += [f"<h3>{escape(choices.title)}</h3>", html_table(choices),
                     *[f"<p>{escape(n.replace('`', ''))}</p>" for n in [*choices.notes, *_use_it(v)] if n]]
    sections += ["<h2>Provenance</h2>", html_table(provenance_table(result))]
    return page(f"{result.provenance['suite']} sweep {name}", sections)


def write_sweep_report(folder: Path, result: SweepResult) -> dict[str, Path]:
    """report.md, report.html and plots/sweep-<variant>-<task>.png in `folder`; returns their paths."""
    pngs = {_plot_name(v, task): figure(v, task) for v in result.variants for task in v.tasks}
    for name, data in pngs.items():
        atomic_write_bytes(folder / "plots" / name, data)
    out = {"md": folder / "report.md", "html": folder / "report.html"}
    atomic_write_text(out["md"], markdown_report(folder.name, result))
    atomic_write_text(out["html"], html_report(folder.name, result, pngs))
    return out


def rebuild_sweep_report(folder: Path) -> tuple[SweepResult, dict[str, Path]]:
    """Write the report files again from sweep.json (no model, no cache)."""
    record = Path(folder) / RECORD_FILE
    if not record.is_file():
        raise ConfigError(f"{folder}: no {RECORD_FILE}: not a finished sweep directory (it stopped or failed before "
                          "the end; rerun the experiment, which takes the finished cells from the cache)")
    result = result_from_json(read_json(record))
    return result, write_sweep_report(Path(folder), result)


def terminal_tables(result: SweepResult) -> list:
    """Every variant's trials tables and its choice table, for the terminal (rich tables)."""
    out = []
    for v in result.variants:
        metrics_of = _metrics_of(v)
        out += [rich_table(trials_table(v, task, metrics_of[task])) for task in v.tasks]
        out.append(rich_table(choice_table(v, metrics_of)))
    return out
