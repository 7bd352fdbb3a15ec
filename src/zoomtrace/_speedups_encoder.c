/* The worker's side of the hot path in C: the fused records (log lines, logging records, spans, data events) and
 * the encoder's dispatch, without a Python frame of their own (docs/ARCHITECTURE.md, "Native code"). The
 * dispatch also tracks again the spans the C Putter left untracked while queued. Once the caller's side was in
 * C, the worker's Python was the largest part of a log line's cost: the interpreter running ``Encoder._log``'s
 * checks, lookups and keyword arguments, and ``Encoder.__call__`` in front of it.
 *
 *   LogBuilder(careful, record, node_id, offsets, plain_templates, renderers, plain_keys, clean_strings,
 *              max_items, max_message, scrub_text)
 *                               zoomtrace.runtime.encoder.Encoder._log: builds the record of a line whose
 *                               template, attributes and call site the Python code has already found plain
 *                               (its caches say so) exactly as ``_log`` does; any other line, and any line
 *                               whose check would need Python, goes to ``careful`` (``_log`` itself), which
 *                               fills the caches for the next one
 *   StdlogBuilder(careful, record, node_id, log_record, places, plain_percents, scrub_text, plain_size,
 *                 max_message)
 *                               zoomtrace.runtime.encoder.Encoder._stdlog, alike, for a logging record
 *   SpanBuilder(careful, record, node_id, lines, plain_keys, clean_strings, max_items)
 *                               zoomtrace.runtime.encoder.Encoder._span, alike, for a span without an error,
 *                               links or a remote trace's vendor state
 *   EventBuilder(careful, record, node_id, offsets, plain_keys, clean_strings, max_items, encode_json, raw,
 *                json_unchanged, max_payload_bytes, plain_encode, harmless, max_nesting)
 *                               zoomtrace.runtime.encoder.Encoder._event, alike, for a data event whose JSON
 *                               the sanitiser and the scrubber leave as it is (stored as that JSON); a payload
 *                               of builtins whose names the scrubber already knows harmless is proven so by a
 *                               walk of its names and the byte tests of its JSON, without reading the JSON
 *                               (``plain_names``)
 *   Dispatch(span_type, build_span, builders)
 *                               zoomtrace.runtime.encoder.Encoder.__call__
 *
 * Each gives exactly what its Python reference gives (tests/test_speedups_encoder.py).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stddef.h>

#include "_speedups_parts.h"

/* -- LogBuilder: Encoder._log ------------------------------------------------------------------------------ */

/* What Encoder._plain_attrs reads: the attribute keys and the text values known plain, and the limit. */
typedef struct {
    PyObject *keys;    /* set of str */
    PyObject *strings; /* set of str */
    Py_ssize_t max_items;
} Plain;

typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    PyObject *careful;         /* Encoder._log: every line this code does not build */
    PyObject *record;          /* wire.record.Record */
    PyObject *node_id;         /* str */
    PyObject *offsets;         /* dict: (id(code), offset) -> Code */
    PyObject *plain_templates; /* dict: template -> the message length from which it is scrubbed, or -1 */
    PyObject *renderers;       /* dict: template -> (percent twin, values getter, one) */
    PyObject *scrub_text;      /* Scrubber.scrub_text, or None */
    Plain plain;
    Py_ssize_t max_message;
} LogBuilder;

enum { NUMBERS = 1, WITH_TEXT = 2 }; /* as the encoder's _NUMBERS and _WITH_TEXT */

static PyObject *str_log, *str_app, *str_trace_id, *str_span_id, *str_on_behalf_of, *log_kwnames;

/* Whether a value is a number msgpack carries (an int of 64 bits, signed or not; a finite float), a bool or None:
 * what the fused paths record as it is. */
static int plain_value(PyObject *value) {
    PyTypeObject *cls = Py_TYPE(value);
    if (cls == &PyLong_Type) {
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
        return 1;
    }
    if (cls == &PyFloat_Type) return isfinite(PyFloat_AS_DOUBLE(value));
    return cls == &PyBool_Type || value == Py_None;
}

/* Encoder._plain_attrs, for the attributes it has already seen: NUMBERS or WITH_TEXT, or 0 when a key or a
 * text value is not known plain yet (Python decides, and remembers) or a value is of another kind. Runs no
 * Python code: exact str keys and values are hashed and compared by the interpreter's own code. */
static int plain_attrs(Plain *plain, PyObject *attrs) {
    if (PyDict_GET_SIZE(attrs) > plain->max_items) return 0;
    int kind = NUMBERS;
    Py_ssize_t pos = 0;
    PyObject *key, *value;
    while (PyDict_Next(attrs, &pos, &key, &value)) {
        if (PyUnicode_CheckExact(value)) {
            if (PySet_Contains(plain->strings, value) != 1) return 0;
            kind = WITH_TEXT;
        } else if (!plain_value(value)) {
            return 0;
        }
        if (!PyUnicode_CheckExact(key) || PySet_Contains(plain->keys, key) != 1) return 0;
    }
    return kind;
}

/* The message of a plain template and plain attributes, by its ``%`` twin; NULL (an exception set or not) when
 * there is no twin or it does not fit (Python decides what such a line becomes). */
static PyObject *render(LogBuilder *self, PyObject *template, PyObject *attrs) {
    PyObject *renderer = PyDict_GetItemWithError(self->renderers, template);
    if (renderer == NULL || !PyTuple_CheckExact(renderer) || PyTuple_GET_SIZE(renderer) != 3) return NULL;
    Py_INCREF(renderer); /* held while code runs that could, in principle, change the dict */
    PyObject *message = NULL, *args = PyObject_CallOneArg(PyTuple_GET_ITEM(renderer, 1), attrs);
    if (args != NULL && PyTuple_GET_ITEM(renderer, 2) == Py_True) Py_SETREF(args, PyTuple_Pack(1, args));
    if (args != NULL) message = PyUnicode_Format(PyTuple_GET_ITEM(renderer, 0), args);
    Py_XDECREF(args);
    Py_DECREF(renderer);
    return message;
}

