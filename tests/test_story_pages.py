"""A big trace in pages (issue 11): its outline (the span tree as interned columns with per-span counts) and
pages of its records, built by ``zoomtrace.read`` from real stores and served at
``/api/trace/{id}/outline`` and ``/api/trace/{id}/records``.

The outline is checked against the story of the same trace (``query.story``, the whole-trace contract): decoded,
its rows are the story's spans in the story's order, with the story's counts. A property test does the same on
random span trees. The HTTP tests run the real app (``create_app``) on a home whose DuckDB store holds the
traces, through Starlette's TestClient.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from zoomtrace.read import model, query
from zoomtrace.read._story import assemble
from zoomtrace.read.outline import build_outline
from zoomtrace.store.clickhouse import ClickHouseStore
from zoomtrace.store.duckdb import DuckStore
from zoomtrace.store.protocols import SpanCounts, TraceSpans, span_columns
from zoomtrace.ui import create_app
from zoomtrace.wire.record import Record, uuid7

try:
    import helpers as h
except ImportError:  # tests/ imported as a package
    from tests import helpers as h

T0 = 1_800_000_000_000_000_000
MS = 1_000_000
TID = "5a" * 16
BIG = "b9" * 16
#: Spans and logs of the big trace: more records than a story is told in one piece.
BIG_SPANS, BIG_LOGS = 200, query.STORY_LIMIT


def plain(value: Any) -> Any:
    """``value`` as its JSON reads back."""
    return msgspec.json.decode(msgspec.json.encode(value))


def is_error(r: dict[str, Any]) -> bool:
    return r.get("status") == "error" or r.get("error") is not None or r.get("level") in ("ERROR", "CRITICAL", "FATAL")


def story_rows(story: dict[str, Any]) -> list[dict[str, Any]]:
    """The story's spans depth-first, each as the outline has a row: parent, depth, counts of its records."""
    rows: list[dict[str, Any]] = []
    stack = [(s, None, 0) for s in reversed(story["spans"])]
    while stack:
        s, parent, depth = stack.pop()
        records = s["records"]
        rows.append(
            {
                "span_id": s["span_id"],
                "parent": parent["span_id"] if parent else None,
                "depth": depth,
                "remote_parent": s["parent_span_id"] if s["remote_parent"] else None,
                "name": s["name"],
                "service": s["service"],
                "node_id": s["node_id"],
                "start_ns": s["start_ns"],
                "duration": s["duration_ns"],
                "status": s["status"],
                "error": int(s["status"] == "error" or s["error"] is not None),
                "logs": sum(r["kind"] == "log" for r in records),
                "events": sum(r["kind"] == "event" for r in records),
                "errors": sum(is_error(r) for r in records),
                "children": len(s["children"]),
                "links": [[link["trace_id"], link["span_id"]] for link in s["links"]],
            }
        )
        stack.extend((c, s, depth + 1) for c in reversed(s["children"]))
    return rows


def outline_rows(outline: dict[str, Any]) -> list[dict[str, Any]]:
    """The outline's columns decoded back into rows: strings looked up, parents as span ids."""
    col, strings = outline["spans"], outline["strings"]

    def text(i: int) -> str | None:
        return None if i < 0 else strings[i]

    links: dict[int, list[list[str]]] = {}
    for row, trace_id, span_id in outline["links"]:
        links.setdefault(row, []).append([trace_id, span_id])
    return [
        {
            "span_id": col["span_id"][i],
            "parent": col["span_id"][col["parent"][i]] if col["parent"][i] >= 0 else None,
            "depth": col["depth"][i],
            "remote_parent": col["remote_parent"][i],
            "name": text(col["name"][i]),
            "service": text(col["service"][i]),
            "node_id": text(col["node_id"][i]),
            "start_ns": outline["start_ns"] + col["start"][i],
            "duration": col["duration"][i],
            "status": text(col["status"][i]),
            "error": col["error"][i],
            "logs": col["logs"][i],
            "events": col["events"][i],
            "errors": col["errors"][i],
            "children": col["children"][i],
            "links": links.get(i, []),
        }
        for i in range(len(col["span_id"]))
    ]


