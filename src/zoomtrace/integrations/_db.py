"""What the database integrations share: a client span per SQL statement, with the OpenTelemetry
database attributes (``db.system.name``, ``db.query.text``, ``db.operation.name``, ``db.namespace``...)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from types import CodeType, FrameType
from typing import Any, Final

from zoomtrace.capture.context import current
from zoomtrace.capture.span import Span

#: ``db.system.name`` values of the conventions, by the library's name for the database (others are kept).
_SYSTEMS: Final = {
    "mssql": "microsoft.sql_server",
    "microsoft": "microsoft.sql_server",
    "oracle": "oracle.db",
}


def operation(statement: str) -> str | None:
    """The statement's first keyword, upper case (``SELECT``, ``WITH``...), after comments and brackets."""
    text = statement.lstrip()
    while text.startswith(("--", "/*", "(")):
        if text.startswith("--"):
            text = text.partition("\n")[2].lstrip()
        elif text.startswith("/*"):
            text = text.partition("*/")[2].lstrip()
        else:
            text = text[1:].lstrip()
    word = text.split(None, 1)[0] if text else ""
    return word.upper() if word.isalpha() else None


def statement_attributes(
    system: str, statement: str, namespace: str | None, host: str | None, port: int | str | None
) -> dict[str, Any]:
    """The attributes of a statement's span (without parameter values)."""
    attrs: dict[str, Any] = {
        "span.kind": "client",
        "db.system.name": _SYSTEMS.get(system, system),
        "db.query.text": statement,
    }
    verb = operation(statement)
    if verb is not None:
        attrs["db.operation.name"] = verb
    if namespace:
        attrs["db.namespace"] = str(namespace)
    if host:
        attrs["server.address"] = host
    if port and str(port).isdigit():
        attrs["server.port"] = int(port)
    return attrs


def statement_span(attrs: dict[str, Any], library: tuple[str, ...]) -> Span:
    """A client span for one statement, child of the current span, pointing at the first frame outside
    ``library`` (not yet entered)."""
    code, line = application_line(library)
    return Span(attrs.get("db.operation.name") or attrs["db.system.name"], attrs, current.get(), [], None, code, line)


def set_row_count(span: Span, cursor: Any) -> None:
    """The row count the driver reports, if it knows it: rows changed, or rows returned."""
    rows = getattr(cursor, "rowcount", -1)
    if isinstance(rows, int) and rows >= 0:
        returns_rows = getattr(cursor, "description", None) is not None
        span.attrs["db.response.returned_rows" if returns_rows else "db.response.affected_rows"] = rows


def _frames(first: FrameType) -> Iterator[FrameType]:
    """The frames from ``first`` outwards; then those of the parent greenlets, if any: under asyncio,
    SQLAlchemy runs the driver in a greenlet whose parent is suspended in the awaiting coroutine."""
    frame: FrameType | None = first
    while frame is not None:
        yield frame
        frame = frame.f_back
    greenlet = sys.modules.get("greenlet")
    parent = greenlet.getcurrent().parent if greenlet is not None else None
    while parent is not None:
        frame = parent.gr_frame
        while frame is not None:
            yield frame
            frame = frame.f_back
        parent = parent.parent


def application_line(library: tuple[str, ...]) -> tuple[CodeType, int]:
    """The first frame outside ``library`` (and Zoom's integrations): the application line that ran the
    statement."""
    first = sys._getframe(1)
    for frame in _frames(first):
        module = frame.f_globals.get("__name__") or ""
        if not any(module == p or module.startswith(p + ".") for p in library):
            return frame.f_code, frame.f_lineno
    return first.f_code, first.f_lineno
