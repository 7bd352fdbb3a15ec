"""Code provenance on every record (issue 2 §3, §4).

A real git repository (the program's entry point, clean, modified and untracked
modules), a second real git repository holding a library, and an installed
distribution in a ``site-packages`` directory: each record must name its file
relative to its own repository (POSIX), its commit, and whether the file
differed from HEAD. Code outside any repository is named by its distribution.
A program in a non-git (or even deleted) directory still runs and says so.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

try:
    import helpers as h
except ImportError:  # tests/ imported as a package
    from tests import helpers as h

MAIN = """
import json
import site
import sys

sys.path.insert(0, sys.argv[1])  # a library from another git repository
site.addsitedir(sys.argv[2])     # an installed distribution

import zoomtrace as zt
from pkg.sub import changed, clean, fresh
import otherlib.helper
import zoomext.core

zt.init("prov", env="ci", group="prov")
with zt.span("root") as root:  # @main-span
    zt.log.info("in main")  # @main-log
    clean.run()
    changed.run()
    fresh.run()
    otherlib.helper.run()
    zoomext.core.work(3)
print("RESULT " + json.dumps({"trace_id": root.trace_id}), flush=True)
"""

CLEAN = """
import zoomtrace as zt


def run():
    zt.log.info("from clean")  # @clean-log
"""

CHANGED_COMMITTED = """
import zoomtrace as zt


def run():
    zt.log.info("from changed")  # @changed-log
"""

CHANGED_NOW = """
import zoomtrace as zt

# This comment and the extra lines below were added after the commit.


def run():
    value = 1
    zt.log.info("from changed")  # @changed-log
    return value
"""

FRESH = """
import zoomtrace as zt


def run():
    zt.log.info("from fresh")  # @fresh-log
"""

HELPER = """
import logging


def run():
    logging.getLogger("otherlib").warning("from the other repository")  # @helper-log
"""

EXT_CORE = """
import logging

import zoomtrace as zt


def work(n):
    with zt.span("zoomext.work", n=n):  # @ext-span
        logging.getLogger("zoomext").info("library did %d", n)  # @ext-log
"""

PLAIN = """
import json
import os
import sys
import logging

import zoomtrace as zt

if len(sys.argv) > 1:  # run from a directory that no longer exists
    os.chdir(sys.argv[1])
    os.rmdir(sys.argv[1])
zt.init("plain", env="ci")
with zt.span("plain-work") as s:  # @plain-span
    logging.getLogger("plain").warning("no git here")  # @plain-log
