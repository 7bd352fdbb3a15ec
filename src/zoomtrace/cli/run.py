"""``zoomtrace run -- COMMAND``: record a Python program with no change to it (zero-code start).

The command replaces this process (``exec``), so it keeps its pid, its signals and its exit status.
Its environment carries the settings as ``ZOOMTRACE_*`` variables and puts the autostart directory
first on ``PYTHONPATH`` (``zoomtrace.integrations.auto``): every Python process it starts is recorded,
children included, each as a node.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import NoReturn

from zoomtrace.capture.recorder import LEVELS
from zoomtrace.errors import ConfigError
from zoomtrace.integrations.auto import AUTOSTART_DIR, INTEGRATIONS, chosen_integrations, service_name


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--service", help="the service's name (default: $ZOOMTRACE_SERVICE, else the script's or module's)")
    p.add_argument("--env", help="the deployment environment (default: $ZOOMTRACE_ENV, else 'local')")
    p.add_argument("--sink", help="where records go (default: $ZOOMTRACE_SINK, else the home's spool)")
    p.add_argument("--level", help="the lowest log level recorded (default: $ZOOMTRACE_LEVEL, else INFO)")
    p.add_argument(
        "--integrations",
        metavar="NAMES",
        help=f"all (the default: $ZOOMTRACE_INTEGRATIONS), none, or some of {','.join(INTEGRATIONS)}",
    )
    p.add_argument("command", nargs=argparse.REMAINDER, metavar="-- COMMAND", help="e.g. -- python app.py")


def cmd_run(args: argparse.Namespace) -> NoReturn:
    command = list(args.command)
    if command[:1] == ["--"]:
        command = command[1:]
    if not command:
        raise ConfigError("give the command to run after --, e.g. `zoomtrace run -- python app.py`")
    env = dict(os.environ)
    if args.level is not None:
        if args.level.upper() not in LEVELS:
            raise ConfigError(f"unknown level {args.level!r}: use one of {', '.join(LEVELS)}")
        env["ZOOMTRACE_LEVEL"] = args.level.upper()
    if args.integrations is not None:
        chosen_integrations(args.integrations)  # a mistake is reported now, not in the program
        env["ZOOMTRACE_INTEGRATIONS"] = args.integrations
    for name, value in (("ZOOMTRACE_ENV", args.env), ("ZOOMTRACE_SINK", args.sink)):
        if value:
            env[name] = value
    env["ZOOMTRACE_SERVICE"] = args.service or env.get("ZOOMTRACE_SERVICE") or service_name(command)
    env["ZOOMTRACE_HOME"] = str(Path(args.home).absolute())
    env["PYTHONPATH"] = os.pathsep.join([str(AUTOSTART_DIR), *([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])])
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execvpe(command[0], command, env)  # noqa: S606 (the user's command, as given: no shell)
    except OSError as exc:
        raise ConfigError(f"cannot run {command[0]!r}: {exc.strerror or exc}") from None
