"""The pipeline: never slow, never silent (issue 2 §5, §8, and the read-only disk of "Bad input").

A bounded queue that drops under a burst counts every drop and records the
count as a ``node`` record of type ``lost``; ``on_full="block"`` loses nothing;
``flush()`` drains (proved by a SIGKILL right after it); threads, executors and
asyncio tasks keep the right parent; a home that cannot be written leaves the
application running with one warning.
"""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import pytest

try:
    import helpers as h
except ImportError:  # tests/ imported as a package
    from tests import helpers as h

BURST = """
import json
import sys

import zoomtrace as zt

queue_size, policy, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
zt.init("burst", env="ci", queue_size=queue_size, on_full=policy, block_timeout_s=20.0)
for i in range(n):
    zt.log.info("burst {i}", i=i)
print("RESULT " + json.dumps({"flushed": zt.flush()}), flush=True)
"""

THREADS = """
import contextvars
import json
import threading

import zoomtrace as zt

zt.init("threads", env="ci")
THREADS, PER_THREAD = 8, 200
ids = {}


def work(i):
    with zt.span(f"worker-{i}") as s:
        ids[i] = s.span_id
        for j in range(PER_THREAD):
            zt.log.info("thread {i} item {j}", i=i, j=j)  # @thread-log


with zt.span("root") as root:
    threads = [threading.Thread(target=contextvars.copy_context().run, args=(work, i)) for i in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
print("RESULT " + json.dumps({"trace_id": root.trace_id, "root": root.span_id, "flushed": zt.flush(),
                              "threads": THREADS, "per_thread": PER_THREAD}), flush=True)
threading.Event().wait(60)  # killed with SIGKILL: only what flush() wrote can survive
"""

PARENTS = """
import asyncio
import json
import threading
from concurrent.futures import ThreadPoolExecutor

import zoomtrace as zt

zt.init("parents", env="ci")


def work(tag):
    with zt.span(f"work-{tag}"):
        zt.log.info("in {tag}", tag=tag)


async def task(tag):
    with zt.span(f"task-{tag}"):
        await asyncio.sleep(0)
        zt.log.info("in {tag}", tag=tag)
        await asyncio.sleep(0)


@zt.traced
def compute(n):
    zt.log.info("computing {n}", n=n)  # @compute-log
    return n * 2


@zt.traced("fetch-async")
async def fetch(n):
    await asyncio.sleep(0)
    zt.log.info("fetched {n}", n=n)
    return n


async def main():
    with zt.span("async-parent"):
        assert await fetch(1) == 1
        await asyncio.gather(task("gather-a"), task("gather-b"))
        await asyncio.create_task(task("create_task"))
        await asyncio.to_thread(work, "to_thread")
        await asyncio.get_running_loop().run_in_executor(None, work, "run_in_executor")


with zt.span("root") as root:
    assert zt.current_span().span_id == root.span_id
    assert compute(2) == 4
    t = threading.Thread(target=work, args=("thread",))
    t.start()
    t.join()
    with ThreadPoolExecutor(2) as pool:
        pool.submit(work, "executor").result()
    asyncio.run(main())
print("RESULT " + json.dumps({"trace_id": root.trace_id, "current_after": zt.current_span() is None}), flush=True)
"""

READ_ONLY = """
import json
import logging

import zoomtrace as zt

zt.init("ro", env="ci")
total = 0
with zt.span("work"):
    for i in range(200):
        logging.getLogger("ro").warning("item %d", i)
        zt.event({"i": i}, type="Item")
        total += i
zt.flush()
print("RESULT " + json.dumps({"total": total}), flush=True)
"""


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("pipeline") / "app"
    h.make_repo(root, {"burst.py": BURST, "threads.py": THREADS, "parents.py": PARENTS, "read_only.py": READ_ONLY})
    return root


def count_burst(home: Path) -> int:
    (row,) = h.sql(home, "SELECT count(*) AS n FROM records WHERE kind = 'log' AND message LIKE 'burst %'")
    return int(row["n"])


def lost_totals(home: Path) -> list[int]:
    """The total of each ``lost`` node record (the counts are whatever integers its attrs hold)."""

    def ints(value: Any) -> list[int]:
        if isinstance(value, bool):
            return []
        if isinstance(value, int):
            return [value]
        if isinstance(value, dict):
            if isinstance(value.get("total"), int):
                return [value["total"]]
            return [n for v in value.values() for n in ints(v)]
        if isinstance(value, list):
            return [n for v in value for n in ints(v)]
        return []

    rows = h.sql(home, "SELECT attrs FROM records WHERE kind = 'node' AND type = 'lost'")
    return [sum(ints(h.as_json(r["attrs"]))) for r in rows]


# -- the bounded queue ---------------------------------------------------------------------------


def test_burst_into_tiny_queue_drops_are_counted_and_recorded(repo: Path, tmp_path: Path) -> None:
    n = 20_000
    home = tmp_path / "home"
    ran = h.result(h.run_script(repo / "burst.py", home, "2", "drop", str(n)))
    assert ran["flushed"] is True
    stored = count_burst(home)
    totals = lost_totals(home)
    assert totals, "drops happened but no 'lost' node record says so"
    assert stored < n
    # Every record is either stored or counted as lost: cumulative counts (latest is the max) or increments (sum).
    assert stored + max(totals) == n or stored + sum(totals) == n, (stored, totals)


def test_block_policy_loses_nothing(repo: Path, tmp_path: Path) -> None:
    n = 5_000
    home = tmp_path / "home"
    ran = h.result(h.run_script(repo / "burst.py", home, "64", "block", str(n)))
    assert ran["flushed"] is True
    assert count_burst(home) == n
    assert sum(lost_totals(home)) == 0


