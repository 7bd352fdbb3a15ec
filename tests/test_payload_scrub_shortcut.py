"""The data-event shortcut: a payload proved clean on its JSON bytes is stored as the careful path stores it.

``Encoder._event`` skips ``Scrubber.scrub_value`` when ``Scrubber.payload_unchanged`` proves, on the
payload's JSON, that the walk would change nothing. These tests hold the shortcut to the careful path
(``scrub_value(sanitize_payload(obj))``, what every event went through before) on random nested
payloads full of secrets, card numbers, NaN, huge integers, non-string keys, cycles and objects that
cannot be serialised; and each trigger of the proof on its own.
"""

from __future__ import annotations

import math
import sys
import time
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from zoomtrace.capture import items
from zoomtrace.runtime.encoder import Encoder
from zoomtrace.runtime.provenance import Provenance
from zoomtrace.runtime.sanitize import Limits, json_encode, sanitize_payload, sanitize_payload_json
from zoomtrace.runtime.scrub import SCRUBBED, Scrubber

NEUTRAL_KEYS = ["order_id", "customer", "name", "lines", "qty", "shipping", "notes", "id", "span_id", "tags", "x"]
SENSITIVE_KEYS = ["password", "api_key", "userPin", "sessionId", "Authorization", "token_count", "card_no", "sid"]
CARDS = ["4111111111111111", "4111 1111 1111 1111", "4111-1111-1111-1111", "3782-822463-10005", "5500 0000 0000 0004"]
TEXTS = [
    "leave at the door, ring twice",
    "Widget model 7",
    "ada@example.com",
    "ord-7f3a9c2e-0001",
    "password=hunter22",
    "password: hunter22",
    "token:abc",
    "Authorization: Bearer abc.def",
    "bearer abcdef123",
    "BEARER abcdef123",
    "https://user:pw@example.com/x",
    "see https://example.com and mail a@b.c",
    "-----BEGIN RSA PRIVATE KEY-----\nMIIabc\n-----END RSA PRIVATE KEY-----",
    "at 12:30",
    "a = b",
    "shipped 1733140000000",
    "ts 1733140000000 and -1733140000000",
    'quote " and \\ backslash',
    "ünïcødé ſecret",
    "pin",
    "token",
    *CARDS,
    *(f"card {c} on file" for c in CARDS),
    *(f"card\n{c}" for c in CARDS),
    "ratio 16.990000000000002\n",
]


class Unserialisable:
    def __repr__(self) -> str:
        return "<unserialisable>"


class BrokenRepr:
    def __repr__(self) -> str:
        raise RuntimeError("no repr")


scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([2**64, -(2**63) - 1, 10**19, 12345678901234567890]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(TEXTS),
    st.text(max_size=20),
    st.text(alphabet="0123456789 -:=", max_size=25),
    st.builds(Unserialisable),
    st.builds(BrokenRepr),
    st.binary(max_size=8),
)
keys = st.one_of(
    st.sampled_from(NEUTRAL_KEYS + SENSITIVE_KEYS),
    st.text(max_size=8),
    st.integers(-5, 5),
    st.none(),
    st.tuples(st.integers(0, 2)),
)


def containers(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.lists(children, max_size=5),
        st.dictionaries(keys, children, max_size=5),
        st.tuples(st.sampled_from(NEUTRAL_KEYS + SENSITIVE_KEYS), children).map(list),  # (name, value) pairs
        st.tuples(children, children),
    )


payloads = st.recursive(scalars, containers, max_leaves=25)


def cyclic(value: Any) -> Any:
    """``value`` inside a list and a dict that contain themselves."""
    loop: list[Any] = [value]
    loop.append(loop)
    d: dict[str, Any] = {"value": value}
    d["self"] = d
    return {"loop": loop, "d": d}


def careful(obj: Any, scrubber: Scrubber, limits: Limits) -> Any:
    """What every event went through before the shortcut."""
    return scrubber.scrub_value(sanitize_payload(obj, limits))


def stored(encoder: Encoder, obj: Any) -> bytes:
    """The event's payload as msgpack, built by the encoder itself."""
    item: tuple[Any, ...] = (items.EVENT, "id", time.time_ns(), sys._getframe().f_code, 1, "T", obj, [], {}, None)
    record = encoder(item)
    assert record is not None
    payload = record.payload
    if isinstance(payload, msgspec.Raw):  # stored as the JSON made on the way: what it holds is compared
        payload = msgspec.json.decode(payload)
    return msgspec.msgpack.encode(payload)


SHARED = Scrubber()  # shared across examples: its caches (harmless keys, clean values) must not change answers


@pytest.mark.parametrize("limits", [Limits(), Limits(max_depth=120, max_payload_bytes=300)])
@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(obj=payloads, wrap=st.booleans())
def test_the_shortcut_stores_what_the_careful_path_stores(obj: Any, wrap: bool, limits: Limits) -> None:
    if wrap:
        obj = cyclic(obj)
    for scrubber in (SHARED, Scrubber(), Scrubber(["order"], scrub_values=False)):
        encoder = Encoder("node", Provenance(), scrubber, limits)
        assert stored(encoder, obj) == msgspec.msgpack.encode(careful(obj, scrubber, limits))


