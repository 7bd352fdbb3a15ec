"""Remove secrets from record attributes and text before anything is written.

Records end up in files, Kafka topics and UIs that more people can read than
the process that made them, so passwords, tokens, cookies, private keys and card
numbers are replaced by ``SCRUBBED`` on the worker thread, by default.

Decisions (false positives cost a value; false negatives leak a secret;
docs/reliability.md lists them with the tests that prove them):

* A key is judged as it is *and* split into lower-case words joined by ``_``
  (at separators and camelCase: ``refreshTkn`` -> ``refresh_tkn``,
  ``X-Api-Key`` -> ``x_api_key``), so case and separators do not matter. In
  attributes, in ``key=value`` text and in ``(name, value)`` pairs alike, and
  each key's decision is cached.
* Distinctive words (``DEFAULT_PATTERNS``) count anywhere in a key, so compound
  keys (``db_password``, ``X-Api-Key``, ``sessionId``, ``csrftoken``) count.
  Short or common words (``pass``, ``pw``, ``tkn``, ``sid``, ``sig``, ``pin``,
  ``ssn``) count only as words of their own: ``db_pass``, ``userPin``, not
  ``passage``, ``pinned``, ``shipping``, ``sidebar``, ``design``, ``className``.
  Known harmless look-alikes of the others are excluded by the patterns
  themselves: ``author``/``authority`` (not ``auth``), ``tokenizer``/``tokenize``.
* A key that is sensitive *and* names a measurement (``token_count``,
  ``tokens_used``, ``max_tokens``, ``input_tokens``, ``session_timeout``,
  ``password_length``; see ``METRIC_HINT``) keeps its value when the value is a
  number: such numbers are counts and durations, not secrets. A string under the
  same key is still scrubbed.
* ``True``/``False``/``None`` are never scrubbed (``has_password: True`` reveals
  nothing a reader needs protecting from).
* A sensitive key's value is replaced whole, containers included: a nested
  ``{"credentials": {...}}`` becomes ``{"credentials": "[scrubbed]"}``.
* A two-item list or tuple whose first item is a string is a ``(name, value)``
  pair -- headers of ASGI scopes, Kafka messages, ``requests``, ``dict.items()``
  -- and its value is scrubbed when the name is sensitive.
* A ``str.format`` template's fields named like a sensitive key (``"login {pw}"``)
  or standing in a sensitive key's value (``"token={t}"``) are scrubbed before
  the message is rendered (``scrub_args``), attribute included; a message rendered
  by a logging library loses the values of its sensitive attributes
  (``hide_values``, four characters or more).
* Raw data that is text (UTF-8 without control characters) is scrubbed: JSON as a
  value (re-encoded compactly when something changed), anything else as text
  (``scrub_bytes``). Binary data is not.
* Card numbers in text are digits only, written as one number of 13-19 digits or
  in a card's groups (4-4-4-4 and the like, 4-6-5, 4-6-4) separated by single
  spaces or by single dashes, standing alone: not continued by letters, digits
  or ``_`` on either side, nor by ``-``/``.`` and more of an identifier, nor
  after ``+``, ``-`` or ``.``; and Luhn-valid, starting like a card (first digit
  3-6, or 16 digits from 2221-2720; so epoch-ms/us/ns timestamps are left alone).
  So no identifier with a hex letter in it (UUIDs, W3C trace and span ids, hashes)
  is ever altered, nor is a UUID or a traceparent of decimal digits only.
* Values under a key naming an identifier (last word ``id``/``ids``/``uuid``/
  ``guid``: ``span_id``, ``messaging.message.id``, ``orderIds``) are never taken
  for card numbers, even when made of digits only.
* Accepted false positives: ``secretary``, ``possession``, the ``PWD``
  environment variable, ``auth_method: "password"``, ``pass_through``, a GPIO
  ``pin``, ``["password", "reset"]`` (a pair); in text, a free-standing id of
  13-19 decimal digits that passes the card checks (it cannot be told from a card).
* Not recognised in text: secrets without a key (``hunter2`` alone), key and
  value separated only by a space (``--password hunter2``), natural language.
"""

from __future__ import annotations

import re
import string
import sys
from collections.abc import Collection, Mapping, Sequence
from typing import Any, Final

import msgspec

from zoomtrace._native import speedups as _native

__all__ = ["DEFAULT_PATTERNS", "METRIC_HINT", "SCRUBBED", "Scrubber"]

#: Replaces a secret. It says a value was removed without echoing any part of it.
SCRUBBED: Final = "[scrubbed]"

