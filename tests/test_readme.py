"""The README's quickstart works as printed: its Python snippet runs, then every command of its CLI block
does, with the installed `zoomtrace` command (placeholders such as `<trace-id>` filled from the output of
the commands before them)."""

from __future__ import annotations

import json
import re
import shlex
import signal
import subprocess
import sys
import textwrap
import urllib.request
from pathlib import Path

import pytest

import helpers as h

README = h.REPO / "README.md"
ZOOMTRACE = str(Path(sys.executable).parent / "zoomtrace")
#: A comment after a command: two spaces or more, then "#".
_COMMENT = re.compile(r"\s{2,}#.*$")


def _blocks(language: str, after_heading: str) -> list[str]:
    text = README.read_text()
    section = text[text.index(after_heading) :]
    return re.findall(rf"```{language}\n(.*?)```", section, flags=re.S)


def quickstart_commands() -> list[list[str]]:
    """The quickstart's CLI block, a command per line, without its comments."""
    block = _blocks("bash", "## Quickstart")[0]
    lines = [_COMMENT.sub("", line).strip() for line in block.splitlines()]
    return [shlex.split(line) for line in lines if line.startswith("zoomtrace ")]


@pytest.fixture(scope="module")
def quickstart(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory where the README's Python snippet ran (its records in ./.zoomtrace)."""
    cwd = tmp_path_factory.mktemp("readme")
    snippet = _blocks("python", "## Quickstart")[0]
    (cwd / "quickstart.py").write_text(textwrap.dedent(snippet))
    out = subprocess.run(
        [sys.executable, "quickstart.py"], cwd=cwd, env=h.child_env(None), capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    return cwd


def zoomtrace(cwd: Path, args: list[str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    out = subprocess.run(
        [ZOOMTRACE, *args], cwd=cwd, env=h.child_env(None), capture_output=True, text=True, timeout=timeout
    )
    assert out.returncode == 0, f"zoomtrace {shlex.join(args)} failed: {out.stderr}"
    return out


def test_the_block_has_the_documented_commands() -> None:
    names = [command[1] if not command[1].startswith("--") else command[3] for command in quickstart_commands()]
    assert {"traces", "story", "nodes", "tail", "lineage", "sql", "ui"} <= set(names)


def test_every_command_of_the_quickstart_works_as_printed(quickstart: Path, tmp_path: Path) -> None:
    (trace,) = json.loads(zoomtrace(quickstart, ["traces", "--json"]).stdout)
    story = json.loads(zoomtrace(quickstart, ["story", trace["trace_id"], "--json"]).stdout)
    derived = [r for s in h.all_spans(story) for r in s["records"] if r["type"] == "PaymentCaptured"]
    fill = {
        "<trace-id>": trace["trace_id"],
        "<span-id>": h.all_spans(story)[0]["span_id"],
        "<record-id>": derived[0]["id"],
        "chdb://DIR": f"chdb://{tmp_path}/ch",
    }
    for command in quickstart_commands():
        args = [fill.get(arg, arg) for arg in command[1:]]
        if args == ["tail", "-f"]:
            follow(quickstart, args, "charged 12.5 for 7")
        elif args == ["ui"]:
            serve(quickstart, args)
        else:
            out = zoomtrace(quickstart, args)
            assert out.stdout.strip(), f"zoomtrace {shlex.join(args)} printed nothing"


def follow(cwd: Path, args: list[str], expected: str) -> None:
    """``tail -f`` shows the newest records, then keeps following until interrupted."""
    proc = subprocess.Popen(
        [ZOOMTRACE, *args],
        cwd=cwd,
        env=h.child_env(None),
        stdout=subprocess.PIPE,
        text=True,
        preexec_fn=h.as_from_a_terminal,
    )
    try:
        assert proc.stdout is not None
        seen = [proc.stdout.readline() for _ in range(7)]
        assert any(expected in line for line in seen), seen
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=h.TIMEOUT)
    assert proc.returncode in (0, 130)


def serve(cwd: Path, args: list[str]) -> None:
    """``ui`` serves the viewer at the address it prints, until interrupted."""
    proc = subprocess.Popen(
        [ZOOMTRACE, *args],
        cwd=cwd,
        env=h.child_env(None),
        stdout=subprocess.PIPE,
        text=True,
        preexec_fn=h.as_from_a_terminal,
    )
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline() for _ in range(2)]
        url = lines[1].split()[-1]
        assert url == "http://127.0.0.1:8087/", lines
        with urllib.request.urlopen(f"{url}api/traces", timeout=h.TIMEOUT) as response:
            assert len(json.loads(response.read())["traces"]) == 1
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=h.TIMEOUT)
    assert proc.returncode == 0
