"""Zoom installed without an extra: the default install runs the viewer; anything that needs an extra
says, in one line, which `pip install 'zoomtrace[…]'` adds it.

Each test runs the real CLI in an interpreter whose only packages are those of this environment minus
the extras' (`python -S` with a directory of links to the rest), as after a plain `pip install zoomtrace`.
"""

from __future__ import annotations

import os
import site
import subprocess
import sys
from pathlib import Path

import pytest

import helpers as h

#: The top-level packages the extras install (kafka, otel, clickhouse).
EXTRAS_PACKAGES = ("confluent_kafka", "opentelemetry", "chdb", "clickhouse_connect")


@pytest.fixture(scope="module")
def plain_install(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory holding this environment's packages but the extras' (links, nothing copied)."""
    target = tmp_path_factory.mktemp("plain-install")
    for root in map(Path, site.getsitepackages()):
        for entry in root.iterdir():
            if entry.name.split(".")[0].split("-")[0] in EXTRAS_PACKAGES or entry.name.startswith("zoomtrace"):
                continue
            link = target / entry.name
            if not link.exists():
                link.symlink_to(entry)
    return target


def run(plain: Path, home: Path, *args: str, code: str | None = None) -> subprocess.CompletedProcess[str]:
    env = h.child_env(None)
    env["PYTHONPATH"] = os.pathsep.join([str(h.SRC), str(plain)])
    command = ["-c", code] if code is not None else ["-m", "zoomtrace", "--home", str(home), *args]
    return subprocess.run(
        [sys.executable, "-S", *command], capture_output=True, text=True, env=env, timeout=h.TIMEOUT, check=False
    )


def test_the_plain_install_lacks_the_extras(plain_install: Path, tmp_path: Path) -> None:
    probe = f"import importlib.util as u; print([m for m in {EXTRAS_PACKAGES!r} if u.find_spec(m)])"
    out = run(plain_install, tmp_path, code=probe)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("args", "extra"),
    [
        (["demo", "--kafka", "127.0.0.1:9"], "kafka"),
        (["collect", "--from", "kafka://127.0.0.1:9"], "kafka"),
        (["collect", "--otlp", "127.0.0.1:0"], "otel"),
        (["--store", "chdb:///nonexistent/zoom", "traces"], "clickhouse"),
    ],
)
def test_a_missing_extra_is_one_line_naming_the_install_command(
    plain_install: Path, tmp_path: Path, args: list[str], extra: str
) -> None:
    (tmp_path / "spool").mkdir()
    out = run(plain_install, tmp_path, *args)
    line = h.assert_one_line_error(out)
    assert f"pip install 'zoomtrace[{extra}]'" in line


def test_a_sink_that_needs_an_extra_says_which(plain_install: Path, tmp_path: Path) -> None:
    code = (
        "import zoomtrace as zt\n"
        "try:\n"
        f"    zt.init('app', home={str(tmp_path)!r}, sink='kafka://127.0.0.1:9')\n"
        "except zt.ConfigError as exc:\n"
        "    print(exc)\n"
    )
    out = run(plain_install, tmp_path, code=code)
    assert out.returncode == 0, out.stderr
    assert "pip install 'zoomtrace[kafka]'" in out.stdout


def test_the_viewer_runs_on_the_plain_install(plain_install: Path, tmp_path: Path) -> None:
    code = "import zoomtrace.ui.app, uvicorn, starlette; print('viewer ok')"
    out = run(plain_install, tmp_path, code=code)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "viewer ok"