/* A record's trace_id, span_id and on_behalf_of from the position it was made at (None: outside any), as
 * Encoder._with_parent takes them: 0, or -1 (an exception set or not) when Python must (an on_behalf_of that is
 * not text is _label's). Each a new reference, or NULL. */
static int parent_fields(PyObject *parent, PyObject *fields[3]) {
    if (parent == Py_None) {
        for (int i = 0; i < 3; i++) fields[i] = Py_NewRef(Py_None);
        return 0;
    }
    if ((fields[0] = PyObject_GetAttr(parent, str_trace_id)) == NULL ||
        (fields[1] = PyObject_GetAttr(parent, str_span_id)) == NULL ||
        (fields[2] = PyObject_GetAttr(parent, str_on_behalf_of)) == NULL)
        return -1;
    return fields[2] == Py_None || PyUnicode_CheckExact(fields[2]) ? 0 : -1;
}

static void release_fields(PyObject *fields[3]) {
    for (int i = 0; i < 3; i++) Py_CLEAR(fields[i]);
}

/* A record's type from a logger's name, as Encoder._log takes it: the name, "app" for none; NULL (borrowed
 * either way) when it is not text (_label's). */
static PyObject *logger_type(PyObject *logger) {
    if (logger == Py_None || (PyUnicode_CheckExact(logger) && PyUnicode_GET_LENGTH(logger) == 0)) return str_app;
    return PyUnicode_CheckExact(logger) ? logger : NULL;
}

