"""Record rows as readers see them, built by the engine: one JSON object per row, named as ``RecordView``'s
fields and in their order (a test compares them).

As in the DuckDB store, the engine writes each row as a JSON object and msgspec decodes all of a query's
rows in one call, several times faster than building dicts in Python for a story of 100,000 records.
Runs of plain columns are written by ``formatRowNoNewline('JSONEachRow', ...)``, and the columns that hold
JSON text (``attrs``, ``payload``, ``error``) are spliced in as they are stored: measured, that costs the
engine half the planning time of one ``toJSONString`` per field. (Node and trace rows are few per query
and built in Python: ``_nodes``, ``_reader``.)
"""

from __future__ import annotations

import functools
from typing import Any, Final

from zoomtrace.store._decode import decode_rows as decode

#: A ``records`` row's fields, as ``RecordView`` orders them: ``(field, SQL, is_json)``. A plain field is a
#: column (``column AS field`` to rename it) written by ``formatRowNoNewline``; a JSON field is an expression
#: whose text is the field's JSON, spliced in as it is (empty JSON values are stored as such, or NULL: null).
_RECORD_FIELDS: Final = (
    ("id", "id", False),
    ("kind", "kind", False),
    ("type", "type", False),
    ("ts_ns", "ts_ns", False),
    ("end_ns", "end_ns", False),
    ("trace_id", "trace_id", False),
    ("span_id", "span_id", False),
    ("parent_span_id", "parent_span_id", False),
    ("links", "links", False),
    ("on_behalf_of", "on_behalf_of", False),
    ("node_id", "node_id", False),
    (
        "code",
        "if(code_file IS NULL, 'null', formatRowNoNewline('JSONEachRow', code_file AS file, code_line AS line, "
        "code_function AS function, code_commit AS commit, ifNull(code_dirty, false) AS dirty))",
        True,
    ),
    ("level", "level", False),
    ("message", "message", False),
    ("template", "template", False),
    ("attrs", "attrs", True),
    ("payload", "ifNull(payload, 'null')", True),
    ("payload_blob", "payload_blob", False),
    ("sources", "sources", False),
    ("error", "ifNull(error, 'null')", True),
    ("status", "status", False),
    ("cpu_ns", "cpu_ns", False),
    ("thread", "thread", False),
    ("v", "schema_version AS v", False),
)


@functools.cache
def record(fields: frozenset[str] | None = None) -> str:
    """SQL for a ``records`` row as a ``RecordView`` JSON object, with only ``fields`` when given."""
    members: list[str] = []
    plain: list[str] = []

    def flush() -> None:
        if plain:
            members.append(f"substring(formatRowNoNewline('JSONEachRow', {', '.join(plain)}), 2, -1)")
            plain.clear()

    for field, sql, is_json in _RECORD_FIELDS:
        if fields is not None and field not in fields:
            continue
        if is_json:
            flush()
            members.append(f"'\"{field}\":', {sql}")
        else:
            plain.append(sql)
    flush()
    return "concat('{', " + ", ',', ".join(members) + ", '}')"


#: A whole ``records`` row as a ``RecordView``.
RECORD: Final = record()


def decode_rows(data: bytes, row_type: type[Any] = dict) -> list[Any]:
    """Rows fetched as one JSON object per line (``TabSeparatedRaw`` of a row expression), in one call, as
    ``row_type`` (``dict`` or a reader's msgspec Struct)."""
    if not data:
        return []
    return decode(b"[" + data.rstrip(b"\n").replace(b"\n", b",") + b"]", row_type)
