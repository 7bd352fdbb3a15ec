"""The "Done when" scenario of issue 2, written as a user would write it.

A real git repository holds a small shop: ``front.py`` (places an order and
charges it over HTTP with ``urllib`` and ``zt.inject``), ``back.py`` (an
``http.server`` service continuing the trace with ``zt.extract``) and
``lib/pricing.py`` (a ``@zt.traced`` function that raises on a declined card).
They use stdlib logging, ``zt.span``, ``zt.event`` with sources, a follows-from
retry and an exception. After the commit ``back.py`` is modified (dirty). The
back service is stopped with a real SIGTERM. Then ``zoomtrace story --json`` must
tell the whole story: every span under the right parent across processes,
every log and event on its span with the exact file and line of its call, the
commit, the dirty flags, the stop causes, and not one record missing.

A second run shows what survives a SIGKILL: everything flushed before it.
"""

from __future__ import annotations

import signal
import socket
from typing import Any

import pytest

try:
    import helpers as h
except ImportError:  # tests/ imported as a package
    from tests import helpers as h

FRONT = '''
"""Front service: places an order and charges it through the back service."""
import json
import logging
import sys
import urllib.error
import urllib.request

import zoomtrace as zt

BASE = sys.argv[1]
log = logging.getLogger("shop.front")


def post(path, body):
    headers = zt.inject({"Content-Type": "application/json"})
    request = urllib.request.Request(BASE + path, data=json.dumps(body).encode(), headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=20) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def main():
    zt.init("front", env="test", group="shop", version="1.4.2")
    with zt.span("checkout", user="u1", on_behalf_of="tenant-42") as root:  # @front-checkout
        log.info("checkout started for %s", "u1")  # @front-log-start
        order_id = zt.event({"order": 7, "amount": 12.5}, type="OrderPlaced")  # @front-event-order
        with zt.span("charge", attempt=1) as first:  # @front-charge
            status1, _ = post("/charge", {"order": 7, "amount": 12.5, "card": "declined", "source": order_id})
            log.warning("charge failed with status %d", status1)  # @front-log-failed
        with zt.span("charge_retry", follows_from=first, attempt=2) as retry:  # @front-retry
            status2, body = post("/charge", {"order": 7, "amount": 12.5, "card": "ok", "source": order_id})
            receipt, sources = {"order": 7, "charge_id": body["charge_id"]}, [order_id, body["event_id"]]
            receipt_id = zt.event(receipt, type="Receipt", sources=sources)  # @front-event-receipt
            log.info("order %d charged as %s", 7, body["charge_id"])  # @front-log-ok
    print("RESULT " + json.dumps({
        "trace_id": root.trace_id, "checkout": root.span_id, "charge": first.span_id, "retry": retry.span_id,
        "order_id": order_id, "receipt_id": receipt_id, "charged_id": body["event_id"],
        "charge_id": body["charge_id"], "statuses": [status1, status2],
    }), flush=True)


main()
'''

BACK = '''
"""Back service: charges orders over HTTP."""
import json
import logging
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import zoomtrace as zt
from lib import pricing

log = logging.getLogger("shop.back")


@dataclass
class Charged:
    order: int
    amount: float
    charge_id: str


def charge_order(headers, body):
    with zt.span("handle_charge", context=zt.extract(headers), order=body["order"]):  # @back-handle
        log.info("charging order %s", body["order"])  # @back-log-charging
        try:
            charge_id = pricing.charge(body["order"], body["amount"], body["card"])
        except pricing.CardDeclined:
            log.exception("card declined for order %s", body["order"])  # @back-log-declined
            return 402, {"error": "declined"}
        charged = Charged(body["order"], body["amount"], charge_id)
        event_id = zt.event(charged, sources=[body["source"]])  # @back-event-charged
        return 200, {"charge_id": charge_id, "event_id": event_id}


class Handler(BaseHTTPRequestHandler):
    def log_message(self, format, *args):
        pass

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        status, answer = charge_order(self.headers, body)
        data = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def main():
    zt.init("back", env="test", group="shop", version="2.0.0")
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(f"READY http://127.0.0.1:{server.server_port}", flush=True)
    server.serve_forever()


main()
'''

PRICING = '''
"""Pricing rules."""
import uuid

import zoomtrace as zt


class CardDeclined(Exception):
    pass


@zt.traced("pricing.charge")
def charge(order, amount, card):
    zt.log.info("pricing {amount} for order {order}", amount=amount, order=order)  # @pricing-log
    if card == "declined":
        raise CardDeclined(f"card declined for order {order}")  # @pricing-raise
    return f"ch-{order}-{uuid.uuid4().hex[:8]}"
'''

