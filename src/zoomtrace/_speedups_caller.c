/* The caller's side of the hot path in C: a log call and the queue's put, without a Python frame of their own
 * (docs/ARCHITECTURE.md, "Native code"). A log call is what an application pays on its own thread for every
 * line, and half of it was the Python calls themselves (``Logger.info``, then ``Pipeline.put``).
 *
 *   Putter(queue, maxsize, wake_at, wake, full)
 *                                zoomtrace.runtime.pipeline.PythonPutter (the pipeline's ``put``)
 *   Logger(name=None)            zoomtrace.capture.log.PythonLogger (``zt.log``, ``zt.logger(name)``)
 *   configure_logger(recorder_namespace, current, kind)
 *                                what Logger reads on every call: the recorder module's ``active`` node,
 *                                the current-position ContextVar and the queue item kind of a log line
 *   event(obj, /, type=None, sources=(), *, attrs=None, **fields)
 *                                zoomtrace.capture.events.python_event (``zt.event``); a call the Python would
 *                                refuse is handed to it, so that the errors are its
 *   configure_event(recorder_namespace, current, python_event, kind)
 *                                what event reads, as configure_logger, and the Python it hands calls to
 *
 * Each does exactly what its Python reference does, in the same order (tests/test_speedups_caller.py).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <time.h>

#include "_speedups_parts.h"

/* -- Putter: Pipeline.put --------------------------------------------------------------------------------- */

typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    PyObject *queue;  /* the pipeline's deque */
    PyObject *append; /* queue.append, bound once */
    PyObject *wake;   /* called when the queue passes wake_at (the worker's Event.set) */
    PyObject *full;   /* called with the item when the queue is full (the pipeline's _full) */
    PyObject *untracked; /* a type whose objects wait in the queue untracked (the encoder's Dispatch tracks them
                          * again), or None */
    Py_ssize_t maxsize;
    Py_ssize_t wake_at;
    double turn_at; /* time.monotonic() at which the waiting worker gets the GIL at the next put; 0: none */
    char woken;     /* wake was called since the worker last cleared its event (PythonPutter.woken) */
} Putter;

static PyTypeObject PutterType;

