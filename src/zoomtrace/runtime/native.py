"""The C speedups of the worker's hot path, when they are there (docs/ARCHITECTURE.md, "Native code").

``payload_scan`` is the compiled ``_payload_scan.c`` (built at install when a C compiler is there), or None:
not built, or ``ZOOMTRACE_PURE_PYTHON=1`` in the environment. Every function in it stands for a Python
function that stays the reference and the fallback, and gives the same answers (tests/test_payload_scan.py).
"""

from __future__ import annotations

import os
from types import ModuleType

#: Set to a non-empty value to use the pure-Python code even where the C speedups are built.
PURE_PYTHON_ENV = "ZOOMTRACE_PURE_PYTHON"


def _load() -> ModuleType | None:
    if os.environ.get(PURE_PYTHON_ENV):
        return None
    try:
        from zoomtrace.runtime import _payload_scan
    except ImportError:
        return None
    return _payload_scan


payload_scan: ModuleType | None = _load()
