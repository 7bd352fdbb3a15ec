"""`import zoomtrace` (and starting a node) must not load the heavy libraries only some stages need."""

from __future__ import annotations

import json
import subprocess
import sys

#: Loaded only by the stage or integration that needs them (asyncio: 26 ms, for nothing in a sync program).
HEAVY = (
    "asyncio",
    "duckdb",
    "pyarrow",
    "starlette",
    "uvicorn",
    "httpx",
    "requests",
    "confluent_kafka",
    "opentelemetry",
    "google.protobuf",
    "flask",
    "django",
    "sqlalchemy",
)


def _heavy(modules: set[str]) -> list[str]:
    return sorted(m for m in modules for h in HEAVY if m == h or m.startswith(h + "."))


def test_import_loads_only_light_dependencies() -> None:
    """What ``python -X importtime -c "import zoomtrace"`` reports, module by module."""
    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import zoomtrace"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    # Lines read "import time: self [us] | cumulative | imported package", the name indented by depth.
    modules = {line.rpartition("|")[2].strip() for line in out.stderr.splitlines() if line.startswith("import time:")}
    assert _heavy(modules) == []
    assert {"zoomtrace", "msgspec"} <= modules  # the report is the real list


def test_import_and_init_load_only_light_dependencies(tmp_path) -> None:
    code = (
        "import sys, json, zoomtrace as zt\n"
        f"zt.init('light', home={str(tmp_path)!r})\n"
        "with zt.span('s'):\n    zt.log.info('hello')\n"
        "zt.flush()\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    modules = set(json.loads(out.stdout))
    assert _heavy(modules) == []
    assert "msgspec" in modules  # the one codec allowed, so the check above is looking at the real list