static double monotonic(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts); /* time.monotonic()'s clock */
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Enqueue one item: 0, or -1 with an exception set (only what the callbacks raise). A tuple is made for the
 * queue (Put's contract): only the queue and then the worker hold it, so it is in no reference cycle, and the
 * garbage collector need not visit it while it waits (a full queue is 100,000 of them). */
static int putter_put(Putter *self, PyObject *item) {
    if (PyTuple_CheckExact(item)) PyObject_GC_UnTrack(item);
    Py_ssize_t size = PyObject_Size(self->queue);
    if (size < 0) return -1;
    PyObject *done;
    if (size < self->maxsize) {
        /* A queued span is alive (the queue holds it) and the worker tracks it again when it takes it out: the
         * collector need not walk it meanwhile (≈11 % of a span's CPU end to end when it did). */
        if ((PyObject *)Py_TYPE(item) == self->untracked) PyObject_GC_UnTrack(item);
        done = PyObject_CallOneArg(self->append, item);
        if (done == NULL) return -1;
        Py_DECREF(done);
        size = PyObject_Size(self->queue);
        if (size < 0) return -1;
        if (size > self->wake_at && !self->woken) {
            self->woken = 1;
            done = PyObject_CallNoArgs(self->wake);
            if (done == NULL) return -1;
            Py_DECREF(done);
        }
    } else {
        done = PyObject_CallOneArg(self->full, item);
        if (done == NULL) return -1;
        Py_DECREF(done);
    }
    if (self->turn_at != 0.0 && monotonic() >= self->turn_at) {
        /* The worker waits for the GIL and the caller has had its turn (PythonPutter says why a sleep). */
        self->turn_at = 0.0;
        struct timespec pause = {0, 1000};
        Py_BEGIN_ALLOW_THREADS
        nanosleep(&pause, NULL);
        Py_END_ALLOW_THREADS
    }
    return 0;
}

PyObject *speedups_clock_ns(clockid_t clock) {
    struct timespec now;
    clock_gettime(clock, &now);
    return PyLong_FromLongLong((long long)now.tv_sec * 1000000000LL + now.tv_nsec);
}

int speedups_put(PyObject *put, PyObject *item) {
    if (Py_IS_TYPE(put, &PutterType)) return putter_put((Putter *)put, item);
    PyObject *done = PyObject_CallOneArg(put, item);
    Py_XDECREF(done);
    return done == NULL ? -1 : 0;
}

static PyObject *putter_call(PyObject *self, PyObject *const *args, size_t nargsf, PyObject *kwnames) {
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    if (nargs != 1 || (kwnames != NULL && PyTuple_GET_SIZE(kwnames) != 0)) {
        PyErr_Format(PyExc_TypeError, "put() takes exactly one positional argument, the item (%zd given)", nargs);
        return NULL;
    }
    if (putter_put((Putter *)self, args[0]) < 0) return NULL;
    Py_RETURN_NONE;
}

static PyObject *putter_new(PyTypeObject *type, PyObject *args, PyObject *kwargs) {
    static char *kwlist[] = {"queue", "maxsize", "wake_at", "wake", "full", "untracked", NULL};
    PyObject *queue, *wake, *full, *untracked = Py_None;
    Py_ssize_t maxsize, wake_at;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OnnOO|$O:Putter", kwlist, &queue, &maxsize, &wake_at, &wake,
                                     &full, &untracked))
        return NULL;
    if (untracked != Py_None && !(PyType_Check(untracked) && PyType_IS_GC((PyTypeObject *)untracked))) {
        PyErr_SetString(PyExc_TypeError, "Putter: untracked must be a type whose objects the collector tracks, or None");
        return NULL;
    }
    PyObject *append = PyObject_GetAttrString(queue, "append");
    if (append == NULL) return NULL;
    Putter *self = (Putter *)type->tp_alloc(type, 0);
    if (self == NULL) {
        Py_DECREF(append);
        return NULL;
    }
    self->vectorcall = putter_call;
    self->queue = Py_NewRef(queue);
    self->append = append;
    self->wake = Py_NewRef(wake);
    self->full = Py_NewRef(full);
    self->untracked = Py_NewRef(untracked);
    self->maxsize = maxsize;
    self->wake_at = wake_at;
    self->turn_at = 0.0;
    self->woken = 0;
    return (PyObject *)self;
}

static int putter_traverse(Putter *self, visitproc visit, void *arg) {
    Py_VISIT(self->queue);
    Py_VISIT(self->append);
    Py_VISIT(self->wake);
    Py_VISIT(self->full);
    Py_VISIT(self->untracked);
    return 0;
}

static int putter_clear(Putter *self) {
    Py_CLEAR(self->queue);
    Py_CLEAR(self->append);
    Py_CLEAR(self->wake);
    Py_CLEAR(self->full);
    Py_CLEAR(self->untracked);
    return 0;
}

static void putter_dealloc(Putter *self) {
    PyObject_GC_UnTrack(self);
    putter_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyMemberDef putter_members[] = {
    {"turn_at", T_DOUBLE, offsetof(Putter, turn_at), 0,
     "time.monotonic() at which the worker, waiting for the GIL, gets it at the next put (0: it is not waiting)."},
    {"woken", T_BOOL, offsetof(Putter, woken), 0,
     "wake was called since the worker last cleared its event: the puts past wake_at call it once, not each."},
    {NULL},
};

static PyTypeObject PutterType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "zoomtrace._speedups.Putter",
    .tp_doc = "The pipeline's put: enqueue one item; never blocks longer than the pipeline's deadline.",
    .tp_basicsize = sizeof(Putter),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_new = putter_new,
    .tp_dealloc = (destructor)putter_dealloc,
    .tp_traverse = (traverseproc)putter_traverse,
    .tp_clear = (inquiry)putter_clear,
    .tp_call = PyVectorcall_Call,
    .tp_vectorcall_offset = offsetof(Putter, vectorcall),
    .tp_members = putter_members,
};

/* -- Logger: zt.log ----------------------------------------------------------------------------------------- */

typedef struct {
    PyObject_HEAD
    PyObject *name; /* the records' logger name, or None: the calling module's __name__ */
} Logger;

