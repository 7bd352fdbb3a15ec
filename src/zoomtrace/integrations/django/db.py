"""Django's database layer: a client span per SQL statement, the ORM's included.

``trace_queries()`` puts a wrapper in every connection's ``execute_wrappers`` (Django's hook around
each statement), for the connections open now and those opened later. The app
``zoomtrace.integrations.django`` calls it as Django starts. The spans are those of the SQLAlchemy
integration (``db.system.name``, ``db.query.text`` with its placeholders and no parameter values,
``db.operation.name``, ``db.namespace``, row count, error), pointing at the application line that
ran the query (for a lazy queryset, the line that evaluated it).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from django.db import connections
from django.db.backends.signals import connection_created

from zoomtrace.integrations._db import set_row_count, statement_attributes, statement_span

__all__ = ["trace_queries"]

#: Frames of these packages are skipped to find the application line that ran the statement.
_LIBRARY: Final = ("django", "zoomtrace.integrations", "contextlib", "functools")


def trace_queries() -> None:
    """Trace the statements of every database connection, open or opened later. Idempotent."""
    connection_created.connect(_connected, dispatch_uid="zoomtrace.trace_queries")
    for connection in connections.all(initialized_only=True):
        _wrap(connection)


def _connected(sender: Any, connection: Any, **kwargs: Any) -> None:
    _wrap(connection)


def _wrap(connection: Any) -> None:
    if _traced not in connection.execute_wrappers:
        connection.execute_wrappers.append(_traced)


def _traced(execute: Callable[..., Any], sql: str, params: Any, many: bool, context: dict[str, Any]) -> Any:
    connection = context["connection"]
    database = connection.settings_dict
    attrs = statement_attributes(
        connection.vendor, str(sql), database.get("NAME"), database.get("HOST") or None, database.get("PORT") or None
    )
    if many and isinstance(params, list | tuple):  # an iterator of parameter sets is left unconsumed
        attrs["db.operation.batch.size"] = len(params)
    with statement_span(attrs, _LIBRARY) as span:
        try:
            result = execute(sql, params, many, context)
        except BaseException as exc:
            span.attrs["error.type"] = type(exc).__qualname__
            raise
        set_row_count(span, context["cursor"])
    return result
