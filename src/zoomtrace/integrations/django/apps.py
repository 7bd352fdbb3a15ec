"""The Django application ``zoomtrace.integrations.django``: Zoom started from the ``ZOOMTRACE`` setting,
and a span per SQL statement."""

from __future__ import annotations

import inspect
from typing import Any

from django.apps import AppConfig
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from zoomtrace.errors import ConfigError
from zoomtrace.runtime.lifecycle import init


class ZoomConfig(AppConfig):  # type: ignore[misc]  # Django ships no type hints
    """``ready()`` calls ``zt.init(**settings.ZOOMTRACE)`` and traces the SQL statements, before the first
    request is served."""

    name = "zoomtrace.integrations.django"
    label = "zoomtrace"
    verbose_name = "Zoom"

    def ready(self) -> None:
        from zoomtrace.integrations.django.db import trace_queries

        start(getattr(settings, "ZOOMTRACE", {}), getattr(settings, "SETTINGS_MODULE", None))
        trace_queries()


def start(options: Any, settings_module: str | None) -> None:
    """``zt.init`` with ``options`` (the ``ZOOMTRACE`` setting); the service defaults to the project's
    package, the first part of the settings module's name. A process that already runs Zoom (``zoomtrace
    run``) keeps its node: ``init`` returns it."""
    if not isinstance(options, dict):
        raise ImproperlyConfigured(
            f"ZOOMTRACE must be a dict of zt.init arguments, like {{'service': 'shop'}}, not {type(options).__name__}"
        )
    options = dict(options)
    service = options.pop("service", None) or (settings_module or "django").partition(".")[0]
    known = [name for name in inspect.signature(init).parameters if name != "service"]
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise ImproperlyConfigured(
            f"ZOOMTRACE has unknown key {', '.join(map(repr, unknown))}: use service or some of {', '.join(known)}"
        )
    try:
        init(service, **options)
    except ConfigError as exc:
        raise ImproperlyConfigured(f"ZOOMTRACE: {exc}") from None
