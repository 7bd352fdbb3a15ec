"""The web viewer in a real browser: Debian's Chromium driven by Playwright.

The data is real: ``zoomtrace demo`` (three processes, a declined and retried payment,
data events with lineage) plus a script logging hostile text, and a generated trace of
20,000 spans and 100,000 records. The viewer runs on a real uvicorn server.

These tests never skip: without Chromium they fail and say how to install it. Any
``alert()`` (a dialog) or uncaught page error fails the test that caused it.
Screenshots of the pages are saved in ``build/screenshots/``.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

try:
    import helpers as h
except ImportError:  # tests/ imported as a package
    from tests import helpers as h

pytestmark = pytest.mark.browser

SHOTS = h.REPO / "build" / "screenshots"
XSS = "<img src=x onerror=alert(1)>"
XSS_SPAN = "<b>bold</b><script>alert(2)</script>"

HOSTILE = f"""
import json
import zoomtrace as zt

zt.init("hostile", env="demo")
with zt.span({XSS_SPAN!r}, note='"><svg onload=alert(3)>') as s:
    zt.log.warning({XSS!r})
    zt.event({{"html": "<iframe src=javascript:alert(4)>"}}, type="Evil<i>Event</i>")
print("RESULT " + json.dumps({{"trace_id": s.trace_id}}), flush=True)
"""


BURST = """
import json
import zoomtrace as zt

zt.init("burst", env="test")
with zt.span("import batch") as s:
    items = [zt.event({"n": i}, type="Item") for i in range(40)]
    batch = zt.event({"count": len(items)}, type="Batch", sources=items)
    report = zt.event({"ok": True}, type="Report", sources=[batch])
print("RESULT " + json.dumps({"trace_id": s.trace_id, "items": items, "batch": batch, "report": report}), flush=True)
"""


# -- fixtures --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The demo's home, the story of its interesting trace, and a trace of hostile text beside it."""
    base = tmp_path_factory.mktemp("ui-browser")
    home = base / "home"
    out = h.cli(home, "demo", "--json", timeout=120)
    assert out.returncode == 0, out.stderr
    story = json.loads(out.stdout)
    script = base / "hostile.py"
    script.write_text(HOSTILE)
    hostile = h.result(h.run_script(script, home))
    return {"home": home, "story": story, "trace_id": story["trace_id"], "hostile": hostile["trace_id"]}


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A trace of 20,000 spans and 100,000 records (spans included), recorded by real instrumented code."""
    spec = importlib.util.spec_from_file_location("ui_bench", h.REPO / "bench" / "ui_bench.py")
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    home = tmp_path_factory.mktemp("ui-big") / "home"
    trace_id = bench.make_big_trace(home, 20_000, 100_000)
    return {"home": home, "trace_id": trace_id}


@pytest.fixture(scope="module")
def server(demo: dict[str, Any]) -> Iterator[str]:
    from zoomtrace.ui.server import background

    with background(demo["home"], code_roots=[h.REPO]) as running:  # the demo's code is Zoom's own
        yield running.url.rstrip("/")


@pytest.fixture(scope="module")
def burst(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """40 data events recorded in a burst (mostly within one millisecond), a batch derived from them all,
    a report derived from the batch; served by a viewer of their own."""
    from zoomtrace.ui.server import background

    base = tmp_path_factory.mktemp("ui-burst")
    script = base / "burst.py"
    script.write_text(BURST)
    home = base / "home"
    ran = h.result(h.run_script(script, home))
    with background(home) as running:
        yield {"home": home, "url": running.url.rstrip("/"), **ran}


FLEET_APP = """
import json
import sys

import zoomtrace as zt
from pkg import work

zt.init(sys.argv[1], env="staging-eu-west-1-blue", group="checkout-canary-rollout-group",
        version="2026.12.02+build.1234567.gabcdef0")
with zt.span("settle the day's payments") as s:
    work.run()
print("RESULT " + json.dumps({"trace_id": s.trace_id}), flush=True)
"""

WORK = """
import zoomtrace as zt


