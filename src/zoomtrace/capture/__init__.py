"""Capture: what runs on the application's thread when it records something.

``span``, ``log`` and ``events`` read the clock, the current span (``context``, a
``ContextVar``) and the caller's code object and line, and hand a plain tuple
(``items``) to the running node found in ``recorder``; nothing is formatted, encoded
or written here. ``threads`` carries the current span into threads and pools;
``stdlib_logging`` and ``otel_bridge`` are the sources ``init()`` turns on (stdlib
``logging`` records, OpenTelemetry API spans). Capture imports only ``wire``.
"""
