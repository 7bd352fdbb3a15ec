"""The ``zoomtrace`` command line (issue 2 §9, §10).

Every listing has ``--json`` that parses (strictly); the store is selected with
``--home`` or ``$ZOOMTRACE_HOME``; errors (unknown trace id, missing home,
corrupt store, bad SQL, write SQL) are one clear line on stderr and a non-zero
exit status, never a traceback; ingestion is idempotent; two commands at once
do not fail on a lock.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

try:
    import helpers as h
except ImportError:  # tests/ imported as a package
    from tests import helpers as h

APP = """
import json
import logging

import zoomtrace as zt

zt.init("cli-app", env="ci", group="cli", version="0.9")
log = logging.getLogger("cli.app")
with zt.span("first-order", order=1) as first:
    log.info("placing order %d", 1)
    placed = zt.event({"order": 1, "total": 30}, type="OrderPlaced")
    shipped = zt.event({"order": 1, "carrier": "ups"}, type="Shipped", sources=[placed])
try:
    with zt.span("failing-order", order=2) as failing:
        raise RuntimeError("out of stock")
except RuntimeError:
    pass
with zt.span("later-order", order=3) as later:
    log.warning("order %d is late", 3)
print("RESULT " + json.dumps({
    "first": first.trace_id, "failing": failing.trace_id, "later": later.trace_id,
    "placed": placed, "shipped": shipped,
}), flush=True)
"""


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    base = tmp_path_factory.mktemp("cli")
    repo = base / "app"
    h.make_repo(repo, {"app.py": APP})
    home = base / "home"
    ran = h.result(h.run_script(repo / "app.py", home))
    return {"base": base, "repo": repo, "home": home, "run": ran}


def record_count(home: Path) -> int:
    (row,) = h.sql(home, "SELECT count(*) AS n FROM records")
    return int(row["n"])


# -- every listing has --json --------------------------------------------------------------------


def test_traces_json_newest_first(app: dict[str, Any]) -> None:
    rows = h.cli_json(app["home"], "traces")
    run = app["run"]
    assert [r["trace_id"] for r in rows] == [run["later"], run["failing"], run["first"]]


def test_story_json(app: dict[str, Any]) -> None:
    st = h.story(app["home"], app["run"]["first"])
    assert [s["name"] for s in st["spans"]] == ["first-order"]
    assert {n["service"] for n in st["nodes"]} == {"cli-app"}
    assert [r["kind"] for r, _ in h.all_records(st)] == ["log", "event", "event"]


def test_failing_trace_story_shows_the_error(app: dict[str, Any]) -> None:
    st = h.story(app["home"], app["run"]["failing"])
    span = h.span_named(st, "failing-order")
    assert span["status"] == "error"
    assert "out of stock" in json.dumps(span)


def test_story_text_names_sources_by_the_random_end_of_their_ids(app: dict[str, Any]) -> None:
    """A UUIDv7 starts with its millisecond: ``← 01a233d9-f8d7`` was the same for every source of a moment."""
    run = app["run"]
    out = h.cli(app["home"], "story", run["first"])
    assert out.returncode == 0, out.stderr
    (line,) = [line for line in out.stdout.splitlines() if "Shipped" in line]
    assert f"← {run['placed'][-12:]}" in line, line
    assert run["placed"][:13] not in line


def test_nodes_json(app: dict[str, Any]) -> None:
    (row,) = h.nodes(app["home"])
    assert set(row) >= {
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
    }
    assert (row["service"], row["env"], row["group"], row["version"], row["stop_cause"]) == (
        "cli-app",
        "ci",
        "cli",
        "0.9",
        "exit",
    )
    assert row["commit"] == h.git(app["repo"], "rev-parse", "HEAD")


def test_tail_json(app: dict[str, Any]) -> None:
    rows = h.cli_json(app["home"], "tail")
    assert isinstance(rows, list) and rows
    ids = {r["id"] for r in rows}
    assert app["run"]["shipped"] in ids or any(r.get("message") == "order 3 is late" for r in rows)


def test_sql_json(app: dict[str, Any]) -> None:
    assert h.sql(app["home"], "SELECT 41 + 1 AS answer") == [{"answer": 42}]
    rows = h.sql(app["home"], f"SELECT type FROM records WHERE id = '{app['run']['shipped']}'")
    assert rows == [{"type": "Shipped"}]


def test_lineage_json(app: dict[str, Any]) -> None:
    placed, shipped = app["run"]["placed"], app["run"]["shipped"]
    down = h.cli_json(app["home"], "lineage", placed)
    up = h.cli_json(app["home"], "lineage", shipped)
    assert shipped in json.dumps(down)
    assert placed in json.dumps(up)


def test_ingest_json_and_idempotence(app: dict[str, Any]) -> None:
    report = h.cli_json(app["home"], "ingest")
    assert isinstance(report, dict)
    h.cli_json(app["home"], "ingest")  # again: nothing new, nothing doubled
    # Every record in the spool is stored once: 3 spans, 2 logs, 2 events (and the node's own records).
    (row,) = h.sql(app["home"], "SELECT count(*) AS n, count(DISTINCT id) AS d FROM records WHERE kind <> 'node'")
    assert row["n"] == row["d"] == 7


@pytest.mark.parametrize("args", [["traces"], ["nodes"], ["tail"], ["ingest"], ["sql", "SELECT 1 AS one"]])
def test_human_output_works(app: dict[str, Any], args: list[str]) -> None:
    out = h.cli(app["home"], *args)
    assert out.returncode == 0, out.stderr
    assert "Traceback" not in out.stderr
    assert out.stdout.strip()


def test_zoomtrace_home_environment_variable_selects_the_store(app: dict[str, Any], tmp_path: Path) -> None:
    out = h.cli(None, "traces", "--json", cwd=tmp_path, env=h.child_env(app["home"]))
    assert out.returncode == 0, out.stderr
    assert app["run"]["first"] in {r["trace_id"] for r in json.loads(out.stdout)}


def test_console_script(app: dict[str, Any]) -> None:
    exe = Path(h.PY).parent / "zoomtrace"
    assert exe.exists(), "the zoomtrace command is not installed next to the interpreter"
    out = subprocess.run(
        [str(exe), "--home", str(app["home"]), "nodes", "--json"],
        capture_output=True,
        text=True,
        timeout=h.TIMEOUT,
        env=h.child_env(None),
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)[0]["service"] == "cli-app"


def test_two_commands_at_once_do_not_fail_on_a_lock(app: dict[str, Any]) -> None:
    cmds = [
        [h.PY, "-m", "zoomtrace", "--home", str(app["home"]), *args, "--json"]
        for args in (
            ["story", app["run"]["first"]],
            ["traces"],
            ["nodes"],
            ["ingest"],
            ["story", app["run"]["later"]],
            ["sql", "SELECT count(*) AS n FROM records"],
        )
    ]
    procs = [
        subprocess.Popen(c, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=h.child_env(None))
        for c in cmds
    ]
    for p in procs:
        out, err = p.communicate(timeout=h.TIMEOUT)
        assert p.returncode == 0, f"{p.args[4:]}: {err}"
        json.loads(out)


# -- errors: one clear line, non-zero exit, no traceback -----------------------------------------


def test_unknown_trace_id(app: dict[str, Any]) -> None:
    unknown = "0123456789abcdef0123456789abcdef"
    line = h.assert_one_line_error(h.cli(app["home"], "story", unknown))
    assert unknown in line or "not found" in line.lower() or "unknown" in line.lower()
    h.assert_one_line_error(h.cli(app["home"], "story", unknown, "--json"))


def test_malformed_trace_id(app: dict[str, Any]) -> None:
    h.assert_one_line_error(h.cli(app["home"], "story", "not-a-trace-id"))


def test_unknown_record_id_for_lineage(app: dict[str, Any]) -> None:
    h.assert_one_line_error(h.cli(app["home"], "lineage", "01900000-0000-7000-8000-000000000000"))


@pytest.mark.parametrize(
    "args", [["traces"], ["story", "0123456789abcdef0123456789abcdef"], ["nodes"], ["sql", "SELECT 1"]]
)
def test_missing_home(tmp_path: Path, args: list[str]) -> None:
    missing = tmp_path / "no" / "such" / "home"
    line = h.assert_one_line_error(h.cli(missing, *args, cwd=tmp_path))
    assert str(missing) in line or "home" in line.lower() or "no such" in line.lower()


@pytest.mark.parametrize("query", ["SELEC 1", "SELECT * FROM no_such_table", "SELECT (", ""])
def test_bad_sql(app: dict[str, Any], query: str) -> None:
    h.assert_one_line_error(h.cli(app["home"], "sql", query))


def test_write_sql_is_refused_and_changes_nothing(app: dict[str, Any], tmp_path: Path) -> None:
    before = record_count(app["home"])
    leak = tmp_path / "leak.csv"
    other = tmp_path / "other.duckdb"
    queries = [
        "DELETE FROM records",
        "DROP TABLE records",
        "UPDATE records SET message = 'changed'",
        "CREATE TABLE forged (a INTEGER)",
        "SELECT 1; DELETE FROM records",
        f"COPY records TO '{leak}'",
        f"ATTACH '{other}' AS other",
        "  delete from records  ",
        "WITH x AS (DELETE FROM records RETURNING id) SELECT count(*) FROM x",
        "WITH x AS (UPDATE records SET message = 'changed' RETURNING id) SELECT count(*) FROM x",
        "WITH x AS (INSERT INTO records (id) VALUES ('forged') RETURNING id) SELECT count(*) FROM x",
    ]
    # All at once: each must be refused on its own (and none may fail on a lock instead).
    procs = [
        subprocess.Popen(
            [h.PY, "-m", "zoomtrace", "--home", str(app["home"]), "sql", q],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=h.child_env(None),
        )
        for q in queries
    ]
    for query, p in zip(queries, procs, strict=True):
        out, err = p.communicate(timeout=h.TIMEOUT)
        line = h.assert_one_line_error(subprocess.CompletedProcess(p.args, p.returncode, out, err))
        assert "lock" not in line.lower(), f"{query!r}: {line}"
    assert record_count(app["home"]) == before
    assert not leak.exists()
    assert not other.exists()
    assert h.sql(app["home"], "SELECT count(*) AS n FROM records WHERE message = 'changed' OR id = 'forged'") == [
        {"n": 0}
    ]


def test_corrupt_store_file(app: dict[str, Any], tmp_path: Path) -> None:
    home = tmp_path / "home"
    h.result(h.run_script(app["repo"] / "app.py", home))
    h.cli_json(home, "ingest")
    store_files = [p for p in home.rglob("*") if p.is_file() and "spool" not in p.relative_to(home).parts]
    assert store_files, "no store file was created under the home"
    for p in store_files:
        p.write_bytes(os.urandom(64) + b"this is not a database" * 1000)
    line = h.assert_one_line_error(h.cli(home, "traces"))
    assert "Traceback" not in line


# -- the demo ------------------------------------------------------------------------------------


def processes_mentioning(text: str) -> list[int]:
    """Live processes whose command line or environment mentions ``text``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            blob = (entry / "cmdline").read_bytes() + (entry / "environ").read_bytes()
        except OSError:
            continue
        if text.encode() in blob:
            found.append(int(entry.name))
    return found


