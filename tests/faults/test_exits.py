"""Processes that end in the ways Python offers no ``atexit`` for: ``os._exit`` in forked children,
multiprocessing children (fork, forkserver, spawn), and forked children that leave a span they inherited.

Every case is a real child process writing to a real home; the store is read through the CLI.
"""

from __future__ import annotations

import signal
import textwrap
from pathlib import Path
from typing import Any

import pytest

try:
    import helpers as h
except ImportError:  # tests/ imported as a package
    from tests import helpers as h


def run(tmp_path: Path, name: str, source: str, *args: str) -> tuple[Path, h.Child]:
    """Run ``source`` as its own script with a fresh home; it must exit 0."""
    script = tmp_path / f"{name}.py"
    script.write_text(textwrap.dedent(source).lstrip("\n"))
    home = tmp_path / f"home-{name}"
    return home, h.run_script(script, home, *args)


def node_rows(home: Path) -> list[dict[str, Any]]:
    return h.sql(home, "SELECT node_id, parent_node_id, pid, service, stop_cause FROM nodes ORDER BY started_ns")


# -- a forked child leaving a span it inherited ------------------------------------------------------

INHERITED_SPAN = """
    import json, os, sys
    import zoomtrace as zt

    zt.init("inherit")
    with zt.span("inherited") as s:
        pid = os.fork()
        if pid == 0:
            zt.log.info("in the child")
        else:
            os.waitpid(pid, 0)
    if pid == 0:
        sys.exit(0)  # the child leaves the span, then exits normally (atexit writes its node)
    print("RESULT " + json.dumps({"span_id": s.span_id, "pid": os.getpid(), "child_pid": pid}), flush=True)
"""


def test_a_forked_child_leaving_an_inherited_span_does_not_record_it_again(tmp_path: Path) -> None:
    home, child = run(tmp_path, "inherit", INHERITED_SPAN)
    ran = h.result(child)
    nodes = {n["pid"]: n for n in node_rows(home)}
    assert set(nodes) == {ran["pid"], ran["child_pid"]}
    parent, forked = nodes[ran["pid"]], nodes[ran["child_pid"]]
    spans = h.sql(home, "SELECT node_id, span_id, status FROM records WHERE kind = 'span'")
    assert spans == [{"node_id": parent["node_id"], "span_id": ran["span_id"], "status": "ok"}]
    # The child still continues the span: its record names it as its span.
    logs = h.sql(home, "SELECT node_id, span_id FROM records WHERE kind = 'log'")
    assert logs == [{"node_id": forked["node_id"], "span_id": ran["span_id"]}]
    assert forked["stop_cause"] == "exit"


# -- multiprocessing children: every start method, wherever the child's node is started ----------------

MULTIPROCESSING = """
    import json, multiprocessing, os
    import zoomtrace as zt

    METHOD, INIT, N = os.environ["ZT_MP_METHOD"], os.environ["ZT_MP_INIT"], 1000
    if INIT == "module":  # run by every process importing this module: the child too (spawn, forkserver)
        zt.init("mp-app")


    def work():
        if INIT == "target":
            zt.init("mp-child")
        for i in range(N):
            zt.log.info("child record {i}", i=i)


    if __name__ == "__main__":
        child = multiprocessing.get_context(METHOD).Process(target=work)
        child.start()
        child.join()
        print("RESULT " + json.dumps({"exitcode": child.exitcode, "child_pid": child.pid, "n": N}), flush=True)
"""


