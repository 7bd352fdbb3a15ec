"""The code that produced a record: source lines around a call site, as they were when it ran.

A record's ``code`` says file (relative to its repository), line, commit and whether
the file differed from that commit (``dirty``). The lines come from, in order:

1. the node's snapshot of the file when it was dirty (content-addressed, in the store);
2. the recorded commit in the node's git repository (``git cat-file blob <commit>:<path>``,
   plumbing that runs no filters or text conversions);
3. for installed code (``dist==version:module/path.py``), the installed distribution's
   file, only when the installed version is the recorded one.

Nothing else is read: no path from a record is ever opened on disk directly, and git
is asked only for objects, so a crafted path cannot reach outside the repository.
"""

from __future__ import annotations

import json
import re
import subprocess
from functools import lru_cache
from importlib import metadata
from typing import Any

GIT_TIMEOUT_S = 5.0
#: Files larger than this are not shown (the panel says so).
MAX_SOURCE_BYTES = 4 * 1024 * 1024

_COMMIT = re.compile(r"[0-9a-f]{7,64}")
_NODE = re.compile(r"[0-9A-Za-z_-]{1,64}")
_DIST = re.compile(r"(?P<dist>[A-Za-z0-9_.-]+)==(?P<version>[^:\s]+):(?P<path>.+)")


def _json(value: Any) -> Any:
    if isinstance(value, str | bytes):
        try:
            return json.loads(value)
        except ValueError:
            return None
    return value


def _safe_path(path: str) -> bool:
    parts = path.split("/")
    return bool(path) and not path.startswith(("/", "-")) and "\0" not in path and ".." not in parts \
        and "\\" not in path


def node_repos(store: Any, node_id: str) -> list[dict[str, Any]]:
    """Repositories the node saw: at start (``nodes.repos``) and later (``repo`` node records)."""
    repos: list[dict[str, Any]] = []
    _, rows = store.sql(f"SELECT repos FROM nodes WHERE node_id = '{node_id}'")
    for (value,) in rows:
        repos += [r for r in (_json(value) or []) if isinstance(r, dict)]
    _, rows = store.sql(f"SELECT attrs FROM records WHERE kind = 'node' AND type = 'repo' AND node_id = '{node_id}'")
    for (value,) in rows:
        attrs = _json(value)
        if isinstance(attrs, dict) and attrs.get("root"):
            repos.append(attrs)
    return repos


def node_snapshot(store: Any, node_id: str, file: str) -> tuple[str | None, str | None]:
    """``(sha256, problem)`` of the node's snapshot of ``file``."""
    _, rows = store.sql(
        f"SELECT attrs FROM records WHERE kind = 'node' AND type = 'snapshot' AND node_id = '{node_id}' ORDER BY id")
    for (value,) in rows:
        attrs = _json(value)
        if isinstance(attrs, dict) and attrs.get("file") == file:
            return attrs.get("sha256"), attrs.get("problem")
    return None, None


@lru_cache(maxsize=256)
def git_blob(root: str, commit: str, path: str) -> bytes | None:
    """The file at ``commit`` (immutable, hence cached), or None when git cannot say."""
    try:
        out = subprocess.run(
            ["git", "-C", root, "cat-file", "blob", f"{commit}:{path}"],
            capture_output=True, timeout=GIT_TIMEOUT_S, check=False,
            env={"GIT_OPTIONAL_LOCKS": "0", "LC_ALL": "C", "PATH": "/usr/local/bin:/usr/bin:/bin",
                 "GIT_CONFIG_NOSYSTEM": "1"},
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout if out.returncode == 0 else None


def _installed(file: str) -> tuple[bytes | None, str | None]:
    m = _DIST.fullmatch(file)
    if not m:
        return None, None
    try:
        dist = metadata.distribution(m["dist"])
    except metadata.PackageNotFoundError:
        return None, f"{m['dist']} is not installed here"
    if dist.version != m["version"]:
        return None, f"{m['dist']} {dist.version} is installed here, the record ran {m['version']}"
    for entry in dist.files or []:
        if str(entry) == m["path"]:
            try:
                return entry.read_binary(), None
            except OSError as exc:
                return None, f"cannot read the installed file: {exc}"
    return None, f"{m['path']} is not a file of {m['dist']} {m['version']}"


def read_source(store: Any, *, node_id: str | None, file: str, line: int, commit: str | None,
                dirty: bool, context: int = 12) -> dict[str, Any]:
    """Lines ``line - context`` … ``line + context`` of ``file`` as it ran, with where they came from.

    Returns ``{file, line, commit, dirty, origin, repo, start, lines, total_lines, problem}``;
    ``origin`` is ``snapshot``, ``git``, ``installed`` or None (then ``problem`` says why).
    """
    result: dict[str, Any] = {"file": file, "line": line, "commit": commit, "dirty": dirty, "origin": None,
                              "repo": None, "start": None, "lines": [], "total_lines": None, "problem": None}
    content: bytes | None = None
    problems: list[str] = []  # why nothing could be shown
    notes: list[str] = []  # caveats about what is shown
    if commit is not None and not _COMMIT.fullmatch(commit):
        commit = None
        problems.append("the recorded commit is not a commit id")
    node_ok = node_id is not None and _NODE.fullmatch(node_id) is not None

    if dirty and node_ok:
        assert node_id is not None
        sha, problem = node_snapshot(store, node_id, file)
        if sha and re.fullmatch(r"[0-9a-f]{64}", sha):
            content = store.blob(sha)
            if content is not None:
                result["origin"] = "snapshot"
                result["snapshot"] = sha
            else:
                problems.append("the snapshot of this dirty file is missing from the store")
        else:
            problems.append(problem or "no snapshot of this dirty file was recorded")

    if content is None and commit and _safe_path(file):
        repos = node_repos(store, node_id) if node_ok else []  # type: ignore[arg-type]
        roots = [r["root"] for r in repos if r.get("head") == commit and isinstance(r.get("root"), str)]
        roots += [r["root"] for r in repos if isinstance(r.get("root"), str) and r["root"] not in roots]
        for root in roots:
            content = git_blob(root, commit, file)
            if content is not None:
                result["origin"], result["repo"] = "git", root
                if dirty:
                    notes.append("the file was dirty when it ran but no snapshot is stored: "
                                 "this is the committed version, not necessarily the code that ran")
                break
        else:
            problems.append(f"{file} at {commit[:12]} is not in any repository this node recorded"
                            if roots else "the node recorded no git repository")

    if content is None and commit is None:
        content, problem = _installed(file)
        if content is not None:
            result["origin"] = "installed"
        else:
            problems.append(problem or "code outside any git repository: its source was not recorded")

    if content is not None and len(content) > MAX_SOURCE_BYTES:
        problems.append(f"the file is too large to show ({len(content)} bytes)")
        content = None
        result["origin"] = None
    if content is not None:
        text = content.decode("utf-8", "replace").splitlines()
        result["total_lines"] = len(text)
        start = max(1, line - context)
        end = min(len(text), max(line, 1) + context)
        result["start"] = start
        result["lines"] = text[start - 1:end]
        if line > len(text):
            notes.append(f"line {line} is past the end of the file ({len(text)} lines)")
        problems = notes
    result["problem"] = "; ".join(problems) or None
    return result
