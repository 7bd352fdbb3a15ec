"""The web story viewer: ``zoomtrace ui`` serves it, reading the same store as the CLI.

A read-only JSON API (``zoomtrace.ui.app``) and a front end of plain JavaScript
modules shipped in the package (``static/``: no build step, nothing from the
network). Starlette and uvicorn are imported only when the viewer is created.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from zoomtrace.ui.server import DEFAULT_PORT, running_url, serve, serve_and_open, trace_url

if TYPE_CHECKING:
    from starlette.applications import Starlette

__all__ = ["DEFAULT_PORT", "create_app", "running_url", "serve", "serve_and_open", "trace_url"]


def create_app(home: Any, token: str | None = None, store: str | None = None, **kwargs: Any) -> Starlette:
    """The viewer as an ASGI application for the store ``store`` names (else ``$ZOOMTRACE_STORE``, else the
    DuckDB file of ``home``); see ``zoomtrace.ui.app.create_app``."""
    from zoomtrace.ui.app import create_app as _create_app

    return _create_app(home, token, store, **kwargs)
