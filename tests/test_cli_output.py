"""What the ``zoomtrace`` commands print (issue 14, item 2), on both stores (DuckDB and chDB).

Record ids are printed short (their random end) in ``story`` and ``tail`` and taken back, shortened, wherever
an id is; ``tail`` gives the records of one write in time order; a message cannot fake other lines in any text
output; ``sql`` writes a table, CSV, TSV or JSON with proper NULLs and JSON values; bad arguments are one-line
errors; ``traces`` names its columns. Every store is real and every command runs as a child process.
"""

from __future__ import annotations

import base64
import csv
import io
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

try:
    import helpers as h
except ImportError:  # tests/ imported as a package
    from tests import helpers as h

from zoomtrace.wire.record import Record, uuid7

T0 = 1_800_000_000_000_000_000
MS = 1_000_000
#: Two traces whose ids share their first 10 characters, and a third.
TRACE = "c1c1c1c1c1" + "0a" * 11
TWIN = "c1c1c1c1c1" + "0b" * 11
OTHER = "d2" * 16
#: A message, a span name and a service written to fake lines and restyle the terminal.
EVIL = "paid\nFAKE 2027-01-15 08:00:00.000 ERROR line\x1b[2J\tend"
EVIL_SPAN = "GET /x\nFAKE span"
EVIL_SERVICE = "shop\x1b[31m\nFAKE node"


def _records() -> list[Record]:
    shop, evil = uuid7(T0 - 9000 * MS), uuid7(T0 - 8000 * MS)

    def rec(kind: str, type_: str, ts: int, node: str = shop, **fields: Any) -> Record:
        fields.setdefault("trace_id", TRACE)
        return Record(id=uuid7(ts), kind=kind, type=type_, ts_ns=ts, node_id=node, **fields)

    def started(node: str, service: str) -> Record:
        attrs = {"node_id": node, "service": service, "env": "test", "host": "h", "pid": 7, "started_ns": T0 - MS}
        return Record(id=uuid7(T0 - MS), kind="node", type="started", ts_ns=T0 - MS, node_id=node, attrs=attrs)

    at = T0 + MS  # every record of the trace but its root span in one millisecond: their ids start alike
    placed = rec("event", "OrderPlaced", at + 10, span_id="a0" * 8, payload={"order": 7})
    return [
        started(shop, "shop"),
        started(evil, EVIL_SERVICE),
        rec("span", EVIL_SPAN, T0, span_id="a0" * 8, end_ns=T0 + 9 * MS),
        rec("span", "pay", at + 5, span_id="b1" * 8, parent_span_id="a0" * 8, end_ns=at + 500),
        rec("log", "app", at, span_id="a0" * 8, level="INFO", message="order received"),
        rec("log", "app", at + 20, evil, span_id="b1" * 8, level="ERROR", message=EVIL),
        placed,
        rec("event", "Shipped", at + 30, span_id="a0" * 8, payload={"order": 7}, sources=[placed.id]),
        rec("span", "twin", T0 + 100 * MS, trace_id=TWIN, span_id="c2" * 8, end_ns=T0 + 101 * MS),
        rec("log", "app", T0 + 200 * MS, trace_id=OTHER, message="another trace"),
    ]


RECORDS = _records()
ENGINES = ("duckdb", "chdb")


@pytest.fixture(scope="module")
def homes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[str]]:
    """Per engine, the arguments naming a home and a store holding ``RECORDS``."""
    from zoomtrace.store.clickhouse import ClickHouseStore

    base = tmp_path_factory.mktemp("output")
    h.write_store(base / "duck", RECORDS)
    (base / "ch").mkdir()
    url = f"chdb://{base / 'chdb'}"
    store = ClickHouseStore.open(url, create=True, retention_days=0)
    try:
        store.ingest(RECORDS)
    finally:
        store.close()
    return {"duckdb": ["--home", str(base / "duck")], "chdb": ["--home", str(base / "ch"), "--store", url]}


@pytest.fixture(params=ENGINES)
def home(request: pytest.FixtureRequest, homes: dict[str, list[str]]) -> list[str]:
    return homes[request.param]


def run(home: list[str], *args: str) -> subprocess.CompletedProcess[str]:
    return h.cli(None, *home, *args)


def out(home: list[str], *args: str) -> str:
    done = run(home, *args)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    return done.stdout


def as_json(home: list[str], *args: str) -> Any:
    return json.loads(out(home, *args, "--json"))


def named(text: str) -> Record:
    (found,) = [r for r in RECORDS if text in (r.message, r.type)]
    return found


# -- short ids, printed and taken back ----------------------------------------------------------------------


