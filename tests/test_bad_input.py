"""Bad input: a clear record, nothing lost, nothing leaked (issue 2, "Bad input and failure").

Unserialisable attrs, oversized messages and payloads, invalid UTF-8, recursive
structures, NaN/inf, malformed ``traceparent`` headers, a corrupt spool frame,
and secrets -- which must never reach the spool bytes or the story.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

try:
    import helpers as h
except ImportError:  # tests/ imported as a package
    from tests import helpers as h

BIG = 2_000_003  # characters of the oversized message / payload string

BAD = """
import dataclasses
import json
import logging
import math
import sys

import zoomtrace as zt

BIG = int(sys.argv[1])


class Weird:
    def __repr__(self):
        return "Weird<42>"


class BadRepr:
    def __repr__(self):
        raise RuntimeError("repr explodes")


limits = None
if len(sys.argv) > 2:  # a configured message limit (whatever the Limits field for messages is called)
    (field,) = [f.name for f in dataclasses.fields(zt.Limits) if "message" in f.name]
    limits = zt.Limits(**{field: int(sys.argv[2])})
zt.init("bad", env="ci", limits=limits)
ids = {}
with zt.span("bad-input", weird=Weird()) as s:
    s.set(also_weird=Weird())
    zt.log.info("unserialisable attr", obj=Weird(), fine=1)
    zt.log.info("repr explodes too", obj=BadRepr())
    ids["weird_event"] = zt.event({"thing": Weird(), "n": 1}, type="WeirdPayload")
    zt.log.info("HUGE" + "B" * (BIG - 4))
    ids["big_event"] = zt.event({"blob": "P" * BIG}, type="BigPayload")
    zt.log.info("bad utf8 " + b"\\xff\\xfe".decode("utf-8", "surrogateescape") + " end")
    logging.getLogger("bad").warning("stdlib caf%s", b"\\xe9".decode("utf-8", "surrogateescape"))
    zt.log.info("bytes attr", data=b"\\xff\\x00\\xfe")
    d = {"name": "loop"}
    d["self"] = d
    loop = [1]
    loop.append(loop)
    zt.log.info("recursive", d=d, l=loop)
    ids["recursive_event"] = zt.event(d, type="RecursivePayload")
    zt.log.info("not numbers", nan=float("nan"), inf=float("inf"), ninf=float("-inf"))
    ids["nan_event"] = zt.event({"x": math.nan, "y": math.inf, "z": -math.inf}, type="NaNPayload")
    ids["raw"] = zt.raw(b"\\x00\\x01binary\\xff", format="bin", type="Blob")
    zt.log.info("still works after all that")
print("RESULT " + json.dumps({"trace_id": s.trace_id, "ids": ids}), flush=True)
"""

VALID = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
MALFORMED = {
    "garbage": {"traceparent": "garbage"},
    "bad_hex": {"traceparent": "00-zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz-00f067aa0ba902b7-01"},
    "zero_trace": {"traceparent": "00-00000000000000000000000000000000-00f067aa0ba902b7-01"},
    "zero_span": {"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01"},
    "short": {"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7"},
    "too_long_ids": {"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e47360-00f067aa0ba902b7-01"},
    "version_ff": {"traceparent": "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
    "empty": {"traceparent": ""},
    "no_header": {},
    "pairs_garbage": [["traceparent", "nope"], ["x", "y"]],
}

TRACEPARENT = """
import json
import sys

import zoomtrace as zt

VALID = sys.argv[1]
MALFORMED = json.loads(sys.argv[2])
zt.init("tp", env="ci")
out = {}
for name, carrier in MALFORMED.items():
    if isinstance(carrier, list):
        carrier = [tuple(pair) for pair in carrier]
    try:
        ctx = zt.extract(carrier)
        with zt.span("after-" + name, context=ctx) as s:
            pass
        out[name] = {"ctx": None if ctx is None else repr(ctx), "trace_id": s.trace_id, "error": None}
    except Exception as exc:
        out[name] = {"error": repr(exc)}
controls = {
    "Traceparent": {"Traceparent": VALID},
    "TRACEPARENT": {"TRACEPARENT": VALID},
    "pairs": [("traceparent", VALID)],
    "kafka": [("traceparent", VALID.encode())],
}
for name, carrier in controls.items():
    ctx = zt.extract(carrier)
    with zt.span("control-" + name, context=ctx) as s:
        pass
    out["control-" + name] = {"trace_id": s.trace_id}
