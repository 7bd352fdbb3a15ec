"""Started by ``zoomtrace run`` (this directory is first on ``PYTHONPATH``): Zoom records this process.

It never stops the application: a failure is one line on stderr. The application's own
``sitecustomize``, if any, still runs after this one.
"""

import importlib
import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))


def _start() -> None:
    try:
        from zoomtrace.integrations.auto import start_from_environment
    except ImportError as exc:
        print(
            f"zoomtrace run: {sys.executable} cannot import zoomtrace ({exc}); this process is not recorded: run the "
            "command with the Python that zoomtrace is installed in",
            file=sys.stderr,
        )
        return
    try:
        start_from_environment()
    except Exception as exc:
        print(f"zoomtrace run: this process is not recorded: {exc}", file=sys.stderr)


def _chain() -> None:
    """Import the next ``sitecustomize`` on the path, the one this module hides."""
    this = sys.modules.pop("sitecustomize")
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _HERE]
    try:
        importlib.import_module("sitecustomize")
    except ModuleNotFoundError as exc:
        if exc.name != "sitecustomize":
            raise
        sys.modules["sitecustomize"] = this  # the import that is running this module expects to find it


_start()
_chain()
