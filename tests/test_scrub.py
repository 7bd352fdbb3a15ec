"""zoomtrace.runtime.scrub: secrets never reach a record; ordinary data does, unchanged.

Expected outputs follow the documented contract (the key stays, the value goes,
``SCRUBBED`` marks the spot); card numbers are checked against a Luhn
implementation written here, independently of the module's.
"""

from __future__ import annotations

import base64
import copy
import json
import re
import string
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from zoomtrace.runtime.scrub import DEFAULT_PATTERNS, SCRUBBED, Scrubber

S = Scrubber()


def luhn_ok(number: str) -> bool:
    digits = [int(c) for c in number if c.isdigit()]
    checksum = 0
    for i, d in enumerate(reversed(digits)):
        if i % 2 == 1:
            d = d * 2 - 9 if d * 2 > 9 else d * 2
        checksum += d
    return checksum % 10 == 0


def with_check_digit(body: str) -> str:
    """``body`` plus the one digit that makes it Luhn-valid."""
    return next(body + d for d in "0123456789" if luhn_ok(body + d))


def test_marker_says_scrubbed_and_nothing_else() -> None:
    assert SCRUBBED == "[scrubbed]"


# -- keys -------------------------------------------------------------------------------------

#: At least one example per default pattern (checked below), in the spellings seen in the wild.
SENSITIVE_KEYS = [
    "password",
    "Password",
    "db_password",
    "PASSWORD_HASH",
    "passwd",
    "passphrase",
    "pwd",
    "secret",
    "client_secret",
    "AWS_SECRET_ACCESS_KEY",
    "token",
    "access_token",
    "refreshToken",
    "api_key",
    "apikey",
    "api-key",
    "X-Api-Key",
    "authorization",
    "Proxy-Authorization",
    "authorisation",
    "auth",
    "oauth_state",
    "cookie",
    "Set-Cookie",
    "session",
    "sessionId",
    "session_id",
    "credential",
    "credentials",
    "private_key",
    "privateKey",
    "private key",
    "credit_card",
    "creditCard",
    "card_number",
    "cardNo",
    "cc_number",
    "ccnum",
    "cvv",
    "cvc",
    "bearer",
    # Issue 12, item 8: short and compound names, in any case, with any separators.
    "pw",
    "PW",
    "db_pw",
    "userPw",
    "pass",
    "db-pass",
    "userPass",
    "Pass-Word",
    "jwt",
    "id_jwt",
    "sid",
    "user.sid",
    "PHPSESSID",
    "csrf",
    "csrftoken",
    "X-XSRF-TOKEN",
    "pin",
    "PIN",
    "pin_code",
    "cardPin",
    "ssn",
    "customer_ssn",
    "signature",
    "X-Hub-Signature-256",
    "sig",
    "access_key",
    "AccessKey",
    "secret_key",
    "clientSecret",
    "PRIVATE-KEY",
    "refresh_token",
    "refresh_tkn",
    "refreshTkn",
    "Refresh Token",
]

NEUTRAL_KEYS = [
    "user",
    "id",
    "path",
    "message",
    "author",
    "authority",
    "authored_by",
    "tokenizer",
    "tokenize_mode",
    "keyboard",
    "primary_key",
    "cache_key",
    "passenger",
    "bypass",
    "compass",
    "card_notes",
    "discard",
    # Look-alikes of the short words, which count only as words of their own.
    "passage",
    "passed",
    "pwned",
    "pinned",
    "spin",
    "shipping",
    "mapping",
    "design",
    "signal",
    "assignee",
    "sidebar",
    "inside",
    "className",
    "class_name",
    "jobs",
]


def test_every_default_pattern_has_an_example_here() -> None:
    for pattern in DEFAULT_PATTERNS:
        assert any(re.search(pattern, k, re.IGNORECASE) for k in SENSITIVE_KEYS), pattern


@pytest.mark.parametrize("key", SENSITIVE_KEYS)
def test_sensitive_keys_lose_their_value(key: str) -> None:
    out = S.scrub_attrs({key: "v4lue!", "user": "alice"})
    assert out == {key: SCRUBBED, "user": "alice"}
    assert S.is_sensitive(key)


@pytest.mark.parametrize("key", NEUTRAL_KEYS)
def test_look_alike_keys_are_kept(key: str) -> None:
    attrs = {key: "v4lue!"}
    assert S.scrub_attrs(attrs) is attrs
    assert not S.is_sensitive(key)


