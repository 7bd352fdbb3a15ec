"""Zoom as a ``logging`` handler class, for projects that configure logging in settings.

::

    LOGGING = {                      # Django's settings, or any logging.config.dictConfig(...)
        "version": 1,
        "handlers": {"zoom": {"class": "zoomtrace.integrations.logging.ZoomHandler"}},
        "root": {"handlers": ["zoom"], "level": "INFO"},
    }

A ``dictConfig`` that sets the root logger's handlers removes the ones already there, the one
``zt.init()`` attached included: naming Zoom's handler in the configuration keeps the logs
recorded. The handler records nothing before ``zt.init()``, nor below the node's ``level``
(a ``"level"`` of its own can only raise that). A record that reaches both this handler and the
one ``zt.init(capture_logging=True)`` attaches to the root logger is recorded once.
"""

from __future__ import annotations

from zoomtrace.capture.stdlib_logging import ZoomHandler

__all__ = ["ZoomHandler"]