def run():
    zt.log.info("settled")
"""

LONG_BRANCH = "feature/issue-11-the-nodes-page-scrolls-sideways-at-1500-px-with-long-branch-names"


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Two runs of one program in a real git repository whose home lies inside it (``./.zoomtrace``, the
    default): the first with a modified module, the second clean. Long names, as real deployments have."""
    from zoomtrace.ui.server import background

    repo = tmp_path_factory.mktemp("ui-fleet") / "shop"
    h.make_repo(repo, {"app.py": FLEET_APP, "pkg/__init__.py": "", "pkg/work.py": WORK})
    h.git(repo, "checkout", "-q", "-b", LONG_BRANCH)
    home = repo / ".zoomtrace"
    work = repo / "pkg" / "work.py"
    work.write_text(work.read_text() + "\n# changed, not committed\n")
    dirty_service = "payments-settlement-worker-with-a-long-service-name-dirty"
    clean_service = "payments-settlement-worker-with-a-long-service-name-clean"
    h.run_script(repo / "app.py", home, dirty_service, cwd=repo)
    h.git(repo, "checkout", "-q", "--", "pkg/work.py")
    assert h.git(repo, "status", "--porcelain", "--untracked-files=no") == ""
    h.run_script(repo / "app.py", home, clean_service, cwd=repo)
    with background(home) as running:
        url = running.url.rstrip("/")
        yield {"home": home, "repo": repo, "url": url, "dirty": dirty_service, "clean": clean_service}


class Watched:
    """A page whose dialogs and uncaught errors are collected, to fail the test."""

    def __init__(self, page: Any, base: str) -> None:
        self.page, self.base = page, base
        self.dialogs: list[str] = []
        self.errors: list[str] = []
        page.on("dialog", self._dialog)
        page.on("pageerror", lambda exc: self.errors.append(str(exc)))

    def _dialog(self, dialog: Any) -> None:
        self.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    def goto(self, path: str, ready: str | None = None) -> None:
        self.page.goto(self.base + path)
        if ready == "story":
            self.page.wait_for_selector("main[data-ready=story]", timeout=120_000)
        elif ready == "traces":
            self.page.wait_for_selector("[data-testid=trace-row]")


@pytest.fixture
def page(browser: Any, server: str) -> Iterator[Watched]:
    context = browser.new_context(viewport={"width": 1600, "height": 1000})
    watched = Watched(context.new_page(), server)
    try:
        yield watched
    finally:
        context.close()
    assert watched.dialogs == [], f"a dialog opened: untrusted text ran as code: {watched.dialogs}"
    assert watched.errors == [], f"uncaught errors in the page: {watched.errors}"


@pytest.fixture
def open_page(browser: Any) -> Iterator[Callable[..., Watched]]:
    """Pages on another viewer (``open_page(url, width=1600)``), checked like ``page`` when the test ends."""
    opened: list[tuple[Any, Watched]] = []

    def open_(base: str, width: int = 1600, height: int = 1000) -> Watched:
        context = browser.new_context(viewport={"width": width, "height": height})
        watched = Watched(context.new_page(), base)
        opened.append((context, watched))
        return watched

    yield open_
    for context, _ in opened:
        context.close()
    for _, watched in opened:
        assert watched.dialogs == [], f"a dialog opened: untrusted text ran as code: {watched.dialogs}"
        assert watched.errors == [], f"uncaught errors in the page: {watched.errors}"