/* The line's record, or NULL (an exception set or not) when ``careful`` must build it. */
static PyObject *build_log(PyObject *op, PyObject *item) {
    LogBuilder *self = (LogBuilder *)op;
    if (!PyTuple_CheckExact(item) || PyTuple_GET_SIZE(item) != 10) return NULL;
    PyObject *ts = PyTuple_GET_ITEM(item, 1), *code = PyTuple_GET_ITEM(item, 2), *offset = PyTuple_GET_ITEM(item, 3),
             *logger = PyTuple_GET_ITEM(item, 4), *level = PyTuple_GET_ITEM(item, 5),
             *template = PyTuple_GET_ITEM(item, 6), *attrs = PyTuple_GET_ITEM(item, 7),
             *parent = PyTuple_GET_ITEM(item, 8), *exc = PyTuple_GET_ITEM(item, 9);
    if (!PyUnicode_CheckExact(template) || exc != Py_None || !PyDict_CheckExact(attrs)) return NULL;
    PyObject *type = logger_type(logger);
    if (type == NULL) return NULL;
    PyObject *threshold = PyDict_GetItemWithError(self->plain_templates, template);
    if (threshold == NULL || !PyLong_CheckExact(threshold)) return NULL;
    Py_ssize_t scrub_from = PyLong_AsSsize_t(threshold);
    if (scrub_from < 0) return NULL; /* -1: the careful path's */
    int with_attrs = PyDict_GET_SIZE(attrs) > 0;
    PyObject *message;
    if (with_attrs) {
        int kind = plain_attrs(&self->plain, attrs);
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
    PyObject *key = NULL, *where = NULL, *fields[3] = {NULL, NULL, NULL}, *id = NULL, *result = NULL;
    PyObject *code_id = PyLong_FromVoidPtr(code);
    if (code_id == NULL || (key = PyTuple_Pack(2, code_id, offset)) == NULL) goto done;
    /* Held, as every object borrowed from a dict here: the scrubber runs meanwhile. */
    if ((where = Py_XNewRef(PyDict_GetItemWithError(self->offsets, key))) == NULL) goto done; /* a new call site */
    if (parent_fields(parent, fields) < 0) goto done;
    if (self->scrub_text != Py_None && PyUnicode_GET_LENGTH(message) >= scrub_from) {
        PyObject *scrubbed = PyObject_CallOneArg(self->scrub_text, message); /* numbers can make a card number */
        if (scrubbed == NULL) goto done;
        Py_SETREF(message, scrubbed);
    }
    if ((id = speedups_uuid7(ts)) == NULL) goto done;
    PyObject *args[] = {id,        str_log, type,  ts,      self->node_id,
                        fields[0], fields[1], fields[2], where, level, message, with_attrs ? template : Py_None, attrs};
    result = PyObject_Vectorcall(self->record, args, 0, log_kwnames);
done:
    Py_XDECREF(code_id);
    Py_XDECREF(key);
    Py_XDECREF(where);
    release_fields(fields);
    Py_XDECREF(id);
    Py_DECREF(message);
    return result;
}

/* A builder's call: the record ``build`` makes of the one item, else ``careful``'s. Whatever stopped ``build``
 * (an item not known plain, memory, an attribute, the scrubber), the Python code meets it too, and says so. */
static PyObject *build_or_careful(const char *name, PyObject *(*build)(PyObject *, PyObject *), PyObject *self,
                                  PyObject *careful, PyObject *const *args, size_t nargsf, PyObject *kwnames) {
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    if (nargs != 1 || (kwnames != NULL && PyTuple_GET_SIZE(kwnames) != 0)) {
        PyErr_Format(PyExc_TypeError, "%s takes exactly one positional argument, the item (%zd given)", name, nargs);
        return NULL;
    }
    PyObject *record = build(self, args[0]);
    if (record != NULL) return record;
    /* Not what no Python code catches either (KeyboardInterrupt, SystemExit): that goes on up. */
    if (PyErr_Occurred() && !PyErr_ExceptionMatches(PyExc_Exception)) return NULL;
    PyErr_Clear();
    return PyObject_CallOneArg(careful, args[0]);
}

static PyObject *log_builder_call(PyObject *self, PyObject *const *args, size_t nargsf, PyObject *kwnames) {
    return build_or_careful("LogBuilder", build_log, self, ((LogBuilder *)self)->careful, args, nargsf, kwnames);
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
    self->plain.keys = Py_NewRef(plain_keys);
    self->plain.strings = Py_NewRef(clean_strings);
    self->plain.max_items = max_items;
    self->scrub_text = Py_NewRef(scrub_text);
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
    Py_VISIT(self->plain.keys);
    Py_VISIT(self->plain.strings);
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
    Py_CLEAR(self->plain.keys);
    Py_CLEAR(self->plain.strings);
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

/* -- StdlogBuilder: Encoder._stdlog ------------------------------------------------------------------------- */

typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    PyObject *careful;        /* Encoder._stdlog */
    PyObject *record;         /* wire.record.Record */
    PyObject *node_id;        /* str */
    PyObject *log_record;     /* logging.LogRecord: records of another class (a record factory's) go to careful */
    PyObject *places;         /* dict: (file name, line, function) -> Code */
    PyObject *plain_percents; /* dict: % template -> the message length from which it is scrubbed, or -1 */
    PyObject *scrub_text;     /* Scrubber.scrub_text, or None */
    Py_ssize_t plain_size;    /* the number of attributes of a LogRecord made without extra= */
    Py_ssize_t max_message;
} StdlogBuilder;

/* The LogRecord attributes a record takes. */
enum { REC_MSG, REC_ARGS, REC_EXC_INFO, REC_NAME, REC_CREATED, REC_LEVELNAME, REC_PATHNAME, REC_LINENO, REC_FUNC_NAME,
       REC_FIELDS };
static const char *rec_field_names[REC_FIELDS] = {"msg",       "args",     "exc_info", "name",    "created",
                                                  "levelname", "pathname", "lineno",   "funcName"};
static PyObject *rec_fields[REC_FIELDS], *stdlog_kwnames;

/* A logging record's record, or NULL (an exception set or not) when ``careful`` must build it. Its fields are
 * read from its __dict__ (a LogRecord, the class itself, has no descriptor of those names), all at once and held:
 * the record is the application's, which may still change it (a later handler's filter), and the scrubber runs
 * Python code. _stdlog reads some after scrubbing: a record changed meanwhile is recorded as it was at one moment
 * or another either way. */
static PyObject *build_stdlog(PyObject *op, PyObject *item) {
    StdlogBuilder *self = (StdlogBuilder *)op;
    if (!PyTuple_CheckExact(item) || PyTuple_GET_SIZE(item) != 3) return NULL;
    PyObject *rec = PyTuple_GET_ITEM(item, 1), *parent = PyTuple_GET_ITEM(item, 2);
    if ((PyObject *)Py_TYPE(rec) != self->log_record) return NULL;
    PyObject *dict = PyObject_GenericGetDict(rec, NULL);
    if (dict == NULL) return NULL;
    PyObject *got[REC_FIELDS] = {NULL}, *message = NULL, *key = NULL, *where = NULL, *fields[3] = {NULL, NULL, NULL},
             *ts = NULL, *id = NULL, *result = NULL;
    if (!PyDict_CheckExact(dict) || PyDict_GET_SIZE(dict) != self->plain_size) goto done; /* extra= */
    for (int i = 0; i < REC_FIELDS; i++) { /* held: code runs below (the scrubber) while they are in use */
        if ((got[i] = PyDict_GetItemWithError(dict, rec_fields[i])) == NULL) goto done;
        Py_INCREF(got[i]);
    }
    PyObject *msg = got[REC_MSG], *args = got[REC_ARGS];
    if (!PyUnicode_CheckExact(msg) || !PyTuple_CheckExact(args) || !PyFloat_CheckExact(got[REC_CREATED])) goto done;
    if (got[REC_EXC_INFO] != Py_None && PyObject_IsTrue(got[REC_EXC_INFO]) != 0) goto done;
    PyObject *type = logger_type(got[REC_NAME]);
    if (type == NULL) goto done;
    PyObject *threshold = PyDict_GetItemWithError(self->plain_percents, msg);
    if (threshold == NULL || !PyLong_CheckExact(threshold)) goto done;
    Py_ssize_t scrub_from = PyLong_AsSsize_t(threshold);
    if (scrub_from < 0) goto done;
    Py_ssize_t count = PyTuple_GET_SIZE(args);
    if (count > 0) {
        for (Py_ssize_t i = 0; i < count; i++) {
            PyObject *value = PyTuple_GET_ITEM(args, i);
            if (PyUnicode_CheckExact(value) && PyUnicode_IS_ASCII(value))
                scrub_from = 0; /* text in the message: it is scrubbed whatever its length */
            else if (!plain_value(value))
                goto done;
        }
        if ((message = PyUnicode_Format(msg, args)) == NULL) goto done; /* what rec.getMessage() does */
        if (PyUnicode_GET_LENGTH(message) > self->max_message) goto done;
    } else {
        message = Py_NewRef(msg);
    }
    if ((key = PyTuple_Pack(3, got[REC_PATHNAME], got[REC_LINENO], got[REC_FUNC_NAME])) == NULL ||
        (where = Py_XNewRef(PyDict_GetItemWithError(self->places, key))) == NULL ||
        parent_fields(parent, fields) < 0)
        goto done;
    if (self->scrub_text != Py_None && PyUnicode_GET_LENGTH(message) >= scrub_from) {
        PyObject *scrubbed = PyObject_CallOneArg(self->scrub_text, message); /* numbers can make a card number */
        if (scrubbed == NULL) goto done;
        Py_SETREF(message, scrubbed);
    }
    if ((ts = PyLong_FromDouble(PyFloat_AS_DOUBLE(got[REC_CREATED]) * 1e9)) == NULL ||
        (id = speedups_uuid7(ts)) == NULL)
        goto done;
    PyObject *record_args[] = {id,        str_log,   type,  ts,    self->node_id,   fields[0],
                               fields[1], fields[2], where, got[REC_LEVELNAME], message, count > 0 ? msg : Py_None};
    result = PyObject_Vectorcall(self->record, record_args, 0, stdlog_kwnames);
done:
    Py_DECREF(dict);
    for (int i = 0; i < REC_FIELDS; i++) Py_XDECREF(got[i]);
    Py_XDECREF(message);
    Py_XDECREF(key);
    Py_XDECREF(where);
    release_fields(fields);
    Py_XDECREF(ts);
    Py_XDECREF(id);
    return result;
}

static PyObject *stdlog_builder_call(PyObject *self, PyObject *const *args, size_t nargsf, PyObject *kwnames) {
    return build_or_careful("StdlogBuilder", build_stdlog, self, ((StdlogBuilder *)self)->careful, args, nargsf,
                            kwnames);
}

static PyObject *stdlog_builder_new(PyTypeObject *type, PyObject *args, PyObject *kwargs) {
    static char *kwlist[] = {"careful", "record", "node_id", "log_record", "places", "plain_percents",
                             "scrub_text", "plain_size", "max_message", NULL};
    PyObject *careful, *record, *node_id, *log_record, *places, *plain_percents, *scrub_text;
    Py_ssize_t plain_size, max_message;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OOUO!O!O!Onn:StdlogBuilder", kwlist, &careful, &record, &node_id,
                                     &PyType_Type, &log_record, &PyDict_Type, &places, &PyDict_Type, &plain_percents,
                                     &scrub_text, &plain_size, &max_message))
        return NULL;
    StdlogBuilder *self = (StdlogBuilder *)type->tp_alloc(type, 0);
    if (self == NULL) return NULL;
    self->vectorcall = stdlog_builder_call;
    self->careful = Py_NewRef(careful);
    self->record = Py_NewRef(record);
    self->node_id = Py_NewRef(node_id);
    self->log_record = Py_NewRef(log_record);
    self->places = Py_NewRef(places);
    self->plain_percents = Py_NewRef(plain_percents);
    self->scrub_text = Py_NewRef(scrub_text);
    self->plain_size = plain_size;
    self->max_message = max_message;
    return (PyObject *)self;
}