@settings(max_examples=300, deadline=None)
@given(obj=payloads)
def test_a_payload_proved_unchanged_is_unchanged(obj: Any) -> None:
    payload, encoded = sanitize_payload_json(obj)
    if encoded is None:
        return
    # The JSON of the payload (orjson's, or msgspec's where orjson declines: exponents read 1e+16 or 1e16).
    assert msgspec.json.decode(encoded) == payload
    assert json_encode(payload).replace(b"e+", b"e") == encoded.replace(b"e+", b"e")
    if SHARED.payload_unchanged(payload, encoded):
        assert SHARED.scrub_value(payload) is payload


FRAGMENTS = [*CARDS, "\n", "\t", "\x01", '"', "\\", " ", "-", ".", "+", "_", "a", "é", "→", "16.99", "0", "12"]


@settings(max_examples=1500, deadline=None)
@given(parts=st.lists(st.sampled_from(FRAGMENTS), max_size=6), key=st.sampled_from(NEUTRAL_KEYS))
def test_card_numbers_next_to_anything_defeat_the_proof(parts: list[str], key: str) -> None:
    """Digit runs are judged on JSON bytes, where escapes and multi-byte characters change the neighbours."""
    payload = {key: "".join(parts), "more": ["".join(reversed(parts))]}
    value, encoded = sanitize_payload_json(payload)
    assert encoded is not None
    if SHARED.payload_unchanged(value, encoded):
        assert SHARED.scrub_value(value) is value


def proved(payload: Any, scrubber: Scrubber = SHARED) -> bool:
    value, encoded = sanitize_payload_json(payload)
    assert encoded is not None
    return scrubber.payload_unchanged(value, encoded)


def test_an_ordinary_order_is_proved_clean() -> None:
    order = {
        "order_id": "ord-7f3a9c2e-0001",
        "customer": {"id": "cus-0042", "email": "ada@example.com"},
        "lines": [{"sku": f"SKU-{i:05d}", "unit_price": 9.99 + i, "qty": i} for i in range(8)],
        "shipping": {"method": "express", "address": {"city": "London", "postcode": "N1 7AA"}},
        "created_ms": 1733140000000,  # a timestamp under a key: JSON's own colon before it, no card
        "ratio": 16.990000000000002,  # a long fraction: no card either
        "tags": ["gold", "eu"],
    }
    assert proved(order)
    assert proved(["a", "b", "c"])
    assert proved("plain text")
    assert proved(12.5)


@pytest.mark.parametrize(
    "payload",
    [
        {"user": {"password": "hunter22"}},  # a sensitive key, nested
        {"lines": [{"qty": 1}, {"api_key": "k"}]},  # in a list of dicts
        {"headers": [["Authorization", "x"]]},  # a (name, value) pair
        {"note": "password=hunter22"},
        {"note": "Authorization: Bearer abc"},
        {"note": "bearer abcdef123"},
        {"note": "BEARER abcdef123"},
        {"url": "https://user:pw@example.com/x"},
        {"key": "-----BEGIN RSA PRIVATE KEY-----\nabc"},
        {"note": "card 4111111111111111"},
        {"note": "card 4111 1111 1111 1111"},
        {"note": "card 4111-1111-1111-1111"},
        {"note": "card 3782-822463-10005"},
        {"note": "card\n4111111111111111"},  # JSON writes "\n": a letter before the digits, in the bytes
        {"note": "card\t4111111111111111 or \x014111111111111111"},
        {"note": "at 12:30"},
        "password=hunter22",
    ],
)
def test_each_thing_scrubbing_may_change_defeats_the_proof(payload: Any) -> None:
    assert not proved(payload)


def test_nesting_the_walk_would_cut_defeats_the_proof() -> None:
    deep: Any = "leaf"
    for _ in range(120):
        deep = [deep]
    limits = Limits(max_depth=200)
    value, encoded = sanitize_payload_json(deep, limits)
    assert encoded is not None
    assert not SHARED.payload_unchanged(value, encoded)
    assert SCRUBBED in msgspec.json.encode(SHARED.scrub_value(value)).decode()


def test_harmless_keys_are_remembered_within_a_bound() -> None:
    scrubber = Scrubber()
    for i in range(5000):
        assert proved({f"k{i}": 1}, scrubber)
    assert 0 < len(scrubber._harmless) <= 4096
    assert not proved({"k1": 1, "secret": 2}, scrubber)


def test_nan_and_huge_integers_are_spelled_out_in_a_stored_event() -> None:
    encoder = Encoder("node", Provenance(), Scrubber(), Limits())
    payload = msgspec.msgpack.decode(stored(encoder, {"x": math.nan, "big": 2**70, "pw": "s3cret"}))
    assert payload == {"x": "NaN", "big": str(2**70), "pw": SCRUBBED}