def assert_outline_tells_the_story(outline: dict[str, Any], story: dict[str, Any], records: list[Record]) -> None:
    """The outline and the story of one trace agree: rows, order, counts, nodes, interning."""
    assert outline["trace_id"] == story["trace_id"]
    assert (outline["start_ns"], outline["end_ns"]) == (story["start_ns"], story["end_ns"])
    assert outline_rows(outline) == story_rows(story)
    columns = outline["spans"]
    assert len({len(values) for values in columns.values()}) == 1  # columns of equal length
    strings = outline["strings"]
    assert len(set(strings)) == len(strings)  # each string once
    for name in ("name", "service", "node_id", "status"):
        assert all(-1 <= i < len(strings) for i in columns[name])
    assert outline["nodes"] == story["nodes"]
    assert outline["unparented"] == len(story["records"])
    mine = [r for r in records if r.trace_id == story["trace_id"] and r.kind != "node"]
    rows = story_rows(story)
    spans_failed = sum(row["error"] for row in rows)
    assert outline["counts"] == {
        "records": len(mine),
        "spans": len(rows),
        "logs": sum(r.kind == "log" for r in mine),
        "events": sum(r.kind == "event" for r in mine),
        "raw": sum(r.kind == "raw" for r in mine),
        "errors": spans_failed + sum(is_error(plain(r)) for r in mine if r.kind != "span"),
    }


# -- the outline, from a real store ----------------------------------------------------------------


@pytest.fixture
def records() -> list[Record]:
    return h.branching_trace(TID, T0)


@pytest.fixture
def duck(tmp_path: Path, records: list[Record]) -> Iterator[DuckStore]:
    store = DuckStore(tmp_path / "store.duckdb")
    store.ingest(records)
    try:
        yield store
    finally:
        store.close()


def test_outline_is_the_story_s_span_tree_as_columns(duck: DuckStore, records: list[Record]) -> None:
    outline = plain(query.outline(duck, TID[:8]))
    story = plain(query.story(duck, TID))
    assert_outline_tells_the_story(outline, story, records)
    col = outline["spans"]
    # what the trace was built to show, in the outline's own terms
    names = [outline["strings"][i] for i in col["name"]]
    assert names[:5] == ["GET /order", "pay", "ledger", "fraud-check", "ship"]  # children by start, not arrival
    assert col["parent"][:5] == [-1, 0, 1, 1, 0] and col["depth"][:5] == [0, 1, 2, 2, 1]
    ledger = names.index("ledger")
    assert col["duration"][ledger] == 5 * MS and col["status"][ledger] == -1  # the ended copy of the two
    webhook = names.index("webhook")
    assert col["remote_parent"][webhook] == "99" * 8 and col["service"][webhook] == -1  # node never started
    assert sorted(names[i] for i in range(len(names)) if col["depth"][i] == 0) == [
        "GET /order",
        "loop-a",
        "webhook",
    ]
    assert outline["links"] == [[names.index("ship"), TID, "b1" * 8]]
    assert outline["unparented"] == 2


def test_story_read_in_parts_is_the_story_of_the_whole_trace(duck: DuckStore) -> None:
    """``query.story`` (the span tree, then the records) tells what assembling every row of the trace tells."""
    whole = duck.trace_rows(TID)
    assert plain(query.story(duck, TID)) == plain(assemble(whole.trace_id, whole.records, whole.nodes))


