"""The viewer's Errors and Changes pages, and "this location in other commits", in a real browser (issue 15, item 4).

A real git repository holds a service run at commit A, then at commit B where ``pack`` got slower and ``check``
logs a new exception whose message is hostile HTML; a real uvicorn server serves the home to Debian's Chromium
driven by Playwright. Any dialog or uncaught page error fails the test.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

try:
    import helpers as h
except ImportError:  # tests/ imported as a package
    from tests import helpers as h

pytestmark = pytest.mark.browser

XSS = "<img src=x onerror=alert(1)>"

MAIN = """
import sys

import zoomtrace as zt
from shop import work

zt.init("shop")
for i in range(int(sys.argv[1])):
    with zt.span("request"):
        work.pack(i)
        work.check(i)
"""

WORK = """
import time

import zoomtrace as zt


def pack(i):
    with zt.span("pack"):
        time.sleep({pack})


def check(i):
    with zt.span("check"):
        try:
            {check}
        except LookupError:
            zt.log.exception("no stock for item {{item}}", item=i)
"""

RUNS = 40


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    from zoomtrace.ui.server import background

    root = tmp_path_factory.mktemp("ui-changes")
    repo, home = root / "repo", root / "home"
    files = {"main.py": MAIN, "shop/__init__.py": "", "shop/work.py": WORK.format(pack="0.003", check="pass")}
    commit_a = h.make_repo(repo, {**files, ".gitignore": "__pycache__/\n"})
    h.run_script(repo / "main.py", home, str(RUNS))
    h.write_files(repo, {"shop/work.py": WORK.format(pack="0.012", check=f"{{}}[{XSS!r}]")})
    h.git(repo, "commit", "-qam", "slower pack, check raises")
    commit_b = h.git(repo, "rev-parse", "HEAD")
    h.run_script(repo / "main.py", home, str(RUNS))
    with background(home, code_roots=[repo]) as running:
        yield {"home": home, "url": running.url.rstrip("/"), "a": commit_a, "b": commit_b}


@pytest.fixture
def page(browser: Any, shop: dict[str, Any]) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1500, "height": 1000})
    page = context.new_page()
    dialogs: list[str] = []
    errors: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        yield page
    finally:
        context.close()
    assert dialogs == [], f"a dialog opened: untrusted text ran as code: {dialogs}"
    assert errors == [], f"uncaught errors in the page: {errors}"


def _api(shop: dict[str, Any], path: str, **params: str) -> Any:
    with urllib.request.urlopen(f"{shop['url']}{path}?{urllib.parse.urlencode(params)}", timeout=30) as r:
        return json.loads(r.read())


def test_errors_page_shows_the_new_group_and_its_commit(page: Any, shop: dict[str, Any]) -> None:
    page.goto(shop["url"] + "/errors")
    page.wait_for_selector("main[data-ready=errors]")
    rows = page.locator("[data-testid=error-group]")
    assert rows.count() == 1
    assert rows.locator("[data-testid=group-title]").text_content() == "KeyError: no stock for item {item}"
    assert rows.locator("[data-testid=new-in]").text_content() == f"new in {shop['b'][:8]}"
    assert rows.locator("[data-testid=group-where]").text_content().startswith("shop/work.py:")
    assert XSS in str(rows.text_content())  # the exception's message, as text
    assert page.locator("main img[src=x]").count() == 0
    page.locator("[data-testid=seen-trace]").first.click()
    page.wait_for_selector("main[data-ready=story]")


def test_changes_page_names_the_slower_location_and_opens_traces_before_and_after(
    page: Any, shop: dict[str, Any]
) -> None:
    page.goto(shop["url"] + "/changes")
    page.wait_for_selector("main[data-ready=changes]")
    findings = page.locator("[data-testid=finding]")
    kinds = sorted(findings.nth(i).get_attribute("data-kind") for i in range(findings.count()))
    assert kinds == ["latency", "new_error"]
    slower = page.locator("[data-testid=finding][data-kind=latency]")
    assert slower.locator("[data-testid=finding-span]").text_content() == "pack"
    assert slower.locator("[data-testid=finding-where]").text_content() == "shop/work.py · pack"
    assert shop["b"][:8] in str(slower.locator("[data-testid=finding-after]").text_content())
    assert page.locator("[data-testid=commit]").count() == 2
    slower.locator("[data-testid=show-samples]").click()
    columns = slower.locator(".sample-col")
    columns.first.locator("[data-testid=sample-trace]").first.wait_for()
    assert columns.count() == 2
    assert [columns.nth(i).locator("[data-testid=sample-trace]").count() for i in range(2)] == [5, 5]
    columns.nth(1).locator("[data-testid=sample-trace]").first.click()
    page.wait_for_selector("main[data-ready=story]")
    assert page.locator("[data-testid=detail-title]").text_content() == "pack"


def test_a_span_shows_its_location_in_other_commits(page: Any, shop: dict[str, Any]) -> None:
    location = {"service": "shop", "span": "pack", "file": "shop/work.py", "function": "pack"}
    samples = _api(shop, "/api/location/samples", **location, before=shop["a"], after=shop["b"])
    slowest = samples["after"][0]
    page.goto(f"{shop['url']}/trace/{slowest['trace_id']}?span={slowest['span_id']}")
    page.wait_for_selector("main[data-ready=story]")
    rows = page.locator("[data-testid=location-version]")
    rows.first.wait_for()
    assert rows.count() == 2
    versions = _api(shop, "/api/location", **location)
    assert [v["commit"] for v in versions] == [shop["a"], shop["b"]]
    assert [v["count"] for v in versions] == [RUNS, RUNS]
    texts = [str(rows.nth(i).text_content()) for i in range(2)]
    assert [shop["a"][:8] in texts[0], shop["b"][:8] in texts[1]] == [True, True]
    assert rows.nth(1).get_attribute("class") == "current"


def test_the_location_api_says_what_is_missing(shop: dict[str, Any]) -> None:
    for path, params in (
        ("/api/location", {"file": "shop/work.py"}),
        ("/api/location/samples", {"span": "pack", "before": "not-hex", "after": shop["b"], "service": "shop"}),
    ):
        with pytest.raises(urllib.error.HTTPError) as caught:
            _api(shop, path, **params)
        assert caught.value.code == 400
        assert json.loads(caught.value.read())["error"]