def test_story_and_tail_print_short_record_ids_that_differ(home: list[str]) -> None:
    """The records of one millisecond share the start of their ids: the end is printed, and names each."""
    in_trace = [r for r in RECORDS if r.trace_id == TRACE]
    story = out(home, "story", TRACE)
    tail = out(home, "tail", "-n", "100")
    for r in in_trace:
        if r.kind != "span":  # LEVEL ID TEXT
            (line,) = [line for line in story.splitlines() if line.split()[1:2] == [r.id[-12:]]]
            assert (r.message or r.type).split("\n")[0] in line
        (line,) = [line for line in tail.splitlines() if line.split()[4] == r.id[-12:]]  # DATE TIME LEVEL TRACE ID
    assert len({r.id[-12:] for r in in_trace}) == len(in_trace)
    assert len({r.id[:13] for r in in_trace if r.ts_ns > T0}) == 1  # what was printed before: one for all
    for span_id in ("a0" * 8, "b1" * 8):
        assert f"span={span_id[:8]}" in story


def test_tail_names_the_service_of_every_record(home: list[str]) -> None:
    lines = out(home, "tail", "-n", "100").splitlines()
    (started,) = [line for line in lines if "NODE" in line and "[shop]" in line]
    assert started.rstrip().endswith("started")
    assert any("order received" in line and "[shop]" in line for line in lines)


def test_tail_gives_the_records_of_one_write_in_time_order(home: list[str]) -> None:
    shown = [json.loads(line)["id"] for line in out(home, "tail", "-n", "100", "--json").splitlines()]
    by_time = sorted(RECORDS, key=lambda r: (r.ts_ns, r.kind != "span", r.id))
    assert shown == [r.id for r in by_time]


def test_lineage_takes_the_short_id_story_prints(home: list[str]) -> None:
    placed, shipped = named("OrderPlaced"), named("Shipped")
    whole = as_json(home, "lineage", shipped.id)
    assert [r["id"] for r in whole["upstream"]] == [placed.id]
    (line,) = [line for line in out(home, "story", TRACE).splitlines() if "Shipped" in line]
    short = line.split()[1]
    assert as_json(home, "lineage", short) == whole
    assert as_json(home, "lineage", shipped.id[:-6]) == whole  # the start of the id
    assert f"● {shipped.id}" in out(home, "lineage", short)


def test_ids_may_be_shortened_to_8_characters(home: list[str]) -> None:
    assert as_json(home, "story", TRACE[:12])["trace_id"] == TRACE
    assert as_json(home, "story", TRACE, "--span", "b1b1b1b1") == as_json(home, "story", TRACE, "--span", "b1" * 8)
    assert as_json(home, "story", TRACE[:12], "--span", "b1b1b1b1")["spans"][0]["name"] == "pay"


@pytest.mark.parametrize(
    ("args", "status", "words"),
    [
        (["story", TRACE[:8]], 2, ["ambiguous", TRACE, TWIN]),
        (["story", TRACE[:8], "--json"], 2, ["ambiguous", TRACE, TWIN]),
        (["story", "c1c1"], 1, ["'c1c1'", "8 characters"]),
        (["story", TRACE, "--span", "b1b1"], 1, ["'b1b1'", "8 characters"]),
        (["lineage", "c1c1c1"], 1, ["'c1c1c1'", "8 characters"]),
    ],
)
def test_a_shortened_id_that_names_no_one_id_is_a_one_line_error(
    home: list[str], args: list[str], status: int, words: list[str]
) -> None:
    done = run(home, *args)
    message = h.assert_one_line_error(done)
    assert done.returncode == status and done.stdout == ""
    assert all(w in message for w in words), message


def test_a_record_id_start_shared_by_a_moment_lists_the_candidates(home: list[str]) -> None:
    same_moment = sorted(r.id for r in RECORDS if r.trace_id == TRACE and r.ts_ns > T0)
    done = run(home, "lineage", same_moment[0][:13])
    message = h.assert_one_line_error(done)
    assert done.returncode == 2 and "ambiguous" in message and all(i in message for i in same_moment), message


# -- control characters -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["tail", "-n", "100"],
        ["story", TRACE],
        ["traces"],
        ["nodes"],
        ["lineage", "{evil}"],
        ["sql", "SELECT message FROM records WHERE level = 'ERROR'"],
        ["sql", "--format", "tsv", "SELECT message FROM records WHERE level = 'ERROR'"],
    ],
)
def test_no_text_output_obeys_control_characters(home: list[str], args: list[str]) -> None:
    """A message, a span name or a service cannot fake a line or send an escape sequence: all are escaped."""
    text = out(home, *(a.format(evil=named(EVIL).id) for a in args))
    assert "\x1b" not in text
    assert not [line for line in text.splitlines() if line.lstrip().startswith("FAKE")]
    assert "\\nFAKE" in text


# -- sql --format -------------------------------------------------------------------------------------------

QUERY = "SELECT NULL AS nothing, [1, 2] AS list, 'a,\"b\tc' AS text, 42 AS answer"
TEXT = 'a,"b\tc'


def test_sql_json_has_null_and_json_values(home: list[str]) -> None:
    expected = [{"nothing": None, "list": [1, 2], "text": TEXT, "answer": 42}]
    assert json.loads(out(home, "sql", "--format", "json", QUERY)) == expected
    assert as_json(home, "sql", QUERY) == expected


