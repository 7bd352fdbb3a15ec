"""User SQL on the ClickHouse store (``zoomtrace sql``): ClickHouse's dialect, read-only by three guards.

1. The statement is parsed by ClickHouse's own parser (``formatQuerySingleLine``, then ``EXPLAIN AST``):
   exactly one statement, of a kind that only reads (SELECT or WITH, DESCRIBE, SHOW, EXISTS, or EXPLAIN
   of such a statement), writing no file (``INTO OUTFILE``).
2. It runs with ``readonly = 1``: the engine refuses writes, DDL, settings changes and table functions
   that reach files or the network.
3. It is bounded by the engine: ``max_result_rows`` and ``max_execution_time``.
"""

from __future__ import annotations

from typing import Any, Final

import msgspec

from zoomtrace.errors import ReadOnlySQL, StoreError
from zoomtrace.store.clickhouse._transport import SQL_MAX_ROWS, SQL_TIMEOUT_S, EngineError, Transport

#: Statements that only read, as ``EXPLAIN AST`` names them (``Explain`` is checked on what it explains).
_READS: Final = frozenset(
    {"SelectWithUnionQuery", "DescribeQuery", "ShowTables", "ShowColumns", "ShowCreateTableQuery", "ExistsTableQuery"}
)
_ALLOWED: Final = "only SELECT, WITH, DESCRIBE, SHOW TABLES, SHOW COLUMNS, SHOW CREATE TABLE, EXISTS and EXPLAIN"
#: ClickHouse error codes met here.
_SYNTAX_ERROR, _TIMEOUT, _READONLY, _TOO_MANY_ROWS = 62, 159, 164, 396


def run_sql(transport: Transport, query: str, max_rows: int | None) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Column names and rows of one read-only statement (at most ``max_rows`` rows when given)."""
    if not query.strip().rstrip(";").strip():
        raise StoreError("empty query: give one SELECT statement, e.g. SELECT count() FROM records")
    statement = _one_statement(transport, query)
    _check_reads(transport, statement)
    try:
        data = transport.read_only(statement, fmt="JSONCompactEachRowWithNames")
    except EngineError as exc:
        raise _sql_error(exc) from None
    lines = data.splitlines()
    if not lines:
        return [], []
    try:
        columns = msgspec.json.decode(lines[0], type=list[str])
        kept = lines[1:] if max_rows is None else lines[1 : 1 + max(0, max_rows)]
        rows = [tuple(row) for row in msgspec.json.decode(b"[" + b",".join(kept) + b"]", type=list[list[Any]])]
    except msgspec.DecodeError:
        raise StoreError("SQL error: the result is not in the expected format; leave out the FORMAT clause") from None
    return columns, rows


def _one_statement(transport: Transport, query: str) -> str:
    """The query as ClickHouse's parser formats it, which it does for exactly one statement only."""
    try:
        data = transport.read_only("SELECT formatQuerySingleLine({q:String})", {"q": query}, fmt="TabSeparatedRaw")
    except EngineError as exc:
        if "Multi-statements" in str(exc):
            raise ReadOnlySQL("one statement at a time, please: the SQL interface only reads the store") from None
        raise _sql_error(exc) from None
    return data.decode().strip()


def _check_reads(transport: Transport, statement: str) -> None:
    """Raise ReadOnlySQL unless ``statement``'s syntax tree is a read that writes no file."""
    try:
        tree = transport.read_only(f"EXPLAIN AST {statement}", fmt="TabSeparatedRaw").decode()
    except EngineError as exc:
        raise _sql_error(exc) from None
    nodes = [(len(line) - len(line.lstrip(" ")), line.strip()) for line in tree.splitlines() if line.strip()]
    _check_node(nodes, 0)


def _check_node(nodes: list[tuple[int, str]], at: int) -> None:
    depth, text = nodes[at]
    kind = text.split(" ", 1)[0]
    children = []
    for i in range(at + 1, len(nodes)):
        if nodes[i][0] <= depth:
            break
        if nodes[i][0] == depth + 1:
            children.append(i)
    if kind == "Explain" and children:
        _check_node(nodes, children[0])
    elif kind not in _READS:
        raise ReadOnlySQL(f"{_ALLOWED} are allowed, not {kind}: the store is changed by ingestion only")
    # A read's own literal child is the file of INTO OUTFILE (its WHERE and LIMIT literals sit deeper).
    if any(nodes[i][1].startswith("Literal ") for i in children):
        raise ReadOnlySQL("INTO OUTFILE is not allowed: the SQL interface only reads the store")


def _sql_error(exc: EngineError) -> StoreError | ReadOnlySQL:
    message = str(exc).split(": In scope SELECT formatQuerySingleLine", 1)[0]
    if exc.code == _READONLY:
        return ReadOnlySQL(f"the SQL interface only reads the store ({message})")
    if exc.code == _TOO_MANY_ROWS:
        return StoreError(f"the query returns more than {SQL_MAX_ROWS:,} rows: add a LIMIT or aggregate")
    if exc.code == _TIMEOUT:
        return StoreError(f"the query ran longer than {SQL_TIMEOUT_S} s and was stopped: narrow it down")
    return StoreError(f"SQL error: {message}")