/* What configure_logger set: borrowed nowhere, held for the life of the process. */
static PyObject *recorder_namespace; /* zoomtrace.capture.recorder.__dict__ (its ``active`` node) */
static PyObject *current_position;   /* zoomtrace.capture.context.current */
static PyObject *log_kind;           /* zoomtrace.capture.items.LOG */

static PyObject *str_active, *str_levelno, *str_pipeline, *str_put, *str_name, *str_attrs, *str_name_attr;
static PyObject *name_member; /* LoggerType's ``name`` member descriptor (borrowed: the type lives forever) */
static PyObject *level_names[5]; /* "DEBUG" .. "CRITICAL" */

static PyObject *configure_logger(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 3 || !PyDict_Check(args[0]) || !PyContextVar_CheckExact(args[1])) {
        PyErr_SetString(PyExc_TypeError, "configure_logger(recorder_namespace: dict, current: ContextVar, kind)");
        return NULL;
    }
    Py_XSETREF(recorder_namespace, Py_NewRef(args[0]));
    Py_XSETREF(current_position, Py_NewRef(args[1]));
    Py_XSETREF(log_kind, Py_NewRef(args[2]));
    Py_RETURN_NONE;
}

/* ``{**attrs, **fields}``: the keywords win over the mapping on a clash. A new reference, or NULL. The errors are
 * the interpreter's (its DICT_UPDATE): what the mapping raises, an AttributeError made "not a mapping". */
static PyObject *merged(PyObject *attrs, PyObject *fields) {
    PyObject *both = PyDict_New();
    if (both == NULL) return NULL;
    if (PyDict_Update(both, attrs) < 0) {
        if (PyErr_ExceptionMatches(PyExc_AttributeError))
            PyErr_Format(PyExc_TypeError, "'%.200s' object is not a mapping", Py_TYPE(attrs)->tp_name);
        Py_DECREF(both);
        return NULL;
    }
    if (PyDict_Update(both, fields) < 0) {
        Py_DECREF(both);
        return NULL;
    }
    return both;
}

/* The keywords as the record's attributes (``attrs=`` merged in). A new reference, or NULL. */
static PyObject *attributes(PyObject *const *values, PyObject *kwnames) {
    PyObject *fields = PyDict_New();
    if (fields == NULL) return NULL;
    PyObject *attrs = NULL;
    Py_ssize_t count = kwnames == NULL ? 0 : PyTuple_GET_SIZE(kwnames);
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *key = PyTuple_GET_ITEM(kwnames, i);
        if (key == str_attrs || PyUnicode_Compare(key, str_attrs) == 0) {
            attrs = values[i];
        } else if (PyDict_SetItem(fields, key, values[i]) < 0) {
            Py_DECREF(fields);
            return NULL;
        }
    }
    if (attrs != NULL && attrs != Py_None) {
        Py_SETREF(fields, merged(attrs, fields));
    }
    return fields;
}

/* The calling module's ``__name__`` (``f.f_globals.get("__name__")``). A new reference, or NULL. */
static PyObject *module_name(PyFrameObject *frame) {
    PyObject *globals = PyFrame_GetGlobals(frame);
    PyObject *name = PyDict_GetItemWithError(globals, str_name);
    Py_DECREF(globals);
    if (name == NULL) return PyErr_Occurred() ? NULL : Py_NewRef(Py_None);
    return Py_NewRef(name);
}

/* The records' logger name: ``self.name or f.f_globals.get("__name__")``. A new reference, or NULL. The slot is
 * read directly unless a subclass makes ``self.name`` something else (a property, a __getattribute__), or it was
 * deleted (then ``self.name`` raises the AttributeError). */
static PyObject *logger_name(Logger *self, PyFrameObject *frame) {
    PyTypeObject *type = Py_TYPE(self);
    PyObject *name;
    if (self->name != NULL && type->tp_getattro == PyObject_GenericGetAttr &&
        _PyType_Lookup(type, str_name_attr) == name_member) {
        name = Py_NewRef(self->name);
    } else if ((name = PyObject_GetAttr((PyObject *)self, str_name_attr)) == NULL) {
        return NULL;
    }
    int named = name == Py_None ? 0 : PyObject_IsTrue(name);
    if (named != 0) {
        if (named < 0) Py_CLEAR(name);
        return name;
    }
    Py_DECREF(name);
    return module_name(frame);
}

