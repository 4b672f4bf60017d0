"""Everything a reader decides from, built from a run directory alone (no model, no torch):
terminal tables, report.md, a self-contained report.html, results.csv, plots and decision.json."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from rich.table import Table

from . import html_report as H
from .decision import analyse, train_seconds
from .store import atomic_write_text, read_json, read_jsonl, write_json

SAMPLES = 4


def fmt(est: dict[str, float] | None) -> str:
    if not est:
        return "—"
    return f"{est['value']:.3f} [{est['low']:.3f}, {est['high']:.3f}]"


def fmt_p(c: dict[str, Any] | None) -> str:
    if not c:
        return "best"
    p = c["p_holm"]
    return f"{c['difference']:+.3f}, {'p<0.001' if p < 0.001 else f'p={p:.3f}'}{' *' if p < 0.05 else ''}"


def retrieval_summary(scores: dict[str, Any] | None) -> str:
    """'recall@1 0.62 · recall@4 0.85 · mrr 0.71' (point values; CIs are in scores.json)."""
    if not scores:
        return ""
    return " · ".join(f"{k} {v['value']:.2f}" for k, v in scores.items())


def _scalar_costs(costs: dict[str, Any]) -> str:
    return "; ".join(f"{k} {v}" for k, v in costs.items() if isinstance(v, (int, float, str)) and k != "cached") or "—"


def terminal_tables(run_dir: Path, decision: dict[str, Any] | None = None) -> list[Table]:
    """One table per task (rows: floor and arm variants; columns: metrics and the test against
    the best arm); scoring modes are in report.md, retrieval quality in the caption."""
    scores = read_json(run_dir / "scores.json")
    decision = decision if decision is not None else analyse(run_dir)
    tables = []
    for t, s in scores["tasks"].items():
        d = decision.get(t, {})
        notes = [f"floor: {s['floor']['name']}", f"vs best: difference in {d.get('primary', '')}, "
                 "Holm-corrected p (* < 0.05)"]
        notes += [f"{a} retrieval: {retrieval_summary(r['retrieval'])}" for a, r in s["arms"].items() if r.get("retrieval")]
        table = Table(title=f"{scores['suite']} · {t} ({s['kind']}, n={s['n']} test): score [95% CI]",
                      caption="\n".join(notes))
        table.add_column("arm variant", style="bold", no_wrap=True)
        for m in s["metrics"]:
            table.add_column(m, justify="right", no_wrap=True)
        table.add_column("vs best", no_wrap=True)
        table.add_row("floor", *[fmt(s["floor"]["metrics"].get(m)) for m in s["metrics"]], "", style="dim")
        for a, r in s["arms"].items():
            comp = d.get("comparisons", {}).get(a, {}).get(d.get("primary"))
            table.add_row(a, *[fmt(r["metrics"].get(m)) for m in s["metrics"]], fmt_p(comp))
        tables.append(table)
    return tables


SUMMARY_COSTS = (("latency_s", "latency s / query"), ("prompt_tokens", "prompt tokens / query"),
                 ("train_s", "training s"), ("predict_s", "predict s (whole test set)"))
KIND_TITLES = {"prompt": "Prompting", "rag": "Retrieval", "finetune": "Fine-tuning"}


def cost_tables(decision: dict[str, Any], run: dict[str, Any]) -> list[tuple[str, list[str], list[list[str]]]]:
    """(title, header, rows of plain strings): first what every arm has (latency, prompt tokens,
    training time), then per arm kind everything else it measured, transposed (one row per
    item, one column per variant and task). One table of every key was 49 columns wide for the
    legal run: unreadable on screen and in a paper."""
    kinds = {a["name"]: a["arm"] for a in run.get("spec", {}).get("arms", [])}
    summary, by_kind = [], {}
    for t, d in decision.items():
        for a, c in d["costs"].items():
            values = {**c, "train_s": train_seconds(c)}
            summary.append([t, a, *["" if values.get(k) is None else str(values[k]) for k, _ in SUMMARY_COSTS]])
            by_kind.setdefault(kinds.get(a, "other"), []).append((t, a, c))
    out = [("Costs", ["task", "arm variant", *[label for _, label in SUMMARY_COSTS]], summary)]
    shown = {k for k, _ in SUMMARY_COSTS} | {"cached"}
    for kind, cells in by_kind.items():
        keys: list[str] = []
        for _, _, c in cells:
            keys += [k for k, v in c.items() if k not in shown and k not in keys and v is not None]
        if keys:
            head = ["measured", *[f"{a} · {t}" for t, a, _ in cells]]
            rows = [[k, *["" if c.get(k) is None else str(c[k]) for _, _, c in cells]] for k in keys]
            out.append((f"{KIND_TITLES.get(kind, kind)} details", head, rows))
    return out


def _never(b: dict[str, Any]) -> str:
    return b.get("why_none") or "never (not cheaper per query)"  # decision.json from before why_none


def _md_table(head: list[str], rows: list[list[str]]) -> list[str]:
    def cell(x: str) -> str:
        return x.replace("|", "\\|")

    return ["| " + " | ".join(map(cell, head)) + " |", "|" + "---|" * len(head),
            *["| " + " | ".join(map(cell, r)) + " |" for r in rows]]


def markdown(run_dir: Path, decision: dict[str, Any], plots: dict[str, str]) -> str:
    scores, run = read_json(run_dir / "scores.json"), read_json(run_dir / "run.json")
    lines = [f"# {scores['suite']}: results of run `{run_dir.name}`", "",
             f"Model `{run['model']['spec']}` on {run['model']['device']} ({run['model']['dtype']}), seed {run['seed']}, "
             f"git `{run.get('git_sha')}`, started {run.get('started')}. Scores on the test split with 95% "
             "percentile-bootstrap CIs; each arm is compared with the task's best arm on the same examples "
             "(McNemar for accuracy, paired bootstrap otherwise; Holm-corrected within the task).", "", "## Verdicts", ""]
    lines += [f"- {d['verdict']}" for d in decision.values()]
    for t, s in scores["tasks"].items():
        d = decision.get(t, {})
        head = ["arm variant", *s["metrics"], f"vs best ({d.get('primary')})", "mode"]
        lines += ["", f"## {t} ({s['kind']}, n={s['n']})", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head),
                  "| floor: " + s["floor"]["name"].replace("|", "\\|") + " | " +
                  " | ".join(fmt(s["floor"]["metrics"].get(m)) for m in s["metrics"]) + " | | |"]
        for a, r in s["arms"].items():
            comp = d.get("comparisons", {}).get(a, {}).get(d.get("primary"))
            lines.append(f"| {a} | " + " | ".join(fmt(r["metrics"].get(m)) for m in s["metrics"]) + f" | {fmt_p(comp)} | {r['mode']} |")
        retr = {a: r["retrieval"] for a, r in s["arms"].items() if r.get("retrieval")}
        if retr:
            names = list(next(iter(retr.values())))
            lines += ["", "Retrieval of the gold document:", "", "| arm variant | " + " | ".join(names) + " |",
                      "|---|" + "---|" * len(names)]
            lines += [f"| {a} | " + " | ".join(fmt(v[n]) for n in names) + " |" for a, v in retr.items()]
        for key in (f"{t}-bars", f"{t}-cost", f"{t}-retrieval"):
            if key in plots:
                lines += ["", f"![{key}]({plots[key]})"]
    for i, (title, head, rows) in enumerate(cost_tables(decision, run)):
        lines += ["", f"{'##' if i == 0 else '###'} {title}", "", *_md_table(head, rows)]
    be = [(t, b) for t, d in decision.items() for b in d["break_even"]]
    if be:
        lines += ["", "Break-even: queries after which a fine-tune's training time is repaid by its cheaper queries "
                      "(measured latency per query).", "", "| task | trained | versus | training s | saved s per query | queries |",
                  "|---|---|---|---|---|---|"]
        lines += [f"| {t} | {b['trained']} | {b['versus']} | {b['train_s']:.0f} | {b['saved_s_per_query']} | "
                  f"{b['queries'] or _never(b)} |" for t, b in be]
    if "loss" in plots:
        lines += ["", f"![training loss]({plots['loss']})"]
    lines += ["", "## How each score was produced", "",
              "| arm variant | task | mode | cached | predict s | mean latency s | prompt tokens / example |",
              "|---|---|---|---|---|---|---|"]
    for c in run["cells"]:
        mode = scores["tasks"][c["task"]]["arms"][c["arm"]]["mode"]
        cached = f"yes (from {c['predicted_at']})" if c["cached"] else "no"
        lines.append(f"| {c['arm']} | {c['task']} | {mode} | {cached} | {c['predict_s']} | {c['mean_latency_s']} | "
                     f"{c['prompt_tokens'] / max(1, c['n']):.0f} |")
    t = run["timings"]
    load = f"{t['model_load_s']} s" if t["model_load_s"] is not None else "skipped (every prediction was cached)"
    lines += ["", f"Wall time {t['wall_s']} s; model load {load}.", ""]
    return "\n".join(lines)


def _samples(run_dir: Path, task: str, arms: list[str]) -> tuple[list[str], list[list[str]]]:
    rows = {a: {r["id"]: r for r in read_jsonl(run_dir / "predictions" / a / f"{task}.jsonl")} for a in arms}
    ids = sorted(rows[arms[0]])[:SAMPLES]
    head = ["id", "input", "references", *arms]
    out = []
    for i in ids:
        first = rows[arms[0]][i]
        cells = [H.esc(i), f"<pre>{H.esc(first.get('input', ''))}</pre>", H.esc(" | ".join(first["references"]))]
        cells += [H.esc(rows[a].get(i, {}).get("output", "")) for a in arms]
        out.append(cells)
    return head, out


def html(run_dir: Path, decision: dict[str, Any], pngs: dict[str, bytes]) -> str:
    scores, run = read_json(run_dir / "scores.json"), read_json(run_dir / "run.json")
    sec = [f"<h1>{H.esc(scores['suite'])}: prompt, fine-tune or retrieve?</h1>",
           f"<p class=\"meta\">Run {H.esc(run_dir.name)} · model {H.esc(run['model']['spec'])} on "
           f"{H.esc(run['model']['device'])} ({H.esc(run['model']['dtype'])}) · seed {H.esc(run['seed'])} · git "
           f"{H.esc(run.get('git_sha'))} · started {H.esc(run.get('started'))}. Scores on the test split with 95% "
           "bootstrap CIs; arms compared with the best arm on the same examples (McNemar for accuracy, paired "
           "bootstrap otherwise), Holm-corrected within each task.</p>", "<h2>Verdicts</h2>"]
    sec += [f"<p class=\"verdict\">{H.esc(d['verdict'])}</p>" for d in decision.values()]
    for t, s in scores["tasks"].items():
        d = decision.get(t, {})
        rows, classes = [], []
        rows.append(["floor: " + H.esc(s["floor"]["name"]), *[H.esc(fmt(s["floor"]["metrics"].get(m))) for m in s["metrics"]], "", ""])
        classes.append("floor")
        for a, r in s["arms"].items():
            comp = d.get("comparisons", {}).get(a, {}).get(d.get("primary"))
            vs = H.esc(fmt_p(comp))
            if comp and comp["p_holm"] < 0.05:
                vs = f'<span class="sig">{vs}</span>'
            rows.append([H.esc(a), *[H.esc(fmt(r["metrics"].get(m))) for m in s["metrics"]], vs, H.esc(r["mode"])])
            classes.append("")
        sec += [f"<h2>{H.esc(t)} <small>({H.esc(s['kind'])}, n={s['n']})</small></h2>",
                H.table(["arm variant", *s["metrics"], f"vs best ({d.get('primary')})", "mode"], rows, classes)]
        retr = {a: r["retrieval"] for a, r in s["arms"].items() if r.get("retrieval")}
        if retr:
            names = list(next(iter(retr.values())))
            sec.append(H.table(["arm variant", *names], [[H.esc(a), *[H.esc(fmt(v[n])) for n in names]] for a, v in retr.items()]))
        sec += [H.img(pngs[k], k) for k in (f"{t}-bars", f"{t}-cost", f"{t}-retrieval") if k in pngs]
        head, sample_rows = _samples(run_dir, t, list(s["arms"]))
        sec += ["<h3>Sample predictions</h3>", H.table(head, sample_rows, num_from=99)]
    for i, (title, head, rows) in enumerate(cost_tables(decision, run)):
        sec += [f"<h{2 if i == 0 else 3}>{H.esc(title)}</h{2 if i == 0 else 3}>",
                H.table(head, [[H.esc(x) for x in r] for r in rows], num_from=2 if i == 0 else 1)]
    be = [(t, b) for t, d in decision.items() for b in d["break_even"]]
    if be:
        sec += ["<p>Break-even: queries after which a fine-tune's training time is repaid by its cheaper queries.</p>",
                H.table(["task", "trained", "versus", "training s", "saved s per query", "queries"],
                        [[H.esc(t), H.esc(b["trained"]), H.esc(b["versus"]), f"{b['train_s']:.0f}",
                          H.esc(b["saved_s_per_query"]), H.esc(b["queries"] or _never(b))] for t, b in be], num_from=3)]
    if "loss" in pngs:
        sec.append(H.img(pngs["loss"], "training loss"))
    return H.page(f"{scores['suite']} report {run_dir.name}", sec)


def results_csv(run_dir: Path, decision: dict[str, Any]) -> str:
    """Long format for pandas: one row per (task, arm, metric)."""
    scores = read_json(run_dir / "scores.json")
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["task", "arm", "metric", "value", "low", "high", "n", "diff_vs_best", "p_holm_vs_best", "is_best",
                "latency_s", "prompt_tokens", "train_s", "mode"])
    for t, s in scores["tasks"].items():
        d = decision.get(t, {})
        for m in s["metrics"]:
            f = s["floor"]["metrics"][m]
            w.writerow([t, "floor", m, f["value"], f["low"], f["high"], f["n"], "", "", "", "", "", "", ""])
        for a, r in s["arms"].items():
            c = d.get("costs", {}).get(a, {})
            for m in s["metrics"]:
                e = r["metrics"][m]
                comp = d.get("comparisons", {}).get(a, {}).get(m)
                w.writerow([t, a, m, e["value"], e["low"], e["high"], e["n"], comp["difference"] if comp else 0.0,
                            comp["p_holm"] if comp else "", a == d.get("best"), c.get("latency_s"),
                            c.get("prompt_tokens"), train_seconds(c) if train_seconds(c) is not None else "", r["mode"]])
    return buf.getvalue()


def _loss_curves(run: dict[str, Any]) -> dict[str, list]:
    """Loss curves the arms reported in their costs: {'train': [[step, loss], ...], ...} or a list."""
    curves = {}
    for c in run["cells"]:
        for k, v in (c.get("costs") or {}).items():
            if "loss" not in k:
                continue
            if isinstance(v, dict):
                curves.update({f"{c['arm']} · {c['task']} · {name}": pts for name, pts in v.items() if isinstance(pts, list)})
            elif isinstance(v, list):
                curves[f"{c['arm']} · {c['task']} · {k}"] = v
    return curves


def write_report(run_dir: Path) -> dict[str, Path]:
    """Write report.md, report.html, results.csv, decision.json and plots/*.png; return their paths."""
    from . import plots

    scores, run = read_json(run_dir / "scores.json"), read_json(run_dir / "run.json")
    decision = analyse(run_dir, seed=run.get("seed", 0))
    pngs: dict[str, bytes] = {}
    for t, s in scores["tasks"].items():
        if not s["arms"]:
            continue
        pngs[f"{t}-bars"] = plots.bars_with_ci(t, s)
        pngs[f"{t}-cost"] = plots.quality_vs_cost(t, s, decision[t]["costs"], decision[t]["primary"])
        retr = {a: r["retrieval"] for a, r in s["arms"].items() if r.get("retrieval")}
        if retr:
            pngs[f"{t}-retrieval"] = plots.retrieval_recall(t, retr)
    curves = _loss_curves(run)
    if curves:
        pngs["loss"] = plots.loss_curves(curves, "training and validation loss")
    rel = {}
    for name, data in pngs.items():
        path = run_dir / "plots" / f"{name}.png"
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(data)
        rel[name] = f"plots/{name}.png"
    out = {"md": run_dir / "report.md", "html": run_dir / "report.html", "csv": run_dir / "results.csv",
           "decision": run_dir / "decision.json"}
    write_json(out["decision"], decision)
    atomic_write_text(out["md"], markdown(run_dir, decision, rel))
    atomic_write_text(out["html"], html(run_dir, decision, pngs))
    atomic_write_text(out["csv"], results_csv(run_dir, decision))
    return out
