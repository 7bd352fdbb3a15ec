"""A query's rows, one JSON object each, decoded in one msgspec call: as dicts, or as a reader's Struct.

Both backends build each row as a JSON object in the engine (docs/store.md, *Reading*). A reader that
reads a whole trace asks for its own Struct type instead of dicts (``StoreReader.trace_records``'s
``row_type``): decoding 100,000 records straight into Structs takes about half the time of decoding
dicts, the dicts' conversion and garbage collection afterwards are spared, and the engine builds only
the fields the Struct declares.
"""

from __future__ import annotations

from typing import Any

import msgspec

from zoomtrace._gc import gc_paused

#: One decoder per row type, made on first use.
_DECODERS: dict[type[Any], msgspec.json.Decoder[list[Any]]] = {}


def decode_rows(array: bytes | str, row_type: type[Any] = dict) -> list[Any]:
    """The rows of a JSON array of row objects, as ``row_type`` (``dict`` or a msgspec Struct)."""
    decoder = _DECODERS.get(row_type)
    if decoder is None:
        item: Any = dict[str, Any] if row_type is dict else row_type
        decoder = _DECODERS[row_type] = msgspec.json.Decoder(list[item])
    with gc_paused():
        return decoder.decode(array)


def fields_of(row_type: type[Any]) -> frozenset[str] | None:
    """The fields a row of ``row_type`` needs built (None: all of them, for a dict)."""
    return None if row_type is dict else frozenset(row_type.__struct_fields__)
