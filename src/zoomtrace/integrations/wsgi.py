"""WSGI middleware: each request continues the caller's trace in a server span.

::

    from zoomtrace.integrations.wsgi import ZoomMiddleware

    app.wsgi_app = ZoomMiddleware(app.wsgi_app)     # Flask
    application = ZoomMiddleware(application)       # any WSGI app

The span reads ``traceparent``/``tracestate``/``baggage`` from the request, is named
``METHOD /route`` once the route is known, carries the ``http.*``/``url.*``/``server.*``/
``client.*`` attributes of the semantic conventions and ends when the server closes the
response body (a streamed body is inside the span). A 5xx status or an exception makes it
an error. With Flask the span also gets the route (``http.route``), points at the view
function, and records an exception Flask turned into a 500 response.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from zoomtrace.capture.span import Span, current_span
from zoomtrace.integrations._http import (
    activated,
    close_detached,
    code_of,
    open_detached,
    scrub_query,
    server_response,
    server_span,
    set_error,
    split_host,
)

if TYPE_CHECKING:
    from _typeshed import OptExcInfo
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

__all__ = ["ZoomMiddleware", "request_attributes", "request_headers"]


def request_headers(environ: WSGIEnvironment) -> list[tuple[str, str]]:
    """The request headers of a WSGI environ as ``(name, value)`` pairs."""
    pairs = [(key[5:].replace("_", "-"), value) for key, value in environ.items() if key.startswith("HTTP_")]
    if "CONTENT_TYPE" in environ:
        pairs.append(("content-type", environ["CONTENT_TYPE"]))
    return pairs


def request_attributes(environ: WSGIEnvironment) -> dict[str, Any]:
    """Semantic-convention attributes of a request, from its WSGI environ."""
    attrs: dict[str, Any] = {
        "url.scheme": environ.get("wsgi.url_scheme", "http"),
        "url.path": (environ.get("SCRIPT_NAME") or "") + (environ.get("PATH_INFO") or "/"),
    }
    query = environ.get("QUERY_STRING")
    if query:
        attrs["url.query"] = scrub_query(query)
    host = environ.get("HTTP_HOST") or environ.get("SERVER_NAME")
    if host:
        address, port = split_host(host)
        attrs["server.address"] = address
        if port is not None:
            attrs["server.port"] = port
        elif str(environ.get("SERVER_PORT", "")).isdigit():
            attrs["server.port"] = int(environ["SERVER_PORT"])
    if environ.get("REMOTE_ADDR"):
        attrs["client.address"] = environ["REMOTE_ADDR"]
    if str(environ.get("REMOTE_PORT", "")).isdigit():
        attrs["client.port"] = int(environ["REMOTE_PORT"])
    if environ.get("HTTP_USER_AGENT"):
        attrs["user_agent.original"] = environ["HTTP_USER_AGENT"]
    protocol = environ.get("SERVER_PROTOCOL", "")
    if protocol.startswith("HTTP/"):
        attrs["network.protocol.version"] = protocol[5:]
    return attrs


class ZoomMiddleware:
    """Wrap a WSGI application: a server span per request (see the module docstring)."""

    def __init__(self, app: WSGIApplication) -> None:
        self.app = app
        self._code = code_of(app)
        self._flask_hooks(getattr(app, "__self__", app))

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        span = server_span(
            environ.get("REQUEST_METHOD", "GET"), request_headers(environ), request_attributes(environ), self._code
        )
        open_detached(span)
        status: list[int] = []

        def traced_start_response(
            status_line: str, headers: list[tuple[str, str]], exc_info: OptExcInfo | None = None
        ) -> Any:
            code = status_line.split(" ", 1)[0]
            if code.isdigit():
                status[:] = [int(code)]
            return start_response(status_line, headers, exc_info)

        try:
            with activated(span):
                result = self.app(environ, traced_start_response)
        except BaseException as exc:
            server_response(span, status[0] if status else 500, None, None)
            close_detached(span, exc)
            raise
        return _Body(result, span, status)

    def _flask_hooks(self, app: Any) -> None:
        """Flask resolves the route inside the app: a hook there names the span and catches handled errors."""
        if not (hasattr(app, "url_map") and hasattr(app, "before_request") and hasattr(app, "view_functions")):
            return
        from flask import got_request_exception, request

        def name_span() -> None:
            span = current_span()
            rule = request.url_rule
            if span is not None and rule is not None:
                server_response(span, None, rule.rule, app.view_functions.get(rule.endpoint))

        def record_exception(sender: Any, exception: BaseException, **extra: Any) -> None:
            span = current_span()
            if span is not None and span.attrs.get("span.kind") == "server":
                set_error(span, exception)

        app.before_request(name_span)
        got_request_exception.connect(record_exception, app, weak=False)


class _Body:
    """The response body: the span is current while it is produced and ends when the server closes it."""

    def __init__(self, result: Iterable[bytes], span: Span, status: list[int]) -> None:
        self._result = result
        self._span = span
        self._status = status
        self._error: BaseException | None = None

    def __iter__(self) -> Iterator[bytes]:
        with activated(self._span):
            iterator = iter(self._result)
        while True:
            with activated(self._span):
                try:
                    chunk = next(iterator)
                except StopIteration:
                    return
                except BaseException as exc:
                    self._error = exc
                    raise
            yield chunk

    def close(self) -> None:
        try:
            close = getattr(self._result, "close", None)
            if close is not None:
                with activated(self._span):
                    close()
        except BaseException as exc:
            self._error = self._error or exc
            raise
        finally:
            server_response(self._span, self._status[0] if self._status else None, None, None)
            close_detached(self._span, self._error)
