"""Zero-code start: Zoom initialised from ``ZOOMTRACE_*`` variables, with the integrations of the libraries used.

``zoomtrace run -- python app.py`` puts ``AUTOSTART_DIR`` first on the child's ``PYTHONPATH``; its
``sitecustomize`` calls ``start_from_environment()`` before the application's first line, as
``opentelemetry-instrument`` does. Nothing of the application is imported here: each integration is
installed right after its library is first imported (``watch``), so an application pays only for the
libraries it uses, whatever else is installed.
"""

from __future__ import annotations

import functools
import importlib.abc
import os
import sys
from collections.abc import Callable, Sequence
from importlib.machinery import ModuleSpec
from pathlib import Path
from types import ModuleType
from typing import Any, Final

from zoomtrace._stderr import say
from zoomtrace.errors import ConfigError

__all__ = ["AUTOSTART_DIR", "INTEGRATIONS", "start_from_environment", "watch"]

#: The directory ``zoomtrace run`` puts first on ``PYTHONPATH``: it holds only a ``sitecustomize`` module.
AUTOSTART_DIR: Final = Path(__file__).with_name("_autostart")

Install = Callable[[ModuleType], None]


def _requests(module: ModuleType) -> None:
    from zoomtrace.integrations import requests

    requests.instrument()


def _httpx(module: ModuleType) -> None:
    from zoomtrace.integrations import httpx

    httpx.instrument()


def _flask(module: ModuleType) -> None:
    """Every Flask application's WSGI callable is wrapped as it is created (``wsgi.ZoomMiddleware``)."""
    from zoomtrace.integrations.wsgi import ZoomMiddleware

    flask_class: Any = module.Flask
    created = flask_class.__init__

    @functools.wraps(created)
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        created(self, *args, **kwargs)
        if not isinstance(self.wsgi_app, ZoomMiddleware):
            self.wsgi_app = ZoomMiddleware(self.wsgi_app)

    flask_class.__init__ = __init__


def _starlette(module: ModuleType) -> None:
    """Every Starlette (and FastAPI) application's middleware stack is wrapped (``asgi.ZoomMiddleware``)."""
    from zoomtrace.integrations.asgi import ZoomMiddleware

    app_class: Any = module.Starlette
    build = app_class.build_middleware_stack

    @functools.wraps(build)
    def build_middleware_stack(self: Any) -> Any:
        return ZoomMiddleware(build(self))

    app_class.build_middleware_stack = build_middleware_stack


def _loguru(module: ModuleType) -> None:
    from zoomtrace.integrations.loguru import sink

    module.logger.add(sink, level=os.environ.get("ZOOMTRACE_LEVEL", "INFO").upper())


def _celery(module: ModuleType) -> None:
    from zoomtrace.integrations import celery

    celery.instrument()


def _aiokafka(module: ModuleType) -> None:
    from zoomtrace.integrations import aiokafka

    aiokafka.instrument()


def _django(module: ModuleType) -> None:
    """Every Django handler loads Zoom's middleware first (``django.ZoomMiddleware``), with no settings change;
    the SQL statements are traced from then on (``django.db.trace_queries``)."""
    from zoomtrace.integrations.django import MIDDLEWARE

    handler_class: Any = module.BaseHandler
    load = handler_class.load_middleware

    @functools.wraps(load)
    def load_middleware(self: Any, *args: Any, **kwargs: Any) -> Any:
        from django.conf import settings

        from zoomtrace.integrations.django.db import trace_queries

        if MIDDLEWARE not in settings.MIDDLEWARE:
            settings.MIDDLEWARE = [MIDDLEWARE, *settings.MIDDLEWARE]
        trace_queries()
        return load(self, *args, **kwargs)

    handler_class.load_middleware = load_middleware


def _sqlalchemy(module: ModuleType) -> None:
    from zoomtrace.integrations import sqlalchemy

    sqlalchemy.instrument()


def _logging_config(module: ModuleType) -> None:
    """A logging configuration that replaces the root logger's handlers (``dictConfig``, ``fileConfig``, as
    Django's ``LOGGING`` does) gets Zoom's handler back on the root logger."""
    from zoomtrace.capture.stdlib_logging import keep_attached

    for name in ("dictConfig", "fileConfig"):
        configure = getattr(module, name)

        def reconfigured(*args: Any, _configure: Callable[..., None] = configure, **kwargs: Any) -> None:
            _configure(*args, **kwargs)
            keep_attached()

        setattr(module, name, functools.wraps(configure)(reconfigured))


