"""A trace's story: its spans as a tree, each with its own logs, events and raw data in time order.

Assembled here, above the store, so every backend tells the same story to the CLI, the UI and
``zoomtrace story --json``. Its shape is the read model's ``Story``: a span or a story record takes
the fields it shares with its record by name, so a new record field reaches the story by being
declared in ``zoomtrace.read.model``, not here.

The span tree (``span_tree``: which spans are roots, children in time order, a span recorded twice
shown once, a parent cycle broken) is shared with the outline of a big trace (``read.outline``), so
the waterfall's rows are the story's spans in the same order.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from itertools import repeat
from operator import attrgetter
from typing import Any, Final, Generic, NamedTuple, Protocol, TypeVar, cast

import msgspec

from zoomtrace._gc import gc_paused
from zoomtrace.read.model import RecordView, SpanView, Story, StoryNode, StoryRecord, StorySpan
from zoomtrace.store.ids import short_enough, the_one

#: The fields a span takes from its record as they are (the others: ``name`` is its ``type``, ``start_ns``
#: its ``ts_ns``, and ``duration_ns``, ``service``, ``remote_parent`` are worked out).
_SHARED: Final = tuple(f for f in SpanView.__struct_fields__ if f in RecordView.__struct_fields__)
_GET_SHARED: Final = attrgetter(*_SHARED)
_BY_TIME: Final = attrgetter("ts_ns", "id")

V = TypeVar("V", bound=SpanView)
K = TypeVar("K", str, int)
Row = Mapping[str, Any]


class SpanRecord(Protocol):
    """A span's record as a tree needs it: a ``RecordView``, or a Struct of fewer of its fields."""

    id: str
    span_id: str | None
    parent_span_id: str | None
    ts_ns: int
    end_ns: int | None


class Walk(NamedTuple, Generic[K]):
    """Spans in tree order (each root, then its children, in order), as columns."""

    #: Span ids (or, of ``tree_order``, positions in its time-ordered columns).
    span_ids: list[K]
    #: 0 for a root of the walk.
    depths: list[int]
    #: The position of each span's parent in the walk, -1 for a root of the walk.
    parents: list[int]


class SpanTree(NamedTuple):
    """A trace's spans as a tree: roots and children in time order (ties by record id)."""

    #: Span id -> its record (of a span recorded twice, the ended, later copy).
    spans: dict[str, Any]
    roots: list[str]
    #: Span id -> its child spans (a span without children has no entry).
    children: dict[str, list[str]]
    #: Every span, in tree order.
    walk: Walk[str]


class TreeOrder(NamedTuple):
    """``tree_order``'s answer: spans as their positions in time order."""

    #: Span id -> its position.
    position: dict[str, int]
    roots: list[int]
    #: Position -> its children's positions (a span without children has no entry).
    children: dict[int, list[int]]
    walk: Walk[int]


def span_tree(span_records: Iterable[SpanRecord]) -> SpanTree:
    """The tree of these span records (those without a span id left out). A span whose parent is not among
    them (a remote parent that was not recorded) is a root; so is a span caught in a parent cycle (corrupt
    data), which no root reaches."""
    spans: dict[str, SpanRecord] = {}
    for r in span_records:
        sid = r.span_id
        if sid:
            old = spans.get(sid)
            if old is None or copy_rank(r.end_ns, r.id) > copy_rank(old.end_ns, old.id):
                spans[sid] = r
    in_time = sorted(spans.values(), key=_BY_TIME)  # a store gives them in time order: a quick sort then
    ids = [cast(str, r.span_id) for r in in_time]
    tree = tree_order(ids, [r.parent_span_id for r in in_time])
    children = {ids[at]: [ids[k] for k in under] for at, under in tree.children.items()}
    walk = Walk([ids[at] for at in tree.walk.span_ids], tree.walk.depths, tree.walk.parents)
    return SpanTree(spans, [ids[at] for at in tree.roots], children, walk)


def tree_order(span_ids: Sequence[str], parent_ids: Sequence[str | None]) -> TreeOrder:
    """The tree of spans given in time order (``ts_ns``, then record id), each span id once, by position: what
    ``span_tree`` and a big trace's outline (``read.outline``) both order by, on numbers rather than ids."""
    position = {sid: at for at, sid in enumerate(span_ids)}
    find = cast(Mapping[str | None, int], position).get
    parent_at = list(map(find, parent_ids, repeat(-1)))
    roots: list[int] = []
    children: dict[int, list[int]] = {}
    for at, parent in enumerate(parent_at):
        if parent < 0 or parent == at:
            roots.append(at)
            continue
        under = children.get(parent)
        if under is None:
            children[parent] = [at]
        else:
            under.append(at)
    walk = depth_first(children, roots)
    if len(walk.span_ids) < len(span_ids):  # spans caught in a parent cycle: each cycle cut before its earliest span
        reached = set(walk.span_ids)
        for at in range(len(span_ids)):
            if at not in reached:
                children[parent_at[at]].remove(at)
                roots.append(at)
                reached.update(depth_first(children, [at]).span_ids)
        roots.sort()
        walk = depth_first(children, roots)
    return TreeOrder(position, roots, children, walk)


