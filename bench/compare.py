"""`bench compare RUN_A RUN_B ...`: runs side by side (two base models, two LoRA ranks, two suites'
shared arms). Rows: (task, metric, arm variant); columns: runs. No model is loaded."""

from __future__ import annotations

from pathlib import Path

from rich.table import Table

from .report import fmt
from .store import read_json


def _label(run_dir: Path, run: dict) -> str:
    return f"{run['suite']}/{run_dir.name} ({run['model']['spec']}, {run['model']['dtype']})"


def compare_runs(run_dirs: list[Path]) -> tuple[Table, str]:
    for d in run_dirs:
        if not (d / "scores.json").is_file():
            raise KeyError(f"{d}: not a run directory (no scores.json); expected results/<suite>/<run-id>")
    runs = [(d, read_json(d / "run.json"), read_json(d / "scores.json")) for d in run_dirs]
    labels = [_label(d, r) for d, r, _ in runs]
    keys: list[tuple[str, str, str]] = []
    for _, _, s in runs:
        for t, ts in s["tasks"].items():
            for m in ts["metrics"]:
                for a in ["floor", *ts["arms"]]:
                    if (t, m, a) not in keys:
                        keys.append((t, m, a))

    def cell(s: dict, t: str, m: str, a: str) -> str:
        ts = s["tasks"].get(t)
        if not ts:
            return "—"
        est = ts["floor"]["metrics"].get(m) if a == "floor" else ts["arms"].get(a, {}).get("metrics", {}).get(m)
        return fmt(est)

    table = Table(title="comparison of runs: score [95% CI]")
    for col in ("task", "metric", "arm variant", *labels):
        table.add_column(col, overflow="fold")
    md = ["| task | metric | arm variant | " + " | ".join(labels) + " |", "|---|---|---|" + "---|" * len(labels)]
    for t, m, a in keys:
        cells = [cell(s, t, m, a) for _, _, s in runs]
        table.add_row(t, m, a, *cells)
        md.append(f"| {t} | {m} | {a} | " + " | ".join(cells) + " |")
    notes = []
    tasks = {t for _, _, s in runs for t in s["tasks"]}
    for t in sorted(tasks):
        hashes = {r["data"].get(t, {}).get("test_hash") for _, r, _ in runs if t in r["data"]}
        if len(hashes) > 1:
            notes.append(f"{t}: the runs used different test examples; compare with care.")
    if notes:
        table.caption = " ".join(notes)
        md += [""] + [f"Note: {n}" for n in notes]
    return table, "\n".join(md) + "\n"
