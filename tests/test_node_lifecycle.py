"""The node: one record of each process run, and how it ended (issue 2 §3).

Every case is a real child process in a real git repository: normal exit, an
uncaught exception, SIGTERM with Zoom's own handler (exit status 143 / -15), an
application's own SIGTERM handler (chained, still runs), SIGINT, spans still open
at the end (recorded ``interrupted``), ``zt.shutdown()`` and ``os.fork()``.
"""

from __future__ import annotations

import json
import signal
import socket
from pathlib import Path
from typing import Any

import pytest

try:
    import helpers as h
except ImportError:  # tests/ imported as a package
    from tests import helpers as h

SCRIPTS = {
    "normal.py": """
        import json, os, logging
        import zoomtrace as zt

        node = zt.init("normal", env="ci", group="life", version="3.1.4")
        with zt.span("work") as s:
            logging.getLogger("normal").info("did the work")
        print("RESULT " + json.dumps({"pid": os.getpid(), "trace_id": s.trace_id}), flush=True)
    """,
    "crash.py": """
        import json, os
        import zoomtrace as zt

        zt.init("crash", env="ci", group="life")
        print("RESULT " + json.dumps({"pid": os.getpid()}), flush=True)


        def explode():
            raise RuntimeError("boom 4711")  # @crash-raise


        explode()
    """,
    "term.py": """
        import json, os, threading
        import zoomtrace as zt

        zt.init("term", env="ci", group="life")
        with zt.span("outer") as outer:  # @term-outer
            with zt.span("inner", step=1) as inner:
                zt.log.info("waiting for a signal")
                print("RESULT " + json.dumps({"pid": os.getpid(), "trace_id": inner.trace_id,
                                              "outer": outer.span_id, "inner": inner.span_id}), flush=True)
                threading.Event().wait(60)
        print("NOT REACHED", flush=True)
    """,
    "own_handler.py": """
        import json, os, signal, sys, threading
        import zoomtrace as zt

        stop = threading.Event()


        def on_term(signum, frame):
            print("APP HANDLER RAN", flush=True)
            zt.log.warning("application handler saw signal {signum}", signum=signum)
            stop.set()


        signal.signal(signal.SIGTERM, on_term)
        zt.init("own-handler", env="ci", group="life")
        with zt.span("serve") as s:
            print("RESULT " + json.dumps({"pid": os.getpid(), "trace_id": s.trace_id}), flush=True)
            stop.wait(60)
            zt.log.info("graceful shutdown finished")
        print("CLEAN EXIT", flush=True)
        sys.exit(3)
    """,
    "interrupt.py": """
        import json, os, threading
        import zoomtrace as zt

        zt.init("interrupt", env="ci", group="life")
        with zt.span("busy") as s:
            print("RESULT " + json.dumps({"pid": os.getpid(), "trace_id": s.trace_id}), flush=True)
            threading.Event().wait(60)
    """,
    "shutdown.py": """
        import json, os
        import zoomtrace as zt

        zt.init("shut", env="ci", group="life")
        with zt.span("before") as s:
            zt.log.info("before shutdown")
        zt.shutdown()
        zt.log.info("after shutdown: not recorded")
        print("RESULT " + json.dumps({"pid": os.getpid(), "trace_id": s.trace_id}), flush=True)
    """,
    "forker.py": """
        import json, os, sys
        import zoomtrace as zt

        node = zt.init("forker", env="ci", group="life")
        with zt.span("before_fork") as parent:
            pid = os.fork()
            if pid == 0:
                with zt.span("in_child") as child:  # @child-span
                    zt.log.info("hello from the child {pid}", pid=os.getpid())  # @child-log
                    zt.event({"child": os.getpid()}, type="ChildDone")
                print("CHILD " + json.dumps({"pid": os.getpid(), "span_id": child.span_id}), flush=True)
                zt.flush()
                os._exit(0)
            _, status = os.waitpid(pid, 0)
            zt.log.info("child {pid} exited with {status}", pid=pid, status=status)  # @parent-log
        print("RESULT " + json.dumps({"pid": os.getpid(), "child_pid": pid, "status": status,
                                      "trace_id": parent.trace_id, "parent_span": parent.span_id}), flush=True)
    """,
}


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    base = tmp_path_factory.mktemp("life")
    root = base / "app"
    head = h.make_repo(root, SCRIPTS)
    return {"root": root, "head": head, "base": base}


def home_for(repo: dict[str, Any], name: str) -> Path:
    return repo["base"] / f"home-{name}"


def only_node(home: Path, service: str) -> dict[str, Any]:
    rows = [n for n in h.nodes(home) if n["service"] == service]
    assert len(rows) == 1, rows
    return rows[0]


