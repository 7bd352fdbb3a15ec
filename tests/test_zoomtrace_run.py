"""``zoomtrace run -- python app.py``: an application with no line of Zoom in it, recorded (issue 14, item 5).

Every test runs the real CLI, which replaces itself with the real program; the applications below are
plain Flask, Starlette, requests, httpx and loguru code that never imports zoomtrace. What they did is
then read back through the CLI, as a user would.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from helpers import PY, TIMEOUT, child_env, cli, cli_json, write_files

FLASK_APP = """
import logging
import sys
import threading

import requests
from flask import Flask
from werkzeug.serving import make_server

log = logging.getLogger("shop")
app = Flask(__name__)


@app.get("/hello/<name>")
def hello(name):
    log.warning("saying hello to %s", name)
    return f"hello {name}"


server = make_server("127.0.0.1", 0, app)
threading.Thread(target=server.serve_forever, daemon=True).start()
answer = requests.get(f"http://127.0.0.1:{server.server_port}/hello/ann", timeout=10)
print(answer.status_code, answer.text)
server.shutdown()
sys.exit(int(sys.argv[1]) if len(sys.argv) > 1 else 0)
"""

STARLETTE_APP = """
import threading
import time

import httpx
import uvicorn
from loguru import logger
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route


async def hello(request):
    logger.info("greeting {}", request.path_params["name"])
    return PlainTextResponse("hello")


app = Starlette(routes=[Route("/hello/{name}", hello)])
server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="error"))
thread = threading.Thread(target=server.run, daemon=True)
thread.start()
while not server.started:  # the application's own start-up wait
    time.sleep(0.01)
port = server.servers[0].sockets[0].getsockname()[1]
print(httpx.get(f"http://127.0.0.1:{port}/hello/bob").text)
server.should_exit = True
thread.join()
"""


def run(home: Path, *args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``zoomtrace --home HOME run ARGS`` in ``cwd``."""
    return cli(home, "run", *args, cwd=cwd, env=env)


def only_trace(home: Path) -> dict[str, Any]:
    traces = cli_json(home, "traces")
    assert len(traces) == 1, traces
    story: dict[str, Any] = cli_json(home, "story", traces[0]["trace_id"])
    return story


def walk(spans: list[dict[str, Any]], depth: int = 0) -> list[tuple[int, dict[str, Any]]]:
    out = []
    for span in spans:
        out.append((depth, span))
        out.extend(walk(span["children"], depth + 1))
    return out


def test_a_flask_app_with_no_zoom_in_it_is_recorded_request_to_log(tmp_path: Path) -> None:
    home = tmp_path / "home"
    write_files(tmp_path, {"app.py": FLASK_APP})
    done = run(home, "--", PY, "app.py", "3", cwd=tmp_path)
    assert done.returncode == 3, done.stderr  # the program's own exit status
    assert done.stdout.strip() == "200 hello ann"
    assert "zoomtrace" not in done.stderr, done.stderr
    story = only_trace(home)
    spans = walk(story["spans"])
    # requests' client span, Flask's server span under it, the view's log under that.
    (client_depth, client), (server_depth, server) = spans
    assert (client_depth, server_depth) == (0, 1)
    assert client["attrs"]["span.kind"] == "client" and client["attrs"]["url.full"].endswith("/hello/ann")
    assert server["attrs"]["span.kind"] == "server" and server["attrs"]["http.route"] == "/hello/<name>"
    (log,) = server["records"]
    assert log["message"] == "saying hello to ann" and log["level"] == "WARNING"
    assert log["code"]["file"].endswith("app.py") and log["code"]["function"] == "hello"
    # One node, named after the script, whose exit was recorded.
    (node,) = cli_json(home, "nodes")
    assert node["service"] == "app" and node["stop_cause"] == "exit"


