"""Django: the middleware, the ``ZOOMTRACE`` setting and ``zoomtrace run`` (issue 14, item 4).

A real Django project (written by the test) is served by Django's own development server classes
in a child process; the test sends it real HTTP requests carrying ``traceparent`` and reads the
story back through the real CLI.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from helpers import PY, Child, cli_json, marker_line, story, write_files

SETTINGS = """
from pathlib import Path

SECRET_KEY = "not-a-secret"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1"]
ROOT_URLCONF = "shop.urls"
INSTALLED_APPS = ["shop", *{apps}]
MIDDLEWARE = {middleware}
DATABASES = {{"default": {{"ENGINE": "django.db.backends.sqlite3", "NAME": Path(__file__).parents[1] / "django.db"}}}}
LOGGING = {{
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {{{handlers}}},
    "root": {{"handlers": {root}, "level": "INFO"}},
}}
{extra}
"""

URLS = """
from django.urls import path

from shop import views

urlpatterns = [
    path("orders/<int:order_id>", views.order),
    path("boom", views.boom),
    path("missing", views.missing),
    path("items/", views.Items.as_view()),
]
"""

VIEWS = """
import logging
import sys

from django.db import connection
from django.http import HttpResponse
from django.views import View
from sqlalchemy import create_engine, text

from shop.models import Customer

log = logging.getLogger("shop.views")
engine = create_engine(f"sqlite:///{sys.argv[1]}")


def order(request, order_id):  # @order
    log.info("looking up order %s", order_id)  # @order_log
    with engine.connect() as conn:
        count = conn.execute(text("SELECT :n + 1"), {"n": order_id}).scalar()  # @order_sql
    customers = Customer.objects.filter(name="ann").count()  # @order_orm
    return HttpResponse(f"order {count} for {customers}")


def boom(request):
    raise ValueError("the view broke")  # @boom


def missing(request):
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM no_such_table")  # @missing_sql


class Items(View):
    def get(self, request):  # @items_get
        return HttpResponse("items")
"""

SERVE = """
import os
import sys

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shop.settings")
from django.core.servers.basehttp import WSGIRequestHandler, WSGIServer, get_internal_wsgi_application

application = get_internal_wsgi_application()  # as ``manage.py runserver`` does
from django.core.management import call_command

call_command("migrate", run_syncdb=True, verbosity=0)  # the Customer table
server = WSGIServer(("127.0.0.1", 0), WSGIRequestHandler)
server.set_app(application)
print("ready", server.server_port, flush=True)
server.serve_forever()
"""

ZOOM_HANDLER = '"zoom": {"class": "zoomtrace.integrations.logging.ZoomHandler"}'
CONSOLE_HANDLER = '"console": {"class": "logging.StreamHandler"}'


MODELS = """
from django.db import models


class Customer(models.Model):
    name = models.CharField(max_length=50)

    class Meta:
        app_label = "shop"
