"""``logging.config.dictConfig``: Zoom as a handler class (issue 14, item 4).

Each script is a real child process configuring logging the way projects do in settings; what it
recorded is read back through the real CLI.
"""

from __future__ import annotations

from pathlib import Path

from helpers import PY, all_records, cli, cli_json, marker_line, result, run_script, story, write_files

HANDLER = "zoomtrace.integrations.logging.ZoomHandler"

CONFIGURED_AFTER_INIT = f"""
import json
import logging
import logging.config

import zoomtrace as zt

zt.init("settings", env="ci")
seen = []


class Keep(logging.Handler):
    def emit(self, record):
        seen.append(record.getMessage())


logging.config.dictConfig({{
    "version": 1,
    "handlers": {{"zoom": {{"class": "{HANDLER}"}}, "keep": {{"()": Keep}}}},
    "root": {{"handlers": ["zoom", "keep"], "level": "INFO"}},  # replaces the handler init() attached
}})
with zt.span("checkout") as span:
    logging.getLogger("shop").info("paid %s", 12)  # @paid
print("RESULT " + json.dumps({{"trace_id": span.trace_id, "seen": seen}}), flush=True)
"""

BOTH_HANDLERS = f"""
import json
import logging
import logging.config

import zoomtrace as zt

logging.config.dictConfig({{
    "version": 1,
    "handlers": {{"zoom": {{"class": "{HANDLER}", "level": "DEBUG"}}}},
    "loggers": {{"shop": {{"handlers": ["zoom"], "level": "DEBUG"}}}},  # and it propagates to the root
}})
logging.getLogger("shop").warning("before init: nowhere to go")
zt.init("settings", env="ci", level="INFO")  # capture_logging=True: a second Zoom handler, on the root
with zt.span("checkout") as span:
    logging.getLogger("shop").warning("once only")
    logging.getLogger("shop").debug("below the node's level")
    logging.getLogger("other").warning("through the root handler")
print("RESULT " + json.dumps({{"trace_id": span.trace_id}}), flush=True)
"""


def test_a_dictconfig_replacing_the_root_handlers_keeps_zoom_there(tmp_path: Path) -> None:
    write_files(tmp_path, {"app.py": CONFIGURED_AFTER_INIT})
    ran = result(run_script(tmp_path / "app.py", tmp_path / "home"))
    assert ran["seen"] == ["paid 12"]  # the application's own handler still gets its records
    ((record, span),) = all_records(story(tmp_path / "home", ran["trace_id"]))
    assert span is not None and span["name"] == "checkout"
    assert (record["message"], record["type"], record["level"].upper()) == ("paid 12", "shop", "INFO")
    assert record["code"]["line"] == marker_line(tmp_path / "app.py", "paid")


def test_a_record_reaching_two_zoom_handlers_is_recorded_once(tmp_path: Path) -> None:
    write_files(tmp_path, {"app.py": BOTH_HANDLERS})
    ran = result(run_script(tmp_path / "app.py", tmp_path / "home"))
    messages = [r["message"] for r, _ in all_records(story(tmp_path / "home", ran["trace_id"]))]
    assert messages == ["once only", "through the root handler"]
    logs = [r["message"] for r in cli_json(tmp_path / "home", "tail") if r["kind"] == "log"]
    assert "before init: nowhere to go" not in logs


PLAIN_PROJECT = """
import logging
import logging.config

logging.config.dictConfig({
    "version": 1,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "INFO"},  # no Zoom here: the project knows nothing of it
})
logging.getLogger("shop").warning("configured in settings")
"""


def test_zoomtrace_run_keeps_logs_recorded_through_a_dictconfig_without_zoom(tmp_path: Path) -> None:
    write_files(tmp_path, {"app.py": PLAIN_PROJECT})
    home = tmp_path / "home"
    done = cli(home, "run", "--", PY, "app.py", cwd=tmp_path)
    assert done.returncode == 0 and "configured in settings" in done.stderr  # the project's own handler ran
    logs = [r["message"] for r in cli_json(home, "tail") if r["kind"] == "log"]
    assert logs == ["configured in settings"]