WORKER = '''
"""A batch worker that flushes, then is killed with SIGKILL."""
import json
import logging
import threading

import zoomtrace as zt

log = logging.getLogger("shop.worker")

zt.init("worker", env="test", group="shop")
with zt.span("batch", size=40) as batch:  # @worker-span
    for i in range(40):
        log.info("item %d done", i)  # @worker-log
    done_id = zt.event({"items": 40}, type="BatchDone")  # @worker-event
zt.flush()
print("RESULT " + json.dumps({"trace_id": batch.trace_id, "span_id": batch.span_id, "event_id": done_id}), flush=True)
threading.Event().wait()
'''


# -- the run (once per module) ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    base = tmp_path_factory.mktemp("scenario")
    repo = base / "shop"
    head = h.make_repo(
        repo,
        {
            "front.py": FRONT,
            "back.py": BACK,
            "lib/__init__.py": "",
            "lib/pricing.py": PRICING,
            "worker.py": WORKER,
            "README.md": "# shop\n",
        },
    )
    # Modified after the commit: back.py now differs from HEAD (and its lines moved).
    back_path = repo / "back.py"
    back_path.write_text("# hotfix: applied on the server, not committed yet\n" + back_path.read_text())
    home = base / "home"
    cwd = base  # the services run from outside the repository: paths must still be repo-relative

    back = h.Child(back_path, home, cwd=cwd)
    try:
        url = back.expect("READY")
        front = h.run_script(repo / "front.py", home, url, cwd=cwd)
        ran = h.result(front)
    finally:
        back.signal(signal.SIGTERM)
        back_rc = back.wait()
    return {
        "repo": repo,
        "home": home,
        "head": head,
        "run": ran,
        "back_rc": back_rc,
        "back": back,
        "front": front,
    }


@pytest.fixture(scope="module")
def told(shop: dict[str, Any]) -> dict[str, Any]:
    """The scenario with its story, read once through ``zoomtrace story --json``."""
    return {**shop, "story": h.story(shop["home"], shop["run"]["trace_id"])}


def expected_code(shop: dict[str, Any], rel: str, marker: str, function: str) -> dict[str, Any]:
    return {
        "file": rel,
        "line": h.marker_line(shop["repo"] / rel, marker),
        "function": function,
        "commit": shop["head"],
        "dirty": rel == "back.py",
    }


def code_of(item: dict[str, Any]) -> dict[str, Any]:
    code = item["code"]
    return {k: code.get(k) for k in ("file", "line", "function", "commit", "dirty")}


# -- processes -------------------------------------------------------------------------------------


def test_services_ran_and_back_died_of_sigterm(shop: dict[str, Any]) -> None:
    assert shop["run"]["statuses"] == [402, 200]
    assert shop["back_rc"] in (-signal.SIGTERM, 128 + signal.SIGTERM), shop["back"].stderr
    assert "Traceback" not in shop["back"].stderr, shop["back"].stderr
    assert "Traceback" not in shop["front"].stderr, shop["front"].stderr


def test_story_nodes_name_both_processes_with_commit_and_stop_cause(told: dict[str, Any]) -> None:
    by_service = {n["service"]: n for n in told["story"]["nodes"]}
    assert set(by_service) == {"front", "back"}
    front, back = by_service["front"], by_service["back"]
    assert (front["env"], front["group"], front["version"]) == ("test", "shop", "1.4.2")
    assert (back["env"], back["group"], back["version"]) == ("test", "shop", "2.0.0")
    assert front["pid"] == told["front"].pid
    assert back["pid"] == told["back"].pid
    assert front["host"] == back["host"] == socket.gethostname()
    assert front["commit"] == back["commit"] == told["head"]
    assert front["stop_cause"] == "exit"
    assert back["stop_cause"] == "SIGTERM"
    for n in (front, back):
        assert n["started_ns"] <= n["stopped_ns"]
    assert front["node_id"] != back["node_id"]


def test_nodes_listing_agrees(told: dict[str, Any]) -> None:
    rows = h.nodes(told["home"])
    assert {r["service"]: r["stop_cause"] for r in rows} == {"front": "exit", "back": "SIGTERM"}
    story_nodes = {n["node_id"]: n for n in told["story"]["nodes"]}
    for row in rows:
        for key in (
            "node_id",
            "service",
            "env",
            "group",
            "version",
            "host",
            "pid",
            "commit",
            "started_ns",
            "stopped_ns",
            "stop_cause",
        ):
            assert row[key] == story_nodes[row["node_id"]][key], key


