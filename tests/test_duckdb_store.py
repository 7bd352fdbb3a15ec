"""What the DuckDB store alone does, beyond the store contract (tests/test_store.py runs that on every store):
its trace summaries replaced in place and vacuumed, its SQL dialect (DuckDB's statements refused, VALUES,
DESCRIBE, SHOW, SUMMARIZE, EXPLAIN ANALYZE) and a connection that cannot touch files, and its sessions: a
home without a store, a corrupt file, two processes taking turns, a busy lock, a file held by DuckDB itself.

Every test uses a real DuckDB file under tmp_path (and real child processes for the sessions); records are
built with the Record struct. Expected values are derived from the inputs written in each test.
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest

from support.records import MS, NODE_A, checkout_trace, rec
from zoomtrace.collect import open_session
from zoomtrace.errors import ReadOnlySQL, StoreError
from zoomtrace.store.duckdb import ROW_GROUP_SIZE, DuckStore

SRC = Path(__file__).resolve().parents[1] / "src"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[DuckStore]:
    s = DuckStore(tmp_path / "store.duckdb")
    try:
        yield s
    finally:
        s.close()


def count(store: DuckStore, table: str = "records") -> int:
    return int(store.sql(f"SELECT count(*) FROM {table}")[1][0][0])


# -- trace summaries ---------------------------------------------------------------------------


def test_replaced_trace_summaries_are_counted_and_vacuumed(store: DuckStore) -> None:
    records = checkout_trace()
    store.ingest(records[:3])
    store.ingest(records[3:])  # the summary of the trace is replaced once
    assert store.sql("SELECT value FROM meta WHERE key = 'replaced_rows'")[1] == [("1",)]
    assert store.maintain() is False  # far below the threshold
    assert store.maintain(force=True) is True
    assert store.sql("SELECT value FROM meta WHERE key = 'replaced_rows'")[1] == [("0",)]
    (t,) = store.traces()
    assert (t["record_count"], t["span_count"], t["duration_ns"]) == (6, 3, 120 * MS)
    assert count(store, "traces") == 1


# -- bulk writes -------------------------------------------------------------------------------


def test_a_batch_fills_row_groups_of_row_group_size(store: DuckStore) -> None:
    """Row groups of ROW_GROUP_SIZE rows (DuckDB's default is 122,880): a batch of 100,000 records fills one,
    which DuckDB writes to the file as it inserts instead of through its write-ahead log."""
    records = [rec("log", "app", i // 100, message=f"m{i}") for i in range(ROW_GROUP_SIZE + 1000)]
    lines = msgspec.json.Encoder().encode_lines(records)
    assert store.write(store.prepare([], [lines])).new == len(records)
    assert store.sql("SELECT count(DISTINCT row_group_id) FROM pragma_storage_info('records')")[1] == [(2,)]
    assert count(store) == len(records)


@pytest.mark.parametrize("as_lines", [True, False], ids=["lines", "records"])
def test_a_record_larger_than_the_least_object_bound_is_stored(store: DuckStore, as_lines: bool) -> None:
    """``read_json`` is told the longest part of the chunk as its object bound, so a long record still fits."""
    long = rec("event", "Snapshot", 1, payload={"text": "x" * (6 * 2**20)})
    short = rec("log", "app", 2, message="short")
    batch = store.prepare([], [msgspec.json.Encoder().encode_lines([short, long])]) if as_lines else None
    assert store.write(batch or store.prepare([short, long])).new == 2
    assert store.record(long.id)["payload"] == long.payload


def test_the_session_spills_next_to_the_store(store: DuckStore) -> None:
    """The session's database is attached to an in-memory one, whose spill directory would be ``./.tmp``."""
    (spill,) = store._con.execute("SELECT current_setting('temp_directory')").fetchone() or (None,)
    assert spill == f"{store.path}.tmp"


# -- read-only SQL: DuckDB's dialect (what both stores do is in tests/test_store.py) -----------


@pytest.mark.parametrize(
    "query",
    [
        "DELETE FROM records",  # without WHERE: not a ClickHouse statement
        "UPDATE records SET message = 'x'",
        "CREATE MACRO m() AS 1",
        "ATTACH '/tmp/zoomtrace-evil.duckdb' AS evil",
        "DETACH store",
        "COPY records TO '/tmp/zoomtrace-evil.csv'",
        "EXPORT DATABASE '/tmp/zoomtrace-evil'",
        "PRAGMA show_tables",
        "RESET threads",
        "INSTALL httpfs",
        "LOAD httpfs",
        "CHECKPOINT",
        "VACUUM",
        "CALL pragma_version()",
        "EXPLAIN ANALYZE DELETE FROM records",
        "EXPLAIN ANALYZE /* hidden */ INSERT INTO records (id) VALUES ('x')",
        "MERGE INTO meta USING meta AS m ON true WHEN MATCHED THEN DELETE",
        # Data-modifying CTEs: DuckDB's parser calls them SELECT statements (issue 12, item 9).
        "WITH x AS (DELETE FROM records RETURNING id) SELECT count(*) FROM x",
        "WITH x AS (UPDATE records SET message = 'x' RETURNING id) SELECT count(*) FROM x",
        "WITH x AS (INSERT INTO meta VALUES ('k', 'v') RETURNING key) SELECT count(*) FROM x",
        "WITH x AS (DELETE FROM meta RETURNING key) SELECT * FROM records",
    ],
)
def test_sql_rejects_anything_but_one_read(store: DuckStore, query: str) -> None:
    store.ingest([rec("log", "app", 1, message="keep me")])
    meta = store.sql("SELECT * FROM meta ORDER BY key")[1]
    with pytest.raises(ReadOnlySQL):
        store.sql(query)
    assert store.sql("SELECT message FROM records")[1] == [("keep me",)]
    assert store.sql("SELECT * FROM meta ORDER BY key")[1] == meta


@pytest.mark.parametrize(
    "query",
    [
        "DELETE FROM records",
        "UPDATE records SET message = 'x'",
        "INSERT INTO meta VALUES ('k', 'v')",
        "WITH x AS (DELETE FROM records RETURNING id) SELECT count(*) FROM x",
        "CREATE TABLE forged (a INTEGER)",
        "DROP TABLE records",
        "ALTER TABLE records ADD COLUMN x INTEGER",
        "CREATE MACRO m() AS 1",
    ],
)
def test_read_only_is_a_property_of_the_connection(
    store: DuckStore, query: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the statement classifier out of the way, the connection itself refuses to write."""
    from zoomtrace.store.duckdb import _reader

    store.ingest([rec("log", "app", 1, message="keep me")])
    meta = store.sql("SELECT * FROM meta ORDER BY key")[1]
    monkeypatch.setattr(_reader, "check_read_only", lambda query: None)
    with pytest.raises(ReadOnlySQL, match="read-only"):
        store.sql(query)
    assert store.sql("SELECT message FROM records")[1] == [("keep me",)]
    assert store.sql("SELECT * FROM meta ORDER BY key")[1] == meta
    assert "forged" not in {r[0] for r in store.sql("SHOW TABLES")[1]}
    # The session goes on: it still writes through its own connection.
    store.ingest([rec("log", "app", 2, message="and me")])
    assert len(store.sql("SELECT * FROM records")[1]) == 2


def test_sql_reads_values(store: DuckStore) -> None:
    store.ingest([rec("log", "app", 1, message="hello", level="INFO")])
    assert store.sql("VALUES (1, 'a')")[1] == [(1, "a")]


def test_sql_describe_show_summarize_explain(store: DuckStore) -> None:
    columns, rows = store.sql("DESCRIBE records")
    assert "column_name" in columns and "trace_id" in [r[0] for r in rows]
    assert {"records", "traces", "nodes", "blobs"} <= {r[0] for r in store.sql("SHOW TABLES")[1]}
    assert store.sql("SUMMARIZE traces")[1] is not None
    assert store.sql("EXPLAIN SELECT * FROM records")[1]
    assert store.sql("EXPLAIN ANALYZE SELECT count(*) FROM records")[1]


def test_sql_cannot_read_files(store: DuckStore) -> None:
    # reading files is not part of reading the store
    with pytest.raises(StoreError, match=r"(?i)permission|disabled"):
        store.sql("SELECT * FROM read_text('/etc/hostname')")
    # the session still works after a failed query
    assert store.sql("SELECT 42")[1] == [(42,)]


# -- sessions ----------------------------------------------------------------------------------


def test_open_store_without_data_explains_what_to_do(tmp_path: Path) -> None:
    home = tmp_path / "nothing-here"
    with pytest.raises(StoreError) as info, open_session(home):
        pass
    assert "zoomtrace.init" in str(info.value) and "--home" in str(info.value)
    assert not home.exists()
    with open_session(home, create=True) as s:
        assert s.traces() == []
    assert (home / "store.duckdb").exists()


def test_corrupt_store_file_is_named_with_the_way_out(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    path = home / "store.duckdb"
    path.write_bytes(b"this is not a database" * 1000)
    with pytest.raises(StoreError) as info, open_session(home):
        pass
    message = str(info.value)
    assert str(path) in message and "move it away" in message.lower() and "spool" in message
    # a truncated real store is refused the same way
    path.unlink()
    with open_session(home, create=True) as s:
        s.write(s.prepare([rec("log", "app", 1)]))
    path.write_bytes(path.read_bytes()[:5000])
    with pytest.raises(StoreError, match=r"(?i)move it away"), open_session(home):
        pass


def _session_script(home: Path, hold_s: float) -> str:
    return textwrap.dedent(f"""
        import json, sys, time
        sys.path.insert(0, {str(SRC)!r})
        from pathlib import Path
        from zoomtrace.collect import open_session
        with open_session(Path({str(home)!r})) as store:
            entered = time.time()
            n = store.sql("SELECT count(*) FROM records")[1][0][0]
            time.sleep({hold_s})
            left = time.time()
        print(json.dumps({{"entered": entered, "left": left, "records": n}}))
    """)


def test_two_processes_share_the_store_without_lock_errors(tmp_path: Path) -> None:
    from zoomtrace.wire.record import encoder
    from zoomtrace.wire.spool import SegmentWriter

    home = tmp_path / "home"
    writer = SegmentWriter(home / "spool", NODE_A)
    writer.write(encoder.encode([rec("log", "app", i, message=f"m{i}") for i in range(50)]))
    writer.close()
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _session_script(home, 1.0)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    results = []
    for p in procs:
        out, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
        results.append(json.loads(out))
    first, second = sorted(results, key=lambda r: r["entered"])
    assert second["entered"] >= first["left"]  # the sessions took turns
    assert first["records"] == second["records"] == 50  # ingested once, seen by both


def test_busy_store_gives_up_with_a_clear_message(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with open_session(home, create=True):
        pass
    fd = os.open(home / "store.lock", os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        started_at = time.monotonic()
        with pytest.raises(StoreError, match="busy"), open_session(home, timeout_s=0.5):
            pass
        assert 0.4 <= time.monotonic() - started_at < 5
    finally:
        os.close(fd)
    with open_session(home) as s:  # released: works again
        assert s.traces() == []


def test_store_held_by_a_foreign_duckdb_process_is_reported_busy(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with open_session(home, create=True):
        pass
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(f"""
            import sys, time, duckdb
            con = duckdb.connect({str(home / "store.duckdb")!r})
            print("ready", flush=True)
            time.sleep(30)
        """),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        with pytest.raises(StoreError, match="busy"), open_session(home):
            pass
    finally:
        holder.kill()
        holder.wait()


def test_the_staging_file_holds_every_part_in_order_after_short_writes_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``_write_file`` writes up to ``_IOV_MAX`` parts a call, goes on after a short write from where it
    stopped, and overwrites the file's earlier content (a longer one is cut)."""
    from zoomtrace.store.duckdb import _writer

    parts = [b"%d," % i * (i % 7) for i in range(2 * _writer._IOV_MAX + 5)]  # some empty
    fd = os.open(tmp_path / "staging", os.O_RDWR | os.O_CREAT)
    try:
        _writer._write_file(fd, [b"x" * 10 * sum(map(len, parts))])
        _writer._write_file(fd, parts)
        assert (tmp_path / "staging").read_bytes() == b"".join(parts)

        real_writev = os.writev
        calls = []

        def short_writev(fd: int, buffers: list[memoryview]) -> int:
            """The real writev, of at most 1,000 bytes of what it is given (a disk or a signal may do that)."""
            calls.append(len(buffers))
            taken, room = [], 1000
            for buffer in buffers:
                if room <= 0:
                    break
                taken.append(buffer[:room])
                room -= len(taken[-1])
            return real_writev(fd, taken)

        monkeypatch.setattr(os, "writev", short_writev)
        _writer._write_file(fd, parts[::-1])
        assert (tmp_path / "staging").read_bytes() == b"".join(parts[::-1])
        assert len(calls) > sum(map(len, parts)) // 1000
    finally:
        os.close(fd)
