"""How fast the web viewer opens and drives a big trace (issue 11: the story in pages).

Two traces:

* ``--spans 20000 --records 120000`` (the default: 100,000 logs): recorded by real instrumented code
  (a child process using ``zt.span`` and stdlib logging), ingested into a fresh home;
* ``--synthetic --spans 200000 --records 1200000`` (1,000,000 logs): too slow to record through a
  process, so written straight into the store: ``zoomtrace.wire.record.Record`` values of the same
  shape (a batch span; requests of five spans, each span with its logs; an error in a thousand
  requests, some requests 50 times slower; the request halfway named ``needle``; the last span of
  the tree with the last lines), ``store.write(store.prepare(batch))`` 50,000 records at a time.

Each is then measured over HTTP (the outline and pages of records, as the viewer asks for them) and
in Chromium (Debian's, driven by Playwright), ``--runs`` times, medians reported:

* ``first span row``   navigation until the first span row is in the page (outline read, drawn);
                        also when the outline was asked for (the page and its modules loaded)
                        and the model and first draw (after its answer was parsed);
* ``records to end``   the record list scrolled to the bottom until its last record is drawn;
* ``scroll to end``    the timeline scrolled to the bottom until its last row is drawn;
* ``click last span``  a click on that row until its logs and events are listed in the detail panel;
* ``find``             typing ``needle`` in Find until that span is selected (the box waits 50 ms for
                        more typing before it searches);
* ``JS heap``          after these, once garbage is collected (CDP ``Runtime.getHeapUsage``).

Times are taken inside the page (``performance.now()``, polled every animation frame), so they
include the server's answers but not Playwright's own round trips; the time the page waited for
the server (Resource Timing of the step's requests) is shown beside each.

Usage::

    python bench/ui_bench.py [--spans 20000] [--records 120000] [--synthetic] [--runs 3] [--keep DIR]

The browser tests open the same kind of trace but assert no timing: this script is where the time
budget is measured.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

#: A batch of requests, each a span with nested work spans and log lines: ``spans`` spans and
#: ``records`` records in all (spans included), one log line in a thousand an error; the request
#: halfway is named "needle" (what the benchmark finds).
BIG_TRACE_SCRIPT = r"""
import json
import logging
import sys

import zoomtrace as zt

SPANS, RECORDS = int(sys.argv[1]), int(sys.argv[2])
log = logging.getLogger("bulk")


class Flaky(Exception):
    pass


