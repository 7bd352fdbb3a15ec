"""Logs: zero code change for stdlib logging, and ``zt.log`` (issue 2 §6).

Existing code calling ``logging.getLogger(__name__).info(...)`` joins the story
unchanged: each record carries the current trace context and its *own*
file/line/function, ``extra=`` fields become attrs, ``exc_info`` becomes the
record's error. Zoom lowers the root logger's level to the capture level when
needed and never raises it.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

try:
    import helpers as h
except ImportError:  # tests/ imported as a package
    from tests import helpers as h

CAPTURE = """
import json
import logging

import zoomtrace as zt

seen = []


class Keep(logging.Handler):
    def emit(self, record):
        seen.append(record.getMessage())


root = logging.getLogger()
root.setLevel(logging.WARNING)  # the application's own configuration
root.addHandler(Keep())
zt.init("logs", env="ci")
level_after_init = root.level
log = logging.getLogger("shop.payments")


def pay(order):
    with zt.span("pay", order=order) as s:  # @pay-span
        log.info("paying order %s", order)  # @log-info
        log.warning("slow card", extra={"order_id": order, "card_kind": "visa"})  # @log-extra
        log.debug("debug detail is below the capture level")  # @log-debug
        try:
            1 / 0  # @raise-zero
        except ZeroDivisionError:
            log.exception("could not compute the %s", "ratio")  # @log-exception
        zt.log.info("charged {amount} for {order}", amount=12.5, order=order)  # @ztlog-info
        zt.log.debug("zt debug is below the capture level")  # @ztlog-debug
        zt.log.warning("retrying {what}", what="card")  # @ztlog-warning
        zt.log.error("gave up on {what}", what="card")  # @ztlog-error
        try:
            {}["missing"]  # @raise-key
        except KeyError:
            zt.log.exception("lookup failed for {key}", key="missing")  # @ztlog-exception
        zt.log.critical("critical {n}", n=1)  # @ztlog-critical
    return s


s = pay(7)
log.warning("outside any span")  # @log-outside
print("RESULT " + json.dumps({"trace_id": s.trace_id, "span_id": s.span_id, "root_level": level_after_init,
                              "seen": seen}), flush=True)
"""

NOT_RAISED = """
import json
import logging

import zoomtrace as zt

logging.getLogger().setLevel(logging.DEBUG)
zt.init("logs-debug", env="ci", level="WARNING")
log = logging.getLogger("quiet")
with zt.span("s") as s:
    log.info("info is below this node's capture level")
    log.warning("warning is captured")  # @warning-captured
