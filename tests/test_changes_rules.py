"""When a difference between two commits is a latency finding (docs/changes.md), on spans of chosen durations
written into each real store: no clock, so the rule is tested exactly, and the noise a busy machine makes
(a few slow spans at the tail) is tested on purpose."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from zoomtrace.read.changes import changes
from zoomtrace.store.protocols import Store
from zoomtrace.wire.record import Code, Record

try:
    from support.records import NODE_A, NODE_B, T0, rec, started
    from support.stores import ENGINES, open_store
    from test_store import ingest
except ImportError:  # tests/ imported as a package
    from tests.support.records import NODE_A, NODE_B, T0, rec, started
    from tests.support.stores import ENGINES, open_store
    from tests.test_store import ingest

US, MS = 1_000, 1_000_000
BEFORE, AFTER = "a" * 40, "b" * 40


def spans(node: str, commit: str, name: str, durations: list[int], start_ms: int) -> list[Record]:
    """Root spans of one location, one trace each, a millisecond apart from ``start_ms``."""
    out = []
    for i, duration in enumerate(durations):
        trace_id = hashlib.md5(f"{name} {commit} {i}".encode()).hexdigest()
        ts = start_ms + i
        out.append(
            rec(
                "span",
                name,
                ts,
                node=node,
                trace_id=trace_id,
                span_id=trace_id[:16],
                end_ns=T0 + ts * MS + duration,
                code=Code("app/work.py", 10, name, commit),
            )
        )
    return out


#: Per location: durations before and after.
CASES = {
    # A tiny but consistent slowdown, and five spans of sixty delayed by a busy machine: not a regression.
    "check": ([5 * US] * 60, [25 * US] * 55 + [2 * MS] * 5),
    # A tenth of the calls 30 times slower: a regression of the tail, though the median did not move.
    "tail": ([1 * MS] * 200, [1 * MS] * 180 + [30 * MS] * 20),
    # Everything four times slower.
    "pack": ([4 * MS] * 60, [16 * MS] * 60),
    # Unchanged.
    "steady": ([3 * MS] * 60, [3 * MS] * 60),
}


@pytest.fixture(params=ENGINES)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    s = open_store(str(request.param), tmp_path)
    records = [
        started(NODE_A, "svc", commit=BEFORE, repos=[{"root": "/app", "head": BEFORE, "dirty": []}]),
        started(NODE_B, "svc", ts=-4000, commit=AFTER, repos=[{"root": "/app", "head": AFTER, "dirty": []}]),
    ]
    for name, (before, after) in CASES.items():
        records += spans(NODE_A, BEFORE, name, before, 0)
        records += spans(NODE_B, AFTER, name, after, 100_000)
    ingest(s, records)
    try:
        yield s
    finally:
        s.close()


def test_latency_needs_a_significant_change_of_the_tail_not_only_of_the_whole(store: Store) -> None:
    (service,) = changes(store).services
    assert [(v.commit, v.first_seen_ns) for v in service.commits] == [(BEFORE, T0), (AFTER, T0 + 100_000 * MS)]
    found = sorted((f.kind, f.location.span) for f in service.findings)
    assert found == [("latency", "pack"), ("latency", "tail")]
    tail = next(f for f in service.findings if f.location.span == "tail")
    assert (tail.before.p50_ns, tail.after.p50_ns) == (1 * MS, 1 * MS)
    assert (tail.before.p95_ns, tail.after.p95_ns) == (1 * MS, 30 * MS)
    assert tail.factor == 30
