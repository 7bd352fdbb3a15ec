"""The C speedups of the hot path, when they are there (docs/ARCHITECTURE.md, "Native code").

``speedups`` is the compiled ``_speedups*.c`` (built at install when a C compiler is there), or None: not
built, or ``ZOOMTRACE_PURE_PYTHON`` set to a non-empty value in the environment. Every function in it stands
for a Python function that stays the reference and the fallback, and gives the same answers
(tests/test_speedups.py).
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

#: Set to a non-empty value to use the pure-Python code even where the C speedups are built.
PURE_PYTHON_ENV = "ZOOMTRACE_PURE_PYTHON"


def _load() -> ModuleType | None:
    if os.environ.get(PURE_PYTHON_ENV):
        return None
    try:
        # By name: import-linter sees no module file for a C extension and would take it for the package.
        return importlib.import_module("zoomtrace._speedups")
    except ImportError:
        return None


speedups: ModuleType | None = _load()