def test_outline_and_pages_are_the_same_on_chdb(duck: DuckStore, records: list[Record], tmp_path: Path) -> None:
    ch = ClickHouseStore.open(f"chdb://{tmp_path / 'chdb'}", create=True, retention_days=0)
    try:
        ch.write(ch.prepare(records))
        assert plain(query.outline(ch, TID)) == plain(query.outline(duck, TID))
        assert plain(query.records(ch, TID, limit=5000)) == plain(query.records(duck, TID, limit=5000))
        for span_id in query.outline(duck, TID).spans.span_id:
            assert plain(query.span(ch, TID, span_id)) == plain(query.span(duck, TID, span_id))
    finally:
        ch.close()


# -- the outline of random span trees --------------------------------------------------------------


@st.composite
def random_trace(draw: st.DrawFn) -> list[Record]:
    """Spans whose parents are earlier spans, later ones (cycles), themselves or never recorded; some recorded
    twice, some without an end, ties in time; logs, events and failures under any span or none."""
    count = draw(st.integers(1, 25))
    span_ids = [f"{i:016x}" for i in range(count)]
    records: list[Record] = []
    nodes = ["node-a", "node-b"]
    for i, span_id in enumerate(span_ids):
        parent = draw(st.one_of(st.none(), st.sampled_from(span_ids), st.just("f" * 16)))
        start = draw(st.integers(0, 50))
        end = draw(st.one_of(st.none(), st.integers(start, 100)))
        copies = draw(st.integers(1, 2))
        for copy in range(copies):
            records.append(
                Record(
                    id=f"{i:04d}-{copy}",
                    kind="span",
                    type=draw(st.sampled_from(["a", "b", "c"])),
                    ts_ns=T0 + start,
                    end_ns=None if end is None or copy < copies - 1 else T0 + end,
                    node_id=draw(st.sampled_from(nodes)),
                    trace_id=TID,
                    span_id=span_id,
                    parent_span_id=parent,
                    status=draw(st.sampled_from([None, "ok", "error"])),
                )
            )
    for j in range(draw(st.integers(0, 30))):
        records.append(
            Record(
                id=f"r{j:04d}",
                kind=draw(st.sampled_from(["log", "event", "raw"])),
                type="t",
                ts_ns=T0 + draw(st.integers(0, 100)),
                node_id=draw(st.sampled_from(nodes)),
                trace_id=TID,
                span_id=draw(st.one_of(st.none(), st.sampled_from(span_ids), st.just("e" * 16))),
                level=draw(st.sampled_from([None, "INFO", "ERROR"])),
            )
        )
    return records


def trace_spans_of(records: list[Record], nodes: list[dict[str, Any]]) -> TraceSpans:
    """What a store's ``trace_spans(row_type=SpanColumns)`` answers for these records: the span records as
    columns, and the other records counted per span (the store's GROUP BY, written out)."""
    rows = [msgspec.structs.asdict(r) for r in records]
    counts: dict[str | None, list[int]] = {}
    for r in rows:
        if r["kind"] != "span":
            c = counts.setdefault(r["span_id"], [0, 0, 0, 0])
            for i, counted in enumerate((True, r["kind"] == "log", r["kind"] == "event", is_error(r))):
                c[i] += counted
    spans = msgspec.convert([r for r in rows if r["kind"] == "span"], list[model.RecordView])
    return TraceSpans(
        TID,
        min(r["ts_ns"] for r in rows),
        max(max(r["ts_ns"], r["end_ns"] or r["ts_ns"]) for r in rows),
        span_columns(spans),
        SpanCounts(list(counts), *(list(column) for column in zip(*counts.values(), strict=True)))
        if counts
        else SpanCounts([], [], [], [], []),
        sorted({r["node_id"] for r in rows}),
        nodes,
    )


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_trace())
def test_outline_of_random_trees_tells_the_story(records: list[Record]) -> None:
    nodes = [{"node_id": records[0].node_id, "service": "svc"}]
    story = plain(assemble(TID, [msgspec.structs.asdict(r) for r in records], nodes))
    outline = plain(build_outline(trace_spans_of(records, nodes)))
    assert_outline_tells_the_story(outline, story, records)
    assert sorted(outline["spans"]["span_id"]) == sorted({r.span_id for r in records if r.kind == "span"})