@pytest.mark.parametrize(
    ("method", "init"),
    [
        ("fork", "module"),
        ("fork", "target"),
        ("forkserver", "module"),
        ("forkserver", "target"),
        ("spawn", "module"),
        ("spawn", "target"),
    ],
)
def test_a_multiprocessing_child_keeps_its_records_and_its_stop(tmp_path: Path, method: str, init: str) -> None:
    """A child that leaves through ``os._exit`` (fork, forkserver) as well as one that exits normally (spawn)."""
    script = tmp_path / "mp_app.py"
    script.write_text(textwrap.dedent(MULTIPROCESSING).lstrip("\n"))
    home = tmp_path / "home"
    env = h.child_env(home, ZT_MP_METHOD=method, ZT_MP_INIT=init)
    ran = h.result(h.run_script(script, home, env=env))
    assert ran["exitcode"] == 0
    nodes = {n["pid"]: n for n in node_rows(home)}
    assert ran["child_pid"] in nodes, f"the child's node was not recorded: {nodes}"
    child = nodes[ran["child_pid"]]
    assert child["stop_cause"] == "exit"
    (row,) = h.sql(home, f"SELECT count(*) AS n FROM records WHERE kind = 'log' AND node_id = '{child['node_id']}'")
    assert row["n"] == ran["n"]
    assert sum(lost_totals(home, child["node_id"])) == 0


# -- os.fork children leaving through os._exit ---------------------------------------------------------

FORK_AND_EXIT = """
    import json, os, sys
    import zoomtrace as zt

    N = 1000
    if sys.argv[1] == "parent":  # the child gets a node of its own at the fork
        zt.init("forker")
    pid = os.fork()
    if pid == 0:
        if sys.argv[1] == "child":  # or starts one itself
            zt.init("forked")
        for i in range(N):
            zt.log.info("child record {i}", i=i)
        os._exit(3)  # no flush, no atexit
    _, status = os.waitpid(pid, 0)
    print("RESULT " + json.dumps({
        "pid": os.getpid(), "child_pid": pid, "n": N, "status": os.waitstatus_to_exitcode(status),
        "parent_exit_wrapped": hasattr(os._exit, "__wrapped__"),
    }), flush=True)
"""


@pytest.mark.parametrize("init", ["parent", "child"])
def test_a_forked_child_leaving_through_os_exit_keeps_every_record(tmp_path: Path, init: str) -> None:
    home, child = run(tmp_path, "fork_exit", FORK_AND_EXIT, init)
    ran = h.result(child)
    assert ran["status"] == 3, "the exit status the child asked for is kept"
    assert ran["parent_exit_wrapped"] is False, "os._exit is wrapped in forked children only"
    nodes = {n["pid"]: n for n in node_rows(home)}
    assert ran["child_pid"] in nodes, f"the child's node was not recorded: {nodes}"
    forked = nodes[ran["child_pid"]]
    assert forked["stop_cause"] == "exit"
    (stopped,) = h.sql(home, f"SELECT attrs FROM records WHERE type = 'stopped' AND node_id = '{forked['node_id']}'")
    assert h.as_json(stopped["attrs"])["exit_code"] == 3
    (row,) = h.sql(home, f"SELECT count(*) AS n FROM records WHERE kind = 'log' AND node_id = '{forked['node_id']}'")
    assert row["n"] == ran["n"]


# -- SIGKILL: the window no library can close ----------------------------------------------------------

KILLED = """
    import json, os, threading
    import zoomtrace as zt

    zt.init("killed")
    for i in range(500):
        zt.log.info("before the flush {i}", i=i)
    flushed = zt.flush()
    print("RESULT " + json.dumps({"pid": os.getpid(), "flushed": flushed}), flush=True)
    threading.Event().wait(60)
"""


def test_sigkill_keeps_what_was_flushed_and_leaves_the_node_without_a_stop(tmp_path: Path) -> None:
    script = tmp_path / "killed.py"
    script.write_text(textwrap.dedent(KILLED).lstrip("\n"))
    home = tmp_path / "home"
    child = h.Child(script, home)
    try:
        ran = child.expect_json("RESULT")
    finally:
        child.kill()
    assert child.wait() == -signal.SIGKILL
    assert ran["flushed"] is True
    (node,) = node_rows(home)
    assert node["pid"] == ran["pid"]
    assert node["stop_cause"] is None, "a SIGKILLed process cannot record its stop"
    (row,) = h.sql(home, "SELECT count(*) AS n FROM records WHERE kind = 'log'")
    assert row["n"] == 500


def lost_totals(home: Path, node_id: str) -> list[int]:
    rows = h.sql(home, f"SELECT attrs FROM records WHERE type = 'lost' AND node_id = '{node_id}'")
    return [int(h.as_json(r["attrs"])["total"]) for r in rows]
