"""Matplotlib figures for the report, returned as PNG bytes (embedded in HTML, saved beside MD)."""

from __future__ import annotations

import io

from .decision import TaskDecision
from .results import ArmCosts, Estimate, RunResults, TaskResults

PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"]


def _png(fig) -> bytes:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def report_plots(run: RunResults, decisions: dict[str, TaskDecision]) -> dict[str, bytes]:
    """Every figure of the report by name: '<task>-bars', '<task>-cost', '<task>-retrieval', 'loss'."""
    pngs: dict[str, bytes] = {}
    for name, task in run.tasks.items():
        if not task.arms:
            continue
        pngs[f"{name}-bars"] = bars_with_ci(task)
        pngs[f"{name}-cost"] = quality_vs_cost(task, decisions[name].costs, decisions[name].primary)
        if task.retrieval:
            pngs[f"{name}-retrieval"] = retrieval_recall(name, task.retrieval)
    if run.loss_curves:
        pngs["loss"] = loss_curves(run.loss_curves, "training and validation loss")
    return pngs


def bars_with_ci(task: TaskResults) -> bytes:
    """Every arm's score per metric, whiskers at the 95% CI, the floor as a dashed line."""
    plt = _plt()
    arms, metrics = list(task.arms), task.metrics
    fig, ax = plt.subplots(figsize=(max(4.5, 1.2 * len(arms) * len(metrics) / 1.5), 3.4))
    width = 0.8 / max(1, len(arms))
    for j, a in enumerate(arms):
        vals = [task.arms[a].metrics[m] for m in metrics]
        xs = [i + (j - (len(arms) - 1) / 2) * width for i in range(len(metrics))]
        ax.bar(xs, [v.value for v in vals], width, label=a, color=PALETTE[j % len(PALETTE)],
               yerr=[[v.value - v.low for v in vals], [v.high - v.value for v in vals]], capsize=3)
    for i, m in enumerate(metrics):
        f = task.floor.metrics.get(m)
        if f:
            ax.hlines(f.value, i - 0.45, i + 0.45, colors="black", linestyles="dashed", linewidth=1)
    ax.set_xticks(range(len(metrics)), metrics)
    ax.set_ylim(0, 1)
    ax.set_ylabel("score (95% CI); dashed: floor")
    ax.set_title(task.name)
    ax.legend(fontsize=7, ncols=2)
    return _png(fig)


def quality_vs_cost(task: TaskResults, costs: dict[str, ArmCosts], primary: str) -> bytes:
    """Primary metric against per-query latency; training time, where any, is written beside the point."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 3.4))
    for j, (a, r) in enumerate(task.arms.items()):
        c, e = costs.get(a), r.metrics[primary]
        if c is None or c.latency_s is None:
            continue
        ax.errorbar([c.latency_s], [e.value], yerr=[[e.value - e.low], [e.high - e.value]],
                    fmt="o", color=PALETTE[j % len(PALETTE)], capsize=3, label=a)
        train = c.train_s
        ax.annotate(a + (f" (+{train:.0f} s training)" if train else ""), (c.latency_s, e.value), fontsize=7,
                    xytext=(4, 4), textcoords="offset points")
    floor = task.floor.metrics.get(primary)
    if floor:
        ax.axhline(floor.value, color="black", linestyle="dashed", linewidth=1, label="floor")
    ax.set_xlabel("seconds per query (measured)")
    ax.set_ylabel(f"{primary} (95% CI)")
    ax.set_title(f"{task.name}: quality against cost")
    ax.set_ylim(0, 1)
    return _png(fig)


def loss_curves(curves: dict[str, list[list[float]]], title: str) -> bytes:
    """Training and validation loss per step, one line per (arm, split)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 3.2))
    for j, (name, points) in enumerate(curves.items()):
        if points:
            xs, ys = zip(*[(p[0], p[1]) for p in points])
            ax.plot(xs, ys, marker="." if len(xs) < 30 else None, label=name, color=PALETTE[j % len(PALETTE)])
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title(title)
    ax.legend(fontsize=7)
    return _png(fig)


def retrieval_recall(task: str, retrieval: dict[str, dict[str, Estimate]]) -> bytes:
    """recall@1, recall@k and MRR per retrieval arm, with CIs; an arm without another arm's recall@k
    (a different k) has no bar there."""
    plt = _plt()
    arms = list(retrieval)
    names = list(dict.fromkeys(n for scores in retrieval.values() for n in scores))
    fig, ax = plt.subplots(figsize=(4.5, 3.2))
    width = 0.8 / max(1, len(arms))
    for j, a in enumerate(arms):
        shown = [(i, retrieval[a][n]) for i, n in enumerate(names) if n in retrieval[a]]
        xs = [i + (j - (len(arms) - 1) / 2) * width for i, _ in shown]
        vals = [v for _, v in shown]
        ax.bar(xs, [v.value for v in vals], width, label=a, color=PALETTE[(j + 2) % len(PALETTE)],
               yerr=[[v.value - v.low for v in vals], [v.high - v.value for v in vals]], capsize=3)
    ax.set_xticks(range(len(names)), names)
    ax.set_ylim(0, 1)
    ax.set_title(f"{task}: retrieval of the gold document")
    ax.legend(fontsize=7)
    return _png(fig)