def depth_first(children: Mapping[K, list[K]], roots: Iterable[K], max_depth: int | None = None) -> Walk[K]:
    """The spans under ``roots`` in tree order (``children``: a ``SpanTree``'s), down to ``max_depth`` levels (a
    trace may be 20,000 spans deep: a stack, no recursion)."""
    walk: Walk[K] = Walk([], [], [])
    add_id, add_depth, add_parent = walk.span_ids.append, walk.depths.append, walk.parents.append
    stack = [(sid, 0, -1) for sid in reversed(list(roots))]
    pop, push = stack.pop, stack.extend
    while stack:
        sid, depth, parent = pop()
        position = len(walk.span_ids)
        add_id(sid)
        add_depth(depth)
        add_parent(parent)
        under = children.get(sid)
        if under and (max_depth is None or depth + 1 < max_depth):
            push([(child, depth + 1, position) for child in reversed(under)])
    return walk


def shown(tree: SpanTree, span_id: str | None = None, depth: int | None = None) -> Walk[str]:
    """The spans shown of a trace: all, or those of ``span_id``'s subtree (a full id or the start of one; raises
    ``NotFound`` when it is not a span of the trace), down to ``depth`` levels, in tree order."""
    if span_id is not None and span_id not in tree.spans:
        start = short_enough("span", span_id)
        span_id = the_one("span", span_id, [s for s in tree.spans if s.startswith(start)], place="this trace")
    if span_id is None and depth is None:
        return tree.walk
    return depth_first(tree.children, [span_id] if span_id is not None else tree.roots, depth)


def copy_rank(end_ns: int | None, record_id: str) -> tuple[bool, int, str]:
    """Of a span recorded twice (e.g. *interrupted* at stop, then again) the copy ranked highest is kept: the
    ended, later one."""
    return (end_ns is not None, end_ns or 0, record_id)


def assemble(trace_id: str, record_rows: Iterable[Row], node_rows: Iterable[Row]) -> Story:
    """The story of ``trace_id`` from rows in hand (``StoreReader.trace_rows``'): its records (any order;
    other traces' records and node records are left out) and the rows of the nodes they came from. It tells
    what ``query.story`` tells, reading the trace in parts (the tests hold one to the other)."""
    with gc_paused():
        rows = [r for r in record_rows if r.get("trace_id") in (None, trace_id) and r.get("kind") != "node"]
        tree = span_tree(msgspec.convert([r for r in rows if r["kind"] == "span"], list[RecordView]))
        records = msgspec.convert([r for r in rows if r["kind"] != "span"], list[StoryRecord])
        records.sort(key=lambda r: (r.ts_ns, r.id))
        start = min((r["ts_ns"] for r in rows), default=None)
        end = max((max(r["ts_ns"], r.get("end_ns") or r["ts_ns"]) for r in rows), default=None)
        node_ids = {r["node_id"] for r in rows if r.get("node_id")}
        return tell(trace_id, tree, records, node_rows, node_ids, (start, end))


def tell(
    trace_id: str,
    tree: SpanTree,
    records: Iterable[StoryRecord],
    node_rows: Iterable[Row],
    node_ids: Iterable[str],
    bounds: tuple[int | None, int | None],
    spans: Walk[str] | None = None,
) -> Story:
    """The story of a span tree and its records (in time order): of every span, or of ``spans`` only (a subtree,
    the top levels), whose records and the records of no recorded span are the ones given."""
    nodes = {n["node_id"]: n for n in node_rows}
    service_of = {node_id: node.get("service") for node_id, node in nodes.items()}
    walk = spans if spans is not None else tree.walk
    story_spans = span_views(tree, walk.span_ids, service_of, StorySpan)
    roots = [story_spans[sid] for sid, depth in zip(walk.span_ids, walk.depths, strict=True) if depth == 0]
    for sid, span in story_spans.items():
        span.children = [story_spans[child] for child in tree.children.get(sid, ()) if child in story_spans]
    loose: list[StoryRecord] = []
    for r in records:
        r.service = service_of.get(r.node_id)
        owner = story_spans.get(r.span_id)  # type: ignore[arg-type]
        if owner is not None:
            owner.records.append(r)
        elif r.span_id not in tree.spans:
            loose.append(r)
    start, end = bounds
    return Story(
        trace_id=trace_id,
        start_ns=start,
        end_ns=end,
        duration_ns=end - start if start is not None and end is not None else None,
        nodes=story_nodes(nodes, node_ids),
        spans=roots,
        records=loose,
    )


def story_nodes(nodes: Mapping[str, Row], node_ids: Iterable[str]) -> list[StoryNode]:
    """The process runs of these ids (their stored rows, or the id alone), those with a known start first, by start."""
    found = [msgspec.convert({**nodes.get(nid, {}), "node_id": nid}, StoryNode) for nid in set(node_ids)]
    found.sort(key=lambda n: (n.started_ns is None, n.started_ns or 0, n.node_id))
    return found


def failed(span: Any) -> bool:
    """A span failed: its status is ``error`` or it carries an exception."""
    return span.status == "error" or span.error is not None


def span_views(
    tree: SpanTree, span_ids: Iterable[str], service_of: Mapping[str, str | None], cls: type[V]
) -> dict[str, V]:
    """Span id -> the span (its ``RecordView`` in ``tree``) as ``cls`` (``StorySpan``, or ``SpanView`` without
    records and children): its record's fields under a span's names, with its service and whether it is a
    root whose parent is not in the trace."""
    roots = set(tree.roots)
    out = {}
    for sid in span_ids:
        r = tree.spans[sid]
        out[sid] = cls(
            **dict(zip(_SHARED, _GET_SHARED(r), strict=True)),
            name=r.type,
            start_ns=r.ts_ns,
            duration_ns=r.end_ns - r.ts_ns if r.end_ns is not None else None,
            service=service_of.get(r.node_id),
            remote_parent=sid in roots and r.parent_span_id is not None,
        )
    return out