static int stdlog_builder_traverse(StdlogBuilder *self, visitproc visit, void *arg) {
    Py_VISIT(self->careful);
    Py_VISIT(self->record);
    Py_VISIT(self->node_id);
    Py_VISIT(self->log_record);
    Py_VISIT(self->places);
    Py_VISIT(self->plain_percents);
    Py_VISIT(self->scrub_text);
    return 0;
}

static int stdlog_builder_clear(StdlogBuilder *self) {
    Py_CLEAR(self->careful);
    Py_CLEAR(self->record);
    Py_CLEAR(self->node_id);
    Py_CLEAR(self->log_record);
    Py_CLEAR(self->places);
    Py_CLEAR(self->plain_percents);
    Py_CLEAR(self->scrub_text);
    return 0;
}

static void stdlog_builder_dealloc(StdlogBuilder *self) {
    PyObject_GC_UnTrack(self);
    stdlog_builder_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyTypeObject StdlogBuilderType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "zoomtrace._speedups.StdlogBuilder",
    .tp_doc = "Encoder._stdlog: the record of a logging record the encoder's caches know plain, else careful(item).",
    .tp_basicsize = sizeof(StdlogBuilder),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_new = stdlog_builder_new,
    .tp_dealloc = (destructor)stdlog_builder_dealloc,
    .tp_traverse = (traverseproc)stdlog_builder_traverse,
    .tp_clear = (inquiry)stdlog_builder_clear,
    .tp_call = PyVectorcall_Call,
    .tp_vectorcall_offset = offsetof(StdlogBuilder, vectorcall),
};

/* -- SpanBuilder: Encoder._span ------------------------------------------------------------------------------ */

typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    PyObject *careful; /* Encoder._span */
    PyObject *record;  /* wire.record.Record */
    PyObject *node_id; /* str */
    PyObject *lines;   /* dict: (id(code), line) -> Code */
    Plain plain;
} SpanBuilder;

/* The Span attributes a record takes, in this order (SPAN_THREAD may be unset: None then). */
enum {
    SPAN_CODE, SPAN_LINE, SPAN_TRACESTATE, SPAN_ERROR, SPAN_NAME, SPAN_LINKS, SPAN_ON_BEHALF_OF, SPAN_ATTRS,
    SPAN_START_NS, SPAN_END_NS, SPAN_TRACE_ID, SPAN_SPAN_ID, SPAN_PARENT_SPAN_ID, SPAN_STATUS, SPAN_CPU_NS,
    SPAN_THREAD, SPAN_FIELDS
};
static const char *span_field_names[SPAN_FIELDS] = {
    "code", "line", "tracestate", "error", "name", "links", "on_behalf_of", "attrs",
    "start_ns", "end_ns", "trace_id", "span_id", "parent_span_id", "status", "cpu_ns", "thread"};
static PyObject *span_fields[SPAN_FIELDS], *str_span, *span_kwnames;

/* Where a span's fields lie in it, when it is exactly the Span type _speedups_span.c writes (the slots it found
 * there); NULL: read them by name. */
static const Py_ssize_t *span_offsets(PyObject *span) {
    static PyTypeObject *known;
    static Py_ssize_t offsets[SPAN_FIELDS];
    PyTypeObject *type = speedups_span_type();
    if (type == NULL || Py_TYPE(span) != type) return NULL;
    if (known != type) {
        for (int i = 0; i < SPAN_FIELDS; i++) {
            if ((offsets[i] = speedups_span_offset(span_field_names[i])) == 0) return NULL;
        }
        known = type;
    }
    return offsets;
}

/* A span's record, or NULL (an exception set or not) when ``careful`` must build it: a span with an error,
 * links, a remote trace's vendor state, attributes or a call site not known plain. */
