"""The ``zoomtrace`` command: one module per concern, ``main`` parses and dispatches."""

from zoomtrace.cli.main import main

__all__ = ["main"]