/* ``current.get()``: the current position, a new reference, or NULL (LookupError: no value, which Python's
 * ContextVar.get raises too; the variable has a default, so it never happens). */
static PyObject *current_value(PyObject *current) {
    PyObject *value = NULL;
    if (PyContextVar_Get(current, NULL, &value) < 0) return NULL;
    if (value == NULL) PyErr_SetString(PyExc_LookupError, "the current position has no value");
    return value;
}

/* The queue item of a log line: (LOG, ts, code, lasti, name, level, template, fields, position, exc).
 * Steals ``name`` and ``fields``. A new reference, or NULL. */
static PyObject *log_item(PyFrameObject *frame, PyObject *name, PyObject *template, PyObject *fields, PyObject *level,
                          int with_exception) {
    PyObject *item = PyTuple_New(10);
    if (item == NULL) {
        Py_DECREF(name);
        Py_DECREF(fields);
        return NULL;
    }
    PyTuple_SET_ITEM(item, 4, name);
    PyTuple_SET_ITEM(item, 7, fields);
    PyTuple_SET_ITEM(item, 0, Py_NewRef(log_kind));
    PyTuple_SET_ITEM(item, 2, (PyObject *)PyFrame_GetCode(frame));
    PyTuple_SET_ITEM(item, 5, Py_NewRef(level));
    PyTuple_SET_ITEM(item, 6, Py_NewRef(template));
    PyObject *exc = with_exception ? PyErr_GetHandledException() : NULL;
    PyTuple_SET_ITEM(item, 9, exc == NULL ? Py_NewRef(Py_None) : exc);
    PyObject *value = speedups_clock_ns(CLOCK_REALTIME);
    if (value == NULL) goto fail;
    PyTuple_SET_ITEM(item, 1, value);
    if ((value = PyLong_FromLong(PyFrame_GetLasti(frame))) == NULL) goto fail;
    PyTuple_SET_ITEM(item, 3, value);
    if ((value = current_value(current_position)) == NULL) goto fail;
    PyTuple_SET_ITEM(item, 8, value);
    return item;
fail:
    Py_DECREF(item); /* a tuple's dealloc skips the slots not set */
    return NULL;
}

/* ``recorder.active``, borrowed from the recorder module's namespace; NULL with the AttributeError Python raises when
 * it was deleted, or another error. */
static PyObject *active_node(PyObject *namespace) {
    PyObject *node = PyDict_GetItemWithError(namespace, str_active);
    if (node == NULL && !PyErr_Occurred())
        PyErr_SetString(PyExc_AttributeError, "module 'zoomtrace.capture.recorder' has no attribute 'active'");
    return node;
}

/* Whether the node's level is above the method's: ``node.levelno > levelno``. 1, 0, or -1 with an exception. */
static int above(PyObject *node_level, long levelno) {
    if (PyLong_CheckExact(node_level)) {
        int overflow;
        long threshold = PyLong_AsLongAndOverflow(node_level, &overflow);
        return overflow > 0 || (overflow == 0 && threshold > levelno);
    }
    PyObject *mine = PyLong_FromLong(levelno); /* another type: Python's comparison, whatever it does */
    if (mine == NULL) return -1;
    int result = PyObject_RichCompareBool(node_level, mine, Py_GT);
    Py_DECREF(mine);
    return result;
}

