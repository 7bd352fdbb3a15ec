"""A fork-started multiprocessing child keeps its story; secrets never reach templates or node records."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

MP_APP = """
import multiprocessing as mp, sys
import zoomtrace as zt

def work():
    zt.log.info("from the child")

if __name__ == "__main__":
    zt.init("mp", home=sys.argv[1])
    with zt.span("parent-work"):
        p = mp.get_context("fork").Process(target=work)
        p.start()
        p.join()
"""

SECRETS_APP = """
import logging, sys
import zoomtrace as zt
zt.init("sec", home=sys.argv[1], sink=["spool", "file://" + sys.argv[1] + "/out.jsonl?token=url-secret-1"])
logging.warning("password=hunter2 for %s", "bob")
zt.log.info("token=tmpl-secret-2 {x}", x=1)
"""


def sql(home: Path, query: str) -> list[dict]:
    out = subprocess.run(
        [sys.executable, "-m", "zoomtrace", "--home", str(home), "sql", query, "--json"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return json.loads(out.stdout)


def test_fork_started_multiprocessing_child_records_its_node_and_logs(tmp_path: Path) -> None:
    script = tmp_path / "mp_app.py"
    script.write_text(MP_APP)
    home = tmp_path / "home"
    subprocess.run([sys.executable, str(script), str(home)], check=True, timeout=60)
    nodes = sql(home, "SELECT node_id, parent_node_id, stop_cause FROM nodes")
    assert len(nodes) == 2
    child = next(n for n in nodes if n["parent_node_id"] is not None)
    parent = next(n for n in nodes if n["parent_node_id"] is None)
    assert child["parent_node_id"] == parent["node_id"]
    assert {n["stop_cause"] for n in nodes} == {"exit"}
    logs = sql(home, "SELECT node_id, message, span_id FROM records WHERE kind = 'log'")
    assert [(r["node_id"], r["message"]) for r in logs] == [(child["node_id"], "from the child")]
    parent_span = sql(home, "SELECT span_id FROM records WHERE kind = 'span'")[0]["span_id"]
    assert logs[0]["span_id"] == parent_span  # the child continues the span it was forked in


def test_secrets_in_templates_and_sink_urls_are_never_written(tmp_path: Path) -> None:
    script = tmp_path / "secrets_app.py"
    script.write_text(SECRETS_APP)
    home = tmp_path / "home"
    subprocess.run([sys.executable, str(script), str(home)], check=True, timeout=60)
    written = b"".join(p.read_bytes() for p in home.rglob("*") if p.is_file())
    for secret in (b"hunter2", b"tmpl-secret-2", b"url-secret-1"):
        assert secret not in written
    templates = {r["template"] for r in sql(home, "SELECT template FROM records WHERE kind = 'log'")}
    assert "password=[scrubbed] for %s" in templates
