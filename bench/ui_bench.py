"""How long the web viewer takes to open a big trace: 20,000 spans with 100,000 records.

The trace is recorded by real instrumented code (a child process using ``zt.span`` and
stdlib logging), ingested into a fresh home, then opened three ways:

* ``story``           — the store's rows assembled into the story (``zoomtrace.read.query.story``, in process);
* ``GET /api/trace``  — the viewer's API over HTTP (store + JSON encoding + transfer);
* ``browser``         — Chromium (Debian's, driven by Playwright) from navigation until the
                         waterfall and the record list are drawn (``main[data-ready]``), plus
                         one scroll to the last span.

Usage::

    python bench/ui_bench.py [--spans 20000] [--records 100000] [--keep DIR]

The browser tests open the same kind of trace but assert no timing: this script is where
the time budget is measured.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

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
#: ``records`` records in all (spans included), one log line in a thousand an error.
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
            with zt.span("request", n=r):
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
                pass
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spans", type=int, default=20_000)
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--keep", type=Path, help="record into this directory and keep it")
    parser.add_argument("--no-browser", action="store_true")
    args = parser.parse_args()

    from zoomtrace.collect import open_session
    from zoomtrace.read import query
    from zoomtrace.ui.server import background

    tmp = tempfile.TemporaryDirectory(prefix="zt-ui-bench-")
    base = args.keep or Path(tmp.name)
    home = base / "home"
    t = time.perf_counter()
    trace_id = make_big_trace(home, args.spans, args.records)
    record_s = time.perf_counter() - t
    t = time.perf_counter()
    with open_session(home) as store:
        ingest_s = time.perf_counter() - t
        t = time.perf_counter()
        story = query.story(store, trace_id)
        story_s = time.perf_counter() - t

    n_spans = n_records = 0
    stack = list(story.spans)
    while stack:
        s = stack.pop()
        n_spans += 1
        n_records += len(s.records)
        stack.extend(s.children)
    n_records += len(story.records) + n_spans
    print(f"trace {trace_id}: {n_spans:,} spans, {n_records:,} records (spans included)")
    print(f"  record (child process)   {record_s:8.2f} s")
    print(f"  ingest into the store    {ingest_s:8.2f} s")
    print(f"  story                    {story_s:8.2f} s")

    with background(home) as server:
        url = f"{server.url}api/trace/{trace_id}"
        t = time.perf_counter()
        with urllib.request.urlopen(url, timeout=120) as response:
            body = response.read()
        api_s = time.perf_counter() - t
        print(f"  GET /api/trace           {api_s:8.2f} s   ({len(body) / 1e6:.1f} MB of JSON)")
        if args.no_browser:
            return 0
        from playwright.sync_api import sync_playwright

        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            t = time.perf_counter()
            page.goto(f"{server.url}trace/{trace_id}")
            page.wait_for_selector("main[data-ready=story]", timeout=300_000)
            open_s = time.perf_counter() - t
            render_ms = page.eval_on_selector("main", "m => Number(m.dataset.renderMs)")
            rows = page.locator("[data-testid=span-row]").count()
            t = time.perf_counter()
            page.eval_on_selector(".wf-body", "b => { b.scrollTop = b.scrollHeight; }")
            page.wait_for_function(
                "() => document.querySelectorAll('[data-testid=span-row]').length > 0 && "
                "[...document.querySelectorAll('[data-testid=span-row]')].some(r => "
                "r.getBoundingClientRect().top > 0)"
            )
            scroll_ms = (time.perf_counter() - t) * 1000
            heap = page.evaluate("() => performance.memory ? performance.memory.usedJSHeapSize : 0")
            browser.close()
        print(
            f"  browser: open the story  {open_s:8.2f} s   (model + first draw {render_ms:.0f} ms; "
            f"{rows} span rows in the DOM)"
        )
        print(f"  browser: scroll to end   {scroll_ms:8.0f} ms")
        if heap:
            print(f"  browser: JS heap         {heap / 1e6:8.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
