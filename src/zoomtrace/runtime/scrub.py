"""Remove secrets from record attributes and text before anything is written.

Records end up in files, Kafka topics and UIs that more people can read than
the process that made them, so passwords, tokens, cookies, private keys and card
numbers are replaced by ``SCRUBBED`` on the worker thread, by default.

Decisions (false positives cost a value; false negatives leak a secret):

* Sensitive key words (``DEFAULT_PATTERNS``) match case-insensitively anywhere in
  a key, so compound keys (``db_password``, ``X-Api-Key``, ``sessionId``) count.
  Known harmless look-alikes are excluded by the patterns themselves:
  ``author``/``authority`` (not ``auth``), ``tokenizer``/``tokenize``.
* A key that is sensitive *and* names a measurement (``token_count``,
  ``tokens_used``, ``max_tokens``, ``input_tokens``, ``session_timeout``,
  ``password_length``; see ``METRIC_HINT``) keeps its value when the value is a
  number: such numbers are counts and durations, not secrets. A string under the
  same key is still scrubbed.
* ``True``/``False``/``None`` are never scrubbed (``has_password: True`` reveals
  nothing a reader needs protecting from).
* A sensitive key's value is replaced whole, containers included: a nested
  ``{"credentials": {...}}`` becomes ``{"credentials": "[scrubbed]"}``.
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
* Accepted false positives: ``secretary``, the ``PWD`` environment variable,
  ``auth_method: "password"``; in text, a free-standing id of 13-19 decimal
  digits that passes the card checks (it cannot be told from a card).
* Not recognised in text: secrets without a key (``hunter2`` alone), key and
  value separated only by a space (``--password hunter2``), natural language.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from typing import Any, Final

__all__ = ["DEFAULT_PATTERNS", "METRIC_HINT", "SCRUBBED", "Scrubber"]

#: Replaces a secret. It says a value was removed without echoing any part of it.
SCRUBBED: Final = "[scrubbed]"

#: Regular-expression fragments searched (case-insensitively) anywhere in a key.
DEFAULT_PATTERNS: Final[tuple[str, ...]] = (
    r"pass(?:word|wd|phrase)",
    r"pwd",
    r"secret",
    r"token(?!i[sz])",  # not tokenizer / tokenise
    r"api[-_. ]?key",
    r"authori[sz]ation",
    r"auth(?!or)",  # not author / authority
    r"cookie",  # and set-cookie
    r"session",
    r"credential",
    r"private[-_. ]?key",
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
_MAX_NESTING: Final = 100

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
_KEY_CHARS: Final = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")


def _kv_pattern(patterns: str) -> str:
    """``key <sep> value`` where key contains a sensitive word; the value alone is replaced."""
    return (
        rf"(?P<key>(?:{patterns})[\w.-]*)"
        r"(?P<sep>\\?[\"']?[ \t]*(?:=>|[:=])[ \t]*)"
        rf"(?P<scheme>(?:{_SCHEMES})[ \t]+)?"
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


def _default_hint(f: str) -> bool:
    """``DEFAULT_PATTERNS`` (and "bearer") can only match lower-cased text containing one of these.

    Substring tests are several times faster than the equivalent regex search in
    CPython; tests check every default pattern against this function.
    """
    return (
        "pass" in f
        or "pwd" in f
        or "secret" in f
        or "token" in f
        or "key" in f
        or "auth" in f
        or "cookie" in f
        or "session" in f
        or "credential" in f
        or "card" in f
        or "cvv" in f
        or "cvc" in f
        or "bearer" in f
        or ("cc" in f and ("num" in f or "no" in f))
    )


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
        # Case-insensitive regexes are ~10x slower in CPython than plain ones on
        # lower-cased text. Lower-casing keeps positions only for ASCII text, and
        # only patterns without upper-case letters (``\S``, ``\D``...) survive it.
        self._lowercase_ok = all(p == p.lower() for p in patterns)
        self._default = patterns == DEFAULT_PATTERNS
        kv = _kv_pattern(joined)
        self._kv_folded = re.compile(kv) if self._lowercase_ok else None
        self._kv = re.compile(kv, re.IGNORECASE)
        hint = f"{joined}|bearer"
        self._hint = re.compile(hint) if self._lowercase_ok else re.compile(hint, re.IGNORECASE)
        self._cache: dict[str, int] = {}
        #: Short string values already found free of secrets: values repeat ("GET", "eu-west-1") like keys do.
        self._clean: dict[str, None] = {}

    def __repr__(self) -> str:
        return f"Scrubber(patterns={list(self.patterns)!r}, allow={sorted(self.allow)!r})"

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
        if name.casefold() in self.allow or not self._key.search(name):
            words = _KEY_SPLIT.split(name)
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
        """Any sanitised value (a payload, say): dicts in it are scrubbed by key, strings as text."""
        return self._value(value, 0)

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
        if cls is list and depth < _MAX_NESTING:
            return self._list(v, depth + 1, cards)
        if isinstance(v, str):  # a str subclass (unsanitised input): judge its plain text
            return self._text(str.__str__(v), cards) if self.scrub_values else v
        if isinstance(v, (dict, list, tuple)):
            if depth >= _MAX_NESTING:  # only reachable for unsanitised, cyclic input
                return SCRUBBED
            if isinstance(v, dict):
                return self._dict(v, depth + 1)
            items = [self._value(x, depth + 1, cards) for x in v]
            if all(a is b for a, b in zip(items, v, strict=True)):
                return v
            return items if isinstance(v, list) else tuple(items)
        return v

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
            folded = out.lower() if out.isascii() else out.casefold()
            if self._has_hint(folded, out):
                out = self._scrub_pairs(out, folded)
                if "earer" in folded:
                    out = _BEARER.sub(_scrub_bearer, out)
        if cards and len(out) >= _CARD_MIN and _digit_count(out) >= _CARD_MIN:
            out = _scrub_cards(out)
        return text if out == text else out

    def _has_hint(self, folded: str, text: str) -> bool:
        """Whether a sensitive key word occurs at all: one cheap test before the expensive regex."""
        if self._default:
            return _default_hint(folded)
        return self._hint.search(folded if self._lowercase_ok else text) is not None

    def _scrub_pairs(self, text: str, folded: str) -> str:
        if self._kv_folded is not None and text.isascii():
            matches = self._kv_folded.finditer(folded)  # same positions as in text
        else:
            matches = self._kv.finditer(text)
        pieces: list[str] = []
        last = 0
        for m in matches:
            start = m.start("key")
            if start < last:  # inside a value already removed (a header's rest of line)
                continue
            while start > last and text[start - 1] in _KEY_CHARS:
                start -= 1
            key = text[start : m.end("key")]
            value = text[m.start("value") : m.end("value")]
            if key.casefold() in self.allow:
                continue
            if _NUMBER.fullmatch(value) and self._metric.search(key):
                continue  # token_count=12: a measurement
            header = ":" in m.group("sep") and _is_header(key.casefold())
            value_start = m.start("value")
            if m.group("scheme") and not header:
                value_start = m.start("scheme")  # "password=basic x": "basic" is the value
            end = m.end("value")
            if header and value[:1] not in ("'", '"', "\\"):
                newline = text.find("\n", end)
                end = len(text) if newline < 0 else newline
                value = text[value_start:end]
            elif value_start != m.start("value"):
                value = text[value_start:end]
            pieces.append(text[last:value_start])
            pieces.append(_replacement(value))
            last = end
        if not pieces:
            return text
        pieces.append(text[last:])
        return "".join(pieces)


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