@settings(max_examples=300, deadline=None)
@given(
    words=st.sampled_from(
        [
            ["pw"],
            ["pass"],
            ["pin"],
            ["sid"],
            ["ssn"],
            ["jwt"],
            ["csrf"],
            ["xsrf"],
            ["sig"],
            ["signature"],
            ["db", "pw"],
            ["user", "pass"],
            ["card", "pin"],
            ["refresh", "token"],
            ["refresh", "tkn"],
            ["access", "key"],
            ["secret", "key"],
            ["client", "secret"],
            ["private", "key"],
            ["api", "key"],
            ["session", "id"],
            ["x", "csrf", "token"],
        ]
    ),
    cases=st.lists(st.sampled_from(["lower", "upper", "title"]), min_size=3, max_size=3),
    sep=st.sampled_from(["_", "-", ".", " ", "camel"]),
    prefix=st.sampled_from(["", "x_", "X-", "user."]),
)
def test_case_and_separators_do_not_matter(words: list[str], cases: list[str], sep: str, prefix: str) -> None:
    spelled = [getattr(w, case)() for w, case in zip(words, cases, strict=False)]
    camel = spelled[0].lower() + "".join(w.title() for w in spelled[1:])
    key = prefix + (camel if sep == "camel" else sep.join(spelled))
    assert S.scrub_attrs({key: "s3cr3t-value"}) == {key: SCRUBBED}, key
    for text in (f"got {key}=s3cr3t-value ok", f'{{"{key}": "s3cr3t-value"}}', f"{key}: s3cr3t-value"):
        assert "s3cr3t-value" not in S.scrub_text(text), text


@pytest.mark.parametrize("key", ["signature_count", "pin_length", "pass_count", "sid_ttl", "jwt_expires_in"])
def test_numbers_under_measurement_keys_of_short_words_are_kept(key: str) -> None:
    assert S.scrub_attrs({key: 3}) == {key: 3}
    assert S.scrub_attrs({key: "3"}) == {key: SCRUBBED}
    assert S.scrub_text(f"{key}=3") == f"{key}=3"


def test_look_alikes_stay_in_text() -> None:
    for text in (
        "passage=3 pinned: yes shipping: 2 days design=v2 sidebar: left inside: ok signal=TERM",
        "mapping: {a: b}, typing: strict, assignee: bob, className: Foo",
        "Pinned=1 PASSED: 4 Designer: me",
    ):
        assert S.scrub_text(text) is text


@pytest.mark.parametrize(
    "key",
    [
        "token_count",
        "tokens_used",
        "max_tokens",
        "input_tokens",
        "session_timeout",
        "password_length",
        "cookie_max_age",
        "token_expires_in",
    ],
)
def test_numbers_under_measurement_keys_are_kept(key: str) -> None:
    assert S.scrub_attrs({key: 1234}) == {key: 1234}
    assert S.scrub_attrs({key: 12.5}) == {key: 12.5}
    assert S.scrub_attrs({key: "1234"}) == {key: SCRUBBED}  # a string may be a secret


@pytest.mark.parametrize("key", ["password", "card_number", "pin_token", "cvv"])
def test_numbers_under_other_sensitive_keys_are_scrubbed(key: str) -> None:
    assert S.scrub_attrs({key: 4111111111111111}) == {key: SCRUBBED}
    assert S.scrub_attrs({key: 1234.0}) == {key: SCRUBBED}


@pytest.mark.parametrize("value", [True, False, None])
def test_flags_and_none_are_kept_under_sensitive_keys(value: Any) -> None:
    assert S.scrub_attrs({"has_password": value}) == {"has_password": value}
    assert S.scrub_attrs({"has_password": value, "password": "x"}) == {"has_password": value, "password": SCRUBBED}
    assert S.scrub_attrs({"nested": {"token_valid": value}}) == {"nested": {"token_valid": value}}


def test_nested_dicts_and_lists_are_searched() -> None:
    attrs = {
        "request": {"headers": {"Authorization": "Bearer abc", "Accept": "json"}, "path": "/x"},
        "attempts": [{"token": "t1", "n": 1}, {"token": "t2", "n": 2}, "plain"],
        "pair": ("keep", {"secret": "s"}),
    }
    out = S.scrub_attrs(attrs)
    assert out == {
        "request": {"headers": {"Authorization": SCRUBBED, "Accept": "json"}, "path": "/x"},
        "attempts": [{"token": SCRUBBED, "n": 1}, {"token": SCRUBBED, "n": 2}, "plain"],
        "pair": ("keep", {"secret": SCRUBBED}),
    }


def test_pairs_are_scrubbed_by_their_name() -> None:
    """Headers as lists of pairs: ASGI scopes, Kafka headers, ``dict.items()``, requests' tuples."""
    basic = "Basic dXNlcjpwYXNz"
    attrs = {
        "headers": [("Authorization", basic), ("Accept", "json"), ["X-Api-Key", "k-123"], ("Cookie", "sid=s3")],
        "kafka_headers": [["traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"], ["PW", b"x"]],
        "one": ("token", "t0k"),
        "counts": [["token_count", 12]],
        "words": ["password", "reset"],  # a two-item list whose first item is a sensitive name: a pair too
    }
    out = S.scrub_attrs(attrs)
    assert out == {
        "headers": [("Authorization", SCRUBBED), ("Accept", "json"), ["X-Api-Key", SCRUBBED], ("Cookie", SCRUBBED)],
        "kafka_headers": [
            ["traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"],
            ["PW", SCRUBBED],
        ],
        "one": ("token", SCRUBBED),
        "counts": [["token_count", 12]],
        "words": ["password", SCRUBBED],
    }
    plain = {"pairs": [["user", "alice"], ["page", "2"]], "matrix": [[1, 2], [3, 4]]}
    assert S.scrub_attrs(plain) is plain


