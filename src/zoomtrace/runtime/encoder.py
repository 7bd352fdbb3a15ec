"""The background encoder: turns what the caller captured into complete records.

Runs on the pipeline's worker thread. Here messages are rendered, attributes made
JSON-safe and scrubbed of secrets, code objects resolved to repository-relative
files with their commit and dirty flag, and exceptions to frames. The per-code
and per-file caches make the steady state a few dictionary lookups.
"""

from __future__ import annotations

import hashlib
import logging
import re
import string
import time
import traceback
from collections.abc import Callable, Mapping
from operator import itemgetter
from types import CodeType
from typing import Any, Final

import msgspec

from zoomtrace._native import speedups
from zoomtrace.capture import items
from zoomtrace.capture.context import SpanContext
from zoomtrace.capture.span import Span
from zoomtrace.runtime.provenance import Location, Provenance, snapshot
from zoomtrace.runtime.sanitize import (
    Limits,
    json_encode,
    plain_json_encode,
    safe_repr,
    safe_str,
    sanitize_attrs,
    sanitize_message,
    sanitize_payload_json,
    truncate,
)
from zoomtrace.runtime.scrub import _CARD_MIN, MAX_NESTING, Scrubber
from zoomtrace.wire.propagation import TRACE_STATE_ATTR, format_tracestate
from zoomtrace.wire.record import Code, Error, Frame, Link, Record, uuid7

#: Attributes every ``logging.LogRecord`` has; anything else came from ``extra=``.
_LOGRECORD_FIELDS = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}
MAX_CACHED_TEMPLATES = 4096
_PLAIN_LOGRECORD_SIZE = len(logging.makeLogRecord({}).__dict__)
_Span: Final = Span
_FORMATTER: Final = string.Formatter()
#: Format specs that render a number with nothing but digits, signs, separators, exponents and padding
#: (no fill character, which could be anything, ``=`` or ``:`` say; no ``n``, whose separators come from
#: the locale).
_NUMERIC_SPEC: Final = frozenset("0123456789.,_+- #eEfFgGdoxXb%")
_PLAIN_CONVERSIONS: Final = (None, "r", "s", "a")
_ASCII_DIGITS: Final = frozenset("0123456789")
#: What ``Encoder._plain_attrs`` finds: numbers, bools and None only; or clean text as well.
_NUMBERS: Final = 1
_WITH_TEXT: Final = 2
#: Longer attribute values are not remembered as clean (nor taken by the fused paths).
_CLEAN_STRING_MAX: Final = 128
#: A ``%`` conversion of a ``logging`` message (its conversion character is the group); ``%%`` is not one.
_PERCENT_SPEC: Final = re.compile(r"%(?:\([^)]*\))?[#0\- +]*(?:\*|\d+)?(?:\.(?:\*|\d*))?[hlL]?([diouxXeEfFgGcrsa])")
#: The ``%`` conversions that render a number as digits, signs, points and exponents (not ``%c``).
_PERCENT_NUMERIC: Final = frozenset("diouxXeEfFgGrsa")
#: What ``Scrubber.scrub_text`` looks for besides card numbers and "bearer": pairs (``=``, ``:``), URLs
#: with passwords (``://``, ``@``), PEM blocks (``-----BEGIN``).
_SCRUB_HINTS: Final = ("=", ":", "@", "/", "-----")
#: msgpack carries at most 64-bit integers: attribute values beyond take the careful path.
_INT_MIN: Final = -(2**63)
_INT_MAX: Final = 2**64 - 1


