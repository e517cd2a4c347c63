"""The CSV text of result files: one writer and one checked reader, shared by every file that is a plain CSV.

`csv_text` writes a header and rows with the csv module and "\\n" line ends (the files' byte-for-byte form);
`csv_rows` reads such text back, checking the header and every row's width, and names the source and the
line of the first problem (a UserError).  Perfmon's quoted, CRLF layout is `perfmon.pdh_csv`'s.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence

from cucm_sim.errors import UserError


def csv_text(header: Iterable[object], rows: Iterable[Iterable[object]]) -> str:
    """A CSV file's text: `header`, then `rows`."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


def csv_rows(text: str, source: str, header: Sequence[str]) -> list[list[str]]:
    """The data rows of CSV `text` whose first row must be `header`; UserError naming `source` otherwise."""
    try:
        rows = list(csv.reader(io.StringIO(text)))
    except csv.Error as error:
        raise UserError([f"{source}: invalid CSV ({error})"]) from None
    if not rows or rows[0] != list(header):
        raise UserError([f"{source}: line 1: expected the header {','.join(header)}"])
    for line, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            raise UserError([f"{source}: line {line}: {len(row)} fields, expected {len(header)}"])
    return rows[1:]