#: Regular-expression fragments searched case-insensitively in a key as it is, and in the key split into
#: lower-case words joined by ``_`` (``refreshTkn`` -> ``refresh_tkn``, ``X-Api-Key`` -> ``x_api_key``).
#: Distinctive words count anywhere in a key; short or common ones (``(?<![a-z])…(?![a-z])``) only as
#: a word of their own: ``pin`` but not ``pinned`` or ``shipping``, ``sid`` but not ``sidebar``.
DEFAULT_PATTERNS: Final[tuple[str, ...]] = (
    r"pass(?:word|wd|phrase)",
    r"(?<![a-z])pass(?![a-z])",  # not passage, bypass, compass, passenger
    r"pwd",
    r"(?<![a-z])pw(?![a-z])",
    r"secret",  # and client_secret, secret_key
    r"token(?!i[sz])",  # not tokenizer / tokenise
    r"(?<![a-z])tkn(?![a-z])",
    r"jwt",
    r"[cx]srf",
    r"api[-_. ]?key",
    r"access[-_. ]?key",
    r"private[-_. ]?key",
    r"authori[sz]ation",
    r"auth(?!or)",  # not author / authority
    r"cookie",  # and set-cookie
    r"sess(?:ion|_?id)",  # and PHPSESSID
    r"(?<![a-z])sid(?![a-z])",  # not side, inside, sidebar
    r"credential",
    r"signature",  # not design, signal
    r"(?<![a-z])sig(?![a-z])",
    r"(?<![a-z])pin(?![a-z])",  # not pinned, spin, shipping
    r"(?<![a-z])ssn(?![a-z])",  # not classname
    r"credit[-_. ]?card",
    r"card[-_. ]?(?:num|no(?![a-z]))",
    r"cc[-_. ]?(?:num|no(?![a-z]))",
    r"cvv",
    r"cvc",
    r"bearer",
)

#: A sensitive key that also matches this names a measurement: a *number* under it is kept.
METRIC_HINT: Final = (
    r"count|used|usage|limit|max|total|remaining|length|size|ttl|timeout|expir|duration|elapsed|tokens|sessions"
)

#: Authorization schemes kept in text ("Authorization: Bearer [scrubbed]"); only the credential goes.
_SCHEMES: Final = r"bearer|basic|digest|negotiate|ntlm|token|hoba|mutual|vapid|aws4-hmac-sha256"

_KEEP: Final = 0
#: A key naming an identifier (``id``, ``span_id``, ``messaging.message.id``, ``orderIds``, ``uuid``): its
#: values are scrubbed like any other's, except that they are never taken for card numbers.
_KEEP_ID: Final = -1
_SCRUB: Final = 1
_SCRUB_UNLESS_NUMBER: Final = 2
_CACHE_MAX: Final = 4096
_CLEAN_MAX_CHARS: Final = 128
MAX_NESTING: Final = 100

