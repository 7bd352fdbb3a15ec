"""Errors and regressions by commit (issue 15): ``zoomtrace errors``, ``changes`` and ``diff``.

A real git repository holds a small service. It runs at commit A, then at commit B where one function got
slower and another logs an exception it never raised before, while a third did not change; real processes
record real spans, and the real CLI reads them from each store (DuckDB, and ClickHouse's engine in process).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

try:
    import helpers as h
except ImportError:  # tests/ imported as a package
    from tests import helpers as h

MAIN = """
import sys

import zoomtrace as zt
from shop import work

zt.init("shop")
for i in range(int(sys.argv[1])):
    with zt.span("request"):
        work.steady(i)
        work.pack(i)
        work.check(i)
"""

#: The work each request does: ``{pack}`` (milliseconds) and ``{check}`` (its body) change between commits.
WORK = """
import time

import zoomtrace as zt


def steady(i):
    with zt.span("steady"):
        time.sleep(0.004)


def pack(i):
    with zt.span("pack"):
        time.sleep({pack})


def check(i):
    with zt.span("check"):
        try:
            {check}
        except LookupError:
            zt.log.exception("no stock for item {{item}}", item=i)
"""

RUNS = 60


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The service run at commit A, then at commit B (slower ``pack``, a new exception in ``check``)."""
    root = tmp_path_factory.mktemp("changes")
    repo, home = root / "repo", root / "home"
    files = {
        "main.py": MAIN,
        "shop/__init__.py": "",
        "shop/work.py": WORK.format(pack="0.004", check="stock = {}"),
        ".gitignore": "__pycache__/\n",
    }
    commit_a = h.make_repo(repo, files)
    h.run_script(repo / "main.py", home, str(RUNS))
    h.write_files(repo, {"shop/work.py": WORK.format(pack="0.016", check="{}['item-%d' % i]")})
    h.git(repo, "commit", "-qam", "pack got slower, check raises")
    commit_b = h.git(repo, "rev-parse", "HEAD")
    h.run_script(repo / "main.py", home, str(RUNS))
    return {"home": home, "a": commit_a, "b": commit_b, "work": repo / "shop" / "work.py"}


@pytest.fixture(params=["duckdb", "chdb"])
def store_args(request: pytest.FixtureRequest, tmp_path: Path) -> list[str]:
    """No option (the home's DuckDB store), or a ClickHouse store of this test's own filled from the spool."""
    return [] if request.param == "duckdb" else ["--store", f"chdb://{tmp_path / 'chdb'}"]


def _where(finding: dict[str, Any]) -> tuple[str, str]:
    return finding["location"]["file"], finding["location"]["function"]


def test_changes_names_the_slower_function_and_the_new_error_with_their_commit(
    shop: dict[str, Any], store_args: list[str]
) -> None:
    found = h.cli_json(shop["home"], *store_args, "changes")
    (service,) = found["services"]
    assert service["service"] == "shop"
    assert [(c["commit"], c["dirty"]) for c in service["commits"]] == [(shop["a"], False), (shop["b"], False)]
    assert [c["records"] > 0 for c in service["commits"]] == [True, True]
    kinds = sorted((f["kind"], *_where(f)) for f in service["findings"])
    assert kinds == [("latency", "shop/work.py", "pack"), ("new_error", "shop/work.py", "check")]
    for finding in service["findings"]:
        assert set(finding) >= {"kind", "location", "before", "after", "factor", "p_value"}
        assert set(finding["location"]) == {"span", "file", "function"}
        assert (finding["before"]["commit"], finding["after"]["commit"]) == (shop["a"], shop["b"])
    latency = next(f for f in service["findings"] if f["kind"] == "latency")
    assert latency["location"]["span"] == "pack"
    assert latency["before"]["count"] == latency["after"]["count"] == RUNS
    assert latency["after"]["p95_ns"] > latency["before"]["p95_ns"] * 2
    assert latency["factor"] == pytest.approx(latency["after"]["p95_ns"] / latency["before"]["p95_ns"], rel=1e-3)
    assert 0 <= latency["p_value"] < found["thresholds"]["alpha"]
    new = next(f for f in service["findings"] if f["kind"] == "new_error")
    assert new["after"]["count"] == RUNS
    assert new["error"]["type"] == "KeyError"
    assert new["error"]["line"] == h.marker_line_in_text(WORK.format(pack="0", check="raise_here  # @raise"), "raise")


