"""The web viewer's JSON API, on a real store recorded by real instrumented code.

A git repository holds a small shop (``app.py`` and ``lib/util.py``). After the commit
``lib/util.py`` is modified, so it is *dirty*: its records must show the snapshot of
the file as it ran, not the committed version. The app runs as a child process; the
viewer then answers through Starlette's TestClient (and, for the access checks that
depend on the listening address, through a real uvicorn server).
"""

from __future__ import annotations

import os
import re
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from zoomtrace.ui import create_app
from zoomtrace.ui.app import STATIC
from zoomtrace.ui.server import background, is_loopback

try:
    import helpers as h
except ImportError:  # tests/ imported as a package
    from tests import helpers as h

XSS = "<img src=x onerror=alert(1)>"

APP = """
import json
import logging
import time

import zoomtrace as zt
from lib import util

log = logging.getLogger("shop")


def main():
    zt.init("shop", env="test", group="ui", version="3.1.0")
    with zt.span("checkout", on_behalf_of="tenant-7", customer="ada") as root:  # @checkout
        log.info("checkout for %s", "ada")  # @log-checkout
        order = zt.event({"order": 1, "total": 9.5}, type="OrderPlaced")  # @event-order
        with zt.span("charge", attempt=1) as first:
            try:
                util.charge(declined=True)
            except util.Declined:
                log.warning("charge declined, retrying")  # @log-declined
        with zt.span("charge.retry", follows_from=first, attempt=2) as retry:
            util.charge(declined=False)
            paid = zt.event({"order": 1, "paid": True}, type="PaymentCaptured", sources=[order])  # @event-paid
        receipt = zt.event({"order": 1, "mailed": True}, type="ReceiptSent", sources=[paid])
        zt.log.info(XSS)  # @log-xss
    jobs = []
    for n in range(7):
        time.sleep(0.002)
        with zt.span("job", n=n) as job:
            log.info("job %d done", n)
        jobs.append(job.trace_id)
    print("RESULT " + json.dumps({"trace_id": root.trace_id, "checkout": root.span_id, "charge": first.span_id,
                                  "retry": retry.span_id, "order": order, "paid": paid, "receipt": receipt,
                                  "jobs": jobs}), flush=True)


XSS = "<img src=x onerror=alert(1)>"
main()
"""

UTIL_COMMITTED = """
import logging

import zoomtrace as zt

log = logging.getLogger("shop.util")


class Declined(Exception):
    pass


@zt.traced("capture")
def charge(declined):
    if declined:
        raise Declined("card declined by issuer")
    log.info("captured")
"""

# The version that runs: two lines added on top shift everything, so a viewer showing the
# committed file instead of the snapshot would point at the wrong lines.
UTIL_DIRTY = """
# Edited after the commit: this process runs uncommitted code.
# (and the viewer must show this version)
import logging

import zoomtrace as zt

log = logging.getLogger("shop.util")


class Declined(Exception):
    pass


@zt.traced("capture")
def charge(declined):
    if declined:
        raise Declined("card declined by issuer")  # @raise
    log.info("captured")  # @log-captured
"""


class Shop:
    def __init__(self, repo: Path, home: Path, head: str, result: dict[str, Any]) -> None:
        self.repo, self.home, self.head, self.result = repo, home, head, result

    @property
    def trace_id(self) -> str:
        return str(self.result["trace_id"])

    def line(self, file: str, marker: str) -> int:
        return h.marker_line(self.repo / file, marker)


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Shop:
    base = tmp_path_factory.mktemp("ui-api")
    repo, home = base / "shop", base / "home"
    head = h.make_repo(repo, {"app.py": APP, "lib/__init__.py": "", "lib/util.py": UTIL_COMMITTED})
    h.write_files(repo, {"lib/util.py": UTIL_DIRTY})
    child = h.run_script(repo / "app.py", home)
    return Shop(repo, home, head, h.result(child))


@pytest.fixture(scope="module")
def client(shop: Shop) -> TestClient:
    return TestClient(create_app(shop.home, code_roots=[shop.repo]), base_url="http://127.0.0.1:8087")


def get(client: TestClient, path: str, status: int = 200, **params: Any) -> Any:
    response = client.get(path, params=params)
    assert response.status_code == status, f"GET {path} {params}: {response.status_code} {response.text}"
    assert response.headers["content-type"].startswith("application/json")
    return response.json()