def shot(page: Watched, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.page.screenshot(path=str(SHOTS / name))


def walk(spans: list[dict[str, Any]], depth: int = 0) -> list[tuple[dict[str, Any], int]]:
    out: list[tuple[dict[str, Any], int]] = []
    for s in sorted(spans, key=lambda s: (s["start_ns"], s["span_id"])):
        out.append((s, depth))
        out += walk(s["children"], depth + 1)
    return out


def records_of(story: dict[str, Any]) -> list[dict[str, Any]]:
    return [r for s, _ in walk(story["spans"]) for r in s["records"]] + story["records"]


def span_rows(page: Watched) -> list[tuple[str, int]]:
    rows = page.page.eval_on_selector_all(
        "[data-testid=span-row]",
        "rows => rows.sort((a, b) => parseFloat(a.style.top) - parseFloat(b.style.top))"
        "            .map(r => [r.dataset.span, Number(r.dataset.depth)])",
    )
    return [(span_id, depth) for span_id, depth in rows]


def text_of(page: Watched, testid: str) -> str:
    return str(page.page.locator(f"[data-testid={testid}]").first.text_content()).strip()


# -- traces page -------------------------------------------------------------------------------------


def test_traces_page_lists_the_demo_newest_first(page: Watched, demo: dict[str, Any]) -> None:
    expected = h.cli_json(demo["home"], "traces", "--limit", "100")
    page.goto("/", ready="traces")
    rows = page.page.eval_on_selector_all("[data-testid=trace-row]", "rows => rows.map(r => r.dataset.trace)")
    assert rows == [t["trace_id"] for t in expected]
    assert len(rows) == 4  # three checkouts and the hostile script
    interesting = page.page.locator(f"[data-testid=trace-row][data-trace='{demo['trace_id']}']")
    assert interesting.get_attribute("data-error") == "1"
    assert "checkout" in interesting.inner_text()
    shot(page, "traces.png")


def test_filter_traces_to_errors(page: Watched, demo: dict[str, Any]) -> None:
    errors = h.cli_json(demo["home"], "traces", "--errors")
    assert [t["trace_id"] for t in errors] == [demo["trace_id"]]
    page.goto("/", ready="traces")
    page.page.check("[data-testid=filter-errors]")
    page.page.wait_for_function("() => document.querySelectorAll('[data-testid=trace-row]').length === 1")
    rows = page.page.eval_on_selector_all(
        "[data-testid=trace-row]", "rows => rows.map(r => [r.dataset.trace, r.dataset.error])"
    )
    assert rows == [[demo["trace_id"], "1"]]
    assert "errors=1" in page.page.url  # the filter is in the address, so it can be shared


# -- story page --------------------------------------------------------------------------------------


def test_story_shows_the_span_tree_and_counts(page: Watched, demo: dict[str, Any]) -> None:
    story = demo["story"]
    page.goto(f"/trace/{demo['trace_id']}", ready="story")
    expected = [(s["span_id"], depth) for s, depth in walk(story["spans"])]
    assert span_rows(page) == expected
    names = [s["name"] for s, _ in walk(story["spans"])]
    assert names[:3] == ["checkout", "POST /orders", "charge"]
    records = records_of(story)
    assert text_of(page, "stat-spans").startswith(str(len(expected)))
    assert text_of(page, "stat-logs").startswith(str(sum(r["kind"] == "log" for r in records)))
    assert text_of(page, "stat-events").startswith(str(sum(r["kind"] == "event" for r in records)))
    assert text_of(page, "stat-nodes").startswith("3")
    assert text_of(page, "record-count") == str(len(records) + len(expected))
    # One colour per service: the three services' bars have three colours.
    colors = page.page.eval_on_selector_all(
        "[data-testid=span-row]",
        "rows => rows.map(r => [r.querySelector('.wf-svc').textContent, "
        "getComputedStyle(r.querySelector('.wf-bar')).backgroundColor])",
    )
    by_service: dict[str, set[str]] = {}
    for service, color in colors:
        by_service.setdefault(service, set()).add(color)
    assert set(by_service) == {"gateway", "orders", "billing"}
    assert all(len(c) == 1 for c in by_service.values())
    assert len({next(iter(c)) for c in by_service.values()}) == 3
    # The retry follows from the declined charge: an arrow from one to the other.
    spans = {s["name"]: s for s, _ in walk(story["spans"])}
    retry = spans["charge.retry"]
    (link,) = retry["links"]
    arrow = page.page.locator(f"svg.wf-links path[data-from='{link['span_id']}'][data-to='{retry['span_id']}']")
    assert arrow.count() == 1
    # The critical path runs through the root; the failed span is marked.
    root = page.page.locator(f"[data-span='{story['spans'][0]['span_id']}']")
    assert "on-crit" in (root.get_attribute("class") or "")
    failed = next(s for s, _ in walk(story["spans"]) if s["status"] == "error")
    assert "error" in (page.page.locator(f"[data-span='{failed['span_id']}']").get_attribute("class") or "").split()


def test_collapsing_a_subtree_hides_its_spans(page: Watched, demo: dict[str, Any]) -> None:
    story = demo["story"]
    page.goto(f"/trace/{demo['trace_id']}", ready="story")
    orders = next(s for s, _ in walk(story["spans"]) if s["name"] == "POST /orders")
    hidden = {s["span_id"] for s, _ in walk(orders["children"])}
    assert hidden
    page.page.click(f"[data-span='{orders['span_id']}'] .wf-toggle")
    visible = {span_id for span_id, _ in span_rows(page)}
    assert orders["span_id"] in visible and not (visible & hidden)
    page.page.click(f"[data-span='{orders['span_id']}'] .wf-toggle")
    assert hidden <= {span_id for span_id, _ in span_rows(page)}


def test_clicking_a_log_line_shows_its_code(page: Watched, demo: dict[str, Any]) -> None:
    story = demo["story"]
    log = next(r for r in records_of(story) if r["kind"] == "log" and "retrying once" in (r["message"] or ""))
    code = log["code"]
    assert code["file"] == "src/zoomtrace/demo/orders.py"
    page.goto(f"/trace/{demo['trace_id']}", ready="story")
    page.page.click(f"[data-testid=record-row][data-record='{log['id']}']")
    assert text_of(page, "detail-message") == log["message"]
    assert text_of(page, "code-file") == code["file"]
    assert text_of(page, "code-line") == str(code["line"])
    assert text_of(page, "code-commit") == code["commit"][:8]
    assert text_of(page, "code-dirty") == ("dirty" if code["dirty"] else "clean")
    hit = page.page.locator("[data-testid=code-panel] .code-line.hit")
    hit.wait_for()
    assert hit.get_attribute("data-line") == str(code["line"])
    assert 'log.warning("payment for order %s declined, retrying once"' in hit.inner_text()
    assert f"record={log['id']}" in page.page.url
    shot(page, "story.png")


def test_error_frames_open_their_code(page: Watched, demo: dict[str, Any]) -> None:
    story = demo["story"]
    failed = next(s for s, _ in walk(story["spans"]) if s["status"] == "error")
    frame = failed["error"]["frames"][-1]
    page.goto(f"/trace/{demo['trace_id']}?span={failed['span_id']}", ready="story")
    assert text_of(page, "error").startswith("PaymentDeclined: card declined")
    frames = page.page.locator("[data-testid=frames] li")
    assert frames.count() == len(failed["error"]["frames"])
    frames.last.click()
    hit = page.page.locator("[data-testid=frame-code] .code-line.hit")
    hit.wait_for()
    assert hit.get_attribute("data-line") == str(frame["line"])
    assert "raise PaymentDeclined" in hit.inner_text()


def test_filter_the_records_to_errors(page: Watched, demo: dict[str, Any]) -> None:
    story = demo["story"]

    def is_error(r: dict[str, Any]) -> bool:
        return bool(r.get("error")) or r.get("status") == "error" or r.get("level") in ("ERROR", "CRITICAL")

    spans = [s for s, _ in walk(story["spans"])]
    expected = sum(map(is_error, spans)) + sum(map(is_error, records_of(story)))
    assert expected >= 1
    page.goto(f"/trace/{demo['trace_id']}", ready="story")
    page.page.click("[data-testid=errors-only]")
    page.page.wait_for_function(
        f"() => document.querySelectorAll('[data-testid=records] [data-testid=record-row]').length === {expected}"
    )
    total = len(records_of(story)) + len(spans)
    assert text_of(page, "record-count") == f"{expected} of {total}"
    kinds = page.page.eval_on_selector_all(
        "[data-testid=records] [data-testid=record-row]", "rows => rows.map(r => r.textContent)"
    )
    assert any("capture_payment" in k and "error" in k for k in kinds)


def test_lineage_of_a_data_event(page: Watched, demo: dict[str, Any]) -> None:
    story = demo["story"]
    events = {r["type"]: r for r in records_of(story) if r["kind"] == "event"}
    paid, order = events["PaymentCaptured"], events["OrderPlaced"]
    assert paid["sources"] == [order["id"]]
    page.goto(f"/trace/{demo['trace_id']}", ready="story")
    page.page.click(f"[data-testid=record-row][data-record='{paid['id']}']")
    assert text_of(page, "detail-title") == "PaymentCaptured"
    assert json.loads(text_of(page, "payload")) == paid["payload"]
    graph = page.page.locator("[data-testid=lineage]")
    graph.locator("[data-testid=lineage-node]").nth(1).wait_for()
    nodes = graph.locator("[data-testid=lineage-node]")
    assert sorted(nodes.evaluate_all("ns => ns.map(n => n.dataset.record)")) == sorted([paid["id"], order["id"]])
    assert "center" in (graph.locator(f"[data-record='{paid['id']}']").get_attribute("class") or "")
    page.page.wait_for_function("() => document.querySelectorAll('svg.lin-edges path').length === 1")
    graph.locator(f"[data-record='{order['id']}']").click()
    page.page.wait_for_function(
        "() => document.querySelector('[data-testid=detail-title]').textContent === 'OrderPlaced'"
    )
    # OrderPlaced's own lineage shows PaymentCaptured downstream.
    page.page.locator(f"[data-testid=lineage] [data-record='{paid['id']}']").wait_for()


def test_cpu_time_is_never_shown_above_the_wall_time(page: Watched, demo: dict[str, Any]) -> None:
    """Spans recorded before the fix of issue 11 may hold more CPU than wall time: the panel does not claim it."""
    story = demo["story"]
    busy = next(s for s, _ in walk(story["spans"]) if s.get("cpu_ns"))
    page.goto(f"/trace/{demo['trace_id']}?span={busy['span_id']}", ready="story")
    shown = text_of(page, "span-cpu")
    percent = int(shown.rsplit("(", 1)[1].split("%")[0])
    assert 0 <= percent <= 100, shown
    texts = page.page.evaluate(
        "async () => { const {cpuText} = await import('/static/js/detail.js');"
        " return [cpuText(327000, 292000), cpuText(146000, 292000), cpuText(5, 0)]; }"
    )
    assert "%" not in texts[0] and "all of its wall time" in texts[0] and "327" in texts[0]
    assert texts[1] == "146 µs (50% of wall time)" and texts[2] == "5 ns"


def test_short_record_ids_differ_within_one_moment(open_page: Callable[..., Watched], burst: dict[str, Any]) -> None:
    """A UUIDv7 starts with its millisecond: short ids show its random end, so records of one moment differ."""
    items, batch, report = burst["items"], burst["batch"], burst["report"]
    assert len({i[:13] for i in items}) < len(items)  # the former short form: alike within a millisecond
    burst_page = open_page(burst["url"])
    page = burst_page.page
    burst_page.goto(f"/trace/{burst['trace_id']}?record={batch}", ready="story")
    nodes = page.locator("[data-testid=lineage] [data-testid=lineage-node]")
    nodes.nth(len(items) + 1).wait_for()  # the items, the batch, the report
    sources = page.locator("[data-testid=detail] [data-testid=source]").evaluate_all(
        "els => els.map(e => [e.title, e.textContent])"
    )
    assert sorted(full for full, _ in sources) == sorted(items)  # the full id stays in the title
    shown = nodes.evaluate_all(
        "ns => ns.map(n => [n.dataset.record, n.querySelector('[data-testid=short-id]').textContent])"
    )
    assert sorted(full for full, _ in shown) == sorted([*items, batch, report])
    short = [text.rsplit("(", 1)[1].rstrip(")") for _, text in sources] + [s for _, s in shown]
    assert len(set(short)) == len({*items, batch, report}), "two records of the story look alike"
    assert all(full.endswith(s) for full, s in zip([f for f, _ in sources] + [f for f, _ in shown], short, strict=True))


LINEAGE_GEOMETRY = """(id) => {
  const panel = document.querySelector('[data-testid=detail]');
  const p = panel.getBoundingClientRect();
  const left = p.left + panel.clientLeft, right = left + panel.clientWidth;
  const graph = document.querySelector('[data-testid=lineage] .lineage');
  const node = graph.querySelector(`[data-record="${id}"]`).getBoundingClientRect();
  const idsWhole = [...graph.querySelectorAll('[data-testid=lineage-node]')].every((n) => {
    const b = n.getBoundingClientRect(), r = n.querySelector('[data-testid=short-id]').getBoundingClientRect();
    return r.left >= b.left && r.right <= b.right;
  });
  const fits = left <= node.left && node.right <= right && graph.scrollWidth <= graph.clientWidth && idsWhole;
  return {fits, left, right, node: [node.left, node.right], scroll: [graph.scrollWidth, graph.clientWidth], idsWhole};
}"""


def lineage_fits(page: Watched, record_id: str) -> None:
    """The lineage graph lies within the detail panel's visible box: nothing cut off, no sideways scroll."""
    try:  # the edges are redrawn when the panel resizes
        page.page.wait_for_function(f"(id) => ({LINEAGE_GEOMETRY})(id).fits", arg=record_id, timeout=5000)
    except Exception:
        geometry = page.page.evaluate(LINEAGE_GEOMETRY, record_id)
        raise AssertionError(f"the lineage graph does not fit the detail panel: {geometry}") from None


def test_lineage_fits_the_detail_panel_and_the_panel_resizes(
    open_page: Callable[..., Watched], burst: dict[str, Any]
) -> None:
    burst_page = open_page(burst["url"])
    page = burst_page.page
    burst_page.goto(f"/trace/{burst['trace_id']}?record={burst['batch']}", ready="story")
    page.locator(f"[data-testid=lineage] [data-record='{burst['report']}']").wait_for()
    panel = page.locator("[data-testid=detail]")
    # Sources, this, derived: the derived column is within the panel at its default width.
    lineage_fits(burst_page, burst["report"])
    default = panel.bounding_box()["width"]
    # Dragging the handle to the left widens the panel by as much; the width is remembered.
    handle = page.locator("[data-testid=detail-resize]")
    box = handle.bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + 40
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x - 200, y, steps=5)
    page.mouse.up()
    assert panel.bounding_box()["width"] == pytest.approx(default + 200, abs=1)
    shot(burst_page, "detail-wide.png")
    burst_page.goto(f"/trace/{burst['trace_id']}?record={burst['report']}", ready="story")
    assert panel.bounding_box()["width"] == pytest.approx(default + 200, abs=1)
    # The keyboard: ← widens, → narrows, End is the narrowest, where the graph still fits.
    handle.focus()
    page.keyboard.press("ArrowLeft")
    assert panel.bounding_box()["width"] == pytest.approx(default + 240, abs=1)
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    assert panel.bounding_box()["width"] == pytest.approx(default + 160, abs=1)
    assert handle.get_attribute("aria-valuenow") == str(round(panel.bounding_box()["width"]))
    page.keyboard.press("End")
    assert panel.bounding_box()["width"] == pytest.approx(320, abs=1)
    page.locator(f"[data-testid=lineage] [data-record='{burst['batch']}']").wait_for()
    lineage_fits(burst_page, burst["batch"])  # the sources column of the report
    handle.dblclick()  # back to the default
    assert panel.bounding_box()["width"] == pytest.approx(default, abs=1)