def test_pairs_survive_sanitising_as_the_encoder_does_it() -> None:
    from zoomtrace.runtime.sanitize import sanitize_attrs

    scope = {
        "type": "http",
        "path": "/login",
        "headers": [(b"host", b"shop"), (b"authorization", b"Bearer eyJabc.def"), (b"cookie", b"session=s3ss10n")],
    }
    kafka = [("zoom.id", b"0191e0a4-7c3b-7d12-8531-57cc87abbf83"), ("X-Signature", b"c2lnbmVk")]
    out = S.scrub_attrs(sanitize_attrs({"scope": scope, "kafka": kafka, "env": {"DB_PASS": "p4ss"}.items()}))
    dumped = json.dumps(out)
    for secret in ("eyJabc", "s3ss10n", "c2lnbmVk", "p4ss"):
        assert secret not in dumped
    assert out["scope"]["headers"][0] == ["host", "shop"]
    assert out["kafka"][0] == ["zoom.id", "0191e0a4-7c3b-7d12-8531-57cc87abbf83"]


def test_a_sensitive_key_loses_its_whole_container() -> None:
    assert S.scrub_attrs({"credentials": {"user": "bob", "password": "x"}}) == {"credentials": SCRUBBED}
    assert S.scrub_attrs({"tokens": ["a", "b"]}) == {"tokens": SCRUBBED}


def test_input_is_never_modified() -> None:
    attrs = {"password": "x", "nested": {"token": "y", "list": [{"secret": "z"}]}}
    before = copy.deepcopy(attrs)
    out = S.scrub_attrs(attrs)
    assert attrs == before
    assert out is not attrs and out["nested"] is not attrs["nested"]


def test_clean_attrs_are_returned_as_is() -> None:
    attrs = {"user": "u1", "order": 7, "amount": 12.5, "ok": True, "nested": {"a": [1, "b"]}}
    out = S.scrub_attrs(attrs)
    assert out is attrs


def test_allow_list_keeps_named_keys_case_insensitively() -> None:
    scrubber = Scrubber(allow=["session_id", "Auth"])
    out = scrubber.scrub_attrs({"session_id": "s1", "SESSION_ID": "s2", "auth": {"password": "p", "user": "u"}})
    assert out == {"session_id": "s1", "SESSION_ID": "s2", "auth": {"password": SCRUBBED, "user": "u"}}
    assert scrubber.scrub_text("session_id=s1 password=p") == f"session_id=s1 password={SCRUBBED}"
    # The whole key counts, not just the sensitive word inside it.
    legacy = Scrubber(allow=["legacy_password"])
    assert legacy.scrub_text("legacy_password=x password=y") == f"legacy_password=x password={SCRUBBED}"


def test_allow_must_be_a_collection_of_keys() -> None:
    with pytest.raises(TypeError):
        Scrubber(allow="password")


def test_custom_patterns_replace_the_defaults() -> None:
    scrubber = Scrubber(patterns=[r"ssn", r"X-Internal-\w+"])
    assert scrubber.scrub_attrs({"user_ssn": "123-45-6789", "password": "kept"}) == {
        "user_ssn": SCRUBBED,
        "password": "kept",
    }
    assert scrubber.scrub_attrs({"x-internal-sig": "abc"}) == {"x-internal-sig": SCRUBBED}
    assert scrubber.scrub_text("X-INTERNAL-SIG: abc; ssn=123-45-6789") == f"X-INTERNAL-SIG: {SCRUBBED}; ssn={SCRUBBED}"


def test_no_patterns_scrub_no_keys() -> None:
    scrubber = Scrubber(patterns=[])
    attrs = {"password": "x"}
    assert scrubber.scrub_attrs(attrs) is attrs


def test_string_values_under_ordinary_keys_are_scrubbed_as_text() -> None:
    out = S.scrub_attrs({"url": "https://bob:hunter2@example.com/x", "cmd": "mysql --password=hunter2"})
    assert "hunter2" not in json.dumps(out)
    assert out["url"].startswith("https://bob:") and out["url"].endswith("@example.com/x")


def test_text_scrubbing_of_values_can_be_turned_off() -> None:
    attrs = {"url": "https://bob:hunter2@example.com/x"}
    assert Scrubber(scrub_values=False).scrub_attrs(attrs) is attrs


def test_unsanitised_input_does_not_break_it() -> None:
    cyclic: dict[str, Any] = {"a": 1}
    cyclic["self"] = cyclic
    out = S.scrub_attrs(cyclic)
    assert out["a"] == 1

    class Text(str):
        pass

    assert S.scrub_attrs({"note": Text("password=hunter2")}) == {"note": f"password={SCRUBBED}"}
    unsanitised: dict[Any, Any] = {("password",): "x", 7: "y"}
    assert S.scrub_attrs(unsanitised) == {("password",): SCRUBBED, 7: "y"}
    assert S.scrub_text(None) is None  # type: ignore[arg-type]


def test_attrs_that_change_during_the_check_do_not_raise(monkeypatch: pytest.MonkeyPatch) -> None:
    scrubber = Scrubber()
    attrs: dict[str, Any] = {"note": "some text", "password": "x"}
    real = scrubber.scrub_text

    def meddle(text: str, **options: Any) -> str:
        attrs["added"] = 1
        return real(text, **options)

    monkeypatch.setattr(scrubber, "scrub_text", meddle)
    out = scrubber.scrub_attrs(attrs)
    assert out["password"] == SCRUBBED and out["note"] == "some text"


