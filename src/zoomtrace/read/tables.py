"""SQL results (``zoomtrace sql``) written as a table for people, or as CSV, TSV or JSON for programs.

Both stores answer in Python values: ``None`` for NULL, lists and dicts for arrays, maps and structs, and
numbers, text, bytes, times. Each format writes them its own way, never as Python reprs:

- ``table``: aligned columns, NULL as ``NULL``, lists and maps as JSON, control characters escaped, cells cut
  at ``CELL_WIDTH`` characters; a last line counts the rows.
- ``csv`` (RFC 4180) and ``tsv`` (one row a line, ``\\t \\n \\r \\\\`` and other control characters
  escaped): a header line of column names, NULL as an empty field, lists and maps as JSON.
- ``json``: one array of objects, NULL as ``null``, lists and maps as JSON arrays and objects.

Times and intervals are ISO 8601 text (``2026-12-02T07:00:00Z``, ``P3D``), bytes base64, UUIDs their text.
"""

from __future__ import annotations

import csv
import datetime
import decimal
import re
import sys
from collections.abc import Sequence
from typing import Any, Final, TextIO

import msgspec

from zoomtrace._terminal import safe

FORMATS: Final = ("table", "csv", "json", "tsv")
#: The widest a table's cell is printed; the other formats give every value whole.
CELL_WIDTH: Final = 80
#: What a table shows for NULL.
NULL: Final = "NULL"


def write(columns: Sequence[str], rows: list[tuple[Any, ...]], fmt: str, out: TextIO = sys.stdout) -> None:
    """Write a query's ``columns`` and ``rows`` to ``out`` in ``fmt`` (one of ``FORMATS``)."""
    if fmt == "json":
        objects = [dict(zip(columns, map(_json_value, row), strict=True)) for row in rows]
        out.write(msgspec.json.format(msgspec.json.encode(objects), indent=2).decode() + "\n")
    elif fmt == "csv":
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows([["" if v is None else _text(v) for v in row] for row in rows])
    elif fmt == "tsv":
        out.write("\t".join(_tsv(c) for c in columns) + "\n")
        for row in rows:
            out.write("\t".join("" if v is None else _tsv(_text(v)) for v in row) + "\n")
    else:
        _table(columns, rows, out)


def _json_value(value: Any) -> Any:
    """A value as JSON shows it: numbers and text as themselves, times as ISO text, bytes as base64."""
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, list | tuple):
        return [_json_value(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _json_value(v) for k, v in value.items()}
    if value is None or isinstance(
        value, str | int | float | bytes | datetime.date | datetime.time | datetime.timedelta
    ):
        return value
    return str(value)  # a UUID, an interval and the like: as their own text


def _text(value: Any) -> str:
    """A value that is not NULL as one field of text: lists and maps as JSON, bools as true/false."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    encoded = msgspec.json.encode(_json_value(value)).decode()
    return msgspec.json.decode(encoded) if encoded.startswith('"') else encoded


_TSV_ESCAPES: Final = {"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"}
_TSV_SPECIAL: Final = re.compile(r"[\\\x00-\x1f\x7f-\x9f]")


def _tsv(text: str) -> str:
    return _TSV_SPECIAL.sub(lambda m: _TSV_ESCAPES.get(m.group()) or safe(m.group()), text)


def _table(columns: Sequence[str], rows: list[tuple[Any, ...]], out: TextIO) -> None:
    cells = [[NULL if v is None else _cut(safe(_text(v))) for v in row] for row in rows]
    header = [_cut(safe(c)) for c in columns]
    widths = [max([len(header[i]), *(len(r[i]) for r in cells)]) for i in range(len(columns))]
    numeric = [
        bool(rows) and all(isinstance(r[i], int | float | decimal.Decimal) or r[i] is None for r in rows)
        for i in range(len(columns))
    ]

    def line(values: list[str]) -> str:
        return "  ".join(
            (v.rjust(w) if right else v.ljust(w)) for v, w, right in zip(values, widths, numeric, strict=True)
        ).rstrip()

    out.write(line(header) + "\n")
    out.write(line(["-" * w for w in widths]) + "\n")
    for r in cells:
        out.write(line(r) + "\n")
    out.write(f"({len(rows):,} row{'' if len(rows) == 1 else 's'})\n")


def _cut(text: str) -> str:
    return text if len(text) <= CELL_WIDTH else text[: CELL_WIDTH - 1] + "…"