print("RESULT " + json.dumps({"trace_id": s.trace_id, "root_level": logging.getLogger().level}), flush=True)
"""


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    base = tmp_path_factory.mktemp("logs")
    repo = base / "app"
    head = h.make_repo(repo, {"capture.py": CAPTURE, "not_raised.py": NOT_RAISED})
    home = base / "home"
    ran = h.result(h.run_script(repo / "capture.py", home))
    st = h.story(home, ran["trace_id"])
    return {"repo": repo, "head": head, "home": home, "run": ran, "story": st}


def line(logs: dict[str, Any], marker: str) -> int:
    return h.marker_line(logs["repo"] / "capture.py", marker)


def records(logs: dict[str, Any]) -> list[dict[str, Any]]:
    (pay,) = logs["story"]["spans"]
    assert pay["name"] == "pay"
    return pay["records"]


def by_message(logs: dict[str, Any], text: str) -> dict[str, Any]:
    rec, span = h.record_with(logs["story"], text)
    assert span is not None and span["span_id"] == logs["run"]["span_id"], "record not on its span"
    return rec


def test_root_level_lowered_to_capture_level(logs: dict[str, Any]) -> None:
    assert logs["run"]["root_level"] == logging.INFO
    # The application's own handler keeps receiving its records.
    assert "slow card" in logs["run"]["seen"]
    assert "outside any span" in logs["run"]["seen"]


def test_root_level_never_raised(tmp_path: Path, logs: dict[str, Any]) -> None:
    home = tmp_path / "home"
    ran = h.result(h.run_script(logs["repo"] / "not_raised.py", home))
    assert ran["root_level"] == logging.DEBUG
    st = h.story(home, ran["trace_id"])
    assert [r["message"] for r, _ in h.all_records(st)] == ["warning is captured"]
    ((rec, _),) = h.all_records(st)
    assert rec["code"]["line"] == h.marker_line(logs["repo"] / "not_raised.py", "warning-captured")


def test_records_in_span_carry_its_context_and_their_own_code(logs: dict[str, Any]) -> None:
    got = [
        (r["kind"], r["level"].upper(), r["message"], r["code"]["line"], r["code"]["function"]) for r in records(logs)
    ]
    assert got == [
        ("log", "INFO", "paying order 7", line(logs, "log-info"), "pay"),
        ("log", "WARNING", "slow card", line(logs, "log-extra"), "pay"),
        ("log", "ERROR", "could not compute the ratio", line(logs, "log-exception"), "pay"),
        ("log", "INFO", "charged 12.5 for 7", line(logs, "ztlog-info"), "pay"),
        ("log", "WARNING", "retrying card", line(logs, "ztlog-warning"), "pay"),
        ("log", "ERROR", "gave up on card", line(logs, "ztlog-error"), "pay"),
        ("log", "ERROR", "lookup failed for missing", line(logs, "ztlog-exception"), "pay"),
        ("log", "CRITICAL", "critical 1", line(logs, "ztlog-critical"), "pay"),
    ]
    for r in records(logs):
        assert r["code"]["file"] == "capture.py"
        assert r["code"]["commit"] == logs["head"]
        assert r["code"]["dirty"] is False


def test_stdlib_record_type_is_the_logger_name(logs: dict[str, Any]) -> None:
    assert by_message(logs, "paying order 7")["type"] == "shop.payments"


def test_below_capture_level_is_not_recorded(logs: dict[str, Any]) -> None:
    rows = h.sql(logs["home"], "SELECT message FROM records WHERE message LIKE '%below the capture level%'")
    assert rows == []


def test_extra_fields_become_attrs(logs: dict[str, Any]) -> None:
    attrs = by_message(logs, "slow card")["attrs"]
    assert attrs["order_id"] == 7
    assert attrs["card_kind"] == "visa"
    # The LogRecord's own machinery is not dumped into attrs.
    for internal in ("msg", "args", "levelno", "pathname", "lineno", "exc_info", "created"):
        assert internal not in attrs


def test_exc_info_becomes_error_with_frames(logs: dict[str, Any]) -> None:
    err = by_message(logs, "could not compute the ratio")["error"]
    assert err["type"].endswith("ZeroDivisionError")
    assert "division by zero" in err["message"]
    frames = [(f["file"], f["line"]) for f in err["frames"]]
    assert ("capture.py", line(logs, "raise-zero")) in frames
    err = by_message(logs, "lookup failed for missing")["error"]
    assert err["type"].endswith("KeyError")
    assert ("capture.py", line(logs, "raise-key")) in [(f["file"], f["line"]) for f in err["frames"]]
    assert by_message(logs, "slow card").get("error") is None


def test_zt_log_keeps_template_and_structured_attrs(logs: dict[str, Any]) -> None:
    rec = by_message(logs, "charged 12.5 for 7")
    assert rec["attrs"]["amount"] == 12.5
    assert rec["attrs"]["order"] == 7
    (row,) = h.sql(logs["home"], f"SELECT template FROM records WHERE id = '{rec['id']}'")
    assert row["template"] == "charged {amount} for {order}"


def test_record_outside_any_span_has_no_trace_but_its_code(logs: dict[str, Any]) -> None:
    (row,) = h.sql(logs["home"], "SELECT * FROM records WHERE message = 'outside any span'")
    assert not row.get("trace_id")
    assert not row.get("span_id")
    code = h.row_code(row)
    assert (code["file"], code["line"], code["function"]) == ("capture.py", line(logs, "log-outside"), "<module>")
    assert "outside any span" not in [r["message"] for r, _ in h.all_records(logs["story"])]


def test_nothing_else_in_the_trace(logs: dict[str, Any]) -> None:
    st = logs["story"]
    assert len(h.all_spans(st)) == 1
    assert len(h.all_records(st)) == 8
    pay = h.span_named(st, "pay")
    assert pay["code"]["line"] == line(logs, "pay-span")
    assert pay["attrs"]["order"] == 7