def test_node_panel(page: Watched, demo: dict[str, Any]) -> None:
    story = demo["story"]
    billing = next(n for n in story["nodes"] if n["service"] == "billing")
    page.goto(f"/trace/{demo['trace_id']}", ready="story")
    page.page.locator("[data-testid=node-chip]", has_text="billing").click()
    panel = page.page.locator("[data-testid=detail] [data-testid=node-panel]").inner_text()
    for value in (
        billing["host"],
        str(billing["pid"]),
        billing["version"],
        billing["commit"][:8],
        "SIGTERM",
        billing["node_id"],
    ):
        assert value in panel


def test_untrusted_text_is_rendered_as_text(page: Watched, demo: dict[str, Any]) -> None:
    page.goto("/", ready="traces")
    row = page.page.locator(f"[data-testid=trace-row][data-trace='{demo['hostile']}'] .root-name")
    assert row.inner_text() == XSS_SPAN
    page.goto(f"/trace/{demo['hostile']}", ready="story")
    line = page.page.locator(".rl-msg", has_text="onerror")
    assert line.inner_text() == XSS
    line.click()
    assert text_of(page, "detail-message") == XSS
    assert text_of(page, "story-title") == XSS_SPAN
    page.page.locator(".rl-row.k-event").click()
    assert text_of(page, "detail-title") == "Evil<i>Event</i>"
    assert json.loads(text_of(page, "payload")) == {"html": "<iframe src=javascript:alert(4)>"}
    page.page.wait_for_timeout(300)  # give any injected handler the chance to fire (it must not)
    injected = page.page.evaluate(
        "() => document.querySelectorAll('img[src=x], iframe, svg[onload], main script').length"
        " + [...document.querySelectorAll('b, i')].filter(e => ['bold', 'Event'].includes(e.textContent)).length"
    )
    assert injected == 0


