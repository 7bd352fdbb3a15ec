"""A big trace read whole and read in pages, on DuckDB and chDB: 20,000 spans and 100,000 records.

The trace has ui_bench.py's shape (a batch of requests, each a span with nested steps and log lines),
synthesised as records and written straight into a fresh store, so no child process records it. Measured:

* ``query.story``     — the whole story (the CLI's ``story --json``, ``GET /api/trace/{id}``);
* ``query.outline``   — the span tree as columns, and its JSON (``GET /api/trace/{id}/outline``);
* ``query.records``   — the first page of 500 records, one deep in the trace, one span's records;
* wire shapes         — the outline's JSON against the shapes it was chosen over: bytes, gzip, encoding,
                        and (``--browser``) ``JSON.parse`` in Chromium.

Times are the fastest of ``--repeat`` runs, wall clock and CPU (DuckDB's threads included): on a shared
machine the CPU time is the steadier of the two. Usage::

    python bench/story_pages.py [--spans 20000] [--records 100000] [--repeat 5] [--chdb] [--browser] [--no-story]
"""

from __future__ import annotations

import argparse
import gzip
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec

T0 = 1_800_000_000_000_000_000
US = 1_000


def big_trace(spans: int, records: int) -> list[Any]:
    """One trace of ``spans`` spans and ``records`` records (spans included), as ui_bench.py records it."""
    from zoomtrace.wire.record import Code, Record, uuid7

    trace_id, node = "7b" * 16, uuid7(T0 - 10**9)
    started = Record(
        id=uuid7(T0 - 10**9),
        kind="node",
        type="started",
        ts_ns=T0 - 10**9,
        node_id=node,
        attrs={"node_id": node, "service": "bulk", "env": "bench", "host": "h", "pid": 1, "started_ns": T0 - 10**9},
    )
    clock = T0
    out: list[Any] = [started]
    counter = iter(range(1, 1 << 62))

    def span(name: str, parent: str | None, start: int, end: int) -> str:
        span_id = f"{next(counter):016x}"
        out.append(
            Record(
                id=uuid7(start),
                kind="span",
                type=name,
                ts_ns=start,
                end_ns=end,
                node_id=node,
                trace_id=trace_id,
                span_id=span_id,
                parent_span_id=parent,
                status="ok",
                thread="MainThread",
                code=Code("bench/big_trace.py", 30, "main", None, False),
            )
        )
        return span_id

    def log(span_id: str, text: str, level: str = "INFO") -> None:
        nonlocal clock
        clock += 7 * US
        out.append(
            Record(
                id=uuid7(clock),
                kind="log",
                type="bulk",
                ts_ns=clock,
                node_id=node,
                trace_id=trace_id,
                span_id=span_id,
                level=level,
                message=text,
                template="request %d: item %d",
                code=Code("bench/big_trace.py", 40, "main", None, False),
            )
        )

    requests = max(1, (spans - 1) // 5)
    per_request = max(0, records - spans) // requests
    quarter = per_request // 4
    root = span("batch", None, T0, T0 + 10**10)
    for r in range(requests):
        request = span("request", root, clock, clock + 1000 * US)
        for i in range(per_request - 4 * quarter):
            log(request, f"request {r} accepted ({i})")
        parent = request
        for step in ("step-0", "step-1", "step-2", "leaf"):
            parent = span(step, parent if step != "step-1" else request, clock, clock + 100 * US)
            for i in range(quarter):
                log(parent, f"request {r}: {step} item {i}", "ERROR" if r % 1000 == 999 and i == 0 else "INFO")
    for _ in range(spans - 1 - 5 * requests):
        span("extra", root, clock, clock + US)
    for i in range(records - spans - per_request * requests):
        log(root, f"tail line {i}")
    return out


def timed(fn: Callable[[], Any], repeat: int) -> tuple[float, float, Any]:
    """The fastest wall and CPU seconds of ``repeat`` runs of ``fn``, and its last result."""
    walls, cpus = [], []
    result = None
    for _ in range(repeat):
        cpu, wall = time.process_time(), time.perf_counter()
        result = fn()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return min(walls), min(cpus), result


def line(label: str, wall: float, cpu: float, extra: str = "") -> None:
    print(f"  {label:<34} {wall * 1000:8.0f} ms wall {cpu * 1000:8.0f} ms CPU  {extra}")


def measure(store: Any, trace_id: str, repeat: int, story: bool = True) -> dict[str, Any]:
    from zoomtrace.read import query

    encode = msgspec.json.Encoder().encode
    if story:
        wall, cpu, told = timed(lambda: query.story(store, trace_id), repeat)
        line("query.story", wall, cpu)
        wall, cpu, body = timed(lambda: encode(query.story(store, trace_id)), repeat)
        line("query.story + JSON", wall, cpu, f"{len(body) / 1e6:.1f} MB")
        del told, body
    wall, cpu, outline = timed(lambda: query.outline(store, trace_id), repeat)
    line("query.outline", wall, cpu, f"{len(outline.spans.span_id):,} spans")
    wall, cpu, body = timed(lambda: encode(query.outline(store, trace_id)), repeat)
    line("query.outline + JSON", wall, cpu, f"{len(body) / 1e6:.2f} MB ({len(gzip.compress(body, 1)) / 1e6:.2f} gzip)")
    last_with_logs = max(i for i, logs in enumerate(outline.spans.logs) if logs)  # far down the trace
    for label, kwargs in (
        ("first page of 500 records + JSON", {}),
        ("page at offset 90,000 + JSON", {"offset": 90_000}),
        ("one span's records + JSON", {"filt": {"span_ids": [outline.spans.span_id[last_with_logs]]}}),
        ("errors only + JSON", {"filt": {"errors_only": True}}),
    ):
        wall, cpu, body = timed(lambda kwargs=kwargs: encode(query.records(store, trace_id, **kwargs)), repeat)
        line(label, wall, cpu, f"{len(body) / 1e3:.0f} kB")
    return {"outline": outline}


def wire_shapes(outline: Any, browser: bool) -> None:
    """The outline's JSON beside the shapes it was chosen over."""
    plain = msgspec.to_builtins(outline)
    col, strings = plain["spans"], plain["strings"]
    rows = len(col["span_id"])
    text_fields = ("name", "service", "node_id", "status")

    def text(name: str, i: int) -> Any:
        index = col[name][i]
        return None if index < 0 else strings[index]

    objects = [{k: (text(k, i) if k in text_fields else col[k][i]) for k in col} for i in range(rows)]
    shapes = {
        "columns, strings interned (chosen)": plain,
        "columns, strings repeated": {
            **plain,
            "spans": {k: [text(k, i) for i in range(rows)] if k in text_fields else v for k, v in col.items()},
        },
        "one array per span": {**plain, "spans": [list(o.values()) for o in objects]},
        "one object per span": {**plain, "spans": objects},
    }
    encode = msgspec.json.Encoder().encode
    bodies = {}
    print("\nwire shapes of the outline:")
    for name, value in shapes.items():
        wall, _, body = timed(lambda value=value: encode(value), 5)
        bodies[name] = body
        print(
            f"  {name:<36} {len(body) / 1e6:6.2f} MB  gzip {len(gzip.compress(body, 1)) / 1e6:5.2f} MB  "
            f"encode {wall * 1000:5.1f} ms",
            end="",
        )
        print()
    if browser:
        parse_in_chromium(bodies)


def parse_in_chromium(bodies: dict[str, bytes]) -> None:
    """``JSON.parse`` of each body in Chromium (Debian's, through Playwright), fastest of 7."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page()
        print("JSON.parse in Chromium:")
        for name, body in bodies.items():
            ms = page.evaluate(
                "text => { let best = 1e9; for (let i = 0; i < 7; i++) { const t = performance.now(); "
                "JSON.parse(text); best = Math.min(best, performance.now() - t); } return best; }",
                body.decode(),
            )
            print(f"  {name:<36} {ms:6.1f} ms")
        browser.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spans", type=int, default=20_000)
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--chdb", action="store_true", help="also on chDB")
    parser.add_argument("--browser", action="store_true", help="also JSON.parse of the wire shapes in Chromium")
    parser.add_argument("--no-story", action="store_true", help="skip the whole story (for 200,000 spans)")
    args = parser.parse_args()

    from zoomtrace.store.duckdb import DuckStore

    records = big_trace(args.spans, args.records)
    trace_id = records[1].trace_id
    with tempfile.TemporaryDirectory(prefix="zt-story-pages-") as tmp:
        stores: list[tuple[str, Callable[[], Any]]] = [("DuckDB", lambda: DuckStore(Path(tmp) / "store.duckdb"))]
        if args.chdb:
            from zoomtrace.store.clickhouse import ClickHouseStore

            stores.append(("chDB", lambda: ClickHouseStore.open(f"chdb://{tmp}/chdb", create=True, retention_days=0)))
        outline = None
        for name, open_store in stores:
            store = open_store()
            try:
                for at in range(0, len(records), 50_000):  # in batches, as bench/ui_bench.py writes
                    store.write(store.prepare(records[at : at + 50_000]))
                print(f"{name}: trace {trace_id}, {len(records) - 1:,} records")
                outline = measure(store, trace_id, args.repeat, story=not args.no_story)["outline"]
            finally:
                store.close()
        wire_shapes(outline, args.browser)
    return 0


if __name__ == "__main__":
    sys.exit(main())
