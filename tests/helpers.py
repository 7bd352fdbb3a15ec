"""Shared helpers for the end-to-end tests: real git repositories, real child processes, the real CLI.

Nothing here mocks anything: scripts run as separate Python processes with
``ZOOMTRACE_HOME`` pointing at a temporary home, and every check goes through the
``zoomtrace`` command line (``python -m zoomtrace --home H ... --json``) exactly
as a user would run it.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
SRC = REPO / "src"
PY = sys.executable

#: How long any single child process may take before the test fails (a hang is a failure, not a wait).
TIMEOUT = 30.0

HEX32 = set("0123456789abcdef")


# -- the C speedups ------------------------------------------------------------------------------


def native_speedups() -> ModuleType:
    """The compiled ``zoomtrace._speedups`` for the tests that compare it with its Python: skipped where it is not
    built (or ``ZOOMTRACE_PURE_PYTHON`` is set), a failure under ``CI``, where it must be."""
    from zoomtrace import _native

    if _native.speedups is None:
        reason = f"zoomtrace._speedups is not built (or {_native.PURE_PYTHON_ENV} is set): no C to compare"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}; CI must build it")
        pytest.skip(reason)
    return _native.speedups


# -- a node for the C-against-Python tests ------------------------------------------------------------


class FakePipeline:
    def __init__(self, put: Callable[[object], object]) -> None:
        self.put = put


class FakeNode:
    """What the caller's side reads of the running node (``recorder.Recorder``): its level, open spans,
    ``span_cpu`` and its pipeline's ``put``."""

    pid = -1  # not this process's: conftest's leak check leaves it alone

    def __init__(self, put: Callable[[object], object], *, levelno: Any = 0, span_cpu: bool = False) -> None:
        self.levelno = levelno
        self.open_spans: dict[str, Any] = {}
        self.span_cpu = span_cpu
        self.pipeline = FakePipeline(put)


# -- environment ---------------------------------------------------------------------------------