def test_nodes_page(page: Watched, demo: dict[str, Any]) -> None:
    page.goto("/nodes")
    page.page.wait_for_selector("[data-testid=node-row]")
    rows = page.page.locator("[data-testid=node-row]")
    assert rows.count() == 4  # gateway, orders, billing and the hostile script
    text = page.page.locator("[data-testid=nodes]").inner_text()
    assert text.count("SIGTERM") == 2 and "normal exit" in text
    commit = demo["story"]["nodes"][0]["commit"][:8]
    assert commit in page.page.locator("[data-testid=commits]").inner_text()
    shot(page, "nodes.png")


def test_nodes_page_says_what_is_dirty_per_node(open_page: Callable[..., Watched], fleet: dict[str, Any]) -> None:
    """Only the run with a modified file is dirty, and it names the file (issue 11: every run was "dirty 1",
    counting the spool files that earlier runs had left in the home inside the repository)."""
    page = open_page(fleet["url"])
    api = page.page.request.get(fleet["url"] + "/api/nodes").json()["nodes"]
    by_service = {n["service"]: n for n in api}
    assert set(by_service) == {fleet["dirty"], fleet["clean"]}
    root = str(fleet["repo"].resolve())
    assert [(r["root"], r["dirty"]) for r in by_service[fleet["dirty"]]["repos"]] == [(root, ["pkg/work.py"])]
    assert [(r["root"], r["dirty"]) for r in by_service[fleet["clean"]]["repos"]] == [(root, [])]
    page.goto("/nodes")
    page.page.wait_for_selector("[data-testid=node-row]")
    dirty = page.page.locator(f"[data-testid=node-row][data-node='{by_service[fleet['dirty']]['node_id']}']")
    clean = page.page.locator(f"[data-testid=node-row][data-node='{by_service[fleet['clean']]['node_id']}']")
    assert clean.locator("[data-testid=node-dirty]").count() == 0
    badge = dirty.locator("[data-testid=node-dirty]")
    summary = badge.locator("summary")
    assert summary.inner_text().strip().lower().startswith("dirty 1")
    assert "pkg/work.py" in (summary.get_attribute("title") or "")  # the names on hover
    summary.click()  # ...and in the list it opens
    assert badge.locator("li").all_inner_texts() == ["pkg/work.py"]
    where = page.page.locator("[data-testid=commits]").inner_text()
    assert f"{fleet['dirty']}@" in where and f"{fleet['clean']}@" in where
    assert where.count("(dirty)") == 1
    shot(page, "nodes-dirty.png")


