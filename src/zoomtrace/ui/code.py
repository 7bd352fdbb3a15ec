"""The code that produced a record: source lines around a call site, as they were when it ran.

A record's ``code`` says file (relative to its repository), line, commit and whether
the file differed from that commit (``dirty``). The lines come from, in order:

1. the node's snapshot of the file when it was dirty (content-addressed, in the store);
2. the recorded commit in the node's git repository (``git cat-file blob <commit>:<path>``,
   plumbing that runs no filters or text conversions), when that repository lies in one of
   the **code roots** the viewer's operator allows (``resolve_code_roots``);
3. for installed code (``dist==version:module/path.py``), the installed distribution's
   file, only when the installed version is the recorded one.

A record must not widen what the viewer may read: records come from spools and Kafka
topics that others may write, and a forged node record could name any repository the
viewer's user can read. So its repository roots are only hints, checked against the
code roots (after resolving symbolic links and ``..``), and git is held to the
repository at that root (``GIT_CEILING_DIRECTORIES``: no climbing to an enclosing one).
No path from a record is ever opened on disk directly, and git is asked only for
objects, so a crafted path cannot reach outside the repository.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Mapping, Sequence
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

from zoomtrace.errors import NotFound
from zoomtrace.runtime.provenance import find_repo_root

#: Directories whose git repositories the code panel may read, ``os.pathsep``-separated (see ``resolve_code_roots``).
CODE_ROOTS_ENV = "ZOOMTRACE_CODE_ROOTS"

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
    return (
        bool(path) and not path.startswith(("/", "-")) and "\0" not in path and ".." not in parts and "\\" not in path
    )


def resolve_code_roots(
    given: Sequence[str | os.PathLike[str]] | None = None,
    *,
    home: str | os.PathLike[str],
    environ: Mapping[str, str] = os.environ,
    cwd: str | os.PathLike[str] | None = None,
) -> tuple[str, ...]:
    """The directories whose git repositories (at them or below) the code panel may read, resolved.

    ``given`` (``zoomtrace ui --code-root DIR``, repeatable) when not None; else ``$ZOOMTRACE_CODE_ROOTS``
    (directories separated by ``os.pathsep``; set but empty: none) when set; else the git work trees
    holding the current directory (``cwd``) and the home: where the operator works. None of them comes
    from a record.
    """
    if given is not None:
        dirs: list[str] = [os.fspath(d) for d in given]
    elif CODE_ROOTS_ENV in environ:
        dirs = [d for d in environ[CODE_ROOTS_ENV].split(os.pathsep) if d.strip()]
    else:
        found = (find_repo_root(os.fspath(cwd) if cwd is not None else os.getcwd()), find_repo_root(os.fspath(home)))
        dirs = [d for d in found if d]
    return tuple(dict.fromkeys(os.path.realpath(os.path.expanduser(d)) for d in dirs))


def allowed_root(root: object, roots: Sequence[str]) -> str | None:
    """``root`` (a repository root from a record) resolved, when it is one of ``roots`` or lies inside one."""
    if not isinstance(root, str) or not os.path.isabs(root) or "\0" in root:
        return None
    real = os.path.realpath(root)
    for allowed in roots:
        if real == allowed or real.startswith(allowed.rstrip(os.sep) + os.sep):
            return real
    return None


def node_repos(store: Any, node_id: str) -> list[dict[str, Any]]:
    """Repositories the node saw (``nodes.repos``: those listed at start and those met later)."""
    try:
        repos = store.node(node_id).get("repos")
    except NotFound:
        return []
    return [r for r in (_json(repos) or []) if isinstance(r, dict)]


def node_snapshot(store: Any, node_id: str, file: str) -> tuple[str | None, str | None]:
    """``(sha256, problem)`` of the node's snapshot of ``file``."""
    for attrs in store.snapshots(node_id):
        if attrs.get("file") == file:
            return attrs.get("sha256"), attrs.get("problem")
    return None, None


