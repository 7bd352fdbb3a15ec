"""How the ClickHouse store talks to the engine: one small interface, two implementations.

``ChdbTransport`` runs the engine in this process (chDB, data in a directory); ``ConnectTransport`` talks
to a server or cluster over HTTP(S) with clickhouse-connect. The store's SQL is the same on both: a
transport only sends a statement (with ``{name:Type}`` parameters), returns the result's bytes in the
format asked for, and inserts bytes already encoded as JSONEachRow.

User SQL (``StoreReader.sql``) goes through ``read_only``, which the engine itself keeps from writing
(``readonly = 1``) and bounds in rows and time.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Protocol

if TYPE_CHECKING:
    from zoomtrace.store.clickhouse._target import Target

#: What a parameter may be: text, a number, or a list of texts.
Param = str | int | list[str]
#: A query answering its rows as lists of JSON values (``ClickHouseReader._values``).
Values = Callable[[str, Mapping[str, Param] | None], list[list[Any]]]

#: Limits of user SQL: rows returned and seconds of execution (the engine stops the query beyond them).
SQL_MAX_ROWS: Final = 1_000_000
SQL_TIMEOUT_S: Final = 60

#: Settings of every user SQL query: the engine refuses writes, DDL, settings changes and file access.
#: ``readonly`` comes last, as settings are applied in order and it forbids changing the others.
READ_ONLY_SETTINGS: Final[dict[str, int | str]] = {
    "max_result_rows": SQL_MAX_ROWS,
    "result_overflow_mode": "throw",
    "max_execution_time": SQL_TIMEOUT_S,
    "output_format_json_quote_64bit_integers": 0,
    "readonly": 1,
}

#: Settings of the store's own queries: rows' JSON as the read model has it (64-bit integers as numbers,
#: named tuples as objects), whatever a server's defaults.
QUERY_SETTINGS: Final[dict[str, int | str]] = {
    "output_format_json_quote_64bit_integers": 0,
    "output_format_json_named_tuples_as_objects": 1,
}

#: Settings of chDB's inserts besides the store's: the engine runs on the collector's own cores, where the
#: collector's Python prepares the next batch meanwhile, so a batch is parsed on the insert's thread (parallel
#: parsing measured ≈0.4 µs more CPU per record of a 150,000-record batch, and no faster with a busy core).
_CHDB_INSERT_SETTINGS: Final[dict[str, int | str]] = {"input_format_parallel_parsing": 0}

_CODE: Final = re.compile(r"Code: (\d+)")


class EngineError(Exception):
    """ClickHouse refused a statement (``code`` is its error code, 0 when unknown) or cannot be reached."""

    def __init__(self, message: str, code: int = 0) -> None:
        super().__init__(message)
        self.code = code


def engine_error(exc: BaseException, *, secret: str = "") -> EngineError:
    """``exc`` as an ``EngineError``: one line, ClickHouse's error code kept, ``secret`` never shown."""
    text = " ".join(line.strip() for line in str(exc).splitlines() if line.strip()) or type(exc).__name__
    if secret:
        text = text.replace(secret, "***")
    match = _CODE.search(text)
    return EngineError(text, int(match.group(1)) if match else 0)


class Transport(Protocol):
    """One connection to the engine; one thread at a time."""

    def query(self, sql: str, params: Mapping[str, Param] | None = None, *, fmt: str = "JSONEachRow") -> bytes:
        """Run ``sql`` and return its result in ``fmt`` (a ClickHouse output format)."""

    def insert(self, table: str, data: bytes, *, settings: Mapping[str, int | str]) -> None:
        """Insert ``data`` (JSONEachRow) into ``table`` with these query ``settings``."""

    def use(self, database: str) -> None:
        """Make ``database`` the one unqualified table names refer to."""

    def read_only(self, sql: str, params: Mapping[str, Param] | None = None, *, fmt: str) -> bytes:
        """Run user SQL under ``READ_ONLY_SETTINGS``."""

    def close(self) -> None: ...