def test_key_caches_stay_bounded() -> None:
    scrubber = Scrubber()
    for i in range(20_000):
        scrubber.scrub_attrs({f"key{i}": f"value {i}"})
    assert len(scrubber._cache) <= 4096
    assert len(scrubber._clean) <= 4096


# -- text ---------------------------------------------------------------------------------------

CASES = [
    # (text, the secret, a part that must survive)
    ("login password=hunter2 ok", "hunter2", "login password="),
    ("PASSWORD=Hunter2", "Hunter2", "PASSWORD="),
    ("token: abc123XYZ", "abc123XYZ", "token: "),
    ("Authorization: Bearer eyJhbGciOi.xyz\nnext line", "eyJhbGciOi.xyz", "Authorization: Bearer "),
    ("Proxy-Authorization: Basic dXNlcjpwYXNz", "dXNlcjpwYXNz", "Proxy-Authorization: Basic "),
    ('Authorization: Digest username="bob", response="6629fae4"', "6629fae4", "Authorization: "),
    ('api_key="AKIA1234"', "AKIA1234", 'api_key="'),
    ("Cookie: session=s3ss10n; theme=dark", "s3ss10n", "Cookie: "),
    ("Cookie: theme=dark; session=s3ss10n", "s3ss10n", "Cookie: "),
    ("Set-Cookie: sid=xyz987; Path=/; HttpOnly", "xyz987", "Set-Cookie: "),
    ("{'password': 'hunter2', 'user': 'bob'}", "hunter2", "'user': 'bob'"),
    ('{"db_password": "p@ss w0rd", "host": "db"}', "p@ss w0rd", '"host": "db"'),
    ('{"password": "with \\" quote"}', 'with \\" quote', '"password": "'),
    ("{'secret': b'raw-bytes'}", "raw-bytes", "{'secret': b'"),
    ('{\\"password\\": \\"hunter2\\"}', "hunter2", '{\\"password\\": \\"'),
    ("X-Api-Key: k-123-456", "k-123-456", "X-Api-Key: "),
    ("GET /cart?sessionId=abcd1234&page=2", "abcd1234", "&page=2"),
    ("client_secret => 'shh-it'", "shh-it", "client_secret => '"),
    ('password="hunter2 then the message was cut', "hunter2", 'password="'),
    ("credentials: user:pass123", "pass123", "credentials: "),
    ("private_key=MIIEvQIBADANBg", "MIIEvQIBADANBg", "private_key="),
    ("cvv: 987", "987", "cvv: "),
    ("auth=abc.def", "abc.def", "auth="),
    ("connecting to postgres://admin:Sup3rS3cret@db.internal:5432/app", "Sup3rS3cret", "postgres://admin:"),
    ("redis://:onlypass@cache:6379", "onlypass", "redis://:"),
    ("sent Bearer abc.def-ghi to upstream", "abc.def-ghi", "to upstream"),
    ("password=basic x", "basic", "password="),
    ("login pw=hunter2 ok", "hunter2", "login pw="),
    ("userPin: 4321", "4321", "userPin: "),
    ('{"refreshTkn": "r3fr3sh", "n": 1}', "r3fr3sh", '"n": 1'),
    ("X-CSRF-Token: c5rf", "c5rf", "X-CSRF-Token: "),
    ("GET /hook?sig=s1gn3d&page=2", "s1gn3d", "&page=2"),
    ("ssn=123-45-6789", "123-45-6789", "ssn="),
    ("x private key=MIIEvQ y", "MIIEvQ", "x private key="),
    ("card number: 4111", "4111", "card number: "),
    ("url=/cb?token=abc&next=1", "abc", "&next=1"),
    ('{"note": "see password=hunter2"}', "hunter2", '{"note": "see password='),
]


@pytest.mark.parametrize(("text", "secret", "kept"), CASES)
def test_secrets_in_text_are_replaced_and_the_rest_kept(text: str, secret: str, kept: str) -> None:
    out = S.scrub_text(text)
    assert secret not in out
    assert SCRUBBED in out
    assert kept in out


def test_only_the_value_goes() -> None:
    assert S.scrub_text("user=bob password=hunter2 retry=3") == f"user=bob password={SCRUBBED} retry=3"
    assert S.scrub_text('{"token": "abc", "n": 1}') == f'{{"token": "{SCRUBBED}", "n": 1}}'
    assert S.scrub_text("Authorization: Bearer xyz") == f"Authorization: Bearer {SCRUBBED}"


PEM = (
    "-----BEGIN RSA PRIVATE KEY-----\n"
    "MIIEpAIBAAKCAQEAsekritkeymaterial\n"
    "c2Vrcml0IGtleSBtYXRlcmlhbA==\n"
    "-----END RSA PRIVATE KEY-----"
)