@lru_cache(maxsize=256)
def git_blob(root: str, commit: str, path: str) -> bytes | None:
    """The file at ``commit`` in the repository at ``root`` (immutable, hence cached), or None when git
    cannot say. Git does not look above ``root`` for a repository."""
    try:
        out = subprocess.run(
            ["git", "-C", root, "cat-file", "blob", f"{commit}:{path}"],
            capture_output=True,
            timeout=GIT_TIMEOUT_S,
            check=False,
            env={
                "GIT_OPTIONAL_LOCKS": "0",
                "LC_ALL": "C",
                "PATH": "/usr/local/bin:/usr/bin:/bin",
                "GIT_CONFIG_NOSYSTEM": "1",
                "GIT_CEILING_DIRECTORIES": str(Path(root).parent),
            },
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout if out.returncode == 0 else None


def _installed(file: str) -> tuple[bytes | None, str | None]:
    m = _DIST.fullmatch(file)
    if not m:
        return None, None
    if not _safe_path(m["path"]):  # a distribution's own files, not what it installs elsewhere (../../bin)
        return None, f"{m['path']} is not a module path"
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


def read_source(
    store: Any,
    *,
    node_id: str | None,
    file: str,
    line: int,
    commit: str | None = None,
    dirty: bool | None = None,
    context: int = 12,
    roots: Sequence[str] = (),
) -> dict[str, Any]:
    """Lines ``line - context`` … ``line + context`` of ``file`` as it ran, with where they came from.

    ``commit`` and ``dirty`` come from the record's ``code``; when unknown (error frames carry
    only file and line) the node's repositories decide: their HEAD and their dirty lists. Git is
    asked only in the node's repositories that lie in ``roots`` (``resolve_code_roots``).
    Returns ``{file, line, commit, dirty, origin, repo, start, lines, total_lines, problem}``;
    ``origin`` is ``snapshot``, ``git``, ``installed`` or None (then ``problem`` says why).
    """
    result: dict[str, Any] = {
        "file": file,
        "line": line,
        "commit": commit,
        "dirty": dirty,
        "origin": None,
        "repo": None,
        "start": None,
        "lines": [],
        "total_lines": None,
        "problem": None,
    }
    problems: list[str] = []  # why nothing could be shown
    notes: list[str] = []  # caveats about what is shown
    bad_commit = commit is not None and not _COMMIT.fullmatch(commit)
    if bad_commit:
        commit = None
        problems.append("the recorded commit is not a commit id")
    node = node_id if node_id is not None and _NODE.fullmatch(node_id) else None
    repos = node_repos(store, node) if node else []
    installed = _DIST.fullmatch(file) is not None

    # Which (root, commit) pairs may hold the file: the recorded commit in the node's repositories
    # (the one whose HEAD it is first), or each repository's HEAD when the commit is unknown.
    candidates: list[tuple[str, str]] = []
    outside: list[str] = []  # repositories the node recorded that the viewer may not read
    for repo in sorted(repos, key=lambda r: r.get("head") != commit):
        recorded, head = repo.get("root"), repo.get("head")
        if not isinstance(recorded, str):
            continue
        root = allowed_root(recorded, roots)
        if root is None:
            outside.append(recorded)
            continue
        rev = commit or head
        if isinstance(rev, str) and _COMMIT.fullmatch(rev) and (root, rev) not in candidates:
            candidates.append((root, rev))
    if dirty is None and not installed:
        dirty = any(file in (r.get("dirty") or []) and (commit is None or r.get("head") == commit) for r in repos)
    result["dirty"] = dirty

    content: bytes | None = None
    if dirty and node:
        sha, problem = node_snapshot(store, node, file)
        if sha and re.fullmatch(r"[0-9a-f]{64}", sha):
            content = store.blob(sha)
            if content is not None:
                result["origin"], result["snapshot"] = "snapshot", sha
            else:
                problems.append("the snapshot of this dirty file is missing from the store")
        else:
            problems.append(problem or "no snapshot of this dirty file was recorded")

    if content is None and not installed:
        if not _safe_path(file):
            problems.append("code outside any git repository: its source was not recorded")
        elif bad_commit:
            pass
        elif not candidates and outside:
            problems.append(
                f"the process's repository ({', '.join(outside)}) is outside the code roots this viewer may read "
                f"(zoomtrace ui --code-root DIR, or ${CODE_ROOTS_ENV})"
            )
        elif not candidates:
            problems.append("the process recorded no git repository (or no commit) for this file")
        else:
            for root, rev in candidates:
                content = git_blob(root, rev, file)
                if content is not None:
                    result["origin"], result["repo"], result["commit"] = "git", root, rev
                    if dirty:
                        notes.append(
                            "the file was dirty when it ran but no snapshot is stored: this is the "
                            "committed version, not necessarily the code that ran"
                        )
                    break
            else:
                where = f"at {commit[:12]} " if commit else ""
                problems.append(
                    f"{file} {where}is not in the repositories this process recorded (moved, or the commit is gone)"
                )

    if content is None and installed:
        content, problem = _installed(file)
        if content is not None:
            result["origin"] = "installed"
        else:
            problems.append(problem or "installed code: its source was not recorded")

    if content is not None and len(content) > MAX_SOURCE_BYTES:
        problems.append(f"the file is too large to show ({len(content)} bytes)")
        content, result["origin"] = None, None
    if content is not None:
        text = content.decode("utf-8", "replace").splitlines()
        result["total_lines"] = len(text)
        start = max(1, line - context)
        end = min(len(text), max(line, 1) + context)
        result["start"] = start
        result["lines"] = text[start - 1 : end]
        if line > len(text):
            notes.append(f"line {line} is past the end of the file ({len(text)} lines)")
        problems = notes
    result["problem"] = "; ".join(problems) or None
    return result
