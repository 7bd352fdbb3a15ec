"""The demo's second act: billing run at two commits of its own git repository, so that ``zoomtrace changes``
has something to find.

Billing's code is copied into ``<home>/demo-billing`` and committed (commit A); the shop takes a batch of
orders; then a commit B makes ``capture_payment`` slower (a fraud check) and adds loyalty points that fail
with a ``KeyError`` for some amounts, and the shop takes the same batch again. The commits have fixed
authors and dates, so running the demo again finds the same two commits.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Final

from zoomtrace.errors import ZoomError

#: Orders per commit: enough spans on each side for ``zoomtrace changes`` to judge (its --min-samples).
ORDERS: Final = 40

_SLOWER: Final = '''

def _check_fraud(amount: float) -> None:
    """Asks the fraud service (simulated: 15 ms more per payment)."""
    time.sleep(0.015)
'''

_LOYALTY: Final = """

LOYALTY_RATES = {0: 0.01, 1: 0.02}


def award_points(amount: float) -> float:
    try:
        return amount * LOYALTY_RATES[round(amount) % 3]
    except KeyError:
        log.exception("no loyalty rate for %.2f EUR", amount)
        return 0.0
"""


def commit_b(source: str) -> str:
    """Billing's source at commit B: ``capture`` checks for fraud first, ``charge`` awards loyalty points."""
    steps = (
        ("import logging\n", "import logging\nimport time\n"),
        ('    log.info("captured %.2f EUR', '    _check_fraud(amount)\n    log.info("captured %.2f EUR'),
        ("\n\ndef charge(", _SLOWER + _LOYALTY + "\n\ndef charge("),
        ("    event_id = zt.event(payment", "    award_points(payment.amount)\n    event_id = zt.event(payment"),
    )
    for old, new in steps:
        if old not in source:
            raise ValueError(f"billing's source has changed: {old.strip()!r} not found; update demo/commits.py")
        source = source.replace(old, new, 1)
    return source


def git_available() -> bool:
    return shutil.which("git") is not None


def run_two_commits(home: Path, take_orders: Callable[[list[str]], object]) -> tuple[str, str]:
    """Commit billing (A), ``take_orders`` with the command that runs it, commit B, again; returns (A, B)."""
    repo = home / "demo-billing"
    if repo.exists():
        shutil.rmtree(repo)
    repo.mkdir(parents=True)
    source = (Path(__file__).parent / "billing.py").read_text()
    _git(repo, "init", "-q")
    commits = []
    for text, message in ((source, "billing: capture payments"), (commit_b(source), "billing: fraud check, loyalty")):
        (repo / "billing.py").write_text(text)
        _git(repo, "add", "billing.py")
        _git(repo, "commit", "-q", "-m", message)
        commits.append(_git(repo, "rev-parse", "HEAD"))
        take_orders([str(repo / "billing.py")])
    return commits[0], commits[1]


def _git(repo: Path, *args: str) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "Zoom demo",
        "GIT_AUTHOR_EMAIL": "demo@zoomtrace.invalid",
        "GIT_AUTHOR_DATE": "2026-01-01T12:00:00Z",
        "GIT_COMMITTER_NAME": "Zoom demo",
        "GIT_COMMITTER_EMAIL": "demo@zoomtrace.invalid",
        "GIT_COMMITTER_DATE": "2026-01-01T12:00:00Z",
    }
    done = subprocess.run(
        ["git", "-c", "init.defaultBranch=main", "-c", "commit.gpgsign=false", *args],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    if done.returncode != 0:
        raise ZoomError(f"git {args[0]} failed in {repo}: {done.stderr.strip()}")
    return done.stdout.strip()