#: PEM private keys, also when the END line was cut off (everything after BEGIN goes).
_PEM: Final = re.compile(
    r"(-----BEGIN (?P<label>[A-Z0-9 ]*PRIVATE KEY[A-Z ]*)-----)"
    r"(?:.*?(-----END (?P=label)-----)|.*)",
    re.DOTALL,
)
#: scheme://user:password@host
_URL_PASSWORD: Final = re.compile(r"(?P<pre>\b[a-z][a-z0-9+.-]*://[^\s/@:]*:)(?P<pw>[^\s/]+)@", re.IGNORECASE)
_BEARER: Final = re.compile(r"\bbearer[ \t]+(?P<value>[A-Za-z0-9\-._~+/]+=*)", re.IGNORECASE)
#: Groups of ASCII digits joined by single spaces or dashes, starting a word: not after a letter, a digit,
#: ``_``, ``+`` (a phone number), ``-`` (a negative number, a dashed identifier) or ``.`` (a fraction).
_DIGIT_RUN: Final = re.compile(r"[0-9](?<![\w+.-][0-9])[0-9]*(?:[ -][0-9]+)*")
#: Digit groups a card number is written in: 4-4-4-4 (and 13 to 19 digits in fours), 4-6-5 (American
#: Express), 4-6-4 (Diners). A single group of 13 to 19 digits is checked as it is.
_CARD_LAYOUTS: Final = frozenset(
    {(4, 4, 4, 1), (4, 4, 4, 2), (4, 4, 4, 3), (4, 4, 4, 4), (4, 4, 4, 4, 3), (4, 6, 4), (4, 6, 5)}
)
_NUMBER: Final = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")
_DIGITS: Final = b"0123456789"
#: Shortest text that can hold a secret (``k=v`` for a one-letter custom pattern).
_MIN_SECRET_TEXT: Final = 3
_CARD_MIN: Final = 13
#: Where a key splits into words: separators, and camelCase ("parentSpanId", "APIKey").
_KEY_SPLIT: Final = re.compile(r"[^0-9A-Za-z]+|(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
#: The last word of a key that names an identifier.
_ID_WORDS: Final = frozenset({"id", "ids", "uuid", "uuids", "guid", "guids"})
#: Shortest value of a sensitive attribute searched for in the message rendered from it (shorter ones
#: would be found everywhere: "order 1 of 12").
_HIDE_MIN: Final = 4
#: Control characters: bytes holding them are binary data, not text (tab, newline, CR aside).
_CONTROL: Final = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_FORMATTER: Final = string.Formatter()
_LINE_END: Final = re.compile(r"[\r\n]")
#: The attribute a ``str.format`` field reads: ``user`` of ``{user.name}`` and ``{user[0]}``.
_FIELD_ROOT: Final = re.compile(r"[^.\[]*")
#: Probes of ``Scrubber._field_decision``: a bare value no rule takes for anything but a value.
_PROBE: Final = "zQx7probe"
_PROBE_NUMBER: Final = "135"
_json_decode: Final = msgspec.json.decode
_json_encode: Final = msgspec.json.encode
#: ``Scrubber.payload_unchanged``: each byte of a payload's JSON mapped to its class -- an ASCII digit to
#: ``1``, what no card number may follow to ``x`` (``[A-Za-z_+.]``, and ``:`` since the check only holds
#: when every colon is JSON's own), anything else to a space: separators (space, dash), JSON quotes,
#: commas and brackets, non-ASCII bytes. A dash is taken for a space, which errs on the side of a card
#: ("ord-4111111111111111" is none). See ``_card_spans`` for what a card may look like.
_CARD_CLASSES: Final = bytes(
    0x31 if 0x30 <= b <= 0x39 else 0x78 if (0x41 <= b <= 0x5A or 0x61 <= b <= 0x7A or b in b"_+.:") else 0x20
    for b in range(256)
)
#: 13 digits or more after a space class: where a card of one group may start (not after a letter, ``_``,
#: ``+``, ``.`` or a digit; after a dash it may not either, but the classes cannot tell a dash from a space).
_LONE_CARD_RUN: Final = b" " + b"1" * _CARD_MIN
#: Every grouped card layout (``_CARD_LAYOUTS``) starts with four digits, a separator and four more digits.
_GROUPED_CARD_START: Final = b"1111 1111"
#: The second word of keys written with a space in text ("private key=...", "session id: ...").
_KEY_TAILS: Final = frozenset({"key", "card", "number", "num", "no", "id"})
#: ``key <sep> value`` in text, any key: the key is judged as an attribute's would be (``Scrubber._decide``).
#: A key starts a word; possessive quantifiers keep the scan linear on long words.
_PAIR: Final = re.compile(
    r"(?<![\w.-])(?P<key>[\w.-]++)"
    r"(?P<sep>\\?[\"']?[ \t]*+(?:=>|[:=])[ \t]*+)"
    rf"(?P<scheme>(?i:{_SCHEMES})[ \t]+)?"
    r"(?P<value>"
    r"b?\"(?:[^\"\\\n]|\\.)*\""  # "double quoted", escapes allowed
    r"|b?'(?:[^'\\\n]|\\.)*'"  # 'single quoted' (Python reprs)
    r"|\\[\"'][^\"'\\\n]*"  # \"escaped\" (JSON inside a JSON string)
    r"|[\"'][^\n]*"  # "unterminated (a message cut short): to the end of the line
    r"|[^\s,;&\"']+"  # bare
    r")"
)


def _luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i & 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def _looks_like_card(digits: str) -> bool:
    """Card numbers start with 3-6 (Amex, Visa, Mastercard, Discover...) or are 16 digits in 2221-2720.

    Epoch timestamps in ms/us/ns start with 1 (with 2 from 2033, but outside that
    range or of the wrong length), so they are not taken for cards.
    """
    if not 13 <= len(digits) <= 19 or not _luhn(digits):
        return False
    first = digits[0]
    if first in "3456":
        return True
    return first == "2" and len(digits) == 16 and 2221 <= int(digits[:4]) <= 2720


def _attached(text: str, end: int) -> bool:
    """Whether what follows ``text[:end]`` continues the same word (a letter, a digit, ``_``), identifier
    (``-`` or ``.`` and then one of those) or number."""
    if end >= len(text):
        return False
    ch = text[end]
    if ch.isalnum() or ch in "_+":
        return True
    if ch in ".-" and end + 1 < len(text):
        nxt = text[end + 1]
        return nxt.isalnum() or nxt == "_"
    return False


def _card_spans(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """Spans of card numbers in the digit run ``text[start:end]`` (see ``_DIGIT_RUN``).

    The run's words are separated by spaces; a word's groups are joined by dashes. A card is a word
    of one group of 13-19 digits, a dashed word whose groups are a card's layout, or consecutive
    one-group words in a card's layout ("order 12 4111 1111 1111 1111"); the longest one wins. A
    word that continues into letters (the hex digits of a UUID, say) is part of an identifier, and
    no card.
    """
    words: list[tuple[int, int]] = []
    pos = start
    for word in text[start:end].split(" "):
        words.append((pos, pos + len(word)))
        pos += len(word) + 1
    if _attached(text, end):
        words.pop()
    spans: list[tuple[int, int]] = []
    i = 0
    while i < len(words):
        w_start, w_end = words[i]
        word = text[w_start:w_end]
        if "-" in word:
            groups = word.split("-")
            if tuple(map(len, groups)) in _CARD_LAYOUTS and _looks_like_card("".join(groups)):
                spans.append((w_start, w_end))
            i += 1
            continue
        if _CARD_MIN <= len(word) <= 19:
            if _looks_like_card(word):
                spans.append((w_start, w_end))
            i += 1
            continue
        best = -1
        digits = ""
        layout: tuple[int, ...] = ()
        for j in range(i, min(i + 5, len(words))):
            g_start, g_end = words[j]
            group = text[g_start:g_end]
            if "-" in group:
                break
            digits += group
            layout += (len(group),)
            if layout in _CARD_LAYOUTS and _looks_like_card(digits):
                best = j
        if best >= 0:
            spans.append((w_start, words[best][1]))
            i = best + 1
        else:
            i += 1
    return spans


def _scrub_cards(text: str) -> str:
    pieces: list[str] = []
    last = 0
    for m in _DIGIT_RUN.finditer(text):
        start, end = m.span()
        if end - start < _CARD_MIN:
            continue
        for card_start, card_end in _card_spans(text, start, end):
            pieces.append(text[last:card_start])
            pieces.append(SCRUBBED)
            last = card_end
    if not pieces:
        return text
    pieces.append(text[last:])
    return "".join(pieces)


def _scrub_pem(m: re.Match[str]) -> str:
    return m.group(1) + SCRUBBED + (m.group(3) or "")


def _scrub_url_password(m: re.Match[str]) -> str:
    return m.group("pre") + SCRUBBED + "@"


def _scrub_bearer(m: re.Match[str]) -> str:
    return m.group()[: m.start("value") - m.start()] + SCRUBBED


def _digit_count(text: str) -> int:
    """ASCII digits in ``text``; bytes.translate is the fastest count in CPython (no Python loop)."""
    data = text.encode("utf-8", "surrogatepass")
    return len(data) - len(data.translate(None, _DIGITS))


def _default_hint(f: str, text: str) -> bool:
    """Whether lower-cased ``f`` (``text`` folded) may hold a key ``DEFAULT_PATTERNS`` match, or "bearer".

    Substring tests are several times faster than the equivalent regex search in CPython; the short
    words must also stand as words of their own (``_stands_alone``), so that "shipping" or "inside" do
    not send every message through the pair scan. Tests check every default pattern against this function.
    """
    if (
        "secret" in f
        or "token" in f
        or "key" in f
        or "auth" in f
        or "cookie" in f
        or "sess" in f
        or "credential" in f
        or "card" in f
        or "bearer" in f
        or "jwt" in f
        or "srf" in f
        or ("cv" in f and ("cvv" in f or "cvc" in f))
        or ("cc" in f and ("num" in f or "no" in f))
    ):
        return True
    if "pass" in f and ("passw" in f or "passphrase" in f or _stands_alone(f, text, "pass")):
        return True
    if "pw" in f and ("pwd" in f or _stands_alone(f, text, "pw")):
        return True
    if "sig" in f and ("signature" in f or _stands_alone(f, text, "sig")):
        return True
    return (
        ("tkn" in f and _stands_alone(f, text, "tkn"))
        or ("sid" in f and _stands_alone(f, text, "sid"))
        or ("pin" in f and _stands_alone(f, text, "pin"))
        or ("ssn" in f and _stands_alone(f, text, "ssn"))
    )


def _stands_alone(f: str, text: str, word: str) -> bool:
    """Whether ``word`` occurs in ``text`` (lower-cased: ``f``) as a word of its own, camelCase included:
    "pin", "user_pin", "userPin", "PIN_CODE"; not "shipping" or "pinned" (but "PINNED": a hint only)."""
    size = len(text)
    if len(f) != size:  # lower() changed the length (rare non-ASCII letters): assume it does
        return True
    i = f.find(word)
    while i >= 0:
        j = i + len(word)
        if (i == 0 or not text[i - 1].isalpha() or text[i].isupper()) and (j == size or not text[j].islower()):
            return True
        i = f.find(word, j)
    return False


class Scrubber:
    """Replaces secrets in attribute dicts (by key) and in text (by ``key=value`` shape and by form).

    ``patterns`` are regular-expression fragments searched case-insensitively in
    keys; ``allow`` lists whole keys (case-insensitive) that are never sensitive.
    Decisions per key are cached, since the same keys come back record after record.
    With ``scrub_values`` (default) string values under ordinary keys also go
    through ``scrub_text`` (``{"url": "https://u:pw@h"}``, ``{"cmd": "... --password=x"}``).
    """

    def __init__(
        self,
        patterns: Sequence[str] = DEFAULT_PATTERNS,
        allow: Collection[str] = (),
        *,
        scrub_values: bool = True,
    ) -> None:
        patterns = tuple(patterns)
        if isinstance(allow, str):
            raise TypeError("allow must be a collection of keys, not one string")
        self.patterns = patterns
        self.allow = frozenset(a.casefold() for a in allow)
        self.scrub_values = scrub_values
        joined = "|".join(f"(?:{p})" for p in patterns) if patterns else r"(?!)"
        self._key = re.compile(joined, re.IGNORECASE)
        self._metric = re.compile(METRIC_HINT, re.IGNORECASE)
        self._default = patterns == DEFAULT_PATTERNS
        self._cache: dict[str, int] = {}
        #: Per ``str.format`` template: the fields whose values the rendered message would show as secrets.
        self._templates: dict[str, dict[str, int]] = {}
        #: Short string values already found free of secrets: values repeat ("GET", "eu-west-1") like keys do.
        self._clean: dict[str, None] = {}
        #: Keys (and pair names) found not sensitive, as a set-like view for one C-level test per dict.
        self._harmless: dict[str, None] = {}
        #: The C speedups' own cache of harmless names, by their UTF-8 bytes (made at first use).
        self._json_names: object | None = None

    def __repr__(self) -> str:
        return f"Scrubber(patterns={list(self.patterns)!r}, allow={sorted(self.allow)!r})"

    @property
    def harmless_names(self) -> dict[str, None]:
        """The keys and pair names found not sensitive so far (text, bounded; emptied in place when full). The
        encoder's C event path looks a payload's names up in it before it encodes the payload, and leaves the
        payloads with a name not in it to ``json_unchanged``, which learns it. Not to be changed."""
        return self._harmless

    # -- keys -------------------------------------------------------------------------

    def _decide(self, key: Any) -> int:
        if type(key) is not str:  # unsanitised input; not cached, since 1 == 1.0 == True
            try:
                return self._decide_name(str(key))
            except Exception:  # an unprintable key: assume the worst
                return _SCRUB
        decision = self._decide_name(key)
        cache = self._cache
        if len(cache) >= _CACHE_MAX:  # keys made from data (ids...) must not grow it forever
            cache.clear()
        cache[key] = decision
        return decision

    def _decide_name(self, name: str) -> int:
        words = _KEY_SPLIT.split(name)
        if name.casefold() in self.allow or not (
            self._key.search(name) or self._key.search("_".join(w.lower() for w in words if w))
        ):
            return _KEEP_ID if words[-1].lower() in _ID_WORDS else _KEEP
        if self._metric.search(name):
            return _SCRUB_UNLESS_NUMBER
        return _SCRUB

    def is_sensitive(self, key: str) -> bool:
        """Whether values under ``key`` are scrubbed (numbers aside, see ``METRIC_HINT``)."""
        decision = self._cache.get(key)
        if decision is None:
            decision = self._decide(key)
        return decision > 0

    # -- attributes ------------------------------------------------------------------

    def scrub_attrs(self, attrs: dict[str, Any]) -> dict[str, Any]:
        """``attrs`` with secrets replaced; nested dicts and lists are searched too.

        The input is never modified: it is returned itself when nothing needed
        scrubbing (the common case, checked without allocating), else a copy.
        """
        if type(attrs) is not dict:
            return self.scrub_value(attrs)  # type: ignore[no-any-return]
        try:
            if self._all_clean(attrs):
                return attrs
            return self._dict(attrs, 0)
        except RuntimeError:  # changed size during iteration: another thread still writes to it
            return self._dict(dict(attrs), 0)  # a C-level copy: atomic under the GIL

    def _all_clean(self, attrs: dict[str, Any]) -> bool:
        """The common case, checked without allocating: flat, no sensitive key, no secret-looking text."""
        cache = self._cache
        clean = self._clean
        text = self.scrub_values
        for k, v in attrs.items():
            decision = cache.get(k)
            if decision is None:
                decision = self._decide(k)
            cls = type(v)
            if decision <= 0:
                if cls is str:
                    if (
                        text
                        and len(v) >= _MIN_SECRET_TEXT
                        and v not in clean
                        and self._text(v, decision == _KEEP) is not v
                    ):
                        return False
                elif cls is not int and cls is not float and cls is not bool and v is not None:
                    return False  # containers (and anything unsanitised) take the thorough path
            elif cls is not bool and v is not None and (decision == _SCRUB or (cls is not int and cls is not float)):
                return False
        return True

    def payload_unchanged(self, payload: Any, encoded: bytes) -> bool:
        """Whether ``scrub_value(payload)`` would return ``payload`` itself, ``encoded`` being its JSON.

        A quick proof for the common case, so that payloads need no walk through every value: False
        means "maybe not", and the caller then scrubs. Text is judged on the JSON bytes, by the
        substrings ``scrub_text`` needs before it changes anything: a ``=``, a colon (beyond JSON's
        own, one per key; ``scheme://user:password@`` has two), ``earer``/``EARER``, ``-----BEGIN``,
        or digits that may be a card number (``_CARD_CLASSES``). Keys, and the names of
        ``(name, value)`` pairs, are checked by a walk through the containers alone, against the keys
        already found harmless.
        """
        if b"=" in encoded or b"earer" in encoded or b"EARER" in encoded or b"-----BEGIN" in encoded:
            return False
        cls = type(payload)
        if cls is dict or cls is list:
            if self._names_harmless(payload) != encoded.count(b":"):
                return False
        elif b":" in encoded:
            return False
        classes = encoded.translate(_CARD_CLASSES)
        # An escape in the JSON (\n, \u001f) puts a letter or digit before what follows it in the text.
        lone = _LONE_CARD_RUN if b"\\" not in encoded else _LONE_CARD_RUN[1:]
        return lone not in classes and _GROUPED_CARD_START not in classes

    def json_unchanged(self, encoded: bytes) -> bool:
        """``payload_unchanged`` of the payload whose JSON is ``encoded`` (msgspec's), read off the JSON alone.

        With the C speedups (``zoomtrace._native``) the JSON is not decoded: the byte tests, then the keys and pair
        names as they stand in it (one with an escape, or JSON that is not msgspec's compact kind, is "maybe not"):
        2.6–3 µs for the 1 KB benchmark payload instead of 12 (decode and walk). Without them, the payload is
        decoded for ``payload_unchanged``.
        """
        if _native is None:
            return self.payload_unchanged(_json_decode(encoded), encoded)
        if self._json_names is None:
            self._json_names = _native.key_cache()
        return bool(_native.json_unchanged(encoded, self._json_names, self._harmless, self._learn, MAX_NESTING))

    def _names_harmless(self, root: dict[str, Any] | list[Any]) -> int:
        """The number of keys in ``root`` (a decoded JSON container), or -1 if one of them is sensitive,
        or the first item of a two-item list that starts with a string (a pair), or a container is
        nested deep enough for ``_value`` to cut it."""
        harmless = self._harmless.keys()
        keys = 0
        stack: list[tuple[dict[str, Any] | list[Any], int]] = [(root, 0)]
        pop = stack.pop
        push = stack.append
        while stack:
            container, depth = pop()
            if depth >= MAX_NESTING - 1:
                return -1
            values: Any
            if type(container) is dict:
                if not container.keys() <= harmless and not self._learn(container):
                    return -1
                keys += len(container)
                values = container.values()
            else:
                values = container
                first = values[0] if len(values) == 2 else None
                if type(first) is str and first not in harmless and not self._learn((first,)):
                    return -1
            depth += 1
            for v in values:
                cls = type(v)
                if cls is dict or cls is list:
                    push((v, depth))
        return keys

    def _learn(self, names: Any) -> bool:
        """Whether none of ``names`` is sensitive; the harmless ones are remembered (bounded)."""
        harmless = self._harmless
        for name in names:
            if name not in harmless:
                decision = self._cache.get(name)
                if decision is None:
                    decision = self._decide(name)
                if decision > 0:
                    return False
                if len(harmless) >= _CACHE_MAX:
                    harmless.clear()
                if type(name) is str:  # text only: the C event path's look-ups must run no Python code
                    # Interned: a key written in the code is the same object, which the C event path's look-ups
                    # of a payload's keys then find by identity rather than by comparing text.
                    harmless[sys.intern(name)] = None
        return True

    def _text(self, value: str, cards: bool = True) -> str:
        """``scrub_text`` for attribute values, remembering short values that had nothing to scrub."""
        out = self.scrub_text(value, cards=cards)
        if out is value and cards and len(value) <= _CLEAN_MAX_CHARS:
            clean = self._clean
            if len(clean) >= _CACHE_MAX:
                clean.clear()
            clean[value] = None
        return out

    def scrub_value(self, value: Any) -> Any:
        """Any sanitised value (a payload, say): dicts in it are scrubbed by key, strings as text,
        ``[key, value]`` pairs by their key."""
        return self._value(value, 0)

    def _pair(self, pair: Sequence[Any]) -> Sequence[Any] | None:
        """A ``(name, value)`` pair -- headers as ASGI, Kafka and ``dict.items()`` give them -- with its
        value scrubbed when the name is sensitive; None when it is not."""
        key = pair[0]
        decision = self._cache.get(key)
        if decision is None:
            decision = self._decide(key)
        if decision <= 0:
            return None
        value = pair[1]
        new = _scrub_value(value, decision)
        if new is value:
            return pair
        return (key, new) if isinstance(pair, tuple) else [key, new]

    def _dict(self, d: dict[Any, Any], depth: int) -> dict[Any, Any]:
        out: dict[Any, Any] | None = None
        cache = self._cache
        for k, v in d.items():
            decision = cache.get(k)
            if decision is None:
                decision = self._decide(k)
            new = self._value(v, depth, decision == _KEEP) if decision <= 0 else _scrub_value(v, decision)
            if new is not v:
                if out is None:
                    out = dict(d)
                out[k] = new
        return d if out is None else out

    def _list(self, items: list[Any], depth: int, cards: bool = True) -> list[Any]:
        """Payload lists are long and mostly clean: copy only when an item changes."""
        if len(items) == 2 and type(items[0]) is str:
            pair = self._pair(items)
            if pair is not None:
                return pair  # type: ignore[return-value]
        out: list[Any] | None = None
        for i, v in enumerate(items):
            new = self._value(v, depth, cards)
            if new is not v:
                if out is None:
                    out = list(items)
                out[i] = new
        return items if out is None else out

    def _value(self, v: Any, depth: int, cards: bool = True) -> Any:
        """A value under a non-sensitive key (or in a list): search inside it (for card numbers too
        unless the key names an identifier)."""
        cls = type(v)
        if cls is str:
            return self._text(v, cards) if self.scrub_values and v not in self._clean else v
        if cls is int or cls is float or cls is bool or v is None:
            return v
        if cls is list and depth < MAX_NESTING:
            return self._list(v, depth + 1, cards)
        if isinstance(v, str):  # a str subclass (unsanitised input): judge its plain text
            return self._text(str.__str__(v), cards) if self.scrub_values else v
        if isinstance(v, (dict, list, tuple)):
            if depth >= MAX_NESTING:  # only reachable for unsanitised, cyclic input
                return SCRUBBED
            if isinstance(v, dict):
                return self._dict(v, depth + 1)
            if len(v) == 2 and isinstance(v[0], str):
                pair = self._pair(v)
                if pair is not None:
                    return pair
            items = [self._value(x, depth + 1, cards) for x in v]
            if all(a is b for a, b in zip(items, v, strict=True)):
                return v
            return items if isinstance(v, list) else tuple(items)
        return v

    # -- messages and raw data -------------------------------------------------------

    def scrub_args(self, template: str, args: Mapping[str, Any]) -> Mapping[str, Any]:
        """``args`` of ``template.format(**args)`` with the values its message would show as secrets
        replaced: fields named like a sensitive key (``"login {pw}"``) and fields in the place of a
        sensitive key's value (``"token={t}"``, ``'"password": "{p}"'``, ``"Authorization: Bearer {b}"``).
        ``args`` itself when there are none. Decisions are made once per template."""
        fields = self._templates.get(template)
        if fields is None:
            fields = self._template_fields(template)
            if len(self._templates) >= _CACHE_MAX:
                self._templates.clear()
            self._templates[template] = fields
        if not fields:
            return args
        out: dict[str, Any] | None = None
        for name, decision in fields.items():
            if name in args:
                value = args[name]
                new = _scrub_value(value, decision)
                if new is not value:
                    if out is None:
                        out = dict(args)
                    out[name] = new
        return args if out is None else out

    def _template_fields(self, template: str) -> dict[str, int]:
        try:
            parsed = list(_FORMATTER.parse(template))
        except (ValueError, TypeError):  # not a valid template: it is not formatted either
            return {}
        fields: dict[str, int] = {}
        before = ""
        for literal, field, _spec, _conversion in parsed:
            before += literal
            if field is None:
                continue
            root = _FIELD_ROOT.match(field)
            name = root.group() if root else ""
            decision = self._decide(name) if name else _KEEP
            if decision <= 0:
                decision = self._field_decision(before)
            if decision > 0 and fields.get(name) != _SCRUB:
                fields[name] = decision
            before += "x"  # the field's value, for the fields after it
        return fields

    def _field_decision(self, before: str) -> int:
        """How a value following ``before`` in a message is scrubbed (``_KEEP`` when it is not)."""
        if self.scrub_text(before + _PROBE, cards=False).endswith(_PROBE):
            return _KEEP
        if self.scrub_text(before + _PROBE_NUMBER, cards=False).endswith(_PROBE_NUMBER):
            return _SCRUB_UNLESS_NUMBER  # "tokens_used={n}": a number there is a measurement
        return _SCRUB

    def hide_values(self, text: str, attrs: Mapping[str, Any]) -> str:
        """``text`` without the values of ``attrs``' sensitive keys, where they occur in it verbatim: a
        message rendered from its attributes by a logging library (``logger.info("login {pw}", pw=...)``).
        Values shorter than four characters are not searched for."""
        cache = self._cache
        for key, value in attrs.items():
            cls = type(value)
            if cls is str:
                shown = value
            elif cls is int or cls is float:
                shown = str(value)
            else:
                continue
            if len(shown) < _HIDE_MIN or shown not in text:
                continue
            decision = cache.get(key)
            if decision is None:
                decision = self._decide(key)
            if decision > 0 and _scrub_value(value, decision) is not value:
                text = text.replace(shown, SCRUBBED)
        return text

    def scrub_bytes(self, data: bytes) -> bytes:
        """Raw data with secrets replaced when it is text: JSON is scrubbed as a value (keys and all) and
        written again (compact) if anything changed; other UTF-8 text (a form body, XML, a log line) as text.
        Binary data -- not UTF-8, or with control characters -- is returned as it is; so is ``data`` when
        nothing was found. A multi-byte character cut at the end (a truncated payload) stays as it was."""
        tail = b""
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            if exc.start < len(data) - 3 or exc.end != len(data):
                return data
            tail = data[exc.start :]
            text = data[: exc.start].decode("utf-8")
        if _CONTROL.search(text) is not None:
            return data
        if not tail and text.lstrip()[:1] in ("{", "["):
            try:
                value = _json_decode(data)
            except (msgspec.DecodeError, ValueError, OverflowError):
                pass
            else:
                new = self.scrub_value(value)
                return data if new is value else _json_encode(new)
        scrubbed = self.scrub_text(text)
        return data if scrubbed is text else scrubbed.encode("utf-8") + tail

    # -- text ------------------------------------------------------------------------

    def scrub_text(self, text: str, *, cards: bool = True) -> str:
        """``text`` with secrets replaced; ``text`` itself (same object) when none was found.

        Recognised: ``key=value`` / ``key: value`` / ``"key": "value"`` for
        sensitive keys (the key stays, the value goes; ``Authorization`` and
        ``Cookie`` headers lose the rest of their line), ``Bearer <token>``,
        ``scheme://user:password@``, PEM private-key blocks and (unless not ``cards``)
        card numbers (see ``_card_spans``). Cheap substring tests skip the regular
        expressions for most text.
        """
        if type(text) is not str:  # callers outside the type checker's reach
            exact = _exact_str(text)
            if exact is None:
                return text
            text = exact
        if len(text) < _MIN_SECRET_TEXT:
            return text
        out = text
        if "-----BEGIN" in out:
            out = _PEM.sub(_scrub_pem, out)
        if "://" in out and "@" in out:
            out = _URL_PASSWORD.sub(_scrub_url_password, out)
        if "=" in out or ":" in out or "earer" in out or "EARER" in out:
            folded = out.lower()
            if self._has_hint(folded, out):
                out = self._scrub_pairs(out)
                if "earer" in folded:
                    out = _BEARER.sub(_scrub_bearer, out)
        if cards and len(out) >= _CARD_MIN and _digit_count(out) >= _CARD_MIN:
            out = _scrub_cards(out)
        return text if out == text else out

    def _has_hint(self, folded: str, text: str) -> bool:
        """Whether a sensitive key may occur at all: one cheap test before the pair scan."""
        if self._default:
            return _default_hint(folded, text)
        return bool(self.patterns) or "bearer" in folded

    def _scrub_pairs(self, text: str) -> str:
        """Values of ``key <sep> value`` pairs whose key is sensitive, keys judged as in attributes."""
        search = _PAIR.search
        cache = self._cache
        pieces: list[str] = []
        last = pos = 0
        while (m := search(text, pos)) is not None:
            key = m.group("key")
            decision = cache.get(key)
            if decision is None:
                decision = self._decide(key)
            if decision <= 0 and key.lower() in _KEY_TAILS:
                decision = self._two_words(text, m.start(), key)
            value_start, end = m.span("value")
            if decision <= 0:
                pos = value_start  # a value may hold pairs of its own ("url=/x?token=abc")
                continue
            value = m.group("value")
            if decision == _SCRUB_UNLESS_NUMBER and _NUMBER.fullmatch(value):
                pos = end  # token_count=12: a measurement
                continue
            header = ":" in m.group("sep") and _is_header(key.lower())
            if m.group("scheme") and not header:
                value_start = m.start("scheme")  # "password=basic x": "basic" is the value
            if header and value[:1] not in ("'", '"', "\\"):
                line_end = _LINE_END.search(text, end)
                end = len(text) if line_end is None else line_end.start()
                value = text[value_start:end]
            elif value_start != m.start("value"):
                value = text[value_start:end]
            pieces.append(text[last:value_start])
            pieces.append(_replacement(value))
            last = pos = end
        if not pieces:
            return text
        pieces.append(text[last:])
        return "".join(pieces)

    def _two_words(self, text: str, start: int, key: str) -> int:
        """The decision for ``key`` with the word before it, when one space apart ("private key")."""
        if start < 2 or text[start - 1] != " ":
            return _KEEP
        first = start - 1
        while first > 0 and (text[first - 1].isalnum() or text[first - 1] in "_.-"):
            first -= 1
        if first == start - 1:
            return _KEEP
        name = text[first:start] + key
        decision = self._cache.get(name)
        return self._decide(name) if decision is None else decision


def _exact_str(text: object) -> str | None:
    """A plain copy of a ``str`` subclass (whose methods could hide its content); None for non-strings."""
    return str.__str__(text) if isinstance(text, str) else None


def _is_header(key: str) -> bool:
    """Headers whose whole value is credentials: several cookies, or scheme parameters."""
    return "cookie" in key or "authori" in key


def _replacement(value: str) -> str:
    """``SCRUBBED``, inside the value's own quotes so the text keeps its shape."""
    if value[:2] in ('b"', "b'"):  # a bytes repr
        prefix, rest = value[:1], value[1:]
    elif value[:2] in ('\\"', "\\'"):
        return value[:2] + SCRUBBED
    else:
        prefix, rest = "", value
    if rest[:1] in ('"', "'"):
        quote = rest[0]
        closed = len(rest) >= 2 and rest.endswith(quote)
        return prefix + quote + SCRUBBED + (quote if closed else "")
    return SCRUBBED


def _scrub_value(value: Any, decision: int) -> Any:
    """The value under a sensitive key: gone, unless it cannot be a secret."""
    cls = type(value)
    if value is None or cls is bool:
        return value
    if decision == _SCRUB_UNLESS_NUMBER and (cls is int or cls is float):
        return value
    return SCRUBBED
