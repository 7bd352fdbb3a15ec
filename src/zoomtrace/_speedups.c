/* Zoom's hot path in C: one extension module, ``zoomtrace._speedups``, whose parts each stand for Python code that
 * stays the reference and the fallback (ZOOMTRACE_PURE_PYTHON=1, or no compiler at install time;
 * docs/ARCHITECTURE.md, "Native code"). This file only makes the module of them:
 *
 *   _speedups_ids.c       record, trace and span ids (uuid7, new_trace_id, new_span_id)
 *   _speedups_scan.c      the scans of a data event's JSON (needs_care, json_unchanged, key_cache)
 *   _speedups_caller.c    the caller's side of a log call (Logger, Putter, configure_logger)
 *   _speedups_span.c      the caller's side of a span (SpanBase, configure_span)
 *   _speedups_encoder.c   the worker's side: records built in C (LogBuilder, StdlogBuilder, SpanBuilder,
 *                         EventBuilder, Dispatch)
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "_speedups_parts.h"

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_speedups", NULL, 0, NULL};

PyMODINIT_FUNC PyInit__speedups(void) {
    PyObject *created = PyModule_Create(&module);
    if (created != NULL &&
        (ids_init(created) < 0 || scan_init(created) < 0 || caller_init(created) < 0 || span_init_module(created) < 0 ||
         encoder_init(created) < 0))
        Py_CLEAR(created);
    return created;
}
