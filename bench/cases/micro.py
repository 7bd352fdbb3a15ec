"""Per-record cases (1 log, 2 span, 3 event 1 KB, 4 stdlib captured, 5 concurrency) for Zoom and its peers.

Each library is an adapter class with one method per case it can run (``log``, ``span``, ``event``,
``stdlib``, ``threads8``, ``tasks1000``), each taking ``n`` (operations to perform), and ``finish``
(everything written: flush). A worker process sets up ONE library, as its documentation recommends
for production JSON output to a file, and measures all of its cases.

Fairness rules (see bench/README.md):
- every library writes structured JSON lines to a file in a temporary directory;
- callsite (file, line, function) is captured where the library offers it;
- background exporters get a queue large enough that no record is dropped (Zoom's default bound
  is 100,000; the OpenTelemetry batch processors get the same), and ``finish`` waits until the
  file holds everything;
- the logged call is the library's idiomatic one, with its bound method hoisted out of the loop.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cases.common import PERCENT_TEMPLATE, TEMPLATE, json_file_handler, order_payload

#: Queue bound given to background exporters (Zoom's default bound).
QUEUE = 100_000
THREADS = 8
TASKS = 1000


def _in_threads(emit_some: Callable[[int, int], None], n: int) -> None:
    """``n`` operations split over THREADS threads that start together."""
    per = max(1, n // THREADS)
    barrier = threading.Barrier(THREADS)

    def body(t: int) -> None:
        barrier.wait()
        emit_some(t, per)

    threads = [threading.Thread(target=body, args=(t,)) for t in range(THREADS)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()


def _in_tasks(emit_one: Callable[[int, int], None], n: int, wrap: Callable[[int], Any] | None = None) -> None:
    """``n`` operations from TASKS asyncio tasks at once, each yielding to the loop between records."""
    per = max(1, n // TASKS)

    async def task(t: int) -> None:
        if wrap is None:
            for i in range(per):
                emit_one(t, i)
                await asyncio.sleep(0)
        else:
            with wrap(t):
                for i in range(per):
                    emit_one(t, i)
                    await asyncio.sleep(0)

    async def main() -> None:
        await asyncio.gather(*(task(t) for t in range(TASKS)))

    asyncio.run(main())


class Lib:
    name = "?"
    #: What the adapter does, for the report.
    setup = ""

    def finish(self) -> None:
        """Return when everything measured so far is written."""

    def close(self) -> None:
        pass


# -- the floor --------------------------------------------------------------------------------------


class Floor(Lib):
    """The least any Python API can do: a call that captures the frame, the context and the clock and
    appends a tuple to a deque; ``finish`` turns the tuples into msgspec structs, encodes them as
    msgpack and writes them to a file on the same thread. A yardstick, not a logging library."""

    name = "floor"
    setup = "function call + sys._getframe + ContextVar.get + time_ns + deque.append; msgspec msgpack to a file"

    def __init__(self, tmp: Path) -> None:
        import collections
        import contextvars
        import time

        import msgspec

        class Rec(msgspec.Struct, array_like=True, gc=False):
            ts: int
            file: str
            line: int
            template: str
            attrs: dict[str, Any]
            trace: str | None

        self._q: collections.deque[Any] = collections.deque()
        self._cv: contextvars.ContextVar[str | None] = contextvars.ContextVar("floor", default="0af7651916cd43dd")
        self._rec = Rec
        self._enc = msgspec.msgpack.Encoder()
        self._f = open(tmp / "floor.bin", "wb")  # noqa: SIM115
        q_append, cv_get, now, getframe = self._q.append, self._cv.get, time.time_ns, sys._getframe

        def emit(template: str, /, **attrs: Any) -> None:
            f = getframe(1)
            q_append((now(), f.f_code, f.f_lineno, template, attrs, cv_get()))

        self.emit = emit

    def log(self, n: int) -> None:
        emit = self.emit
        for i in range(n):
            emit(TEMPLATE, amount=12.5, order=i)

    def threads8(self, n: int) -> None:
        emit = self.emit

        def some(t: int, k: int) -> None:
            for i in range(k):
                emit(TEMPLATE, amount=12.5, order=i)

        _in_threads(some, n)

    def tasks1000(self, n: int) -> None:
        emit = self.emit
        _in_tasks(lambda t, i: emit(TEMPLATE, amount=12.5, order=i), n)

    def finish(self) -> None:
        q, rec = self._q, self._rec
        out = []
        while q:
            ts, code, line, template, attrs, trace = q.popleft()
            out.append(rec(ts, code.co_filename, line, template, attrs, trace))
            if len(out) >= 4096:
                self._f.write(self._enc.encode(out))
                out = []
        if out:
            self._f.write(self._enc.encode(out))
        self._f.flush()


# -- Zoom -------------------------------------------------------------------------------------------


class Zoom(Lib):
    name = "zoomtrace"
    setup = "zt.init(home=tmp) defaults: spool sink, scrubbing on, capture_logging on, queue 100,000 (drop)"

    def __init__(self, tmp: Path) -> None:
        import zoomtrace as zt

        self.zt = zt
        self.node = zt.init("bench", home=tmp, install_signal_handlers=False)
        zt.flush(30)
        # Case 4: the application's own stdlib logger, propagating to the root where Zoom's handler is.
        self.std = logging.getLogger("bench.app")
        self.payload = order_payload()

    def log(self, n: int) -> None:
        info = self.zt.log.info
        with self.zt.span("request"):
            for i in range(n):
                info(TEMPLATE, amount=12.5, order=i)

    def span(self, n: int) -> None:
        span = self.zt.span
        for i in range(n):
            with span("work", order=i, user="u1"):
                pass

    def event(self, n: int) -> None:
        event, payload = self.zt.event, self.payload
        with self.zt.span("request"):
            for _ in range(n):
                event(payload, type="OrderPlaced")

    def stdlib(self, n: int) -> None:
        info = self.std.info
        with self.zt.span("request"):
            for i in range(n):
                info(PERCENT_TEMPLATE, 12.5, i)

    def threads8(self, n: int) -> None:
        zt = self.zt

        def some(t: int, k: int) -> None:
            info = zt.log.info
            with zt.span("request", worker=t):
                for i in range(k):
                    info(TEMPLATE, amount=12.5, order=i)

        _in_threads(some, n)

    def tasks1000(self, n: int) -> None:
        info = self.zt.log.info
        _in_tasks(lambda t, i: info(TEMPLATE, amount=12.5, order=i), n, wrap=lambda t: self.zt.span("request"))

    def request(self, i: int) -> None:
        """The service benchmark's request (bench/service.py): a span, four log lines and a 1 KB event."""
        zt = self.zt
        with zt.span("request", order=i):
            info = zt.log.info
            for _ in range(4):
                info(TEMPLATE, amount=12.5, order=i)
            zt.event(self.payload, type="OrderPlaced")

    def finish(self) -> None:
        if not self.zt.flush(120):
            raise RuntimeError("zt.flush() timed out")

    def lost(self) -> dict[str, int]:
        return dict(self.node.pipeline.lost)

    def close(self) -> None:
        self.zt.shutdown()