def test_no_lost_record_when_nothing_is_lost(repo: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    h.run_script(repo / "burst.py", home, "100000", "drop", "1000")
    assert count_burst(home) == 1000
    assert sum(lost_totals(home)) == 0


# -- flush, threads, SIGKILL ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def threads(repo: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    home = tmp_path_factory.mktemp("threads") / "home"
    child = h.Child(repo / "threads.py", home)
    try:
        ran = child.expect_json("RESULT")
    finally:
        child.kill()
    rc = child.wait()
    return {"home": home, "run": ran, "rc": rc, "stderr": child.stderr}


def test_flush_drains_everything_before_a_sigkill(threads: dict[str, Any]) -> None:
    ran = threads["run"]
    assert threads["rc"] == -signal.SIGKILL, threads["stderr"]
    assert ran["flushed"] is True, "zt.flush() reported that it did not finish"
    (row,) = h.sql(threads["home"], "SELECT count(*) AS n FROM records WHERE kind = 'log'")
    assert row["n"] == ran["threads"] * ran["per_thread"], f"only {row['n']} log records survived the SIGKILL"


def test_records_from_many_threads_land_on_their_spans_in_order(threads: dict[str, Any], repo: Path) -> None:
    ran = threads["run"]
    st = h.story(threads["home"], ran["trace_id"])
    root = h.span_named(st, "root")
    assert sorted(c["name"] for c in root["children"]) == sorted(f"worker-{i}" for i in range(ran["threads"]))
    line = h.marker_line(repo / "threads.py", "thread-log")
    for i in range(ran["threads"]):
        span = h.span_named(st, f"worker-{i}")
        assert span["parent_span_id"] == ran["root"]
        msgs = [r["message"] for r in span["records"]]
        assert msgs == [f"thread {i} item {j}" for j in range(ran["per_thread"])]
        assert {r["code"]["line"] for r in span["records"]} == {line}
    assert st["records"] == []


# -- the right parent everywhere -----------------------------------------------------------------


@pytest.fixture(scope="module")
def parents(repo: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    home = tmp_path_factory.mktemp("parents") / "home"
    ran = h.result(h.run_script(repo / "parents.py", home))
    assert ran["current_after"] is True
    return h.story(home, ran["trace_id"])


@pytest.mark.parametrize(
    ("name", "parent"),
    [
        ("work-thread", "root"),
        ("work-executor", "root"),
        ("async-parent", "root"),
        ("task-gather-a", "async-parent"),
        ("task-gather-b", "async-parent"),
        ("task-create_task", "async-parent"),
        ("work-to_thread", "async-parent"),
        ("work-run_in_executor", "async-parent"),
    ],
)
def test_span_keeps_its_parent(parents: dict[str, Any], name: str, parent: str) -> None:
    tree = {s["span_id"]: (s, p) for s, p in h.walk_spans(parents["spans"])}
    spans = [s for s, _ in tree.values() if s["name"] == name]
    assert len(spans) == 1, f"span {name} not in the trace (lost its context?)"
    span = spans[0]
    assert span["parent_span_id"] == h.span_named(parents, parent)["span_id"]
    if name != "async-parent":
        tag = name.split("-", 1)[1]
        assert [r["message"] for r in span["records"]] == [f"in {tag}"]


def test_traced_sync_and_async_functions(parents: dict[str, Any], repo: Path) -> None:
    (compute,) = [s for s in h.all_spans(parents) if "compute" in s["name"]]
    assert compute["parent_span_id"] == h.span_named(parents, "root")["span_id"]
    assert [r["message"] for r in compute["records"]] == ["computing 2"]
    first, last = h.function_range(repo / "parents.py", "compute")
    assert compute["code"]["function"] == "compute"
    assert compute["code"]["file"] == "parents.py"
    assert first <= compute["code"]["line"] <= last
    assert compute["records"][0]["code"]["line"] == h.marker_line(repo / "parents.py", "compute-log")
    fetch = h.span_named(parents, "fetch-async")
    assert fetch["parent_span_id"] == h.span_named(parents, "async-parent")["span_id"]
    assert [r["message"] for r in fetch["records"]] == ["fetched 1"]
    assert fetch["code"]["function"] == "fetch"


# -- a home that cannot be written ---------------------------------------------------------------


def zoom_warnings(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "zoomtrace" in line.lower()]


def check_app_kept_running(child: h.Child) -> None:
    assert child.proc.returncode == 0
    assert h.result(child)["total"] == sum(range(200))
    assert "Traceback" not in child.stderr, child.stderr
    warnings = zoom_warnings(child.stderr)
    assert len(warnings) == 1, f"expected exactly one warning, got {warnings}"
    assert any(word in warnings[0].lower() for word in ("lost", "drop", "cannot", "could not")), warnings[0]


def test_read_only_home_keeps_the_app_running_with_one_warning(repo: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    home.chmod(0o555)
    try:
        probe = home / "probe"
        try:
            probe.touch()
        except PermissionError:
            pass
        else:
            probe.unlink()
            pytest.skip("running as a user who can write to read-only directories (root)")
        child = h.run_script(repo / "read_only.py", home)
        check_app_kept_running(child)
        assert list(home.iterdir()) == []
    finally:
        home.chmod(0o755)


def test_unwritable_spool_keeps_the_app_running_with_one_warning(repo: Path, tmp_path: Path) -> None:
    """The spool path is taken by a file (works even as root): nothing can be written there."""
    home = tmp_path / "home"
    home.mkdir()
    (home / "spool").write_text("not a directory\n")
    child = h.run_script(repo / "read_only.py", home)
    check_app_kept_running(child)
    assert (home / "spool").read_text() == "not a directory\n"