@pytest.mark.parametrize(
    "label",
    [
        "RSA PRIVATE KEY",
        "PRIVATE KEY",
        "EC PRIVATE KEY",
        "ENCRYPTED PRIVATE KEY",
        "OPENSSH PRIVATE KEY",
        "PGP PRIVATE KEY BLOCK",
    ],
)
def test_pem_private_keys_lose_their_body(label: str) -> None:
    text = f"loaded key -----BEGIN {label}-----\nMIIEsekrit\nbody==\n-----END {label}----- from disk"
    assert S.scrub_text(text) == f"loaded key -----BEGIN {label}-----{SCRUBBED}-----END {label}----- from disk"


def test_pem_with_escaped_newlines_and_several_blocks() -> None:
    text = PEM.replace("\n", "\\n") + " and " + PEM
    out = S.scrub_text(text)
    assert "sekrit" not in out and "c2Vyc" not in out and "c2Vrcml0" not in out
    assert out.count(SCRUBBED) == 2
    assert " and " in out


def test_pem_cut_before_its_end_loses_everything_after_begin() -> None:
    out = S.scrub_text("key: " + PEM[:60])
    assert "MIIE" not in out
    assert "-----BEGIN RSA PRIVATE KEY-----" in out


def test_public_keys_and_certificates_are_kept() -> None:
    text = "-----BEGIN PUBLIC KEY-----\nMIIBIjANBg\n-----END PUBLIC KEY-----"
    assert S.scrub_text(text) is text


CARDS = [
    "4111 1111 1111 1111",
    "4111-1111-1111-1111",
    "4111111111111111",
    "5500 0000 0000 0004",
    "3782 822463 10005",
    "6011111111111117",
    "4012888888881881",
    "2223000048400011",
    "4222222222222",
    with_check_digit("601100000000000000"),  # 19 digits
]


@pytest.mark.parametrize("card", CARDS)
def test_luhn_valid_card_numbers_are_replaced(card: str) -> None:
    assert luhn_ok(card)  # the test data itself
    digits = card.replace(" ", "").replace("-", "")
    for text in (f"paid with {card} today", f"card={card}", f"({card})", card):
        out = S.scrub_text(text)
        assert digits not in out.replace(" ", "").replace("-", "")
        assert SCRUBBED in out
    assert S.scrub_text(f"paid with {card} today") == f"paid with {SCRUBBED} today"


def test_a_card_inside_a_longer_run_of_digits_is_found() -> None:
    out = S.scrub_text("order 12 4111 1111 1111 1111 ok")
    assert "4111" not in out
    assert out.startswith("order 12 ") and out.endswith(" ok")


NOT_CARDS = [
    "4111 1111 1111 1112",  # Luhn-invalid
    with_check_digit("173277000000"),  # epoch ms (13 digits, starts with 1)
    with_check_digit("173277000000000000"),  # epoch ns (19 digits)
    with_check_digit("200000000000000"),  # 16 digits from 2, but not Mastercard's 2221-2720
    with_check_digit("41111111111"),  # 12 digits: too short
    "41111111111111111111",  # 20 digits in one piece: an id, not a card
    "2024-11-28 05:02:01",
]


@pytest.mark.parametrize("number", NOT_CARDS)
def test_other_numbers_are_kept(number: str) -> None:
    text = f"value {number} seen"
    assert S.scrub_text(text) is text


def uuid_over_a_card(version: str = "4") -> str:
    """A UUID whose first three groups hold a Luhn-valid Visa number followed by hex letters: the shape
    of issue 12's ``"[scrubbed]f1-8531-57cc87abbf83"`` (about 1 in 900 random UUIDs)."""
    digits = with_check_digit("411111111111" + version)  # 14 digits: 8, 4 and 2 of the third group
    return f"{digits[:8]}-{digits[8:12]}-{digits[12:14]}f1-8531-57cc87abbf83"


def test_a_uuid_is_never_taken_for_a_card() -> None:
    uid = uuid_over_a_card()
    assert luhn_ok(uid[:8] + uid[9:13] + uid[14:16])  # the test data: a card's digits, then hex
    for text in (uid, f"consumed {uid} from orders", f"id={uid}", uid.upper(), f"{{{uid}}}", uid.replace("-", "")):
        assert S.scrub_text(text) is text, text
    attrs = {"messaging.message.id": uid, "ref": uid, "ids": [uid]}
    assert S.scrub_attrs(attrs) is attrs


def test_digits_attached_to_an_identifier_are_not_a_card() -> None:
    card = "4111111111111111"
    for text in (
        f"x{card}",  # a letter before
        f"{card}f",  # a hex letter after
        f"ab12-{card}",  # a part of a dashed identifier
        f"{card}-9f",
        f"0.{card}",  # a decimal fraction
        f"{card}.5",
        f"+{card}",  # a phone number
        f"-{card}",  # a negative number
        f"{card[:4]}-{card[4:8]} {card[8:12]}-{card[12:]}",  # mixed separators
        f"{card[:4]}  {card[4:8]}  {card[8:12]}  {card[12:]}",  # double spaces
        "4111-1111-11111-111",  # not a card's grouping
        "12345678-1234-5678-1234-567812345678",  # a UUID of digits only
    ):
        assert S.scrub_text(f"value {text} seen") == f"value {text} seen", text


