"""The benchmark suite (bench/run.py) still runs: every case, every installed library, well-formed JSON.

A smoke run (tiny sizes, one sample each) takes seconds; it asserts nothing about timings.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from support.kafka_broker import KafkaBroker

REPO = Path(__file__).resolve().parents[1]
CASES = ("log", "span", "event", "stdlib", "threads8", "tasks1000")
#: Which library offers which case (a library without spans has no span case).
OFFERS = {
    "zoomtrace": set(CASES),
    "floor": {"log", "threads8", "tasks1000"},
    "stdlib-json": {"log", "event", "stdlib", "threads8", "tasks1000"},
    "structlog": {"log", "event", "threads8", "tasks1000"},
    "loguru": {"log", "event", "threads8", "tasks1000"},
    "eliot": {"log", "span", "event"},
    "otel-sdk": {"log", "span", "event"},
    "logfire": {"log", "span", "event"},
}
MODULES = {
    "zoomtrace": "zoomtrace",
    "floor": "msgspec",
    "stdlib-json": "logging",
    "structlog": "structlog",
    "loguru": "loguru",
    "eliot": "eliot",
    "otel-sdk": "opentelemetry.sdk",
    "logfire": "logfire",
}
METRICS = ("caller_cpu_us", "caller_wall_us", "e2e_cpu_us", "e2e_wall_us")


def test_smoke_run_emits_every_case_as_json(tmp_path: Path) -> None:
    out, md = tmp_path / "bench.json", tmp_path / "bench.md"
    proc = subprocess.run(
        [sys.executable, str(REPO / "bench" / "run.py"), "--smoke", "--json", str(out), "--markdown", str(md)],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=REPO,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = json.loads(out.read_text())
    assert res["schema"] == 1 and res["mode"] == "smoke"
    machine = res["machine"]
    assert machine["python"] == sys.version.split()[0]
    assert machine["cores"] and machine["cpu"]
    assert "zoomtrace" in machine["versions"]

    installed = {lib for lib, mod in MODULES.items() if importlib.util.find_spec(mod) is not None}
    assert set(res["settings"]["libs"]) == installed
    assert "_errors" not in res["micro"], res["micro"].get("_errors")
    for lib in installed:
        for case in OFFERS[lib]:
            row = res["micro"][case][lib]
            assert "errors" not in row, (case, lib, row.get("errors"))
            assert row["samples"] >= 1
            for metric in METRICS:
                stats = row[metric]
                assert stats["median"] > 0 and stats["min"] <= stats["median"] <= stats["max"], (case, lib, metric)

    ingest = res["ingest"]
    assert "error" not in ingest, ingest
    assert ingest["records"] >= ingest["emitted"] > 0 and ingest["records_per_s"] > 0
    assert res["kafka"] == {"skipped": "no broker: pass --kafka HOST:PORT or --start-kafka"}
    query = res["query"]
    assert "error" not in query, query
    for size in query["sizes"].values():
        assert size["story_records"] == 1000
        for key in ("story", "traces_page_service", "traces_page_errors"):
            assert 0 < size[key]["p50_ms"] <= size[key]["p95_ms"]
    memory = res["memory"]
    assert "error" not in memory, memory
    assert memory["accounted"] and memory["init_added_mb"] > 0

    targets = {t["target"] for t in res["targets"]}
    assert "log end-to-end µs" in targets and "span caller µs" in targets
    for case in (
        "1. Log record",
        "2. Span",
        "3. Data event",
        "4. stdlib",
        "5a.",
        "5b.",
        "6. Ingest",
        "7. Query",
        "8. Memory",
        "Targets",
    ):
        assert case in md.read_text(), case


@pytest.mark.kafka
def test_the_kafka_sink_worker_bench_runs(kafka_broker: KafkaBroker) -> None:
    """``bench/kafka_sink_worker.py`` still runs (a few records) and reports both kinds for the worker and the
    process; nothing about the timings."""
    out = subprocess.run(
        [
            sys.executable,
            str(REPO / "bench" / "kafka_sink_worker.py"),
            "--kafka",
            kafka_broker.bootstrap,
            "--records",
            "300",
            "--repeats",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    result = json.loads(out.stdout)
    for kind in ("event", "log"):
        for key in ("worker_us", "process_us"):
            assert result[kind][key]["median"] > 0 and len(result[kind][key]["all"]) == 1


def test_the_ingest_halves_bench_runs() -> None:
    """``bench/ingest_halves.py`` still runs (a few requests' records) and its three ways see the same records, all
    stored; nothing about the timings."""
    out = subprocess.run(
        [sys.executable, str(REPO / "bench" / "ingest_halves.py"), "--records", "600", "--repeats", "1"],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    result = json.loads(out.stdout)
    counts = {result[way]["records"] for way in ("read", "write", "ingest")}
    assert len(counts) == 1
    assert counts.pop() >= 600  # the requests' records, and the node's own
    for way in ("read", "write", "ingest"):
        assert result[way]["records_per_s"] > 0
        assert result[way]["cpu_us_per_record"] > 0
    assert result["two_cores_at_most"] > 0