print("RESULT " + json.dumps({"trace_id": s.trace_id}), flush=True)
"""


def make_site_packages(root: Path) -> Path:
    """An installed distribution ``zoomext 2.5.1``, laid out exactly as pip installs one."""
    site = root / "lib" / "python3.11" / "site-packages"
    h.write_files(
        site,
        {
            "zoomext/__init__.py": "",
            "zoomext/core.py": EXT_CORE,
            "zoomext-2.5.1.dist-info/METADATA": "Metadata-Version: 2.1\nName: zoomext\nVersion: 2.5.1\n",
            "zoomext-2.5.1.dist-info/INSTALLER": "pip\n",
            "zoomext-2.5.1.dist-info/top_level.txt": "zoomext\n",
            "zoomext-2.5.1.dist-info/RECORD": "zoomext/__init__.py,,\nzoomext/core.py,,\n"
            "zoomext-2.5.1.dist-info/METADATA,,\nzoomext-2.5.1.dist-info/RECORD,,\n",
        },
    )
    return site


@pytest.fixture(scope="module")
def prov(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    base = tmp_path_factory.mktemp("prov")
    repo, other = base / "app", base / "other"
    head = h.make_repo(
        repo,
        {
            "main.py": MAIN,
            "pkg/__init__.py": "",
            "pkg/sub/__init__.py": "",
            "pkg/sub/clean.py": CLEAN,
            "pkg/sub/changed.py": CHANGED_COMMITTED,
        },
    )
    h.write_files(repo, {"pkg/sub/changed.py": CHANGED_NOW, "pkg/sub/fresh.py": FRESH})  # modified, untracked
    other_head = h.make_repo(other, {"otherlib/__init__.py": "", "otherlib/helper.py": HELPER})
    site = make_site_packages(base / "venv")
    home = base / "home"
    child = h.run_script(repo / "main.py", home, str(other), str(site), cwd=base)
    ran = h.result(child)
    return {
        "base": base,
        "repo": repo,
        "other": other,
        "head": head,
        "other_head": other_head,
        "site": site,
        "home": home,
        "run": ran,
        "story": h.story(home, ran["trace_id"]),
    }


def code_by_message(st: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["message"]: r["code"] for r, _ in h.all_records(st)}


def test_repo_relative_posix_paths_with_commit(prov: dict[str, Any]) -> None:
    codes = code_by_message(prov["story"])
    repo, head = prov["repo"], prov["head"]
    assert codes["in main"] == {
        "file": "main.py",
        "line": h.marker_line(repo / "main.py", "main-log"),
        "function": "<module>",
        "commit": head,
        "dirty": False,
    }
    assert codes["from clean"] == {
        "file": "pkg/sub/clean.py",
        "line": h.marker_line(repo / "pkg/sub/clean.py", "clean-log"),
        "function": "run",
        "commit": head,
        "dirty": False,
    }


def test_modified_file_is_dirty_with_the_line_that_ran(prov: dict[str, Any]) -> None:
    code = code_by_message(prov["story"])["from changed"]
    line = h.marker_line(prov["repo"] / "pkg/sub/changed.py", "changed-log")
    assert line != h.marker_line_in_text(CHANGED_COMMITTED, "changed-log")  # the line that ran, not HEAD's
    assert code == {
        "file": "pkg/sub/changed.py",
        "line": line,
        "function": "run",
        "commit": prov["head"],
        "dirty": True,
    }


def test_untracked_file_is_dirty(prov: dict[str, Any]) -> None:
    code = code_by_message(prov["story"])["from fresh"]
    assert code["file"] == "pkg/sub/fresh.py"
    assert code["line"] == h.marker_line(prov["repo"] / "pkg/sub/fresh.py", "fresh-log")
    assert code["dirty"] is True
    assert code["commit"] == prov["head"]


def test_other_repository_has_its_own_root_and_commit(prov: dict[str, Any]) -> None:
    code = code_by_message(prov["story"])["from the other repository"]
    assert code == {
        "file": "otherlib/helper.py",
        "line": h.marker_line(prov["other"] / "otherlib/helper.py", "helper-log"),
        "function": "run",
        "commit": prov["other_head"],
        "dirty": False,
    }
    assert prov["other_head"] != prov["head"]


def test_site_packages_code_is_named_by_distribution(prov: dict[str, Any]) -> None:
    st = prov["story"]
    code = code_by_message(st)["library did 3"]
    for c in (code, h.span_named(st, "zoomext.work")["code"]):
        assert "zoomext" in c["file"] and "2.5.1" in c["file"], c
        assert c["file"].endswith("zoomext/core.py"), c
        assert str(prov["base"]) not in c["file"], "an installed file is named by its distribution, not its path"
        assert not c.get("commit")
        assert c["dirty"] is False
    assert code["line"] == h.marker_line(prov["site"] / "zoomext/core.py", "ext-log")
    assert code["function"] == "work"


def test_no_absolute_or_windows_paths(prov: dict[str, Any]) -> None:
    st = prov["story"]
    codes = [r["code"] for r, _ in h.all_records(st)] + [s["code"] for s in h.all_spans(st)]
    assert len(codes) == 8
    for c in codes:
        assert "\\" not in c["file"]
        assert not c["file"].startswith("/"), c


def test_node_commit_is_the_entry_point_repository_head(prov: dict[str, Any]) -> None:
    (node,) = h.nodes(prov["home"])
    assert node["commit"] == prov["head"] == h.git(prov["repo"], "rev-parse", "HEAD")
    (story_node,) = prov["story"]["nodes"]
    assert story_node["commit"] == prov["head"]


def test_node_lists_every_repository_and_its_differing_files(prov: dict[str, Any]) -> None:
    (started,) = h.sql(prov["home"], "SELECT * FROM records WHERE kind = 'node' AND type = 'started'")
    text = json.dumps({k: h.as_json(v) for k, v in started.items()}, default=str)
    assert prov["head"] in text
    assert prov["other_head"] in text  # every repository involved is listed
    assert "pkg/sub/changed.py" in text and "pkg/sub/fresh.py" in text
    assert "pkg/sub/clean.py" not in text


def test_dirty_file_content_is_snapshotted(prov: dict[str, Any]) -> None:
    """The code that actually ran can be shown: the dirty file's content is stored, content-addressed."""
    content = (prov["repo"] / "pkg/sub/changed.py").read_bytes()
    digests = {
        hashlib.sha256(content).hexdigest(),
        subprocess.run(["git", "hash-object", "--stdin"], input=content, capture_output=True, check=True)
        .stdout.decode()
        .strip(),
    }
    text = json.dumps(h.sql(prov["home"], "SELECT * FROM records WHERE kind = 'node'"), default=str)
    assert any(d in text for d in digests), "no record refers to the dirty file's content by its digest"