"""


def project(root: Path, settings: str) -> None:
    write_files(
        root,
        {
            "shop/__init__.py": "",
            "shop/settings.py": settings,
            "shop/urls.py": URLS,
            "shop/views.py": VIEWS,
            "shop/models.py": MODELS,
        },
    )
    (root / "serve.py").write_text(SERVE.lstrip("\n"))


def with_zoom_settings(zoomtrace: str) -> str:
    """Settings naming Zoom everywhere a project can: app, middleware, logging handler."""
    return SETTINGS.format(
        apps='["zoomtrace.integrations.django"]',
        middleware='["zoomtrace.integrations.django.ZoomMiddleware"]',
        handlers=ZOOM_HANDLER,
        root='["zoom"]',
        extra=f"ZOOMTRACE = {zoomtrace}\n"
        "from zoomtrace.integrations import sqlalchemy as zt_sqlalchemy\n\nzt_sqlalchemy.instrument()\n",
    )


def get(url: str, parent: tuple[str, str]) -> tuple[int, str]:
    """A real HTTP request carrying ``traceparent``; the status and body of the answer."""
    request = urllib.request.Request(url, headers={"traceparent": f"00-{parent[0]}-{parent[1]}-01"})
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def remote_parent() -> tuple[str, str]:
    return secrets.token_hex(16), secrets.token_hex(8)


class Server:
    """The project served in a child process (directly, or through ``zoomtrace run``)."""

    def __init__(self, root: Path, home: Path, script: str = "serve.py", *args: str) -> None:
        self.child = Child(root / script, home, str(root / "shop.db"), *args, cwd=root)
        self.url = f"http://127.0.0.1:{self.child.expect('ready')}"

    def stop(self) -> None:
        """SIGTERM: the node records its stop and flushes before the process exits."""
        if self.child.proc.poll() is None:
            self.child.signal(signal.SIGTERM)
        self.child.wait()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Server, Path]]:
    project(tmp_path, with_zoom_settings('{"service": "shop-web", "env": "ci"}'))
    server = Server(tmp_path, tmp_path / "home")
    try:
        yield server, tmp_path
    finally:
        server.stop()


def server_span(home: Path, parent: tuple[str, str]) -> dict[str, Any]:
    """The one span of the trace ``parent`` started: the request's, continued from the caller's."""
    st = story(home, parent[0])
    (span,) = st["spans"]
    assert span["parent_span_id"] == parent[1] and span["attrs"]["span.kind"] == "server"
    return span


def test_a_request_is_a_server_span_continued_from_traceparent(served: tuple[Server, Path]) -> None:
    server, root = served
    calls = {path: remote_parent() for path in ("orders/7", "boom", "items/", "nowhere", "missing")}
    answers = {path: get(f"{server.url}/{path}", parent) for path, parent in calls.items()}
    assert {path: status for path, (status, _) in answers.items()} == {
        "orders/7": 200,
        "boom": 500,
        "items/": 200,
        "nowhere": 404,
        "missing": 500,
    }
    assert answers["orders/7"][1] == "order 8 for 0"
    server.stop()
    home, views = root / "home", root / "shop" / "views.py"
    (node,) = cli_json(home, "nodes")
    assert (node["service"], node["env"]) == ("shop-web", "ci")  # from the ZOOMTRACE setting

    order = server_span(home, calls["orders/7"])
    attrs = order["attrs"]
    assert order["name"] == "GET /orders/<int:order_id>" and attrs["http.route"] == "/orders/<int:order_id>"
    assert (attrs["http.request.method"], attrs["url.path"], attrs["url.scheme"]) == ("GET", "/orders/7", "http")
    assert attrs["http.response.status_code"] == 200 and order["status"] == "ok"
    assert attrs["server.port"] == int(server.url.rsplit(":", 1)[1]) and attrs["client.address"] == "127.0.0.1"
    assert (order["code"]["function"], order["code"]["line"]) == ("order", marker_line(views, "order"))
    # The view's log (recorded once, though it reaches two Zoom handlers) and its SQL statement join the span.
    (log,) = order["records"]
    assert log["message"] == "looking up order 7" and log["code"]["line"] == marker_line(views, "order_log")
    statement, orm = order["children"]  # SQLAlchemy's, then the Django ORM's
    assert statement["name"] == "SELECT" and statement["attrs"]["db.query.text"] == "SELECT ? + 1"
    assert statement["code"]["line"] == marker_line(views, "order_sql")
    assert orm["name"] == "SELECT" and orm["attrs"]["span.kind"] == "client"
    assert orm["attrs"]["db.system.name"] == "sqlite" and orm["attrs"]["db.namespace"].endswith("django.db")
    query = orm["attrs"]["db.query.text"]
    assert 'FROM "shop_customer" WHERE "shop_customer"."name" = %s' in query and "ann" not in query
    assert (orm["code"]["function"], orm["code"]["line"]) == ("order", marker_line(views, "order_orm"))

    boom = server_span(home, calls["boom"])
    assert boom["name"] == "GET /boom" and boom["status"] == "error"
    assert boom["attrs"]["http.response.status_code"] == 500 and boom["attrs"]["error.type"] == "ValueError"
    assert boom["error"]["message"] == "the view broke"
    frames = [(Path(f["file"]).name, f["line"]) for f in boom["error"]["frames"]]
    assert ("views.py", marker_line(views, "boom")) in frames

    items = server_span(home, calls["items/"])
    assert items["name"] == "GET /items/"
    assert (items["code"]["function"], items["code"]["line"]) == ("Items.get", marker_line(views, "items_get"))

    missing = server_span(home, calls["missing"])
    (failed,) = missing["children"]  # a statement that failed: an error span, under the request's error span
    assert failed["status"] == "error" and failed["attrs"]["error.type"] == "OperationalError"
    assert failed["attrs"]["db.query.text"] == "SELECT * FROM no_such_table"
    assert failed["code"]["line"] == marker_line(views, "missing_sql")
    assert missing["status"] == "error" and "no such table" in missing["error"]["message"]

    nowhere = server_span(home, calls["nowhere"])
    assert nowhere["name"] == "GET" and "http.route" not in nowhere["attrs"]
    assert nowhere["attrs"]["http.response.status_code"] == 404 and nowhere["status"] == "ok"


@pytest.mark.parametrize(
    ("zoomtrace", "says"),
    [
        ('{"servise": "shop"}', "ZOOMTRACE has unknown key 'servise': use service or some of env, group"),
        ('{"level": "loud"}', "ZOOMTRACE: unknown level"),
        ('"shop"', "ZOOMTRACE must be a dict of zt.init arguments"),
    ],
)
def test_a_wrong_zoomtrace_setting_stops_django_with_one_clear_line(tmp_path: Path, zoomtrace: str, says: str) -> None:
    project(tmp_path, with_zoom_settings(zoomtrace))
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "shop.settings", "ZOOMTRACE_HOME": str(tmp_path / "home")}
    done = subprocess.run(
        [PY, "-c", "import django; django.setup()"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("django.core.exceptions.ImproperlyConfigured: ") and says in last, done.stderr


RUN = """
import os
import sys