def walk(spans: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    stack = list(reversed(spans))
    while stack:
        s = stack.pop()
        out.append(s)
        stack.extend(reversed(s["children"]))
    return out


def find_record(story: dict[str, Any], pred: Any) -> dict[str, Any]:
    hits = [r for s in walk(story["spans"]) for r in s["records"] if pred(r)] + [r for r in story["records"] if pred(r)]
    assert len(hits) == 1, hits
    return hits[0]


# -- traces ----------------------------------------------------------------------------------


def test_traces_are_newest_first_and_pages_cover_them_exactly_once(client: TestClient, shop: Shop) -> None:
    full = get(client, "/api/traces", limit=100)
    ids = [t["trace_id"] for t in full["traces"]]
    assert full["has_more"] is False
    assert set(ids) == {shop.trace_id, *shop.result["jobs"]}
    # The jobs ran one after the other: newest first means the last job first, the checkout last.
    assert ids == [*reversed(shop.result["jobs"]), shop.trace_id]
    starts = [t["start_ns"] for t in full["traces"]]
    assert starts == sorted(starts, reverse=True)

    paged: list[str] = []
    offset = 0
    while True:
        page = get(client, "/api/traces", limit=3, offset=offset)
        assert page["limit"] == 3 and page["offset"] == offset
        paged += [t["trace_id"] for t in page["traces"]]
        if not page["has_more"]:
            break
        offset += 3
    assert paged == ids


def test_trace_summary_row(client: TestClient, shop: Shop) -> None:
    rows = get(client, "/api/traces", limit=100)["traces"]
    row = next(t for t in rows if t["trace_id"] == shop.trace_id)
    assert row["root_name"] == "checkout"
    assert row["services"] == ["shop"]
    assert row["error"] is True
    # checkout, charge, capture (declined), charge.retry, capture
    assert row["span_count"] == 5
    assert row["event_count"] == 3
    assert row["duration_ns"] > 0


def test_trace_filters(client: TestClient, shop: Shop) -> None:
    errors = get(client, "/api/traces", errors="1")["traces"]
    assert [t["trace_id"] for t in errors] == [shop.trace_id]
    text = get(client, "/api/traces", text="declined")["traces"]
    assert [t["trace_id"] for t in text] == [shop.trace_id]
    assert len(get(client, "/api/traces", service="shop", env="test")["traces"]) == 8
    assert get(client, "/api/traces", service="nobody")["traces"] == []
    assert get(client, "/api/traces", min="1h")["traces"] == []
    assert len(get(client, "/api/traces", max="1h", since="1h")["traces"]) == 8
    assert get(client, "/api/traces", until="2001-01-01T00:00")["traces"] == []


def test_bad_filters_are_one_clear_message(client: TestClient) -> None:
    body = get(client, "/api/traces", 400, min="soon")
    assert "not a duration" in body["error"]
    body = get(client, "/api/traces", 400, limit="lots")
    assert "limit" in body["error"]
    body = get(client, "/api/traces", 400, limit="100000")
    assert "limit" in body["error"]


# -- story, records, lineage ---------------------------------------------------------------------


def test_story_is_the_store_shape(client: TestClient, shop: Shop) -> None:
    story = get(client, f"/api/trace/{shop.trace_id}")
    assert story["trace_id"] == shop.trace_id
    (root,) = story["spans"]
    assert root["span_id"] == shop.result["checkout"]
    assert root["on_behalf_of"] == "tenant-7"
    assert [c["name"] for c in root["children"]] == ["charge", "charge.retry"]
    retry = root["children"][1]
    assert retry["links"] == [{"trace_id": shop.trace_id, "span_id": shop.result["charge"]}]
    (declined,) = root["children"][0]["children"]
    assert declined["name"] == "capture" and declined["status"] == "error"
    assert declined["error"]["type"] == "Declined"
    assert [n["service"] for n in story["nodes"]] == ["shop"]
    assert story["nodes"][0]["commit"] == shop.head
    xss = find_record(story, lambda r: r.get("message") == XSS)
    assert xss["kind"] == "log"


def test_unknown_and_malformed_ids(client: TestClient) -> None:
    assert "no trace" in get(client, "/api/trace/" + "ab" * 16, 404)["error"]
    assert "not a valid" in get(client, "/api/trace/%3Cscript%3E", 400)["error"]
    assert get(client, "/api/record/01234567-89ab-7def-8000-000000000000", 404)["error"]
    assert get(client, "/api/nothing-here", 404)["error"] == "no such API endpoint"


def test_record_and_lineage(client: TestClient, shop: Shop) -> None:
    paid = get(client, f"/api/record/{shop.result['paid']}")
    assert paid["type"] == "PaymentCaptured"
    assert paid["payload"] == {"order": 1, "paid": True}
    assert paid["sources"] == [shop.result["order"]]
    lineage = get(client, f"/api/lineage/{shop.result['paid']}")
    assert lineage["record"]["id"] == shop.result["paid"]
    assert [r["id"] for r in lineage["upstream"]] == [shop.result["order"]]
    assert [r["id"] for r in lineage["downstream"]] == [shop.result["receipt"]]


def test_nodes(client: TestClient, shop: Shop) -> None:
    body = get(client, "/api/nodes")
    (node,) = body["nodes"]
    assert node["service"] == "shop" and node["version"] == "3.1.0"
    assert node["commit"] == shop.head
    assert node["stop_cause"] == "exit"
    assert node["span_count"] == 5 + 7
    assert any("lib/util.py" in (repo.get("dirty") or []) for repo in node["repos"])


# -- the code panel ------------------------------------------------------------------------------


def code_of(client: TestClient, record: dict[str, Any], node_id: str, **extra: Any) -> dict[str, Any]:
    c = record["code"]
    params = {
        "file": c["file"],
        "line": c["line"],
        "node": node_id,
        "commit": c["commit"],
        "dirty": "1" if c["dirty"] else "0",
        **extra,
    }
    return get(client, "/api/code", **params)  # type: ignore[no-any-return]


def line_text(src: dict[str, Any], line: int) -> str:
    return str(src["lines"][line - src["start"]])


def test_code_of_a_clean_file_comes_from_the_commit(client: TestClient, shop: Shop) -> None:
    story = get(client, f"/api/trace/{shop.trace_id}")
    node_id = story["nodes"][0]["node_id"]
    log = find_record(story, lambda r: r.get("message") == "checkout for ada")
    assert log["code"]["file"] == "app.py" and log["code"]["dirty"] is False
    line = shop.line("app.py", "log-checkout")
    assert log["code"]["line"] == line
    src = code_of(client, log, node_id)
    assert src["origin"] == "git" and src["problem"] is None
    assert src["commit"] == shop.head
    assert Path(src["repo"]).resolve() == shop.repo.resolve()
    assert 'log.info("checkout for %s", "ada")' in line_text(src, line)
    assert src["start"] == line - 12 and len(src["lines"]) == 25


def test_code_of_a_dirty_file_is_the_snapshot_that_ran(client: TestClient, shop: Shop) -> None:
    story = get(client, f"/api/trace/{shop.trace_id}")
    node_id = story["nodes"][0]["node_id"]
    captured = find_record(story, lambda r: r.get("message") == "captured")
    assert captured["code"]["file"] == "lib/util.py" and captured["code"]["dirty"] is True
    line = shop.line("lib/util.py", "log-captured")
    assert captured["code"]["line"] == line
    src = code_of(client, captured, node_id, context=3)
    assert src["origin"] == "snapshot", src
    assert re.fullmatch(r"[0-9a-f]{64}", src["snapshot"])
    assert 'log.info("captured")' in line_text(src, line)
    # The committed file has a different line there: the snapshot really is what ran.
    committed = h.git(shop.repo, "show", f"{shop.head}:lib/util.py").splitlines()
    assert 'log.info("captured")' not in (committed[line - 1] if line <= len(committed) else "")


def test_code_of_an_error_frame_is_resolved_from_the_node(client: TestClient, shop: Shop) -> None:
    """Frames carry only file and line: the node's repositories say which commit and whether dirty."""
    story = get(client, f"/api/trace/{shop.trace_id}")
    node_id = story["nodes"][0]["node_id"]
    declined = next(s for s in walk(story["spans"]) if s["status"] == "error")
    frame = declined["error"]["frames"][-1]
    assert frame["file"] == "lib/util.py"
    assert frame["line"] == shop.line("lib/util.py", "raise")
    src = get(client, "/api/code", file=frame["file"], line=frame["line"], node=node_id)
    assert src["dirty"] is True and src["origin"] == "snapshot"
    assert 'raise Declined("card declined by issuer")' in line_text(src, frame["line"])
    first = declined["error"]["frames"][0]
    assert first["file"] == "app.py"
    src = get(client, "/api/code", file=first["file"], line=first["line"], node=node_id)
    assert src["dirty"] is False and src["origin"] == "git" and src["commit"] == shop.head
    assert "util.charge(declined=True)" in line_text(src, first["line"])


@pytest.mark.parametrize("path", ["../../../../etc/passwd", "/etc/passwd", "lib/../../x.py", "-p", "a\\b.py"])
def test_code_never_reads_outside_the_repository(client: TestClient, shop: Shop, path: str) -> None:
    story = get(client, f"/api/trace/{shop.trace_id}")
    node_id = story["nodes"][0]["node_id"]
    src = get(client, "/api/code", file=path, line=1, node=node_id, commit=shop.head)
    assert src["lines"] == [] and src["origin"] is None
    assert src["problem"]


def test_code_with_an_unknown_commit_says_so(client: TestClient, shop: Shop) -> None:
    story = get(client, f"/api/trace/{shop.trace_id}")
    node_id = story["nodes"][0]["node_id"]
    src = get(client, "/api/code", file="app.py", line=3, node=node_id, commit="0" * 40, dirty="0")
    assert src["lines"] == [] and "not in the repositories" in src["problem"]
    src = get(client, "/api/code", file="app.py", line=3, node=node_id, commit="not-a-commit", dirty="0")
    assert src["lines"] == [] and "not a commit id" in src["problem"]
    assert "file is required" in get(client, "/api/code", 400, line=3)["error"]


# -- what the viewer may read: a record does not widen it (issue 12, item 10) ---------------------

SECRET = "the-secret-of-another-repository"


@pytest.fixture(scope="module")
def elsewhere(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Git repositories the viewer's user can read but no operator allowed: one alone, and one whose
    subdirectory ``sub`` is allowed while its top holds a secret."""
    base = tmp_path_factory.mktemp("elsewhere")
    secret_head = h.make_repo(base / "secret", {"secret.txt": SECRET + "\n"})
    big_head = h.make_repo(base / "big", {"secret.txt": SECRET + "\n", "sub/ok.txt": "fine\n"})
    return {"base": base, "secret": base / "secret", "head": secret_head, "big": base / "big", "big_head": big_head}


def forge_node(home: Path, roots: list[str], head: str) -> str:
    """A node record naming ``roots`` as its repositories, written into ``home``'s spool as any process could."""
    import time

    from zoomtrace.wire.record import Record, encoder, uuid7
    from zoomtrace.wire.spool import SegmentWriter

    ts = time.time_ns()
    node_id = uuid7(ts)
    repos = [{"root": root, "head": head, "branch": "main", "dirty": [], "problem": None} for root in roots]
    record = Record(
        id=uuid7(ts),
        kind="node",
        type="started",
        ts_ns=ts,
        node_id=node_id,
        attrs={"service": "forged", "host": "h", "pid": 1, "repos": repos, "commit": head},
    )
    writer = SegmentWriter(home / "spool", node_id)
    writer.write(encoder.encode([record]))
    writer.close()
    return node_id


def test_a_forged_node_record_reads_no_other_repository(tmp_path: Path, shop: Shop, elsewhere: dict[str, Any]) -> None:
    home = tmp_path / "home"
    node = forge_node(home, [str(elsewhere["secret"])], elsewhere["head"])
    client = TestClient(create_app(home, code_roots=[shop.repo]), base_url="http://127.0.0.1:8087")
    assert [n["service"] for n in get(client, "/api/nodes")["nodes"]] == ["forged"]  # ingested, as a page would
    response = client.get(
        "/api/code", params={"file": "secret.txt", "line": 1, "node": node, "commit": elsewhere["head"]}
    )
    assert response.status_code == 200
    assert SECRET not in response.text
    src = response.json()
    assert src["lines"] == [] and src["origin"] is None
    assert "outside the code roots" in src["problem"] and "--code-root" in src["problem"]
    # Allowed by the operator, the same record is read.
    allowed = TestClient(create_app(home, code_roots=[elsewhere["base"]]), base_url="http://127.0.0.1:8087")
    src = get(allowed, "/api/code", file="secret.txt", line=1, node=node, commit=elsewhere["head"])
    assert src["origin"] == "git" and src["lines"] == [SECRET]


def test_a_forged_root_cannot_escape_an_allowed_one(tmp_path: Path, elsewhere: dict[str, Any]) -> None:
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    (allowed / "link").symlink_to(elsewhere["secret"])
    escapes = [
        str(allowed) + "/.." * len(allowed.parts) + str(elsewhere["secret"]),  # up and out with ..
        str(allowed / "link"),  # a symbolic link out of it
        "secret",  # not an absolute path
        str(allowed) + "-sibling",  # a prefix of the name is not a parent
    ]
    home = tmp_path / "home"
    node = forge_node(home, escapes, elsewhere["head"])
    client = TestClient(create_app(home, code_roots=[allowed]), base_url="http://127.0.0.1:8087")
    assert len(get(client, "/api/nodes")["nodes"][0]["repos"]) == len(escapes)
    response = client.get(
        "/api/code", params={"file": "secret.txt", "line": 1, "node": node, "commit": elsewhere["head"]}
    )
    assert SECRET not in response.text and response.json()["lines"] == []


def test_git_stays_in_the_repository_at_the_allowed_root(tmp_path: Path, elsewhere: dict[str, Any]) -> None:
    """An allowed subdirectory of a repository does not open that repository: git does not climb to it."""
    sub = elsewhere["big"] / "sub"
    home = tmp_path / "home"
    node = forge_node(home, [str(sub)], elsewhere["big_head"])
    client = TestClient(create_app(home, code_roots=[sub]), base_url="http://127.0.0.1:8087")
    assert get(client, "/api/nodes")["nodes"][0]["repos"][0]["root"] == str(sub)
    for file in ("secret.txt", "sub/ok.txt", "ok.txt"):
        response = client.get(
            "/api/code", params={"file": file, "line": 1, "node": node, "commit": elsewhere["big_head"]}
        )
        assert SECRET not in response.text and response.json()["lines"] == [], file


def test_code_roots_come_from_the_operator(tmp_path: Path, shop: Shop, monkeypatch: pytest.MonkeyPatch) -> None:
    from zoomtrace.ui.code import CODE_ROOTS_ENV, resolve_code_roots

    outside = tmp_path / "outside"
    outside.mkdir()
    home = tmp_path / "home"
    real = str(shop.repo.resolve())
    # Given (zoomtrace ui --code-root), else the variable, else where the operator works.
    assert resolve_code_roots([shop.repo, shop.repo], home=home, environ={CODE_ROOTS_ENV: "/x"}) == (real,)
    env = {CODE_ROOTS_ENV: f"{shop.repo}{os.pathsep}{outside}"}
    assert resolve_code_roots(None, home=home, environ=env) == (real, str(outside.resolve()))
    assert resolve_code_roots(None, home=home, environ={CODE_ROOTS_ENV: ""}, cwd=shop.repo / "lib") == ()
    assert resolve_code_roots(None, home=home, environ={}, cwd=shop.repo / "lib") == (real,)
    assert resolve_code_roots(None, home=shop.repo / ".zoomtrace", environ={}, cwd=outside) == (real,)
    assert resolve_code_roots(None, home=home, environ={}, cwd=outside) == ()
    # create_app's default is the same rule.
    monkeypatch.delenv(CODE_ROOTS_ENV, raising=False)
    monkeypatch.chdir(outside)
    story = get(TestClient(create_app(shop.home), base_url="http://127.0.0.1:8087"), f"/api/trace/{shop.trace_id}")
    node_id = story["nodes"][0]["node_id"]
    log = find_record(story, lambda r: r.get("message") == "checkout for ada")
    params = {"file": "app.py", "line": log["code"]["line"], "node": node_id, "commit": shop.head, "dirty": "0"}
    src = get(TestClient(create_app(shop.home), base_url="http://127.0.0.1:8087"), "/api/code", **params)
    assert src["lines"] == [] and "outside the code roots" in src["problem"]
    monkeypatch.chdir(shop.repo)
    src = get(TestClient(create_app(shop.home), base_url="http://127.0.0.1:8087"), "/api/code", **params)
    assert src["origin"] == "git"
    monkeypatch.setenv(CODE_ROOTS_ENV, str(outside))
    src = get(TestClient(create_app(shop.home), base_url="http://127.0.0.1:8087"), "/api/code", **params)
    assert src["lines"] == []


def test_zoomtrace_ui_code_root(tmp_path: Path, shop: Shop) -> None:
    """The real command: --code-root is what the code panel reads, and the viewer says so."""
    import json
    import subprocess
    import sys

    outside = tmp_path / "outside"
    outside.mkdir()
    story = h.story(shop.home, shop.trace_id)
    node_id = story["nodes"][0]["node_id"]
    query = f"file=app.py&line=3&node={node_id}&commit={shop.head}&dirty=0"
    for args, readable in (([], False), (["--code-root", str(outside), "--code-root", str(shop.repo)], True)):
        proc = subprocess.Popen(
            [sys.executable, "-m", "zoomtrace", "--home", str(shop.home), "ui", "--port", "0", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=outside,
            env=h.child_env(None),
            preexec_fn=h.as_from_a_terminal,
        )
        try:
            lines = read_until(proc, "(Ctrl-C")
            url = next(x.split()[1] for x in lines if x.strip().startswith("open"))
            code_line = next(x for x in lines if x.strip().startswith("code"))
            with urllib.request.urlopen(f"{url}api/code?{query}", timeout=10) as response:
                src = json.loads(response.read())
        finally:
            stop(proc)
        if readable:
            assert str(shop.repo.resolve()) in code_line and str(outside.resolve()) in code_line
            assert src["origin"] == "git" and src["lines"]
        else:
            assert "none" in code_line
            assert src["lines"] == [] and "outside the code roots" in src["problem"]


def test_installed_code_is_only_a_distribution_s_own_files(client: TestClient) -> None:
    """``dist==version:path`` reads a distribution's module files, not what it installed elsewhere (its scripts)."""
    import importlib.metadata

    dist = importlib.metadata.distribution("pytest")
    script = next(str(f) for f in dist.files or [] if str(f).startswith("../"))  # ../../../bin/pytest
    src = get(client, "/api/code", file=f"pytest=={dist.version}:{script}", line=1)
    assert src["lines"] == [] and src["origin"] is None
    module = next(str(f) for f in dist.files or [] if str(f).endswith("__init__.py"))
    src = get(client, "/api/code", file=f"pytest=={dist.version}:{module}", line=1)
    assert src["origin"] == "installed" and src["lines"]


def test_the_demo_viewer_shows_the_demo_s_code(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``zoomtrace demo --ui``, from a directory in no repository: its code panel still shows the demo's code."""
    import zoomtrace.ui
    from zoomtrace.demo import run_demo

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ZOOMTRACE_CODE_ROOTS", raising=False)
    served: dict[str, Any] = {}

    def serve_and_open(home: Path, trace_id: str, **options: Any) -> None:  # instead of serving until Ctrl-C
        served.update(options, home=home, trace_id=trace_id)

    monkeypatch.setattr(zoomtrace.ui, "serve_and_open", serve_and_open)
    home = tmp_path / "demo-home"
    assert run_demo(home, open_ui=True) == 0
    client = TestClient(create_app(home, code_roots=served["code_roots"]), base_url="http://127.0.0.1:8087")
    story = get(client, f"/api/trace/{served['trace_id']}")
    logs = [r for s in walk(story["spans"]) for r in s["records"] if r["kind"] == "log" and r.get("code")]
    assert logs
    sources = [code_of(client, log, log["node_id"]) for log in logs]
    for src in sources:
        assert src["origin"] in ("git", "snapshot", "installed") and src["lines"], src
    # From a git checkout of Zoom, that is thanks to the demo's own code root: the usual ones here are none.
    from_git = [log for log, src in zip(logs, sources, strict=True) if src["origin"] == "git"]
    if from_git:
        assert str(h.REPO) in served["code_roots"]
        bare = TestClient(create_app(home), base_url="http://127.0.0.1:8087")
        assert code_of(bare, from_git[0], from_git[0]["node_id"])["lines"] == []


# -- read-only, headers, access ------------------------------------------------------------------


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
def test_the_api_is_read_only(client: TestClient, shop: Shop, method: str) -> None:
    for path in ("/api/traces", f"/api/trace/{shop.trace_id}", "/api/nodes", "/api/code"):
        assert client.request(method, path).status_code == 405
    # No SQL from the browser at all.
    assert client.get("/api/sql", params={"q": "SELECT 1"}).status_code == 404


def test_pages_and_assets_are_served_with_a_strict_policy(client: TestClient, shop: Shop) -> None:
    for path in (
        "/",
        "/nodes",
        f"/trace/{shop.trace_id}",
        "/record/x",
        "/static/js/main.js",
        "/static/app.css",
        "/api/traces",
    ):
        response = client.get(path)
        assert response.status_code == 200, path
        csp = response.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "default-src 'none'" in csp and "unsafe" not in csp
        assert response.headers["x-content-type-options"] == "nosniff"
    assert '<script type="module" src="/static/js/main.js">' in client.get("/").text
    assert (
        client.get("/static/js/main.js")
        .headers["content-type"]
        .startswith(("text/javascript", "application/javascript"))
    )


def test_a_story_page_preloads_its_outline_and_no_other_page_does(client: TestClient, shop: Shop) -> None:
    link = client.get(f"/trace/{shop.trace_id}").headers["link"]
    assert link == f"</api/trace/{shop.trace_id}/outline>; rel=preload; as=fetch; crossorigin=anonymous"
    assert (
        client.get(f"/trace/{shop.trace_id[:8].upper()}")
        .headers["link"]
        .startswith(f"</api/trace/{shop.trace_id[:8].upper()}/outline>")
    )
    # Anything but a trace id (or a prefix of one) is never put in a header, whatever the page then says.
    for path in ("/", "/nodes", "/record/x", "/trace/abc", "/trace/%3E%3Cx", "/trace/" + "a" * 33, "/trace/ab%0d%0a"):
        response = client.get(path)
        assert response.status_code == 200 and "link" not in response.headers, path


def test_front_end_builds_no_html_from_strings_and_loads_nothing_remote() -> None:
    """Untrusted text can only become text: no HTML-parsing sink exists in the front end."""
    sinks = re.compile(
        r"innerHTML|outerHTML|insertAdjacentHTML|document\.write|\beval\(|new Function|"
        r"createContextualFragment|DOMParser|srcdoc"
    )
    files = sorted(p for p in STATIC.rglob("*") if p.is_file())
    assert {p.name for p in files} >= {"index.html", "app.css", "main.js", "waterfall.js", "records.js", "detail.js"}
    for path in files:
        text = path.read_text()
        if path.suffix == ".js":
            assert not sinks.search(text), f"{path.name} uses an HTML sink"
        remote = [u for u in re.findall(r"https?://[^\s'\"<>)]+", text) if not u.startswith("http://www.w3.org/")]
        assert remote == [], f"{path.name} refers to {remote}"


def test_only_loopback_host_names_are_answered(client: TestClient) -> None:
    assert client.get("/api/about", headers={"host": "127.0.0.1:8087"}).status_code == 200
    assert client.get("/api/about", headers={"host": "localhost"}).status_code == 200
    # A page on another site that rebinds its own name to 127.0.0.1 gets nothing.
    assert client.get("/api/traces", headers={"host": "attacker.example:8087"}).status_code == 421


def test_a_token_is_required_when_set(shop: Shop) -> None:
    app = create_app(shop.home, token="s3cret-token", allowed_hosts=None)
    anonymous = TestClient(app, base_url="http://10.1.2.3:8087")
    denied = anonymous.get("/api/traces")
    assert denied.status_code == 401 and "token" in denied.text
    assert anonymous.get("/", headers={"authorization": "Bearer wrong"}).status_code == 401
    assert anonymous.get("/api/traces", headers={"authorization": "Bearer s3cret-token"}).status_code == 200

    browser = TestClient(app, base_url="http://10.1.2.3:8087")
    first = browser.get("/trace/abc?token=s3cret-token&span=1", follow_redirects=False)
    assert first.status_code == 303
    assert first.headers["location"] == "/trace/abc?span=1"  # the token leaves the address bar
    cookie = first.headers["set-cookie"]
    assert "httponly" in cookie.lower() and "samesite=strict" in cookie.lower()
    assert browser.get("/api/traces").status_code == 200  # now through the cookie
    assert browser.get("/?token=wrong", follow_redirects=False).status_code == 200  # the cookie still holds


def test_serving_beyond_loopback_generates_a_token(shop: Shop) -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.4")
    with background(shop.home, host="0.0.0.0", port=0) as server:
        assert server.token and len(server.token) >= 24
        port = server.url.rsplit(":", 1)[1].strip("/")
        url = f"http://127.0.0.1:{port}/api/about"
        with pytest.raises(urllib.error.HTTPError) as denied:
            urllib.request.urlopen(url, timeout=10)
        assert denied.value.code == 401
        request = urllib.request.Request(url, headers={"Authorization": f"Bearer {server.token}"})
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200
    with background(shop.home) as server:
        assert server.token is None and server.url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(f"{server.url}api/about", timeout=10) as response:
            assert response.status == 200


# -- live updates --------------------------------------------------------------------------------


LATE = """
import json
import zoomtrace as zt

zt.init("late", env="test")
with zt.span("late-arrival") as s:
    zt.log.info("arrived late")
print("RESULT " + json.dumps({"trace_id": s.trace_id}), flush=True)
"""


def test_pulse_changes_when_records_arrive(tmp_path: Path, shop: Shop) -> None:
    home = tmp_path / "home"
    script = tmp_path / "late.py"
    script.write_text(LATE)
    first = h.result(h.run_script(script, home))["trace_id"]
    client = TestClient(create_app(home), base_url="http://127.0.0.1")
    assert [t["trace_id"] for t in get(client, "/api/traces")["traces"]] == [first]
    before = get(client, "/api/pulse")["version"]
    assert get(client, "/api/pulse")["version"] == before  # nothing new, nothing changes
    second = h.result(h.run_script(script, home))["trace_id"]
    assert get(client, "/api/pulse")["version"] != before
    assert [t["trace_id"] for t in get(client, "/api/traces")["traces"]] == [second, first]


def test_a_missing_home_is_one_clear_message(tmp_path: Path) -> None:
    client = TestClient(create_app(tmp_path / "nowhere"), base_url="http://127.0.0.1")
    body = get(client, "/api/traces", 503)
    assert "zoomtrace" in body["error"] and "nowhere" in body["error"]
    assert get(client, "/api/pulse")["version"] == "0-0-0"


# -- serving -------------------------------------------------------------------------------------


def serve_child(home: Path, *args: str, env: dict[str, str] | None = None) -> Any:
    import subprocess
    import sys

    code = "import sys; from zoomtrace.ui import serve; serve(sys.argv[1], host=sys.argv[2], port=0)"
    return subprocess.Popen(
        [sys.executable, "-c", code, str(home), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env or h.child_env(None),
        preexec_fn=h.as_from_a_terminal,
    )


def read_until(proc: Any, prefix: str) -> list[str]:
    lines: list[str] = []
    while True:
        line = proc.stdout.readline()
        assert line, f"the viewer ended early: {''.join(lines)} {proc.stderr.read()}"
        lines.append(line)
        if line.strip().startswith(prefix):
            return lines


def stop(proc: Any) -> None:
    import signal

    proc.send_signal(signal.SIGINT)
    try:
        assert proc.wait(15) == 0, proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_serve_prints_its_address_and_announces_itself(shop: Shop) -> None:
    from zoomtrace.ui import running_url, trace_url

    proc = serve_child(shop.home, "127.0.0.1")
    try:
        lines = read_until(proc, "(Ctrl-C")
        url = next(x.split()[1] for x in lines if x.strip().startswith("open"))
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/", url)
        assert not any("token" in x for x in lines)
        assert running_url(shop.home) == url  # what `zoomtrace demo` prints links with
        with urllib.request.urlopen(trace_url(url, shop.trace_id), timeout=10) as response:
            assert response.status == 200 and b"/static/js/main.js" in response.read()
    finally:
        stop(proc)
    assert running_url(shop.home) is None
    assert not (shop.home / "ui.json").exists()


def test_serve_beyond_loopback_prints_the_token(shop: Shop) -> None:
    proc = serve_child(shop.home, "0.0.0.0", env=h.child_env(None, ZOOMTRACE_UI_TOKEN="from-the-environment-123"))
    try:
        lines = read_until(proc, "(Ctrl-C")
        (opening,) = [x.split()[1] for x in lines if x.strip().startswith("open")]
        assert opening.endswith("/?token=from-the-environment-123")
        port = opening.split(":")[2].split("/")[0]
        with pytest.raises(urllib.error.HTTPError) as denied:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/about", timeout=10)
        assert denied.value.code == 401
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/api/about", headers={"Authorization": "Bearer from-the-environment-123"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200
    finally:
        stop(proc)


def test_the_page_preloads_every_module_of_the_viewer() -> None:
    html = (STATIC / "index.html").read_text()
    preloaded = set(re.findall(r'<link rel="modulepreload" href="/static/js/([a-z]+\.js)">', html))
    modules = {p.name for p in (STATIC / "js").glob("*.js")} - {"main.js"}
    assert preloaded == modules
