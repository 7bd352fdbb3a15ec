"""Processes that end in the ways Python offers no ``atexit`` for: ``os._exit`` in forked children,
multiprocessing children (fork, forkserver, spawn), and forked children that leave a span they inherited.

Every case is a real child process writing to a real home; the store is read through the CLI.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

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