static PyObject *build_span(PyObject *op, PyObject *span) {
    SpanBuilder *self = (SpanBuilder *)op;
    PyObject *got[SPAN_FIELDS] = {NULL}, *code_id = NULL, *key = NULL, *where = NULL, *id = NULL, *links = NULL,
             *result = NULL;
    const Py_ssize_t *where_slots = span_offsets(span);
    for (int i = 0; i < SPAN_FIELDS; i++) {
        if (where_slots != NULL && (got[i] = Py_XNewRef(*(PyObject **)((char *)span + where_slots[i]))) != NULL)
            continue; /* a Span's slot, read where it lies (a slot never set: getattr raises as Python would) */
        if ((got[i] = PyObject_GetAttr(span, span_fields[i])) != NULL) continue;
        if (i != SPAN_THREAD || !PyErr_ExceptionMatches(PyExc_AttributeError)) goto done;
        PyErr_Clear(); /* getattr(span, "thread", None) */
        got[i] = Py_NewRef(Py_None);
    }
    PyObject *attrs = got[SPAN_ATTRS], *on_behalf_of = got[SPAN_ON_BEHALF_OF];
    if (got[SPAN_ERROR] != Py_None || !PyUnicode_CheckExact(got[SPAN_NAME]) || !PyDict_CheckExact(attrs) ||
        (on_behalf_of != Py_None && !PyUnicode_CheckExact(on_behalf_of)))
        goto done;
    if (PyObject_IsTrue(got[SPAN_TRACESTATE]) != 0 || PyObject_IsTrue(got[SPAN_LINKS]) != 0) goto done;
    if (PyDict_GET_SIZE(attrs) > 0 && plain_attrs(&self->plain, attrs) == 0) goto done;
    if ((code_id = PyLong_FromVoidPtr(got[SPAN_CODE])) == NULL ||
        (key = PyTuple_Pack(2, code_id, got[SPAN_LINE])) == NULL)
        goto done;
    if ((where = Py_XNewRef(PyDict_GetItemWithError(self->lines, key))) == NULL ||
        (id = speedups_uuid7(got[SPAN_START_NS])) == NULL || (links = PyList_New(0)) == NULL)
        goto done;
    PyObject *args[] = {id,
                        str_span,
                        got[SPAN_NAME],
                        got[SPAN_START_NS],
                        got[SPAN_END_NS],
                        self->node_id,
                        got[SPAN_TRACE_ID],
                        got[SPAN_SPAN_ID],
                        got[SPAN_PARENT_SPAN_ID],
                        links,
                        on_behalf_of,
                        where,
                        attrs,
                        got[SPAN_STATUS],
                        Py_None,
                        got[SPAN_CPU_NS],
                        got[SPAN_THREAD]};
    result = PyObject_Vectorcall(self->record, args, 0, span_kwnames);
done:
    for (int i = 0; i < SPAN_FIELDS; i++) Py_XDECREF(got[i]);
    Py_XDECREF(code_id);
    Py_XDECREF(key);
    Py_XDECREF(where);
    Py_XDECREF(id);
    Py_XDECREF(links);
    return result;
}

static PyObject *span_builder_call(PyObject *self, PyObject *const *args, size_t nargsf, PyObject *kwnames) {
    return build_or_careful("SpanBuilder", build_span, self, ((SpanBuilder *)self)->careful, args, nargsf, kwnames);
}

static PyObject *span_builder_new(PyTypeObject *type, PyObject *args, PyObject *kwargs) {
    static char *kwlist[] = {"careful", "record", "node_id", "lines", "plain_keys", "clean_strings", "max_items",
                             NULL};
    PyObject *careful, *record, *node_id, *lines, *plain_keys, *clean_strings;
    Py_ssize_t max_items;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OOUO!O!O!n:SpanBuilder", kwlist, &careful, &record, &node_id,
                                     &PyDict_Type, &lines, &PySet_Type, &plain_keys, &PySet_Type, &clean_strings,
                                     &max_items))
        return NULL;
    SpanBuilder *self = (SpanBuilder *)type->tp_alloc(type, 0);
    if (self == NULL) return NULL;
    self->vectorcall = span_builder_call;
    self->careful = Py_NewRef(careful);
    self->record = Py_NewRef(record);
    self->node_id = Py_NewRef(node_id);
    self->lines = Py_NewRef(lines);
    self->plain.keys = Py_NewRef(plain_keys);
    self->plain.strings = Py_NewRef(clean_strings);
    self->plain.max_items = max_items;
    return (PyObject *)self;
}

static int span_builder_traverse(SpanBuilder *self, visitproc visit, void *arg) {
    Py_VISIT(self->careful);
    Py_VISIT(self->record);
    Py_VISIT(self->node_id);
    Py_VISIT(self->lines);
    Py_VISIT(self->plain.keys);
    Py_VISIT(self->plain.strings);
    return 0;
}

static int span_builder_clear(SpanBuilder *self) {
    Py_CLEAR(self->careful);
    Py_CLEAR(self->record);
    Py_CLEAR(self->node_id);
    Py_CLEAR(self->lines);
    Py_CLEAR(self->plain.keys);
    Py_CLEAR(self->plain.strings);
    return 0;
}

static void span_builder_dealloc(SpanBuilder *self) {
    PyObject_GC_UnTrack(self);
    span_builder_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyTypeObject SpanBuilderType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "zoomtrace._speedups.SpanBuilder",
    .tp_doc = "Encoder._span: the record of a span the encoder's caches know plain, else careful(span).",
    .tp_basicsize = sizeof(SpanBuilder),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_new = span_builder_new,
    .tp_dealloc = (destructor)span_builder_dealloc,
    .tp_traverse = (traverseproc)span_builder_traverse,
    .tp_clear = (inquiry)span_builder_clear,
    .tp_call = PyVectorcall_Call,
    .tp_vectorcall_offset = offsetof(SpanBuilder, vectorcall),
};

/* -- EventBuilder: Encoder._event ---------------------------------------------------------------------------- */

#define NAME_SLOTS 1024 /* a power of two */

/* The text objects last found among the scrubber's harmless names, one per slot by their address, each held (so
 * that an address found is that very object, never a later one at the same place). A payload's keys are mostly
 * the same objects event after event (written in the code), and a slot compared is a load where a look-up in the
 * harmless names hashed a probe into a table: ≈15 % of a live data event's CPU under perf was those look-ups. A
 * name harmless once stays so (the scrubber decides by the name alone; it only forgets names to bound memory). */
typedef struct {
    PyObject *slots[NAME_SLOTS];
} NameSlots;

static void name_slots_clear(NameSlots *names) {
    for (Py_ssize_t i = 0; i < NAME_SLOTS; i++) Py_CLEAR(names->slots[i]);
}

typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    PyObject *careful;        /* Encoder._event */
    PyObject *record;         /* wire.record.Record */
    PyObject *node_id;        /* str */
    PyObject *offsets;        /* dict: (id(code), offset) -> Code */
    PyObject *encode_json;    /* a msgspec JSON encoder's encode */
    PyObject *raw;            /* msgspec.Raw */
    PyObject *json_unchanged; /* Scrubber.json_unchanged, or None */
    PyObject *plain_encode;   /* sanitize.plain_json_encode: encode_json for a payload of builtins */
    PyObject *harmless;       /* Scrubber.harmless_names (a dict), or None */
    Plain plain;
    Py_ssize_t max_payload_bytes;
    Py_ssize_t max_nesting; /* scrub.MAX_NESTING */
    NameSlots known;        /* names found in ``harmless``, by identity */
} EventBuilder;

