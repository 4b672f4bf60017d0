"""A `Table` as CSV (results.csv): the header, then one line per row; blank cells for short rows."""

from __future__ import annotations

import csv
import io

from .tables import Table


def csv_text(table: Table) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(table.header)
    for row in table.rows:
        writer.writerow([*row.cells, *[""] * (len(table.header) - len(row.cells))])
    return buf.getvalue()
