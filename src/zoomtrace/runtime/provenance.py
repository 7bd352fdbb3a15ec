"""Where code comes from: git repository, commit, dirty state, installed distribution.

Everything here runs on the pipeline's worker thread (or once at start-up), never
on the caller's hot path: results are cached per directory, per repository and
per file, so ``git`` runs once per repository per process.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import sysconfig
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

#: Dirty files larger than this are not snapshotted (the story says so).
MAX_SNAPSHOT_BYTES = 1024 * 1024
GIT_TIMEOUT_S = 5.0


@dataclass
class Repo:
    """A git repository as it was when the node first saw it."""

    root: str
    head: str | None = None
    branch: str | None = None
    #: Repository-relative POSIX paths that differ from HEAD (modified, added, untracked, deleted).
    dirty: set[str] = field(default_factory=set)
    #: Why provenance is incomplete (no git binary, not a repository, git failed), if it is.
    problem: str | None = None

    def as_dict(self) -> dict[str, object]:
        return {
            "root": self.root,
            "head": self.head,
            "branch": self.branch,
            "dirty": sorted(self.dirty),
            "problem": self.problem,
        }


@dataclass(frozen=True, slots=True)
class Location:
    """A source file as a record refers to it."""

    file: str
    commit: str | None
    dirty: bool
    #: Absolute path, for snapshotting dirty files.
    path: str
    repo: Repo | None


def _git(root: str, *args: str) -> str:
    out = subprocess.run(
        ["git", "-C", root, "-c", "core.quotepath=off", *args],
        capture_output=True,
        timeout=GIT_TIMEOUT_S,
        check=True,
        env={**os.environ, "GIT_OPTIONAL_LOCKS": "0", "LC_ALL": "C"},
    )
    return out.stdout.decode("utf-8", "surrogateescape")


def _inside(path: str, root: str) -> str | None:
    """``path`` relative to ``root`` (POSIX) when strictly inside it, else None."""
    rel = os.path.relpath(path, root)
    if rel in (".", os.pardir) or rel.startswith(os.pardir + os.sep) or os.path.isabs(rel):
        return None
    return Path(rel).as_posix()


def read_repo(root: str, exclude: Sequence[str] = ()) -> Repo:
    """HEAD, branch and dirty files of the repository at ``root``; never raises.

    Directories in ``exclude`` (real paths: Zoom's home, where the records of this and other
    processes land) are not the application's files: left out of the dirty files.
    """
    repo = Repo(root=root)
    pathspecs = [f":(top,exclude,literal){rel}" for rel in (_inside(d, root) for d in exclude) if rel]
    try:
        repo.head = _git(root, "rev-parse", "--verify", "-q", "HEAD").strip() or None
    except FileNotFoundError:
        repo.problem = "git is not installed: commits unknown"
        return repo
    except (subprocess.SubprocessError, OSError) as exc:
        repo.problem = f"no commit yet or git failed: {exc}"
    try:
        branch = _git(root, "rev-parse", "--abbrev-ref", "HEAD").strip()
        repo.branch = None if branch in ("", "HEAD") else branch
        status = _git(root, "status", "--porcelain=v1", "-z", "--untracked-files=all", "--", *pathspecs)
    except (subprocess.SubprocessError, OSError) as exc:
        repo.problem = repo.problem or f"git status failed: {exc}"
        return repo
    entries = status.split("\0")
    i = 0
    while i < len(entries):
        entry = entries[i]
        i += 1
        if len(entry) < 4:
            continue
        code, path = entry[:2], entry[3:]
        repo.dirty.add(path)
        if "R" in code or "C" in code:
            i += 1  # the rename source follows as its own entry
    return repo


def find_repo_root(directory: str) -> str | None:
    """The nearest enclosing directory holding ``.git`` (a directory, or a file for worktrees)."""
    return _find_root(os.path.realpath(directory))


@cache
def _find_root(directory: str) -> str | None:
    if os.path.exists(os.path.join(directory, ".git")):
        return directory
    parent = os.path.dirname(directory)
    return None if parent == directory else _find_root(parent)


@cache
def _source_root(directory: str) -> str | None:
    """The repository holding source files of ``directory``, unless it is an installation directory."""
    real = os.path.realpath(directory)
    for installed, _kind in _install_dirs():
        if real == installed or real.startswith(installed + os.sep):
            return None
    return _find_root(real)


@cache
def _install_dirs() -> tuple[tuple[str, str], ...]:
    """(directory, kind) for site-packages and the stdlib, longest first."""
    dirs: list[tuple[str, str]] = []
    paths = sysconfig.get_paths()
    for key in ("purelib", "platlib"):
        dirs.append((os.path.realpath(paths[key]), "site"))
    for p in sys.path:
        if p.endswith(("site-packages", "dist-packages")):
            dirs.append((os.path.realpath(p), "site"))
    dirs.append((os.path.realpath(paths["stdlib"]), "stdlib"))
    return tuple(sorted(set(dirs), key=lambda d: -len(d[0])))


@cache
def _site_distributions(site: str) -> Mapping[str, tuple[str, str]]:
    """``{top-level import name: (distribution, version)}`` for the distributions installed in ``site``.

    Read with plain file reads from each ``*.dist-info`` (or ``*.egg-info``): the name and version
    from its metadata headers, the import names from ``top_level.txt``, else from the first part of
    each path in ``RECORD``. ``importlib.metadata.packages_distributions()`` says the same but imports
    some 40 modules and reads every file list into objects: half a second on the worker.
    """
    found: dict[str, tuple[str, str]] = {}
    try:
        names = sorted(n for n in os.listdir(site) if n.endswith((".dist-info", ".egg-info")))
    except OSError:
        return found
    for entry in names:
        path = os.path.join(site, entry)
        info = _dist_info(path, "METADATA" if entry.endswith(".dist-info") else "PKG-INFO")
        if info is None:
            continue
        for name in _top_level_names(path):
            found.setdefault(name, info)
    return found


def _dist_info(directory: str, metadata: str) -> tuple[str, str] | None:
    name = version = None
    try:
        with open(os.path.join(directory, metadata), encoding="utf-8", errors="replace") as f:
            for line in f:
                if not line.strip():
                    break  # the headers end here
                if line.startswith("Name:"):
                    name = line[5:].strip()
                elif line.startswith("Version:"):
                    version = line[8:].strip()
    except OSError:
        return None
    return (name, version or "?") if name else None


def _top_level_names(directory: str) -> set[str]:
    try:
        with open(os.path.join(directory, "top_level.txt"), encoding="utf-8", errors="replace") as f:
            return set(f.read().split())
    except OSError:
        pass
    names: set[str] = set()
    try:
        with open(os.path.join(directory, "RECORD"), encoding="utf-8", errors="replace") as f:
            for line in f:
                first, sep, _rest = line.split(",", 1)[0].partition("/")
                name = first if sep else first.removesuffix(".py") if first.endswith(".py") else ""
                if name and "." not in name and name != "__pycache__":
                    names.add(name)
    except OSError:
        pass
    return names


def _installed_name(path: str) -> str | None:
    for directory, kind in _install_dirs():
        if path.startswith(directory + os.sep):
            rel = Path(os.path.relpath(path, directory)).as_posix()
            if kind == "stdlib":
                return f"python{sys.version_info.major}.{sys.version_info.minor}:{rel}"
            top = rel.split("/", 1)[0].removesuffix(".py")
            dist = _site_distributions(directory).get(top)
            if dist is not None:
                return f"{dist[0]}=={dist[1]}:{rel}"
            return f"site-packages:{rel}"
    return None


class Provenance:
    """Maps source file names to :class:`Location`, discovering repositories as it goes."""

    def __init__(self, exclude: Sequence[str | os.PathLike[str]] = ()) -> None:
        #: Directories whose files are never dirty files (Zoom's home), as real paths.
        self.exclude = tuple(os.path.realpath(d) for d in exclude)
        self.repos: dict[str, Repo] = {}
        self._files: dict[str, Location] = {}
        #: Repositories discovered since the last call to :meth:`take_new_repos`.
        self._new_repos: list[Repo] = []

    def repo(self, root: str) -> Repo:
        repo = self.repos.get(root)
        if repo is None:
            repo = self.repos[root] = read_repo(root, self.exclude)
            self._new_repos.append(repo)
        return repo

    def take_new_repos(self) -> list[Repo]:
        new, self._new_repos = self._new_repos, []
        return new

    def root_of(self, filename: str) -> str | None:
        """The repository of a source file, as ``locate`` finds it, without naming installed files (which
        reads every distribution's metadata): cheap enough for every module loaded at start-up."""
        if filename.startswith("<"):
            return None
        try:
            return _source_root(os.path.dirname(os.path.abspath(filename)))
        except OSError:  # a relative file name, and the working directory was deleted
            return None

    def locate(self, filename: str) -> Location:
        loc = self._files.get(filename)
        if loc is None:
            loc = self._files[filename] = self._locate(filename)
        return loc

    def _locate(self, filename: str) -> Location:
        if filename.startswith("<"):  # <string>, <stdin>, <frozen ...>
            return Location(filename, None, False, filename, None)
        path = os.path.realpath(os.path.abspath(filename))
        installed = _installed_name(path)
        if installed is not None:
            return Location(installed, None, False, path, None)
        root = find_repo_root(os.path.dirname(path))
        if root is None:
            return Location(Path(path).as_posix(), None, False, path, None)
        repo = self.repo(root)
        rel = Path(os.path.relpath(path, root)).as_posix()
        return Location(rel, repo.head, rel in repo.dirty, path, repo)


def snapshot(path: str) -> tuple[str, bytes] | None:
    """``(sha256, content)`` of a dirty file, or None if unreadable or too big."""
    try:
        with open(path, "rb") as f:
            content = f.read(MAX_SNAPSHOT_BYTES + 1)
    except OSError:
        return None
    if len(content) > MAX_SNAPSHOT_BYTES:
        return None
    return hashlib.sha256(content).hexdigest(), content