# -- the HTTP API ----------------------------------------------------------------------------------


def big_trace() -> list[Record]:
    """More records than a story is told in one piece: a root, a chain of spans, and logs under them."""
    node = uuid7(T0 - MS)
    spans = [f"{i + 1:016x}" for i in range(BIG_SPANS)]
    out = [Record(id=uuid7(T0), kind="span", type="batch", ts_ns=T0, node_id=node, trace_id=BIG, span_id=spans[0])]
    for i, span_id in enumerate(spans[1:], 1):
        ts = T0 + i * MS
        out.append(
            Record(
                id=uuid7(ts),
                kind="span",
                type="step",
                ts_ns=ts,
                end_ns=ts + MS,
                node_id=node,
                trace_id=BIG,
                span_id=span_id,
                parent_span_id=spans[i - 1],
            )
        )
    for j in range(BIG_LOGS):
        ts = T0 + j * 1000
        out.append(
            Record(
                id=uuid7(ts),
                kind="log",
                type="app",
                ts_ns=ts,
                node_id=node,
                trace_id=BIG,
                span_id=spans[j % BIG_SPANS],
                level="ERROR" if j % 1000 == 999 else "INFO",
                message=f"line {j}",
            )
        )
    return out


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("pages") / "home"
    h.write_store(home, [*h.branching_trace(TID, T0), *big_trace()])
    return home


@pytest.fixture(scope="module")
def client(home: Path) -> TestClient:
    return TestClient(create_app(home), base_url="http://127.0.0.1:8087")


def get(client: TestClient, path: str, status: int = 200, **params: Any) -> Any:
    response = client.get(path, params=params)
    assert response.status_code == status, f"GET {path} {params}: {response.status_code} {response.text}"
    assert response.headers["content-type"] == "application/json"
    return response.json()


def test_api_outline_tells_the_story_of_the_whole_story_endpoint(client: TestClient) -> None:
    outline = get(client, f"/api/trace/{TID}/outline")
    story = get(client, f"/api/trace/{TID}")
    assert_outline_tells_the_story(outline, story, h.branching_trace(TID, T0))
    assert get(client, f"/api/trace/{TID[:8]}/outline") == outline


def test_api_records_pages_are_the_story_s_records_in_time_order(client: TestClient) -> None:
    story = get(client, f"/api/trace/{TID}")
    spans = h.all_spans(story)
    records = [r for r, _ in h.all_records(story)]
    expected = sorted(
        [(s["start_ns"], s["id"], s["service"]) for s in spans] + [(r["ts_ns"], r["id"], r["service"]) for r in records]
    )
    expected_ids = [i for _, i, _ in expected]
    spans_twice = 1  # the ledger span's interrupted copy is a record too
    page = get(client, f"/api/trace/{TID}/records")
    assert (page["total"], page["offset"]) == (len(expected) + spans_twice, 0)
    got = [r for r in page["records"] if r["id"] in set(expected_ids)]
    assert [r["id"] for r in got] == expected_ids
    assert [r["service"] for r in got] == [service for _, _, service in expected]
    fields = [*model.RecordView.__struct_fields__, "service"]
    assert all(list(r) == fields for r in page["records"])
    by_id = {r["id"]: r for r in records}
    for r in page["records"]:
        if r["id"] in by_id:  # every field as the story's record has it
            assert {k: r[k] for k in by_id[r["id"]]} == by_id[r["id"]]
    paged: list[str] = []
    for offset in range(0, page["total"], 4):
        answer = get(client, f"/api/trace/{TID}/records", offset=offset, limit=4)
        assert answer["offset"] == offset and answer["total"] == page["total"]
        paged += [r["id"] for r in answer["records"]]
    assert paged == [r["id"] for r in page["records"]]