HEX = "0123456789abcdef"
hex_ids = st.one_of(
    st.uuids().map(str),
    st.uuids().map(lambda u: str(u).upper()),
    st.uuids().map(lambda u: u.hex),
    st.uuids().map(lambda u: f"urn:uuid:{u}"),
    st.binary(min_size=16, max_size=16).map(bytes.hex),  # W3C trace id
    # W3C span ids and other hex ids: an id of decimal digits only is a number, and a card number
    # is a number (see test_ids_of_digits_only_are_kept_under_id_keys).
    st.text(alphabet=HEX, min_size=8, max_size=40).filter(lambda t: any(c.isalpha() for c in t)),
)
traceparents = st.builds(
    lambda t, s, f: f"00-{t.hex()}-{s.hex()}-{f:02x}",
    st.binary(min_size=16, max_size=16),
    st.binary(min_size=8, max_size=8),
    st.integers(0, 255),
)
#: No key=value forms, and no "Bearer" right before the identifier: "Bearer <id>" is a credential by position.
PROSE = st.text(alphabet=string.ascii_letters + " .,;()/#", max_size=20)
BEFORE = PROSE.filter(lambda t: not t.lower().rstrip(" \t").endswith("bearer"))


@settings(max_examples=400, deadline=None)
@given(ident=st.one_of(hex_ids, traceparents), before=BEFORE, after=PROSE, key=st.sampled_from(NEUTRAL_KEYS))
def test_no_identifier_is_ever_altered(ident: str, before: str, after: str, key: str) -> None:
    """UUIDs (any version, any case, any spelling), hex ids, W3C trace ids, span ids and traceparents."""
    text = f"{before} {ident} {after}"
    assert ident in S.scrub_text(text)
    assert S.scrub_text(ident) == ident
    assert S.scrub_attrs({key: ident, "trace_ids": [ident], "message.id": ident}) == {
        key: ident,
        "trace_ids": [ident],
        "message.id": ident,
    }


@settings(max_examples=200, deadline=None)
@given(ident=st.text(alphabet="0123456789", min_size=13, max_size=19))
def test_ids_of_digits_only_are_kept_under_id_keys(ident: str) -> None:
    """A value under a key naming an id (``id``, ``*_id``, ``*.id``, ``*Id``, ``*_ids``, ``uuid``...) is
    never taken for a card number, even when it looks exactly like one."""
    for key in ("id", "span_id", "parentSpanId", "messaging.message.id", "order_ids", "uuid", "trace-id"):
        attrs = {key: ident}
        assert S.scrub_attrs(attrs) is attrs
        nested = {"request": {key: [ident]}}
        assert S.scrub_attrs(nested) == nested
    card = with_check_digit("411111111111111")
    assert S.scrub_attrs({"span_id": card, "note": card}) == {"span_id": card, "note": SCRUBBED}


card_bodies = st.one_of(
    st.builds(
        lambda p, r: p + r,
        st.sampled_from(["4", "51", "55", "6011", "2221"]),
        st.text("0123456789", min_size=11, max_size=11),
    ),
    st.builds(lambda p, r: p + r, st.sampled_from(["34", "37"]), st.text("0123456789", min_size=12, max_size=12)),
)


def spaced(card: str, sep: str) -> str:
    if len(card) == 15:  # American Express: 4-6-5
        return sep.join((card[:4], card[4:10], card[10:]))
    return sep.join(card[i : i + 4] for i in range(0, len(card), 4))


@settings(max_examples=300, deadline=None)
@given(body=card_bodies, sep=st.sampled_from(["", " ", "-"]), before=PROSE, after=PROSE)
def test_real_card_numbers_are_scrubbed_in_any_usual_spelling(body: str, sep: str, before: str, after: str) -> None:
    card = with_check_digit(body)
    written = spaced(card, sep)
    out = S.scrub_text(f"{before} {written} {after}")
    assert card not in out.replace(" ", "").replace("-", "")
    assert out == f"{before} {SCRUBBED} {after}"
    assert S.scrub_attrs({"note": written}) == {"note": SCRUBBED}


def test_the_message_id_of_a_consumed_event_survives(tmp_path: Path) -> None:
    """zt.kafka.consume_span records the producer's record id: the span-to-event link must hold."""
    import zoomtrace as zt
    import zoomtrace.integrations.kafka as ztk
    from zoomtrace.wire.record import Record, uuid7

    assert uuid7(0)[14] == "7"
    record_id = uuid_over_a_card(version="7")

    class Message:  # an aiokafka-style consumed message
        topic, partition, offset, key, value = "orders", 0, 7, b"k", b"{}"
        headers = (("zoom.id", record_id.encode()),)

    path = tmp_path / "records.jsonl"
    zt.init("consumer", home=tmp_path / "home", sink=f"file://{path}")
    with ztk.consume_span(Message()) as span:
        zt.log.info("handling {msg_id}", msg_id=record_id)
    assert zt.flush(10)
    records = [msgspec.json.decode(line, type=Record) for line in path.read_bytes().splitlines()]
    (recorded,) = [r for r in records if r.kind == "span" and r.span_id == span.span_id]
    assert recorded.attrs["messaging.message.id"] == record_id
    (log,) = [r for r in records if r.kind == "log"]
    assert log.message == f"handling {record_id}" and log.attrs == {"msg_id": record_id}