/* The body of every level's method: the Python reference's, in its order. */
static PyObject *emit(Logger *self, PyObject *const *args, size_t nargsf, PyObject *kwnames, const char *method,
                      long levelno, PyObject *level, int with_exception) {
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    if (nargs != 1) {
        PyErr_Format(PyExc_TypeError, "Logger.%s() takes exactly one positional argument, the template (%zd given)",
                     method, nargs);
        return NULL;
    }
    if (recorder_namespace == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "zoomtrace._speedups.configure_logger was not called");
        return NULL;
    }
    PyObject *node = active_node(recorder_namespace); /* borrowed */
    if (node == NULL || node == Py_None) {
        if (PyErr_Occurred()) return NULL;
        Py_RETURN_NONE;
    }
    Py_INCREF(node); /* getting its attributes may run Python code that replaces it */
    PyObject *result = NULL, *fields = NULL, *name = NULL, *pipeline = NULL, *put = NULL, *item = NULL;
    PyObject *node_level = PyObject_GetAttr(node, str_levelno);
    if (node_level == NULL) goto done;
    int filtered = above(node_level, levelno);
    Py_DECREF(node_level);
    if (filtered < 0) goto done;
    if (filtered) {
        result = Py_NewRef(Py_None);
        goto done;
    }
    fields = attributes(args + 1, kwnames);
    if (fields == NULL) goto done;
    PyFrameObject *frame = PyEval_GetFrame(); /* the caller's: a C method has no frame of its own */
    if (frame == NULL) {
        PyErr_SetString(PyExc_ValueError, "call stack is not deep enough");
        goto done;
    }
    name = logger_name(self, frame);
    if (name == NULL) goto done;
    pipeline = PyObject_GetAttr(node, str_pipeline);
    if (pipeline == NULL) goto done;
    put = PyObject_GetAttr(pipeline, str_put);
    if (put == NULL) goto done;
    item = log_item(frame, name, args[0], fields, level, with_exception);
    name = fields = NULL; /* stolen */
    if (item == NULL) goto done;
    if (speedups_put(put, item) == 0) result = Py_NewRef(Py_None);
done:
    Py_XDECREF(item);
    Py_XDECREF(put);
    Py_XDECREF(pipeline);
    Py_XDECREF(name);
    Py_XDECREF(fields);
    Py_DECREF(node);
    return result;
}

#define LEVEL_METHOD(method, levelno, index, with_exception)                                                     \
    static PyObject *logger_##method(PyObject *self, PyObject *const *args, size_t nargsf, PyObject *kwnames) {  \
        return emit((Logger *)self, args, nargsf, kwnames, #method, levelno, level_names[index], with_exception); \
    }

LEVEL_METHOD(debug, 10, 0, 0)
LEVEL_METHOD(info, 20, 1, 0)
LEVEL_METHOD(warning, 30, 2, 0)
LEVEL_METHOD(error, 40, 3, 0)
LEVEL_METHOD(critical, 50, 4, 0)
LEVEL_METHOD(exception, 40, 3, 1)

#define METHOD(name, doc) {#name, (PyCFunction)(void (*)(void))logger_##name, METH_FASTCALL | METH_KEYWORDS, doc}

static PyMethodDef logger_methods[] = {
    METHOD(debug, "Record a DEBUG log line."),
    METHOD(info, "Record an INFO log line."),
    METHOD(warning, "Record a WARNING log line."),
    METHOD(error, "Record an ERROR log line."),
    METHOD(critical, "Record a CRITICAL log line."),
    METHOD(exception, "Record an ERROR log line with the exception being handled (call it in an ``except`` block)."),
    {NULL},
};

static int logger_init(Logger *self, PyObject *args, PyObject *kwargs) {
    static char *kwlist[] = {"name", NULL};
    PyObject *name = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|O:Logger", kwlist, &name)) return -1;
    Py_XSETREF(self->name, Py_NewRef(name));
    return 0;
}

static int logger_traverse(Logger *self, visitproc visit, void *arg) {
    Py_VISIT(self->name); /* a name may refer back to its logger (a cycle the collector must see) */
    return 0;
}

static int logger_clear(Logger *self) {
    Py_CLEAR(self->name);
    return 0;
}

static void logger_dealloc(Logger *self) {
    PyObject_GC_UnTrack(self);
    logger_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyMemberDef logger_members[] = {
    {"name", T_OBJECT_EX, offsetof(Logger, name), 0, "The records' logger name; None: the calling module's."},
    {NULL},
};

static PyTypeObject LoggerType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "zoomtrace._speedups.Logger",
    .tp_doc = "zoomtrace.capture.log.PythonLogger in C: a log call with no Python frame of its own.",
    .tp_basicsize = sizeof(Logger),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)logger_init,
    .tp_dealloc = (destructor)logger_dealloc,
    .tp_traverse = (traverseproc)logger_traverse,
    .tp_clear = (inquiry)logger_clear,
    .tp_methods = logger_methods,
    .tp_members = logger_members,
};