def test_api_records_filters(client: TestClient) -> None:
    everything = get(client, f"/api/trace/{TID}/records")["records"]

    def ids(**params: Any) -> list[str]:
        answer = get(client, f"/api/trace/{TID}/records", **params)
        assert answer["total"] == len(answer["records"])
        return [r["id"] for r in answer["records"]]

    def where(keep: Any) -> list[str]:
        return [r["id"] for r in everything if keep(r)]

    pay = "b1" * 8
    recorded = {r["span_id"] for r in everything if r["kind"] == "span"}
    assert ids(span=pay) == where(lambda r: r["span_id"] == pay and r["kind"] != "span")
    assert len(ids(span=pay)) == 3
    assert ids(span="-") == where(lambda r: r["kind"] != "span" and r["span_id"] not in recorded)
    assert len(ids(span="-")) == 2
    assert ids(kind="span") == where(lambda r: r["kind"] == "span")
    assert ids(kind="event,raw") == where(lambda r: r["kind"] in ("event", "raw"))
    ranks = {"DEBUG": 10, "INFO": 20, "WARNING": 30, "ERROR": 40, "CRITICAL": 50}
    assert ids(level="warning") == where(lambda r: r["level"] is None or ranks[r["level"]] >= 30)
    assert ids(service="billing") == where(lambda r: r["service"] == "billing")
    assert ids(text="CARD") == where(lambda r: "card" in (r["message"] or "").lower())
    assert len(ids(text="CARD")) == 2
    assert ids(errors=1) == where(is_error)
    assert len(ids(errors="true")) == 4  # the span "pay", "card declined", the refund's exception, "hook failed"
    start = T0 + 100 * MS
    assert ids(from_ns=start, to_ns=start + 20 * MS) == where(lambda r: start <= r["ts_ns"] < start + 20 * MS)
    assert ids(span=pay, level="ERROR", kind="log") == [r["id"] for r in everything if r["message"] == "card declined"]


def test_api_records_around_a_record(client: TestClient) -> None:
    everything = [r["id"] for r in get(client, f"/api/trace/{TID}/records")["records"]]
    target = everything[13]
    page = get(client, f"/api/trace/{TID}/records", around=target, limit=5)
    assert page["offset"] == 10 and [r["id"] for r in page["records"]] == everything[10:15]
    # A record the filters leave out: the page where it would be (no record of it there).
    logs = get(client, f"/api/trace/{TID}/records", kind="log")["records"]
    span = get(client, f"/api/trace/{TID}/records", kind="span")["records"][-1]
    before = sum(1 for r in logs if (r["ts_ns"], r["id"]) < (span["ts_ns"], span["id"]))
    page = get(client, f"/api/trace/{TID}/records", around=span["id"], kind="log", limit=3)
    assert page["offset"] == before - before % 3 and span["id"] not in [r["id"] for r in page["records"]]
    assert "no record" in get(client, f"/api/trace/{TID}/records", 404, around="0000-unknown")["error"]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"offset": "x"}, "offset must be an integer"),
        ({"offset": "-1"}, "offset must be between"),
        ({"limit": "0"}, "limit must be between 1 and 5000"),
        ({"limit": "5001"}, "limit must be between 1 and 5000"),
        ({"limit": "ten"}, "limit must be an integer"),
        ({"from_ns": "1.5"}, "from_ns must be an integer"),
        ({"to_ns": "soon"}, "to_ns must be an integer"),
        ({"kind": "log,spam"}, "unknown kind 'spam'"),
        ({"level": "loud"}, "unknown level 'LOUD'"),
        ({"span": "<script>"}, "not a valid span id"),
        ({"around": "a b"}, "not a valid record id"),
        ({"text": "x" * 1001}, "text is longer than 1000"),
    ],
)
def test_api_records_rejects_bad_parameters(client: TestClient, params: dict[str, str], message: str) -> None:
    assert message in get(client, f"/api/trace/{TID}/records", 400, **params)["error"]