def child_env(home: Path | None, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    for key in ("ZOOMTRACE_SINK", "ZOOMTRACE_STORE", "ZOOMTRACE_DEBUG", "PYTHONSTARTUP"):
        env.pop(key, None)
    env["PYTHONPATH"] = str(SRC) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    if home is not None:
        env["ZOOMTRACE_HOME"] = str(home)
    else:
        env.pop("ZOOMTRACE_HOME", None)
    env.update(extra)
    return env


# -- git -----------------------------------------------------------------------------------------


def git(repo: Path, *args: str) -> str:
    out = subprocess.run(
        [
            "git",
            "-c",
            "user.name=Zoom Test",
            "-c",
            "user.email=zoom@example.invalid",
            "-c",
            "init.defaultBranch=main",
            "-c",
            "commit.gpgsign=false",
            *args,
        ],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    if out.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed: {out.stderr}")
    return out.stdout.strip()


def write_files(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"))


def make_repo(root: Path, files: dict[str, str], message: str = "initial") -> str:
    """A real git repository at ``root`` holding ``files`` (dedented), committed. Returns HEAD."""
    root.mkdir(parents=True, exist_ok=True)
    git(root, "init", "-q")
    write_files(root, files)
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", message)
    return git(root, "rev-parse", "HEAD")


# -- source markers ------------------------------------------------------------------------------


def marker_line(path: Path, marker: str) -> int:
    """The 1-based line of ``path`` carrying the comment ``# @marker`` (exactly one such line)."""
    return marker_line_in_text(path.read_text(), marker, str(path))


def marker_line_in_text(text: str, marker: str, where: str = "text") -> int:
    """Like ``marker_line`` for source text as ``write_files`` would write it (dedented)."""
    text = textwrap.dedent(text).lstrip("\n")
    hits = [i for i, line in enumerate(text.splitlines(), 1) if line.rstrip().endswith(f"# @{marker}")]
    assert len(hits) == 1, f"marker @{marker} found {len(hits)} times in {where}"
    return hits[0]


def function_range(path: Path, name: str) -> tuple[int, int]:
    """First and last line of the top-level or nested ``def name`` in ``path`` (decorators included)."""
    import ast

    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == name:
            first = min([node.lineno] + [d.lineno for d in node.decorator_list])
            assert node.end_lineno is not None
            return first, node.end_lineno
    raise AssertionError(f"no function {name} in {path}")


# -- child processes -----------------------------------------------------------------------------


def as_from_a_terminal() -> None:
    """In a child before it runs: SIGINT at its default, as a program started from a terminal has it,
    whatever this test run inherited (a shell's background job ignores SIGINT, and so would the child)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class Child:
    """A running Python script whose stdout lines can be awaited (readiness lines, results)."""

    def __init__(
        self, script: Path, home: Path | None, *args: str, cwd: Path | None = None, env: dict[str, str] | None = None
    ) -> None:
        self.proc = subprocess.Popen(
            [PY, str(script), *args],
            cwd=cwd or script.parent,
            env=env or child_env(home),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=as_from_a_terminal,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.stdout: list[str] = []
        self.stderr = ""
        self._out = threading.Thread(target=self._read_out, daemon=True)
        self._err = threading.Thread(target=self._read_err, daemon=True)
        self._out.start()
        self._err.start()

    def _read_out(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.stdout.append(line)
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def _read_err(self) -> None:
        assert self.proc.stderr is not None
        self.stderr = self.proc.stderr.read()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def expect(self, prefix: str, timeout: float = TIMEOUT) -> str:
        """Wait for the next stdout line starting with ``prefix``; return the rest of it."""
        while True:
            try:
                line = self.lines.get(timeout=timeout)
            except queue.Empty:
                self.kill()
                raise AssertionError(f"no {prefix!r} line from {self.proc.args} within {timeout}s") from None
            if line is None:
                self.wait()
                raise AssertionError(
                    f"{self.proc.args} ended (rc={self.proc.returncode}) before printing {prefix!r}\n"
                    f"stdout: {''.join(self.stdout)}\nstderr: {self.stderr}"
                )
            if line.startswith(prefix):
                return line[len(prefix) :].strip()

    def expect_json(self, prefix: str) -> Any:
        return json.loads(self.expect(prefix))

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def wait(self, timeout: float = TIMEOUT) -> int:
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"{self.proc.args} did not exit within {timeout}s") from None
        self._out.join(timeout)
        self._err.join(timeout)
        return rc

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(TIMEOUT)


def run_script(
    script: Path,
    home: Path | None,
    *args: str,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    expect_rc: int | None = 0,
) -> Child:
    """Run a script to completion; returns the finished Child (stdout lines, stderr, returncode)."""
    child = Child(script, home, *args, cwd=cwd, env=env)
    rc = child.wait()
    if expect_rc is not None:
        assert rc == expect_rc, f"{script.name} exited {rc}\nstdout: {''.join(child.stdout)}\nstderr: {child.stderr}"
    return child


def result_lines(child: Child, prefix: str) -> list[Any]:
    """All JSON values printed on stdout lines starting with ``prefix``."""
    return [json.loads(line[len(prefix) :]) for line in child.stdout if line.startswith(prefix)]


def result(child: Child, prefix: str = "RESULT ") -> Any:
    values = result_lines(child, prefix)
    assert len(values) == 1, f"expected one {prefix!r} line, got {values}\nstderr: {child.stderr}"
    return values[0]


def recorded_with_and_without_c(
    root: Path, script_text: str, query: str
) -> tuple[tuple[Any, list[dict[str, Any]]], tuple[Any, list[dict[str, Any]]]]:
    """``run_with_and_without_c`` both ways: with the C speedups, then with the pure-Python code."""
    return (
        run_with_and_without_c(root, script_text, pure=False, query=query),
        run_with_and_without_c(root, script_text, pure=True, query=query),
    )


def run_with_and_without_c(root: Path, script_text: str, *, pure: bool, query: str) -> tuple[Any, list[dict[str, Any]]]:
    """Run ``script_text`` in a child with the C speedups, or with ``ZOOMTRACE_PURE_PYTHON=1`` (``pure``), in a
    directory of its own under ``root``; its ``RESULT`` line and ``query``'s rows of its store."""
    from zoomtrace._native import PURE_PYTHON_ENV

    where = root / ("pure" if pure else "c")
    where.mkdir()
    script = where / "app.py"
    script.write_text(textwrap.dedent(script_text).lstrip("\n"), "utf-8")
    home = where / "home"
    env = child_env(home, **({PURE_PYTHON_ENV: "1"} if pure else {}))
    if not pure:
        env.pop(PURE_PYTHON_ENV, None)
    child = run_script(script, home, env=env)
    return result(child), sql(home, query)


# -- the CLI -------------------------------------------------------------------------------------


def cli(
    home: Path | None, *args: str, cwd: Path | None = None, env: dict[str, str] | None = None, timeout: float = TIMEOUT
) -> subprocess.CompletedProcess[str]:
    cmd = [PY, "-m", "zoomtrace"]
    if home is not None:
        cmd += ["--home", str(home)]
    return subprocess.run(
        cmd + list(args),
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd or (home.parent if home is not None else None),
        env=env or child_env(None),
        check=False,
    )


def _strict_json(text: str) -> Any:
    def refuse(name: str) -> Any:
        raise ValueError(f"non-standard JSON constant {name}")

    return json.loads(text, parse_constant=refuse)


def cli_json(home: Path, *args: str) -> Any:
    """Run ``zoomtrace --home H ARGS --json``; it must succeed and print standard JSON."""
    out = cli(home, *args, "--json")
    assert out.returncode == 0, f"zoomtrace {' '.join(args)} --json exited {out.returncode}: {out.stderr}"
    assert "Traceback" not in out.stderr, out.stderr
    try:
        return _strict_json(out.stdout)
    except ValueError:
        # A stream of JSON lines (tail) is also a valid --json output.
        return [_strict_json(line) for line in out.stdout.splitlines() if line.strip()]


def story(home: Path, trace_id: str) -> dict[str, Any]:
    data = cli_json(home, "story", trace_id)
    assert isinstance(data, dict), data
    assert data["trace_id"] == trace_id
    return data


def nodes(home: Path) -> list[dict[str, Any]]:
    data = cli_json(home, "nodes")
    assert isinstance(data, list), data
    return data


def sql(home: Path, query: str) -> list[dict[str, Any]]:
    data = cli_json(home, "sql", query)
    assert isinstance(data, list), data
    return data


def as_json(value: Any) -> Any:
    """A column read back through ``sql --json`` may be a JSON string; decode it if so."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def row_code(row: dict[str, Any]) -> dict[str, Any]:
    """The code location of a record row read through ``sql --json``, whether the store keeps it as one
    ``code`` column or as ``code_file``/``code_line``/... columns."""
    if row.get("code") is not None:
        code = as_json(row["code"])
        if isinstance(code, list):
            code = dict(zip(("file", "line", "function", "commit", "dirty"), code, strict=False))
        return dict(code)
    return {k: row.get(f"code_{k}") for k in ("file", "line", "function", "commit", "dirty")}


def assert_one_line_error(out: subprocess.CompletedProcess[str]) -> str:
    """A failed CLI call: non-zero exit, exactly one clear line on stderr, no traceback anywhere."""
    assert out.returncode != 0, f"expected failure, got rc=0 stdout={out.stdout!r}"
    assert "Traceback" not in out.stderr and "Traceback" not in out.stdout, out.stderr
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one line on stderr, got {lines!r}"
    assert len(lines[0]) > 10, lines
    return lines[0]


# -- walking a story -----------------------------------------------------------------------------


def walk_spans(
    spans: list[dict[str, Any]], parent: dict[str, Any] | None = None
) -> Iterator[tuple[dict[str, Any], dict[str, Any] | None]]:
    """Every span of a story tree with the span it is nested under (None for roots)."""
    for s in spans:
        yield s, parent
        yield from walk_spans(s.get("children") or [], s)


def all_spans(st: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for s, _ in walk_spans(st["spans"])]


def all_records(st: dict[str, Any]) -> list[tuple[dict[str, Any], dict[str, Any] | None]]:
    """Every non-span record of a story with the span it is attached to (None: unattached)."""
    out: list[tuple[dict[str, Any], dict[str, Any] | None]] = []
    for s, _ in walk_spans(st["spans"]):
        out += [(r, s) for r in s.get("records") or []]
    out += [(r, None) for r in st.get("records") or []]
    return out


def span_named(st: dict[str, Any], name: str) -> dict[str, Any]:
    hits = [s for s in all_spans(st) if s["name"] == name]
    assert len(hits) == 1, f"expected one span {name!r}, got {len(hits)}: {[s['name'] for s in all_spans(st)]}"
    return hits[0]


def spans_named(st: dict[str, Any], name: str) -> list[dict[str, Any]]:
    return [s for s in all_spans(st) if s["name"] == name]


def record_with(st: dict[str, Any], text: str) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The one record whose message contains ``text`` (with its span)."""
    hits = [(r, s) for r, s in all_records(st) if text in (r.get("message") or "")]
    assert len(hits) == 1, f"expected one record with {text!r}, got {len(hits)}"
    return hits[0]


def spool_bytes(home: Path) -> bytes:
    files = sorted((home / "spool").glob("*.zspool"))
    assert files, f"no spool segments under {home / 'spool'}"
    return b"".join(f.read_bytes() for f in files)


# -- traces written straight into a home's store -------------------------------------------------


def write_store(home: Path, records: list[Any]) -> None:
    """A home whose DuckDB store holds ``records`` (``zoomtrace.wire.record.Record``s), as ingestion leaves it."""
    from zoomtrace.store.duckdb import DuckStore

    home.mkdir(parents=True, exist_ok=True)
    store = DuckStore(home / "store.duckdb")
    try:
        store.ingest(records)
    finally:
        store.close()


def branching_trace(trace_id: str, t0: int) -> list[Any]:
    """A trace that exercises a story's shapes: two services (a third node never started), a root with
    children and grandchildren started out of order, a span recorded twice (interrupted, then ended), a span
    whose parent was never recorded, two spans caught in a parent cycle, follows-from links, failures, logs
    of several levels, events, raw data, two records at the same instant, and records under no recorded
    span. Times are ``t0`` plus milliseconds."""
    from zoomtrace.wire.record import Error, Link, Record, uuid7

    ms = 1_000_000
    gateway, billing, ghost = uuid7(t0 - 9000 * ms), uuid7(t0 - 8000 * ms), uuid7(t0 - 7000 * ms)

    def rec(kind: str, type_: str, at: float, node: str = gateway, **fields: Any) -> Record:
        ts = t0 + int(at * ms)
        fields.setdefault("trace_id", trace_id)
        return Record(id=uuid7(ts), kind=kind, type=type_, ts_ns=ts, node_id=node, **fields)

    def started(node: str, service: str) -> Record:
        attrs = {"node_id": node, "service": service, "env": "test", "host": "h", "pid": 7, "started_ns": t0 - ms}
        return Record(id=uuid7(t0 - ms), kind="node", type="started", ts_ns=t0 - ms, node_id=node, attrs=attrs)

    root, pay, ship = "a0" * 8, "b1" * 8, "b2" * 8
    out = [
        started(gateway, "gateway"),
        started(billing, "billing"),
        rec("span", "GET /order", 0, span_id=root, end_ns=t0 + 900 * ms, attrs={"route": "/order"}),
        rec("log", "app", 1, span_id=root, level="INFO", message="order received"),
        rec("log", "app", 1, span_id=root, level="DEBUG", message="same instant"),
        rec("event", "OrderPlaced", 2, span_id=root, payload={"order": 7}),
        rec("span", "ship", 300, span_id=ship, parent_span_id=root, end_ns=t0 + 400 * ms, links=[Link(trace_id, pay)]),
        rec("raw", "Label", 301, span_id=ship, payload=b"\x00label"),
        rec("span", "pay", 100, billing, span_id=pay, parent_span_id=root, end_ns=t0 + 250 * ms, status="error"),
        rec("log", "billing", 101, billing, span_id=pay, level="WARNING", message="card slow"),
        rec("log", "billing", 102, billing, span_id=pay, level="ERROR", message="card declined"),
        rec("event", "Refund", 103, billing, span_id=pay, error=Error("Declined", "no funds", [])),
        rec("span", "fraud-check", 120, billing, span_id="c1" * 8, parent_span_id=pay, end_ns=t0 + 130 * ms),
        rec("span", "ledger", 110, billing, span_id="c2" * 8, parent_span_id=pay, status="interrupted"),
        rec("span", "ledger", 110, billing, span_id="c2" * 8, parent_span_id=pay, end_ns=t0 + 115 * ms),
        rec("log", "billing", 111, billing, span_id="c2" * 8, message="ledger written"),
        rec("span", "webhook", 500, ghost, span_id="d4" * 8, parent_span_id="99" * 8, end_ns=t0 + 510 * ms),
        rec("log", "hook", 501, ghost, span_id="d4" * 8, level="CRITICAL", message="hook failed"),
        rec("span", "loop-a", 600, span_id="e1" * 8, parent_span_id="e2" * 8, end_ns=t0 + 601 * ms),
        rec("span", "loop-b", 602, span_id="e2" * 8, parent_span_id="e1" * 8, end_ns=t0 + 603 * ms),
        rec("log", "app", 700, span_id=None, level="WARNING", message="under no span"),
        rec("log", "app", 701, span_id="77" * 8, message="under a span never recorded"),
        rec("log", "app", 5, trace_id="ff" * 16, message="another trace"),
    ]
    return out
