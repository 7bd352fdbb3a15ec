/* What the parts of the C speedups module share: each .c file adds its own functions and types to it. */
#ifndef ZOOMTRACE_SPEEDUPS_H
#define ZOOMTRACE_SPEEDUPS_H

#include <Python.h>

/* _speedups_caller.c: the caller's side of the hot path (Logger, Putter, configure_logger). */
int caller_init(PyObject *module);

#endif
