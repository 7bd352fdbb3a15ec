"""Optional dependencies: which extra installs each, and the one line that says so when one is missing."""

from __future__ import annotations

import importlib.util
from typing import Final

from zoomtrace.errors import ConfigError

#: Top-level module -> the extra of ``pip install 'zoomtrace[extra]'`` that installs it.
EXTRA_OF: Final = {
    "confluent_kafka": "kafka",
    "opentelemetry": "otel",
    "chdb": "clickhouse",
    "clickhouse_connect": "clickhouse",
}


def advice(module: str, what: str) -> str:
    """``what`` needs ``module``: the line naming the exact install command."""
    return f"{what} needs the Python package {module}: pip install 'zoomtrace[{EXTRA_OF[module.partition('.')[0]]}]'"


def require(module: str, what: str) -> None:
    """Raise ``ConfigError`` with ``advice`` unless ``module`` can be imported (checked before any work starts)."""
    if importlib.util.find_spec(module) is None:
        raise ConfigError(advice(module, what))


def missing_extra(exc: ModuleNotFoundError) -> str | None:
    """The advice for an optional package found missing while running, or None for any other module."""
    module = exc.name or ""
    return advice(module, "this command") if module.partition(".")[0] in EXTRA_OF else None
