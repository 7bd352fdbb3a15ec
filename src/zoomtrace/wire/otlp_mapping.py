"""Zoom records <-> OpenTelemetry OTLP protobuf messages, both ways.

Export (``records_to_otlp``): spans become OTLP spans, logs, data events, raw data and
node lifecycle records become OTLP log records, grouped per node (one OTLP resource
carrying ``service.name``, ``vcs.ref.head.revision``, ``zoom.node.id`` ...) and per
instrumentation scope. Everything Zoom knows that OTLP has no field for travels as an
attribute under a ``zoom.*`` name, so records come back unchanged (``otlp_to_records``)
after a trip through an OpenTelemetry Collector.

What leaves the machine (``exported_node_attrs``): node records say which repositories a process
ran from by *name* (``repo``, ``repos[].root``, a ``repo`` record's ``root``: the directory's name,
not its local path) and which sinks it writes to by *scheme and host* only (no user, password,
path, query or fragment); commits, branches, dirty file lists and the command line (scrubbed by the
runtime; OpenTelemetry's ``process.command_line``) travel as recorded. So these records do not
come back unchanged. File snapshots are not exported at all (``exportable``).

Import (``otlp_to_records``): OTLP from any OpenTelemetry SDK becomes Zoom records.
Unknown attributes are kept as they are; ids of records that have no ``zoom.record.id``
are derived from their content, so an export that is retried is stored once. Each
resource that is not a Zoom node becomes a node of its own (see ``resource_node_id``).

Attribute names used (besides OpenTelemetry semantic conventions):

======================  =============================================================
``zoom.record.id``      the record id (lineage in ``zoom.sources`` refers to these)
``zoom.kind``           ``log`` / ``event`` / ``raw`` / ``node`` on log records
``zoom.message``        the message of a data event that also has a payload
``zoom.code.commit``    the git commit of the record's file
``zoom.code.dirty``     whether that file differed from the commit when the node started
``zoom.status``         a span status other than ok/error (``interrupted``)
``zoom.<field>``        every record field OpenTelemetry has no place for (derived from
                        ``Record``, see ``_PLAIN_FIELDS``): ``zoom.on_behalf_of`` (the user
                        or tenant the work is done for), ``zoom.template`` (the un-rendered
                        message of a log), ``zoom.sources`` (ids of the records a data event
                        was derived from), ``zoom.cpu_ns`` (CPU time of the thread while a
                        synchronous span was open)
``span.kind``           ``server`` / ``client`` / ``producer`` / ``consumer`` (OTLP span kind)
======================  =============================================================
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import posixpath
import re
from collections.abc import Iterable, Mapping
from typing import Any, Final
from urllib.parse import urlsplit

import msgspec
from google.protobuf import json_format
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs, ScopeLogs
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

from zoomtrace.wire.propagation import TRACE_STATE_ATTR
from zoomtrace.wire.record import Code, Error, Frame, Link, Record

__all__ = [
    "SCOPE",
    "exported_node_attrs",
    "logs_request_from_json",
    "node_resource",
    "otlp_to_records",
    "records_to_otlp",
    "resource_node_id",
    "traces_request_from_json",
]

#: The instrumentation scope of records that name none of their own.
SCOPE: Final = "zoomtrace"

RECORD_ID: Final = "zoom.record.id"
KIND: Final = "zoom.kind"
MESSAGE: Final = "zoom.message"
COMMIT: Final = "zoom.code.commit"
DIRTY: Final = "zoom.code.dirty"
STATUS: Final = "zoom.status"
NODE_ID: Final = "zoom.node.id"
SPAN_KIND: Final = "span.kind"
SCOPE_NAME: Final = "otel.scope.name"
SCOPE_VERSION: Final = "otel.scope.version"
STATUS_DESCRIPTION: Final = "otel.status_description"
#: A span's W3C ``tracestate`` (as OTLP ``Span.trace_state`` carries it: inherited from its parent).
TRACE_STATE: Final = TRACE_STATE_ATTR
#: What OTLP says of a span's links beyond their ids: ``[{"trace_id", "span_id", "trace_state",
#: "attributes", "flags"}, ...]``, for the links that say more (a record's ``links`` only hold ids).
LINK_DETAILS: Final = "otel.links"
THREAD: Final = "thread.name"
FILE, LINE, FUNCTION = "code.file.path", "code.line.number", "code.function.name"
#: Older semantic-convention names still sent by many SDKs (read, never written).
_OLD_CODE: Final = {"code.filepath": FILE, "code.lineno": LINE, "code.function": FUNCTION}
_NODE_EVENT_PREFIX: Final = "zoom.node."

_KINDS: Final[dict[str, Span.SpanKind.ValueType]] = {
    "internal": Span.SPAN_KIND_INTERNAL,
    "server": Span.SPAN_KIND_SERVER,
    "client": Span.SPAN_KIND_CLIENT,
    "producer": Span.SPAN_KIND_PRODUCER,
    "consumer": Span.SPAN_KIND_CONSUMER,
}
_KIND_NAMES: Final = {value: name for name, value in _KINDS.items()}

#: Python logging levels <-> OTLP SeverityNumber (Logs Data Model, "Mapping of SeverityNumber").
_SEVERITY: Final = {"DEBUG": 5, "INFO": 9, "WARNING": 13, "ERROR": 17, "CRITICAL": 21}
_SEVERITY_TEXT: Final = {"WARN": "WARNING", "FATAL": "CRITICAL", "TRACE": "DEBUG", "ERR": "ERROR"}
_INT64: Final = (-(2**63), 2**63 - 1)

#: Record fields that have a place in OTLP, or a mapping of their own here (``v``: OTLP is read as the
#: current schema). Every other field is *plain*: it travels as a ``zoom.<field>`` attribute, both ways.
_MAPPED_FIELDS: Final = frozenset(
    {
        "id",
        "v",
        "kind",
        "type",
        "ts_ns",
        "end_ns",
        "node_id",
        "trace_id",
        "span_id",
        "parent_span_id",
        "links",
        "code",
        "level",
        "message",
        "attrs",
        "payload",
        "error",
        "status",
        "thread",
    }
)
#: ``(field, attribute, type)`` of the plain fields, from ``Record``: a new field needs no change here.
_PLAIN_FIELDS: Final = tuple(
    (f.name, f"zoom.{f.name}", f.type) for f in msgspec.structs.fields(Record) if f.name not in _MAPPED_FIELDS
)

#: Node record fields -> resource attributes (OpenTelemetry semantic conventions and Zoom's own).
_RESOURCE_FROM_NODE: Final = {
    "service": "service.name",
    "version": "service.version",
    "env": "deployment.environment.name",
    "host": "host.name",
    "pid": "process.pid",
    "commit": "vcs.ref.head.revision",
    "branch": "vcs.ref.head.name",
    "group": "zoom.group",
    "node_id": NODE_ID,
    "parent_node_id": "zoom.node.parent_id",
    "python": "process.runtime.version",
    "argv": "process.command_line",
}
_NODE_FROM_RESOURCE: Final = {value: key for key, value in _RESOURCE_FROM_NODE.items()}
_NODE_FROM_RESOURCE.update({"deployment.environment": "env", "service.namespace": "group"})


# ----------------------------------------------------------------------------------------
# values
# ----------------------------------------------------------------------------------------


def _fill(out: AnyValue, value: Any, depth: int) -> None:
    if value is None:
        return
    if depth > 64:  # records are sanitised before they get here; this only guards odd callers
        out.string_value = "[too deep]"
    elif isinstance(value, bool):
        out.bool_value = value
    elif isinstance(value, int):
        if _INT64[0] <= value <= _INT64[1]:
            out.int_value = value
        else:
            out.string_value = str(value)
    elif isinstance(value, float):
        out.double_value = value
    elif isinstance(value, str):
        out.string_value = value
    elif isinstance(value, bytes | bytearray | memoryview):
        out.bytes_value = bytes(value)
    elif isinstance(value, Mapping):
        kvlist = out.kvlist_value
        kvlist.SetInParent()
        for key, item in value.items():
            _fill(kvlist.values.add(key=str(key)).value, item, depth + 1)
    elif isinstance(value, list | tuple | set | frozenset):
        array = out.array_value
        array.SetInParent()
        for item in value:
            _fill(array.values.add(), item, depth + 1)
    else:
        out.string_value = repr(value)


def from_any(value: AnyValue) -> Any:
    """An OTLP ``AnyValue`` as a Python value; bytes stay bytes."""
    which = value.WhichOneof("value")
    if which is None:
        return None
    if which == "kvlist_value":
        return {kv.key: from_any(kv.value) for kv in value.kvlist_value.values}
    if which == "array_value":
        return [from_any(item) for item in value.array_value.values]
    return getattr(value, which)


def _attr_value(value: AnyValue) -> Any:
    """Like ``from_any``, but JSON-safe for record attributes: bytes become base64 text."""
    result = from_any(value)
    return _json_safe(result)


def _json_safe(value: Any) -> Any:
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    return value


def _put(attributes: Any, key: str, value: Any) -> None:
    kv: KeyValue = attributes.add(key=key)
    _fill(kv.value, value, 0)


def _empty(value: Any) -> bool:
    return value is None or value in ("", [], {})


def _put_plain(attributes: Any, record: Record) -> None:
    """The plain fields of ``record`` that have a value, as ``zoom.<field>`` attributes."""
    for name, key, _ in _PLAIN_FIELDS:
        value = getattr(record, name)
        if not _empty(value):
            _put(attributes, key, value)


def _take_plain(attrs: dict[str, Any]) -> dict[str, Any]:
    """The plain fields in ``attrs`` (taken out of it); a value of the wrong type stays an attribute."""
    fields: dict[str, Any] = {}
    for name, key, annotation in _PLAIN_FIELDS:
        if key not in attrs:
            continue
        value = attrs.pop(key)
        if _empty(value):
            continue
        try:
            fields[name] = msgspec.convert(value, annotation)
        except msgspec.ValidationError:
            attrs[key] = value
    return fields


def _attrs(attributes: Iterable[KeyValue]) -> dict[str, Any]:
    return {kv.key: _attr_value(kv.value) for kv in attributes}


# ----------------------------------------------------------------------------------------
# ids
# ----------------------------------------------------------------------------------------


def _id_bytes(hex_id: str | None, size: int) -> bytes:
    if not hex_id:
        return b""
    try:
        raw = bytes.fromhex(hex_id)
    except ValueError:
        return b""
    return raw if len(raw) == size and any(raw) else b""


def _id_hex(raw: bytes, size: int) -> str | None:
    return raw.hex() if len(raw) == size and any(raw) else None


def derived_id(ts_ns: int, *parts: bytes | str) -> str:
    """A UUIDv7-shaped id whose time is ``ts_ns`` and whose other bits are a digest of ``parts``.

    The same content always gets the same id, so a retried export is stored once.
    """
    digest = hashlib.sha256(b"\x00".join(p.encode() if isinstance(p, str) else p for p in parts)).digest()
    r = int.from_bytes(digest[:10], "big")
    ms = max(ts_ns, 0) // 1_000_000
    value = (ms & 0xFFFFFFFFFFFF) << 80 | 0x7 << 76 | (r >> 68 & 0xFFF) << 64 | 0b10 << 62 | (r & 0x3FFFFFFFFFFFFFFF)
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def resource_node_id(resource: Mapping[str, Any]) -> str:
    """The Zoom node of an OTLP resource: its ``zoom.node.id``, else one derived from its attributes.

    A process instrumented with OpenTelemetry alone is one node per distinct resource (its
    ``service.instance.id``, when the SDK sets one, tells runs apart).
    """
    node_id = resource.get(NODE_ID)
    if isinstance(node_id, str) and node_id:
        return node_id
    digest = hashlib.sha256(json.dumps(resource, sort_keys=True, default=repr).encode()).hexdigest()
    # UUIDv8 ("custom"): the layout of a UUID, the bits of the digest.
    h = f"{digest[:12]}8{digest[13:16]}{(int(digest[16], 16) & 0x3 | 0x8):x}{digest[17:32]}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


# ----------------------------------------------------------------------------------------
# export: records -> OTLP
# ----------------------------------------------------------------------------------------


def node_resource(node: Mapping[str, Any]) -> dict[str, Any]:
    """Resource attributes for a node, from the attributes of its *started* record (or ``Node.describe()``)."""
    from zoomtrace._version import __version__

    attrs: dict[str, Any] = {}
    for key, name in _RESOURCE_FROM_NODE.items():
        value = node.get(key)
        if value is not None and value != "":
            attrs[name] = value
    attrs.setdefault("service.name", "unknown_service:python")
    attrs["telemetry.sdk.name"] = "zoomtrace"
    attrs["telemetry.sdk.language"] = "python"
    attrs["telemetry.sdk.version"] = __version__
    return attrs


def _code_attrs(attributes: Any, code: Code | None) -> None:
    if code is None:
        return
    _put(attributes, FILE, code.file)
    _put(attributes, LINE, code.line)
    _put(attributes, FUNCTION, code.function)
    if code.commit:
        _put(attributes, COMMIT, code.commit)
    _put(attributes, DIRTY, code.dirty)


def _stacktrace(error: Error) -> str:
    """Python's traceback layout, so tools that parse Python stack traces read it."""
    lines = ["Traceback (most recent call last):"]
    lines += [f'  File "{f.file}", line {f.line}, in {f.function}' for f in error.frames]
    lines.append(f"{error.type}: {error.message}" if error.message else error.type)
    return "\n".join(lines)


