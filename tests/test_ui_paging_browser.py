"""The story of a long trace in pages (issue 11), in a real browser: Debian's Chromium driven by Playwright.

The viewer reads the trace's outline (every span, no records) and then its records on demand:
by page as the record list scrolls, by span when a span is selected. These tests open a trace of
some 3,000 spans and 15,000 records, recorded by a real child process, on a real uvicorn server,
and check that what was never loaded at first is reached: a span far down and its records,
the last record, a late record named in the address, and the overview (minimap and durations
by name). Expected values come from the CLI (``zoomtrace story --json``), not from the API the
viewer reads. No timing is asserted (bench/ui_bench.py measures); nothing sleeps to synchronise.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

try:
    import helpers as h
except ImportError:  # tests/ imported as a package
    from tests import helpers as h

pytestmark = pytest.mark.browser

ROW = 24  # px, the waterfall's and the record list's row height
SELECTED = re.compile(r"\bselected\b")

#: A batch of jobs, each a span with log lines and a step; one job is slow; the last span of the
#: tree ("needle-far") and the last log line come at the very end.
SCRIPT = r"""
import json
import logging
import time

import zoomtrace as zt

JOBS, LINES = 1500, 8
log = logging.getLogger("pager")


def main():
    zt.init("pager", env="test", queue_size=100_000, on_full="block", block_timeout_s=60)
    with zt.span("batch") as root:
        for i in range(JOBS):
            with zt.span("job", n=i):
                for k in range(LINES):
                    log.info("job %d line %d", i, k)
                with zt.span("step", n=i):
                    if i == 1234:
                        time.sleep(0.05)  # the slowest job (the data, not a synchronisation)
        with zt.span("needle-far", shelf="bottom-7") as far:
            for k in range(30):
                log.warning("needle line %d", k)
        log.error("the very last line")
    zt.flush()
    print("RESULT " + json.dumps({"trace_id": root.trace_id, "far": far.span_id}), flush=True)


main()
"""


# -- fixtures --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def trace(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The recorded trace and what the CLI says about it: spans in tree order, records in time order."""
    base = tmp_path_factory.mktemp("ui-paging")
    home = base / "home"
    script = base / "pager.py"
    script.write_text(SCRIPT)
    made = h.result(h.run_script(script, home))
    story = h.story(home, made["trace_id"])
    spans: list[dict[str, Any]] = []
    stack = sorted(story["spans"], key=lambda s: (s["start_ns"], s["span_id"]), reverse=True)
    while stack:
        span = stack.pop()
        spans.append(span)
        stack += sorted(span["children"], key=lambda s: (s["start_ns"], s["span_id"]), reverse=True)
    records = [(s["start_ns"], s["id"], s) for s in spans]
    records += [(r["ts_ns"], r["id"], r) for s in spans for r in s["records"]]
    records += [(r["ts_ns"], r["id"], r) for r in story["records"]]
    records.sort(key=lambda x: (x[0], x[1]))
    return {"home": home, "trace_id": made["trace_id"], "far": made["far"], "spans": spans, "records": records}


@pytest.fixture(scope="module")
def server(trace: dict[str, Any]) -> Iterator[str]:
    from zoomtrace.ui.server import background

    with background(trace["home"]) as running:
        yield running.url.rstrip("/")


class Viewer:
    """A page of the viewer; uncaught errors and dialogs are collected, to fail the test."""

    def __init__(self, page: Any, story: str) -> None:
        self.page, self.story = page, story
        self.problems: list[str] = []
        page.on("pageerror", lambda exc: self.problems.append(f"error: {exc}"))
        page.on("dialog", self._dialog)
        page.set_default_timeout(60_000)

    def _dialog(self, dialog: Any) -> None:
        self.problems.append(f"dialog: {dialog.message}")
        dialog.dismiss()

    def open(self, query: str = "") -> Any:
        """Open the story (with this query) and wait for its waterfall; returns the Playwright page."""
        self.page.goto(self.story + query)
        self.page.wait_for_selector("main[data-ready=story]")
        return self.page


@pytest.fixture
def viewer(browser: Any, server: str, trace: dict[str, Any]) -> Iterator[Viewer]:
    context = browser.new_context(viewport={"width": 1600, "height": 1000})
    watched = Viewer(context.new_page(), f"{server}/trace/{trace['trace_id']}")
    try:
        yield watched
    finally:
        context.close()
    assert watched.problems == []


def expect(locator: Any) -> Any:
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(locator)


def rows_at_or_below(page: Any, selector: str, row: int) -> None:
    """Wait until a row of the list at index ``row`` or further down is drawn."""
    page.wait_for_function(
        "([selector, y]) => [...document.querySelectorAll(selector)].some(r => parseFloat(r.style.top) >= y)",
        arg=[selector, row * ROW],
    )


# -- tests -----------------------------------------------------------------------------------------