NODES_FIT = """() => {
  const doc = document.documentElement;
  const wider = (e) => e.scrollWidth > e.clientWidth;
  const cut = [...document.querySelectorAll('[data-testid=nodes] .one-line')].filter(wider);
  return {
    services: [...document.querySelectorAll('[data-testid=nodes] .service')].map((e) => [e.textContent, wider(e)]),
    scroll: [doc.scrollWidth, doc.clientWidth],
    overflowing: [...document.querySelectorAll('[data-testid=node-row] td')]
      .filter((td) => td.scrollWidth > td.clientWidth).map((td) => td.textContent),
    cut: cut.map((e) => [e.textContent, e.title]),
  };
}"""


@pytest.mark.parametrize("width", [1500, 900])
def test_nodes_page_fits_the_window(open_page: Callable[..., Watched], fleet: dict[str, Any], width: int) -> None:
    """No sideways page scroll (issue 11: at 1500 px), long values wrapped or cut with the whole value in a title."""
    page = open_page(fleet["url"], width=width)
    page.goto("/nodes")
    page.page.wait_for_selector("[data-testid=node-row]")
    fit = page.page.evaluate(NODES_FIT)
    assert fit["scroll"][0] <= fit["scroll"][1], f"the nodes page scrolls sideways at {width} px: {fit}"
    assert fit["overflowing"] == [], "a cell's content is wider than the cell"
    assert all(text == title for text, title in fit["cut"]), fit["cut"]
    # The service names wrap, whole; the branch is cut, whole in its title.
    assert sorted(fit["services"]) == [[fleet["clean"], False], [fleet["dirty"], False]]
    assert [title for _, title in fit["cut"] if title.startswith("feature/")] == [LONG_BRANCH, LONG_BRANCH]
    shot(page, f"nodes-{width}.png")