static PyObject *str_event, *event_kwnames;

/* Whether ``name`` (exact text) is among the scrubber's harmless names: 1, or 0 (unknown, or an error cleared). The
 * names there are exact text too, so the look-up compares text in C and runs no Python code. */
/* Whether ``name`` (exact text) is among the ``harmless`` names; a text found is remembered in ``names``. No Python
 * code runs: the look-up compares text, and a slot's former text, released, is exact text too. */
static int known_harmless(NameSlots *names, PyObject *harmless, PyObject *name) {
    PyObject **slot = &names->slots[((uintptr_t)name >> 4) & (NAME_SLOTS - 1)];
    if (*slot == name) return 1;
    int known = PyDict_Contains(harmless, name);
    if (known < 0) PyErr_Clear();
    if (known == 1) Py_XSETREF(*slot, Py_NewRef(name));
    return known == 1;
}

/* Scrubber._names_harmless of a payload made only of dicts with text keys, lists, tuples, text, ints, floats, bools
 * and None (builtins, not subclasses) whose every key and (name, value) pair name the scrubber already knows
 * harmless, nested less than ``max_nesting`` deep: the number of its keys, which its JSON has as many colons as
 * when no text holds one. -1 for any other payload, which the scan of its JSON decides (Scrubber.json_unchanged,
 * which also learns new names). A tuple is a list, as in the JSON. No Python code runs (exact types, look-ups of
 * exact text), so the payload cannot change between this walk and its encoding by ``plain_encode``, C too. */
static Py_ssize_t plain_names(NameSlots *names, PyObject *obj, PyObject *harmless, Py_ssize_t depth,
                              Py_ssize_t max_nesting) {
    PyTypeObject *type = Py_TYPE(obj);
    if (type == &PyUnicode_Type || type == &PyLong_Type || type == &PyFloat_Type || type == &PyBool_Type ||
        obj == Py_None)
        return 0;
    if (depth >= max_nesting - 1) return -1; /* as deep as Scrubber._value cuts */
    Py_ssize_t keys = 0;
    if (type == &PyDict_Type) {
        Py_ssize_t pos = 0;
        PyObject *key, *value;
        while (PyDict_Next(obj, &pos, &key, &value)) {
            if (!PyUnicode_CheckExact(key) || !known_harmless(names, harmless, key)) return -1;
            Py_ssize_t inner = plain_names(names, value, harmless, depth + 1, max_nesting);
            if (inner < 0) return -1;
            keys += inner + 1;
        }
        return keys;
    }
    if (type != &PyList_Type && type != &PyTuple_Type) return -1;
    PyObject **items = type == &PyList_Type ? ((PyListObject *)obj)->ob_item : ((PyTupleObject *)obj)->ob_item;
    Py_ssize_t size = Py_SIZE(obj);
    if (size == 2 && PyUnicode_CheckExact(items[0]) && !known_harmless(names, harmless, items[0]))
        return -1; /* a pair */
    for (Py_ssize_t i = 0; i < size; i++) {
        Py_ssize_t inner = plain_names(names, items[i], harmless, depth + 1, max_nesting);
        if (inner < 0) return -1;
        keys += inner;
    }
    return keys;
}

/* The payload of an event as sanitize_payload_json and the scrubber leave it when they change nothing: its JSON,
 * as msgspec.Raw; NULL (an exception set or not) when Python must look at it (a scalar, a payload too large,
 * one the JSON cannot carry exactly, or one the scrubber may change: encoded again there). */
static PyObject *plain_payload(EventBuilder *self, PyObject *obj) {
    if (obj == Py_None || PyBool_Check(obj) || PyLong_CheckExact(obj)) return NULL; /* sanitize_payload_json's own */
    PyObject *encoded = NULL, *payload = NULL;
    Py_ssize_t keys =
        self->harmless == Py_None ? -1 : plain_names(&self->known, obj, self->harmless, 0, self->max_nesting);
    if (keys >= 0) {
        /* The names are harmless: the byte tests decide, on the bytes just made of what was walked. */
        encoded = PyObject_CallOneArg(self->plain_encode, obj);
        if (encoded != NULL && PyBytes_CheckExact(encoded)) {
            const unsigned char *p = (const unsigned char *)PyBytes_AS_STRING(encoded);
            Py_ssize_t n = PyBytes_GET_SIZE(encoded);
            if (n <= self->max_payload_bytes && speedups_plain_json(p, n, keys))
                payload = PyObject_CallOneArg(self->raw, encoded);
            goto done;
        }
        PyErr_Clear(); /* an integer beyond 64 bits, say: encode_json's fallbacks, below */
        Py_CLEAR(encoded);
    }
    encoded = PyObject_CallOneArg(self->encode_json, obj);
    if (encoded == NULL || !PyBytes_CheckExact(encoded)) goto done;
    const unsigned char *p = (const unsigned char *)PyBytes_AS_STRING(encoded);
    Py_ssize_t n = PyBytes_GET_SIZE(encoded);
    if (n > self->max_payload_bytes || speedups_needs_care(p, n)) goto done;
    if (self->json_unchanged != Py_None) {
        PyObject *unchanged = PyObject_CallOneArg(self->json_unchanged, encoded);
        int keep = unchanged == NULL ? -1 : PyObject_IsTrue(unchanged);
        Py_XDECREF(unchanged);
        if (keep != 1) goto done;
    }
    payload = PyObject_CallOneArg(self->raw, encoded);
done:
    Py_XDECREF(encoded);
    return payload;
}

