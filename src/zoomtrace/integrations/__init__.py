"""HTTP integrations: the trace crosses HTTP calls, and each call is a span.

Outgoing calls get a *client* span and the W3C headers (``traceparent``, ``tracestate``,
``baggage``); incoming requests continue the caller's trace in a *server* span with the
standard ``http.*`` / ``url.*`` attributes (OpenTelemetry semantic conventions)::

    from zoomtrace.integrations import requests as zt_requests, wsgi

    zt_requests.instrument()                       # every requests.Session
    client = httpx.Client(transport=zoomtrace.integrations.httpx.TracingTransport())
    app.wsgi_app = wsgi.ZoomMiddleware(app.wsgi_app)          # Flask
    app.add_middleware(zoomtrace.integrations.asgi.ZoomMiddleware)  # FastAPI / Starlette

Each module imports its library only when used; nothing here is imported by ``import zoomtrace``.
"""
