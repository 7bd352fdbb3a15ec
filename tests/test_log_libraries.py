"""structlog and loguru lines join the story with their own call site and the current span."""

from __future__ import annotations

import sys
from pathlib import Path

import msgspec
import structlog
from loguru import logger as loguru_logger

import zoomtrace as zt
from zoomtrace.integrations import loguru as zoom_loguru
from zoomtrace.integrations import structlog as zoom_structlog
from zoomtrace.wire.spool import read_segment, segments


def logs(home: Path) -> list[dict]:
    out = []
    for seg in segments(home / "spool"):
        out += [msgspec.to_builtins(r) for r in read_segment(seg).records if r.kind == "log"]
    return out


def test_structlog_and_loguru_lines_are_recorded_under_the_span(tmp_path: Path) -> None:
    zt.init("libs", home=tmp_path)
    structlog.configure(processors=[zoom_structlog.processor, structlog.processors.JSONRenderer()])
    loguru_logger.remove()
    sink_id = loguru_logger.add(zoom_loguru.sink)
    try:
        with zt.span("work") as span:
            structlog_line = sys._getframe().f_lineno + 1
            structlog.get_logger().warning("user logged in", user="bob", api_key="k-123")
            loguru_line = sys._getframe().f_lineno + 1
            loguru_logger.bind(order=3).error("order {} failed", 3)
        assert zt.flush()
    finally:
        loguru_logger.remove(sink_id)
        structlog.reset_defaults()
    by_message = {r["message"]: r for r in logs(tmp_path)}
    s = by_message["user logged in"]
    assert s["level"] == "WARNING"
    assert s["attrs"]["user"] == "bob"
    assert "k-123" not in str(s)
    assert s["code"][1] == structlog_line and s["code"][0].endswith("test_log_libraries.py")
    lg = by_message["order 3 failed"]
    assert lg["level"] == "ERROR" and lg["attrs"] == {"order": 3}
    assert lg["code"][1] == loguru_line
    for r in (s, lg):
        assert (r["trace_id"], r["span_id"]) == (span.trace_id, span.span_id)