def stopped_record(home: Path, node_id: str) -> dict[str, Any]:
    rows = h.sql(home, f"SELECT * FROM records WHERE kind = 'node' AND type = 'stopped' AND node_id = '{node_id}'")
    assert len(rows) == 1, rows
    return rows[0]


# -- normal exit ---------------------------------------------------------------------------------


def test_normal_exit(repo: dict[str, Any]) -> None:
    home = home_for(repo, "normal")
    child = h.run_script(repo["root"] / "normal.py", home)
    ran = h.result(child)
    node = only_node(home, "normal")
    assert (node["env"], node["group"], node["version"]) == ("ci", "life", "3.1.4")
    assert node["pid"] == ran["pid"] == child.pid
    assert node["host"] == socket.gethostname()
    assert node["commit"] == repo["head"]
    assert node["stop_cause"] == "exit"
    assert node["started_ns"] <= node["stopped_ns"]
    st = h.story(home, ran["trace_id"])
    assert [n["node_id"] for n in st["nodes"]] == [node["node_id"]]
    assert h.span_named(st, "work")["status"] == "ok"


# -- uncaught exception --------------------------------------------------------------------------


def test_uncaught_exception_is_recorded_and_python_still_reports_it(repo: dict[str, Any]) -> None:
    home = home_for(repo, "crash")
    child = h.run_script(repo["root"] / "crash.py", home, expect_rc=1)
    # The application's behaviour is unchanged: Python's own report still reaches stderr.
    assert "RuntimeError: boom 4711" in child.stderr
    node = only_node(home, "crash")
    assert node["stop_cause"] == "exception"
    err = h.as_json(stopped_record(home, node["node_id"])["error"])
    assert err["type"].endswith("RuntimeError")
    assert "boom 4711" in err["message"]
    line = h.marker_line(repo["root"] / "crash.py", "crash-raise")
    frames = [(f["file"], f["line"]) if isinstance(f, dict) else (f[0], f[1]) for f in err["frames"]]
    assert ("crash.py", line) in frames


# -- SIGTERM with Zoom's handler -----------------------------------------------------------------


@pytest.fixture(scope="module")
def terminated(repo: dict[str, Any]) -> dict[str, Any]:
    home = home_for(repo, "term")
    child = h.Child(repo["root"] / "term.py", home)
    ran = child.expect_json("RESULT")
    child.signal(signal.SIGTERM)
    rc = child.wait()
    return {"home": home, "run": ran, "rc": rc, "child": child}


def test_sigterm_ends_the_process_as_the_default_action_would(terminated: dict[str, Any]) -> None:
    assert terminated["rc"] in (-signal.SIGTERM, 128 + signal.SIGTERM), terminated["child"].stderr
    assert "NOT REACHED" not in "".join(terminated["child"].stdout)
    assert "Traceback" not in terminated["child"].stderr


def test_sigterm_is_the_recorded_stop_cause(terminated: dict[str, Any]) -> None:
    node = only_node(terminated["home"], "term")
    assert node["pid"] == terminated["run"]["pid"]
    assert node["stop_cause"] == "SIGTERM"
    assert node["stopped_ns"] >= node["started_ns"]


def test_open_spans_are_recorded_interrupted(terminated: dict[str, Any], repo: dict[str, Any]) -> None:
    ran = terminated["run"]
    st = h.story(terminated["home"], ran["trace_id"])
    outer, inner = h.span_named(st, "outer"), h.span_named(st, "inner")
    assert (outer["span_id"], inner["span_id"]) == (ran["outer"], ran["inner"])
    assert inner["parent_span_id"] == outer["span_id"]
    assert outer["status"] == inner["status"] == "interrupted"
    assert inner["end_ns"] is not None and inner["end_ns"] >= inner["start_ns"]
    assert inner["attrs"]["step"] == 1
    assert outer["code"]["line"] == h.marker_line(repo["root"] / "term.py", "term-outer")
    assert [r["message"] for r in inner["records"]] == ["waiting for a signal"]


# -- an application's own SIGTERM handler --------------------------------------------------------


@pytest.fixture(scope="module")
def own_handler(repo: dict[str, Any]) -> dict[str, Any]:
    home = home_for(repo, "own")
    child = h.Child(repo["root"] / "own_handler.py", home)
    ran = child.expect_json("RESULT")
    child.signal(signal.SIGTERM)
    rc = child.wait()
    return {"home": home, "run": ran, "rc": rc, "child": child}


def test_application_sigterm_handler_is_chained_not_replaced(own_handler: dict[str, Any]) -> None:
    out = "".join(own_handler["child"].stdout)
    assert "APP HANDLER RAN" in out
    assert "CLEAN EXIT" in out  # the application decided to finish its work, and did
    assert own_handler["rc"] == 3, own_handler["child"].stderr  # ...and chose its own exit status


