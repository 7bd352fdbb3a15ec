"""What changed, by commit: error groups, and regressions between consecutive commits (``zoomtrace errors``,
``changes``, ``diff``, the viewer's Errors and Changes pages).

The store counts and measures in SQL (``StoreReader.error_groups``, ``code_versions``, ``location_stats``);
this module decides, with the tests of ``zoomtrace.read.stats``, which differences are findings. The JSON
shapes below are contracts (docs/changes.md).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from typing import Any, Final, Literal

import msgspec

from zoomtrace.errors import ConfigError, NotFound
from zoomtrace.read.stats import fisher_exact, mann_whitney_u
from zoomtrace.store.protocols import Location, StoreReader

#: How many error groups ``errors`` lists at most.
ERRORS_LIMIT: Final = 200


class Thresholds(msgspec.Struct, frozen=True):
    """When a difference between two versions is a finding (docs/changes.md, "Changes between two versions")."""

    #: Spans needed on each side before a location is compared at all.
    min_samples: int = 30
    #: p95 after / p95 before at least this (or at most its inverse, ``improved``) for a latency finding.
    latency_factor: float = 1.25
    #: The least change of p95 for a latency finding: microseconds more in a fast function are rarely news.
    min_change_ns: int = 1_000_000
    #: The largest p-value (Mann-Whitney U and the tail test for own times, Fisher's exact test for error rates)
    #: taken as a change.
    alpha: float = 0.01
    #: Own times per side the tests are run on (a fixed pseudo-random sample of them; p50/p95 use every span).
    sample: int = 2000

    def __post_init__(self) -> None:
        if self.min_samples < 1:
            raise ConfigError(f"--min-samples must be at least 1, not {self.min_samples}")
        if self.latency_factor <= 1:
            raise ConfigError(f"--latency-factor must be above 1 (1.25: 25% slower), not {self.latency_factor}")
        if self.min_change_ns < 0:
            raise ConfigError("--min-change must not be negative")
        if not 0 < self.alpha < 1:
            raise ConfigError(f"--alpha must be between 0 and 1 (e.g. 0.01), not {self.alpha}")


# -- errors ----------------------------------------------------------------------------------------


class Place(msgspec.Struct):
    file: str | None
    line: int | None
    function: str | None


class Seen(msgspec.Struct):
    ts_ns: int
    commit: str | None
    dirty: bool
    node_id: str
    trace_id: str | None


class ErrorGroup(msgspec.Struct):
    """One line of ``zoomtrace errors --json``."""

    type: str | None
    message: str | None
    template: str | None
    location: Place
    count: int
    services: list[str]
    first_seen: Seen
    last_seen: Seen
    #: The commit whose runs raised it first, when the service ran another version before (else null: it may
    #: be older than what the store holds, or it first came from uncommitted code).
    new_in_commit: str | None


def error_groups(
    store: StoreReader, *, service: str | None = None, since_ns: int | None = None, limit: int = ERRORS_LIMIT
) -> list[ErrorGroup]:
    """Error groups with an occurrence since ``since_ns``, most recently seen first."""
    rows = store.error_groups(service=service, since_ns=since_ns, limit=limit)
    firsts = _first_runs(store.code_versions())
    return [_group(row, firsts) for row in rows]


def _group(row: dict[str, Any], firsts: dict[str, dict[tuple[str, bool], int]]) -> ErrorGroup:
    first = msgspec.convert(row["first_seen"], Seen)
    return ErrorGroup(
        type=row["type"],
        message=row["message"],
        template=row["template"],
        location=Place(row["file"], row["line"], row["function"]),
        count=row["count"],
        services=row["services"],
        first_seen=first,
        last_seen=msgspec.convert(row["last_seen"], Seen),
        new_in_commit=_new_in(first, firsts.get(row["first_service"] or "", {})),
    )


def _first_runs(versions: Iterable[dict[str, Any]]) -> dict[str, dict[tuple[str, bool], int]]:
    """Service -> version -> when it first ran."""
    out: dict[str, dict[tuple[str, bool], int]] = {}
    for v in versions:
        out.setdefault(v["service"], {})[(v["commit"], v["dirty"])] = v["first_seen_ns"]
    return out


def _new_in(first: Seen, runs: dict[tuple[str, bool], int]) -> str | None:
    """The commit an error first appeared with, if clean and not the first version the service is known to run."""
    if first.commit is None or first.dirty or (first.commit, False) not in runs:
        return None
    began = runs[(first.commit, False)]
    return first.commit if any(at < began for at in runs.values()) else None


# -- changes ---------------------------------------------------------------------------------------


class Version(msgspec.Struct):
    commit: str
    dirty: bool
    first_seen_ns: int
    last_seen_ns: int
    records: int


class Where(msgspec.Struct):
    span: str | None
    file: str | None
    function: str | None


class Side(msgspec.Struct):
    commit: str
    dirty: bool
    count: int
    error_rate: float | None
    p50_ns: int | None
    p95_ns: int | None
    #: p95 of the spans' own time: their duration less that of their child spans.
    self_p95_ns: int | None = None
    cpu_p50_ns: int | None = None
    cpu_p95_ns: int | None = None


Kind = Literal["latency", "errors", "new_error", "improved"]


class Finding(msgspec.Struct, omit_defaults=True):
    kind: Kind
    location: Where
    before: Side
    after: Side
    #: after / before: of p95 (latency), of the error rate (errors; null when there were none before).
    factor: float | None
    p_value: float | None
    #: For ``improved``: what got better, ``latency`` or ``errors``.
    measure: str | None = None
    #: For ``new_error``: the error group (as ``zoomtrace errors`` shows it).
    error: dict[str, Any] | None = None


class ServiceChanges(msgspec.Struct):
    service: str
    commits: list[Version]
    findings: list[Finding]
    #: Locations that ran on both sides of a comparison but too few times on one of them to be judged.
    too_few_samples: int


class Changes(msgspec.Struct):
    """``zoomtrace changes --json`` and ``zoomtrace diff --json``."""

    services: list[ServiceChanges]
    thresholds: Thresholds


VersionKey = tuple[str, bool]
LocationKey = tuple[str | None, str | None, str | None]


def changes(
    store: StoreReader,
    *,
    service: str | None = None,
    since_ns: int | None = None,
    thresholds: Thresholds | None = None,
) -> Changes:
    """Each service's consecutive clean commits compared (in the order they first ran), and each dirty version
    compared with its own commit."""
    limits = thresholds or Thresholds()
    versions = _versions_by_service(store.code_versions(service=service, since_ns=since_ns))
    return _compare(store, versions, {name: _pairs(vs) for name, vs in versions.items()}, service, since_ns, limits)


def diff(
    store: StoreReader,
    commit_a: str,
    commit_b: str,
    *,
    service: str | None = None,
    thresholds: Thresholds | None = None,
) -> Changes:
    """Two chosen commits compared, in each service that ran both. ``COMMIT`` is a commit or a unique prefix of
    at least 4 characters (its clean runs; its dirty ones if it only ran dirty); ``COMMIT-dirty`` is its dirty
    runs."""
    limits = thresholds or Thresholds()
    versions = _versions_by_service(store.code_versions(service=service))
    pairs: dict[str, list[tuple[Version, Version]]] = {}
    for name, vs in versions.items():
        a, b = _pick(vs, commit_a), _pick(vs, commit_b)
        if a is not None and b is not None:
            pairs[name] = [(a, b)]
    if not pairs:
        where = f" by service {service!r}" if service else " by one service"
        raise NotFound(
            f"commits {commit_a!r} and {commit_b!r} were not both run{where}; list the commits each service ran "
            "with `zoomtrace changes`"
        )
    shown = {name: [v for v in versions[name] if any(v in pair for pair in pairs[name])] for name in pairs}
    return _compare(store, shown, pairs, service, None, limits)


def _versions_by_service(rows: Iterable[dict[str, Any]]) -> dict[str, list[Version]]:
    out: dict[str, list[Version]] = {}
    for row in rows:
        out.setdefault(row["service"], []).append(msgspec.convert(row, Version, strict=False))
    for vs in out.values():
        vs.sort(key=lambda v: (v.first_seen_ns, v.commit, v.dirty))
    return out


def _pairs(versions: Sequence[Version]) -> list[tuple[Version, Version]]:
    """Consecutive clean commits, and each dirty version after its own commit's clean runs (if any)."""
    clean = [v for v in versions if not v.dirty]
    pairs = list(itertools.pairwise(clean))
    by_commit = {v.commit: v for v in clean}
    pairs += [(by_commit[v.commit], v) for v in versions if v.dirty and v.commit in by_commit]
    return pairs