def test_api_span_is_the_record_the_story_tells_of_it(client: TestClient) -> None:
    """The outline has no record ids (8 of 21.6 MB at 200,000 spans): a selected span's own record is read by
    its span id, and of a span recorded twice it is the copy the story keeps."""
    outline = get(client, f"/api/trace/{TID}/outline")
    assert "record_id" not in outline["spans"]
    spans = h.all_spans(get(client, f"/api/trace/{TID}"))
    assert sorted(s["span_id"] for s in spans) == sorted(outline["spans"]["span_id"])
    for s in spans:
        own = get(client, f"/api/trace/{TID[:8]}/span/{s['span_id']}")
        assert own == get(client, f"/api/record/{s['id']}")
    ledger = next(s for s in spans if s["name"] == "ledger")  # recorded twice: interrupted, then ended
    assert get(client, f"/api/trace/{TID}/span/{ledger['span_id']}")["end_ns"] is not None
    assert "no span" in get(client, f"/api/trace/{TID}/span/{'0' * 16}", 404)["error"]
    assert "not a valid span id" in get(client, f"/api/trace/{TID}/span/not%20an%20id", 400)["error"]


def test_api_unknown_trace_is_404(client: TestClient) -> None:
    for path in ("outline", "records", f"span/{'ab' * 8}"):
        assert "zoomtrace traces" in get(client, f"/api/trace/{'0' * 32}/{path}", 404)["error"]
    assert get(client, f"/api/trace/{TID}/nothing", 404)["error"] == "no such API endpoint"


def test_api_big_trace_comes_in_pages_not_in_one_piece(client: TestClient) -> None:
    refused = get(client, f"/api/trace/{BIG}", 413)["error"]
    assert f"{BIG_SPANS + BIG_LOGS:,} records" in refused and f"/api/trace/{BIG}/outline" in refused
    outline = get(client, f"/api/trace/{BIG}/outline")
    assert outline["counts"] == {
        "records": BIG_SPANS + BIG_LOGS,
        "spans": BIG_SPANS,
        "logs": BIG_LOGS,
        "events": 0,
        "raw": 0,
        "errors": BIG_LOGS // 1000,
    }
    assert outline["spans"]["depth"] == list(range(BIG_SPANS))  # a chain
    assert outline["spans"]["logs"] == [BIG_LOGS // BIG_SPANS] * BIG_SPANS
    (node,) = outline["nodes"]
    assert sorted(outline["strings"]) == sorted(["batch", "step", node["node_id"]])  # each string once
    last = BIG_LOGS - 500
    response = client.get(f"/api/trace/{BIG}/records", params={"offset": last})
    page = response.json()
    assert (page["total"], page["offset"]) == (BIG_SPANS + BIG_LOGS, last)
    assert len(page["records"]) == 500 and len(response.content) < 500 * 1000  # the page, not the trace
    deep = outline["spans"]["span_id"][-1]
    under = get(client, f"/api/trace/{BIG}/records", span=deep, limit=5000)
    assert under["total"] == BIG_LOGS // BIG_SPANS
    assert [r["message"] for r in under["records"]][:2] == [f"line {BIG_SPANS - 1}", f"line {2 * BIG_SPANS - 1}"]


def test_api_pages_need_the_token_and_a_known_host(home: Path) -> None:
    guarded = TestClient(create_app(home, token="s3cret"), base_url="http://127.0.0.1:8087")
    for path in ("outline", "records"):
        assert guarded.get(f"/api/trace/{TID}/{path}").status_code == 401
        ok = guarded.get(f"/api/trace/{TID}/{path}", headers={"authorization": "Bearer s3cret"})
        assert ok.status_code == 200
        assert ok.headers["content-security-policy"].startswith("default-src 'none'")
    elsewhere = TestClient(create_app(home), base_url="http://evil.example:8087")
    assert elsewhere.get(f"/api/trace/{TID}/outline").status_code == 421
