"""Choosing the store: store URLs, ``$ZOOMTRACE_STORE``, and a password that is never shown.

``zoomtrace.store.urls`` parses and checks a store URL; ``open_store`` picks the backend from it
(DuckDB by default, ClickHouse for ``chdb://`` and ``clickhouse[s]://``). The ClickHouse store
itself is tested in tests/test_clickhouse_store.py; here a stand-in module takes its place where
the test is about the choice (which URL, which lock, whether to create), so that these tests do
not depend on its engine.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
import time
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from zoomtrace.cli.main import main as cli_main
from zoomtrace.errors import ConfigError, StoreError
from zoomtrace.store import open_store, prepare_for
from zoomtrace.store.urls import STORE_ENV, parse_retention, redacted, resolve_store

try:
    import helpers as h
except ImportError:  # tests/ imported as a package
    from tests import helpers as h

PASSWORD = "s3cr3t-Pa55"
SERVER = f"clickhouse://zoom:{PASSWORD}@127.0.0.1:1/zoomtrace"


# -- parsing -------------------------------------------------------------------------------------


@pytest.mark.parametrize("url", [None, "", "duckdb", "DuckDB", " duckdb "])
def test_no_url_means_the_homes_duckdb_file(tmp_path: Path, url: str | None) -> None:
    where = resolve_store(tmp_path, url)
    assert (where.scheme, where.backend, where.path, where.default) == (
        "duckdb",
        "duckdb",
        tmp_path / "store.duckdb",
        True,
    )
    assert where.lock_dir == tmp_path
    assert where.url == f"duckdb://{tmp_path}/store.duckdb"
    # Its own URL names it again (the viewer hands the resolved URL to its sessions).
    assert resolve_store(tmp_path, where.url) == where


def test_a_duckdb_url_names_another_file(tmp_path: Path) -> None:
    where = resolve_store(tmp_path / "home", f"duckdb://{tmp_path}/elsewhere/zoom.duckdb")
    assert (where.backend, where.path, where.default) == ("duckdb", tmp_path / "elsewhere" / "zoom.duckdb", False)
    assert where.lock_dir == tmp_path / "elsewhere"
    with pytest.raises(ConfigError, match="is a directory: give a database file"):
        resolve_store(tmp_path, f"duckdb://{tmp_path}")


def test_a_chdb_url_names_a_data_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for url in ("chdb://data", f"chdb://{tmp_path}/data", "CHDB://data"):
        where = resolve_store(tmp_path / "home", url)
        assert (where.scheme, where.backend, where.path, where.lock_dir) == (
            "chdb",
            "clickhouse",
            tmp_path / "data",
            tmp_path / "data",
        )
        assert where.url == f"chdb://{tmp_path}/data"
    with pytest.raises(ConfigError, match="names no path: give a data directory"):
        resolve_store(tmp_path, "chdb://")
    (tmp_path / "a-file").write_text("")
    with pytest.raises(ConfigError, match="is a file"):
        resolve_store(tmp_path, "chdb://a-file")


@pytest.mark.parametrize(
    "url",
    [
        "clickhouse://localhost/zoomtrace",
        "clickhouse://zoom@ch.example:8123/zoomtrace",
        f"clickhouse://zoom:{PASSWORD}@ch.example:8123/zoomtrace?cluster=prod",
        "clickhouses://zoom:p%40ss%2Fword@ch.example/zoomtrace",
        "clickhouse://[::1]:8123/zoomtrace",
    ],
)
def test_server_urls_are_passed_on_whole(tmp_path: Path, url: str) -> None:
    where = resolve_store(tmp_path, url)
    assert (where.backend, where.path, where.lock_dir, where.url) == ("clickhouse", None, None, url)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("clickhouse:///zoomtrace", "names no server"),
        ("clickhouse://host:http/zoomtrace", "bad port"),
        ("clickhouse://host:99999/zoomtrace", "bad port"),
        ("clickhouse://host/zoomtrace/records", "more than a database"),
        (f"clickhouse://zoom:{PASSWORD}/x@host/zoomtrace", "percent-encode"),
        (f"postgres://zoom:{PASSWORD}@host/db", "unknown store"),
        ("store.duckdb", "unknown store"),
        ("sqlite:///tmp/x.db", "unknown store"),
    ],
)
def test_bad_urls_are_one_clear_line_without_the_password(tmp_path: Path, url: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        resolve_store(tmp_path, url)
    text = str(info.value)
    assert message in text and "\n" not in text
    assert PASSWORD not in text
    if message == "unknown store":
        assert all(form in text for form in ("duckdb", "chdb://DIR", "clickhouse://", "clickhouses://"))


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (SERVER, "clickhouse://zoom:***@127.0.0.1:1/zoomtrace"),
        ("clickhouse://zoom@host/db", "clickhouse://zoom@host/db"),
        ("clickhouse://host/db?cluster=c", "clickhouse://host/db?cluster=c"),
        ("clickhouses://u:a@b@host/db", "clickhouses://u:***@host/db"),
        ("clickhouse://u:x/y?z@host/db", "clickhouse://u:***@host/db"),
        ("clickhouse://host/db?cluster=c&password=hunter2", "clickhouse://host/db?cluster=c&password=***"),
        ("clickhouse://host/db?access_token=t0k&x=1", "clickhouse://host/db?access_token=***&x=1"),
        ("chdb:///var/lib/zoom", "chdb:///var/lib/zoom"),
        ("not a url", "not a url"),
    ],
)
def test_redacted_drops_every_secret_and_keeps_the_rest(url: str, shown: str) -> None:
    assert redacted(url) == shown


def test_a_store_url_object_never_shows_its_password(tmp_path: Path) -> None:
    encoded = "p%40ss%2Fw0rd"
    where = resolve_store(tmp_path, f"clickhouses://zoom:{encoded}@host/db?cluster=c")
    for shown in (repr(where), str(where), where.redacted, f"{where}"):
        assert encoded not in shown and "p@ss/w0rd" not in shown
    driver_error = f"cannot connect to {where.url} as zoom with password p@ss/w0rd ({encoded})"
    hidden = where.hide(driver_error)
    assert encoded not in hidden and "p@ss/w0rd" not in hidden
    assert "clickhouses://zoom:***@host/db?cluster=c" in hidden


def test_the_environment_variable_names_the_store_and_the_option_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert resolve_store(tmp_path).default
    monkeypatch.setenv(STORE_ENV, f"chdb://{tmp_path}/from-env")
    assert resolve_store(tmp_path).path == tmp_path / "from-env"
    assert resolve_store(tmp_path, f"chdb://{tmp_path}/from-option").path == tmp_path / "from-option"
    monkeypatch.setenv(STORE_ENV, "")
    assert resolve_store(tmp_path).default


@pytest.mark.parametrize(
    ("text", "days"), [("30d", 30), ("2w", 14), ("48h", 2), (" 1d ", 1), ("365d", 365), ("forever", 0)]
)
def test_retention_is_whole_days(text: str, days: int) -> None:
    assert parse_retention(text) == days


@pytest.mark.parametrize("text", ["0d", "36h", "30", "1.5d", "30m", "always", ""])
def test_a_retention_that_is_not_whole_days_is_refused(text: str) -> None:
    with pytest.raises(ConfigError, match="whole days"):
        parse_retention(text)


def test_a_retention_for_the_duckdb_store_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="ClickHouse"), open_store(tmp_path, create=True, retention_days=30):
        pass


# -- open_store chooses (a stand-in for the ClickHouse store) ------------------------------------


class FakeClickHouse:
    """What ``open_store`` asked of the ClickHouse store, and whether chDB's lock was held meanwhile."""

    opened: list[dict[str, Any]] = []
    fail_with: str | None = None

    def __init__(self, url: str) -> None:
        self.url = url
        self.closed = False

    @classmethod
    def open(cls, url: str, *, create: bool = False, retention_days: int | None = None) -> FakeClickHouse:
        if cls.fail_with is not None:
            raise StoreError(cls.fail_with.format(url=url))
        cls.opened.append({"url": url, "create": create, "retention_days": retention_days, "locked": _locked(url)})
        return cls(url)

    def close(self) -> None:
        self.closed = True