# -- the span tree ---------------------------------------------------------------------------------


def test_span_tree_across_processes(told: dict[str, Any]) -> None:
    st, run = told["story"], told["run"]

    def shape(spans: list[dict[str, Any]]) -> list[Any]:
        return [(s["name"], shape(s.get("children") or [])) for s in spans]

    assert shape(st["spans"]) == [
        (
            "checkout",
            [
                ("charge", [("handle_charge", [("pricing.charge", [])])]),
                ("charge_retry", [("handle_charge", [("pricing.charge", [])])]),
            ],
        ),
    ]
    for s, parent in h.walk_spans(st["spans"]):
        assert len(s["span_id"]) == 16
        assert s["parent_span_id"] == (parent["span_id"] if parent else None), s["name"]
    checkout = h.span_named(st, "checkout")
    assert checkout["span_id"] == run["checkout"]
    assert h.span_named(st, "charge")["span_id"] == run["charge"]
    assert h.span_named(st, "charge_retry")["span_id"] == run["retry"]
    assert checkout["attrs"]["user"] == "u1"


def test_on_behalf_of_is_inherited_by_every_span_across_processes(told: dict[str, Any]) -> None:
    assert {s["name"]: s["on_behalf_of"] for s in h.all_spans(told["story"])} == {
        name: "tenant-42" for name in ("checkout", "charge", "charge_retry", "handle_charge", "pricing.charge")
    }


def test_spans_record_their_thread(told: dict[str, Any]) -> None:
    rows = h.sql(told["home"], "SELECT type, thread FROM records WHERE kind = 'span'")
    threads = {(r["type"], r["thread"]) for r in rows}
    assert {t for n, t in threads if n in ("checkout", "charge", "charge_retry")} == {"MainThread"}
    back = {t for n, t in threads if n in ("handle_charge", "pricing.charge")}
    assert back and "MainThread" not in back  # ThreadingHTTPServer handles each request in its own thread


def test_spans_belong_to_their_process(told: dict[str, Any]) -> None:
    st = told["story"]
    node_of = {n["service"]: n["node_id"] for n in st["nodes"]}
    for s in h.all_spans(st):
        service = "front" if s["name"] in ("checkout", "charge", "charge_retry") else "back"
        assert s["service"] == service, s["name"]
        assert s["node_id"] == node_of[service], s["name"]


def test_retry_follows_from_the_failed_attempt_without_being_its_child(told: dict[str, Any]) -> None:
    st, run = told["story"], told["run"]
    retry = h.span_named(st, "charge_retry")
    assert retry["links"] == [{"trace_id": run["trace_id"], "span_id": run["charge"]}]
    assert retry["parent_span_id"] == run["checkout"]
    assert retry["attrs"]["attempt"] == 2
    assert h.span_named(st, "charge")["links"] == []


def test_exception_marks_its_span_error_with_frames(told: dict[str, Any]) -> None:
    st, repo = told["story"], told["repo"]
    failed, succeeded = sorted(h.spans_named(st, "pricing.charge"), key=lambda s: s["start_ns"])
    assert failed["status"] == "error"
    assert succeeded["status"] == "ok"
    err = failed["error"]
    assert err["type"].endswith("CardDeclined")
    assert "card declined for order 7" in err["message"]
    raise_line = h.marker_line(repo / "lib/pricing.py", "pricing-raise")
    assert {"file": "lib/pricing.py", "line": raise_line} in [
        {"file": f["file"], "line": f["line"]} for f in err["frames"]
    ]
    # The handler caught it: its own span is fine.
    assert [s["status"] for s in sorted(h.spans_named(st, "handle_charge"), key=lambda s: s["start_ns"])] == [
        "ok",
        "ok",
    ]
    for s in h.all_spans(st):
        if s["name"] != "pricing.charge":
            assert s["status"] == "ok", s["name"]


def test_span_code_locations(told: dict[str, Any]) -> None:
    st, repo = told["story"], told["repo"]
    assert code_of(h.span_named(st, "checkout")) == expected_code(told, "front.py", "front-checkout", "main")
    assert code_of(h.span_named(st, "charge")) == expected_code(told, "front.py", "front-charge", "main")
    assert code_of(h.span_named(st, "charge_retry")) == expected_code(told, "front.py", "front-retry", "main")
    for s in h.spans_named(st, "handle_charge"):
        assert code_of(s) == expected_code(told, "back.py", "back-handle", "charge_order")
    first, last = h.function_range(repo / "lib/pricing.py", "charge")
    for s in h.spans_named(st, "pricing.charge"):
        code = code_of(s)
        # @traced reports the decorated function, not the wrapper inside zoomtrace.
        assert (code["file"], code["function"], code["commit"], code["dirty"]) == (
            "lib/pricing.py",
            "charge",
            told["head"],
            False,
        )
        assert first <= code["line"] <= last, code