_FRAME = re.compile(r'^\s*File "(?P<file>[^"]*)", line (?P<line>\d+), in (?P<function>.*)$', re.MULTILINE)


def _error_attrs(attributes: Any, error: Error) -> None:
    _put(attributes, "exception.type", error.type)
    _put(attributes, "exception.message", error.message)
    _put(attributes, "exception.stacktrace", _stacktrace(error))


def _span(record: Record) -> tuple[str, Span]:
    """The OTLP span of a span record, and the scope it belongs to."""
    attrs = dict(record.attrs)
    scope = attrs.pop(SCOPE_NAME, None)
    attrs.pop(SCOPE_VERSION, None)
    kind = _KINDS.get(str(attrs.pop(SPAN_KIND, "internal")).lower(), Span.SPAN_KIND_INTERNAL)
    description = attrs.pop(STATUS_DESCRIPTION, None)
    trace_state = attrs.pop(TRACE_STATE, None)
    details = _link_details(attrs.pop(LINK_DETAILS, None))
    span = Span(
        trace_id=_id_bytes(record.trace_id, 16),
        span_id=_id_bytes(record.span_id, 8),
        parent_span_id=_id_bytes(record.parent_span_id, 8),
        name=record.type,
        kind=kind,
        start_time_unix_nano=record.ts_ns,
        end_time_unix_nano=record.end_ns if record.end_ns is not None else record.ts_ns,
        flags=0x100,  # SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE_MASK, parent not known to be remote
        trace_state=trace_state if isinstance(trace_state, str) else "",
    )
    for key, value in attrs.items():
        _put(span.attributes, key, value)
    _put(span.attributes, RECORD_ID, record.id)
    _code_attrs(span.attributes, record.code)
    _put_plain(span.attributes, record)
    if record.thread:
        _put(span.attributes, THREAD, record.thread)
    for link in record.links:
        out = span.links.add(trace_id=_id_bytes(link.trace_id, 16), span_id=_id_bytes(link.span_id, 8))
        said = details.get((link.trace_id, link.span_id), {})
        state = said.get("trace_state")
        if isinstance(state, str):
            out.trace_state = state
        link_attrs = said.get("attributes")
        if isinstance(link_attrs, dict):
            for key, value in link_attrs.items():
                _put(out.attributes, str(key), value)
        flags = said.get("flags")
        if isinstance(flags, int) and 0 <= flags < 2**32:
            out.flags = flags
    status = record.status or "ok"
    if status not in ("ok", "error"):
        _put(span.attributes, STATUS, status)
    if status in ("error", "interrupted"):
        message = description or (
            f"{record.error.type}: {record.error.message}" if record.error is not None else status
        )
        span.status.CopyFrom(Status(code=Status.STATUS_CODE_ERROR, message=str(message)))
    elif description:
        _put(span.attributes, STATUS_DESCRIPTION, description)
    if record.error is not None:
        event = span.events.add(name="exception", time_unix_nano=span.end_time_unix_nano)
        _error_attrs(event.attributes, record.error)
    return str(scope or SCOPE), span