# -- stdlib logging ---------------------------------------------------------------------------------


class Stdlib(Lib):
    name = "stdlib-json"
    setup = "logging.FileHandler + a json.dumps Formatter (message, level, logger, file, line, function, thread)"

    def __init__(self, tmp: Path) -> None:
        self.handler = json_file_handler(tmp / "stdlib.jsonl")
        root = logging.getLogger()
        root.addHandler(self.handler)
        root.setLevel(logging.INFO)
        self.log_ = logging.getLogger("bench.app")
        self.payload = order_payload()

    def log(self, n: int) -> None:
        info = self.log_.info
        for i in range(n):
            info(PERCENT_TEMPLATE, 12.5, i)

    # Case 4's baseline: the very same call as Zoom's ``stdlib`` case, with the JSON file handler alone.
    stdlib = log

    def event(self, n: int) -> None:
        info, extra = self.log_.info, {"payload": self.payload}
        for _ in range(n):
            info("OrderPlaced", extra=extra)

    def threads8(self, n: int) -> None:
        info = self.log_.info

        def some(t: int, k: int) -> None:
            for i in range(k):
                info(PERCENT_TEMPLATE, 12.5, i)

        _in_threads(some, n)

    def tasks1000(self, n: int) -> None:
        info = self.log_.info
        _in_tasks(lambda t, i: info(PERCENT_TEMPLATE, 12.5, i), n)

    def request(self, i: int) -> None:
        """Four log lines, the event, and an access line with the request's duration (no spans in stdlib)."""
        start = time.perf_counter_ns()
        info = self.log_.info
        for _ in range(4):
            info(PERCENT_TEMPLATE, 12.5, i)
        info("OrderPlaced", extra={"payload": self.payload})
        info("request %s took %d ns", i, time.perf_counter_ns() - start)

    def finish(self) -> None:
        self.handler.flush()