class Encoder:
    def __init__(self, node_id: str, provenance: Provenance, scrubber: Scrubber | None, limits: Limits) -> None:
        self.node_id = node_id
        self.provenance = provenance
        self.scrubber = scrubber
        self.limits = limits
        # Code structs are immutable once built, so records share them.
        #: By ``(id(code), line)``: hashing a code object hashes its bytecode's constants, every time.
        self._lines: dict[tuple[int, int], Code] = {}
        #: The code objects ``_lines`` names, kept alive so that no other object can take their ids.
        self._code_objects: dict[int, CodeType] = {}
        #: ``Code`` by ``(id(code), instruction offset)``: where ``zt.log`` was called (``_log``).
        self._offsets: dict[tuple[int, int], Code] = {}
        self._places: dict[tuple[str, int, str], Code] = {}
        self._templates: dict[str, str] = {}
        #: Per template: -1 when its records take the careful path, else the message length from which
        #: their message is still scrubbed (``_plain_template``).
        self._plain_templates: dict[str, int] = {}
        #: Per plain template whose fields are all ``{name}``: the same message made by ``%`` (``_renderer``).
        self._renderers: dict[str, _Renderer] = {}
        #: Attribute keys that are short ASCII ``str`` and not sensitive: their numbers, bools, None and
        #: clean text are recorded as they are (``sanitize_attrs`` and ``Scrubber.scrub_attrs`` keep them).
        self._plain_keys: set[str] = set()
        #: Attribute values that are short ASCII text free of secrets (``_clean_string``).
        self._clean_strings: set[str] = set()
        #: As ``_plain_templates``, for ``logging``'s ``%`` templates.
        self._plain_percents: dict[str, int] = {}
        self._snapshotted: set[str] = set()
        #: Records produced as a side effect (new repositories, file snapshots), written with the batch.
        self.extras: list[Record] = []
        self._dispatch = {
            items.LOG: self._log,
            items.STDLOG: self._stdlog,
            items.FOREIGN: self._foreign,
            items.EVENT: self._event,
            items.RAW: self._raw,
            items.RECORD: _prebuilt,
        }
        #: What the pipeline calls for each item: ``__call__``, or the same in C where the speedups are built.
        self.encode: Callable[[Any], Record | None] = self.__call__ if speedups is None else self._build_in_c()

    def _build_in_c(self) -> Callable[[Any], Record | None]:
        """Puts the C builders of the fused paths in the dispatch table and returns the C dispatch
        (docs/ARCHITECTURE.md, "Native code"). Each reads this encoder's caches and settings, fixed from here
        on, and hands what they do not know plain to the Python method it stands for."""
        assert speedups is not None
        scrubber, limits = self.scrubber, self.limits
        scrub_text = scrubber.scrub_text if scrubber is not None else None
        plain = (self._plain_keys, self._clean_strings, limits.max_items)
        self._dispatch[items.LOG] = speedups.LogBuilder(
            self._log,
            Record,
            self.node_id,
            self._offsets,
            self._plain_templates,
            self._renderers,
            *plain,
            limits.max_message,
            scrub_text,
        )
        self._dispatch[items.STDLOG] = speedups.StdlogBuilder(
            self._stdlog,
            Record,
            self.node_id,
            logging.LogRecord,
            self._places,
            self._plain_percents,
            scrub_text,
            _PLAIN_LOGRECORD_SIZE,
            limits.max_message,
        )
        self._dispatch[items.EVENT] = speedups.EventBuilder(
            self._event,
            Record,
            self.node_id,
            self._offsets,
            *plain,
            json_encode,
            msgspec.Raw,
            scrubber.json_unchanged if scrubber is not None else None,
            limits.max_payload_bytes,
            plain_json_encode,
            scrubber.harmless_names if scrubber is not None else None,
            MAX_NESTING,
        )
        build_span = speedups.SpanBuilder(self._span, Record, self.node_id, self._lines, *plain)
        dispatch: Callable[[Any], Record | None] = speedups.Dispatch(_Span, build_span, self._dispatch)
        return dispatch

    def __call__(self, item: Any) -> Record | None:
        """The record for one captured item: a ``Span`` itself (the most common item, and one object
        fewer per span), else a tuple tagged by its first element (``zoomtrace.capture.items``)."""
        if type(item) is _Span:
            return self._span(item)
        build = self._dispatch.get(item[0])
        return build(item) if build is not None else None

    def take_extras(self) -> list[Record]:
        extras, self.extras = self.extras, []
        for repo in self.provenance.take_new_repos():
            extras.append(self.node_record("repo", repo.as_dict()))
        return extras

    def node_record(self, type_: str, attrs: dict[str, Any], *, ts_ns: int | None = None, **fields: Any) -> Record:
        ts = time.time_ns() if ts_ns is None else ts_ns
        return Record(id=uuid7(ts), kind="node", type=type_, ts_ns=ts, node_id=self.node_id, attrs=attrs, **fields)

    # -- provenance ------------------------------------------------------------------

    def _where(self, filename: str) -> Location:
        loc = self.provenance.locate(filename)
        if loc.dirty and loc.path not in self._snapshotted:
            self._snapshotted.add(loc.path)
            snap = snapshot(loc.path)
            attrs: dict[str, Any] = {"file": loc.file, "repo": loc.repo.root if loc.repo else None}
            if snap is None:
                attrs["problem"] = "unreadable or too large to snapshot"
                self.extras.append(self.node_record("snapshot", attrs))
            else:
                attrs["sha256"] = snap[0]
                self.extras.append(self.node_record("snapshot", attrs, payload=snap[1]))
        return loc

    def code(self, code: CodeType, line: int) -> Code:
        """``Code`` for a line of a code object; cached, since a program has finitely many lines."""
        cached = self._lines.get((id(code), line))
        if cached is None:
            loc = self._where(code.co_filename)
            cached = self._lines[(id(code), line)] = Code(loc.file, line, code.co_qualname, loc.commit, loc.dirty)
            self._code_objects[id(code)] = code
        return cached

    def code_at_offset(self, code: CodeType, offset: int) -> Code:
        """``Code`` for an instruction of a code object (a frame's ``f_lasti``); cached like ``code``."""
        cached = self._offsets.get((id(code), offset))
        if cached is None:
            cached = self._offsets[(id(code), offset)] = self.code(code, _line_at(code, offset))
        return cached

    def _code_at(self, filename: str, line: int, function: str) -> Code:
        cached = self._places.get((filename, line, function))
        if cached is None:
            loc = self._where(filename)
            cached = self._places[(filename, line, function)] = Code(loc.file, line, function, loc.commit, loc.dirty)
        return cached

    def error(self, exc: BaseException) -> Error:
        frames = [
            Frame(self._where(fs.filename).file, fs.lineno or 0, fs.name)
            for fs in traceback.extract_tb(exc.__traceback__)
        ]
        return Error(type(exc).__qualname__, self._text(_safe_str(exc)), frames)

    # -- values ----------------------------------------------------------------------

    def _text(self, text: str) -> str:
        text = truncate(text, self.limits.max_message)
        return self.scrubber.scrub_text(text) if self.scrubber else text

    def _template(self, template: str) -> str:
        """Templates are few and repeat: scrub each once (``"token={t}"`` hides nothing, ``"token=abc {x}"`` does)."""
        clean = self._templates.get(template)
        if clean is None:
            clean = self._text(template)
            if len(self._templates) < MAX_CACHED_TEMPLATES:
                self._templates[template] = clean
        return clean

    def _attrs(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if not attrs:
            return attrs
        clean = sanitize_attrs(attrs, self.limits)
        return self.scrubber.scrub_attrs(clean) if self.scrubber else clean

    # -- builders --------------------------------------------------------------------

    def _log_record(
        self,
        ts: int,
        code: Code,
        logger: str | None,
        level: str,
        message: str,
        template: str | None,
        attrs: dict[str, Any],
        exc: BaseException | None,
        parent: Span | SpanContext | None,
    ) -> Record:
        """The one way a log line from any source (zt.log, logging, structlog, loguru) becomes a record.

        A message rendered from its attributes shows their values: those of sensitive keys are
        taken out of it too (``Scrubber.hide_values``), whatever library rendered it."""
        text = self._text(message)
        clean = sanitize_attrs(attrs, self.limits) if attrs else attrs
        if self.scrubber is not None and clean:
            scrubbed = self.scrubber.scrub_attrs(clean)
            if scrubbed is not clean:
                text = self.scrubber.hide_values(text, clean)
            clean = scrubbed
        record = Record(
            id=uuid7(ts),
            kind="log",
            type=_label(logger) if logger else "app",
            ts_ns=ts,
            node_id=self.node_id,
            code=code,
            level=level,
            message=text,
            template=self._template(template) if template is not None else None,
            attrs=clean,
            error=self.error(exc) if exc is not None else None,
        )
        return self._with_parent(record, parent)

    def _log(self, item: tuple[Any, ...]) -> Record:
        """A ``zt.log`` line. The common case -- a plain template (``_plain_template``), plain attributes
        (``_plain_attrs``: numbers, bools, None, short clean text under plain keys), no exception -- is
        built here in one pass; the rest (containers, long or secret text, sensitive keys, exceptions)
        by ``_log_careful``."""
        _, ts, code, offset, logger, level, template, attrs, parent, exc = item
        if type(template) is not str or exc is not None:
            return self._log_careful(item)
        scrub_from = self._plain_templates.get(template)
        if scrub_from is None:
            scrub_from = self._plain_template(template)
        if scrub_from < 0:
            return self._log_careful(item)
        if attrs:
            kind = self._plain_attrs(attrs)
            if not kind:
                return self._log_careful(item)
            if kind == _WITH_TEXT:
                scrub_from = 0  # text in the message: it is scrubbed whatever its length
            renderer = self._renderers.get(template)
            try:
                if renderer is None:
                    message = template.format_map(attrs)  # as format(**attrs), without copying attrs
                else:
                    percent, values, one = renderer
                    message = percent % ((values(attrs),) if one else values(attrs))
            except Exception:  # a template that does not fit its attrs: the careful path says so
                return self._log_careful(item)
            if len(message) > self.limits.max_message:
                return self._log_careful(item)
        else:
            message = template
        lines = self._offsets.get((id(code), offset))
        if lines is None:
            lines = self.code_at_offset(code, offset)
        scrubber = self.scrubber
        if scrubber is not None and len(message) >= scrub_from:
            message = scrubber.scrub_text(message)  # numbers can make a card number, say
        if parent is None:
            trace_id = span_id = on_behalf_of = None
        else:
            trace_id, span_id, on_behalf_of = parent.trace_id, parent.span_id, parent.on_behalf_of
            if on_behalf_of is not None:
                on_behalf_of = _label(on_behalf_of)
        return Record(
            id=uuid7(ts),
            kind="log",
            type=logger if type(logger) is str and logger else (_label(logger) if logger else "app"),
            ts_ns=ts,
            node_id=self.node_id,
            trace_id=trace_id,
            span_id=span_id,
            on_behalf_of=on_behalf_of,
            code=lines,
            level=level,
            message=message,
            template=template if attrs else None,
            attrs=attrs,
        )

    def _plain_template(self, template: str) -> int:
        """How a template's records may take the fused path: -1 when they may not, else the message
        length from which the rendered message must still go through ``Scrubber.scrub_text``.

        Plain: the template fits the message limit, scrubbing leaves it as it is and none of its fields
        is one whose value the scrubber would hide (``"login {pw}"``, ``"token={t}"``; asked with a probe
        value for every field, ``scrub_args`` returns the probe itself). The threshold: ``_scrub_threshold``.
        Once ``MAX_CACHED_TEMPLATES`` are known, new ones are not looked at (-1): templates made from data
        (an f-string passed as the template) would have each record pay for the analysis.
        """
        if len(self._plain_templates) >= MAX_CACHED_TEMPLATES:
            return -1
        plain = len(template) <= self.limits.max_message and self._template(template) is template
        threshold = 0 if plain else -1
        if plain and self.scrubber is not None:
            try:
                parsed = list(_FORMATTER.parse(template))
            except ValueError:  # not a valid template: the careful path records why
                threshold = -1
            else:
                probe = {_field_root(f): "probe" for _, f, _, _ in parsed if f is not None}
                if self.scrubber.scrub_args(template, probe) is not probe:
                    threshold = -1
                else:
                    numeric = all(
                        field is None or (conversion in _PLAIN_CONVERSIONS and _NUMERIC_SPEC.issuperset(spec or ""))
                        for _, field, spec, conversion in parsed
                    )
                    threshold = _scrub_threshold("".join(text for text, _, _, _ in parsed), numeric)
        self._plain_templates[template] = threshold
        if threshold >= 0:
            renderer = _renderer(template)
            if renderer is not None:
                self._renderers[template] = renderer
        return threshold

    def _plain_attrs(self, attrs: dict[str, Any]) -> int:
        """How ``attrs`` may skip ``sanitize_attrs`` and ``Scrubber.scrub_attrs``, which would return it
        as it is: 0 when it may not, ``_NUMBERS`` when it holds only numbers, bools and None under plain
        keys, ``_WITH_TEXT`` when it also holds short strings known to be free of secrets."""
        if len(attrs) > self.limits.max_items:
            return 0
        keys = self._plain_keys
        strings = self._clean_strings
        kind = _NUMBERS
        try:
            for k, v in attrs.items():
                cls = type(v)
                if cls is str:
                    if v not in strings and not self._clean_string(v):
                        return 0
                    kind = _WITH_TEXT
                elif not (
                    (cls is int and _INT_MIN <= v <= _INT_MAX)
                    or (cls is float and v - v == 0.0)  # not nan or inf
                    or cls is bool
                    or v is None
                ):
                    return 0
                if k not in keys and not self._plain_key(k):
                    return 0
        except RuntimeError:  # changed size during iteration: another thread still writes to it
            return 0
        return kind

    def _clean_string(self, value: str) -> bool:
        """Short ASCII text that scrubbing leaves as it is (card numbers included); remembered when so."""
        if len(value) > _CLEAN_STRING_MAX or len(value) > self.limits.max_attr_value or not value.isascii():
            return False
        scrubber = self.scrubber
        if scrubber is not None and scrubber.scrub_values and scrubber.scrub_text(value) is not value:
            return False
        if len(self._clean_strings) >= MAX_CACHED_TEMPLATES:  # values made from data must not grow it forever
            self._clean_strings.clear()
        self._clean_strings.add(value)
        return True

    def _plain_key(self, key: object) -> bool:
        """A short ASCII ``str`` the scrubber does not take for a secret's name; remembered when so."""
        if type(key) is not str or len(key) > self.limits.max_attr_value or not key.isascii():
            return False
        if self.scrubber is not None and self.scrubber.is_sensitive(key):
            return False
        if len(self._plain_keys) < MAX_CACHED_TEMPLATES:
            self._plain_keys.add(key)
        return True

    def _log_careful(self, item: tuple[Any, ...]) -> Record:
        _, ts, code, offset, logger, level, template, attrs, parent, exc = item
        where = self.code_at_offset(code, offset)
        if type(template) is not str:  # zt.log.info(obj): the object's text is the message
            message = sanitize_message(template, self.limits)
            return self._log_record(ts, where, logger, level, message, None, attrs, exc, parent)
        if attrs and self.scrubber is not None:
            # "login {pw}", "token={t}": the values a message would show as secrets go before it is rendered.
            attrs = self.scrubber.scrub_args(template, attrs)
        try:
            message = template.format(**attrs) if attrs else template
        except Exception:  # a template that does not fit its attrs still gets recorded
            message = f"{template} [unformattable with {sorted(attrs)}]"
        return self._log_record(ts, where, logger, level, message, template if attrs else None, attrs, exc, parent)

    def _stdlog(self, item: tuple[Any, ...]) -> Record:
        """A ``logging`` record. The common case -- a plain ``%`` template (``_plain_percent``), numbers,
        bools, None or ASCII text as arguments, no ``extra=`` and no exception -- is built here in one
        pass; the rest by ``_stdlog_careful``."""
        _, rec, parent = item
        msg, args = rec.msg, rec.args
        if (
            len(rec.__dict__) != _PLAIN_LOGRECORD_SIZE
            or rec.exc_info
            or type(msg) is not str
            or type(args) is not tuple
        ):
            return self._stdlog_careful(item)
        scrub_from = self._plain_percents.get(msg)
        if scrub_from is None:
            scrub_from = self._plain_percent(msg)
        if scrub_from < 0:
            return self._stdlog_careful(item)
        if args:
            for v in args:
                cls = type(v)
                if cls is str and v.isascii():
                    scrub_from = 0  # text in the message: it is scrubbed whatever its length
                elif not (
                    (cls is int and _INT_MIN <= v <= _INT_MAX)
                    or (cls is float and v - v == 0.0)  # not nan or inf
                    or cls is bool
                    or v is None
                ):
                    return self._stdlog_careful(item)
            try:
                message = msg % args  # what rec.getMessage() does with a str msg
            except Exception:  # arguments that do not fit: the careful path says so
                return self._stdlog_careful(item)
            if len(message) > self.limits.max_message:
                return self._stdlog_careful(item)
        else:
            message = msg
        scrubber = self.scrubber
        if scrubber is not None and len(message) >= scrub_from:
            message = scrubber.scrub_text(message)  # numbers can make a card number, say
        code = self._places.get((rec.pathname, rec.lineno, rec.funcName))
        if code is None:
            code = self._code_at(rec.pathname, rec.lineno, rec.funcName or "?")
        if parent is None:
            trace_id = span_id = on_behalf_of = None
        else:
            trace_id, span_id, on_behalf_of = parent.trace_id, parent.span_id, parent.on_behalf_of
            if on_behalf_of is not None:
                on_behalf_of = _label(on_behalf_of)
        name = rec.name
        ts = int(rec.created * 1e9)
        return Record(
            id=uuid7(ts),
            kind="log",
            type=name if type(name) is str and name else (_label(name) if name else "app"),
            ts_ns=ts,
            node_id=self.node_id,
            trace_id=trace_id,
            span_id=span_id,
            on_behalf_of=on_behalf_of,
            code=code,
            level=rec.levelname,
            message=message,
            template=msg if args else None,
        )

    def _plain_percent(self, msg: str) -> int:
        """``_plain_template`` for a ``logging`` (``%``) template: -1 when its records take the careful
        path, else the message length from which the message is scrubbed (``_scrub_threshold``)."""
        if len(self._plain_percents) >= MAX_CACHED_TEMPLATES:  # as in ``_plain_template``
            return -1
        threshold = -1
        if len(msg) <= self.limits.max_message and self._template(msg) is msg:
            threshold = 0
            if self.scrubber is not None:
                parts = msg.split("%%")  # "%%" is a "%" of the literal text
                pieces = [_PERCENT_SPEC.sub("", part) for part in parts]
                # A "%" left over is a conversion the pattern does not know: no shortcut for it.
                numeric = not any("%" in piece for piece in pieces) and all(
                    c in _PERCENT_NUMERIC for part in parts for c in _PERCENT_SPEC.findall(part)
                )
                threshold = _scrub_threshold("%".join(pieces), numeric)
        self._plain_percents[msg] = threshold
        return threshold

    def _stdlog_careful(self, item: tuple[Any, ...]) -> Record:
        _, rec, parent = item
        message = _stdlib_message(rec)
        fields = rec.__dict__
        extra = (
            {}
            if len(fields) == _PLAIN_LOGRECORD_SIZE
            else {k: v for k, v in fields.items() if k not in _LOGRECORD_FIELDS}
        )
        exc = rec.exc_info[1] if rec.exc_info else None
        return self._log_record(
            int(rec.created * 1e9),
            self._code_at(rec.pathname, rec.lineno, rec.funcName or "?"),
            rec.name,
            rec.levelname,
            message,
            rec.msg if isinstance(rec.msg, str) and rec.args else None,
            extra,
            exc,
            parent,
        )

    def _foreign(self, item: tuple[Any, ...]) -> Record:
        _, ts, filename, line, function, logger, level, message, attrs, parent, exc = item
        code = self._code_at(filename, line, function)
        return self._log_record(ts, code, logger, level, safe_str(message), None, attrs, exc, parent)

    def _span(self, span: Span) -> Record:
        code = self._lines.get((id(span.code), span.line))
        if code is None:
            code = self.code(span.code, span.line)
        links = span.links
        attrs = span.attrs
        if span.tracestate:  # a continued remote trace's vendor state: OTLP export gives it back as trace_state
            attrs = {**attrs, TRACE_STATE_ATTR: format_tracestate(span.tracestate)}
        on_behalf_of = span.on_behalf_of
        error = span.error
        return Record(
            id=uuid7(span.start_ns),
            kind="span",
            type=span.name if type(span.name) is str else _label(span.name),
            ts_ns=span.start_ns,
            end_ns=span.end_ns,
            node_id=self.node_id,
            trace_id=span.trace_id,
            span_id=span.span_id,
            parent_span_id=span.parent_span_id,
            links=[Link(t, s) for t, s in links] if links else [],
            on_behalf_of=_label(on_behalf_of) if on_behalf_of is not None else None,
            code=code,
            attrs=attrs if not attrs or self._plain_attrs(attrs) else self._attrs(attrs),
            status=span.status,
            error=self.error(error) if error is not None else None,
            cpu_ns=span.cpu_ns,
            thread=getattr(span, "thread", None),
        )

    def _event(self, item: tuple[Any, ...]) -> Record:
        _, record_id, ts, code, offset, type_, obj, sources, attrs, parent = item
        # The payload is stored as the JSON made for it (``msgspec.Raw``), which sinks write as it is; only
        # one the scrubber may change is decoded into objects, and scrubbed.
        scrubber = self.scrubber
        payload, encoded = sanitize_payload_json(obj, self.limits, decode=False)
        if encoded is not None and (scrubber is None or scrubber.json_unchanged(encoded)):
            if type(payload) is not msgspec.Raw:  # the careful sanitiser's value: kept as its JSON too
                payload = msgspec.Raw(encoded)
        elif scrubber is not None:
            payload = scrubber.scrub_value(msgspec.json.decode(payload) if type(payload) is msgspec.Raw else payload)
        # As in ``_log``: the caches read and the parent's fields taken inline (``_with_parent``'s work, without
        # a call per event).
        where = self._offsets.get((id(code), offset))
        if where is None:
            where = self.code_at_offset(code, offset)
        if parent is None:
            trace_id = span_id = on_behalf_of = None
        else:
            trace_id, span_id, on_behalf_of = parent.trace_id, parent.span_id, parent.on_behalf_of
            if on_behalf_of is not None:
                on_behalf_of = _label(on_behalf_of)
        return Record(
            id=record_id,
            kind="event",
            type=type_ if type(type_) is str and type_ else (_label(type_) if type_ else _type_name(obj)),
            ts_ns=ts,
            node_id=self.node_id,
            trace_id=trace_id,
            span_id=span_id,
            on_behalf_of=on_behalf_of,
            code=where,
            attrs=attrs if not attrs or self._plain_attrs(attrs) else self._attrs(attrs),
            payload=payload,
            sources=[_label(source) for source in sources] if sources else [],
        )

    def _raw(self, item: tuple[Any, ...]) -> Record:
        _, record_id, ts, code, offset, type_, data, fmt, attrs, parent = item
        info: dict[str, Any] = {}
        if not isinstance(data, bytes):  # neither bytes-like nor text: its repr is kept, and says so
            info["raw.unserialisable"] = _type_name(data)
            data = safe_repr(data).encode("utf-8", "surrogatepass")
        size = len(data)
        info.update({"raw.format": _label(fmt), "raw.size": size, "raw.sha256": hashlib.sha256(data).hexdigest()})
        if size > self.limits.max_payload_bytes:
            data = data[: self.limits.max_payload_bytes]
            info["raw.truncated"] = True
        if self.scrubber is not None:
            stored = self.scrubber.scrub_bytes(data)
            if stored is not data:
                # Digest and size of what is stored: the original's would let a reader test guesses of the secret.
                data = stored
                info.update(
                    {"raw.size": len(data), "raw.sha256": hashlib.sha256(data).hexdigest(), "raw.scrubbed": True}
                )
        return self._with_parent(
            Record(
                id=record_id,
                kind="raw",
                type=_label(type_),
                ts_ns=ts,
                node_id=self.node_id,
                code=self.code_at_offset(code, offset),
                attrs={**self._attrs(attrs), **info},
                payload=data,
            ),
            parent,
        )

    @staticmethod
    def _with_parent(record: Record, parent: Span | SpanContext | None) -> Record:
        if parent is not None:
            record.trace_id = parent.trace_id
            record.span_id = parent.span_id
            on_behalf_of = parent.on_behalf_of
            record.on_behalf_of = _label(on_behalf_of) if on_behalf_of is not None else None
        return record


def _scrub_threshold(literal: str, numeric: bool) -> int:
    """The length from which a message made of ``literal`` text and numbers must be scrubbed.

    Rendered with numbers, bools and None only (all the fused paths take), a message holds what its
    literal text holds plus ``-0123456789.e+`` (hex digits and ``x``/``o``/``b`` with such specs) and
    the letters of True/False/None. When the literal text has none of what ``Scrubber.scrub_text``
    looks for (``=``, ``:``, ``@``, ``/``, ``-----``, the "arer" of "bearer") and every field has a
    plain numeric spec (``numeric``), only a card number could appear, and that takes ``_CARD_MIN``
    digits: a message shorter than the literal's non-digits plus that cannot hold one. Any other
    message is always scrubbed (threshold 0).
    """
    if not numeric or any(hint in literal for hint in _SCRUB_HINTS) or "arer" in literal.lower():
        return 0
    return _CARD_MIN + len(literal) - sum(c in _ASCII_DIGITS for c in literal)


#: A template's ``%`` twin, the function that takes its fields' values out of the attributes (a tuple, or the
#: one value when ``one``), and ``one``.
_Renderer = tuple[str, Callable[[Mapping[str, Any]], Any], bool]


def _renderer(template: str) -> _Renderer | None:
    """The ``%`` twin of a template whose every field is a plain ``{name}``, or None.

    On the values the fused path takes (numbers, bools, None, clean text), ``format(value, "")`` is
    ``str(value)``, which is what ``%s`` writes, so ``"charged %s for %s" % (amount, order)`` is
    ``"charged {amount} for {order}".format_map(attrs)``, in half the time (no template parsing per
    record). A field with a conversion, a spec, an index or an attribute (``{x!r}``, ``{x:>5}``, ``{0}``,
    ``{x.y}``) keeps ``format_map``.
    """
    try:
        parsed = list(_FORMATTER.parse(template))
    except ValueError:
        return None
    names: list[str] = []
    pieces: list[str] = []
    for literal, field, spec, conversion in parsed:
        pieces.append(literal.replace("%", "%%"))
        if field is None:
            continue
        if spec or conversion is not None or not field.isidentifier():
            return None
        names.append(field)
        pieces.append("%s")
    percent = "".join(pieces)
    if not names:
        return percent, _no_values, False
    return percent, itemgetter(*names), len(names) == 1


def _no_values(attrs: Mapping[str, Any]) -> tuple[()]:
    return ()


def _line_at(code: CodeType, offset: int) -> int:
    """The line of the instruction at ``offset`` (bytes, as ``frame.f_lasti``), as ``frame.f_lineno`` gives it."""
    for start, end, line in code.co_lines():
        if start <= offset < end:
            return line if line is not None else code.co_firstlineno
    return code.co_firstlineno


def _field_root(field: str) -> str:
    """The attribute a ``str.format`` field reads: ``order`` of ``order.id`` and of ``order[0]``."""
    return field.partition(".")[0].partition("[")[0]


def _prebuilt(item: tuple[Any, ...]) -> Record:
    record: Record = item[1]
    return record


def _type_name(obj: Any) -> str:
    return "event" if isinstance(obj, dict) else type(obj).__qualname__


def _label(value: object) -> str:
    """A record's type, a source id, a raw format or an ``on_behalf_of`` as text, whatever the caller passed."""
    return value if type(value) is str else safe_str(value)


class _Printable:
    """Stands in for a logging argument whose ``__str__`` or ``__repr__`` raises: prints a marker."""

    __slots__ = ("value",)

    def __init__(self, value: object) -> None:
        self.value = value

    def __str__(self) -> str:
        return safe_str(self.value)

    def __repr__(self) -> str:
        return safe_repr(self.value)


def _printable(value: object) -> object:
    """``value`` itself if it prints, else a :class:`_Printable` (``%d`` still gets the number)."""
    try:
        str(value)
        repr(value)
    except Exception:
        return _Printable(value)
    return value


def _stdlib_message(rec: logging.LogRecord) -> str:
    """``rec.getMessage()``, with arguments that cannot be printed shown as markers instead of failing."""
    try:
        return rec.getMessage()
    except Exception:  # an argument (or the message object) that cannot be printed; retried below
        args = rec.args
    try:
        message = safe_str(rec.msg)
        if isinstance(args, Mapping):
            return message % {key: _printable(value) for key, value in args.items()}
        if args:
            return message % tuple(_printable(arg) for arg in args)
        return message
    except Exception:  # a template that does not fit its arguments still gets recorded
        return f"{safe_repr(rec.msg)} % {safe_repr(args)} [unformattable]"


def _safe_str(exc: BaseException) -> str:
    try:
        return str(exc)
    except Exception:
        return f"<{type(exc).__qualname__}: str() failed>"
