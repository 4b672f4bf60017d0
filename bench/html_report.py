"""One self-contained report.html: inline CSS, plots as data URIs, no scripts, every string escaped.

Dataset strings (inputs, outputs, references, names) reach this page, so everything goes
through `html.escape`; the page carries a Content-Security-Policy that forbids scripts too.
"""

from __future__ import annotations

import base64
from html import escape
from typing import Any

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1100px;color:#222;padding:0 1rem}
h1{font-size:1.6rem}h2{margin-top:2rem;border-bottom:1px solid #ddd;padding-bottom:.2rem}
table{border-collapse:collapse;margin:.6rem 0 1rem;font-size:.88rem}
th,td{border:1px solid #ccc;padding:.3rem .5rem;text-align:left;vertical-align:top}
th{background:#f3f4f6}td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
tr.floor td{color:#777}.verdict{background:#f8fafc;border-left:4px solid #2563eb;padding:.6rem .9rem}
img{max-width:100%;border:1px solid #eee;margin:.3rem}.meta{color:#555;font-size:.85rem}
.sig{font-weight:600}pre{white-space:pre-wrap;margin:0;font-size:.8rem;max-height:8rem;overflow:auto}
"""


def img(png: bytes, alt: str) -> str:
    return f'<img alt="{escape(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'


def table(head: list[str], rows: list[list[str]], classes: list[str] | None = None, num_from: int = 1) -> str:
    """`rows` hold already-escaped HTML cells; `head` is escaped here."""
    h = "".join(f"<th>{escape(c)}</th>" for c in head)
    body = []
    for i, r in enumerate(rows):
        cls = f' class="{classes[i]}"' if classes and classes[i] else ""
        tds = "".join(f'<td class="num">{c}</td>' if j >= num_from else f"<td>{c}</td>" for j, c in enumerate(r))
        body.append(f"<tr{cls}>{tds}</tr>")
    return f"<table><thead><tr>{h}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def page(title: str, sections: list[str]) -> str:
    return ("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; img-src data:; style-src 'unsafe-inline'\">"
            f"<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><title>{escape(title)}</title>"
            f"<style>{CSS}</style></head><body>{''.join(sections)}</body></html>\n")


def esc(value: Any) -> str:
    return escape(str(value))