def test_application_handler_run_is_recorded_with_cause_sigterm(own_handler: dict[str, Any]) -> None:
    node = only_node(own_handler["home"], "own-handler")
    assert node["stop_cause"] == "SIGTERM"
    st = h.story(own_handler["home"], own_handler["run"]["trace_id"])
    serve = h.span_named(st, "serve")
    assert serve["status"] == "ok"  # it was closed by the application, not interrupted
    messages = [r["message"] for r in serve["records"]]
    assert messages == [f"application handler saw signal {int(signal.SIGTERM)}", "graceful shutdown finished"]


# -- SIGINT --------------------------------------------------------------------------------------


def test_sigint_is_the_recorded_stop_cause(repo: dict[str, Any]) -> None:
    home = home_for(repo, "int")
    child = h.Child(repo["root"] / "interrupt.py", home)
    ran = child.expect_json("RESULT")
    child.signal(signal.SIGINT)
    rc = child.wait()
    # Python's own behaviour on an unhandled KeyboardInterrupt is kept.
    assert rc in (-signal.SIGINT, 128 + signal.SIGINT, 1), child.stderr
    assert "KeyboardInterrupt" in child.stderr
    node = only_node(home, "interrupt")
    assert node["stop_cause"] == "SIGINT"
    busy = h.span_named(h.story(home, ran["trace_id"]), "busy")
    assert busy["status"] in ("error", "interrupted")


# -- zt.shutdown() -------------------------------------------------------------------------------


def test_shutdown_records_stop_and_stops_recording(repo: dict[str, Any]) -> None:
    home = home_for(repo, "shutdown")
    child = h.run_script(repo["root"] / "shutdown.py", home)
    ran = h.result(child)
    node = only_node(home, "shut")
    assert node["stop_cause"] == "shutdown"
    st = h.story(home, ran["trace_id"])
    assert [r["message"] for r, _ in h.all_records(st)] == ["before shutdown"]
    rows = h.sql(home, "SELECT message FROM records WHERE kind = 'log'")
    assert [r["message"] for r in rows] == ["before shutdown"]


# -- os.fork() -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def forked(repo: dict[str, Any]) -> dict[str, Any]:
    home = home_for(repo, "fork")
    child = h.run_script(repo["root"] / "forker.py", home)
    return {"home": home, "run": h.result(child), "child_out": h.result(child, "CHILD ")}


def test_fork_child_is_a_new_node_whose_parent_is_the_forking_node(forked: dict[str, Any]) -> None:
    ran = forked["run"]
    assert ran["status"] == 0
    rows = {n["pid"]: n for n in h.nodes(forked["home"])}
    assert set(rows) == {ran["pid"], ran["child_pid"]}
    parent, child = rows[ran["pid"]], rows[ran["child_pid"]]
    assert parent["node_id"] != child["node_id"]
    assert child["service"] == parent["service"] == "forker"
    assert parent["stop_cause"] == "exit"
    # The child's node names its parent (in the listing, or at least in its "started" record).
    started = h.sql(
        forked["home"],
        f"SELECT * FROM records WHERE kind = 'node' AND type = 'started' AND node_id = '{child['node_id']}'",
    )
    assert len(started) == 1
    assert parent["node_id"] in json.dumps(child) + json.dumps(started[0], default=str)


def test_fork_child_records_land_under_the_right_parent(forked: dict[str, Any], repo: dict[str, Any]) -> None:
    ran, child_out = forked["run"], forked["child_out"]
    st = h.story(forked["home"], ran["trace_id"])
    rows = {n["pid"]: n for n in h.nodes(forked["home"])}
    before, in_child = h.span_named(st, "before_fork"), h.span_named(st, "in_child")
    assert in_child["span_id"] == child_out["span_id"]
    assert in_child["parent_span_id"] == before["span_id"] == ran["parent_span"]
    assert in_child["node_id"] == rows[ran["child_pid"]]["node_id"]
    assert before["node_id"] == rows[ran["pid"]]["node_id"]
    child_records = [(r["kind"], r.get("message") or r["type"], r["code"]["line"]) for r in in_child["records"]]
    assert child_records == [
        ("log", f"hello from the child {ran['child_pid']}", h.marker_line(repo["root"] / "forker.py", "child-log")),
        ("event", "ChildDone", h.marker_line(repo["root"] / "forker.py", "child-log") + 1),
    ]
    parent_msgs = [r["message"] for r in before["records"]]
    assert parent_msgs == [f"child {ran['child_pid']} exited with 0"]
    # Nothing recorded twice: the parent's queue was not copied into the child's pipeline.
    assert len(h.all_spans(st)) == 2
    assert len(h.all_records(st)) == 3
