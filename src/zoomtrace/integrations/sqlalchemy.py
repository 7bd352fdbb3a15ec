"""SQLAlchemy: a client span per SQL statement, under the span that ran it.

::

    from zoomtrace.integrations import sqlalchemy as zt_sqlalchemy

    zt_sqlalchemy.instrument()          # every Engine, created before or after
    zt_sqlalchemy.instrument(engine)    # or one engine only

The span is named after the statement's first keyword (``SELECT``, ``INSERT``...), carries the
OpenTelemetry database attributes (``db.system.name``, ``db.query.text``, ``db.operation.name``,
``db.namespace``, ``server.address``/``server.port``, ``db.operation.batch.size`` for an
``executemany``) and points at the application line that ran the query. The SQL text is the one
sent to the driver, with its placeholders: parameter values are left out unless
``parameters=True`` asks for them (``db.query.parameter.<name or position>``). The row count the
driver reports is ``db.response.affected_rows`` for a statement that changes rows and
``db.response.returned_rows`` for one returning them, when the driver knows it before they are
fetched (SQLite does not). It listens to the cursor-level events, so ``Connection.exec_driver_sql``
(plain DB-API SQL), Core and the ORM, sync and asyncio, are all traced.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine, ExceptionContext

from zoomtrace.capture.span import Span
from zoomtrace.integrations._db import set_row_count, statement_attributes, statement_span
from zoomtrace.integrations._http import close_detached, open_detached

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine  # not imported for a sync program: it imports asyncio

__all__ = ["instrument", "uninstrument"]

#: Frames of these packages are skipped to find the application line that ran the statement.
_LIBRARY: Final = ("sqlalchemy", "zoomtrace.integrations", "contextlib", "functools", "opentelemetry")
#: Where the statement's span waits on its connection between the "before" and "after" events.
_OPEN: Final = "_zoomtrace_statement"

_listeners: dict[Any, tuple[Any, Any, Any]] = {}


def _attributes(
    conn: Connection, statement: str, parameters: Any, context: Any, executemany: bool, values: bool
) -> dict[str, Any]:
    engine = conn.engine
    url = engine.url
    attrs = statement_attributes(engine.dialect.name, statement, url.database, url.host, url.port)
    if executemany:
        attrs["db.operation.batch.size"] = len(parameters)
    elif values:
        attrs.update(_parameters(parameters, context))
    return attrs


def _parameters(parameters: Any, context: Any) -> dict[str, Any]:
    """``db.query.parameter.<name>`` for one execution's parameters: the bound names SQLAlchemy compiled
    into positional placeholders (``?``, ``%s``) when it knows them, else the positions."""
    if not parameters:
        return {}
    if isinstance(parameters, dict):
        return {f"db.query.parameter.{key}": value for key, value in parameters.items()}
    names = getattr(getattr(context, "compiled", None), "positiontup", None)
    keys = names if names is not None and len(names) == len(parameters) else range(len(parameters))
    return {f"db.query.parameter.{key}": value for key, value in zip(keys, parameters, strict=True)}


def _listen(target: Any, values: bool) -> tuple[Any, Any, Any]:
    def before(conn: Connection, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        opened = conn.info.get(_OPEN)
        if opened is not None and opened[0] is cursor:  # instrumented twice (every engine and this one)
            if values and not executemany:
                opened[1].attrs.update(_parameters(parameters, context))
            return
        span = statement_span(_attributes(conn, statement, parameters, context, executemany, values), _LIBRARY)
        open_detached(span)
        conn.info[_OPEN] = (cursor, span)

    def after(conn: Connection, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        opened = conn.info.pop(_OPEN, None)
        if opened is None:
            return
        span: Span = opened[1]
        set_row_count(span, cursor)
        close_detached(span, None)

    def failed(context: ExceptionContext) -> None:
        conn = context.connection
        opened = conn.info.pop(_OPEN, None) if conn is not None else None
        if opened is None:
            return
        span: Span = opened[1]
        error = context.sqlalchemy_exception or context.original_exception
        span.attrs["error.type"] = type(error).__qualname__
        close_detached(span, error)

    event.listen(target, "before_cursor_execute", before)
    event.listen(target, "after_cursor_execute", after)
    event.listen(target, "handle_error", failed)
    return before, after, failed


def _target(engine: Engine | AsyncEngine | None) -> Any:
    """What the listeners go on: the Engine class (every engine), or the engine (an async one's sync engine)."""
    if engine is None:
        return Engine
    return getattr(engine, "sync_engine", engine)


def instrument(engine: Engine | AsyncEngine | None = None, *, parameters: bool = False) -> None:
    """Trace the statements of ``engine`` (sync or async), or of every engine when none is given. Idempotent.

    ``parameters=True`` records the statements' parameter values too (off by default: they are
    often personal data; Zoom's scrubber still hides secret-looking ones).
    """
    target = _target(engine)
    if target not in _listeners:
        _listeners[target] = _listen(target, parameters)


def uninstrument(engine: Engine | AsyncEngine | None = None) -> None:
    """Undo ``instrument`` (for ``engine``, or for every engine)."""
    target = _target(engine)
    listeners = _listeners.pop(target, None)
    if listeners is not None:
        for name, fn in zip(("before_cursor_execute", "after_cursor_execute", "handle_error"), listeners, strict=True):
            event.remove(target, name, fn)