# -- scale -----------------------------------------------------------------------------------------


def test_a_20000_span_trace_opens_and_scrolls(browser: Any, big: dict[str, Any]) -> None:
    """No timing is asserted here; bench/ui_bench.py measures it."""
    from zoomtrace.ui.server import background

    (summary,) = h.cli_json(big["home"], "traces")
    assert summary["span_count"] == 20_000
    total = summary["record_count"]
    assert total == 100_000
    context = browser.new_context(viewport={"width": 1600, "height": 1000})
    with background(big["home"]) as server:
        watched = Watched(context.new_page(), server.url.rstrip("/"))
        try:
            watched.goto(f"/trace/{big['trace_id']}", ready="story")
            assert text_of(watched, "stat-spans").startswith("20,000")
            assert text_of(watched, "record-count") == f"{total:,}"
            in_dom = watched.page.locator("[data-testid=span-row]").count()
            assert 0 < in_dom < 200, f"{in_dom} span rows in the DOM: the waterfall is not virtualised"
            assert watched.page.locator("[data-testid=record-row]").count() < 200
            # Scroll to the end: the last span of the tree is drawn.
            watched.page.eval_on_selector(".wf-body", "b => { b.scrollTop = b.scrollHeight; }")
            watched.page.wait_for_function(
                "() => [...document.querySelectorAll('[data-testid=span-row]')]"
                ".some(r => Number(r.style.top.replace('px', '')) >= (20000 - 1) * 24)"
            )
            assert watched.page.locator("[data-testid=span-row]").count() < 200
            shot(watched, "big-trace.png")
        finally:
            context.close()
    assert watched.dialogs == [] and watched.errors == []