/* -- event: zt.event ------------------------------------------------------------------------------------------- */

/* What configure_event set, held for the life of the process. */
static PyObject *event_recorder_namespace, *event_current, *python_event, *event_kind;
static PyObject *str_type, *str_sources;

static PyObject *configure_event(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 4 || !PyDict_Check(args[0]) || !PyContextVar_CheckExact(args[1]) || !PyCallable_Check(args[2])) {
        PyErr_SetString(PyExc_TypeError,
                        "configure_event(recorder_namespace: dict, current: ContextVar, python_event, kind)");
        return NULL;
    }
    Py_XSETREF(event_recorder_namespace, Py_NewRef(args[0]));
    Py_XSETREF(event_current, Py_NewRef(args[1]));
    Py_XSETREF(python_event, Py_NewRef(args[2]));
    Py_XSETREF(event_kind, Py_NewRef(args[3]));
    Py_RETURN_NONE;
}

static int is_name(PyObject *key, PyObject *name) { return key == name || PyUnicode_Compare(key, name) == 0; }

/* The queue item of an event, (EVENT, id, ts, code, lasti, type, obj, sources, fields, position), put on the node's
 * pipeline: the Python's steps in its order (``node.pipeline.put`` looked up before the item's parts are made). The
 * parts are all made before the tuple, as in Python: making them may run Python code (``tuple(sources)`` of a
 * generator), which must not meet a tuple tracked by the collector with slots still empty. 0, or -1 with an
 * exception set. */
static int put_event(PyObject *node, PyObject *record_id, PyObject *ts, PyObject *type, PyObject *obj,
                     PyObject *sources, PyObject *attrs, PyObject *const *values, PyObject *kwnames) {
    int status = -1;
    PyObject *fields = PyDict_New(), *pipeline = NULL, *put = NULL, *lasti = NULL, *sources_tuple = NULL,
             *position = NULL, *item = NULL;
    if (fields == NULL) return -1;
    Py_ssize_t count = kwnames == NULL ? 0 : PyTuple_GET_SIZE(kwnames);
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *key = PyTuple_GET_ITEM(kwnames, i);
        if (is_name(key, str_type) || is_name(key, str_sources) || is_name(key, str_attrs)) continue;
        if (PyDict_SetItem(fields, key, values[i]) < 0) goto done;
    }
    if (attrs != NULL && attrs != Py_None) {
        Py_SETREF(fields, merged(attrs, fields));
        if (fields == NULL) goto done;
    }
    PyFrameObject *frame = PyEval_GetFrame(); /* the caller's: a C function has no frame of its own */
    if (frame == NULL) {
        PyErr_SetString(PyExc_ValueError, "call stack is not deep enough");
        goto done;
    }
    if ((pipeline = PyObject_GetAttr(node, str_pipeline)) == NULL ||
        (put = PyObject_GetAttr(pipeline, str_put)) == NULL ||
        (lasti = PyLong_FromLong(PyFrame_GetLasti(frame))) == NULL ||
        (sources_tuple = sources == NULL ? PyTuple_New(0) : PySequence_Tuple(sources)) == NULL ||
        (position = current_value(event_current)) == NULL || (item = PyTuple_New(10)) == NULL)
        goto done;
    PyObject *parts[10] = {event_kind, record_id, ts,     (PyObject *)PyFrame_GetCode(frame), lasti,
                           type == NULL ? Py_None : type, obj, sources_tuple, fields, position};
    for (int i = 0; i < 10; i++) PyTuple_SET_ITEM(item, i, i == 3 ? parts[i] : Py_NewRef(parts[i]));
    status = speedups_put(put, item);
done:
    Py_XDECREF(item);
    Py_XDECREF(position);
    Py_XDECREF(sources_tuple);
    Py_XDECREF(lasti);
    Py_XDECREF(put);
    Py_XDECREF(pipeline);
    Py_XDECREF(fields);
    return status;
}