def _pick(versions: Sequence[Version], asked: str) -> Version | None:
    commit, dirty = (asked[: -len("-dirty")], True) if asked.endswith("-dirty") else (asked, None)
    if len(commit) < 4:
        raise ConfigError(f"commit {asked!r} is too short: give at least 4 characters of it")
    matches = [v for v in versions if v.commit.startswith(commit.lower())]
    if len({v.commit for v in matches}) > 1:
        raise ConfigError(
            f"commit {asked!r} is ambiguous: give more of it ({', '.join(sorted({v.commit[:12] for v in matches}))})"
        )
    if dirty is None:
        clean = [v for v in matches if not v.dirty]
        return (clean or matches)[0] if matches else None
    return next((v for v in matches if v.dirty == dirty), None)


def _compare(
    store: StoreReader,
    versions: dict[str, list[Version]],
    pairs: dict[str, list[tuple[Version, Version]]],
    service: str | None,
    since_ns: int | None,
    limits: Thresholds,
) -> Changes:
    stats: dict[str, dict[VersionKey, dict[LocationKey, dict[str, Any]]]] = {}
    if any(pairs.values()):
        for row in store.location_stats(service=service, since_ns=since_ns, sample=limits.sample):
            per_version = stats.setdefault(row["service"], {}).setdefault((row["commit"], row["dirty"]), {})
            per_version[(row["span"], row["file"], row["function"])] = row
    groups = store.error_groups(service=service, since_ns=since_ns, limit=ERRORS_LIMIT) if any(pairs.values()) else []
    out = []
    for name in sorted(versions):
        findings: list[Finding] = []
        too_few = 0
        for before, after in pairs.get(name, []):
            found, skipped = _location_findings(stats.get(name, {}), before, after, limits)
            findings += found
            too_few += skipped
            findings += _new_errors(groups, name, before, after)
        out.append(ServiceChanges(name, versions[name], findings, too_few))
    return Changes(out, limits)


