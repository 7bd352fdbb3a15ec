/* What the parts of the C speedups module share: each .c file adds its own functions and types to it. */
#ifndef ZOOMTRACE_SPEEDUPS_H
#define ZOOMTRACE_SPEEDUPS_H

#include <Python.h>

/* _speedups_caller.c: the caller's side of the hot path (Logger, Putter, configure_logger). */
int caller_init(PyObject *module);

/* _speedups_encoder.c: the worker's side of the hot path (LogBuilder, Dispatch). */
int encoder_init(PyObject *module);

/* _speedups.c: wire.record.uuid7 of ``ts_ns`` (an int; NULL or None: now), a new reference or NULL. */
PyObject *speedups_uuid7(PyObject *ts_ns);

/* _speedups.c: sanitize._needs_care of a payload's JSON: "null" anywhere, or a run of digits too long for msgpack. */
int speedups_needs_care(const unsigned char *p, Py_ssize_t n);

#endif
