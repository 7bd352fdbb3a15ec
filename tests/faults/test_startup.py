"""Start-up: the worker drains from the first record, even when the application is busy from the first line.

The node's start-up work (its *started* record: git provenance, the platform, the modules the
worker needs) is done before ``init()`` returns, where nothing competes for the GIL; the
worker then has nothing to do but records. Real child processes in a real git repository.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

try:
    import helpers as h
except ImportError:  # tests/ imported as a package
    from tests import helpers as h

SCRIPTS = {
    # What the process imports or runs once init() has returned: the worker's imports and git runs
    # show up here (an audit hook sees every thread), the application records nothing that needs them.
    "audited.py": """
        import json, sys
        import zoomtrace as zt

        seen, watching = [], False


        def audit(event, args):
            if watching and event in ("import", "subprocess.Popen"):
                seen.append([event, str(args[0])])


        sys.addaudithook(audit)
        zt.init("audited")
        watching = True
        with zt.span("first"):
            for i in range(100):
                zt.log.info("record {i}", i=i)
            zt.event({"n": 100}, type="Done")
        flushed = zt.flush(30)
        watching = False
        print("RESULT " + json.dumps({"seen": seen, "flushed": flushed}), flush=True)
    """,
    # A burst of three times the queue's size from the first line after init(), in a busy loop.
    "burst.py": """
        import json, sys
        import zoomtrace as zt

        queue_size = int(sys.argv[1])
        node = zt.init("burst", queue_size=queue_size)
        n = 3 * queue_size
        for i in range(n):
            zt.log.info("burst {i}", i=i)
        flushed = zt.flush(60)
        print("RESULT " + json.dumps({"n": n, "queue_size": queue_size, "flushed": flushed}), flush=True)
    """,
}


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("startup") / "app"
    h.make_repo(root, SCRIPTS)
    return root


def test_the_worker_imports_nothing_and_runs_no_git_once_init_has_returned(repo: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    ran = h.result(h.run_script(repo / "audited.py", home))
    assert ran["flushed"] is True
    assert ran["seen"] == [], "start-up work left to the worker, competing with the application"
    (node,) = h.nodes(home)
    assert node["commit"] == h.git(repo, "rev-parse", "HEAD")  # the started record is complete all the same
    (row,) = h.sql(home, "SELECT count(*) AS n FROM records WHERE kind = 'log'")
    assert row["n"] == 100


def test_a_burst_right_after_init_is_drained_while_it_runs(repo: Path, tmp_path: Path) -> None:
    """Before, the worker drained nothing for about a second after init(): a burst kept exactly the queue's
    size. Now the worker drains while the burst runs; every record is either kept or counted lost."""
    home = tmp_path / "home"
    ran = h.result(h.run_script(repo / "burst.py", home, "10000"))
    assert ran["flushed"] is True
    (row,) = h.sql(home, "SELECT count(*) AS n FROM records WHERE kind = 'log'")
    kept = row["n"]
    lost = lost_total(home)
    assert kept + lost == ran["n"], (kept, lost)
    assert kept > ran["queue_size"], f"only {kept} records kept: the worker did not drain during the burst"


def lost_total(home: Path) -> int:
    rows: list[dict[str, Any]] = h.sql(home, "SELECT attrs FROM records WHERE type = 'lost'")
    return max((int(h.as_json(r["attrs"])["total"]) for r in rows), default=0)