static PyObject *event(PyObject *module, PyObject *const *args, size_t nargsf, PyObject *kwnames) {
    if (python_event == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "zoomtrace._speedups.configure_event was not called");
        return NULL;
    }
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf), count = kwnames == NULL ? 0 : PyTuple_GET_SIZE(kwnames);
    if (nargs < 1 || nargs > 3) return PyObject_Vectorcall(python_event, args, nargsf, kwnames);
    PyObject *type = nargs > 1 ? args[1] : NULL, *sources = nargs > 2 ? args[2] : NULL, *attrs = NULL;
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *key = PyTuple_GET_ITEM(kwnames, i), **slot = NULL;
        if (is_name(key, str_type))
            slot = &type;
        else if (is_name(key, str_sources))
            slot = &sources;
        else if (is_name(key, str_attrs))
            slot = &attrs;
        if (slot == NULL) continue;
        if (*slot != NULL) return PyObject_Vectorcall(python_event, args, nargsf, kwnames); /* given twice */
        *slot = args[nargs + i];
    }
    PyObject *ts = speedups_clock_ns(CLOCK_REALTIME);
    if (ts == NULL) return NULL;
    PyObject *record_id = speedups_uuid7(ts);
    PyObject *node = record_id == NULL ? NULL : active_node(event_recorder_namespace);
    if (node == NULL || node == Py_None) {
        Py_DECREF(ts);
        if (PyErr_Occurred()) Py_CLEAR(record_id);
        return record_id;
    }
    Py_INCREF(node); /* getting its attributes may run Python code that replaces it */
    int status = put_event(node, record_id, ts, type, args[0], sources, attrs, args + nargs, kwnames);
    Py_DECREF(node);
    Py_DECREF(ts);
    if (status < 0) Py_CLEAR(record_id);
    return record_id;
}

static PyMethodDef caller_functions[] = {
    {"configure_logger", (PyCFunction)(void (*)(void))configure_logger, METH_FASTCALL,
     "Tell Logger where the running node, the current position and the log item kind are."},
    {"configure_event", (PyCFunction)(void (*)(void))configure_event, METH_FASTCALL,
     "Tell event where the running node and the current position are, its Python and the event item kind."},
    {"event", (PyCFunction)(void (*)(void))event, METH_FASTCALL | METH_KEYWORDS,
     "event($module, obj, /, type=None, sources=(), *, attrs=None, **fields)\n--\n\n"
     "Record a data event and return its record id: zoomtrace.capture.events.python_event in C, with no Python frame "
     "of its own (python_event's docstring says more)."},
    {NULL, NULL, 0, NULL},
};

int caller_init(PyObject *module) {
    static const char *levels[] = {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"};
    for (int i = 0; i < 5; i++) {
        if (level_names[i] == NULL && (level_names[i] = PyUnicode_InternFromString(levels[i])) == NULL) return -1;
    }
    if ((str_active == NULL && (str_active = PyUnicode_InternFromString("active")) == NULL) ||
        (str_levelno == NULL && (str_levelno = PyUnicode_InternFromString("levelno")) == NULL) ||
        (str_pipeline == NULL && (str_pipeline = PyUnicode_InternFromString("pipeline")) == NULL) ||
        (str_put == NULL && (str_put = PyUnicode_InternFromString("put")) == NULL) ||
        (str_name == NULL && (str_name = PyUnicode_InternFromString("__name__")) == NULL) ||
        (str_attrs == NULL && (str_attrs = PyUnicode_InternFromString("attrs")) == NULL) ||
        (str_name_attr == NULL && (str_name_attr = PyUnicode_InternFromString("name")) == NULL) ||
        (str_type == NULL && (str_type = PyUnicode_InternFromString("type")) == NULL) ||
        (str_sources == NULL && (str_sources = PyUnicode_InternFromString("sources")) == NULL))
        return -1;
    if (PyType_Ready(&PutterType) < 0 || PyType_Ready(&LoggerType) < 0) return -1;
    if ((name_member = PyDict_GetItemWithError(LoggerType.tp_dict, str_name_attr)) == NULL) {
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_SystemError, "Logger has no name member");
        return -1;
    }
    if (PyModule_AddObjectRef(module, "Putter", (PyObject *)&PutterType) < 0 ||
        PyModule_AddObjectRef(module, "Logger", (PyObject *)&LoggerType) < 0)
        return -1;
    return PyModule_AddFunctions(module, caller_functions);
}