@pytest.mark.parametrize(
    "text",
    [
        "",
        "ok",
        "cart has 3 items",
        "author=bob",
        "tokenizer=bpe",
        "tokens_used=123 token_count: 17",
        "max_tokens=4096",
        "session_count=3",
        "user=alice status=200",
        "GET /api/v1/items?page=2&limit=10",
        "Password reset requested",
        "https://example.com:8443/path",
        "ping 10.0.0.1: 64 bytes",
    ],
)
def test_ordinary_text_is_returned_as_is(text: str) -> None:
    assert S.scrub_text(text) is text


@pytest.mark.parametrize("key", SENSITIVE_KEYS)
def test_every_sensitive_key_is_recognised_in_text(key: str) -> None:
    for template in ("{k}=v4lue", "{k}: v4lue", '"{k}": "v4lue"', "'{k}': 'v4lue'"):
        out = S.scrub_text("x " + template.format(k=key) + " y")
        assert "v4lue" not in out, (template, out)
        assert key in out


@pytest.mark.parametrize("pattern", DEFAULT_PATTERNS)
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_any_key_a_default_pattern_matches_is_recognised(pattern: str, data: st.DataObject) -> None:
    core = data.draw(st.from_regex(pattern, fullmatch=True).filter(lambda k: "\n" not in k), label="core")
    flips = data.draw(st.lists(st.booleans(), min_size=len(core), max_size=len(core)), label="case")
    key = "".join(c.upper() if f else c for c, f in zip(core, flips, strict=True))
    assume(re.search(pattern, key, re.IGNORECASE))  # upper-casing may break a look-ahead; rare
    assert S.scrub_attrs({key: "s3cr3t"}) == {key: SCRUBBED}
    assert "s3cr3t" not in S.scrub_text(f"got {key}=s3cr3t")


# -- properties ---------------------------------------------------------------------------------

SECRET_ALPHABET = string.ascii_letters + string.digits + "!#$%()*+-./<>?@[]^_{|}~=:"
TEMPLATES = ["{k}={s}", "{k}: {s}", "{k} = {s}", '"{k}": "{s}"', "'{k}': '{s}'", '{k}="{s}"', "{k}=>{s}", "{k}:{s}"]
FILLER = st.text(alphabet=string.ascii_lowercase + " .,0123456789", max_size=30)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    key=st.sampled_from(SENSITIVE_KEYS),
    secret=st.text(alphabet=SECRET_ALPHABET, min_size=6, max_size=40),
    template=st.sampled_from(TEMPLATES),
    before=FILLER,
    after=FILLER,
)
def test_a_scrubbed_text_never_contains_the_secret(
    key: str, secret: str, template: str, before: str, after: str
) -> None:
    pair = template.format(k=key, s=secret)
    text = f"{before} {pair} {after}"
    # The secret must not also be a part of what legitimately stays.
    assume(secret not in f"{before} {template.format(k=key, s=SCRUBBED)} {after}")
    out = S.scrub_text(text)
    assert secret not in out


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_scrubbing_is_idempotent_and_never_raises(text: str) -> None:
    once = S.scrub_text(text)
    assert isinstance(once, str)
    assert S.scrub_text(once) == once


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=string.ascii_letters.replace("b", "").replace("B", "") + " .,!?"))
def test_text_without_separators_or_digits_is_untouched(text: str) -> None:
    # Every recognised form needs "=", ":", "-----", "@", a digit or the word "bearer".
    assert S.scrub_text(text) is text


neutral_leaf = st.one_of(
    st.none(), st.booleans(), st.integers(), st.text(alphabet="abcdefghijklmnopqrstuvwxy 01", max_size=10)
)
secret_leaf = st.builds(
    lambda k, s: {k: "zz" + s},
    st.sampled_from(SENSITIVE_KEYS),
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=3),
)
trees = st.recursive(
    st.one_of(neutral_leaf, secret_leaf),
    lambda children: st.one_of(
        st.lists(children, max_size=5),
        st.dictionaries(st.sampled_from(NEUTRAL_KEYS), children, max_size=5),
    ),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(NEUTRAL_KEYS + SENSITIVE_KEYS), trees, max_size=6))
def test_scrubbed_attrs_never_contain_a_secret_and_the_input_is_untouched(attrs: dict[str, Any]) -> None:
    before = copy.deepcopy(attrs)
    out = S.scrub_attrs(attrs)
    assert "zz" not in json.dumps(out)
    assert attrs == before
    if "zz" not in json.dumps(attrs) and not any(S.is_sensitive(k) for k in attrs):
        assert out == attrs


# -- through a running node: messages rendered from secrets, raw payloads -----------------------


def run_node(tmp_path: Path) -> Path:
    import zoomtrace as zt

    path = tmp_path / "records.jsonl"
    zt.init("scrubbed", home=tmp_path / "home", sink=f"file://{path}")
    return path


def recorded(path: Path) -> list[Any]:
    import zoomtrace as zt
    from zoomtrace.wire.record import Record

    assert zt.flush(10)
    return [msgspec.json.decode(line, type=Record) for line in path.read_bytes().splitlines()]


