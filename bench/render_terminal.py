"""A `Table` as a rich table for the terminal: the floor dimmed, significant differences bold,
the notes as its caption and the warnings under them in bold yellow. Every cell is escaped: dataset
strings may hold [brackets] that rich would otherwise read as markup."""

from __future__ import annotations

from rich.markup import escape
from rich.table import Table as RichTable

from .tables import Table


def rich_table(table: Table, *, title: str | None = None, fold: bool = False) -> RichTable:
    """`title` replaces the table's own; `fold` wraps long cells (wide comparisons) instead of keeping
    every column on one line (score tables, whose numbers must not break)."""
    caption = [escape(n) for n in table.notes] + [f"[bold yellow]{escape(w)}[/bold yellow]" for w in table.warnings]
    out = RichTable(title=escape(title if title is not None else table.title),
                    caption="\n".join(caption) if caption else None,
                    caption_justify="left" if table.warnings else "center")  # long warnings read better left
    for j, name in enumerate(table.header):
        numeric = table.numeric_from is not None and j >= table.numeric_from
        if fold:
            out.add_column(escape(name), overflow="fold")
        else:
            # the first column (arm variant, or the floor's name, which can be long) may wrap
            out.add_column(escape(name), justify="right" if numeric else "left", no_wrap=j > 0,
                           style="bold" if j == 0 else "")
    for row in table.rows:
        cells = [escape(c) for c in row.cells] + [""] * (len(table.header) - len(row.cells))
        cells = [f"[bold]{c}[/bold]" if j in row.emphasis else c for j, c in enumerate(cells)]
        out.add_row(*cells, style="dim" if row.kind == "floor" else None)
    return out