def test_demo_tells_a_multi_process_story_and_leaves_no_process_behind(tmp_path: Path) -> None:
    home = tmp_path / "demo-home"
    out = h.cli(home, "demo", "--json", cwd=tmp_path, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "Traceback" not in out.stderr
    st = json.loads(out.stdout)
    assert set(st) >= {"trace_id", "nodes", "spans", "records"}
    assert len({n["node_id"] for n in st["nodes"]}) >= 2 and len({n["service"] for n in st["nodes"]}) >= 2
    spans = h.all_spans(st)
    assert len({s["node_id"] for s in spans}) >= 2, "the story's spans should cross processes"
    assert any(s["status"] == "error" for s in spans), "one payment fails with an exception"
    assert any(s["links"] for s in spans), "...and is retried (follows-from)"
    records = [r for r, _ in h.all_records(st)]
    assert any(r["kind"] == "event" and r["sources"] for r in records), "events derived from one another"
    assert any(r["kind"] == "log" for r in records)
    assert processes_mentioning(str(home)) == []
    # The demo's story is in the store, like any other.
    assert h.story(home, st["trace_id"])["trace_id"] == st["trace_id"]


# -- choosing the store: --store and $ZOOMTRACE_STORE -------------------------------------------


def test_store_option_and_environment_variable_choose_the_store(app: dict[str, Any], tmp_path: Path) -> None:
    """``--store`` beats ``$ZOOMTRACE_STORE``, which beats the home's own store; each is filled from the spool."""
    home = app["home"]
    from_option, from_env = tmp_path / "option.duckdb", tmp_path / "env.duckdb"
    env = h.child_env(None, ZOOMTRACE_STORE=f"duckdb://{from_env}")
    out = h.cli(home, "--store", f"duckdb://{from_option}", "traces", "--json", env=env)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == h.cli_json(home, "traces")
    assert from_option.exists() and not from_env.exists()
    out = h.cli(home, "traces", "--json", env=env)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == h.cli_json(home, "traces")
    assert from_env.exists()


# -- the same commands on ClickHouse's engine in-process (chdb://) --------------------------------


@pytest.fixture(scope="module")
def chdb(app: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> str:
    """A chdb:// store of its own for the module's home (filled from the home's spool by the first command)."""
    return f"chdb://{tmp_path_factory.mktemp('chdb') / 'store'}"


def on_chdb(app: dict[str, Any], chdb: str, *args: str) -> Any:
    return h.cli_json(app["home"], "--store", chdb, *args)


def test_chdb_story_json_is_the_same_as_on_the_default_store(app: dict[str, Any], chdb: str) -> None:
    for name in ("first", "failing", "later"):
        trace_id = app["run"][name]
        assert on_chdb(app, chdb, "story", trace_id) == h.story(app["home"], trace_id), name


@pytest.mark.parametrize("args", [["traces"], ["traces", "--errors"], ["nodes"]])
def test_chdb_listings_are_the_same_as_on_the_default_store(app: dict[str, Any], chdb: str, args: list[str]) -> None:
    assert on_chdb(app, chdb, *args) == h.cli_json(app["home"], *args)


def test_chdb_lineage_and_tail(app: dict[str, Any], chdb: str) -> None:
    for record_id in (app["run"]["placed"], app["run"]["shipped"]):
        assert on_chdb(app, chdb, "lineage", record_id) == h.cli_json(app["home"], "lineage", record_id)
    newest = on_chdb(app, chdb, "tail")
    assert newest and {r["id"] for r in newest} == {r["id"] for r in h.cli_json(app["home"], "tail")}


def test_chdb_sql_and_idempotent_ingest(app: dict[str, Any], chdb: str) -> None:
    shipped = app["run"]["shipped"]
    assert on_chdb(app, chdb, "sql", f"SELECT type FROM records WHERE id = '{shipped}'") == [{"type": "Shipped"}]
    on_chdb(app, chdb, "ingest")
    report = on_chdb(app, chdb, "ingest")
    assert report["new"] == 0
    (row,) = on_chdb(app, chdb, "sql", "SELECT count() AS n, uniqExact(id) AS d FROM records")
    assert int(row["n"]) == int(row["d"]) == record_count(app["home"])


def test_chdb_speaks_the_opentelemetry_exporters_tables(app: dict[str, Any], chdb: str) -> None:
    spans = on_chdb(app, chdb, "sql", "SELECT TraceId, SpanName, ServiceName, Duration FROM otel_traces")
    assert {(s["TraceId"], s["SpanName"], s["ServiceName"]) for s in spans} >= {
        (app["run"]["first"], "first-order", "cli-app"),
        (app["run"]["failing"], "failing-order", "cli-app"),
    }
    logs = on_chdb(app, chdb, "sql", "SELECT Body, SeverityText FROM otel_logs")
    assert {"Body": "placing order 1", "SeverityText": "INFO"} in logs


@pytest.mark.parametrize("args", [["traces"], ["nodes"], ["tail"], ["story", "{first}"]])
def test_chdb_human_output_works(app: dict[str, Any], chdb: str, args: list[str]) -> None:
    out = h.cli(app["home"], "--store", chdb, *(a.format(**app["run"]) for a in args))
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() and "Traceback" not in out.stderr


def test_chdb_commands_at_once_take_turns(app: dict[str, Any], chdb: str) -> None:
    """chDB lets one process open a data directory at a time: commands wait for each other, never fail."""
    cmds = [
        [h.PY, "-m", "zoomtrace", "--home", str(app["home"]), "--store", chdb, *args, "--json"]
        for args in (["story", app["run"]["first"]], ["traces"], ["nodes"], ["ingest"], ["tail"])
    ]
    procs = [
        subprocess.Popen(c, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=h.child_env(None))
        for c in cmds
    ]
    for p in procs:
        out, err = p.communicate(timeout=h.TIMEOUT * 2)
        assert p.returncode == 0, f"{p.args[7:]}: {err}"
        json.loads(out.splitlines()[0] if p.args[7] == "tail" else out)


def test_chdb_viewer_answers_as_the_command_line_does(app: dict[str, Any], chdb: str) -> None:
    from starlette.testclient import TestClient

    from zoomtrace.ui import create_app

    client = TestClient(create_app(app["home"], store=chdb), base_url="http://127.0.0.1:8087")
    trace_id = app["run"]["first"]
    assert client.get(f"/api/trace/{trace_id}").json() == on_chdb(app, chdb, "story", trace_id)
    assert client.get("/api/traces").json()["traces"] == on_chdb(app, chdb, "traces")
    assert client.get("/api/about").json()["store"] == chdb
    pulse = client.get("/api/pulse")
    assert pulse.status_code == 200 and pulse.json()["version"]


OTLP_SPAN = {
    "resourceSpans": [
        {
            "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "otel-svc"}}]},
            "scopeSpans": [
                {
                    "spans": [
                        {
                            "traceId": "5b8efff798038103d269b633813fc60d",
                            "spanId": "eee19b7ec3c1b175",
                            "name": "otlp-span",
                            "startTimeUnixNano": "1700000000000000000",
                            "endTimeUnixNano": "1700000000500000000",
                        }
                    ]
                }
            ],
        }
    ]
}


def test_the_otlp_receiver_writes_to_the_store_it_is_given(tmp_path: Path) -> None:
    import http.client
    import signal

    home, store = tmp_path / "home", f"chdb://{tmp_path / 'otlp-store'}"
    command = [h.PY, "-m", "zoomtrace", "--home", str(home), "--store", store]
    # The span is from 2023: kept forever, not dropped at once by the default 30-day retention.
    command += ["--retention", "forever", "collect", "--otlp", "127.0.0.1:0"]
    proc = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=h.child_env(None),
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert f"storing into {store}" in line, line
        port = int(line.split("listening on ")[1].split()[0].rsplit(":", 1)[1])
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        conn.request("POST", "/v1/traces", json.dumps(OTLP_SPAN), {"Content-Type": "application/json"})
        response = conn.getresponse()
        assert response.status == 200, response.read()
        conn.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=h.TIMEOUT)
    assert proc.returncode == 0, err
    told = h.cli_json(home, "--store", store, "story", "5b8efff798038103d269b633813fc60d")
    assert [s["name"] for s in told["spans"]] == ["otlp-span"]
    assert not (home / "store.duckdb").exists()


def test_demo_on_chdb_tells_the_same_story(tmp_path: Path) -> None:
    home, store = tmp_path / "demo-home", f"chdb://{tmp_path / 'demo-store'}"
    out = h.cli(home, "--store", store, "demo", "--json", cwd=tmp_path, timeout=90)
    assert out.returncode == 0, out.stderr
    told = json.loads(out.stdout)
    assert len({n["service"] for n in told["nodes"]}) >= 2
    assert not (home / "store.duckdb").exists(), "the demo's services record into the spool, the story is on chdb"
    assert h.cli_json(home, "--store", store, "story", told["trace_id"]) == told
    assert h.story(home, told["trace_id"]) == told  # the home's spool tells the same story on the default store


# -- story of a big trace: --span, --depth, --limit, --ndjson --------------------------------------------

TREE = "5a" * 16
BIG = "b9" * 16
T0 = 1_800_000_000_000_000_000


def _big_trace() -> list[Any]:
    """One span and more logs under it than ``story --json`` writes (50,000 records)."""
    from zoomtrace.wire.record import Record, uuid7

    node, root = uuid7(T0 - 10**6), "a0" * 8
    out = [Record(id=uuid7(T0), kind="span", type="batch", ts_ns=T0, node_id=node, trace_id=BIG, span_id=root)]
    for i in range(50_000):
        ts = T0 + 1000 * (i + 1)
        out.append(
            Record(
                id=uuid7(ts),
                kind="log",
                type="app",
                ts_ns=ts,
                node_id=node,
                trace_id=BIG,
                span_id=root,
                message=f"line {i}",
            )
        )
    return out


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A home holding a branching trace and a big one; the branching trace's whole story (--json)."""
    home = tmp_path_factory.mktemp("tree") / "home"
    h.write_store(home, [*h.branching_trace(TREE, T0), *_big_trace()])
    return {"home": home, "story": h.story(home, TREE)}


def story_lines(out: subprocess.CompletedProcess[str]) -> list[str]:
    """The span and record lines of ``story``'s tree (after its header and the blank line)."""
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    return lines[lines.index("") + 1 :]


def size(spans: list[dict[str, Any]]) -> int:
    """Spans and records of a story's span tree."""
    return sum(1 + len(s["records"]) for s, _ in h.walk_spans(spans))


def pruned(spans: list[dict[str, Any]], depth: int) -> list[dict[str, Any]]:
    """A story's span tree down to ``depth`` levels (as ``--depth`` shows it)."""
    return [{**s, "children": pruned(s["children"], depth - 1) if depth > 1 else []} for s in spans]


def test_story_depth_shows_the_top_of_the_tree(tree: dict[str, Any]) -> None:
    full = tree["story"]
    told = h.cli_json(tree["home"], "story", TREE, "--depth", "2")
    assert told == {**full, "spans": pruned(full["spans"], 2)}
    assert [s["name"] for s in told["spans"]] == ["GET /order", "webhook", "loop-a"]
    lines = story_lines(h.cli(tree["home"], "story", TREE, "--depth", "1"))
    assert [line.split("  [")[0] for line in lines if "▸" in line] == ["▸ GET /order", "▸ webhook", "▸ loop-a"]
    assert any("order received" in line for line in lines) and not any("card declined" in line for line in lines)
    assert any("under no span" in line for line in lines)  # a record of no span is at the top of the trace


def test_story_span_shows_one_subtree(tree: dict[str, Any]) -> None:
    full = tree["story"]
    pay = h.span_named(full, "pay")
    told = h.cli_json(tree["home"], "story", TREE, "--span", pay["span_id"])
    assert told == {**full, "spans": [pay], "records": []}
    told = h.cli_json(tree["home"], "story", TREE, "--span", pay["span_id"], "--depth", "1")
    assert told["spans"] == [{**pay, "children": []}]
    lines = story_lines(h.cli(tree["home"], "story", TREE, "--span", pay["span_id"]))
    assert lines[0].startswith("▸ pay  [billing]")
    assert [line.strip().split("  [")[0] for line in lines if "▸" in line] == ["▸ pay", "▸ ledger", "▸ fraud-check"]
    message = h.assert_one_line_error(h.cli(tree["home"], "story", TREE, "--span", "0123456789abcdef"))
    assert "no span '0123456789abcdef'" in message


def test_story_limit_says_what_it_left_out(tree: dict[str, Any]) -> None:
    full = tree["story"]
    total = size(full["spans"]) + len(full["records"])
    every = story_lines(h.cli(tree["home"], "story", TREE))
    lines = story_lines(h.cli(tree["home"], "story", TREE, "--limit", "4"))
    assert lines[:-1] == every[: len(lines) - 1]  # the same tree, cut short
    assert (
        lines[-1] == f"… {total - 4:,} more spans and records left out: raise --limit, or narrow with --span or --depth"
    )
    assert sum("▸" in line or line.lstrip().split(" ")[0] in ("INFO", "DEBUG", "EVENT") for line in lines[:-1]) == 4
    assert story_lines(h.cli(tree["home"], "story", TREE, "--limit", str(total))) == every


def test_story_ndjson_streams_header_spans_then_records(tree: dict[str, Any]) -> None:
    full = tree["story"]
    out = h.cli(tree["home"], "story", TREE, "--ndjson")
    assert out.returncode == 0, out.stderr
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    header = lines[0]["trace"]
    assert {k: header[k] for k in ("trace_id", "start_ns", "end_ns", "duration_ns", "nodes")} == {
        k: full[k] for k in ("trace_id", "start_ns", "end_ns", "duration_ns", "nodes")
    }
    assert header["unparented"] == len(full["records"]) and header["counts"]["spans"] == len(h.all_spans(full))
    spans = [line for line in lines[1:] if "span" in line]
    expected = [
        ({k: v for k, v in s.items() if k not in ("records", "children")}, depth)
        for s, depth in _depth_first(full["spans"])
    ]
    assert [(line["span"], line["depth"]) for line in spans] == expected
    records = [line["record"] for line in lines[1 + len(spans) :]]
    assert len(lines) == 1 + len(spans) + len(records)
    in_story = sorted((r for r, _ in h.all_records(full)), key=lambda r: (r["ts_ns"], r["id"]))
    assert [r["id"] for r in records] == [r["id"] for r in in_story]
    for got, want in zip(records, in_story, strict=True):
        assert {k: got[k] for k in want} == want  # as the story has it, with every field of the record


def _depth_first(spans: list[dict[str, Any]]) -> list[tuple[dict[str, Any], int]]:
    out: list[tuple[dict[str, Any], int]] = []
    for s in spans:
        out.append((s, 0))
        out += [(c, depth + 1) for c, depth in _depth_first(s["children"])]
    return out


def test_story_ndjson_of_a_subtree_with_a_limit(tree: dict[str, Any]) -> None:
    pay = h.span_named(tree["story"], "pay")
    out = h.cli(tree["home"], "story", TREE, "--ndjson", "--span", pay["span_id"], "--limit", "2")
    assert out.returncode == 0, out.stderr
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    assert [list(line) for line in lines] == [["trace"], ["span", "depth"], ["span", "depth"]]
    assert [lines[1]["span"]["name"], lines[2]["span"]["name"]] == ["pay", "ledger"]
    assert out.stderr.strip() == f"zoomtrace: {size([pay]) - 2:,} more lines left out (--limit 2)"


def test_story_json_of_a_big_trace_points_to_ndjson(tree: dict[str, Any]) -> None:
    out = h.cli(tree["home"], "story", BIG, "--json")
    assert out.returncode == 2 and out.stdout == ""
    message = h.assert_one_line_error(out)
    assert "50,001 records, more than 50,000" in message and f"zoomtrace story {BIG} --ndjson" in message
    narrowed = h.cli_json(tree["home"], "story", BIG, "--depth", "1")  # --json with --depth: no limit
    assert len(narrowed["spans"][0]["records"]) == 50_000
    out = h.cli(tree["home"], "story", BIG, "--ndjson")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert len(lines) == 1 + 1 + 50_000
    assert [json.loads(lines[i])["record"]["message"] for i in (2, -1)] == ["line 0", "line 49999"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--json", "--ndjson"], "--json or --ndjson, not both"),
        (["--json", "--limit", "5"], "--limit is for the tree and --ndjson"),
    ],
)
def test_story_flags_that_do_not_go_together(tree: dict[str, Any], args: list[str], message: str) -> None:
    out = h.cli(tree["home"], "story", TREE, *args)
    assert out.returncode == 2 and message in h.assert_one_line_error(out)


@pytest.mark.parametrize("flag", ["--depth", "--limit"])
def test_story_counts_are_positive(tree: dict[str, Any], flag: str) -> None:
    out = h.cli(tree["home"], "story", TREE, flag, "0")
    assert out.returncode == 2 and "not a positive whole number: '0'" in out.stderr
