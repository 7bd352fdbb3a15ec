"""Django: each request a server span continuing the caller's trace; Zoom started from settings.

::

    INSTALLED_APPS = [..., "zoomtrace.integrations.django"]   # zt.init(**ZOOMTRACE) as Django starts
    MIDDLEWARE = ["zoomtrace.integrations.django.ZoomMiddleware", ...]   # first: it covers the others
    ZOOMTRACE = {"service": "shop", "env": "prod", "level": "INFO"}    # zt.init's arguments

The span reads ``traceparent``/``tracestate``/``baggage`` from the request, is named
``METHOD /route`` after the URL pattern that matched (``http.route``, with a leading ``/``),
points at the view (a class-based view's method for the request), carries the ``http.*`` /
``url.*`` / ``server.*`` / ``client.*`` attributes of the semantic conventions and the response
status; a 5xx status or an exception the view raised makes it an error. The view's logs,
spans and statements are under it. It ends when the view has returned its response (a streamed
body is sent after it). Sync and async (ASGI) stacks are both served without a thread hop.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Final

from asgiref.sync import iscoroutinefunction, markcoroutinefunction

from zoomtrace.capture.span import Span
from zoomtrace.integrations._http import server_response, server_span, set_error
from zoomtrace.integrations.wsgi import request_attributes, request_headers

__all__ = ["MIDDLEWARE", "ZoomMiddleware"]

#: The middleware's path, as ``settings.MIDDLEWARE`` names it.
MIDDLEWARE: Final = "zoomtrace.integrations.django.ZoomMiddleware"
#: Where the request's span waits for the hooks Django calls once the URL is resolved.
_SPAN: Final = "_zoomtrace_span"


class ZoomMiddleware:
    """A server span per request (see the module docstring)."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[Any], Any]) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: Any) -> Any:
        if self.is_async:
            return self._serve_async(request)
        with _span(request) as span:
            response = self.get_response(request)
            server_response(span, response.status_code, None, None)
        return response

    async def _serve_async(self, request: Any) -> Any:
        get_response: Callable[[Any], Awaitable[Any]] = self.get_response
        with _span(request) as span:
            response = await get_response(request)
            server_response(span, response.status_code, None, None)
        return response

    def process_view(self, request: Any, view: Any, args: Any, kwargs: Any) -> None:
        """The URL is resolved: the span takes the route's name and points at the view."""
        span: Span | None = getattr(request, _SPAN, None)
        match = request.resolver_match
        if span is None or match is None:
            return
        route = match.route
        server_response(span, None, None if route is None else "/" + route, _view_code(view, request.method))

    def process_exception(self, request: Any, exception: Exception) -> None:
        """The view raised: Django answers with an error page, the span records the exception."""
        span: Span | None = getattr(request, _SPAN, None)
        if span is not None:
            set_error(span, exception)


def _span(request: Any) -> Span:
    attrs = request_attributes(request.META)
    attrs["url.scheme"] = request.scheme
    span = server_span(request.method or "GET", request_headers(request.META), attrs, None)
    setattr(request, _SPAN, span)
    return span


def _view_code(view: Any, method: str | None) -> Any:
    """What the span points at: the view function, or the method of a class-based view serving the request."""
    view_class = getattr(view, "view_class", None)
    if view_class is None:
        return view
    handler = getattr(view_class, (method or "get").lower(), None)
    return handler if callable(handler) else getattr(view_class, "dispatch", view)
