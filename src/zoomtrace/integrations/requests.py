"""``requests``: a client span per request and the trace context in its headers.

::

    from zoomtrace.integrations import requests as zt_requests

    zt_requests.instrument()            # every Session (and requests.get, requests.post...)
    zt_requests.instrument(session)     # or one session only

The span is named after the method (``GET``), carries ``url.full`` without user, password or
secret query values, ``server.address``/``server.port`` and ``http.response.status_code``, and
points at the application line that made the call. Each redirect is a request and a span.
"""

from __future__ import annotations

import functools
import types
from collections.abc import Callable
from typing import Any, Final

import requests

from zoomtrace.capture.context import inject
from zoomtrace.integrations._http import client_error, client_response, client_span

__all__ = ["instrument", "uninstrument"]

#: Frames of these packages are skipped to find the application line that made the call.
_LIBRARY: Final = ("requests", "urllib3", "zoomtrace.integrations", "contextlib", "functools", "wrapt", "opentelemetry")
_MARK: Final = "_zoomtrace_original"

Send = Callable[..., requests.Response]


def _traced(original: Send) -> Send:
    @functools.wraps(original)
    def send(self: requests.Session, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        if getattr(request, "_zoomtrace_traced", False):  # instrumented twice (class and session)
            return original(self, request, **kwargs)
        request._zoomtrace_traced = True  # type: ignore[attr-defined]
        span = client_span(request.method or "GET", request.url or "", _LIBRARY)
        with span:
            inject(request.headers, context=span)
            try:
                response = original(self, request, **kwargs)
            except Exception as exc:
                client_error(span, exc)
                raise
            client_response(span, response.status_code)
            return response

    setattr(send, _MARK, original)
    return send


def instrument(session: requests.Session | None = None) -> None:
    """Trace the requests of ``session``, or of every session when none is given. Idempotent."""
    if session is None:
        if not hasattr(requests.Session.send, _MARK):
            requests.Session.send = _traced(requests.Session.send)  # type: ignore[method-assign]
        return
    if not hasattr(session.send, _MARK):
        session.send = types.MethodType(_traced(type(session).send), session)  # type: ignore[method-assign]


def uninstrument(session: requests.Session | None = None) -> None:
    """Undo ``instrument`` (for ``session``, or the global one)."""
    if session is None:
        original = getattr(requests.Session.send, _MARK, None)
        if original is not None:
            requests.Session.send = original  # type: ignore[method-assign]
        return
    if "send" in vars(session):
        del session.send