def _link_details(value: Any) -> dict[tuple[str, str], dict[str, Any]]:
    """``LINK_DETAILS`` by ``(trace_id, span_id)``; an attribute of another shape gives nothing."""
    if not isinstance(value, list):
        return {}
    return {
        (item["trace_id"], item["span_id"]): item
        for item in value
        if isinstance(item, dict) and isinstance(item.get("trace_id"), str) and isinstance(item.get("span_id"), str)
    }


def _log(record: Record) -> tuple[str, LogRecord]:
    """The OTLP log record of a log, event, raw or node record, and the scope it belongs to."""
    log = LogRecord(
        time_unix_nano=record.ts_ns,
        observed_time_unix_nano=record.ts_ns,
        trace_id=_id_bytes(record.trace_id, 16),
        span_id=_id_bytes(record.span_id, 8),
    )
    if record.level:
        log.severity_text = record.level
        log.severity_number = _SEVERITY.get(record.level, 0)  # type: ignore[assignment]
    if record.kind == "log":
        scope = record.type
        if record.message is not None:
            log.body.string_value = record.message
    elif record.kind == "node":
        scope = SCOPE
        log.event_name = _NODE_EVENT_PREFIX + record.type
        if record.payload is not None:
            _fill(log.body, record.payload, 0)
    else:
        scope = SCOPE
        log.event_name = record.type
        payload = record.payload
        if type(payload) is msgspec.Raw:  # an event's payload as its JSON (runtime.encoder)
            payload = msgspec.json.decode(payload)
        if payload is not None:
            _fill(log.body, payload, 0)
        elif record.message is not None:
            log.body.string_value = record.message
    shown = exported_node_attrs(record.type, record.attrs) if record.kind == "node" else record.attrs
    for key, value in shown.items():
        _put(log.attributes, key, value)
    _put(log.attributes, RECORD_ID, record.id)
    if record.kind != "log":
        _put(log.attributes, KIND, record.kind)
        if record.kind != "node" and record.message is not None and record.payload is not None:
            _put(log.attributes, MESSAGE, record.message)
    _put_plain(log.attributes, record)
    _code_attrs(log.attributes, record.code)
    if record.error is not None:
        _error_attrs(log.attributes, record.error)
    return scope, log