def _locked(url: str) -> bool | None:
    """Whether ``store.lock`` in a chdb:// directory is held (by the session opening it); None for a server."""
    if not url.startswith("chdb://"):
        return None
    fd = os.open(Path(url.removeprefix("chdb://")) / "store.lock", os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def _prepare_stand_in(records: list[Any]) -> list[Any]:
    return records


@pytest.fixture
def fake_clickhouse(monkeypatch: pytest.MonkeyPatch) -> Iterator[type[FakeClickHouse]]:
    module = types.ModuleType("zoomtrace.store.clickhouse")
    module.ClickHouseStore = FakeClickHouse  # type: ignore[attr-defined]
    module.prepare = _prepare_stand_in  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "zoomtrace.store.clickhouse", module)
    monkeypatch.setattr(FakeClickHouse, "opened", [])
    monkeypatch.setattr(FakeClickHouse, "fail_with", None)
    yield FakeClickHouse


def test_chdb_sessions_take_turns_on_a_lock_in_the_data_directory(
    tmp_path: Path, fake_clickhouse: type[FakeClickHouse]
) -> None:
    data = tmp_path / "chdb"
    with open_store(tmp_path / "home", url=f"chdb://{data}", create=True, retention_days=7) as store:
        assert isinstance(store, FakeClickHouse)
    assert store.closed
    assert fake_clickhouse.opened == [{"url": f"chdb://{data}", "create": True, "retention_days": 7, "locked": True}]
    assert (data / "store.lock").exists()
    assert not (tmp_path / "home").exists(), "a ClickHouse session leaves the home alone"


