"""report.html, self-contained: inline CSS, plots as data URIs, no scripts, every string escaped.

Dataset strings (inputs, outputs, references, names) reach this page, so every cell goes through
`html.escape`; the page carries a Content-Security-Policy that forbids scripts too.
"""

from __future__ import annotations

import base64
from html import escape

from .decision import TaskDecision
from .results import RunResults
from .tables import ReportTables, Table, TaskTables

BREAK_EVEN_HTML = "<p>Break-even: queries after which a fine-tune's training time is repaid by its cheaper queries.</p>"
LEAKAGE_HTML = ("<p>Test examples that the train or validation split, the corpus or a prompt's demonstrations "
                "already hold, checked before the run without a model (a leak is reported; the run went on).</p>")
CROSSOVERS_HTML = ("<p>Crossovers: among arms that cannot be told apart, the query volume from which the arm with the "
                   "cheaper queries costs less in all (training included).</p>")
CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;\
margin:2rem auto;max-width:1100px;color:#222;padding:0 1rem}
h1{font-size:1.6rem}h2{margin-top:2rem;border-bottom:1px solid #ddd;padding-bottom:.2rem}
table{border-collapse:collapse;margin:.6rem 0 1rem;font-size:.88rem}
th,td{border:1px solid #ccc;padding:.3rem .5rem;text-align:left;vertical-align:top}
th{background:#f3f4f6}td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
tr.floor td{color:#777}.verdict{background:#f8fafc;border-left:4px solid #2563eb;padding:.6rem .9rem}
img{max-width:100%;border:1px solid #eee;margin:.3rem}.meta{color:#555;font-size:.85rem}
.sig{font-weight:600}pre{white-space:pre-wrap;margin:0;font-size:.8rem;max-height:8rem;overflow:auto}
.warnings{background:#fffbeb;border-left:4px solid #d97706;padding:.4rem .9rem .4rem 2rem}
"""


def img(png: bytes, alt: str) -> str:
    return f'<img alt="{escape(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'


def html_table(table: Table) -> str:
    head = "".join(f"<th>{escape(c)}</th>" for c in table.header)
    body = []
    for row in table.rows:
        cls = f' class="{row.kind}"' if row.kind else ""
        cells = [*row.cells, *[""] * (len(table.header) - len(row.cells))]
        body.append(f"<tr{cls}>{''.join(_cell(table, row.emphasis, j, c) for j, c in enumerate(cells))}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def html_warnings(table: Table) -> list[str]:
    """The table's warnings as a highlighted list under it; nothing when it has none."""
    if not table.warnings:
        return []
    return ['<ul class="warnings">' + "".join(f"<li>{escape(w)}</li>" for w in table.warnings) + "</ul>"]


def _cell(table: Table, emphasis: frozenset[int], j: int, text: str) -> str:
    html = escape(text)
    if j in table.preformatted:
        html = f"<pre>{html}</pre>"
    if j in emphasis:
        html = f'<span class="sig">{html}</span>'
    numeric = table.numeric_from is not None and j >= table.numeric_from
    return f'<td class="num">{html}</td>' if numeric else f"<td>{html}</td>"


def html_report(run: RunResults, decisions: dict[str, TaskDecision], tables: ReportTables,
                pngs: dict[str, bytes]) -> str:
    """The whole report.html; `pngs` maps a plot's name to its PNG bytes."""
    sections = _intro(run, decisions) + _leakage_section(tables.leakage)
    for task in tables.tasks:
        sections += _task_section(task, tables.samples.get(task.task.name), pngs)
    for i, table in enumerate(tables.costs):
        level = 2 if i == 0 else 3
        sections += [f"<h{level}>{escape(table.title)}</h{level}>", html_table(table)]
    if tables.break_even:
        sections += [BREAK_EVEN_HTML, html_table(tables.break_even)]
    if tables.crossovers:
        sections += [CROSSOVERS_HTML, html_table(tables.crossovers)]
    if "loss" in pngs:
        sections.append(img(pngs["loss"], "training loss"))
    return page(f"{run.suite} report {run.run_dir.name}", sections)


def _leakage_section(table: Table | None) -> list[str]:
    """The leakage checks, right under the verdicts: a leak qualifies every score below it."""
    if table is None:
        return []
    notes = "".join(f"<li>{escape(note)}</li>" for note in table.notes)
    return [f"<h2>{escape(table.title)}</h2>", LEAKAGE_HTML, html_table(table), *html_warnings(table),
            '<p class="meta">Checks (each counts test examples; one may be flagged by several):</p>',
            f'<ul class="meta">{notes}</ul>']


def _intro(run: RunResults, decisions: dict[str, TaskDecision]) -> list[str]:
    meta = (f"Run {escape(run.run_dir.name)} · model {escape(run.model_spec)} on {escape(run.device)} "
            f"({escape(run.dtype)}) · seed {escape(str(run.seed))} · git {escape(str(run.git_sha))} · started "
            f"{escape(str(run.started))}. Scores on the test split with 95% bootstrap CIs; arms compared with the best "
            "arm on the same examples (McNemar for accuracy, paired bootstrap otherwise), Holm-corrected within "
            "each task.")
    return [f"<h1>{escape(run.suite)}: prompt, fine-tune or retrieve?</h1>", f'<p class="meta">{meta}</p>',
            "<h2>Verdicts</h2>", *[f'<p class="verdict">{escape(d.verdict)}</p>' for d in decisions.values()]]


def _task_section(task: TaskTables, samples: Table | None, pngs: dict[str, bytes]) -> list[str]:
    name = task.task.name
    out = [f"<h2>{escape(name)} <small>({escape(task.task.kind)}, n={task.task.n})</small></h2>",
           html_table(task.scores), *html_warnings(task.scores)]
    if task.retrieval:
        out.append(html_table(task.retrieval))
    out += [img(pngs[k], k) for k in (f"{name}-bars", f"{name}-cost", f"{name}-retrieval") if k in pngs]
    if samples:
        out += [f"<h3>{escape(samples.title)}</h3>", html_table(samples)]
    return out


def page(title: str, sections: list[str]) -> str:
    return ("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; img-src data:; "
            "style-src 'unsafe-inline'\">"
            f"<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><title>{escape(title)}</title>"
            f"<style>{CSS}</style></head><body>{''.join(sections)}</body></html>\n")