def test_the_outline_draws_every_span_and_sizes_the_record_list(viewer: Viewer, trace: dict[str, Any]) -> None:
    page = viewer.open()
    expect(page.locator("[data-testid=stat-spans]")).to_contain_text(f"{len(trace['spans']):,}")
    expect(page.locator("[data-testid=record-count]")).to_have_text(f"{len(trace['records']):,}")
    height = page.eval_on_selector(".wf-body .vspacer", "s => parseFloat(s.style.height)")
    assert height == len(trace["spans"]) * ROW
    assert page.locator("[data-testid=span-row]").count() < 200
    assert page.locator("[data-testid=record-row]").count() < 200


def test_the_outline_is_fetched_once_from_the_start_of_the_navigation(viewer: Viewer) -> None:
    """The page's address preloads the outline (a ``Link`` header), so the server works on it while the
    modules load; the page then uses that answer instead of asking again."""
    asked: list[str] = []
    viewer.page.on("request", lambda request: asked.append(request.url))
    viewer.open()
    outline = [i for i, url in enumerate(asked) if url.endswith("/outline")]
    assert len(outline) == 1, asked
    assert outline[0] < asked.index(viewer.story.rsplit("/trace/", 1)[0] + "/static/js/story.js"), asked


def test_records_of_a_span_far_down_appear_when_it_is_selected(viewer: Viewer, trace: dict[str, Any]) -> None:
    far = trace["spans"][-1]
    assert far["span_id"] == trace["far"] and far["name"] == "needle-far"
    page = viewer.open()
    page.eval_on_selector(".wf-body", "b => { b.scrollTop = b.scrollHeight; }")
    row = page.locator(f"[data-testid=span-row][data-span='{far['span_id']}']")
    # Before it is selected, its records are not loaded: a rug says they exist, no marker is placed.
    expect(row.locator(".wf-rug")).to_have_count(1)
    expect(row.locator(".wf-mark")).to_have_count(0)
    row.locator(".wf-name").click()
    records = page.locator("[data-testid=detail] [data-testid=span-records]")
    expect(records.locator("[data-testid=span-records-count]")).to_have_text(" · 30")
    first = records.locator("[data-testid=span-record]").first
    expect(first).to_have_attribute("data-record", far["records"][0]["id"])
    expect(first).to_contain_text("needle line 0")
    expect(row.locator(".wf-mark").first).to_be_attached()  # now placed on its bar
    expect(row.locator(".wf-rug")).to_have_count(0)
    assert f"span={far['span_id']}" in page.url
    # Its own record (not in the outline) is read by its span id: its record id and attributes are shown.
    detail = page.locator("[data-testid=detail]")
    expect(detail.locator("[data-testid=span-record-id]")).to_have_text(far["id"])
    expect(detail.locator("[data-testid=span-record-id]")).to_have_attribute("href", f"/record/{far['id']}")
    expect(detail).to_contain_text("bottom-7")
    expect(detail).not_to_contain_text("undefined")
    # A line of the span's records opens that record.
    records.locator("[data-testid=span-record]").nth(2).click()
    expect(page.locator("[data-testid=detail-message]")).to_have_text("needle line 2")


def test_a_span_is_shown_from_the_outline_until_its_own_record_arrives(viewer: Viewer, trace: dict[str, Any]) -> None:
    """The outline has no record ids: the panel shows the span without one (never "undefined") while its own
    record is on its way, here held back by the test, and with it once it arrives."""
    far = trace["spans"][-1]
    held: list[Any] = []
    viewer.page.route("**/api/trace/*/span/*", lambda route: held.append(route))
    page = viewer.open()
    page.fill(".wf-find", "needle")
    detail = page.locator("[data-testid=detail]")
    expect(detail.locator("[data-testid=span-records-count]")).to_have_text(" · 30")
    expect(detail.locator("[data-testid=detail-title]")).to_have_text("needle-far")
    asked = [route.request.url for route in held]  # the far span's, and any other span completed meanwhile
    assert f"{viewer.story.replace('/trace/', '/api/trace/')}/span/{far['span_id']}" in asked
    expect(detail.locator("[data-testid=span-record-id]")).to_have_count(0)
    expect(detail).not_to_contain_text("undefined")
    for route in held:
        route.continue_()
    expect(detail.locator("[data-testid=span-record-id]")).to_have_text(far["id"])
    expect(detail).to_contain_text("bottom-7")


def test_find_reaches_a_span_that_was_not_loaded_yet(viewer: Viewer, trace: dict[str, Any]) -> None:
    far = trace["far"]
    page = viewer.open()
    expect(page.locator(f"[data-span='{far}']")).to_have_count(0)  # far below the rows drawn
    page.fill(".wf-find", "needle")
    expect(page.locator(f"[data-testid=span-row][data-span='{far}']")).to_have_class(SELECTED)
    expect(page.locator("[data-testid=detail-title]")).to_have_text("needle-far")
    expect(page.locator("[data-testid=detail] [data-testid=span-records-count]")).to_have_text(" · 30")
    assert f"span={far}" in page.url
    # Another search selects its first match; Enter goes to the next one.
    page.fill(".wf-find", "job")
    jobs = [s["span_id"] for s in trace["spans"] if s["name"] == "job"]
    expect(page.locator(f"[data-span='{jobs[0]}']")).to_have_class(SELECTED)
    page.press(".wf-find", "Enter")
    expect(page.locator(f"[data-span='{jobs[1]}']")).to_have_class(SELECTED)