/* An event's record, or NULL (an exception set or not) when ``careful`` must build it. */
static PyObject *build_event(PyObject *op, PyObject *item) {
    EventBuilder *self = (EventBuilder *)op;
    if (!PyTuple_CheckExact(item) || PyTuple_GET_SIZE(item) != 10) return NULL;
    PyObject *record_id = PyTuple_GET_ITEM(item, 1), *ts = PyTuple_GET_ITEM(item, 2), *code = PyTuple_GET_ITEM(item, 3),
             *offset = PyTuple_GET_ITEM(item, 4), *type_ = PyTuple_GET_ITEM(item, 5), *obj = PyTuple_GET_ITEM(item, 6),
             *sources = PyTuple_GET_ITEM(item, 7), *attrs = PyTuple_GET_ITEM(item, 8),
             *parent = PyTuple_GET_ITEM(item, 9);
    if (!PyDict_CheckExact(attrs) || (PyDict_GET_SIZE(attrs) > 0 && plain_attrs(&self->plain, attrs) == 0) ||
        !PyTuple_CheckExact(sources))
        return NULL;
    PyObject *type = NULL, *code_id = NULL, *key = NULL, *where = NULL, *fields[3] = {NULL, NULL, NULL},
             *payload = NULL, *labels = NULL, *result = NULL;
    if (PyUnicode_CheckExact(type_) && PyUnicode_GET_LENGTH(type_) > 0)
        type = Py_NewRef(type_);
    else if (type_ != Py_None && !(PyUnicode_CheckExact(type_) && PyUnicode_GET_LENGTH(type_) == 0))
        goto done; /* a type that is not text: _label */
    else if (PyDict_Check(obj))
        type = Py_NewRef(str_event);
    else if ((type = PyType_GetQualName(Py_TYPE(obj))) == NULL) /* _type_name */
        goto done;
    Py_ssize_t count = PyTuple_GET_SIZE(sources);
    if ((labels = PyList_New(count)) == NULL) goto done;
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *source = PyTuple_GET_ITEM(sources, i);
        if (!PyUnicode_CheckExact(source)) goto done; /* _label */
        PyList_SET_ITEM(labels, i, Py_NewRef(source));
    }
    if ((code_id = PyLong_FromVoidPtr(code)) == NULL || (key = PyTuple_Pack(2, code_id, offset)) == NULL ||
        (where = Py_XNewRef(PyDict_GetItemWithError(self->offsets, key))) == NULL ||
        parent_fields(parent, fields) < 0 || (payload = plain_payload(self, obj)) == NULL)
        goto done;
    PyObject *args[] = {record_id, str_event, type,  ts,      self->node_id, fields[0],
                        fields[1], fields[2], where, attrs,   payload,       labels};
    result = PyObject_Vectorcall(self->record, args, 0, event_kwnames);
done:
    Py_XDECREF(type);
    Py_XDECREF(code_id);
    Py_XDECREF(key);
    Py_XDECREF(where);
    release_fields(fields);
    Py_XDECREF(payload);
    Py_XDECREF(labels);
    return result;
}

static PyObject *event_builder_call(PyObject *self, PyObject *const *args, size_t nargsf, PyObject *kwnames) {
    return build_or_careful("EventBuilder", build_event, self, ((EventBuilder *)self)->careful, args, nargsf, kwnames);
}

static PyObject *event_builder_new(PyTypeObject *type, PyObject *args, PyObject *kwargs) {
    static char *kwlist[] = {"careful",    "record",     "node_id",           "offsets",
                             "plain_keys", "clean_strings", "max_items",      "encode_json",
                             "raw",        "json_unchanged", "max_payload_bytes", "plain_encode",
                             "harmless",   "max_nesting",   NULL};
    PyObject *careful, *record, *node_id, *offsets, *plain_keys, *clean_strings, *encode_json, *raw, *json_unchanged,
        *plain_encode, *harmless;
    Py_ssize_t max_items, max_payload_bytes, max_nesting;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OOUO!O!O!nOOOnOOn:EventBuilder", kwlist, &careful, &record,
                                     &node_id, &PyDict_Type, &offsets, &PySet_Type, &plain_keys, &PySet_Type,
                                     &clean_strings, &max_items, &encode_json, &raw, &json_unchanged,
                                     &max_payload_bytes, &plain_encode, &harmless, &max_nesting))
        return NULL;
    if (harmless != Py_None && !PyDict_CheckExact(harmless)) {
        PyErr_SetString(PyExc_TypeError, "harmless must be a dict or None");
        return NULL;
    }
    EventBuilder *self = (EventBuilder *)type->tp_alloc(type, 0);
    if (self == NULL) return NULL;
    self->vectorcall = event_builder_call;
    self->careful = Py_NewRef(careful);
    self->record = Py_NewRef(record);
    self->node_id = Py_NewRef(node_id);
    self->offsets = Py_NewRef(offsets);
    self->plain.keys = Py_NewRef(plain_keys);
    self->plain.strings = Py_NewRef(clean_strings);
    self->plain.max_items = max_items;
    self->encode_json = Py_NewRef(encode_json);
    self->raw = Py_NewRef(raw);
    self->json_unchanged = Py_NewRef(json_unchanged);
    self->max_payload_bytes = max_payload_bytes;
    self->plain_encode = Py_NewRef(plain_encode);
    self->harmless = Py_NewRef(harmless);
    self->max_nesting = max_nesting;
    return (PyObject *)self;
}

static int event_builder_traverse(EventBuilder *self, visitproc visit, void *arg) {
    Py_VISIT(self->careful);
    Py_VISIT(self->record);
    Py_VISIT(self->node_id);
    Py_VISIT(self->offsets);
    Py_VISIT(self->plain.keys);
    Py_VISIT(self->plain.strings);
    Py_VISIT(self->encode_json);
    Py_VISIT(self->raw);
    Py_VISIT(self->json_unchanged);
    Py_VISIT(self->plain_encode);
    Py_VISIT(self->harmless);
    return 0;
}

static int event_builder_clear(EventBuilder *self) {
    Py_CLEAR(self->careful);
    Py_CLEAR(self->record);
    Py_CLEAR(self->node_id);
    Py_CLEAR(self->offsets);
    Py_CLEAR(self->plain.keys);
    Py_CLEAR(self->plain.strings);
    Py_CLEAR(self->encode_json);
    Py_CLEAR(self->raw);
    Py_CLEAR(self->json_unchanged);
    Py_CLEAR(self->plain_encode);
    Py_CLEAR(self->harmless);
    name_slots_clear(&self->known);
    return 0;
}