def test_a_chdb_store_is_created_when_the_home_has_a_spool_to_ingest(
    tmp_path: Path, fake_clickhouse: type[FakeClickHouse]
) -> None:
    home, data = tmp_path / "home", tmp_path / "chdb"
    with (
        pytest.raises(StoreError, match=r"no store at chdb://.* and no spool at"),
        open_store(home, url=f"chdb://{data}"),
    ):
        pass
    assert not data.exists()
    (home / "spool").mkdir(parents=True)
    with open_store(home, url=f"chdb://{data}"):
        pass
    with open_store(tmp_path / "empty-home", url=f"chdb://{data}"):  # it exists now
        pass
    assert [o["create"] for o in fake_clickhouse.opened] == [True, False]


def test_a_server_store_takes_no_lock_and_is_created_only_when_asked(
    tmp_path: Path, fake_clickhouse: type[FakeClickHouse]
) -> None:
    with open_store(tmp_path / "home", url=SERVER):
        pass
    with open_store(tmp_path / "home", url=SERVER, create=True):
        pass
    assert fake_clickhouse.opened == [
        {"url": SERVER, "create": False, "retention_days": None, "locked": None},
        {"url": SERVER, "create": True, "retention_days": None, "locked": None},
    ]
    assert prepare_for(tmp_path, SERVER) is _prepare_stand_in


def test_the_stores_errors_reach_the_user_without_the_password(
    tmp_path: Path, fake_clickhouse: type[FakeClickHouse]
) -> None:
    fake_clickhouse.fail_with = "cannot reach {url}: authentication failed for zoom/" + PASSWORD
    with pytest.raises(StoreError) as info, open_store(tmp_path, url=SERVER):
        pass
    assert PASSWORD not in str(info.value)
    assert "clickhouse://zoom:***@127.0.0.1:1/zoomtrace" in str(info.value)
    assert info.value.__suppress_context__  # a traceback does not show the original either


def test_open_store_follows_the_environment_variable(
    tmp_path: Path, fake_clickhouse: type[FakeClickHouse], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(STORE_ENV, SERVER)
    with open_store(tmp_path):
        pass
    assert [o["url"] for o in fake_clickhouse.opened] == [SERVER]
    assert not (tmp_path / "store.duckdb").exists()


def test_a_missing_client_package_says_how_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import importlib.util

    real = importlib.util.find_spec
    missing = {"chdb", "clickhouse_connect"}
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name in missing else real(name, *a))
    for url in (f"chdb://{tmp_path}/data", SERVER):
        with (
            pytest.raises(ConfigError, match=r"pip install 'zoomtrace\[clickhouse\]'") as info,
            open_store(tmp_path, url=url, create=True),
        ):
            pass
        assert PASSWORD not in str(info.value)
    assert cli_main(["--home", str(tmp_path), "--store", SERVER, "traces"]) == 2
    err = capsys.readouterr().err
    assert "pip install 'zoomtrace[clickhouse]'" in err and PASSWORD not in err and len(err.splitlines()) == 1


# -- the command line ----------------------------------------------------------------------------


def test_help_says_how_to_choose_the_store() -> None:
    out = h.cli(None, "--help")
    assert out.returncode == 0
    text = " ".join(out.stdout.split())
    assert "--store URL" in text and STORE_ENV in text and "chdb://DIR" in text and "--retention" in text
    for module in ("zoomtrace.collect.kafka_collector", "zoomtrace.collect.otlp_receiver"):
        out = subprocess.run(
            [h.PY, "-m", module, "--help"], capture_output=True, text=True, env=h.child_env(None), check=False
        )
        assert out.returncode == 0 and "--store" in out.stdout and "--retention" in out.stdout, out.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["--store", f"postgres://zoom:{PASSWORD}@db/zoom", "traces"],
        ["--store", f"clickhouse://zoom:{PASSWORD}@/zoom", "nodes"],
        ["--store", "chdb://", "ingest"],
        ["--store", "chdb:///tmp/x", "--retention", "12h", "traces"],
        ["--retention", "30d", "traces"],
    ],
)
def test_a_bad_store_option_is_one_line_and_exit_status_2(tmp_path: Path, args: list[str]) -> None:
    out = h.cli(tmp_path / "home", *args, cwd=tmp_path)
    line = h.assert_one_line_error(out)
    assert out.returncode == 2
    assert PASSWORD not in out.stderr + out.stdout
    assert line.startswith("zoomtrace: ")