def _repo_name(root: str) -> str:
    """A repository root as its directory's name: what it is, not where it lies on this machine."""
    return posixpath.basename(root.rstrip("/")) or root[:1]


_BARE_SINK: Final = re.compile(r"[a-z][a-z0-9+.-]*")


def _sink_outside(url: str) -> str:
    """A sink URL as scheme and host(s) only: ``kafka://u:pw@b1:9092?sasl.password=x`` -> ``kafka://b1:9092``."""
    scheme, sep, _ = url.partition("://")
    if not sep:
        return url if _BARE_SINK.fullmatch(url) else "?"  # "spool", "stdout"; anything else may hold anything
    try:
        parts = urlsplit(url)
    except ValueError:
        return scheme if _BARE_SINK.fullmatch(scheme) else "?"
    hosts = parts.netloc.rpartition("@")[2]
    return f"{parts.scheme}://{hosts}" if hosts else parts.scheme


def exported_node_attrs(type_: str, attrs: Mapping[str, Any]) -> Mapping[str, Any]:
    """What a node record's attributes say outside the machine (see the module docstring): ``attrs``
    with repository roots as names and sink URLs as scheme and host; ``attrs`` itself for other types."""
    if type_ not in ("started", "repo"):
        return attrs
    out = dict(attrs)
    for key in ("repo", "root"):
        if isinstance(out.get(key), str):
            out[key] = _repo_name(out[key])
    repos = out.get("repos")
    if isinstance(repos, list):
        out["repos"] = [
            {**r, "root": _repo_name(r["root"])} if isinstance(r, dict) and isinstance(r.get("root"), str) else r
            for r in repos
        ]
    sinks = out.get("sinks")
    if isinstance(sinks, list):
        out["sinks"] = [_sink_outside(url) if isinstance(url, str) else "?" for url in sinks]
    return out