# -- structlog --------------------------------------------------------------------------------------


class Structlog(Lib):
    name = "structlog"
    setup = (
        "structlog's production recipe: contextvars, level, timestamp, CallsiteParameterAdder "
        "(pathname, lineno, func_name), JSONRenderer(orjson) to BytesLoggerFactory(file), cached filtering logger"
    )

    def __init__(self, tmp: Path) -> None:
        import orjson
        import structlog

        self.structlog = structlog
        self.file = open(tmp / "structlog.jsonl", "wb")  # noqa: SIM115
        cp = structlog.processors.CallsiteParameter
        structlog.configure(
            processors=[
                structlog.contextvars.merge_contextvars,
                structlog.processors.add_log_level,
                structlog.processors.TimeStamper(),
                structlog.processors.CallsiteParameterAdder({cp.PATHNAME, cp.LINENO, cp.FUNC_NAME}),
                structlog.processors.JSONRenderer(serializer=orjson.dumps),
            ],
            wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
            logger_factory=structlog.BytesLoggerFactory(file=self.file),
            cache_logger_on_first_use=True,
        )
        self.log_ = structlog.get_logger()
        self.payload = order_payload()

    def log(self, n: int) -> None:
        info = self.log_.info
        self.structlog.contextvars.bind_contextvars(request_id="0af7651916cd43dd")
        for i in range(n):
            info("charged", amount=12.5, order=i)
        self.structlog.contextvars.clear_contextvars()

    def event(self, n: int) -> None:
        info, payload = self.log_.info, self.payload
        for _ in range(n):
            info("OrderPlaced", payload=payload)

    def threads8(self, n: int) -> None:
        info = self.log_.info

        def some(t: int, k: int) -> None:
            for i in range(k):
                info("charged", amount=12.5, order=i)

        _in_threads(some, n)

    def tasks1000(self, n: int) -> None:
        info = self.log_.info
        _in_tasks(lambda t, i: info("charged", amount=12.5, order=i), n)

    def request(self, i: int) -> None:
        """The request's id bound for its lines, four log lines, the event, an access line with the duration."""
        start = time.perf_counter_ns()
        contextvars = self.structlog.contextvars
        contextvars.bind_contextvars(request_id=i)
        info = self.log_.info
        for _ in range(4):
            info("charged", amount=12.5, order=i)
        info("OrderPlaced", payload=self.payload)
        info("request", duration_ns=time.perf_counter_ns() - start)
        contextvars.clear_contextvars()

    def finish(self) -> None:
        self.file.flush()


# -- loguru -----------------------------------------------------------------------------------------