def test_an_unreachable_server_is_reported_without_its_password(tmp_path: Path) -> None:
    out = h.cli(tmp_path / "home", "--store", SERVER, "traces", cwd=tmp_path, timeout=120)
    h.assert_one_line_error(out)
    assert PASSWORD not in out.stderr + out.stdout


def test_the_environment_variable_is_read_by_the_command_line(tmp_path: Path) -> None:
    env = h.child_env(None, ZOOMTRACE_STORE=f"sqlite://zoom:{PASSWORD}@x")
    (tmp_path / "home" / "spool").mkdir(parents=True)
    out = h.cli(tmp_path / "home", "traces", cwd=tmp_path, env=env)
    line = h.assert_one_line_error(out)
    assert "unknown store" in line and PASSWORD not in out.stderr
    # --store wins over the variable.
    out = h.cli(tmp_path / "home", "--store", f"duckdb://{tmp_path}/other.duckdb", "ingest", cwd=tmp_path, env=env)
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "other.duckdb").exists() and not (tmp_path / "home" / "store.duckdb").exists()


def test_home_store_and_retention_may_follow_the_command_and_then_win(tmp_path: Path) -> None:
    home, elsewhere = tmp_path / "home", tmp_path / "elsewhere"
    (home / "spool").mkdir(parents=True)
    before = f"duckdb://{tmp_path}/before.duckdb"
    out = h.cli(None, "--home", str(elsewhere), "--store", before, "ingest", "--store", f"duckdb://{tmp_path}/after.duckdb",
                "--home", str(home), cwd=tmp_path)  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "after.duckdb").exists() and not (tmp_path / "before.duckdb").exists()
    assert not elsewhere.exists()
    out = h.cli(home, "traces", "--store", f"duckdb://{tmp_path}/after.duckdb", "--retention", "7d", cwd=tmp_path)
    assert "retention" in h.assert_one_line_error(out)  # a DuckDB store has no retention: the option was read


@pytest.mark.parametrize("module", ["zoomtrace.collect.kafka_collector", "zoomtrace.collect.otlp_receiver"])
def test_the_collectors_check_the_store_url_without_showing_the_password(tmp_path: Path, module: str) -> None:
    args = ["--from", "kafka://127.0.0.1:1"] if module.endswith("kafka_collector") else ["--listen", "127.0.0.1:0"]
    out = subprocess.run(
        [h.PY, "-m", module, *args, "--store", f"redis://zoom:{PASSWORD}@x"],
        capture_output=True,
        text=True,
        env=h.child_env(tmp_path / "home"),
        timeout=h.TIMEOUT,
        check=False,
    )
    assert out.returncode == 2, out.stderr
    assert "unknown store" in out.stderr and PASSWORD not in out.stderr + out.stdout


# -- the viewer ----------------------------------------------------------------------------------


def test_the_viewer_shows_and_records_its_store_without_the_password(tmp_path: Path) -> None:
    from starlette.testclient import TestClient

    from zoomtrace.ui import create_app, running_url

    home = tmp_path / "home"
    home.mkdir()
    about = TestClient(create_app(home, store=SERVER), base_url="http://127.0.0.1:8087").get("/api/about").json()
    assert about == {**about, "home": str(home), "store": "clickhouse://zoom:***@127.0.0.1:1/zoomtrace"}

    proc = subprocess.Popen(
        [h.PY, "-m", "zoomtrace", "--home", str(home), "--store", SERVER, "ui", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=h.child_env(None),
        preexec_fn=h.as_from_a_terminal,
    )
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline() for _ in range(3)]
        deadline = time.monotonic() + h.TIMEOUT
        while not (home / "ui.json").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        state_text = (home / "ui.json").read_text()
        state = json.loads(state_text)
        assert PASSWORD not in state_text and PASSWORD not in "".join(lines)
        assert state["store"] == "clickhouse://zoom:***@127.0.0.1:1/zoomtrace"
        assert "store clickhouse://zoom:***@127.0.0.1:1/zoomtrace" in lines[0]
        # Another command finds the viewer of the same store, not that of another one.
        assert running_url(home, SERVER) == state["url"]
        assert running_url(home) is None
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=h.TIMEOUT)
    assert PASSWORD not in err
    assert not (home / "ui.json").exists()