static void event_builder_dealloc(EventBuilder *self) {
    PyObject_GC_UnTrack(self);
    event_builder_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyTypeObject EventBuilderType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "zoomtrace._speedups.EventBuilder",
    .tp_doc = "Encoder._event: the record of a data event whose JSON needs no change, else careful(item).",
    .tp_basicsize = sizeof(EventBuilder),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_new = event_builder_new,
    .tp_dealloc = (destructor)event_builder_dealloc,
    .tp_traverse = (traverseproc)event_builder_traverse,
    .tp_clear = (inquiry)event_builder_clear,
    .tp_call = PyVectorcall_Call,
    .tp_vectorcall_offset = offsetof(EventBuilder, vectorcall),
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
    if ((PyObject *)Py_TYPE(item) == self->span_type) {
        /* It waited in the queue untracked (the C Putter's ``untracked``): the collector sees it again from here. */
        if (!PyObject_GC_IsTracked(item)) PyObject_GC_Track(item);
        return PyObject_CallOneArg(self->build_span, item);
    }
    PyObject *tag;
    if (PyTuple_CheckExact(item) && PyTuple_GET_SIZE(item) > 0) {
        tag = Py_NewRef(PyTuple_GET_ITEM(item, 0));
    } else {
        PyObject *zero = PyLong_FromLong(0);
        tag = zero == NULL ? NULL : PyObject_GetItem(item, zero);
        Py_XDECREF(zero);
        if (tag == NULL) return NULL;
    }
    PyObject *build = Py_XNewRef(PyDict_GetItemWithError(self->builders, tag)); /* held before the tag goes */
    Py_DECREF(tag);
    if (build == NULL) {
        if (PyErr_Occurred()) return NULL;
        Py_RETURN_NONE;
    }
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
    if (!PyType_IS_GC((PyTypeObject *)span_type)) {
        PyErr_SetString(PyExc_TypeError, "Dispatch: span_type must be a type whose objects the collector tracks");
        return NULL;
    }
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

/* A tuple of the names, interned as a call's keywords in Python code are: msgspec matches them to its fields by
 * identity first (2.5 times faster than by value). */
static PyObject *interned_tuple(const char **names, Py_ssize_t size) {
    PyObject *tuple = PyTuple_New(size);
    if (tuple == NULL) return NULL;
    for (Py_ssize_t i = 0; i < size; i++) {
        PyObject *name = PyUnicode_InternFromString(names[i]);
        if (name == NULL) {
            Py_DECREF(tuple);
            return NULL;
        }
        PyTuple_SET_ITEM(tuple, i, name);
    }
    return tuple;
}

int encoder_init(PyObject *module) {
    if ((str_log == NULL && (str_log = PyUnicode_InternFromString("log")) == NULL) ||
        (str_app == NULL && (str_app = PyUnicode_InternFromString("app")) == NULL))
        return -1;
    static const char *log_names[] = {"id",      "kind",         "type", "ts_ns", "node_id", "trace_id", "span_id",
                                      "on_behalf_of", "code", "level", "message", "template", "attrs"};
    if (log_kwnames == NULL && (log_kwnames = interned_tuple(log_names, 13)) == NULL) return -1;
    if ((str_trace_id == NULL && (str_trace_id = PyUnicode_InternFromString("trace_id")) == NULL) ||
        (str_span_id == NULL && (str_span_id = PyUnicode_InternFromString("span_id")) == NULL) ||
        (str_on_behalf_of == NULL && (str_on_behalf_of = PyUnicode_InternFromString("on_behalf_of")) == NULL))
        return -1;
    static const char *stdlog_names[] = {"id",      "kind",    "type",  "ts_ns",   "node_id", "trace_id",
                                         "span_id", "on_behalf_of", "code", "level", "message", "template"};
    static const char *span_names[] = {"id",      "kind",           "type",  "ts_ns",        "end_ns", "node_id",
                                       "trace_id", "span_id",       "parent_span_id", "links", "on_behalf_of",
                                       "code",     "attrs",         "status", "error", "cpu_ns", "thread"};
    if ((stdlog_kwnames == NULL && (stdlog_kwnames = interned_tuple(stdlog_names, 12)) == NULL) ||
        (span_kwnames == NULL && (span_kwnames = interned_tuple(span_names, 17)) == NULL))
        return -1;
    for (int i = 0; i < SPAN_FIELDS; i++) {
        if (span_fields[i] == NULL && (span_fields[i] = PyUnicode_InternFromString(span_field_names[i])) == NULL)
            return -1;
    }
    for (int i = 0; i < REC_FIELDS; i++) {
        if (rec_fields[i] == NULL && (rec_fields[i] = PyUnicode_InternFromString(rec_field_names[i])) == NULL)
            return -1;
    }
    static const char *event_names[] = {"id",           "kind", "type",  "ts_ns", "node_id", "trace_id",
                                        "span_id",      "on_behalf_of", "code", "attrs", "payload", "sources"};
    if (event_kwnames == NULL && (event_kwnames = interned_tuple(event_names, 12)) == NULL) return -1;
    if ((str_span == NULL && (str_span = PyUnicode_InternFromString("span")) == NULL) ||
        (str_event == NULL && (str_event = PyUnicode_InternFromString("event")) == NULL))
        return -1;
    if (PyType_Ready(&LogBuilderType) < 0 || PyType_Ready(&StdlogBuilderType) < 0 || PyType_Ready(&EventBuilderType) < 0 ||
        PyType_Ready(&SpanBuilderType) < 0 || PyType_Ready(&DispatchType) < 0)
        return -1;
    if (PyModule_AddObjectRef(module, "LogBuilder", (PyObject *)&LogBuilderType) < 0 ||
        PyModule_AddObjectRef(module, "StdlogBuilder", (PyObject *)&StdlogBuilderType) < 0 ||
        PyModule_AddObjectRef(module, "SpanBuilder", (PyObject *)&SpanBuilderType) < 0 ||
        PyModule_AddObjectRef(module, "EventBuilder", (PyObject *)&EventBuilderType) < 0 ||
        PyModule_AddObjectRef(module, "Dispatch", (PyObject *)&DispatchType) < 0)
        return -1;
    return 0;
}