# -- records on their spans ------------------------------------------------------------------------


def records_of(span: dict[str, Any]) -> list[dict[str, Any]]:
    return span.get("records") or []


def test_every_record_is_on_its_span_with_exact_code(told: dict[str, Any]) -> None:
    st, run = told["story"], told["run"]
    checkout = h.span_named(st, "checkout")
    charge, retry = h.span_named(st, "charge"), h.span_named(st, "charge_retry")
    handle1, handle2 = sorted(h.spans_named(st, "handle_charge"), key=lambda s: s["start_ns"])
    price1, price2 = sorted(h.spans_named(st, "pricing.charge"), key=lambda s: s["start_ns"])
    expected = {
        checkout["span_id"]: [
            ("log", "checkout started for u1", expected_code(told, "front.py", "front-log-start", "main")),
            ("event", "OrderPlaced", expected_code(told, "front.py", "front-event-order", "main")),
        ],
        charge["span_id"]: [
            ("log", "charge failed with status 402", expected_code(told, "front.py", "front-log-failed", "main")),
        ],
        retry["span_id"]: [
            ("event", "Receipt", expected_code(told, "front.py", "front-event-receipt", "main")),
            ("log", f"order 7 charged as {run['charge_id']}", expected_code(told, "front.py", "front-log-ok", "main")),
        ],
        handle1["span_id"]: [
            ("log", "charging order 7", expected_code(told, "back.py", "back-log-charging", "charge_order")),
            ("log", "card declined for order 7", expected_code(told, "back.py", "back-log-declined", "charge_order")),
        ],
        handle2["span_id"]: [
            ("log", "charging order 7", expected_code(told, "back.py", "back-log-charging", "charge_order")),
            ("event", "Charged", expected_code(told, "back.py", "back-event-charged", "charge_order")),
        ],
        price1["span_id"]: [
            ("log", "pricing 12.5 for order 7", expected_code(told, "lib/pricing.py", "pricing-log", "charge")),
        ],
        price2["span_id"]: [
            ("log", "pricing 12.5 for order 7", expected_code(told, "lib/pricing.py", "pricing-log", "charge")),
        ],
    }
    for s in h.all_spans(st):
        got = [(r["kind"], r["message"] if r["kind"] == "log" else r["type"], code_of(r)) for r in records_of(s)]
        assert got == expected[s["span_id"]], s["name"]
        stamps = [r["ts_ns"] for r in records_of(s)]
        assert stamps == sorted(stamps), f"records of {s['name']} are not in time order"


def test_no_record_is_missing_or_duplicated(told: dict[str, Any]) -> None:
    st = told["story"]
    spans = h.all_spans(st)
    records = h.all_records(st)
    assert len(spans) == 7
    assert st["records"] == [], "records of this trace that belong to no span"
    assert len(records) == 11
    assert sorted(r["kind"] for r, _ in records) == ["event"] * 3 + ["log"] * 8
    ids = [r["id"] for r, _ in records]
    assert len(set(ids)) == len(ids)
    span_ids = [s["span_id"] for s in spans]
    assert len(set(span_ids)) == len(span_ids)
    # One trace only, and the store holds exactly these records (nothing duplicated by re-ingestion).
    traces = h.cli_json(told["home"], "traces")
    assert [t["trace_id"] for t in traces] == [told["run"]["trace_id"]]
    counts = {
        row["kind"]: row["n"]
        for row in h.sql(told["home"], "SELECT kind, count(*) AS n FROM records WHERE kind <> 'node' GROUP BY kind")
    }
    assert counts == {"span": 7, "log": 8, "event": 3}


def test_stdlib_log_records(told: dict[str, Any]) -> None:
    st = told["story"]
    start, _ = h.record_with(st, "checkout started for u1")
    assert (start["type"], start["level"].upper()) == ("shop.front", "INFO")
    failed, _ = h.record_with(st, "charge failed with status 402")
    assert (failed["type"], failed["level"].upper()) == ("shop.front", "WARNING")
    declined, _ = h.record_with(st, "card declined for order 7")
    assert (declined["type"], declined["level"].upper()) == ("shop.back", "ERROR")
    assert declined["error"]["type"].endswith("CardDeclined")