def test_the_minimap_jumps_to_a_region(viewer: Viewer, trace: dict[str, Any]) -> None:
    page = viewer.open()
    minimap = page.locator("[data-testid=minimap]")
    expect(minimap).to_be_visible()  # open at first on a long trace
    box = minimap.bounding_box()
    assert box is not None
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] * 0.9)
    n = len(trace["spans"])
    rows_at_or_below(page, "[data-testid=span-row]", int(n * 0.85))
    top = page.eval_on_selector(".wf-body", "b => b.scrollTop / 24")
    assert n * 0.8 < top < n
    # The frame follows the view; dragging it back to the top brings the first rows back.
    frame_top = page.eval_on_selector(".mm-frame", "f => parseFloat(f.style.top)")
    assert frame_top > box["height"] * 0.7
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] * 0.9)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] - 20, steps=5)  # past the top: held by the minimap
    page.mouse.up()
    page.wait_for_function("() => document.querySelector('.wf-body').scrollTop === 0")
    expect(page.locator(f"[data-span='{trace['spans'][0]['span_id']}']")).to_be_attached()


def test_the_histogram_reaches_the_slowest_span_of_a_name(viewer: Viewer, trace: dict[str, Any]) -> None:
    jobs = [s for s in trace["spans"] if s["name"] == "job"]
    slowest = max(jobs, key=lambda s: s["end_ns"] - s["start_ns"])  # job 1234, unless the machine stalled another
    page = viewer.open()
    row = page.locator("[data-testid=histogram-row][data-name=job]")
    expect(row).to_contain_text(f"{len(jobs):,}")
    row.click()
    expect(page.locator(f"[data-testid=span-row][data-span='{slowest['span_id']}']")).to_have_class(SELECTED)
    assert f"span={slowest['span_id']}" in page.url
    expect(page.locator(".wf-row.match")).not_to_have_count(0)  # the other jobs are highlighted


def test_paging_the_record_list_to_the_end_shows_the_last_record(viewer: Viewer, trace: dict[str, Any]) -> None:
    *_, last = trace["records"][-1]
    assert last["message"] == "the very last line"
    total = len(trace["records"])
    page = viewer.open()
    page.eval_on_selector(".rl-body", "b => { b.scrollTop = b.scrollHeight; }")
    line = page.locator(f"[data-testid=record-row][data-record='{last['id']}']")
    expect(line).to_contain_text("the very last line")
    assert line.get_attribute("data-row") == str(total - 1)
    # Far pages were dropped: only the rows around the view exist.
    assert page.locator("[data-testid=record-row]").count() < 200
    # Back at the top, the first record is read again.
    page.eval_on_selector(".rl-body", "b => { b.scrollTop = 0; }")
    *_, first = trace["records"][0]
    expect(page.locator("[data-testid=record-row][data-row='0']")).to_contain_text(first["name"])


def test_a_late_record_in_the_address_opens_selected(viewer: Viewer, trace: dict[str, Any]) -> None:
    far = trace["spans"][-1]
    late = far["records"][20]
    page = viewer.open(f"?record={late['id']}")
    expect(page.locator("[data-testid=detail-message]")).to_have_text("needle line 20")
    line = page.locator(f"[data-testid=record-row][data-record='{late['id']}']")
    expect(line).to_have_class(SELECTED)
    index = next(i for i, (_, rid, _) in enumerate(trace["records"]) if rid == late["id"])
    assert line.get_attribute("data-row") == str(index)
    expect(page.locator(f"[data-testid=span-row][data-span='{far['span_id']}']")).to_be_attached()
    # Its span's records were read to place it: its marker is on the bar, selected.
    expect(page.locator(f"[data-span='{far['span_id']}'] .wf-mark[data-record='{late['id']}']")).to_have_class(SELECTED)


def test_the_record_filters_are_applied_by_the_server(viewer: Viewer, trace: dict[str, Any]) -> None:
    page = viewer.open()
    warnings = [r for *_, r in trace["records"] if r.get("level") in ("WARNING", "ERROR")]
    assert len(warnings) == 31
    page.select_option("[data-testid=level-filter]", "30")
    expect(page.locator("[data-testid=record-count]")).to_have_text(
        f"{len(trace['spans']) + 31:,} of {len(trace['records']):,}"
    )
    page.uncheck("[data-kind=span]")
    expect(page.locator("[data-testid=record-count]")).to_have_text(f"31 of {len(trace['records']):,}")
    expect(page.locator("[data-testid=records] [data-testid=record-row]")).to_have_count(31)
    page.fill("[data-testid=records] input[type=search]", "very last")
    expect(page.locator("[data-testid=records] [data-testid=record-row]")).to_have_count(1)
    page.click("[data-testid=errors-only]")
    expect(page.locator("[data-testid=records] [data-testid=record-row]")).to_contain_text("the very last line")