class ChdbTransport:
    """The ClickHouse engine in this process, storing in ``path`` (chDB allows one directory per process).

    Inserts go through a staging file in ``path/staging`` read with ``file()``: chDB's streaming insert
    does not report an error met after parsing (a materialized view's, a constraint's), which would lose
    a batch silently. User SQL runs on a second session of the same directory whose settings are fixed
    when it is opened, ``readonly = 1`` among them, so no statement can lift them; it is opened again
    after an error (chDB then returns the failed query's partial output to the next one).
    """

    def __init__(self, path: str, database: str) -> None:
        if "?" in path:
            raise EngineError(f"a chdb:// directory may not contain '?': {path}")
        self._session = _chdb_session(path, QUERY_SETTINGS)
        self._path = path
        self._database = database
        self._reader: Any = None
        self._staging = Path(path) / "staging" / f"insert-{os.getpid()}.jsonl"

    def query(self, sql: str, params: Mapping[str, Param] | None = None, *, fmt: str = "JSONEachRow") -> bytes:
        try:
            result = self._session.query(sql, fmt, params=_chdb_params(params) if params else None)
        except Exception as exc:
            raise engine_error(exc) from None
        return bytes(result.bytes())

    def insert(self, table: str, data: bytes, *, settings: Mapping[str, int | str]) -> None:
        self._staging.parent.mkdir(exist_ok=True)
        # Written over the previous batch's file and then cut to length: measured up to several times
        # faster than truncating it first (whose blocks the file system frees, then allocates again).
        fd = os.open(self._staging, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            with memoryview(data) as view:
                written = 0
                while written < len(view):
                    written += os.write(fd, view[written:])
            os.ftruncate(fd, len(data))
        finally:
            os.close(fd)
        statement = f"INSERT INTO {table} SELECT * FROM file({_quoted(str(self._staging))}, 'JSONEachRow')"
        settings = {**settings, **_CHDB_INSERT_SETTINGS}
        self.query(f"{statement} SETTINGS {_settings_clause(settings)}")

    def use(self, database: str) -> None:
        self.query(f"USE `{database}`")

    def read_only(self, sql: str, params: Mapping[str, Param] | None = None, *, fmt: str) -> bytes:
        if self._reader is None:
            self._reader = _chdb_session(self._path, {**READ_ONLY_SETTINGS, "database": self._database})
        try:
            return bytes(self._reader.query(sql, fmt, params=_chdb_params(params) if params else None).bytes())
        except Exception as exc:
            with contextlib.suppress(Exception):
                self._reader.close()
            self._reader = None
            raise engine_error(exc) from None

    def close(self) -> None:
        for session in (self._reader, self._session):
            if session is not None:
                with contextlib.suppress(Exception):
                    session.close()
        self._reader = None
        self._staging.unlink(missing_ok=True)


class ConnectTransport:
    """A ClickHouse server or cluster over HTTP(S), through a clickhouse-connect client."""

    def __init__(self, client: Any, *, secret: str = "") -> None:
        self._client = client
        self._secret = secret

    @classmethod
    def connect(cls, target: Target) -> ConnectTransport:
        """A client for ``target`` (no database selected: it may not exist yet)."""
        import clickhouse_connect

        # The driver logs each failed request on its own besides raising it; Zoom reports the error once,
        # in one line (without the password), so the driver's own line is not wanted on stderr.
        logging.getLogger("clickhouse_connect").addHandler(logging.NullHandler())
        logging.getLogger("clickhouse_connect").propagate = False
        try:
            client = clickhouse_connect.get_client(
                host=target.host,
                port=target.port,
                username=target.user,
                password=target.password,
                secure=target.secure,
                # the ids of a batch are sent as a parameter: too long for a URL
                form_encode_query_params=True,
                autogenerate_session_id=False,
            )
        except Exception as exc:
            raise engine_error(exc, secret=target.password) from None
        return cls(client, secret=target.password)

    def use(self, database: str) -> None:
        self._client.database = database

    def query(self, sql: str, params: Mapping[str, Param] | None = None, *, fmt: str = "JSONEachRow") -> bytes:
        try:
            return bytes(self._client.raw_query(sql, parameters=dict(params or {}), settings=QUERY_SETTINGS, fmt=fmt))
        except Exception as exc:
            raise engine_error(exc, secret=self._secret) from None

    def insert(self, table: str, data: bytes, *, settings: Mapping[str, int | str]) -> None:
        try:
            self._client.raw_insert(table, insert_block=data, settings=dict(settings), fmt="JSONEachRow")
        except Exception as exc:
            raise engine_error(exc, secret=self._secret) from None

    def read_only(self, sql: str, params: Mapping[str, Param] | None = None, *, fmt: str) -> bytes:
        try:
            return bytes(
                self._client.raw_query(sql, parameters=dict(params or {}), settings=dict(READ_ONLY_SETTINGS), fmt=fmt)
            )
        except Exception as exc:
            raise engine_error(exc, secret=self._secret) from None

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._client.close()


def _chdb_session(path: str, settings: Mapping[str, int | str]) -> Any:
    """A chDB session on ``path`` with these settings (applied to that session only, in order)."""
    from chdb import session

    factory: Any = session.Session  # chDB's API is untyped
    try:
        return factory(f"{path}?" + "&".join(f"{name}={value}" for name, value in settings.items()))
    except Exception as exc:
        raise engine_error(exc) from None


def _settings_clause(settings: Mapping[str, int | str]) -> str:
    return ", ".join(f"{k} = {v if isinstance(v, int) else _quoted(str(v))}" for k, v in settings.items())


#: Escapes of ClickHouse's text formats, in which chDB reads a parameter's value.
_ESCAPES: Final = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r", "\0": "\\0", "'": "\\'"})


def _quoted(text: str) -> str:
    return "'" + text.translate(_ESCAPES) + "'"


def _chdb_params(params: Mapping[str, Param]) -> dict[str, str]:
    """Parameters as the text chDB parses (clickhouse-connect formats its own)."""
    out = {}
    for name, value in params.items():
        if isinstance(value, list):
            out[name] = "[" + ",".join(_quoted(v) for v in value) + "]"
        elif isinstance(value, str):
            out[name] = value.translate(_ESCAPES)
        else:
            out[name] = str(value)
    return out