def exportable(record: Record) -> bool:
    """Whether a record goes to an OpenTelemetry backend.

    File snapshots (the content of dirty source files) stay in Zoom's own sinks: they are
    source code, not telemetry, and an external backend has no use for them.
    """
    return not (record.kind == "node" and record.type == "snapshot")


def records_to_otlp(
    records: Iterable[Record], resource_of: Mapping[str, Mapping[str, Any]]
) -> tuple[ExportTraceServiceRequest | None, ExportLogsServiceRequest | None]:
    """OTLP export requests for ``records`` (``None`` for a signal with nothing to send).

    ``resource_of`` maps a node id to that node's resource attributes (``node_resource``).
    """
    spans: dict[str, dict[str, list[Span]]] = {}
    logs: dict[str, dict[str, list[LogRecord]]] = {}
    for record in records:
        if not exportable(record):
            continue
        if record.kind == "span":
            if not record.trace_id or not record.span_id:
                continue
            scope, span = _span(record)
            spans.setdefault(record.node_id, {}).setdefault(scope, []).append(span)
        else:
            scope, log = _log(record)
            logs.setdefault(record.node_id, {}).setdefault(scope, []).append(log)

    def resource(node_id: str) -> Resource:
        out = Resource()
        for key, value in (resource_of.get(node_id) or {NODE_ID: node_id}).items():
            _put(out.attributes, key, value)
        return out

    traces_request = None
    if spans:
        traces_request = ExportTraceServiceRequest()
        for node_id, scopes in spans.items():
            rs: ResourceSpans = traces_request.resource_spans.add()
            rs.resource.CopyFrom(resource(node_id))
            for scope, span_list in scopes.items():
                ss: ScopeSpans = rs.scope_spans.add()
                ss.scope.CopyFrom(InstrumentationScope(name=scope))
                ss.spans.extend(span_list)
    logs_request = None
    if logs:
        logs_request = ExportLogsServiceRequest()
        for node_id, log_scopes in logs.items():
            rl: ResourceLogs = logs_request.resource_logs.add()
            rl.resource.CopyFrom(resource(node_id))
            for scope, log_list in log_scopes.items():
                sl: ScopeLogs = rl.scope_logs.add()
                sl.scope.CopyFrom(InstrumentationScope(name=scope))
                sl.log_records.extend(log_list)
    return traces_request, logs_request