def test_errors_show_the_new_group_as_new_in_commit_b(shop: dict[str, Any], store_args: list[str]) -> None:
    groups = h.cli_json(shop["home"], *store_args, "errors")
    (group,) = groups
    assert group["type"] == "KeyError"
    assert group["template"] == "no stock for item {item}"
    assert group["location"] == {
        "file": "shop/work.py",
        "line": h.marker_line_in_text(WORK.format(pack="0", check="raise_here  # @raise"), "raise"),
        "function": "check",
    }
    assert group["count"] == RUNS
    assert group["services"] == ["shop"]
    assert group["new_in_commit"] == shop["b"]
    assert group["first_seen"]["commit"] == group["last_seen"]["commit"] == shop["b"]
    assert group["first_seen"]["dirty"] is False
    assert group["first_seen"]["ts_ns"] <= group["last_seen"]["ts_ns"]
    trace = h.cli_json(shop["home"], *store_args, "story", group["first_seen"]["trace_id"])
    assert trace["trace_id"] == group["first_seen"]["trace_id"]


def test_diff_compares_two_chosen_commits_by_prefix(shop: dict[str, Any]) -> None:
    forward = h.cli_json(shop["home"], "diff", shop["a"][:8], shop["b"][:8])
    (service,) = forward["services"]
    assert sorted((f["kind"], *_where(f)) for f in service["findings"]) == [
        ("latency", "shop/work.py", "pack"),
        ("new_error", "shop/work.py", "check"),
    ]
    backward = h.cli_json(shop["home"], "diff", shop["b"], shop["a"])
    (service,) = backward["services"]
    assert sorted((f["kind"], f.get("measure"), *_where(f)) for f in service["findings"]) == [
        ("improved", "latency", "shop/work.py", "pack")
    ]


def test_diff_of_a_commit_that_never_ran_is_one_clear_line(shop: dict[str, Any]) -> None:
    out = h.cli(shop["home"], "diff", shop["a"], "0000000")
    line = h.assert_one_line_error(out)
    assert "0000000" in line and "zoomtrace changes" in line


def test_no_flag_without_enough_samples(shop: dict[str, Any]) -> None:
    found = h.cli_json(shop["home"], "changes", "--min-samples", str(RUNS + 1))
    (service,) = found["services"]
    assert [f["kind"] for f in service["findings"]] == ["new_error"]
    assert service["too_few_samples"] == 4  # request, steady, pack and check ran on both sides
    assert found["thresholds"]["min_samples"] == RUNS + 1


def test_the_demo_runs_billing_at_two_commits_and_changes_names_the_slower_function(tmp_path: Path) -> None:
    home = tmp_path / "home"
    out = h.cli(home, "demo", cwd=tmp_path, timeout=120)
    assert out.returncode == 0, out.stderr
    repo = home / "demo-billing"
    commit_b = h.git(repo, "rev-parse", "HEAD")
    commit_a = h.git(repo, "rev-parse", "HEAD~1")
    found = h.cli_json(home, "changes", "--service", "billing")
    (billing,) = found["services"]
    between = [f for f in billing["findings"] if (f["before"]["commit"], f["after"]["commit"]) == (commit_a, commit_b)]
    assert sorted((f["kind"], f["location"]["span"], *_where(f)) for f in between) == [
        ("latency", "capture_payment", "billing.py", "capture"),
        ("new_error", None, "billing.py", "award_points"),
    ]
    (group,) = [g for g in h.cli_json(home, "errors", "--service", "billing") if g["type"] == "KeyError"]
    assert group["new_in_commit"] == commit_b
    # What the demo prints: the finding, with the function and commit B.
    shown = [line for line in out.stdout.splitlines() if line.strip().startswith("latency")]
    assert len(shown) == 1 and "capture" in shown[0] and commit_b[:10] in shown[0]


LOCATION_SCRIPT = """
import json
import sys
from pathlib import Path

import msgspec

from zoomtrace.collect import open_session
from zoomtrace.read.changes import location_history, sample_traces
from zoomtrace.store.protocols import Location

home, store, before, after = sys.argv[1:5]
pack = Location("pack", "shop/work.py", "pack")
with open_session(Path(home), store=store or None) as session:
    history = location_history(session, pack, service="shop")
    samples = sample_traces(session, "shop", pack, (before, False), (after, False), limit=3)
before, after = [s.duration_ns for s in samples.before], [s.duration_ns for s in samples.after]
print(json.dumps({"history": msgspec.to_builtins(history), "before": before, "after": after}))
"""