# -- Zoom's home inside the repository ------------------------------------------------------------

HOMED = """
import zoomtrace as zt

zt.init("homed", env="ci")
zt.log.info("ran")
"""


def test_the_home_inside_the_repository_is_not_dirty(tmp_path: Path) -> None:
    """The spool and store of earlier runs (``./.zoomtrace`` by default) are not the program's files (issue 11)."""
    repo = tmp_path / "repo"
    h.make_repo(repo, {"run.py": HOMED, "notes.txt": "kept\n"})
    home = repo / ".zoomtrace"
    (repo / "notes.txt").write_text("changed\n")
    h.run_script(repo / "run.py", home, cwd=repo)
    h.git(repo, "checkout", "-q", "--", "notes.txt")
    h.run_script(repo / "run.py", home, cwd=repo)
    assert any((home / "spool").iterdir()), "the first run's spool is in the repository"
    first, second = sorted(h.nodes(home), key=lambda n: n["started_ns"])
    assert [r["dirty"] for r in first["repos"]] == [["notes.txt"]]
    assert [r["dirty"] for r in second["repos"]] == [[]]


# -- outside any repository ----------------------------------------------------------------------


def test_non_git_directory_runs_and_says_so(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    h.write_files(plain, {"run.py": PLAIN})
    home = tmp_path / "home"
    child = h.run_script(plain / "run.py", home, cwd=plain)
    assert "Traceback" not in child.stderr
    ran = h.result(child)
    st = h.story(home, ran["trace_id"])
    (rec, span) = h.record_with(st, "no git here")
    assert span is not None and span["name"] == "plain-work"
    assert rec["code"]["file"].endswith("run.py")
    assert rec["code"]["line"] == h.marker_line(plain / "run.py", "plain-log")
    assert not rec["code"].get("commit")
    assert rec["code"]["dirty"] is False
    (node,) = h.nodes(home)
    assert node["commit"] is None
    (started,) = h.sql(home, "SELECT * FROM records WHERE kind = 'node' AND type = 'started'")
    assert "git" in json.dumps(started, default=str).lower(), "provenance should say there is no git repository"


def test_deleted_working_directory_does_not_break_the_program(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    h.write_files(plain, {"run.py": PLAIN})
    doomed = tmp_path / "doomed"
    doomed.mkdir()
    home = tmp_path / "home"
    child = h.run_script(plain / "run.py", home, str(doomed), cwd=doomed)
    assert not doomed.exists()
    ran = h.result(child)
    assert "Traceback" not in child.stderr
    st = h.story(home, ran["trace_id"])
    rec, _ = h.record_with(st, "no git here")
    assert rec["code"]["line"] == h.marker_line(plain / "run.py", "plain-log")