def _key(v: Version) -> VersionKey:
    return (v.commit, v.dirty)


def _location_findings(
    stats: dict[VersionKey, dict[LocationKey, dict[str, Any]]], before: Version, after: Version, limits: Thresholds
) -> tuple[list[Finding], int]:
    was, now = stats.get(_key(before), {}), stats.get(_key(after), {})
    findings: list[Finding] = []
    too_few = 0
    for location in sorted(set(was) & set(now), key=lambda k: tuple(x or "" for x in k)):
        b, a = was[location], now[location]
        if min(b["count"], a["count"]) < limits.min_samples:
            too_few += 1
            continue
        where = Where(*location)
        sides = (_side(before, b), _side(after, a))
        for measure, judged in (("latency", _latency(b, a, limits)), ("errors", _errors(b, a, limits))):
            if judged is not None:
                kind, factor, p = judged
                improved = measure if kind == "improved" else None
                findings.append(Finding(kind, where, *sides, factor, p, measure=improved))
    return findings, too_few


def _side(version: Version, row: dict[str, Any]) -> Side:
    return Side(
        commit=version.commit,
        dirty=version.dirty,
        count=row["count"],
        error_rate=row["errors"] / row["count"] if row["count"] else None,
        p50_ns=row["p50_ns"],
        p95_ns=row["p95_ns"],
        self_p95_ns=row["self_p95_ns"],
        cpu_p50_ns=row["cpu_p50_ns"],
        cpu_p95_ns=row["cpu_p95_ns"],
    )


def _latency(b: dict[str, Any], a: dict[str, Any], limits: Thresholds) -> tuple[Kind, float | None, float] | None:
    """A latency finding: p95 changed by the factor and by ``min_change_ns``, the location's own time (less its
    child spans') made at least half of that change, and the U test on own times agrees. A span slower only
    because a child got slower is the child's finding, not its own."""
    if not b["p95_ns"] or a["p95_ns"] is None or not b["sample"] or not a["sample"]:
        return None
    factor = a["p95_ns"] / b["p95_ns"]
    change = a["p95_ns"] - b["p95_ns"]
    own_change = (a["self_p95_ns"] or 0) - (b["self_p95_ns"] or 0)
    if abs(change) < limits.min_change_ns or own_change * change <= 0 or abs(own_change) < abs(change) / 2:
        return None
    if limits.latency_factor > factor > 1 / limits.latency_factor:
        return None
    kind: Kind = "latency" if factor > 1 else "improved"
    u, p = mann_whitney_u(b["sample"], a["sample"])
    later_larger = u > len(b["sample"]) * len(a["sample"]) / 2
    if p >= limits.alpha or later_larger != (kind == "latency"):
        return None
    slow, fast = (a["sample"], b["sample"]) if kind == "latency" else (b["sample"], a["sample"])
    p = max(p, _tail_test(slow, fast, limits.min_change_ns))
    return (kind, round(factor, 3), p) if p < limits.alpha else None