# ----------------------------------------------------------------------------------------
# import: OTLP -> records
# ----------------------------------------------------------------------------------------


def _take_code(attrs: dict[str, Any]) -> Code | None:
    for old, new in _OLD_CODE.items():
        if old in attrs:
            attrs.setdefault(new, attrs.pop(old))
    file, line, function = attrs.pop(FILE, None), attrs.pop(LINE, None), attrs.pop(FUNCTION, None)
    commit, dirty = attrs.pop(COMMIT, None), attrs.pop(DIRTY, False)
    if file is None and function is None:
        return None
    try:
        line_no = int(line) if line is not None else 0
    except (TypeError, ValueError):
        line_no = 0
    return Code(str(file or "?"), line_no, str(function or "?"), str(commit) if commit else None, dirty is True)


def _take_error(attrs: dict[str, Any]) -> Error | None:
    if "exception.type" not in attrs and "exception.message" not in attrs:
        return None
    type_ = str(attrs.pop("exception.type", None) or "Exception")
    message = str(attrs.pop("exception.message", None) or "")
    stacktrace = attrs.pop("exception.stacktrace", None)
    attrs.pop("exception.escaped", None)
    frames: list[Frame] = []
    if isinstance(stacktrace, str):
        frames = [Frame(m["file"], int(m["line"]), m["function"]) for m in _FRAME.finditer(stacktrace)]
        if not frames and stacktrace:
            attrs["exception.stacktrace"] = stacktrace  # not Python's layout: keep it as sent
    return Error(type_, message, frames)


def _level(log: LogRecord) -> str | None:
    text = log.severity_text.upper()
    if text in _SEVERITY:
        return text
    if text in _SEVERITY_TEXT:
        return _SEVERITY_TEXT[text]
    number = int(log.severity_number)
    if number <= 0:
        return text or None
    for name, floor in reversed(_SEVERITY.items()):
        if number >= floor:
            return name
    return "DEBUG"


def _resource_node(resource: Mapping[str, Any], node_id: str, ts_ns: int) -> Record:
    """The *started* node record standing for a resource that is not a Zoom node."""
    attrs: dict[str, Any] = {key: None for key in ("service", "env", "group", "version", "host", "pid", "commit")}
    for key, value in resource.items():
        field = _NODE_FROM_RESOURCE.get(key)
        if field is not None and attrs.get(field) is None:
            attrs[field] = value
    attrs.update(node_id=node_id, started_ns=ts_ns, source="otlp", resource=dict(resource))
    if attrs["service"] is None:
        attrs["service"] = "unknown_service"
    if attrs["env"] is None:
        attrs["env"] = "unknown"
    return Record(
        id=derived_id(ts_ns, "node", node_id), kind="node", type="started", ts_ns=ts_ns, node_id=node_id, attrs=attrs
    )


def _scope_attrs(scope: InstrumentationScope) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if scope.name and scope.name != SCOPE:
        out[SCOPE_NAME] = scope.name
        if scope.version:
            out[SCOPE_VERSION] = scope.version
    return out