def test_a_location_in_each_commit_and_its_slowest_spans(shop: dict[str, Any], store_args: list[str]) -> None:
    h.cli_json(shop["home"], *store_args, "changes")  # fills a chdb:// store from the spool
    script = shop["home"].parent / "location.py"
    script.write_text(LOCATION_SCRIPT)
    store = store_args[1] if store_args else ""
    found = json.loads(h.run_script(script, None, str(shop["home"]), store, shop["a"], shop["b"]).stdout[-1])
    assert [(v["commit"], v["count"]) for v in found["history"]] == [(shop["a"], RUNS), (shop["b"], RUNS)]
    assert [v["error_rate"] for v in found["history"]] == [0.0, 0.0]
    assert found["history"][1]["p95_ns"] > found["history"][0]["p95_ns"]
    for durations in (found["before"], found["after"]):
        assert len(durations) == 3 and durations == sorted(durations, reverse=True)
    # The slowest spans after are slower than most spans before (the sleep went from 4 ms to 16 ms).
    assert min(found["after"]) > found["history"][0]["p50_ns"]


FLAKY_MAIN = """
import sys

import zoomtrace as zt
from shop import work

zt.init("flaky")
for i in range(int(sys.argv[1])):
    try:
        with zt.span("outer"):
            with zt.span("inner"):
                work.step(i)
    except ValueError:
        pass
"""

FLAKY_WORK = """
def step(i):
    if i % {every} == 0:
        raise ValueError(f"step {{i}} failed")  # @raise
"""


@pytest.fixture(scope="module")
def flaky(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A service at commit A failing one step in 10, then the same commit with an uncommitted change failing one
    in 2 (a dirty run). The exception passes through two spans each time."""
    root = tmp_path_factory.mktemp("flaky")
    repo, home = root / "repo", root / "home"
    files = {"main.py": FLAKY_MAIN, "shop/__init__.py": "", "shop/work.py": FLAKY_WORK.format(every=10)}
    commit = h.make_repo(repo, {**files, ".gitignore": "__pycache__/\n"})
    h.run_script(repo / "main.py", home, str(RUNS))
    h.write_files(repo, {"shop/work.py": FLAKY_WORK.format(every=2)})
    h.run_script(repo / "main.py", home, str(RUNS))
    return {"home": home, "commit": commit}


def test_a_dirty_run_is_compared_with_its_commit_and_more_errors_are_flagged(
    flaky: dict[str, Any], store_args: list[str]
) -> None:
    found = h.cli_json(flaky["home"], *store_args, "changes")
    (service,) = found["services"]
    assert [(c["commit"], c["dirty"]) for c in service["commits"]] == [
        (flaky["commit"], False),
        (flaky["commit"], True),
    ]
    (finding,) = service["findings"]
    assert (finding["kind"], finding["location"]["span"], finding["location"]["function"]) == (
        "errors",
        "inner",
        "<module>",
    )
    assert (finding["before"]["dirty"], finding["after"]["dirty"]) == (False, True)
    assert finding["before"]["commit"] == finding["after"]["commit"] == flaky["commit"]
    failures_before, failures_after = len(range(0, RUNS, 10)), len(range(0, RUNS, 2))
    assert finding["before"]["error_rate"] == pytest.approx(failures_before / RUNS)
    assert finding["after"]["error_rate"] == pytest.approx(failures_after / RUNS)
    assert finding["factor"] == pytest.approx(failures_after / failures_before, rel=1e-3)
    assert finding["p_value"] < found["thresholds"]["alpha"]


def test_an_exception_through_two_spans_is_one_occurrence_at_its_line(
    flaky: dict[str, Any], store_args: list[str]
) -> None:
    (group,) = h.cli_json(flaky["home"], *store_args, "errors")
    assert (group["type"], group["template"]) == ("ValueError", "step <n> failed")
    line = h.marker_line_in_text(FLAKY_WORK.format(every=2), "raise")
    assert group["location"] == {"file": "shop/work.py", "line": line, "function": "step"}
    assert group["count"] == len(range(0, RUNS, 10)) + len(range(0, RUNS, 2))
    assert group["first_seen"]["dirty"] is False and group["last_seen"]["dirty"] is True
    assert group["new_in_commit"] is None  # it came with the first commit the service ran


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["changes", "--alpha", "2"], "--alpha"),
        (["changes", "--min-samples", "0"], "--min-samples"),
        (["changes", "--latency-factor", "0.5"], "--latency-factor"),
        (["diff", "ab", "cd"], "at least 4 characters"),
    ],
)
def test_bad_thresholds_and_commits_are_one_clear_line(flaky: dict[str, Any], args: list[str], words: str) -> None:
    out = h.cli(flaky["home"], *args)
    assert words in h.assert_one_line_error(out)
    assert out.returncode == 2