def _tail_test(slow: Sequence[int], fast: Sequence[int], min_change_ns: int) -> float:
    """Whether the slower side has more spans beyond the faster side's p95 plus ``min_change_ns`` (Fisher's exact
    test): the U test alone would take a tiny but consistent shift, plus a few spans delayed by a busy machine
    at the tail, for a regression of the tail."""
    ordered = sorted(fast)
    bound = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))] + min_change_ns
    beyond_slow = sum(1 for v in slow if v > bound)
    beyond_fast = sum(1 for v in fast if v > bound)
    if beyond_slow * len(fast) <= beyond_fast * len(slow):
        return 1.0
    return fisher_exact(beyond_slow, len(slow) - beyond_slow, beyond_fast, len(fast) - beyond_fast)


def _errors(b: dict[str, Any], a: dict[str, Any], limits: Thresholds) -> tuple[Kind, float | None, float] | None:
    rate_b, rate_a = b["errors"] / b["count"], a["errors"] / a["count"]
    if rate_a == rate_b:
        return None
    p = fisher_exact(b["errors"], b["count"] - b["errors"], a["errors"], a["count"] - a["errors"])
    if p >= limits.alpha:
        return None
    factor = round(rate_a / rate_b, 3) if rate_b else None
    return ("errors" if rate_a > rate_b else "improved"), factor, p


def _new_errors(groups: Sequence[dict[str, Any]], service: str, before: Version, after: Version) -> list[Finding]:
    """Error groups of the service whose first occurrence ever was in ``after``'s runs."""
    out = []
    for g in groups:
        first = g["first_seen"]
        if g["first_service"] != service or (first["commit"], first["dirty"]) != _key(after):
            continue
        empty = Side(before.commit, before.dirty, 0, None, None, None)
        hit = Side(after.commit, after.dirty, g["count"], None, None, None)
        error = {"type": g["type"], "template": g["template"], "line": g["line"], "message": g["message"]}
        out.append(
            Finding("new_error", Where(g["span"], g["file"], g["function"]), empty, hit, None, None, error=error)
        )
    return out


# -- one location --------------------------------------------------------------------------------


class LocationVersion(msgspec.Struct):
    """A location's spans in one version of its service (the viewer's "this location in other commits")."""

    service: str
    commit: str
    dirty: bool
    first_seen_ns: int
    count: int
    error_rate: float | None
    p50_ns: int | None
    p95_ns: int | None


def location_history(store: StoreReader, location: Location, *, service: str | None = None) -> list[LocationVersion]:
    """The location's count, error rate and durations in every version that ran it, in the order versions first
    ran (per service)."""
    firsts = _first_runs(store.code_versions(service=service))
    rows = store.location_stats(service=service, location=location, sample=0)
    out = [
        LocationVersion(
            service=row["service"],
            commit=row["commit"],
            dirty=row["dirty"],
            first_seen_ns=firsts.get(row["service"], {}).get((row["commit"], row["dirty"]), 0),
            count=row["count"],
            error_rate=row["errors"] / row["count"] if row["count"] else None,
            p50_ns=row["p50_ns"],
            p95_ns=row["p95_ns"],
        )
        for row in rows
    ]
    return sorted(out, key=lambda v: (v.service, v.first_seen_ns, v.commit, v.dirty))


class SampleSpan(msgspec.Struct):
    trace_id: str | None
    span_id: str | None
    ts_ns: int
    duration_ns: int
    status: str | None


class Samples(msgspec.Struct):
    """The slowest spans of a location before and after a change, to open side by side."""

    before: list[SampleSpan]
    after: list[SampleSpan]


def sample_traces(
    store: StoreReader,
    service: str,
    location: Location,
    before: VersionKey,
    after: VersionKey,
    *,
    limit: int = 5,
) -> Samples:
    """The ``limit`` slowest spans of ``location`` in each of two versions of ``service``."""

    def side(version: VersionKey) -> list[SampleSpan]:
        rows = store.location_traces(
            service=service, location=location, commit=version[0], dirty=version[1], limit=limit
        )
        return msgspec.convert(rows, list[SampleSpan])

    return Samples(side(before), side(after))