#: Integration name -> (the module whose import installs it, the installer). Stdlib ``logging`` needs none
#: to be recorded (``zt.init`` captures it); ``logging`` keeps it recorded through a logging configuration.
INTEGRATIONS: Final[dict[str, tuple[str, Install]]] = {
    "requests": ("requests", _requests),
    "httpx": ("httpx", _httpx),
    "flask": ("flask", _flask),
    "starlette": ("starlette.applications", _starlette),
    "loguru": ("loguru", _loguru),
    "django": ("django.core.handlers.base", _django),
    "sqlalchemy": ("sqlalchemy", _sqlalchemy),
    "logging": ("logging.config", _logging_config),
    "celery": ("celery", _celery),
    "aiokafka": ("aiokafka", _aiokafka),
}


def chosen_integrations(text: str | None) -> list[str]:
    """The integrations ``$ZOOMTRACE_INTEGRATIONS`` names: ``all`` (the default), ``none``, or a comma list."""
    text = (text or "all").strip().lower()
    if text == "all":
        return list(INTEGRATIONS)
    if text == "none":
        return []
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in INTEGRATIONS]
    if unknown:
        raise ConfigError(
            f"unknown integration {', '.join(map(repr, unknown))}: use all, none, or some of {', '.join(INTEGRATIONS)}"
        )
    return names


def start_from_environment() -> None:
    """``zt.init`` from ``ZOOMTRACE_SERVICE``, ``ZOOMTRACE_ENV``, ``ZOOMTRACE_LEVEL`` (and ``ZOOMTRACE_SINK``,
    ``ZOOMTRACE_HOME``, which ``init`` reads; ``init`` refuses a bad level), then the integrations
    ``ZOOMTRACE_INTEGRATIONS`` names."""
    from zoomtrace.runtime.lifecycle import init

    env = os.environ
    names = chosen_integrations(env.get("ZOOMTRACE_INTEGRATIONS"))
    service = env.get("ZOOMTRACE_SERVICE") or service_name(sys.argv)
    init(service, env=env.get("ZOOMTRACE_ENV") or "local", level=env.get("ZOOMTRACE_LEVEL", "INFO"))
    watch({INTEGRATIONS[name][0]: INTEGRATIONS[name][1] for name in names})


def service_name(command: Sequence[str]) -> str:
    """A service name for a command that was given none: the module of ``python -m``, the script's name, or the
    program's."""
    if not command:
        return "python"
    program = Path(command[0]).name
    if not program.startswith("python") or program == "python-config":
        return Path(program).stem or "python"
    args = list(command[1:])
    while args:
        arg = args.pop(0)
        if arg == "-m" and args:
            return args[0]
        if arg.startswith("-m") and len(arg) > 2:
            return arg[2:]
        if arg in ("-c", "-"):
            return "python"
        if arg in ("-W", "-X", "--check-hash-based-pycs"):
            args = args[1:]
        elif not arg.startswith("-"):
            return Path(arg).stem or "python"
    return "python"


def watch(installers: dict[str, Install]) -> None:
    """Run each installer right after its module is imported (now, for a module imported already)."""
    pending = dict(installers)
    for name in list(pending):
        module = sys.modules.get(name)
        if module is not None:
            _install(name, pending.pop(name), module)
    if pending:
        sys.meta_path.insert(0, _AfterImport(pending))


def _install(name: str, installer: Install, module: ModuleType) -> None:
    try:
        installer(module)
    except Exception as exc:  # a library version the integration does not know must not stop the application
        say(f"the {name} integration is not installed ({type(exc).__name__}: {exc})")


class _AfterImport(importlib.abc.MetaPathFinder):
    """Finds nothing itself: it wraps the loader of a watched module so that its installer runs once the
    module has executed, then forgets the module."""

    def __init__(self, installers: dict[str, Install]) -> None:
        self._installers = installers

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if fullname not in self._installers:
            return None
        spec = _find_elsewhere(self, fullname, path, target)
        loader = spec.loader if spec is not None else None
        if loader is None or not hasattr(loader, "exec_module"):
            if spec is not None:
                self._installers.pop(fullname)
            return spec  # None: not importable (yet), watch on
        execute = loader.exec_module

        def exec_module(module: ModuleType) -> None:
            execute(module)
            # Forgotten when executed, not when found: ``python -m PACKAGE`` finds the package once for its
            # ``__main__`` and then imports it through a second search.
            installer = self._installers.pop(fullname, None)
            if installer is not None:
                _install(fullname, installer, module)

        loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


def _find_elsewhere(
    this: object, fullname: str, path: Sequence[str] | None, target: ModuleType | None
) -> ModuleSpec | None:
    for finder in sys.meta_path:
        if finder is this:
            continue
        find = getattr(finder, "find_spec", None)
        if find is not None:
            spec: ModuleSpec | None = find(fullname, path, target)
            if spec is not None:
                return spec
    return None
