"""Values that cannot be printed, and the wrong kind of value where text is expected (issue 12, item 17).

A value whose ``__str__`` and ``__repr__`` raise must not cost the record it was given to: the
record is kept with a marker naming the value's type, and the application never sees an
exception. ``zt.raw`` takes text as well as bytes.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

try:
    import helpers as h
except ImportError:  # tests/ imported as a package
    from tests import helpers as h

SCRIPT = """
import json
import logging
import sys

import zoomtrace as zt


class Hostile:
    def __str__(self):
        raise RuntimeError("str explodes")

    def __repr__(self):
        raise RuntimeError("repr explodes")

    def __format__(self, spec):
        raise RuntimeError("format explodes")


zt.init("hostile", env="ci", sink="file://" + sys.argv[1])
stdlib = logging.getLogger("hostile.stdlib")
ids = {}
with zt.span("hostile-values") as s:
    stdlib.warning("stdlib s=%s", Hostile())
    stdlib.warning("stdlib r=%r and %d", Hostile(), 7)
    stdlib.warning("stdlib named %(who)s", {"who": Hostile()})
    stdlib.warning(Hostile())
    zt.log.info(Hostile())
    zt.log.info(12345)
    zt.logger(Hostile()).info("named by a hostile logger name")
    ids["typed"] = zt.event({"n": 1}, type=Hostile())
    ids["sourced"] = zt.event({"n": 2}, type="Sourced", sources=["a", Hostile()])
    with zt.span(Hostile()):
        pass
    with zt.span("for a hostile user", on_behalf_of=Hostile()):
        zt.log.info("inside the hostile user's span")
    with zt.span("for user 12345", on_behalf_of=12345):
        pass
    ids["raw_format"] = zt.raw(b"abc", format=Hostile())
    ids["raw_type"] = zt.raw(b"abc", type=Hostile())
    ids["raw_text"] = zt.raw("text, caf\\u00e9", type="Text")
    ids["raw_text_bin"] = zt.raw("declared", format="csv", type="Csv")
    ids["raw_other"] = zt.raw(Hostile(), type="Other")
    zt.log.info("still works after all that")
print("RESULT " + json.dumps({"trace_id": s.trace_id, "ids": ids}), flush=True)
"""


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("hostile") / "app"
    h.make_repo(root, {"hostile.py": SCRIPT})
    out = root.parent / "records.jsonl"
    child = h.run_script(root / "hostile.py", root.parent / "home", str(out))
    records = [json.loads(line) for line in out.read_text("utf-8").splitlines()]
    return {"child": child, "result": h.result(child), "records": records}


def logs(run: dict[str, Any]) -> list[dict[str, Any]]:
    return [r for r in run["records"] if r["kind"] == "log"]


def by_id(run: dict[str, Any], key: str) -> dict[str, Any]:
    want = run["result"]["ids"][key]
    (record,) = [r for r in run["records"] if r["id"] == want]
    return record


def message_starting(run: dict[str, Any], prefix: str) -> str:
    (message,) = [r["message"] for r in logs(run) if r["message"].startswith(prefix)]
    return str(message)


def test_the_application_never_noticed_and_nothing_was_lost(run: dict[str, Any]) -> None:
    assert "Traceback" not in run["child"].stderr, run["child"].stderr
    assert "could not" not in run["child"].stderr, run["child"].stderr
    assert [r for r in run["records"] if r["kind"] == "node" and r["type"] == "lost"] == []
    assert "still works after all that" in [r["message"] for r in logs(run)]


def test_stdlib_arguments_that_cannot_be_printed_keep_the_record(run: dict[str, Any]) -> None:
    for prefix in ("stdlib s=", "stdlib r=", "stdlib named "):
        assert "Hostile" in message_starting(run, prefix), prefix
    assert "7" in message_starting(run, "stdlib r=")


def test_messages_that_are_not_text_keep_the_record(run: dict[str, Any]) -> None:
    messages = [r["message"] for r in logs(run)]
    assert "12345" in messages
    # stdlib logging.warning(obj) and zt.log.info(obj), obj unprintable: two records, each naming the type
    assert len([m for m in messages if "Hostile" in m and not m.startswith("stdlib")]) == 2


def test_names_and_types_that_cannot_be_printed_keep_the_record(run: dict[str, Any]) -> None:
    (named,) = [r for r in logs(run) if r["message"] == "named by a hostile logger name"]
    assert "Hostile" in named["type"]
    assert "Hostile" in by_id(run, "typed")["type"]
    sourced = by_id(run, "sourced")
    assert sourced["sources"][0] == "a" and "Hostile" in sourced["sources"][1]
    spans = [r for r in run["records"] if r["kind"] == "span"]
    assert len(spans) == 4 and any("Hostile" in r["type"] for r in spans)
    assert "Hostile" in by_id(run, "raw_format")["attrs"]["raw.format"]
    assert "Hostile" in by_id(run, "raw_type")["type"]


def test_on_behalf_of_that_is_not_text_keeps_the_records(run: dict[str, Any]) -> None:
    spans = {r["type"]: r for r in run["records"] if r["kind"] == "span"}
    assert "Hostile" in spans["for a hostile user"]["on_behalf_of"]
    (inside,) = [r for r in logs(run) if r["message"] == "inside the hostile user's span"]
    assert inside["on_behalf_of"] == spans["for a hostile user"]["on_behalf_of"]
    assert spans["for user 12345"]["on_behalf_of"] == "12345"


def test_raw_text_is_stored_as_utf8(run: dict[str, Any]) -> None:
    text = by_id(run, "raw_text")
    assert base64.b64decode(text["payload"]) == "text, café".encode()
    assert text["attrs"]["raw.format"] == "text"
    assert text["attrs"]["raw.size"] == len("text, café".encode())
    declared = by_id(run, "raw_text_bin")
    assert base64.b64decode(declared["payload"]) == b"declared"
    assert declared["attrs"]["raw.format"] == "csv"


def test_raw_data_of_another_kind_keeps_the_record_with_a_marker(run: dict[str, Any]) -> None:
    other = by_id(run, "raw_other")
    assert other["type"] == "Other"
    assert "Hostile" in json.dumps(other["attrs"])


def test_zoom_raw_text_from_the_caller_s_side(tmp_path: Path) -> None:
    """``zt.raw("text")`` used to raise ``TypeError`` in the application's own code."""
    import zoomtrace as zt

    path = tmp_path / "records.jsonl"
    zt.init("raw-text", home=tmp_path / "home", sink=f"file://{path}")
    record_id = zt.raw("hello")
    assert zt.flush(10)
    (raw,) = [json.loads(line) for line in path.read_text("utf-8").splitlines() if record_id in line]
    assert base64.b64decode(raw["payload"]) == b"hello"