class Loguru(Lib):
    name = "loguru"
    setup = "logger.add(file, serialize=True) (callsite always included), logger.contextualize for the request"

    def __init__(self, tmp: Path) -> None:
        from loguru import logger

        logger.remove()
        self.sink_id = logger.add(tmp / "loguru.jsonl", serialize=True, level="INFO", enqueue=False)
        self.logger = logger
        self.payload = order_payload()

    def log(self, n: int) -> None:
        info = self.logger.info
        with self.logger.contextualize(request_id="0af7651916cd43dd"):
            for i in range(n):
                info(TEMPLATE, amount=12.5, order=i)

    def event(self, n: int) -> None:
        info, payload = self.logger.info, self.payload
        for _ in range(n):
            info("OrderPlaced", payload=payload)

    def threads8(self, n: int) -> None:
        info = self.logger.info

        def some(t: int, k: int) -> None:
            for i in range(k):
                info(TEMPLATE, amount=12.5, order=i)

        _in_threads(some, n)

    def tasks1000(self, n: int) -> None:
        info = self.logger.info
        _in_tasks(lambda t, i: info(TEMPLATE, amount=12.5, order=i), n)

    def finish(self) -> None:
        self.logger.complete()

    def close(self) -> None:
        self.logger.remove(self.sink_id)


# -- eliot ------------------------------------------------------------------------------------------


class Eliot(Lib):
    name = "eliot"
    setup = "eliot.to_file(file); log_message inside start_action (eliot records no callsite)"

    def __init__(self, tmp: Path) -> None:
        import eliot

        self.eliot = eliot
        self.file = open(tmp / "eliot.jsonl", "ab")  # noqa: SIM115
        eliot.to_file(self.file)
        self.payload = order_payload()

    def log(self, n: int) -> None:
        log_message = self.eliot.log_message
        with self.eliot.start_action(action_type="request"):
            for i in range(n):
                log_message(message_type="charged", amount=12.5, order=i)

    def span(self, n: int) -> None:
        start_action = self.eliot.start_action
        for i in range(n):
            with start_action(action_type="work", order=i, user="u1"):
                pass

    def event(self, n: int) -> None:
        log_message, payload = self.eliot.log_message, self.payload
        with self.eliot.start_action(action_type="request"):
            for _ in range(n):
                log_message(message_type="OrderPlaced", payload=payload)

    def finish(self) -> None:
        self.file.flush()


# -- OpenTelemetry SDK ------------------------------------------------------------------------------


def _one_line(obj: Any) -> str:
    return str(obj.to_json(indent=None)) + "\n"