def test_service_and_settings_from_flags_and_python_dash_m(tmp_path: Path) -> None:
    home = tmp_path / "home"
    write_files(
        tmp_path,
        {
            "shop/__init__.py": "",
            "shop/__main__.py": "import logging\nlogging.getLogger('shop').debug('quiet start')\n",
        },
    )
    flags = ("--service", "orders", "--env", "staging", "--level", "debug")
    done = run(home, *flags, "--", PY, "-m", "shop", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    (node,) = cli_json(home, "nodes")
    assert (node["service"], node["env"]) == ("orders", "staging")
    (record,) = [r for r in cli_json(home, "tail") if r["kind"] == "log"]
    assert record["message"] == "quiet start" and record["level"] == "DEBUG"

    # Without --service, ``python -m shop`` is the service "shop".
    other = tmp_path / "other"
    assert run(other, "--", PY, "-m", "shop", cwd=tmp_path).returncode == 0
    assert [n["service"] for n in cli_json(other, "nodes")] == ["shop"]


def test_a_starlette_app_on_uvicorn_with_httpx_and_loguru(tmp_path: Path) -> None:
    home = tmp_path / "home"
    write_files(tmp_path, {"api.py": STARLETTE_APP})
    done = run(home, "--", PY, "api.py", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "hello"
    spans = walk(only_trace(home)["spans"])
    (client_depth, client), (server_depth, server) = spans
    assert (client_depth, server_depth) == (0, 1)
    assert client["attrs"]["span.kind"] == "client" and server["attrs"]["span.kind"] == "server"
    assert server["attrs"]["http.route"] == "/hello/{name}"
    (log,) = server["records"]
    assert log["message"] == "greeting bob" and log["code"]["function"] == "hello"


def test_integrations_can_be_chosen_or_turned_off(tmp_path: Path) -> None:
    write_files(tmp_path, {"app.py": FLASK_APP})
    home = tmp_path / "none"
    assert run(home, "--integrations", "none", "--", PY, "app.py", cwd=tmp_path).returncode == 0
    records = cli_json(home, "tail")
    assert "saying hello to ann" in [r["message"] for r in records]  # stdlib logging still...
    assert not [r for r in records if r["kind"] == "span"]  # ...but no span
    home = tmp_path / "flask-only"
    assert run(home, "--integrations", "flask", "--", PY, "app.py", cwd=tmp_path).returncode == 0
    spans = walk(only_trace(home)["spans"])
    assert [s["attrs"]["span.kind"] for _, s in spans] == ["server"]  # requests left alone


def test_child_python_processes_are_recorded_as_their_own_nodes(tmp_path: Path) -> None:
    home = tmp_path / "home"
    write_files(
        tmp_path,
        {
            "parent.py": """
                import logging
                import subprocess
                import sys

                logging.warning("parent here")
                subprocess.run([sys.executable, "child.py"], check=True)
            """,
            "child.py": "import logging\nlogging.warning('child here')\n",
        },
    )
    assert run(home, "--", PY, "parent.py", cwd=tmp_path).returncode == 0
    nodes = cli_json(home, "nodes")
    assert len(nodes) == 2 and len({n["pid"] for n in nodes}) == 2
    by_node = {r["node_id"]: r["message"] for r in cli_json(home, "tail") if r["kind"] == "log"}
    assert sorted(by_node.values()) == ["child here", "parent here"]


def test_the_programs_own_sitecustomize_still_runs(tmp_path: Path) -> None:
    home = tmp_path / "home"
    write_files(tmp_path, {"own/sitecustomize.py": "import builtins\nbuiltins.OWN = 'ran'\n"})
    env = child_env(None)
    env["PYTHONPATH"] = f"{tmp_path / 'own'}:{env['PYTHONPATH']}"
    done = run(home, "--", PY, "-c", "import logging; logging.warning(OWN)", cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    assert [r["message"] for r in cli_json(home, "tail") if r["kind"] == "log"] == ["ran"]


def test_a_python_without_zoomtrace_runs_unrecorded_with_one_line_saying_so(tmp_path: Path) -> None:
    base = getattr(sys, "_base_executable", None)
    if base is None or Path(base) == Path(PY):
        pytest.skip("needs a Python interpreter outside the test environment")  # the tests always run in a venv
    done = run(tmp_path / "home", "--", base, "-c", "print('still ran')", cwd=tmp_path)
    assert done.returncode == 0 and done.stdout == "still ran\n"
    (line,) = done.stderr.splitlines()
    assert "cannot import zoomtrace" in line and "not recorded" in line


@pytest.mark.parametrize(
    ("args", "says"),
    [
        ((), "give the command to run after --"),
        (("--",), "give the command to run after --"),
        (("--integrations", "flask,django-ish", "--", PY, "-c", "pass"), "unknown integration 'django-ish'"),
        (("--level", "loud", "--", PY, "-c", "pass"), "unknown level 'loud'"),
        (("--", "no-such-program-here"), "cannot run 'no-such-program-here'"),
    ],
)
def test_mistakes_are_one_line_errors(tmp_path: Path, args: tuple[str, ...], says: str) -> None:
    done = run(tmp_path / "home", *args, cwd=tmp_path)
    assert done.returncode == 2
    (line,) = done.stderr.splitlines()
    assert line.startswith("zoomtrace: ") and says in line


def test_the_cli_waits_for_nothing_it_is_replaced_by_the_program(tmp_path: Path) -> None:
    """``exec``: the program runs under the pid the caller started, so its signals and exit status are its own."""
    home = tmp_path / "home"
    script = "import os, sys; print(os.getpid()); sys.stdout.flush(); os.kill(os.getpid(), 15)"
    proc = subprocess.Popen(
        [PY, "-m", "zoomtrace", "--home", str(home), "run", "--", PY, "-c", script],
        stdout=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        env=child_env(None),
    )
    out, _ = proc.communicate(timeout=TIMEOUT)
    assert int(out.strip()) == proc.pid
    assert proc.returncode == -15
    (node,) = cli_json(home, "nodes")
    assert node["pid"] == proc.pid and node["stop_cause"] == "SIGTERM"


CELERY_PROBE = """
import logging

from celery import Celery

app = Celery("probe")
app.conf.task_always_eager = True


@app.task
def hello():
    logging.getLogger("probe").warning("hello from the task")


hello.delay()
"""


def test_python_dash_m_of_a_watched_package_installs_its_integration(tmp_path: Path) -> None:
    """``python -m celery`` finds the package twice (for its ``__main__``, then to import it): installed still."""
    home = tmp_path / "home"
    write_files(tmp_path, {"probe.py": CELERY_PROBE})
    done = run(home, "--", PY, "-m", "celery", "-A", "probe", "report", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    ((depth, task),) = walk(only_trace(home)["spans"])
    assert (depth, task["name"]) == (0, "probe.hello")
    assert "hello from the task" in [r["message"] for r in task["records"]]
