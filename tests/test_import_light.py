"""`import zoomtrace` (and starting a node) must not load the heavy libraries only some stages need."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("duckdb", "pyarrow", "starlette", "uvicorn", "confluent_kafka", "opentelemetry", "google.protobuf", "flask")


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
    loaded = sorted(m for m in modules for h in HEAVY if m == h or m.startswith(h + "."))
    assert loaded == []
    assert "msgspec" in modules  # the one codec allowed, so the check above is looking at the real list