class OTel(Lib):
    name = "otel-sdk"
    setup = (
        "TracerProvider + BatchSpanProcessor(ConsoleSpanExporter(file)); LoggerProvider + "
        "BatchLogRecordProcessor(ConsoleLogExporter(file)) behind the stdlib LoggingHandler (callsite "
        "captured); queues of 100,000; logs inside an active span; events via Logger.emit(body=payload)"
    )

    def __init__(self, tmp: Path) -> None:
        from opentelemetry._logs import SeverityNumber
        from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
        from opentelemetry.sdk._logs.export import BatchLogRecordProcessor, ConsoleLogExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

        resource = Resource.create({"service.name": "bench"})
        self.span_file = open(tmp / "otel-spans.jsonl", "w")  # noqa: SIM115
        self.log_file = open(tmp / "otel-logs.jsonl", "w")  # noqa: SIM115
        self.tp = TracerProvider(resource=resource)
        self.tp.add_span_processor(
            BatchSpanProcessor(ConsoleSpanExporter(out=self.span_file, formatter=_one_line), max_queue_size=QUEUE)
        )
        self.tracer = self.tp.get_tracer("bench")
        self.lp = LoggerProvider(resource=resource)
        self.lp.add_log_record_processor(
            BatchLogRecordProcessor(ConsoleLogExporter(out=self.log_file, formatter=_one_line), max_queue_size=QUEUE)
        )
        self.handler = LoggingHandler(level=logging.INFO, logger_provider=self.lp)
        self.log_ = logging.getLogger("bench.otel")
        self.log_.propagate = False
        self.log_.addHandler(self.handler)
        self.log_.setLevel(logging.INFO)
        self.otel_logger = self.lp.get_logger("bench")
        self.info = SeverityNumber.INFO
        self.payload = order_payload()

    def log(self, n: int) -> None:
        info = self.log_.info
        with self.tracer.start_as_current_span("request"):
            for i in range(n):
                info(PERCENT_TEMPLATE, 12.5, i)

    def span(self, n: int) -> None:
        start = self.tracer.start_as_current_span
        for i in range(n):
            with start("work", attributes={"order": i, "user": "u1"}):
                pass

    def event(self, n: int) -> None:
        emit, payload, sev = self.otel_logger.emit, self.payload, self.info
        with self.tracer.start_as_current_span("request"):
            for _ in range(n):
                emit(body=payload, event_name="OrderPlaced", severity_number=sev)

    def request(self, i: int) -> None:
        """A span, four log lines through the LoggingHandler and the event through ``Logger.emit``."""
        with self.tracer.start_as_current_span("request", attributes={"order": i}):
            info = self.log_.info
            for _ in range(4):
                info(PERCENT_TEMPLATE, 12.5, i)
            self.otel_logger.emit(body=self.payload, event_name="OrderPlaced", severity_number=self.info)

    def finish(self) -> None:
        self.tp.force_flush(120_000)
        self.lp.force_flush(120_000)
        self.span_file.flush()
        self.log_file.flush()

    def close(self) -> None:
        self.tp.shutdown()
        self.lp.shutdown()


# -- logfire ----------------------------------------------------------------------------------------


class Logfire(Lib):
    name = "logfire"
    setup = (
        "logfire.configure(send_to_logfire=False, console=False, metrics=False) + additional "
        "BatchSpanProcessor(ConsoleSpanExporter(file)), queue 100,000; scrubbing and callsite on (defaults)"
    )

    def __init__(self, tmp: Path) -> None:
        import logfire
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

        self.file = open(tmp / "logfire.jsonl", "w")  # noqa: SIM115
        logfire.configure(
            send_to_logfire=False,
            console=False,
            metrics=False,
            service_name="bench",
            data_dir=tmp / "logfire-data",
            additional_span_processors=[
                BatchSpanProcessor(ConsoleSpanExporter(out=self.file, formatter=_one_line), max_queue_size=QUEUE)
            ],
        )
        self.logfire = logfire
        self.payload = order_payload()

    def log(self, n: int) -> None:
        info = self.logfire.info
        with self.logfire.span("request"):
            for i in range(n):
                info(TEMPLATE, amount=12.5, order=i)

    def span(self, n: int) -> None:
        span = self.logfire.span
        for i in range(n):
            with span("work", order=i, user="u1"):
                pass

    def event(self, n: int) -> None:
        info, payload = self.logfire.info, self.payload
        with self.logfire.span("request"):
            for _ in range(n):
                info("OrderPlaced", payload=payload)

    def request(self, i: int) -> None:
        """A span, four log lines and the event (logfire records each as a span)."""
        logfire = self.logfire
        with logfire.span("request", order=i):
            info = logfire.info
            for _ in range(4):
                info(TEMPLATE, amount=12.5, order=i)
            info("OrderPlaced", payload=self.payload)

    def finish(self) -> None:
        self.logfire.force_flush(120_000)
        self.file.flush()

    def close(self) -> None:
        self.logfire.shutdown()


LIBS: dict[str, type[Lib]] = {cls.name: cls for cls in (Zoom, Floor, Stdlib, Structlog, Loguru, Eliot, OTel, Logfire)}
CASES = ("log", "span", "event", "stdlib", "threads8", "tasks1000")
