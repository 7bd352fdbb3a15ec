/* What the parts of the C speedups module share: each .c file adds its own functions and types to the module
 * (its ``*_init``), and the ids and the scans lend the encoder one function each. */
#ifndef ZOOMTRACE_SPEEDUPS_PARTS_H
#define ZOOMTRACE_SPEEDUPS_PARTS_H

#include <Python.h>
#include <time.h>

/* _speedups_ids.c: uuid7, new_trace_id, new_span_id. */
int ids_init(PyObject *module);

/* _speedups_ids.c: wire.record.uuid7 of ``ts_ns`` (an int; NULL or None: now), a new reference or NULL. */
PyObject *speedups_uuid7(PyObject *ts_ns);

/* _speedups_ids.c: wire.record.new_trace_id() and new_span_id(), new references or NULL. */
PyObject *speedups_new_trace_id(void);
PyObject *speedups_new_span_id(void);

/* _speedups_scan.c: needs_care, json_unchanged, key_cache. */
int scan_init(PyObject *module);

/* _speedups_scan.c: sanitize._needs_care of a payload's JSON: "null" anywhere, or a run of digits too long for
 * msgpack. */
int speedups_needs_care(const unsigned char *p, Py_ssize_t n);

/* _speedups_scan.c: whether a payload's JSON needs no care (speedups_needs_care) and passes Scrubber.payload_unchanged's
 * tests of its bytes (no "=", "bearer" or PEM block, no card-shaped digits, plain UTF-8 text), with as many colons as
 * the ``keys`` its names' walk counted; in one pass over the bytes. */
int speedups_plain_json(const unsigned char *p, Py_ssize_t n, Py_ssize_t keys);

/* _speedups_caller.c: the caller's side of the hot path (Logger, Putter, configure_logger). */
int caller_init(PyObject *module);

/* _speedups_caller.c: a clock's time in nanoseconds as an int (CLOCK_REALTIME: time.time_ns();
 * CLOCK_THREAD_CPUTIME_ID: time.thread_time_ns()), a new reference or NULL. */
PyObject *speedups_clock_ns(clockid_t clock);

/* _speedups_caller.c: ``put(item)`` for the pipeline's put (a Putter without a Python call): 0, or -1 with an
 * exception set. */
int speedups_put(PyObject *put, PyObject *item);

/* _speedups_span.c: the caller's side of a span (span, SpanBase, configure_span). */
int span_init_module(PyObject *module);

/* _speedups_span.c: the Span type configure_span was given (NULL before), and the offset of its slot ``name`` in
 * its objects (0: no such slot, or not configured). */
PyTypeObject *speedups_span_type(void);
Py_ssize_t speedups_span_offset(const char *name);

/* _speedups_encoder.c: the worker's side of the hot path (LogBuilder, StdlogBuilder, SpanBuilder, EventBuilder,
 * Dispatch). */
int encoder_init(PyObject *module);

#endif