def test_zt_log_keeps_structure(told: dict[str, Any]) -> None:
    for span in h.spans_named(told["story"], "pricing.charge"):
        (rec,) = records_of(span)
        assert rec["attrs"]["amount"] == 12.5
        assert rec["attrs"]["order"] == 7
        assert rec["level"].upper() == "INFO"


def test_events_payloads_and_lineage(told: dict[str, Any]) -> None:
    st, run = told["story"], told["run"]
    events = {r["type"]: r for r, _ in h.all_records(st) if r["kind"] == "event"}
    assert set(events) == {"OrderPlaced", "Charged", "Receipt"}
    order, charged, receipt = events["OrderPlaced"], events["Charged"], events["Receipt"]
    assert order["id"] == run["order_id"]
    assert charged["id"] == run["charged_id"]
    assert receipt["id"] == run["receipt_id"]
    assert order["payload"] == {"order": 7, "amount": 12.5}
    assert charged["payload"] == {"order": 7, "amount": 12.5, "charge_id": run["charge_id"]}
    assert receipt["payload"] == {"order": 7, "charge_id": run["charge_id"]}
    assert order["sources"] == []
    assert charged["sources"] == [run["order_id"]]  # lineage across processes
    assert receipt["sources"] == [run["order_id"], run["charged_id"]]


def test_commit_and_dirty_flags(told: dict[str, Any]) -> None:
    st, head = told["story"], told["head"]
    assert head == h.git(told["repo"], "rev-parse", "HEAD")
    assert h.git(told["repo"], "status", "--porcelain").split() == ["M", "back.py"]
    seen: dict[str, set[bool]] = {}
    items = [s["code"] for s in h.all_spans(st)] + [r["code"] for r, _ in h.all_records(st)]
    for code in items:
        assert code["commit"] == head
        seen.setdefault(code["file"], set()).add(code["dirty"])
    assert seen == {"front.py": {False}, "back.py": {True}, "lib/pricing.py": {False}}


def test_story_renders_for_humans(shop: dict[str, Any]) -> None:
    out = h.cli(shop["home"], "story", shop["run"]["trace_id"])
    assert out.returncode == 0, out.stderr
    text = out.stdout
    for needle in (
        "checkout",
        "charge_retry",
        "handle_charge",
        "pricing.charge",
        "charging order 7",
        "lib/pricing.py",
        shop["head"][:7],
    ):
        assert needle in text, needle
    line = h.marker_line(shop["repo"] / "back.py", "back-log-charging")
    assert f"back.py:{line}" in text


# -- SIGKILL: what was flushed survives ------------------------------------------------------------


@pytest.fixture(scope="module")
def killed(shop: dict[str, Any]) -> dict[str, Any]:
    home = shop["home"].parent / "home-killed"
    worker = h.Child(shop["repo"] / "worker.py", home, cwd=shop["home"].parent)
    try:
        ran = worker.expect_json("RESULT")
    finally:
        worker.kill()
    rc = worker.wait()
    return {"home": home, "run": ran, "rc": rc, "pid": worker.pid}


def test_flushed_records_survive_sigkill(shop: dict[str, Any], killed: dict[str, Any]) -> None:
    assert killed["rc"] == -signal.SIGKILL
    st = h.story(killed["home"], killed["run"]["trace_id"])
    batch = h.span_named(st, "batch")
    assert batch["span_id"] == killed["run"]["span_id"]
    assert batch["status"] == "ok"
    recs = records_of(batch)
    assert [r["message"] for r in recs if r["kind"] == "log"] == [f"item {i} done" for i in range(40)]
    line = h.marker_line(shop["repo"] / "worker.py", "worker-log")
    assert {(r["code"]["file"], r["code"]["line"]) for r in recs if r["kind"] == "log"} == {("worker.py", line)}
    assert [r["id"] for r in recs if r["kind"] == "event"] == [killed["run"]["event_id"]]
    assert len(h.all_records(st)) == 41


def test_killed_node_is_not_claimed_to_have_stopped(killed: dict[str, Any]) -> None:
    (row,) = h.nodes(killed["home"])
    assert row["service"] == "worker"
    assert row["pid"] == killed["pid"]
    assert row["stop_cause"] not in ("exit", "exception", "SIGTERM", "SIGINT", "shutdown")
    assert row["stopped_ns"] is None
