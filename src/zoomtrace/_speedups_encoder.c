/* The worker's side of the hot path in C: a log line's fused record and the encoder's dispatch, without a
 * Python frame of their own (docs/ARCHITECTURE.md, "Native code"). Once the caller's side was in C, the
 * worker's Python was the largest part of a log line's cost: the interpreter running ``Encoder._log``'s
 * checks, lookups and keyword arguments, and ``Encoder.__call__`` in front of it.
 *
 *   LogBuilder(careful, record, node_id, offsets, plain_templates, renderers, plain_keys, clean_strings,
 *              max_items, max_message, scrub_text)
 *                               zoomtrace.runtime.encoder.Encoder._log: builds the record of a line whose
 *                               template, attributes and call site the Python code has already found plain
 *                               (its caches say so) exactly as ``_log`` does; any other line, and any line
 *                               whose check would need Python, goes to ``careful`` (``_log`` itself), which
 *                               fills the caches for the next one
 *   Dispatch(span_type, build_span, builders)
 *                               zoomtrace.runtime.encoder.Encoder.__call__
 *
 * Each gives exactly what its Python reference gives (tests/test_speedups_encoder.py).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stddef.h>

#include "_speedups.h"

/* -- LogBuilder: Encoder._log ------------------------------------------------------------------------------ */

typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    PyObject *careful;         /* Encoder._log: every line this code does not build */
    PyObject *record;          /* wire.record.Record */
    PyObject *node_id;         /* str */
    PyObject *offsets;         /* dict: (id(code), offset) -> Code */
    PyObject *plain_templates; /* dict: template -> the message length from which it is scrubbed, or -1 */
    PyObject *renderers;       /* dict: template -> (percent twin, values getter, one) */
    PyObject *plain_keys;      /* set of str */
    PyObject *clean_strings;   /* set of str */
    PyObject *scrub_text;      /* Scrubber.scrub_text, or None */
    Py_ssize_t max_items;
    Py_ssize_t max_message;
} LogBuilder;

enum { NUMBERS = 1, WITH_TEXT = 2 }; /* as the encoder's _NUMBERS and _WITH_TEXT */

static PyObject *str_log, *str_app, *str_trace_id, *str_span_id, *str_on_behalf_of, *record_kwnames;

/* Encoder._plain_attrs, for the attributes it has already seen: NUMBERS or WITH_TEXT, or 0 when a key or a
 * text value is not known plain yet (Python decides, and remembers) or a value is of another kind. Runs no
 * Python code: exact str keys and values are hashed and compared by the interpreter's own code. */
static int plain_attrs(LogBuilder *self, PyObject *attrs) {
    if (PyDict_GET_SIZE(attrs) > self->max_items) return 0;
    int kind = NUMBERS;
    Py_ssize_t pos = 0;
    PyObject *key, *value;
    while (PyDict_Next(attrs, &pos, &key, &value)) {
        PyTypeObject *cls = Py_TYPE(value);
        if (cls == &PyUnicode_Type) {
            if (PySet_Contains(self->clean_strings, value) != 1) return 0;
            kind = WITH_TEXT;
        } else if (cls == &PyLong_Type) {
            int overflow;
            (void)PyLong_AsLongLongAndOverflow(value, &overflow); /* an exact int: no error but overflow */
            if (overflow < 0) return 0;
            if (overflow > 0) { /* beyond 2**63 - 1: msgpack still carries it up to 2**64 - 1 */
                (void)PyLong_AsUnsignedLongLong(value);
                if (PyErr_Occurred()) {
                    PyErr_Clear();
                    return 0;
                }
            }
        } else if (cls == &PyFloat_Type) {
            if (!isfinite(PyFloat_AS_DOUBLE(value))) return 0;
        } else if (cls != &PyBool_Type && value != Py_None) {
            return 0;
        }
        if (!PyUnicode_CheckExact(key) || PySet_Contains(self->plain_keys, key) != 1) return 0;
    }
    return kind;
}

/* The message of a plain template and plain attributes, by its ``%`` twin; NULL (an exception set or not) when
 * there is no twin or it does not fit (Python decides what such a line becomes). */
static PyObject *render(LogBuilder *self, PyObject *template, PyObject *attrs) {
    PyObject *renderer = PyDict_GetItemWithError(self->renderers, template);
    if (renderer == NULL || !PyTuple_CheckExact(renderer) || PyTuple_GET_SIZE(renderer) != 3) return NULL;
    PyObject *values = PyObject_CallOneArg(PyTuple_GET_ITEM(renderer, 1), attrs);
    if (values == NULL) return NULL;
    PyObject *args = values;
    if (PyTuple_GET_ITEM(renderer, 2) == Py_True) {
        args = PyTuple_Pack(1, values);
        Py_DECREF(values);
        if (args == NULL) return NULL;
    }
    PyObject *message = PyUnicode_Format(PyTuple_GET_ITEM(renderer, 0), args);
    Py_DECREF(args);
    return message;
}