print("RESULT " + json.dumps(out), flush=True)
"""

SECRETS = {
    "hunter2",
    "tok_SEKRIT_77",
    "AKIA_SEKRIT_55",
    "SEKRIT_BEARER_11",
    "SEKRIT_DBPW_22",
    "SEKRIT_COOKIE_33",
    "SEKRIT_PAYLOAD_44",
    "SEKRIT_EXC_66",
    "MIIEpAIBAAKCAQEAsekritkeymaterial",
    "4111 1111 1111 1111",
}

SECRET_SCRIPT = """
import json
import logging
import sys

import zoomtrace as zt

zt.init("secrets", env="ci", scrub=sys.argv[1] == "scrub")
log = logging.getLogger("auth")
with zt.span("login", authorization="Bearer SEKRIT_BEARER_11") as s:
    s.set(db_password="SEKRIT_DBPW_22", user="alice")
    zt.log.info("login with password=hunter2 ok")
    log.warning("retry with token=%s", "tok_SEKRIT_77")
    zt.log.info("calling the api", api_key="AKIA_SEKRIT_55", endpoint="/v1/pay")
    log.info("request headers", extra={"cookie": "SEKRIT_COOKIE_33", "path": "/cart"})
    zt.event({"user": "alice", "password": "SEKRIT_PAYLOAD_44"}, type="Signup")
    try:
        raise ValueError("bad password=SEKRIT_EXC_66 given")
    except ValueError:
        log.exception("login failed")
    pem = "-----BEGIN RSA PRIVATE KEY-----\\nMIIEpAIBAAKCAQEAsekritkeymaterial\\n-----END RSA PRIVATE KEY-----"
    zt.log.info("key " + pem + " loaded")
    zt.log.info("paid with card 4111 1111 1111 1111 today")
print("RESULT " + json.dumps({"trace_id": s.trace_id}), flush=True)
"""

FRAMES = """
import glob
import json
import os
import sys

import zoomtrace as zt

home = os.environ["ZOOMTRACE_HOME"]
zt.init("frames", env="ci")
out = []
for batch in range(3):
    with zt.span(f"batch-{batch}") as s:
        for i in range(20):
            zt.log.info("batch {batch} item {i}", batch=batch, i=i)
    zt.flush()
    files = glob.glob(os.path.join(home, "spool", "*.zspool"))
    out.append({"trace_id": s.trace_id, "files": {f: os.path.getsize(f) for f in files}})
