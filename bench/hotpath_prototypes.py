"""What the profile's recommendations would save, measured on sketches (bench only, not product code).

    .venv/bin/python bench/hotpath_prototypes.py [--out bench/results/profiles/prototypes.md]

Each sketch does the work of one hot-path step differently and is timed beside the current code
(best of 7, same objects, same process). They are estimates for ranking the recommendations in
bench/README.md, not drop-in replacements: each says which conditions a real change must keep.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from cases.common import TEMPLATE, order_payload, parked_node  # noqa: E402
from hotpath_ops import cost  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path)
    args = p.parse_args()

    import msgspec

    import zoomtrace as zt
    from zoomtrace.capture import _items as zitems
    from zoomtrace.capture import recorder as znode
    from zoomtrace.capture.context import current
    from zoomtrace.runtime import scrub as zscrub
    from zoomtrace.runtime.sanitize import sanitize_payload
    from zoomtrace.wire import record as zrecord

    home = Path(tempfile.mkdtemp(prefix="zt-proto-"))
    rows: list[tuple[str, float, float, str]] = []

    def compare(what: str, now: float, sketch: float, note: str) -> None:
        rows.append((what, now, sketch, note))
        print(f"{what:<60} now {now:7.3f} µs  sketch {sketch:7.3f} µs  saves {now - sketch:7.3f}", file=sys.stderr)

    try:
        node, q, drained = parked_node("proto", home)
        enc = node.encoder

        # -- 1. the log record's encoding, fused ----------------------------------------------------
        scrubber = enc.scrubber
        limits = enc.limits
        Record, uuid7 = zrecord.Record, zrecord.uuid7
        codes: dict[Any, Any] = {}
        templates: dict[str, bool] = {}
        keys: dict[str, bool] = {}
        int_min, int_max = -(2**63), 2**64 - 1
        node_id = enc.node_id
        max_attr = limits.max_attr_value

        def template_clean(t: str) -> bool:
            ok = templates.get(t)
            if ok is None:
                f = t.lower()
                ok = templates[t] = (
                    t.isascii()
                    and len(t) <= 1024
                    and not zscrub._default_hint(f)
                    and "://" not in t
                    and "-----begin" not in f
                    and zscrub._digit_count(t) == 0
                )
            return ok

        def encode_log(item: tuple[Any, ...]) -> Any:
            """Sketch: one function, caches per (code, line), per template and per key; the careful path
            (the current encoder) for anything that is not a flat dict of numbers under known-clean keys."""
            _, ts, code, line, logger, level, template, attrs, parent, exc = item
            if exc is not None or not template_clean(template):
                return node._encode(item)
            for k, v in attrs.items():
                ok = keys.get(k)
                if ok is None:
                    ok = keys[k] = (
                        type(k) is str and k.isascii() and len(k) <= max_attr and not scrubber.is_sensitive(k)
                    )
                cls = type(v)
                if not ok or not (
                    (cls is int and int_min <= v <= int_max and -(10**12) < v < 10**12)
                    or (cls is float and v - v == 0.0 and -1e12 < v < 1e12)
                    or cls is bool
                    or v is None
                ):
                    return node._encode(item)  # strings, containers, big numbers: the careful path
            try:
                message = template.format(**attrs) if attrs else template
            except Exception:
                return node._encode(item)
            c = codes.get((code, line))
            if c is None:
                c = codes[(code, line)] = enc.code(code, line)
            if parent is None:
                return Record(
                    id=uuid7(ts),
                    kind="log",
                    type=logger or "app",
                    ts_ns=ts,
                    node_id=node_id,
                    code=c,
                    level=level,
                    message=message,
                    template=template if attrs else None,
                    attrs=attrs,
                )
            return Record(
                id=uuid7(ts),
                kind="log",
                type=logger or "app",
                ts_ns=ts,
                node_id=node_id,
                code=c,
                level=level,
                message=message,
                template=template if attrs else None,
                attrs=attrs,
                trace_id=parent.trace_id,
                span_id=parent.span_id,
                on_behalf_of=parent.on_behalf_of,
            )

        def frame_here() -> Any:
            return sys._getframe(0)

        f = frame_here()
        parent = zt.span("parent")
        attrs = {"amount": 12.5, "order": 7}
        log_item = (zitems.LOG, time.time_ns(), f.f_code, f.f_lasti, "app", "INFO", TEMPLATE, attrs, parent, None)
        a, b = node._encode(log_item), encode_log(log_item)
        a.id = b.id = "x"
        assert msgspec.msgpack.encode(a) == msgspec.msgpack.encode(b), (a, b)
        compare(
            "worker: encode one log record (encoder.py _log)",
            cost(lambda: node._encode(log_item)),
            cost(lambda: encode_log(log_item)),
            "fused: no dispatch layers, Code cached per (code, line), template scrub decision cached, "
            "attrs checked once (sanitize + scrub) with a per-key cache; numbers-only fast path",
        )

        # uuid7: formatting the 36-character string is most of its cost.
        bits = zrecord._bits

        def id_bytes(ts_ns: int) -> bytes:
            r = bits(74)
            return (
                (ts_ns // 1_000_000) << 80 | (0x7000 | r >> 62) << 64 | 0x8000000000000000 | (r & 0x3FFFFFFFFFFFFFFF)
            ).to_bytes(16, "big")

        ts = 1_780_000_000_123_456_789
        assert id_bytes(ts).hex()[:12] == uuid7(ts).replace("-", "")[:12]
        compare(
            "uuid7(ts) string (record.py), per log/span record on the worker, per event on the caller",
            cost(lambda: uuid7(ts)),
            cost(lambda: id_bytes(ts)),
            "the same 128 bits as 16 bytes (msgpack bin), formatted as text at ingest or on read",
        )

        # -- 2. the span, caller side ------------------------------------------------------------------
        get_ident, thread_time, time_ns = threading.get_ident, time.thread_time_ns, time.time_ns
        import asyncio

        running_loop = asyncio._get_running_loop

        class LeanSpan:
            """Sketch: ids kept as ints (hex formatted on first read, usually by the worker), the thread's
            name resolved by the worker from its ident, rarely-set fields left unset, the queue append
            inlined (the pipeline's bound checks kept)."""

            __slots__ = (
                "_cpu",
                "_sid",
                "_tid",
                "_token",
                "attrs",
                "code",
                "cpu_ns",
                "end_ns",
                "ident",
                "line",
                "name",
                "parent",
                "start_ns",
            )

            measure_cpu = True

            def __init__(self, name: str, attrs: dict[str, Any], parent: Any, code: Any, line: int) -> None:
                self.name, self.attrs, self.parent, self.code, self.line = name, attrs, parent, code, line
                self._sid = bits(64) or 1

            @property
            def span_id(self) -> str:
                return f"{self._sid:016x}"

            def __enter__(self) -> LeanSpan:
                self._cpu = None if not self.measure_cpu or running_loop() is not None else thread_time()
                self.ident = get_ident()
                self._token = current.set(self)  # type: ignore[arg-type]
                n = znode.active
                if n is not None:
                    n.open_spans[self._sid] = self
                self.start_ns = time_ns()
                return self

            def __exit__(self, et: Any, e: Any, tb: Any) -> None:
                self.end_ns = time_ns()
                if self._cpu is not None and get_ident() == self.ident:
                    self.cpu_ns = thread_time() - self._cpu
                current.reset(self._token)
                n = znode.active
                if n is not None:
                    n.open_spans.pop(self._sid, None)
                    p = n.pipeline
                    queue = p._queue
                    if len(queue) < p._maxsize:
                        queue.append(self)

        sentinel = object()

        def lean_span(
            name: str, *, follows_from: Any = None, context: Any = sentinel, on_behalf_of: Any = None, **attrs: Any
        ) -> LeanSpan:
            fr = sys._getframe(1)
            return LeanSpan(name, attrs, current.get() if context is sentinel else context, fr.f_code, fr.f_lineno)

        def span_now() -> None:
            with zt.span("work", order=7, user="u1"):
                pass

        def span_sketch() -> None:
            with lean_span("work", order=7, user="u1"):
                pass

        with zt.span("outer"):
            compare(
                "caller: with zt.span('work', order=, user=): pass",
                cost(drained(span_now)),
                cost(drained(span_sketch)),
                "ints for ids, thread ident only, fewer slots set, put inlined; the two thread_time_ns "
                "system calls (cpu_ns) stay",
            )

        class NoCpuSpan(LeanSpan):
            __slots__ = ()
            measure_cpu = False

        def cpu_free() -> None:
            fr = sys._getframe(0)
            with NoCpuSpan("work", {"order": 7, "user": "u1"}, current.get(), fr.f_code, fr.f_lineno):
                pass

        with zt.span("outer"):
            compare(
                "caller: the sketch without cpu_ns (what the 2 thread_time_ns system calls cost)",
                cost(drained(span_sketch)),
                cost(drained(cpu_free)),
                "cpu_ns opt-in, or sampled",
            )

        # -- 3. the 1 KB data event, worker side -----------------------------------------------------
        payload = order_payload()
        clean = sanitize_payload(payload, limits)
        encoded = msgspec.json.encode(payload)
        import zoomtrace.runtime.sanitize as zsanitize

        needs_care = getattr(zsanitize, "_NEEDS_CARE", None)
        if needs_care is not None:  # the fast path's guard (sanitize.py): a regex over the whole JSON
            digits_to_1 = bytes(49 if 48 <= i <= 57 else 32 for i in range(256))
            run19 = b"1" * 19

            def needs_care_sketch(e: bytes) -> bool:
                return b"null" in e or run19 in e.translate(digits_to_1)

            for sample in (
                encoded,
                b'{"a":null}',
                b"[1180591620717411303424]",
                b'{"x":"12345678901234567890"}',
                b"[1234567890123456789]",
                b"[123456789012345678]",
            ):
                assert needs_care_sketch(sample) == bool(needs_care.search(sample)), sample
            compare(
                "worker: sanitize_payload's guard _NEEDS_CARE.search(json) (sanitize.py)",
                cost(lambda: needs_care.search(encoded)),
                cost(lambda: needs_care_sketch(encoded)),
                "b'null' in json, then 19 digits in a row via bytes.translate (digits -> '1', rest -> ' ') "
                "and one substring search: same answer, no regex scan",
            )

        from zoomtrace.runtime.scrub import _MAX_NESTING, _scrub_value

        def walk_dict(sc: Any, d: dict[Any, Any], depth: int) -> dict[Any, Any]:
            """Scrubber._dict with the common values (clean strings, numbers, nested dicts and lists)
            handled inline instead of through one Scrubber._value call (3 isinstance tests) each."""
            out = None
            cache, clean, text = sc._cache, sc._clean, sc.scrub_values
            for k, v in d.items():
                decision = cache.get(k)
                if decision is None:
                    decision = sc._decide(k)
                cls = type(v)
                if decision == 0:
                    if cls is str:
                        if not text or v in clean:
                            continue
                        new = sc._text(v)
                    elif cls is int or cls is float or cls is bool or v is None:
                        continue
                    elif cls is dict and depth < _MAX_NESTING:
                        new = walk_dict(sc, v, depth + 1)
                    elif cls is list and depth < _MAX_NESTING:
                        new = walk_list(sc, v, depth + 1)
                    else:
                        new = sc._value(v, depth)
                else:
                    new = _scrub_value(v, decision)
                if new is not v:
                    if out is None:
                        out = dict(d)
                    out[k] = new
            return d if out is None else out

        def walk_list(sc: Any, items: list[Any], depth: int) -> list[Any]:
            out = None
            clean, text = sc._clean, sc.scrub_values
            for i, v in enumerate(items):
                cls = type(v)
                if cls is str:
                    if not text or v in clean:
                        continue
                    new = sc._text(v)
                elif cls is int or cls is float or cls is bool or v is None:
                    continue
                elif cls is dict and depth < _MAX_NESTING:
                    new = walk_dict(sc, v, depth + 1)
                elif cls is list and depth < _MAX_NESTING:
                    new = walk_list(sc, v, depth + 1)
                else:
                    new = sc._value(v, depth)
                if new is not v:
                    if out is None:
                        out = list(items)
                    out[i] = new
            return items if out is None else out

        assert walk_dict(scrubber, clean, 0) is clean
        bad = {"a": [{"password": "x", "url": "https://u:pw@h"}], "n": 1, "t": ("a", {"token": 3})}
        assert walk_dict(scrubber, bad, 0) == scrubber.scrub_value(bad)
        compare(
            "worker: scrub the 1 KB event payload (scrub.py _dict/_value walk)",
            cost(lambda: scrubber.scrub_value(clean)),
            cost(lambda: walk_dict(scrubber, clean, 0)),
            "same walk, common cases inlined in the loops (about 60 _value calls per payload saved)",
        )

        # Tried and rejected: a precheck on the payload's encoded text (skip the walk when no rule can
        # match anywhere) costs about as much as the walk in pure Python on 1 KB.
        import re

        mp = msgspec.msgpack.Encoder().encode(payload)
        folded = mp.lower().decode("latin-1")
        digit_run = re.compile(zscrub._DIGIT_RUN.pattern.encode())
        compare(
            "  (rejected) skip the walk after a precheck of the payload's msgpack text",
            cost(lambda: scrubber.scrub_value(clean)),
            cost(lambda: zscrub._default_hint(folded)) + cost(lambda: digit_run.search(mp)),
            "14 substring tests (_default_hint) + the 13-digit-run regex over ~800 bytes: about a walk's cost",
        )
        json_encode, json_decode = msgspec.json.Encoder().encode, msgspec.json.Decoder().decode
        compare(
            "worker: sanitize_payload's fast path, JSON encode + decode (sanitize.py)",
            cost(lambda: json_decode(json_encode(payload))),
            cost(lambda: (msgspec.to_builtins(payload), json_encode(payload))),
            "to_builtins for the copy the walk needs, the encode only for the size limit (minor)",
        )

        # -- 4. the stdlib record, worker side -------------------------------------------------------
        from zoomtrace.runtime.encoder import _LOGRECORD_FIELDS

        rec = logging.LogRecord("a", 20, __file__, 10, "charged %s for %s", (12.5, 7), None, "fn")
        base_keys = len(rec.__dict__)

        def extras_sketch() -> dict[str, Any]:
            d = rec.__dict__
            if len(d) == base_keys:
                return {}
            return {k: d[k] for k in d.keys() - _LOGRECORD_FIELDS}

        compare(
            "worker: stdlib record extras (encoder.py _stdlog dictcomp)",
            cost(lambda: {k: v for k, v in rec.__dict__.items() if k not in _LOGRECORD_FIELDS}),
            cost(extras_sketch),
            "a record without extra= has exactly the standard attributes: count them",
        )
        loc_cache: dict[Any, Any] = {}

        def code_at_sketch() -> Any:
            key = (rec.pathname, rec.lineno, rec.funcName)
            c = loc_cache.get(key)
            if c is None:
                c = loc_cache[key] = enc._code_at(*key)
            return c

        compare(
            "worker: stdlib record callsite (encoder._code_at)",
            cost(lambda: enc._code_at(rec.pathname, rec.lineno, rec.funcName)),
            cost(code_at_sketch),
            "Code cached per (pathname, lineno, funcName)",
        )
        message = rec.getMessage()
        compare(
            "worker: scrub_text(message) vs a cached clean-template test + digit count",
            cost(lambda: scrubber.scrub_text(message)),
            cost(lambda: template_clean(rec.msg) and zscrub._digit_count(message) < 13),
            "a message from a clean template with numeric args needs only the card check",
        )
        q.clear()
        zt.shutdown()
    finally:
        shutil.rmtree(home, ignore_errors=True)

    text = [
        f"Python {sys.version.split()[0]}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}; best of 7\n",
        "| step | now µs | sketch µs | saves µs | how |",
        "|---|---:|---:|---:|---|",
    ]
    text += [f"| {w} | {a:.3f} | {b:.3f} | {a - b:.3f} | {n} |" for w, a, b, n in rows]
    out = "\n".join(text) + "\n"
    print(out)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
