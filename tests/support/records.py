"""Records for store tests, built with the write model at fixed times (so expected values are literal)."""

from __future__ import annotations

from typing import Any

from zoomtrace.wire.record import Record, uuid7

T0 = 1_800_000_000_000_000_000  # a fixed epoch (2027) so that expected times are literal
MS = 1_000_000
NODE_A = uuid7(T0 - 10_000 * MS)
NODE_B = uuid7(T0 - 9_000 * MS)


def rec(kind: str, type_: str, ts: int, *, node: str = NODE_A, **fields: Any) -> Record:
    """A record at ``T0 + ts`` milliseconds."""
    return Record(id=uuid7(T0 + ts * MS), kind=kind, type=type_, ts_ns=T0 + ts * MS, node_id=node, **fields)


def started(node: str, service: str, *, env: str = "prod", ts: int = -5000, **attrs: Any) -> Record:
    base = {
        "node_id": node,
        "service": service,
        "env": env,
        "group": "shop",
        "version": "1.2",
        "host": "h1",
        "pid": 4242,
        "started_ns": T0 + ts * MS,
        "parent_node_id": None,
        "python": "3.11.7",
        "platform": "Linux",
        "argv": "app.py --serve",
        "commit": "c0ffee",
        "branch": "main",
        "repos": [{"root": "/src/app", "head": "c0ffee", "branch": "main", "dirty": [], "problem": None}],
    }
    return rec("node", "started", ts, node=node, attrs=base | attrs)


def checkout_trace(tid: str = "a1" * 16, *, start: int = 0) -> list[Record]:
    """A trace across two services: gateway root (100 ms) -> orders child -> billing grandchild with an error."""
    root, child, grand = "11" * 8, "22" * 8, "33" * 8
    return [
        rec("span", "POST /checkout", start, trace_id=tid, span_id=root, end_ns=T0 + (start + 100) * MS),
        rec(
            "span",
            "place order",
            start + 10,
            node=NODE_B,
            trace_id=tid,
            span_id=child,
            parent_span_id=root,
            end_ns=T0 + (start + 60) * MS,
        ),
        rec(
            "span",
            "charge",
            start + 20,
            node=NODE_B,
            trace_id=tid,
            span_id=grand,
            parent_span_id=child,
            end_ns=T0 + (start + 120) * MS,
            status="error",
        ),
        rec(
            "log",
            "app",
            start + 30,
            node=NODE_B,
            trace_id=tid,
            span_id=grand,
            level="ERROR",
            message="card declined for order 7",
        ),
        rec("log", "app", start + 5, trace_id=tid, span_id=root, level="INFO", message="received checkout"),
        rec("event", "OrderPlaced", start + 15, node=NODE_B, trace_id=tid, span_id=child, payload={"order": 7}),
    ]