/* The line's record, or NULL (an exception set or not) when ``careful`` must build it. */
static PyObject *build_log(LogBuilder *self, PyObject *item) {
    if (!PyTuple_CheckExact(item) || PyTuple_GET_SIZE(item) != 10) return NULL;
    PyObject *ts = PyTuple_GET_ITEM(item, 1), *code = PyTuple_GET_ITEM(item, 2), *offset = PyTuple_GET_ITEM(item, 3),
             *logger = PyTuple_GET_ITEM(item, 4), *level = PyTuple_GET_ITEM(item, 5),
             *template = PyTuple_GET_ITEM(item, 6), *attrs = PyTuple_GET_ITEM(item, 7),
             *parent = PyTuple_GET_ITEM(item, 8), *exc = PyTuple_GET_ITEM(item, 9);
    if (!PyUnicode_CheckExact(template) || exc != Py_None || !PyDict_CheckExact(attrs)) return NULL;
    PyObject *type;
    if (logger == Py_None || (PyUnicode_CheckExact(logger) && PyUnicode_GET_LENGTH(logger) == 0))
        type = str_app;
    else if (PyUnicode_CheckExact(logger))
        type = logger;
    else
        return NULL; /* a logger that is not text: _label */
    PyObject *threshold = PyDict_GetItemWithError(self->plain_templates, template);
    if (threshold == NULL || !PyLong_CheckExact(threshold)) return NULL;
    Py_ssize_t scrub_from = PyLong_AsSsize_t(threshold);
    if (scrub_from < 0) return NULL; /* -1: the careful path's */
    int with_attrs = PyDict_GET_SIZE(attrs) > 0;
    PyObject *message;
    if (with_attrs) {
        int kind = plain_attrs(self, attrs);
        if (kind == 0) return NULL;
        if (kind == WITH_TEXT) scrub_from = 0; /* text in the message: it is scrubbed whatever its length */
        message = render(self, template, attrs);
        if (message == NULL) return NULL;
        if (PyUnicode_GET_LENGTH(message) > self->max_message) {
            Py_DECREF(message);
            return NULL;
        }
    } else {
        message = Py_NewRef(template);
    }
    PyObject *key = NULL, *where = NULL, *trace_id = NULL, *span_id = NULL, *on_behalf_of = NULL, *id = NULL;
    PyObject *result = NULL;
    PyObject *code_id = PyLong_FromVoidPtr(code);
    if (code_id == NULL || (key = PyTuple_Pack(2, code_id, offset)) == NULL) goto done;
    where = PyDict_GetItemWithError(self->offsets, key); /* borrowed */
    if (where == NULL) goto done; /* a call site seen for the first time: Python resolves it */
    Py_INCREF(where);
    if (parent == Py_None) {
        trace_id = Py_NewRef(Py_None);
        span_id = Py_NewRef(Py_None);
        on_behalf_of = Py_NewRef(Py_None);
    } else {
        if ((trace_id = PyObject_GetAttr(parent, str_trace_id)) == NULL ||
            (span_id = PyObject_GetAttr(parent, str_span_id)) == NULL ||
            (on_behalf_of = PyObject_GetAttr(parent, str_on_behalf_of)) == NULL)
            goto done;
        if (on_behalf_of != Py_None && !PyUnicode_CheckExact(on_behalf_of)) goto done; /* _label */
    }
    if (self->scrub_text != Py_None && PyUnicode_GET_LENGTH(message) >= scrub_from) {
        PyObject *scrubbed = PyObject_CallOneArg(self->scrub_text, message); /* numbers can make a card number */
        if (scrubbed == NULL) goto done;
        Py_SETREF(message, scrubbed);
    }
    if ((id = speedups_uuid7(ts)) == NULL) goto done;
    PyObject *args[] = {id, str_log, type, ts, self->node_id, trace_id, span_id, on_behalf_of, where, level,
                        message, with_attrs ? template : Py_None, attrs};
    result = PyObject_Vectorcall(self->record, args, 0, record_kwnames);
done:
    Py_XDECREF(code_id);
    Py_XDECREF(key);
    Py_XDECREF(where);
    Py_XDECREF(trace_id);
    Py_XDECREF(span_id);
    Py_XDECREF(on_behalf_of);
    Py_XDECREF(id);
    Py_DECREF(message);
    return result;
}