def _span_records(span: Span, scope: InstrumentationScope, node_id: str) -> list[Record]:
    trace_id = _id_hex(span.trace_id, 16)
    span_id = _id_hex(span.span_id, 8)
    if trace_id is None or span_id is None:
        return []
    attrs = {**_scope_attrs(scope), **_attrs(span.attributes)}
    record_id = attrs.pop(RECORD_ID, None)
    code = _take_code(attrs)
    plain = _take_plain(attrs)
    thread = attrs.pop(THREAD, None)
    status = attrs.pop(STATUS, None)
    if span.kind not in (Span.SPAN_KIND_INTERNAL, Span.SPAN_KIND_UNSPECIFIED):
        attrs[SPAN_KIND] = _KIND_NAMES.get(span.kind, str(span.kind))
    if status is None:
        status = "error" if span.status.code == Status.STATUS_CODE_ERROR else "ok"
    start = int(span.start_time_unix_nano)
    records: list[Record] = []
    error: Error | None = None
    for event in span.events:
        event_attrs = _attrs(event.attributes)
        ts = int(event.time_unix_nano) or start
        if event.name == "exception" and error is None:
            error = _take_error(event_attrs)
            attrs.update(event_attrs)  # whatever else the SDK said about the exception
            continue
        event_error = _take_error(event_attrs)
        records.append(
            Record(
                id=derived_id(ts, "span-event", trace_id, span_id, event.SerializeToString(deterministic=True)),
                kind="log",
                type=event.name or "event",
                ts_ns=ts,
                node_id=node_id,
                trace_id=trace_id,
                span_id=span_id,
                level="ERROR" if event_error is not None else "INFO",
                message=event.name,
                attrs=event_attrs,
                error=event_error,
                code=code,
            )
        )
    said = {str(status), f"{error.type}: {error.message}" if error is not None else ""}
    if span.status.message and span.status.message not in said:
        attrs[STATUS_DESCRIPTION] = span.status.message
    links: list[Link] = []
    details: list[dict[str, Any]] = []
    for link in span.links:
        link_trace, link_span = _id_hex(link.trace_id, 16), _id_hex(link.span_id, 8)
        if link_trace is None or link_span is None:
            continue
        links.append(Link(link_trace, link_span))
        extra: dict[str, Any] = {}
        if link.trace_state:
            extra["trace_state"] = link.trace_state
        if link.attributes:
            extra["attributes"] = _attrs(link.attributes)
        if link.flags:
            extra["flags"] = link.flags  # trace flags and whether the linked context is remote
        if extra:
            details.append({"trace_id": link_trace, "span_id": link_span, **extra})
    if details:
        attrs[LINK_DETAILS] = details
    if span.trace_state:
        attrs[TRACE_STATE] = span.trace_state
    records.insert(
        0,
        Record(
            id=str(record_id) if record_id else derived_id(start, "span", trace_id, span_id),
            kind="span",
            type=span.name,
            ts_ns=start,
            end_ns=int(span.end_time_unix_nano) or start,
            node_id=node_id,
            trace_id=trace_id,
            span_id=span_id,
            parent_span_id=_id_hex(span.parent_span_id, 8),
            links=links,
            code=code,
            attrs=attrs,
            status=str(status),
            error=error,
            thread=str(thread) if thread else None,
            **plain,
        ),
    )
    return records


def _log_record(log: LogRecord, scope: InstrumentationScope, node_id: str, resource_key: bytes) -> Record:
    attrs = _attrs(log.attributes)
    record_id = attrs.pop(RECORD_ID, None)
    kind = str(attrs.pop(KIND, None) or "")
    event_name = log.event_name or attrs.pop("event.name", None) or ""
    body = from_any(log.body)
    ts = int(log.time_unix_nano) or int(log.observed_time_unix_nano)
    code = _take_code(attrs)
    error = _take_error(attrs)
    plain = _take_plain(attrs)
    message_attr = attrs.pop(MESSAGE, None)
    message: str | None = None
    payload: Any = None
    if not kind:
        kind = "event" if event_name else "log"
    if kind == "log":
        type_ = scope.name or "otel"
        if body is None or isinstance(body, str):
            message = body
        else:
            message = json.dumps(_json_safe(body), ensure_ascii=False, default=repr)
        if scope.version:
            attrs.setdefault(SCOPE_VERSION, scope.version)
    elif kind == "node":
        type_ = event_name.removeprefix(_NODE_EVENT_PREFIX)
        payload = body
    else:
        type_ = event_name or scope.name or kind
        payload = body
        message = str(message_attr) if message_attr is not None else None
    if kind == "event" and not record_id:
        attrs.update(_scope_attrs(scope))
    if not record_id:
        record_id = derived_id(ts, "log", resource_key, scope.name, log.SerializeToString(deterministic=True))
    return Record(
        id=str(record_id),
        kind=kind,
        type=str(type_),
        ts_ns=ts,
        node_id=node_id,
        trace_id=_id_hex(log.trace_id, 16),
        span_id=_id_hex(log.span_id, 8),
        level=_level(log),
        message=message,
        attrs=attrs,
        payload=payload,
        error=error,
        code=code,
        **plain,
    )