def raw_payload(record: Any) -> bytes:
    """A raw record's bytes (JSON lines carry them in base64)."""
    return base64.b64decode(record.payload)


def test_template_arguments_that_are_secrets_by_name_or_place(tmp_path: Path) -> None:
    import logging

    import zoomtrace as zt

    path = run_node(tmp_path)
    zt.log.info("login {pw}", pw="hunter2")
    zt.log.info("auth with token={t}", t="t0k3n-abc")
    zt.log.info('sent {{"password": "{p}", "user": "{u}"}}', p="s3cr3t-p", u="bob")
    zt.log.info("Authorization: Bearer {b} for {u}", b="b34rer", u="bob")
    zt.log.info("used tokens_used={n} of {m}", n=1234, m=4096)
    zt.log.info("login {user} with {pin:04d}", user="bob", pin=4321)
    logging.getLogger("app").warning("login %s", "hunter3", extra={"password": "hunter3"})
    logs = [r for r in recorded(path) if r.kind == "log"]
    assert [(r.message, r.attrs) for r in logs] == [
        (f"login {SCRUBBED}", {"pw": SCRUBBED}),
        (f"auth with token={SCRUBBED}", {"t": SCRUBBED}),
        (f'sent {{"password": "{SCRUBBED}", "user": "bob"}}', {"p": SCRUBBED, "u": "bob"}),
        # A header line's rest is credentials, so {u} is in a secret's place too.
        (f"Authorization: Bearer {SCRUBBED}", {"b": SCRUBBED, "u": SCRUBBED}),
        ("used tokens_used=1234 of 4096", {"n": 1234, "m": 4096}),
        # "[scrubbed]" does not fit "04d" (and the text rule takes "04d}" for the value of "pin:").
        (
            f"login {{user}} with {{pin:{SCRUBBED} [unformattable with ['pin', 'user']]",
            {"user": "bob", "pin": SCRUBBED},
        ),
        (f"login {SCRUBBED}", {"password": SCRUBBED}),
    ]


def test_template_fields_are_judged_once_per_template() -> None:
    scrubber = Scrubber()
    assert scrubber.scrub_args("token={t} for {user}", {"t": "x", "user": "bob"}) == {"t": SCRUBBED, "user": "bob"}
    args = {"amount": 12.5, "order": 7}
    assert scrubber.scrub_args("charged {amount} for {order}", args) is args
    assert scrubber._templates == {"token={t} for {user}": {"t": 1}, "charged {amount} for {order}": {}}
    assert scrubber.scrub_args("bad {template", {"x": 1}) == {"x": 1}


BODY = b'{"user": "bob", "credentials": {"password": "p4ss", "otp": 1}, "items": [{"card_number": "4111"}]}'


@pytest.mark.parametrize(
    ("data", "stored"),
    [
        (b"user=bob&password=hunter2&next=%2F", b"user=bob&password=[scrubbed]&next=%2F"),
        (BODY, b'{"user":"bob","credentials":"[scrubbed]","items":[{"card_number":"[scrubbed]"}]}'),
        (
            b"<login><user>bob</user></login> Authorization: Basic dXNlcg==",
            b"<login><user>bob</user></login> Authorization: Basic [scrubbed]",
        ),
        (
            b"GET /x HTTP/1.1\r\nCookie: sid=abc\r\nHost: shop\r\n",
            b"GET /x HTTP/1.1\r\nCookie: [scrubbed]\r\nHost: shop\r\n",
        ),
    ],
)
def test_textual_raw_payloads_are_scrubbed(tmp_path: Path, data: bytes, stored: bytes) -> None:
    import hashlib

    import zoomtrace as zt

    path = run_node(tmp_path)
    zt.raw(data, format="text")
    (raw,) = [r for r in recorded(path) if r.kind == "raw"]
    assert raw_payload(raw) == stored
    assert raw.attrs["raw.scrubbed"] is True
    # The digest and size are of what is stored: the original's digest would let a reader test guesses.
    assert raw.attrs["raw.sha256"] == hashlib.sha256(stored).hexdigest()
    assert raw.attrs["raw.size"] == len(stored)


@pytest.mark.parametrize(
    "data",
    [
        b"plain text without secrets, order 12",
        b'{"user": "bob", "total": 12.5}',
        b"\x00\x01password=hunter2",  # binary: control characters
        b"\xffpassword=hunter2",  # binary: not UTF-8
        "café password".encode()[:-9],  # text cut inside nothing secret
    ],
)
def test_other_raw_payloads_are_stored_as_given(tmp_path: Path, data: bytes) -> None:
    import hashlib

    import zoomtrace as zt

    path = run_node(tmp_path)
    zt.raw(data)
    (raw,) = [r for r in recorded(path) if r.kind == "raw"]
    assert raw_payload(raw) == data
    assert "raw.scrubbed" not in raw.attrs
    assert raw.attrs["raw.sha256"] == hashlib.sha256(data).hexdigest()


def test_scrub_bytes_keeps_a_cut_character_and_scrubs_the_text_before_it() -> None:
    data = "password=hunter2 café".encode()[:-1]  # the é cut in half, as a truncated payload may be
    assert S.scrub_bytes(data) == b"password=[scrubbed] caf\xc3"
