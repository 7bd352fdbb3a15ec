"""The DuckDB store: every record of one home in ``<home>/store.duckdb``.

DuckDB lets one process open a database file at a time, so ``zoomtrace.store.open_store``
serialises sessions with a file lock; this package is the database itself:
``_writer`` ingests, ``_reader`` answers. docs/store.md explains the schema and
the measurements behind these choices.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Final

import duckdb

from zoomtrace.errors import StoreError
from zoomtrace.store.duckdb._common import _one_line, _sql_string
from zoomtrace.store.duckdb._reader import DuckReader, check_read_only
from zoomtrace.store.duckdb._writer import DuckWriter, Prepared, prepare

__all__ = ["STORE_SCHEMA", "DuckStore", "Prepared", "check_read_only", "prepare"]

#: Version of the tables in schema.sql; a store written with another version is refused.
STORE_SCHEMA: Final = 1
#: Rows per row group of the store's tables. DuckDB compresses and writes the rows of a transaction as it inserts
#: them (no write-ahead log, no checkpoint at commit) only when they fill a row group; at DuckDB's default
#: (122,880) a 100,000-record batch missed that and cost 2 µs a record more (docs/store.md, "Decisions").
ROW_GROUP_SIZE: Final = 65_536
#: Replaced trace summaries that make close() vacuum (also at least a quarter of the traces table).
VACUUM_MIN_ROWS: Final = 100_000
#: The connection user SQL runs on: read-only, and reaching no file, extension or network.
USER_SQL_CONFIG: Final = {
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
    "enable_external_access": False,
}


#: DuckDB's words for a file another process holds ("Could not set lock on file …: Conflicting lock is held").
_LOCK_HELD: Final = ("could not set lock on file", "conflicting lock")
#: An operating system's words for a full disk or quota (ENOSPC, EDQUOT), as DuckDB quotes them.
_DISK_FULL: Final = ("no space left on device", "disk quota exceeded")


def _open_error(path: Path, exc: duckdb.Error) -> StoreError:
    text = _one_line(exc) or type(exc).__name__
    lowered = text.lower()
    if any(words in lowered for words in _LOCK_HELD):
        return StoreError(f"the store at {path} is busy: another process has it open ({text}); try again")
    if any(words in lowered for words in _DISK_FULL):
        return StoreError(
            f"cannot write the store {path}: the disk is full ({text}). Free some space and run the command "
            f"again; nothing is lost, the spool files keep every record"
        )
    return StoreError(
        f"the store file {path} is corrupt or unreadable ({text}). Move it away (mv {path} {path}.bad) and run any "
        f"zoomtrace command to rebuild it from the spool: the spool files are the source of truth, keep them"
    )


def _connect(path: Path) -> duckdb.DuckDBPyConnection:
    """A session on the store file: attached to an in-memory database, the one way to set its row group size
    (its spill files go where DuckDB puts a file database's, next to it, not into the working directory)."""
    con = duckdb.connect(config={"temp_directory": f"{path}.tmp"})
    try:
        con.execute(f"ATTACH '{_sql_string(str(path))}' AS store (ROW_GROUP_SIZE {ROW_GROUP_SIZE})")
        con.execute("USE store")
    except BaseException:
        con.close()
        raise
    return con


def _is_new(path: Path) -> bool:
    """Whether opening ``path`` creates the store: no file, or an empty one (a creation that failed before
    writing anything, which DuckDB would refuse as invalid). An empty file holds nothing: it is removed."""
    try:
        if path.stat().st_size:
            return False
    except FileNotFoundError:
        return True
    except OSError:
        return False  # DuckDB says what is wrong with it
    with contextlib.suppress(OSError):
        path.unlink()
    return True


def _remove_new_store(path: Path) -> None:
    """Remove what a failed creation left (an invalid file would be taken for a corrupt store later)."""
    for leftover in (path, path.with_name(path.name + ".wal")):
        with contextlib.suppress(FileNotFoundError):
            leftover.unlink()


class DuckStore(DuckReader, DuckWriter):
    """The Store protocol on one DuckDB file. Not thread-safe: one session per process at a time."""

    def __init__(self, path: Path) -> None:
        """Open the store at ``path``, creating it if there is none; a creation that fails (a full disk)
        leaves no file behind. Callers hold the store's lock (``open_store``)."""
        self.path = Path(path)
        self.staging = self.path.parent / "tmp"
        new = _is_new(self.path)
        try:
            self._con = _connect(self.path)
        except duckdb.Error as exc:
            if new:
                _remove_new_store(self.path)
            raise _open_error(self.path, exc) from exc
        try:
            self._setup()
        except BaseException as exc:
            self._con.close()
            if new:
                _remove_new_store(self.path)
            if isinstance(exc, duckdb.Error):
                raise _open_error(self.path, exc) from exc
            raise

    def _configure(self) -> None:
        con = self._con
        # The session reaches no file but its staging directory, no extension, no network.
        con.execute("SET autoinstall_known_extensions = false")
        con.execute("SET autoload_known_extensions = false")
        con.execute(f"SET allowed_directories = ['{_sql_string(str(self.staging))}/']")
        con.execute("SET enable_external_access = false")
        # Each large ingest transaction ends with a partly filled row group; DuckDB's checkpoint would merge
        # them by rewriting everything after them (measured: +1.1 us per record ingested). Vacuuming is
        # done by maintain() instead, when replaced trace summaries have piled up.
        con.execute("SET max_vacuum_tasks = 0")

    def _setup(self) -> None:
        con = self._con
        try:
            self.staging.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create the store's staging directory {self.staging}: {exc.strerror}") from None
        self._configure()
        schema = resources.files("zoomtrace.store.duckdb").joinpath("schema.sql").read_text()
        con.execute("BEGIN TRANSACTION")
        try:
            for statement in duckdb.extract_statements(schema):
                con.execute(statement.query)
            con.execute(
                "INSERT OR IGNORE INTO meta VALUES ('schema', ?), ('ingest_seq', '0'), ('replaced_rows', '0')",
                [str(STORE_SCHEMA)],
            )
            row = con.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        found = row[0] if row else None
        if found != str(STORE_SCHEMA):
            raise StoreError(
                f"the store {self.path} has schema version {found}, this zoomtrace expects {STORE_SCHEMA}: move "
                f"it away and run any command to rebuild it from the spool (keep the spool files)"
            )

    @contextlib.contextmanager
    def _read_only(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A connection on which DuckDB refuses every change to the store, for user SQL (``USER_SQL_CONFIG``).

        DuckDB opens a database file either read-only or read-write within one process, so the session's
        own connection is closed meanwhile and opened again afterwards (the session's lock is held
        throughout: no other session can come in between).
        """
        self._con.close()
        try:
            try:
                con = duckdb.connect(str(self.path), read_only=True, config=dict(USER_SQL_CONFIG))
            except duckdb.Error as exc:
                raise _open_error(self.path, exc) from exc
            try:
                yield con
            finally:
                con.close()
        finally:
            try:
                self._con = _connect(self.path)
                self._configure()
            except duckdb.Error as exc:
                raise _open_error(self.path, exc) from exc

    def close(self) -> None:
        with contextlib.suppress(duckdb.Error):
            self.maintain()
        with contextlib.suppress(duckdb.Error):
            self._con.close()

    def maintain(self, *, force: bool = False) -> bool:
        """Vacuum (reclaim replaced trace summaries, merge small row groups) once replaced rows reach a
        quarter of the traces table, or when ``force``d. Returns whether it ran."""
        con = self._con
        row = con.execute(
            "SELECT CAST(value AS BIGINT), (SELECT count(*) FROM traces) FROM meta WHERE key = 'replaced_rows'"
        ).fetchone()
        replaced, total = (row[0], row[1]) if row else (0, 0)
        if not force and replaced < max(VACUUM_MIN_ROWS, total // 4):
            return False
        con.execute("SET max_vacuum_tasks = 100")
        try:
            con.execute("CHECKPOINT")
            con.execute("UPDATE meta SET value = '0' WHERE key = 'replaced_rows'")
            con.execute("CHECKPOINT")
        finally:
            con.execute("SET max_vacuum_tasks = 0")
        return True