static PyObject *log_builder_call(PyObject *self, PyObject *const *args, size_t nargsf, PyObject *kwnames) {
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    if (nargs != 1 || (kwnames != NULL && PyTuple_GET_SIZE(kwnames) != 0)) {
        PyErr_Format(PyExc_TypeError, "LogBuilder takes exactly one positional argument, the item (%zd given)", nargs);
        return NULL;
    }
    PyObject *record = build_log((LogBuilder *)self, args[0]);
    if (record != NULL) return record;
    /* Whatever stopped it (a line not known plain, memory, a parent's attribute, the scrubber), the Python code
     * meets it too, and says so. */
    PyErr_Clear();
    return PyObject_CallOneArg(((LogBuilder *)self)->careful, args[0]);
}

static PyObject *log_builder_new(PyTypeObject *type, PyObject *args, PyObject *kwargs) {
    static char *kwlist[] = {"careful", "record", "node_id", "offsets", "plain_templates", "renderers",
                             "plain_keys", "clean_strings", "max_items", "max_message", "scrub_text", NULL};
    PyObject *careful, *record, *node_id, *offsets, *plain_templates, *renderers, *plain_keys, *clean_strings,
        *scrub_text;
    Py_ssize_t max_items, max_message;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OOUO!O!O!O!O!nnO:LogBuilder", kwlist, &careful, &record,
                                     &node_id, &PyDict_Type, &offsets, &PyDict_Type, &plain_templates, &PyDict_Type,
                                     &renderers, &PySet_Type, &plain_keys, &PySet_Type, &clean_strings, &max_items,
                                     &max_message, &scrub_text))
        return NULL;
    LogBuilder *self = (LogBuilder *)type->tp_alloc(type, 0);
    if (self == NULL) return NULL;
    self->vectorcall = log_builder_call;
    self->careful = Py_NewRef(careful);
    self->record = Py_NewRef(record);
    self->node_id = Py_NewRef(node_id);
    self->offsets = Py_NewRef(offsets);
    self->plain_templates = Py_NewRef(plain_templates);
    self->renderers = Py_NewRef(renderers);
    self->plain_keys = Py_NewRef(plain_keys);
    self->clean_strings = Py_NewRef(clean_strings);
    self->scrub_text = Py_NewRef(scrub_text);
    self->max_items = max_items;
    self->max_message = max_message;
    return (PyObject *)self;
}

static int log_builder_traverse(LogBuilder *self, visitproc visit, void *arg) {
    Py_VISIT(self->careful);
    Py_VISIT(self->record);
    Py_VISIT(self->node_id);
    Py_VISIT(self->offsets);
    Py_VISIT(self->plain_templates);
    Py_VISIT(self->renderers);
    Py_VISIT(self->plain_keys);
    Py_VISIT(self->clean_strings);
    Py_VISIT(self->scrub_text);
    return 0;
}

static int log_builder_clear(LogBuilder *self) {
    Py_CLEAR(self->careful);
    Py_CLEAR(self->record);
    Py_CLEAR(self->node_id);
    Py_CLEAR(self->offsets);
    Py_CLEAR(self->plain_templates);
    Py_CLEAR(self->renderers);
    Py_CLEAR(self->plain_keys);
    Py_CLEAR(self->clean_strings);
    Py_CLEAR(self->scrub_text);
    return 0;
}

static void log_builder_dealloc(LogBuilder *self) {
    PyObject_GC_UnTrack(self);
    log_builder_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyTypeObject LogBuilderType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "zoomtrace._speedups.LogBuilder",
    .tp_doc = "Encoder._log: the record of a zt.log line the encoder's caches know plain, else careful(item).",
    .tp_basicsize = sizeof(LogBuilder),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_new = log_builder_new,
    .tp_dealloc = (destructor)log_builder_dealloc,
    .tp_traverse = (traverseproc)log_builder_traverse,
    .tp_clear = (inquiry)log_builder_clear,
    .tp_call = PyVectorcall_Call,
    .tp_vectorcall_offset = offsetof(LogBuilder, vectorcall),
};

/* -- Dispatch: Encoder.__call__ ---------------------------------------------------------------------------- */

typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    PyObject *span_type;  /* capture.span.Span: queued as itself */
    PyObject *build_span; /* Encoder._span */
    PyObject *builders;   /* dict: an item's tag (its first element) -> the function that builds its record */
} Dispatch;

