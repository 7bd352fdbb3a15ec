"""What the caller's thread hands to the pipeline: plain tuples, tagged by their first element.

Tuples are the cheapest thing to build on the hot path; the worker turns them
into records (``zoomtrace.runtime.encoder``). Layouts:

- ``(LOG, ts_ns, code, offset, logger, level, template, attrs, parent, exc)`` (``offset``: the frame's
  ``f_lasti``, made a line number on the worker: ``f_lineno`` reads the code's line table at every call)
- ``(STDLOG, logging.LogRecord, parent)``
- ``(FOREIGN, ts_ns, filename, line, function, logger, level, message, attrs, parent, exc)`` (a log
  line rendered by another library: structlog, loguru)
- a ``Span`` itself, not in a tuple (an ended or interrupted span: the most common item, one object
  fewer each)
- ``(EVENT, id, ts_ns, code, offset, type, obj, sources, attrs, parent)`` (``sources``: a tuple)
- ``(RAW, id, ts_ns, code, offset, type, data, format, attrs, parent)``
- ``(RECORD, record)`` (already a ``Record``: node lifecycle)
"""

from typing import Final

LOG: Final = 0
STDLOG: Final = 1
EVENT: Final = 3
RAW: Final = 4
RECORD: Final = 5
FOREIGN: Final = 7