def test_sql_csv_and_tsv_leave_null_empty(home: list[str]) -> None:
    rows = list(csv.reader(io.StringIO(out(home, "sql", "--format", "csv", QUERY))))
    assert rows == [["nothing", "list", "text", "answer"], ["", "[1,2]", TEXT, "42"]]
    lines = out(home, "sql", "--format", "tsv", QUERY).splitlines()
    assert [line.split("\t") for line in lines] == [
        ["nothing", "list", "text", "answer"],
        ["", "[1,2]", TEXT.replace("\t", "\\t"), "42"],
    ]


def test_sql_table_is_aligned_and_marks_null(home: list[str]) -> None:
    for lines in (out(home, "sql", QUERY).splitlines(), out(home, "sql", "--format", "table", QUERY).splitlines()):
        header, rule, row, count = lines
        assert header.split() == ["nothing", "list", "text", "answer"]
        assert set(rule.replace(" ", "")) == {"-"}
        assert row.split()[:2] == ["NULL", "[1,2]"] and 'a,"b\\tc' in row and row.endswith("42")
        assert [len(part) for part in rule.split()] == [
            max(len(a), len(b)) for a, b in zip(header.split(), ["NULL", "[1,2]", 'a,"b\\tc', "42"], strict=True)
        ]
        assert count == "(1 row)"


def test_sql_writes_times_bytes_and_maps_as_json_does(homes: dict[str, list[str]]) -> None:
    """Never as Python reprs (``datetime.timedelta(days=3)``, ``b'abc'``), in every format (DuckDB's SQL)."""
    query = "SELECT DATE '2020-01-02' AS day, INTERVAL 3 DAY AS span, 'abc'::BLOB AS bytes, MAP([1], ['a']) AS map"
    expected = {"day": "2020-01-02", "span": "P3D", "bytes": base64.b64encode(b"abc").decode(), "map": {"1": "a"}}
    assert json.loads(out(homes["duckdb"], "sql", "--format", "json", query)) == [expected]
    (_, row) = list(csv.reader(io.StringIO(out(homes["duckdb"], "sql", "--format", "csv", query))))
    assert row == [*list(expected.values())[:3], json.dumps(expected["map"], separators=(",", ":"))]


# -- traces -------------------------------------------------------------------------------------------------


def test_traces_names_its_columns(home: list[str]) -> None:
    header, *lines = out(home, "traces").splitlines()
    assert header.split()[:2] == ["TRACE", "START"] and "DURATION" in header
    assert [line[2:].split()[0] for line in lines] == [OTHER, TWIN, TRACE]


# -- arguments ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["traces", "--limit", "-1"], ["--limit", "'-1'"]),
        (["traces", "--limit", "0"], ["--limit", "'0'"]),
        (["traces", "--limit", "99999999999999999999"], ["--limit"]),
        (["traces", "--offset", "-1"], ["--offset", "'-1'"]),
        (["traces", "--min-duration", "fast"], ["--min-duration", "'fast'"]),
        (["traces", "--min-duration", "2s", "--max-duration", "1s"], ["--min-duration", "--max-duration"]),
        (["traces", "--since", "1m", "--until", "1h"], ["--since", "--until"]),
        (["traces", "--since", "yesterday"], ["--since", "'yesterday'"]),
        (["nodes", "--limit", "-5"], ["--limit", "'-5'"]),
        (["tail", "-n", "-1"], ["-n", "'-1'"]),
        (["tail", "-n", "ten"], ["-n", "'ten'"]),
        (["story", TRACE, "--depth", "-1"], ["--depth", "'-1'"]),
        (["sql", "--format", "xml", "SELECT 1"], ["--format", "'xml'"]),
        (["sql", "--format", "csv", "--json", "SELECT 1"], ["--json", "--format csv"]),
        (["ui", "--port", "70000"], ["--port", "'70000'"]),
        (["tail", "-f", "--interval", "0"], ["--interval", "'0'"]),
        (["collect", "--from", "kafka://127.0.0.1:9", "--batch-size", "0"], ["--batch-size", "'0'"]),
        (["collect", "--from", "kafka://127.0.0.1:9", "--max-value-bytes", "-1"], ["--max-value-bytes", "'-1'"]),
        (["collect", "--from", "kafka://127.0.0.1:9", "--stats-interval", "nan"], ["--stats-interval", "'nan'"]),
        (["collect", "--from", "kafka://127.0.0.1:9", "--exit-when-idle", "-2"], ["--exit-when-idle", "'-2'"]),
    ],
)
def test_bad_arguments_are_one_line_errors(homes: dict[str, list[str]], args: list[str], words: list[str]) -> None:
    done = run(homes["duckdb"], *args)
    message = h.assert_one_line_error(done)
    assert done.returncode == 2 and done.stdout == ""
    assert all(w in message for w in words), message


def test_durations_beyond_the_stores_integers_are_refused(homes: dict[str, list[str]]) -> None:
    done = run(homes["duckdb"], "traces", "--min-duration", "99999999999999d")
    assert done.returncode == 2 and "--min-duration" in h.assert_one_line_error(done)


def test_a_missing_argument_is_a_one_line_error(tmp_path: Path) -> None:
    done = h.cli(tmp_path, "story")
    assert done.returncode == 2 and "trace_id" in h.assert_one_line_error(done)