static PyObject *dispatch_call(PyObject *op, PyObject *const *args, size_t nargsf, PyObject *kwnames) {
    Dispatch *self = (Dispatch *)op;
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    if (nargs != 1 || (kwnames != NULL && PyTuple_GET_SIZE(kwnames) != 0)) {
        PyErr_Format(PyExc_TypeError, "Dispatch takes exactly one positional argument, the item (%zd given)", nargs);
        return NULL;
    }
    PyObject *item = args[0];
    if ((PyObject *)Py_TYPE(item) == self->span_type) return PyObject_CallOneArg(self->build_span, item);
    PyObject *tag;
    if (PyTuple_CheckExact(item) && PyTuple_GET_SIZE(item) > 0) {
        tag = Py_NewRef(PyTuple_GET_ITEM(item, 0));
    } else {
        PyObject *zero = PyLong_FromLong(0);
        tag = zero == NULL ? NULL : PyObject_GetItem(item, zero);
        Py_XDECREF(zero);
        if (tag == NULL) return NULL;
    }
    PyObject *build = PyDict_GetItemWithError(self->builders, tag); /* borrowed */
    Py_DECREF(tag);
    if (build == NULL) {
        if (PyErr_Occurred()) return NULL;
        Py_RETURN_NONE;
    }
    Py_INCREF(build); /* a builder may run Python code that changes the dict */
    PyObject *record = PyObject_CallOneArg(build, item);
    Py_DECREF(build);
    return record;
}

static PyObject *dispatch_new(PyTypeObject *type, PyObject *args, PyObject *kwargs) {
    static char *kwlist[] = {"span_type", "build_span", "builders", NULL};
    PyObject *span_type, *build_span, *builders;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O!OO!:Dispatch", kwlist, &PyType_Type, &span_type, &build_span,
                                     &PyDict_Type, &builders))
        return NULL;
    Dispatch *self = (Dispatch *)type->tp_alloc(type, 0);
    if (self == NULL) return NULL;
    self->vectorcall = dispatch_call;
    self->span_type = Py_NewRef(span_type);
    self->build_span = Py_NewRef(build_span);
    self->builders = Py_NewRef(builders);
    return (PyObject *)self;
}

static int dispatch_traverse(Dispatch *self, visitproc visit, void *arg) {
    Py_VISIT(self->span_type);
    Py_VISIT(self->build_span);
    Py_VISIT(self->builders);
    return 0;
}

static int dispatch_clear(Dispatch *self) {
    Py_CLEAR(self->span_type);
    Py_CLEAR(self->build_span);
    Py_CLEAR(self->builders);
    return 0;
}

static void dispatch_dealloc(Dispatch *self) {
    PyObject_GC_UnTrack(self);
    dispatch_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyTypeObject DispatchType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "zoomtrace._speedups.Dispatch",
    .tp_doc = "Encoder.__call__: the record for one captured item (a Span, or a tuple tagged by its kind), or None.",
    .tp_basicsize = sizeof(Dispatch),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_new = dispatch_new,
    .tp_dealloc = (destructor)dispatch_dealloc,
    .tp_traverse = (traverseproc)dispatch_traverse,
    .tp_clear = (inquiry)dispatch_clear,
    .tp_call = PyVectorcall_Call,
    .tp_vectorcall_offset = offsetof(Dispatch, vectorcall),
};

int encoder_init(PyObject *module) {
    if ((str_log == NULL && (str_log = PyUnicode_InternFromString("log")) == NULL) ||
        (str_app == NULL && (str_app = PyUnicode_InternFromString("app")) == NULL))
        return -1;
    if (record_kwnames == NULL) {
        /* Interned, as a call's keywords in Python code are: msgspec matches them to its fields by identity first. */
        static const char *names[] = {"id", "kind", "type", "ts_ns", "node_id", "trace_id", "span_id",
                                      "on_behalf_of", "code", "level", "message", "template", "attrs"};
        PyObject *kwnames = PyTuple_New(13);
        if (kwnames == NULL) return -1;
        for (Py_ssize_t i = 0; i < 13; i++) {
            PyObject *name = PyUnicode_InternFromString(names[i]);
            if (name == NULL) {
                Py_DECREF(kwnames);
                return -1;
            }
            PyTuple_SET_ITEM(kwnames, i, name);
        }
        record_kwnames = kwnames;
    }
    if ((str_trace_id == NULL && (str_trace_id = PyUnicode_InternFromString("trace_id")) == NULL) ||
        (str_span_id == NULL && (str_span_id = PyUnicode_InternFromString("span_id")) == NULL) ||
        (str_on_behalf_of == NULL && (str_on_behalf_of = PyUnicode_InternFromString("on_behalf_of")) == NULL))
        return -1;
    if (PyType_Ready(&LogBuilderType) < 0 || PyType_Ready(&DispatchType) < 0) return -1;
    if (PyModule_AddObjectRef(module, "LogBuilder", (PyObject *)&LogBuilderType) < 0 ||
        PyModule_AddObjectRef(module, "Dispatch", (PyObject *)&DispatchType) < 0)
        return -1;
    return 0;
}
