"""A damaged or held ``store.duckdb``: each is told for what it is, by the real ``zoomtrace`` command.

The store is made by a real node and the real ingest; another process holds it with DuckDB itself.
"""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

try:
    import helpers as h
except ImportError:  # tests/ imported as a package
    from tests import helpers as h

RECORDER = """
    import zoomtrace as zt
    zt.init("store-files")
    with zt.span("checkout"):
        zt.log.info("in the store")
    zt.shutdown()
"""

HOLDER = """
    import signal, sys
    import duckdb

    con = duckdb.connect(sys.argv[1])  # as a user's own DuckDB session on the file
    print("HOLDING", flush=True)
    signal.pause()
"""


def home_with_a_store(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    script = tmp_path / "recorder.py"
    script.write_text(textwrap.dedent(RECORDER))
    h.run_script(script, home)
    assert h.cli(home, "ingest").returncode == 0
    assert (home / "store.duckdb").stat().st_size > 8192
    return home


def test_a_corrupt_block_is_reported_as_corruption_not_as_a_busy_store(tmp_path: Path) -> None:
    home = home_with_a_store(tmp_path)
    store = home / "store.duckdb"
    with open(store, "r+b") as f:  # past DuckDB's file headers: the first block, whose checksum now fails
        f.seek(8192 + 100)
        f.write(os.urandom(4096))
    line = h.assert_one_line_error(h.cli(home, "traces"))
    assert "corrupt" in line and f"mv {store} {store}.bad" in line, line
    assert "busy" not in line and "try again" not in line, line


def test_a_store_another_process_holds_is_reported_busy(tmp_path: Path) -> None:
    home = home_with_a_store(tmp_path)
    script = tmp_path / "holder.py"
    script.write_text(textwrap.dedent(HOLDER))
    holder = h.Child(script, None, str(home / "store.duckdb"))
    try:
        holder.expect("HOLDING")
        line = h.assert_one_line_error(h.cli(home, "traces"))
    finally:
        holder.kill()
    assert "busy" in line and "try again" in line, line
    assert "corrupt" not in line, line
    assert h.cli(home, "traces").returncode == 0  # and usable once it is let go


def test_an_empty_store_file_left_by_a_failed_creation_is_created_again(tmp_path: Path) -> None:
    home = home_with_a_store(tmp_path)
    store = home / "store.duckdb"
    store.unlink()
    store.touch()  # what an earlier zoomtrace left when the disk was full as it created the store
    (node,) = h.nodes(home)
    assert node["service"] == "store-files"