print("RESULT " + json.dumps(out), flush=True)
"""


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("bad") / "app"
    h.make_repo(root, {"bad.py": BAD, "traceparent.py": TRACEPARENT, "secrets.py": SECRET_SCRIPT, "frames.py": FRAMES})
    return root


@pytest.fixture(scope="module")
def bad(repo: Path) -> dict[str, Any]:
    home = repo.parent / "home-bad"
    child = h.run_script(repo / "bad.py", home, str(BIG))
    ran = h.result(child)
    return {"home": home, "run": ran, "child": child, "story": h.story(home, ran["trace_id"])}


def rec(bad: dict[str, Any], prefix: str) -> dict[str, Any]:
    hits = [r for r, _ in h.all_records(bad["story"]) if (r.get("message") or "").startswith(prefix)]
    assert len(hits) == 1, f"expected one record starting {prefix!r}, got {len(hits)}"
    return hits[0]


def event(bad: dict[str, Any], key: str) -> dict[str, Any]:
    want = bad["run"]["ids"][key]
    hits = [r for r, _ in h.all_records(bad["story"]) if r["id"] == want]
    assert len(hits) == 1, f"event {key} ({want}) missing from the story"
    return hits[0]


def test_the_application_never_noticed(bad: dict[str, Any]) -> None:
    assert "Traceback" not in bad["child"].stderr, bad["child"].stderr
    span = h.span_named(bad["story"], "bad-input")
    assert span["status"] == "ok"
    assert "still works after all that" in [r["message"] for r in span["records"]]


def test_nothing_lost(bad: dict[str, Any]) -> None:
    kinds = sorted(r["kind"] for r, _ in h.all_records(bad["story"]))
    assert kinds == ["event"] * 4 + ["log"] * 9 + ["raw"]
    assert bad["story"]["records"] == []
    assert h.sql(bad["home"], "SELECT attrs FROM records WHERE kind = 'node' AND type = 'lost'") == []


def test_unserialisable_attrs_fall_back_to_marked_repr(bad: dict[str, Any]) -> None:
    r = rec(bad, "unserialisable attr")
    assert r["attrs"]["fine"] == 1
    obj = json.dumps(r["attrs"]["obj"])
    assert "Weird<42>" in obj
    assert obj != json.dumps("Weird<42>"), "a repr fallback must be marked as such"
    assert "repr" in obj.lower() or "unserialisable" in obj.lower()
    span = h.span_named(bad["story"], "bad-input")
    for key in ("weird", "also_weird"):
        assert "Weird<42>" in json.dumps(span["attrs"][key])
    payload = event(bad, "weird_event")["payload"]
    assert payload["n"] == 1 and "Weird<42>" in json.dumps(payload["thing"])


def test_a_repr_that_raises_still_gives_a_record(bad: dict[str, Any]) -> None:
    r = rec(bad, "repr explodes too")
    assert "obj" in r["attrs"]
    assert "BadRepr" in json.dumps(r["attrs"]["obj"])


def mentions_size(value: Any, size: int) -> bool:
    text = json.dumps(value)
    return any(form in text for form in (str(size), f"{size:,}", f"{size:_}"))


def test_oversized_message_truncated_with_marker_and_original_size(bad: dict[str, Any]) -> None:
    r = rec(bad, "HUGE")
    assert len(r["message"]) < BIG
    assert r["message"].startswith("HUGEBBBB")
    assert mentions_size(r, BIG), "the original size must be stated"
    assert "trunc" in json.dumps(r).lower()


def test_oversized_payload_truncated_with_marker_and_original_size(bad: dict[str, Any]) -> None:
    e = event(bad, "big_event")
    text = json.dumps(e["payload"])
    assert len(text) < BIG
    assert "trunc" in text.lower()
    # The original size is the string's length or the payload's encoded size: either way, stated.
    sizes = [BIG, len(json.dumps({"blob": "P" * BIG})), len(json.dumps({"blob": "P" * BIG}, separators=(",", ":")))]
    assert any(mentions_size(e["payload"], n) for n in sizes), text[:300]


def test_configured_message_limit(repo: Path) -> None:
    home = repo.parent / "home-limits"
    ran = h.result(h.run_script(repo / "bad.py", home, str(BIG), "500"))
    st = h.story(home, ran["trace_id"])
    (huge,) = [r for r, _ in h.all_records(st) if (r.get("message") or "").startswith("HUGE")]
    assert len(huge["message"]) <= 600
    assert mentions_size(huge, BIG)


def test_invalid_utf8_is_kept_readable(bad: dict[str, Any]) -> None:
    msg = rec(bad, "bad utf8 ")["message"]
    assert msg.endswith(" end")
    msg.encode("utf-8")  # valid UTF-8 (no lone surrogates) in the store
    assert rec(bad, "stdlib caf")["message"].startswith("stdlib caf")
    data = rec(bad, "bytes attr")["attrs"]["data"]
    assert data is not None and data != ""


def test_recursive_structures_are_cut_not_fatal(bad: dict[str, Any]) -> None:
    r = rec(bad, "recursive")
    assert r["attrs"]["d"]["name"] == "loop"
    assert r["attrs"]["l"][0] == 1
    payload = event(bad, "recursive_event")["payload"]
    assert payload["name"] == "loop"
    assert len(json.dumps(payload)) < 10_000


def test_nan_and_infinity_do_not_break_json(bad: dict[str, Any]) -> None:
    # h.story parsed the CLI's output strictly: no NaN/Infinity tokens reached it.
    r = rec(bad, "not numbers")
    assert set(r["attrs"]) >= {"nan", "inf", "ninf"}
    assert r["attrs"]["inf"] != r["attrs"]["ninf"]
    payload = event(bad, "nan_event")["payload"]
    assert set(payload) == {"x", "y", "z"}


def test_raw_data_is_a_record_with_the_returned_id(bad: dict[str, Any]) -> None:
    raws = [r for r, _ in h.all_records(bad["story"]) if r["kind"] == "raw"]
    assert [r["id"] for r in raws] == [bad["run"]["ids"]["raw"]]
    assert raws[0]["type"] == "Blob"


# -- malformed traceparent -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def traceparents(repo: Path) -> dict[str, Any]:
    home = repo.parent / "home-tp"
    child = h.run_script(repo / "traceparent.py", home, VALID, json.dumps(MALFORMED))
    return {"home": home, "run": h.result(child), "child": child}


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_malformed_traceparent_starts_a_new_trace(traceparents: dict[str, Any], name: str) -> None:
    out = traceparents["run"][name]
    assert out["error"] is None, f"extract or span raised: {out['error']}"
    assert out["ctx"] is None
    assert re.fullmatch(r"[0-9a-f]{32}", out["trace_id"]) and set(out["trace_id"]) != {"0"}
    assert out["trace_id"] != VALID.split("-")[1]


def test_malformed_traceparent_spans_are_roots(traceparents: dict[str, Any]) -> None:
    rows = h.sql(
        traceparents["home"],
        "SELECT type, trace_id, parent_span_id FROM records WHERE kind = 'span' AND type LIKE 'after-%'",
    )
    assert sorted(r["type"] for r in rows) == sorted(f"after-{n}" for n in MALFORMED)
    for r in rows:
        assert not r["parent_span_id"]
        assert r["trace_id"] == traceparents["run"][r["type"].removeprefix("after-")]["trace_id"]
    assert len({r["trace_id"] for r in rows}) == len(rows)


@pytest.mark.parametrize("name", ["Traceparent", "TRACEPARENT", "pairs", "kafka"])
def test_valid_traceparent_in_any_carrier_continues_the_trace(traceparents: dict[str, Any], name: str) -> None:
    assert traceparents["run"][f"control-{name}"]["trace_id"] == VALID.split("-")[1]


# -- secrets -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def secrets_run(repo: Path) -> dict[str, Any]:
    home = repo.parent / "home-secrets"
    ran = h.result(h.run_script(repo / "secrets.py", home, "scrub"))
    spool = h.spool_bytes(home)  # before any CLI command touches the home
    text = h.cli(home, "story", ran["trace_id"])
    assert text.returncode == 0, text.stderr
    return {"home": home, "run": ran, "spool": spool, "story": h.story(home, ran["trace_id"]), "text": text.stdout}


@pytest.mark.parametrize("secret", sorted(SECRETS))
def test_secret_never_reaches_the_spool(secrets_run: dict[str, Any], secret: str) -> None:
    assert secret.encode() not in secrets_run["spool"]


@pytest.mark.parametrize("secret", sorted(SECRETS))
def test_secret_never_reaches_the_story(secrets_run: dict[str, Any], secret: str) -> None:
    assert secret not in json.dumps(secrets_run["story"], ensure_ascii=False)
    assert secret not in secrets_run["text"]


def test_scrubbed_records_are_kept_with_a_marker(secrets_run: dict[str, Any]) -> None:
    st = secrets_run["story"]
    login = h.span_named(st, "login")
    assert login["attrs"]["user"] == "alice"
    assert "authorization" in login["attrs"] and "db_password" in login["attrs"]
    msgs = [r.get("message") for r in login["records"]]
    assert len(login["records"]) == 8
    login_msg = next(m for m in msgs if m and m.startswith("login with password"))
    assert login_msg != "login with password=hunter2 ok"
    api = next(r for r in login["records"] if r.get("message") == "calling the api")
    assert api["attrs"]["endpoint"] == "/v1/pay"
    assert "api_key" in api["attrs"]
    marker = api["attrs"]["api_key"]
    assert isinstance(marker, str) and marker and "SEKRIT" not in marker
    assert "scrub" in marker.lower() or "redact" in marker.lower(), "the marker should say a value was removed"
    headers = next(r for r in login["records"] if r.get("message") == "request headers")
    assert headers["attrs"]["path"] == "/cart"


def test_without_scrubbing_the_secrets_would_be_there(repo: Path) -> None:
    """The control: the checks above can fail (``scrub=False`` writes what it is given)."""
    home = repo.parent / "home-noscrub"
    h.run_script(repo / "secrets.py", home, "off")
    spool = h.spool_bytes(home)
    assert b"hunter2" in spool
    assert b"AKIA_SEKRIT_55" in spool


# -- a corrupt spool frame -----------------------------------------------------------------------


def test_corrupt_spool_frame_is_reported_and_the_rest_kept(repo: Path) -> None:
    home = repo.parent / "home-frames"
    batches = h.result(h.run_script(repo / "frames.py", home))
    first, second = batches[0]["files"], batches[1]["files"]
    (path,) = [p for p in second if second[p] > first.get(p, 0)]
    start, end = first.get(path, 0), second[path]
    data = bytearray(Path(path).read_bytes())
    middle = (start + end) // 2
    data[middle] ^= 0xFF  # one flipped byte inside what the second flush wrote
    Path(path).write_bytes(bytes(data))

    out = h.cli(home, "ingest")
    assert "Traceback" not in out.stderr
    report = (out.stdout + out.stderr).lower()
    assert any(w in report for w in ("corrupt", "checksum", "skipped", "unreadable", "problem")), report
    for i in (0, 2):
        st = h.story(home, batches[i]["trace_id"])
        span = h.span_named(st, f"batch-{i}")
        assert [r["message"] for r in span["records"]] == [f"batch {i} item {j}" for j in range(20)]
    lost = h.cli(home, "story", batches[1]["trace_id"], "--json")
    if lost.returncode == 0:  # whatever survived of the damaged batch is not invented
        st = json.loads(lost.stdout)
        assert len(h.all_records(st)) < 20 or not h.spans_named(st, "batch-1")