def main():
    zt.init("bulk", env="bench", group="ui", version="1.0", queue_size=2 * (SPANS + RECORDS), on_full="block",
            block_timeout_s=60)
    requests = max(1, (SPANS - 1) // 5)          # each request: request > step-0, step-1 > step-2 > leaf
    extra_spans = SPANS - 1 - 5 * requests
    logs = max(0, RECORDS - SPANS)
    per_request = logs // requests
    tail = logs - per_request * requests
    quarter = per_request // 4
    with zt.span("batch", size=SPANS) as root:
        for r in range(requests):
            with zt.span("needle" if r == requests // 2 else "request", n=r):
                for i in range(per_request - 4 * quarter):
                    log.info("request %d accepted (%d)", r, i)
                with zt.span("step-0"):
                    for i in range(quarter):
                        log.info("request %d: parsed item %d", r, i)
                with zt.span("step-1"):
                    for i in range(quarter):
                        log.info("request %d: priced item %d", r, i)
                    with zt.span("step-2"):
                        for i in range(quarter):
                            log.info("request %d: stored item %d", r, i)
                        with zt.span("leaf"):
                            for i in range(quarter):
                                if r % 1000 == 999 and i == 0:
                                    log.error("request %d: item %d rejected", r, i)
                                else:
                                    log.info("request %d: indexed item %d", r, i)
        for i in range(extra_spans):
            with zt.span("extra", n=i):
                if i == extra_spans - 1:  # the last span of the tree has the last lines
                    for k in range(tail):
                        log.info("tail line %d", k)
        if not extra_spans:
            for i in range(tail):
                log.info("tail line %d", i)
    zt.flush()
    print("RESULT " + json.dumps({"trace_id": root.trace_id}), flush=True)


main()
"""


def make_big_trace(home: Path, spans: int = 20_000, records: int = 100_000) -> str:
    """Record one trace of about ``spans`` spans and ``records`` records into ``home``; returns its id."""
    home.mkdir(parents=True, exist_ok=True)
    script = home.parent / "big_trace.py"
    script.write_text(BIG_TRACE_SCRIPT)
    env = {**os.environ, "ZOOMTRACE_HOME": str(home), "PYTHONUNBUFFERED": "1"}
    env.pop("ZOOMTRACE_SINK", None)
    out = subprocess.run(
        [sys.executable, str(script), str(spans), str(records)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
        cwd=str(home.parent),
    )
    if out.returncode != 0:
        raise RuntimeError(f"the big-trace script failed ({out.returncode}):\n{out.stderr}")
    line = next(x for x in out.stdout.splitlines() if x.startswith("RESULT "))
    trace_id: str = json.loads(line[7:])["trace_id"]
    return trace_id


def synthesize_trace(home: Path, spans: int = 200_000, records: int = 1_200_000, batch: int = 50_000) -> str:
    """Write one trace of ``spans`` spans and ``records`` records (spans included) straight into the
    store of ``home``, shaped as ``make_big_trace`` records it; returns its id."""
    from zoomtrace.collect import open_session
    from zoomtrace.wire.record import Code, Record, new_span_id, new_trace_id, uuid7

    rng = random.Random(11)
    trace_id = new_trace_id()
    node_id = uuid7()
    t0 = time.time_ns() - 3_600_000_000_000
    code = Code(file="bench/ui_bench.py", line=1, function="synthesize_trace")
    requests = max(1, (spans - 1) // 5)
    extra_spans = spans - 1 - 5 * requests
    logs = records - spans
    per_span = logs // (5 * requests)
    tail = logs - per_span * 5 * requests
    out: list[Record] = [
        Record(
            id=uuid7(t0),
            kind="node",
            type="started",
            ts_ns=t0,
            node_id=node_id,
            attrs={"service": "bulk", "env": "bench", "group": "ui", "version": "1.0", "host": "bench", "pid": 1},
        )
    ]
    written = 0

    def flush(store: Any, force: bool = False) -> None:
        nonlocal out, written
        if out and (force or len(out) >= batch):
            store.write(store.prepare(out))
            written += len(out)
            out = []

    def span(name: str, span_id: str, parent: str | None, start: int, end: int, **attrs: Any) -> None:
        out.append(
            Record(
                id=uuid7(start),
                kind="span",
                type=name,
                ts_ns=start,
                end_ns=end,
                trace_id=trace_id,
                span_id=span_id,
                parent_span_id=parent,
                node_id=node_id,
                code=code,
                attrs=attrs,
                status="ok",
            )
        )

    def log(span_id: str, ts: int, message: str, error: bool = False) -> None:
        out.append(
            Record(
                id=uuid7(ts),
                kind="log",
                type="bulk",
                ts_ns=ts,
                trace_id=trace_id,
                span_id=span_id,
                node_id=node_id,
                code=code,
                level="ERROR" if error else "INFO",
                message=message,
            )
        )

    with open_session(home, create=True, ingest=False) as store:
        root = new_span_id()
        t = t0 + 1000
        for r in range(requests):
            ids = [new_span_id() for _ in range(5)]  # request > step-0, step-1 > step-2 > leaf
            step = rng.randint(2_000, 40_000) * (50 if r % 997 == 0 else 1)  # ns per log line; some requests slow
            start = t
            spans_at = []
            for k in range(5):
                begin = t
                for i in range(per_span):
                    t += step
                    log(ids[k], t, f"request {r}: item {i} in part {k}", error=(r % 1000 == 999 and i == 0 and k == 4))
                spans_at.append(begin)
                t += step
            end = t
            names = ["needle" if r == requests // 2 else "request", "step-0", "step-1", "step-2", "leaf"]
            parents = [root, ids[0], ids[0], ids[2], ids[3]]
            ends = [end, spans_at[2], end - step // 4, end - step // 2, end - 3 * step // 4]
            for k in range(5):
                span(names[k], ids[k], parents[k], spans_at[k] if k else start, ends[k], n=r)
            t += step
            flush(store)
        for i in range(extra_spans):  # the last span of the tree has the last lines
            extra, begin = new_span_id(), t
            for k in range(tail if i == extra_spans - 1 else 0):
                t += 1_000
                log(extra, t, f"tail line {k}")
            t += 1_000
            span("extra", extra, root, begin, t, n=i)
        for k in range(0 if extra_spans else tail):
            t += 1_000
            log(root, t, f"tail line {k}")
        span("batch", root, None, t0, t + 1_000, size=spans)
        flush(store, force=True)
    return trace_id


# -- measuring -------------------------------------------------------------------------------------------


def timed_get(url: str) -> tuple[float, int]:
    t = time.perf_counter()
    with urllib.request.urlopen(url, timeout=300) as response:
        body = response.read()
    return (time.perf_counter() - t) * 1000, len(body)


def measure_http(base: str, trace_id: str, runs: int) -> list[tuple[str, float, int]]:
    """The viewer's requests over HTTP: the outline, pages of records (first, last, around a record, a span)."""
    api = f"{base}api/trace/{trace_id}"
    outline = json.loads(urllib.request.urlopen(f"{api}/outline", timeout=300).read())
    first = json.loads(urllib.request.urlopen(f"{api}/records?limit=1", timeout=300).read())
    total = first["total"]
    middle = json.loads(urllib.request.urlopen(f"{api}/records?offset={total // 2}&limit=1", timeout=300).read())
    far_span = outline["spans"]["span_id"][-2]
    asks = [
        ("GET outline", f"{api}/outline"),
        ("GET records, first page", f"{api}/records?offset=0&limit=200"),
        ("GET records, last page", f"{api}/records?offset={max(0, total - 200)}&limit=200"),
        ("GET records, around a record", f"{api}/records?around={middle['records'][0]['id']}&limit=200"),
        ("GET records of a span", f"{api}/records?span={far_span}&limit=2000"),
        ("GET a span's own record", f"{api}/span/{far_span}"),
        ("GET records, errors only", f"{api}/records?errors=1&limit=200"),
    ]
    results = []
    for label, url in asks:
        samples = [timed_get(url) for _ in range(runs)]
        results.append((label, statistics.median(ms for ms, _ in samples), samples[0][1]))
    return results


#: In-page steps: each returns performance.now() when its effect is drawn (polled every frame).
LAST_ROW = """n => { const rows = [...document.querySelectorAll('[data-testid=span-row]')];
  return rows.some(r => parseFloat(r.style.top) >= (n - 1) * 24) && performance.now(); }"""
LAST_RECORD = """n => [...document.querySelectorAll('[data-testid=record-row]')]
  .some(r => Number(r.dataset.row) === n - 1) && performance.now()"""
SPAN_RECORDS = """id => document.querySelector(`[data-testid=span-row][data-span='${id}'].selected`)
  && document.querySelector('[data-testid=span-records] [data-testid=span-records-count]') && performance.now()"""
OUTLINE_TIMING = """() => { const e = performance.getEntriesByType('resource').find(e => e.name.includes('/outline'));
  return [e.startTime, e.responseEnd]; }"""
FOUND = """() => document.querySelector('.wf-row.selected .wf-name')?.textContent === 'needle'
  && document.querySelector('[data-testid=detail-title]')?.textContent === 'needle' && performance.now()"""


def settle(page: Any) -> None:
    """Wait until no request of the page has ended for 600 ms (the previous step's requests answered)."""
    count, quiet = -1, 0
    while quiet < 3:
        now = page.evaluate("() => performance.getEntriesByType('resource').length")
        quiet = quiet + 1 if now == count else 0
        count = now
        page.wait_for_timeout(200)


#: Of the requests that ended in [t, end]: from the first one's start to the last one's end (ms).
WAITED = """([t, end]) => { const rs = performance.getEntriesByType('resource')
  .filter(e => e.responseEnd >= t && e.responseEnd <= end && !e.name.includes('/api/pulse'));
  if (!rs.length) return 0;
  return Math.max(...rs.map(e => e.responseEnd)) - Math.max(t, Math.min(...rs.map(e => e.startTime))); }"""


def measure_browser(base: str, trace_id: str, runs: int) -> dict[str, Any]:
    """Each step timed in the page, with how long of it the page waited for the server."""
    from playwright.sync_api import sync_playwright

    url = f"{base}trace/{trace_id}"
    outline = json.loads(urllib.request.urlopen(f"{base}api/trace/{trace_id}/outline", timeout=300).read())
    spans = len(outline["spans"]["span_id"])
    samples: dict[str, list[float]] = {}

    def note(name: str, ms: float) -> None:
        samples.setdefault(name, []).append(ms)

    def step(page: Any, name: str, act: str, done: str, arg: Any = None, act_arg: Any = None) -> None:
        """Run `act` in the page (it returns performance.now()), wait until `done` returns the time it saw it."""
        t = page.evaluate(act, act_arg)
        end = page.wait_for_function(done, arg=arg, polling="raf").json_value()
        note(name, end - t)
        note(f"{name}: server", page.evaluate(WAITED, [t, end]))
        settle(page)

    heap = 0.0
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        for _ in range(runs):
            context = browser.new_context(viewport={"width": 1600, "height": 1000})
            page = context.new_page()
            page.set_default_timeout(300_000)
            page.goto(url, wait_until="commit")
            first = "() => document.querySelector('[data-testid=span-row]') && performance.now()"
            note("first span row", page.wait_for_function(first, polling="raf").json_value())
            page.wait_for_selector("main[data-ready=story]")
            asked, answered = page.evaluate(OUTLINE_TIMING)
            note("first span row: server", answered - asked)
            note("outline asked", asked)
            note("model + first draw", page.eval_on_selector("main", "m => Number(m.dataset.renderMs)"))
            page.wait_for_selector("[data-testid=record-row]")  # the first page of records
            settle(page)

            total = page.evaluate("() => document.querySelector('.rl-body .vspacer').offsetHeight / 24")
            scroll = "s => { document.querySelector(s).scrollTop = 1e9; return performance.now(); }"
            step(page, "records to end", scroll, LAST_RECORD, round(total), ".rl-body")
            step(page, "scroll to end", scroll, LAST_ROW, spans, ".wf-body")
            last = page.eval_on_selector_all(
                "[data-testid=span-row]",
                "rs => rs.sort((a, b) => parseFloat(b.style.top) - parseFloat(a.style.top))[0].dataset.span",
            )
            click = (
                "id => { document.querySelector(`[data-span='${id}'] .wf-name`).click(); return performance.now(); }"
            )
            step(page, "click last span", click, SPAN_RECORDS, last, last)
            find = """() => { const box = document.querySelector('.wf-find'); box.value = 'needle';
              box.dispatchEvent(new Event('input')); return performance.now(); }"""
            step(page, "find", find, FOUND)

            cdp = context.new_cdp_session(page)
            cdp.send("HeapProfiler.collectGarbage")
            heap = max(heap, cdp.send("Runtime.getHeapUsage")["usedSize"])
            context.close()
        browser.close()
    result: dict[str, Any] = {name: statistics.median(values) for name, values in samples.items()}
    result["heap_mb"] = heap / 1e6
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spans", type=int, default=20_000)
    parser.add_argument("--records", type=int, default=120_000, help="records in all, spans included")
    parser.add_argument("--synthetic", action="store_true", help="write the trace into the store directly")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--keep", type=Path, help="make the trace in this directory and keep it (reused when there)")
    parser.add_argument("--no-browser", action="store_true")
    args = parser.parse_args()

    from zoomtrace.collect import open_session
    from zoomtrace.ui.server import background

    tmp = tempfile.TemporaryDirectory(prefix="zt-ui-bench-")
    base = args.keep or Path(tmp.name)
    home = base / "home"
    made = base / "trace.json"
    if made.exists():
        trace_id = json.loads(made.read_text())["trace_id"]
        print(f"trace {trace_id} (kept in {base})")
    else:
        t = time.perf_counter()
        if args.synthetic:
            trace_id = synthesize_trace(home, args.spans, args.records)
            print(f"synthesised into the store     {time.perf_counter() - t:8.2f} s")
        else:
            trace_id = make_big_trace(home, args.spans, args.records)
            print(f"record (child process)         {time.perf_counter() - t:8.2f} s")
            t = time.perf_counter()
            with open_session(home):
                pass
            print(f"ingest into the store          {time.perf_counter() - t:8.2f} s")
        made.write_text(json.dumps({"trace_id": trace_id}))

    with background(home) as server:
        summary = json.loads(urllib.request.urlopen(f"{server.url}api/traces?limit=1", timeout=300).read())["traces"][0]
        print(
            f"trace {trace_id}: {summary['span_count']:,} spans, {summary['record_count']:,} records (spans included)"
        )
        for label, ms, size in measure_http(server.url, trace_id, args.runs):
            print(f"  {label:<32} {ms:8.0f} ms   ({size / 1e6:.1f} MB)")
        if args.no_browser:
            return 0
        b = measure_browser(server.url, trace_id, args.runs)
    print(f"browser (median of {args.runs}; in brackets, of it waiting for the server):")
    print(f"  {'outline asked':<32} {b['outline asked']:8.0f} ms   (after navigation: page and modules loaded)")
    print(f"  {'model + first draw':<32} {b['model + first draw']:8.0f} ms")
    for name in ("first span row", "records to end", "scroll to end", "click last span", "find"):
        print(f"  {name:<32} {b[name]:8.0f} ms   ({b[name + ': server']:.0f} ms)")
    print(f"  {'JS heap after GC':<32} {b['heap_mb']:8.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