home = sys.argv[2]
os.execv(sys.executable, [sys.executable, "-m", "zoomtrace", "--home", home, "run", "--service", "web", "--",
                          sys.executable, "serve.py", sys.argv[1]])
"""


def test_zoomtrace_run_serves_a_project_with_no_zoom_in_its_settings(tmp_path: Path) -> None:
    """No app, no middleware, and a LOGGING that replaces the root logger's handlers: still recorded."""
    plain = SETTINGS.format(apps="[]", middleware="[]", handlers=CONSOLE_HANDLER, root='["console"]', extra="")
    project(tmp_path, plain)
    (tmp_path / "run.py").write_text(RUN.lstrip("\n"))
    home = tmp_path / "home"
    server = Server(tmp_path, home, "run.py", str(home))
    try:
        parent = remote_parent()
        assert get(f"{server.url}/orders/7", parent) == (200, "order 8 for 0")
    finally:
        server.stop()
    (node,) = cli_json(home, "nodes")
    assert node["service"] == "web" and node["stop_cause"] == "SIGTERM"
    order = server_span(home, parent)
    views = tmp_path / "shop" / "views.py"
    assert order["name"] == "GET /orders/<int:order_id>" and order["code"]["line"] == marker_line(views, "order")
    (log,) = order["records"]
    assert log["message"] == "looking up order 7"
    statement, orm = order["children"]
    assert statement["name"] == "SELECT" and statement["code"]["line"] == marker_line(views, "order_sql")
    assert orm["name"] == "SELECT" and orm["code"]["line"] == marker_line(views, "order_orm")


SERVE_ASGI = """
import os
import socket

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shop.settings")
import uvicorn
from django.core.asgi import get_asgi_application

application = get_asgi_application()  # middleware loaded for an async stack
from django.core.management import call_command

call_command("migrate", run_syncdb=True, verbosity=0)
listening = socket.create_server(("127.0.0.1", 0))  # listening before "ready": no request can be refused
server = uvicorn.Server(uvicorn.Config(application, lifespan="off", log_level="error"))
print("ready", listening.getsockname()[1], flush=True)
server.run(sockets=[listening])
"""


def test_under_asgi_the_span_covers_the_sync_view_run_in_a_thread(tmp_path: Path) -> None:
    project(tmp_path, with_zoom_settings('{"service": "shop-asgi"}'))
    (tmp_path / "serve_asgi.py").write_text(SERVE_ASGI.lstrip("\n"))
    home = tmp_path / "home"
    server = Server(tmp_path, home, "serve_asgi.py")
    try:
        calls = {path: remote_parent() for path in ("orders/7", "boom")}
        assert get(f"{server.url}/orders/7", calls["orders/7"]) == (200, "order 8 for 0")
        assert get(f"{server.url}/boom", calls["boom"])[0] == 500
    finally:
        server.stop()
    views = tmp_path / "shop" / "views.py"
    order = server_span(home, calls["orders/7"])
    assert order["name"] == "GET /orders/<int:order_id>" and order["code"]["line"] == marker_line(views, "order")
    assert [r["message"] for r in order["records"]] == ["looking up order 7"]
    assert [s["code"]["line"] for s in order["children"]] == [marker_line(views, m) for m in ("order_sql", "order_orm")]
    boom = server_span(home, calls["boom"])
    assert boom["status"] == "error" and boom["error"]["message"] == "the view broke"