def otlp_to_records(
    request: ExportTraceServiceRequest | ExportLogsServiceRequest, *, known_nodes: set[str] | None = None
) -> tuple[list[Record], int]:
    """Zoom records for an OTLP export request, and how many items had to be rejected.

    A resource without ``zoom.node.id`` gets a *started* node record (once per id in
    ``known_nodes``, which is updated), so the story can name its service and host.
    Spans without valid trace and span ids are rejected (OTLP requires them).
    """
    seen = known_nodes if known_nodes is not None else set()
    records: list[Record] = []
    rejected = 0
    groups: list[tuple[Resource, list[tuple[InstrumentationScope, list[Any]]]]] = []
    if isinstance(request, ExportTraceServiceRequest):
        for rs in request.resource_spans:
            groups.append((rs.resource, [(ss.scope, list(ss.spans)) for ss in rs.scope_spans]))
    else:
        for rl in request.resource_logs:
            groups.append((rl.resource, [(sl.scope, list(sl.log_records)) for sl in rl.scope_logs]))
    for resource_pb, scopes in groups:
        resource = _attrs(resource_pb.attributes)
        node_id = resource_node_id(resource)
        resource_key = resource_pb.SerializeToString(deterministic=True)
        group_records: list[Record] = []
        for scope, items in scopes:
            for item in items:
                if isinstance(item, Span):
                    made = _span_records(item, scope, node_id)
                    if not made:
                        rejected += 1
                    group_records.extend(made)
                else:
                    group_records.append(_log_record(item, scope, node_id, resource_key))
        if NODE_ID not in resource and node_id not in seen and group_records:
            seen.add(node_id)
            records.append(_resource_node(resource, node_id, min(r.ts_ns for r in group_records)))
        records.extend(group_records)
    return records, rejected


# ----------------------------------------------------------------------------------------
# OTLP/JSON
# ----------------------------------------------------------------------------------------


class OtlpJsonError(ValueError):
    """An OTLP/JSON body that cannot be read."""


def _hex_to_b64(obj: dict[str, Any], *keys: str) -> None:
    for key in keys:
        for name in (key, _snake(key)):
            value = obj.get(name)
            if isinstance(value, str):
                try:
                    obj[name] = base64.b64encode(bytes.fromhex(value)).decode("ascii")
                except ValueError:
                    raise OtlpJsonError(f"{name} {value!r} is not hex-encoded (OTLP/JSON ids are hex)") from None


def _snake(name: str) -> str:
    return re.sub(r"([A-Z])", lambda m: "_" + m.group(1).lower(), name)


def _items(obj: Any, key: str) -> list[Any]:
    value = obj.get(key, obj.get(_snake(key))) if isinstance(obj, dict) else None
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _load(data: bytes) -> dict[str, Any]:
    try:
        document = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise OtlpJsonError(f"not JSON: {exc}") from None
    if not isinstance(document, dict):
        raise OtlpJsonError("an OTLP/JSON request is a JSON object")
    return document


def _parse(document: dict[str, Any], message: Any) -> None:
    try:
        json_format.ParseDict(document, message, ignore_unknown_fields=True)
    except (json_format.ParseError, binascii.Error) as exc:
        raise OtlpJsonError(str(exc)) from None


def traces_request_from_json(data: bytes) -> ExportTraceServiceRequest:
    """An OTLP/JSON traces body (hex ids, lowerCamelCase names, enums as numbers) as protobuf."""
    document = _load(data)
    for rs in _items(document, "resourceSpans"):
        for ss in _items(rs, "scopeSpans"):
            for span in _items(ss, "spans"):
                _hex_to_b64(span, "traceId", "spanId", "parentSpanId")
                for link in _items(span, "links"):
                    _hex_to_b64(link, "traceId", "spanId")
    request = ExportTraceServiceRequest()
    _parse(document, request)
    return request


def logs_request_from_json(data: bytes) -> ExportLogsServiceRequest:
    """An OTLP/JSON logs body as protobuf."""
    document = _load(data)
    for rl in _items(document, "resourceLogs"):
        for sl in _items(rl, "scopeLogs"):
            for log in _items(sl, "logRecords"):
                _hex_to_b64(log, "traceId", "spanId")
    request = ExportLogsServiceRequest()
    _parse(document, request)
    return request
