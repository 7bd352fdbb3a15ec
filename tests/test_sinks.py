"""The stdout and file sinks, alone and beside the spool."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from zoomtrace.errors import ConfigError
from zoomtrace.sinks import NodeIdentity, open_sink
from zoomtrace.wire.record import Record, uuid7
from zoomtrace.wire.spool import read_segment

APP = """
import sys
import zoomtrace as zt
zt.init("sinky", sink=sys.argv[1].split(";"), home=sys.argv[2])
with zt.span("work", order=7):
    zt.log.warning("careful with {thing}", thing="glass\\x1b[31m")
    zt.event({"order": 7}, type="OrderPlaced")
"""


def run_app(tmp_path: Path, sink: str) -> str:
    script = tmp_path / "app.py"
    script.write_text(APP)
    out = subprocess.run(
        [sys.executable, str(script), sink, str(tmp_path / "home")],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return out.stdout


def test_stdout_json_lines_carry_every_record(tmp_path: Path) -> None:
    lines = [json.loads(line) for line in run_app(tmp_path, "stdout+json").splitlines()]
    kinds = sorted(r["kind"] for r in lines)
    assert kinds == ["event", "log", "node", "node", "span"]  # started, stopped
    log = next(r for r in lines if r["kind"] == "log")
    assert log["message"] == "careful with glass\x1b[31m" and log["level"] == "WARNING"


def test_stdout_human_lines_escape_control_characters(tmp_path: Path) -> None:
    out = run_app(tmp_path, "stdout")
    assert "careful with glass" in out
    assert "\x1b" not in out  # an escape sequence in a message must not drive the terminal


def test_file_sink_beside_the_spool(tmp_path: Path) -> None:
    path = tmp_path / "out" / "records.jsonl"
    run_app(tmp_path, f"spool;file://{path}")
    in_file = [json.loads(line) for line in path.read_text().splitlines()]
    assert {r["kind"] for r in in_file} == {"event", "log", "node", "span"}
    assert list((tmp_path / "home" / "spool").glob("*.zspool"))


def test_unknown_sink_says_what_exists(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="kafka://"):
        open_sink("carrier-pigeon://loft", home=tmp_path, node=NodeIdentity("n"), report_loss=lambda reason, n: None)


@pytest.mark.parametrize(
    "url",
    [
        "carrier-pigeon://bird:hunter2@loft",
        "kafka://user:hunter2@",
        "kafka://user:hunter2@broker:9092",
        "otlp+ftp://user:hunter2@collector:4318",
    ],
)
def test_a_bad_sink_url_is_quoted_without_its_secret(tmp_path: Path, url: str) -> None:
    with pytest.raises(ConfigError) as refused:
        open_sink(url, home=tmp_path, node=NodeIdentity("n"), report_loss=lambda reason, n: None)
    assert "hunter2" not in str(refused.value)
    assert "***" in str(refused.value)


def test_a_record_the_spool_cannot_encode_costs_only_itself(tmp_path: Path) -> None:
    """A lone surrogate has no UTF-8 form in either frame version: that record is counted lost, its batch written."""
    lost: list[tuple[str, int]] = []
    node = NodeIdentity(node_id=uuid7(), service="svc", env="test", group="g")
    sink = open_sink("spool", home=tmp_path, node=node, report_loss=lambda reason, n: lost.append((reason, n)))
    good = [
        Record(id=uuid7(), kind="log", type="app", ts_ns=1, node_id=node.node_id, message=f"m{i}") for i in range(3)
    ]
    raw = Record(id=uuid7(), kind="raw", type="blob", ts_ns=2, node_id=node.node_id, payload=b"\x00\x01")
    bad = Record(id=uuid7(), kind="log", type="app", ts_ns=3, node_id=node.node_id, message="half \udcff")
    sink.write([good[0], bad, good[1], raw, good[2]])
    sink.close()
    (segment,) = (tmp_path / "spool").iterdir()
    result = read_segment(segment)
    assert not result.problems
    assert sorted(r.id for r in result.records) == sorted(r.id for r in [*good, raw])
    assert lost == [("encode_error", 1)]
