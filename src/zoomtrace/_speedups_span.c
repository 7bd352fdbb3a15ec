/* The caller's side of a span in C: ``zt.span``, its ``__init__``, entry and exit without a Python frame of their
 * own, and its slots read and written where they lie (docs/ARCHITECTURE.md, "Native code"). In Python, these
 * calls and their attribute stores were most of a span's cost on the application's thread.
 *
 *   span(name, /, **fields)      zoomtrace.capture.span.python_span (``zt.span``); other arguments go to it
 *   SpanBase                     zoomtrace.capture.span.PythonSpanBase (``Span.__init__``, ``__enter__``,
 *                                ``__exit__``), for ``Span`` itself; a subclass of ``Span`` runs the Python
 *   configure_span(span_type, python_base, python_span, recorder_namespace, current, threads, current_thread,
 *                  current_loop, spent_token)
 *                                the type whose slots these write, the Python references, and what they
 *                                read: the recorder module's ``active`` node, the current-position
 *                                ContextVar, threading's table of threads, threading.current_thread and the
 *                                running event loop's getter; and the spent token an ended span keeps
 *
 * Each does exactly what its Python reference does, in the same order (tests/test_speedups_span.py).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "_speedups_parts.h"

/* The slots of capture.span.Span, by the offset of each in its objects (found once, by configure_span). */
enum {
    S_NAME, S_ATTRS, S_TRACE_ID, S_PARENT_SPAN_ID, S_TRACE_FLAGS, S_TRACESTATE, S_BAGGAGE, S_SPAN_ID, S_LINKS,
    S_ON_BEHALF_OF, S_CODE, S_LINE, S_STATUS, S_ERROR, S_END_NS, S_CPU_NS, S_START_NS, S_TOKEN, S_NODE, S_CPU_START,
    S_THREAD_IDENT, S_THREAD, S_COUNT
};
static const char *slot_names[S_COUNT] = {
    "name",     "attrs",  "trace_id", "parent_span_id", "trace_flags",   "tracestate", "baggage", "span_id",
    "links",    "on_behalf_of", "code", "line",         "status",        "error",      "end_ns",  "cpu_ns",
    "start_ns", "_token", "_node",    "_cpu_start",     "_thread_ident", "thread"};
static Py_ssize_t offsets[S_COUNT];

/* What configure_span set, held for the life of the process. */
static PyTypeObject *span_type;   /* capture.span.Span */
static PyObject *python_base;     /* capture.span.PythonSpanBase: the methods for a subclass of Span */
static PyObject *python_span;     /* capture.span.python_span: zt.span with the arguments span_call leaves */
static PyObject *recorder_namespace, *current_position, *thread_table, *current_thread, *current_loop;
static PyObject *spent_token; /* capture.span._SPENT_TOKEN */

static PyObject *str_active, *str_open_spans, *str_span_cpu, *str_pipeline, *str_put, *str_pop, *str_name, *str_ok,
    *str_error, *str_init, *str_enter, *str_exit, *position_fields[6], *span_options[4], *empty_tuple, *one,
    *zero;

#define SLOT(span, index) (*(PyObject **)((char *)(span) + offsets[index]))

/* Set a slot to a new reference (stolen; NULL: an error already set, returned as -1). */
static int set_slot(PyObject *span, int index, PyObject *value) {
    if (value == NULL) return -1;
    Py_XSETREF(SLOT(span, index), value);
    return 0;
}

/* A slot's value, a new reference; NULL with the AttributeError Python raises for a slot never set. */
static PyObject *get_slot(PyObject *span, int index) {
    PyObject *value = SLOT(span, index);
    if (value == NULL) {
        PyErr_Format(PyExc_AttributeError, "'%.100s' object has no attribute '%s'", Py_TYPE(span)->tp_name,
                     slot_names[index]);
        return NULL;
    }
    return Py_NewRef(value);
}

PyTypeObject *speedups_span_type(void) { return span_type; }

Py_ssize_t speedups_span_offset(const char *name) {
    for (int i = 0; span_type != NULL && i < S_COUNT; i++) {
        if (strcmp(slot_names[i], name) == 0) return offsets[i];
    }
    return 0;
}

static int configured(void) {
    if (span_type != NULL) return 1;
    PyErr_SetString(PyExc_RuntimeError, "zoomtrace._speedups.configure_span was not called");
    return 0;
}

static PyObject *configure_span(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 9 || !PyType_Check(args[0]) || !PyType_Check(args[1]) || !PyDict_Check(args[3]) ||
        !PyContextVar_CheckExact(args[4]) || !PyDict_Check(args[5])) {
        PyErr_SetString(PyExc_TypeError, "configure_span(span_type, python_base, python_span, recorder_namespace: "
                                         "dict, current: ContextVar, threads: dict, current_thread, current_loop, "
                                         "spent_token)");
        return NULL;
    }
    PyTypeObject *type = (PyTypeObject *)args[0];
    Py_ssize_t found[S_COUNT];
    for (int i = 0; i < S_COUNT; i++) { /* each must be a slot of the type itself, an object one */
        PyObject *descr = PyDict_GetItemString(type->tp_dict, slot_names[i]);
        PyMemberDef *member = descr != NULL && Py_IS_TYPE(descr, &PyMemberDescr_Type) &&
                                      PyDescr_TYPE(descr) == type
                                  ? ((PyMemberDescrObject *)descr)->d_member
                                  : NULL;
        if (member == NULL || member->type != T_OBJECT_EX || (member->flags & READONLY) ||
            member->offset < (Py_ssize_t)sizeof(PyObject) ||
            member->offset > type->tp_basicsize - (Py_ssize_t)sizeof(PyObject *)) {
            PyErr_Format(PyExc_TypeError, "configure_span: %.100s has no writable slot %s", type->tp_name,
                         slot_names[i]);
            return NULL;
        }
        found[i] = member->offset;
    }
    if (span_type != NULL && span_type != type) { /* the offsets the methods and the encoder use stay right */
        PyErr_Format(PyExc_RuntimeError, "configure_span: already configured for %.100s", span_type->tp_name);
        return NULL;
    }
    memcpy(offsets, found, sizeof(offsets));
    Py_XSETREF(span_type, (PyTypeObject *)Py_NewRef(args[0]));
    Py_XSETREF(python_base, Py_NewRef(args[1]));
    Py_XSETREF(python_span, Py_NewRef(args[2]));
    Py_XSETREF(recorder_namespace, Py_NewRef(args[3]));
    Py_XSETREF(current_position, Py_NewRef(args[4]));
    Py_XSETREF(thread_table, Py_NewRef(args[5]));
    Py_XSETREF(current_thread, Py_NewRef(args[6]));
    Py_XSETREF(current_loop, Py_NewRef(args[7]));
    Py_XSETREF(spent_token, Py_NewRef(args[8]));
    Py_RETURN_NONE;
}

/* Whether ``self`` is a Span whose slots lie where configure_span found them; anything else (a subclass, which
 * may make a slot a property) runs the Python reference, ``method`` of PythonSpanBase. */
static int exactly_a_span(PyObject *self) { return Py_TYPE(self) == span_type; }

static PyObject *python_method(PyObject *method, PyObject *self, PyObject *const *args, size_t nargsf,
                               PyObject *kwnames) {
    PyObject *function = PyObject_GetAttr(python_base, method);
    if (function == NULL) return NULL;
    PyObject *bound = PyMethod_New(function, self);
    Py_DECREF(function);
    if (bound == NULL) return NULL;
    PyObject *result = PyObject_Vectorcall(bound, args, nargsf, kwnames);
    Py_DECREF(bound);
    return result;
}

/* The running node (``recorder.active``), a new reference (None if there is none), or NULL (the AttributeError
 * Python raises if the module has no ``active``). */
static PyObject *active_node(void) {
    PyObject *node = PyDict_GetItemWithError(recorder_namespace, str_active);
    if (node == NULL && !PyErr_Occurred())
        PyErr_SetString(PyExc_AttributeError, "module 'zoomtrace.capture.recorder' has no attribute 'active'");
    return Py_XNewRef(node);
}

/* -- __init__ ------------------------------------------------------------------------------------------------ */

/* The slots of a new span, as PythonSpanBase.__init__ sets them: 0, or -1 with an exception set. */
static int fill_span(PyObject *self, PyObject *name, PyObject *attrs, PyObject *parent, PyObject *links,
                     PyObject *on_behalf_of, PyObject *code, PyObject *line) {
    set_slot(self, S_NAME, Py_NewRef(name));
    set_slot(self, S_ATTRS, Py_NewRef(attrs));
    if (parent == Py_None) {
        if (set_slot(self, S_TRACE_ID, speedups_new_trace_id()) < 0) return -1;
        set_slot(self, S_PARENT_SPAN_ID, Py_NewRef(Py_None));
        set_slot(self, S_TRACE_FLAGS, Py_NewRef(one));
        set_slot(self, S_TRACESTATE, Py_NewRef(empty_tuple));
        set_slot(self, S_BAGGAGE, Py_NewRef(empty_tuple));
        Py_INCREF(on_behalf_of);
    } else {
        /* The sampling decision, vendor state and baggage travel on to downstream calls. */
        static const int into[] = {S_TRACE_ID, S_PARENT_SPAN_ID, S_TRACE_FLAGS, S_TRACESTATE, S_BAGGAGE};
        for (int i = 0; i < 5; i++) {
            if (set_slot(self, into[i], PyObject_GetAttr(parent, position_fields[i])) < 0) return -1;
        }
        if (on_behalf_of == Py_None) {
            if ((on_behalf_of = PyObject_GetAttr(parent, position_fields[5])) == NULL) return -1;
        } else {
            Py_INCREF(on_behalf_of);
        }
    }
    if (set_slot(self, S_SPAN_ID, speedups_new_span_id()) < 0) {
        Py_DECREF(on_behalf_of);
        return -1;
    }
    set_slot(self, S_LINKS, Py_NewRef(links));
    set_slot(self, S_ON_BEHALF_OF, on_behalf_of);
    set_slot(self, S_CODE, Py_NewRef(code));
    set_slot(self, S_LINE, Py_NewRef(line));
    set_slot(self, S_STATUS, Py_NewRef(str_ok));
    set_slot(self, S_ERROR, Py_NewRef(Py_None));
    set_slot(self, S_END_NS, Py_NewRef(Py_None));
    set_slot(self, S_CPU_NS, Py_NewRef(Py_None));
    set_slot(self, S_START_NS, Py_NewRef(zero));
    return 0;
}


/* PythonSpanBase.__init__(self, name, attrs, parent, links, on_behalf_of, code, line). */
static int span_init(PyObject *self, PyObject *args, PyObject *kwargs) {
    if (!configured()) return -1;
    /* A subclass, or a call the Python takes by keyword or refuses with its own message: PythonSpanBase.__init__. */
    if (!exactly_a_span(self) || PyTuple_GET_SIZE(args) != 7 || (kwargs != NULL && PyDict_GET_SIZE(kwargs) > 0)) {
        PyObject *init = PyObject_GetAttr(python_base, str_init), *bound = NULL, *done = NULL;
        if (init != NULL && (bound = PyMethod_New(init, self)) != NULL) done = PyObject_Call(bound, args, kwargs);
        Py_XDECREF(init);
        Py_XDECREF(bound);
        Py_XDECREF(done);
        return done == NULL ? -1 : 0;
    }
#define ARG(i) PyTuple_GET_ITEM(args, i)
    return fill_span(self, ARG(0), ARG(1), ARG(2), ARG(3), ARG(4), ARG(5), ARG(6));
#undef ARG
}

/* -- zt.span ------------------------------------------------------------------------------------------------- */

/* The line of the caller's instruction, ``f_lineno``, which reads the code's line table from its start at every
 * call (≈0.2 µs, a fifth of a span's C): remembered by code object and instruction, in slots that hold the code
 * object, so that its address cannot be another's while it is remembered (at most LINE_SLOTS of them kept). */
#define LINE_SLOTS 1024
static struct {
    PyObject *code;
    int lasti;
    PyObject *line;
} lines[LINE_SLOTS];

static PyObject *caller_line(PyFrameObject *frame, PyObject *code) {
    int lasti = PyFrame_GetLasti(frame);
    size_t at = (((size_t)(uintptr_t)code >> 4) ^ ((size_t)lasti * 0x9E3779B1u)) % LINE_SLOTS;
    if (lines[at].code == code && lines[at].lasti == lasti) return Py_NewRef(lines[at].line);
    int number = PyFrame_GetLineNumber(frame);
    PyObject *line = number < 0 ? Py_NewRef(Py_None) : PyLong_FromLong(number); /* f_lineno: None if none */
    if (line == NULL) return NULL;
    PyObject *old_code = lines[at].code, *old_line = lines[at].line; /* released once the slot is whole again */
    lines[at].code = Py_NewRef(code);
    lines[at].line = Py_NewRef(line);
    lines[at].lasti = lasti;
    Py_XDECREF(old_code);
    Py_XDECREF(old_line);
    return line;
}

/* capture.span.python_span: ``span(name, **fields)``, a child of the current position, built here; any other
 * call (``attrs=``, ``follows_from=``, ``context=``, ``on_behalf_of=``, another number of positional arguments)
 * goes to the Python function, which called from here sees the same caller's frame (a C call has none). */
static PyObject *span_call(PyObject *module, PyObject *const *args, size_t nargsf, PyObject *kwnames) {
    if (!configured()) return NULL;
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf), count = kwnames == NULL ? 0 : PyTuple_GET_SIZE(kwnames);
    PyFrameObject *frame = PyEval_GetFrame(); /* the caller's (borrowed) */
    int plain = nargs == 1 && frame != NULL;
    for (Py_ssize_t i = 0; plain && i < count; i++) {
        PyObject *key = PyTuple_GET_ITEM(kwnames, i);
        for (int j = 0; j < 4 && plain; j++)
            plain = key != span_options[j] && PyUnicode_Compare(key, span_options[j]) != 0;
    }
    if (!plain) return PyObject_Vectorcall(python_span, args, nargsf, kwnames);
    PyObject *fields = PyDict_New(), *parent = NULL, *code = NULL, *line = NULL, *span = NULL;
    if (fields == NULL) return NULL;
    for (Py_ssize_t i = 0; i < count; i++) {
        if (PyDict_SetItem(fields, PyTuple_GET_ITEM(kwnames, i), args[1 + i]) < 0) goto fail;
    }
    if (PyContextVar_Get(current_position, NULL, &parent) < 0) goto fail;
    if (parent == NULL) {
        PyErr_SetString(PyExc_LookupError, "the current position has no value");
        goto fail;
    }
    code = (PyObject *)PyFrame_GetCode(frame);
    if ((line = caller_line(frame, code)) == NULL) goto fail;
    if ((span = span_type->tp_alloc(span_type, 0)) == NULL ||
        fill_span(span, args[0], fields, parent, empty_tuple, Py_None, code, line) < 0)
        goto fail;
    Py_DECREF(fields);
    Py_DECREF(parent);
    Py_DECREF(code);
    Py_DECREF(line);
    return span;
fail:
    Py_XDECREF(span);
    Py_XDECREF(fields);
    Py_XDECREF(parent);
    Py_XDECREF(code);
    Py_XDECREF(line);
    return NULL;
}

/* -- __enter__ ----------------------------------------------------------------------------------------------- */

/* The name of the calling thread: ``(threads.get(ident) or threading.current_thread()).name``. */
static PyObject *thread_name(PyObject *ident) {
    PyObject *thread = Py_XNewRef(PyDict_GetItemWithError(thread_table, ident));
    if (thread == NULL && PyErr_Occurred()) return NULL;
    int known = thread == NULL ? 0 : PyObject_IsTrue(thread);
    if (known < 0) {
        Py_DECREF(thread);
        return NULL;
    }
    if (!known) {
        Py_XSETREF(thread, PyObject_CallNoArgs(current_thread));
        if (thread == NULL) return NULL;
    }
    PyObject *name = PyObject_GetAttr(thread, str_name);
    Py_DECREF(thread);
    return name;
}

/* PythonSpanBase.__enter__. */
static PyObject *span_enter(PyObject *self, PyObject *unused) {
    if (!configured()) return NULL;
    if (!exactly_a_span(self)) return python_method(str_enter, self, NULL, 0, NULL);
    PyObject *ident = PyLong_FromUnsignedLong(PyThread_get_thread_ident()), *node = NULL, *spans = NULL,
             *wanted = NULL, *loop = NULL, *result = NULL;
    if (ident == NULL || set_slot(self, S_THREAD_IDENT, Py_NewRef(ident)) < 0 ||
        set_slot(self, S_THREAD, thread_name(ident)) < 0 ||
        set_slot(self, S_TOKEN, PyContextVar_Set(current_position, self)) < 0 || (node = active_node()) == NULL ||
        set_slot(self, S_NODE, Py_NewRef(node)) < 0)
        goto done;
    if (node != Py_None) {
        /* ``node.open_spans[self.span_id] = self``: the mapping first, then the id, held (getting the mapping may run
         * Python code that replaces the id). */
        if ((spans = PyObject_GetAttr(node, str_open_spans)) == NULL) goto done;
        PyObject *span_id = get_slot(self, S_SPAN_ID);
        int stored = span_id == NULL ? -1 : PyObject_SetItem(spans, span_id, self);
        Py_XDECREF(span_id);
        if (stored < 0) goto done;
    }
    /* The two clocks are read last, wall clock first, and read back first, CPU clock first (see span_exit): the
     * CPU time is measured within the wall time, not around it. */
    if (set_slot(self, S_START_NS, speedups_clock_ns(CLOCK_REALTIME)) < 0) goto done;
    /* CPU time only when asked for, and only for synchronous code: other tasks run while a coroutine awaits. */
    int cpu = 0;
    if (node != Py_None) {
        if ((wanted = PyObject_GetAttr(node, str_span_cpu)) == NULL || (cpu = PyObject_IsTrue(wanted)) < 0) goto done;
        if (cpu) {
            if ((loop = PyObject_CallNoArgs(current_loop)) == NULL) goto done;
            cpu = loop == Py_None;
        }
    }
    if (set_slot(self, S_CPU_START, cpu ? speedups_clock_ns(CLOCK_THREAD_CPUTIME_ID) : Py_NewRef(Py_None)) == 0)
        result = Py_NewRef(self);
done:
    Py_XDECREF(ident);
    Py_XDECREF(node);
    Py_XDECREF(spans);
    Py_XDECREF(wanted);
    Py_XDECREF(loop);
    return result;
}

/* -- __exit__ ------------------------------------------------------------------------------------------------ */

/* capture.span.cpu_time: the thread's CPU time between two points, at most the wall time between them. */
static PyObject *cpu_time(PyObject *cpu_start, PyObject *cpu_end, PyObject *wall) {
    PyObject *cpu = PyNumber_Subtract(cpu_end, cpu_start);
    if (cpu == NULL) return NULL;
    int longer = PyObject_RichCompareBool(cpu, wall, Py_GT);
    int positive = longer > 0 ? PyObject_RichCompareBool(wall, zero, Py_GE) : 0;
    if (longer < 0 || positive < 0) {
        Py_DECREF(cpu);
        return NULL;
    }
    if (positive) Py_SETREF(cpu, Py_NewRef(wall));
    return cpu;
}

/* ``node.open_spans.pop(span_id, None)`` then ``node.pipeline.put(span)``: 0, or -1 with an exception set. */
static int record_span(PyObject *node, PyObject *span) {
    PyObject *spans = NULL, *span_id = NULL, *done = NULL, *pipeline = NULL, *put = NULL;
    int result = -1;
    if ((spans = PyObject_GetAttr(node, str_open_spans)) == NULL) goto done;
    if (PyDict_CheckExact(spans)) { /* ``pop(span_id, None)``, without the bound method */
        if ((span_id = get_slot(span, S_SPAN_ID)) == NULL) goto done;
        if (PyDict_DelItem(spans, span_id) < 0) {
            if (!PyErr_ExceptionMatches(PyExc_KeyError)) goto done;
            PyErr_Clear();
        }
    } else { /* Python's order: the method, then the id */
        PyObject *pop = PyObject_GetAttr(spans, str_pop);
        if (pop == NULL) goto done;
        if ((span_id = get_slot(span, S_SPAN_ID)) != NULL)
            done = PyObject_CallFunctionObjArgs(pop, span_id, Py_None, NULL);
        Py_DECREF(pop);
        if (done == NULL) goto done;
    }
    if ((pipeline = PyObject_GetAttr(node, str_pipeline)) == NULL ||
        (put = PyObject_GetAttr(pipeline, str_put)) == NULL)
        goto done;
    result = speedups_put(put, span);
done:
    Py_XDECREF(spans);
    Py_XDECREF(span_id);
    Py_XDECREF(done);
    Py_XDECREF(pipeline);
    Py_XDECREF(put);
    return result;
}

/* PythonSpanBase.__exit__(self, exc_type, exc, tb). */
static PyObject *span_exit(PyObject *self, PyObject *const *args, size_t nargsf, PyObject *kwnames) {
    if (!configured()) return NULL;
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    if (!exactly_a_span(self) || nargs != 3 || (kwnames != NULL && PyTuple_GET_SIZE(kwnames) > 0))
        return python_method(str_exit, self, args, nargsf, kwnames); /* its checks, its messages */
    PyObject *exc = args[1], *cpu_start = get_slot(self, S_CPU_START), *cpu_end = NULL, *end = NULL, *wall = NULL,
             *ident = NULL, *node = NULL, *result = NULL;
    if (cpu_start == NULL) return NULL;
    cpu_end = cpu_start != Py_None ? speedups_clock_ns(CLOCK_THREAD_CPUTIME_ID) : Py_NewRef(zero);
    if (cpu_end == NULL || (end = speedups_clock_ns(CLOCK_REALTIME)) == NULL ||
        set_slot(self, S_END_NS, Py_NewRef(end)) < 0)
        goto done;
    if (cpu_start != Py_None) {
        int same = 0;
        if ((ident = PyLong_FromUnsignedLong(PyThread_get_thread_ident())) == NULL) goto done;
        PyObject *entered_on = get_slot(self, S_THREAD_IDENT), *start = NULL;
        if (entered_on == NULL) goto done;
        same = PyObject_RichCompareBool(ident, entered_on, Py_EQ);
        Py_DECREF(entered_on);
        if (same < 0) goto done;
        if (same) {
            if ((start = get_slot(self, S_START_NS)) == NULL) goto done;
            wall = PyNumber_Subtract(end, start);
            Py_DECREF(start);
            if (wall == NULL || set_slot(self, S_CPU_NS, cpu_time(cpu_start, cpu_end, wall)) < 0) goto done;
        }
    }
    if (exc != Py_None) {
        set_slot(self, S_STATUS, Py_NewRef(str_error));
        set_slot(self, S_ERROR, Py_NewRef(exc));
    }
    PyObject *token = get_slot(self, S_TOKEN);
    if (token == NULL) goto done;
    int reset = PyContextVar_Reset(current_position, token);
    Py_DECREF(token);
    if (reset < 0) {
        if (!PyErr_ExceptionMatches(PyExc_ValueError)) goto done;
        PyErr_Clear(); /* exited in another context (e.g. a generator finished elsewhere) */
        PyObject *set = PyContextVar_Set(current_position, Py_None);
        if (set == NULL) goto done;
        Py_DECREF(set);
    } else if (set_slot(self, S_TOKEN, Py_NewRef(spent_token)) < 0) { /* see PythonSpanBase.__exit__ */
        goto done;
    }
    if ((node = active_node()) == NULL) goto done;
    if (node != Py_None) {
        /* Recorded by the node it was entered under (or by any, if entered before init()): see the Python. */
        PyObject *entered_under = SLOT(self, S_NODE);
        if (entered_under == NULL) {
            Py_XDECREF(get_slot(self, S_NODE)); /* the AttributeError */
            goto done;
        }
        if ((node == entered_under || entered_under == Py_None) && record_span(node, self) < 0) goto done;
    }
    result = Py_NewRef(Py_None);
done:
    Py_XDECREF(cpu_start);
    Py_XDECREF(cpu_end);
    Py_XDECREF(end);
    Py_XDECREF(wall);
    Py_XDECREF(ident);
    Py_XDECREF(node);
    return result;
}

static PyMethodDef span_base_methods[] = {
    {"__enter__", (PyCFunction)span_enter, METH_NOARGS, "Make the span current and start its clocks."},
    {"__exit__", (PyCFunction)(void (*)(void))span_exit, METH_FASTCALL | METH_KEYWORDS,
     "End the span, make the position before it current again and queue the span for its record."},
    {NULL},
};

static PyTypeObject SpanBaseType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "zoomtrace._speedups.SpanBase",
    .tp_doc = "zoomtrace.capture.span.PythonSpanBase in C: a span's start, entry and exit without a Python frame.",
    .tp_basicsize = sizeof(PyObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .tp_new = PyType_GenericNew,
    .tp_init = span_init,
    .tp_methods = span_base_methods,
};

static PyMethodDef span_functions[] = {
    {"span", (PyCFunction)(void (*)(void))span_call, METH_FASTCALL | METH_KEYWORDS,
     "capture.span.python_span in C: a new span, child of the current one."},
    {"configure_span", (PyCFunction)(void (*)(void))configure_span, METH_FASTCALL,
     "Tell SpanBase the Span type whose slots it writes, its Python reference and what its methods read."},
    {NULL, NULL, 0, NULL},
};

int span_init_module(PyObject *module) {
    struct {
        PyObject **name;
        const char *text;
    } names[] = {{&str_active, "active"},   {&str_open_spans, "open_spans"}, {&str_span_cpu, "span_cpu"},
                 {&str_pipeline, "pipeline"}, {&str_put, "put"},           {&str_pop, "pop"},
                 {&str_name, "name"},       {&str_ok, "ok"},               {&str_error, "error"},
                 {&str_init, "__init__"},   {&str_enter, "__enter__"},     {&str_exit, "__exit__"},
                 {&position_fields[0], "trace_id"}, {&position_fields[1], "span_id"},
                 {&position_fields[2], "trace_flags"}, {&position_fields[3], "tracestate"},
                 {&position_fields[4], "baggage"}, {&position_fields[5], "on_behalf_of"},
                 {&span_options[0], "attrs"}, {&span_options[1], "follows_from"}, {&span_options[2], "context"},
                 {&span_options[3], "on_behalf_of"}};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (*names[i].name == NULL && (*names[i].name = PyUnicode_InternFromString(names[i].text)) == NULL) return -1;
    }
    if ((empty_tuple == NULL && (empty_tuple = PyTuple_New(0)) == NULL) ||
        (one == NULL && (one = PyLong_FromLong(1)) == NULL) || (zero == NULL && (zero = PyLong_FromLong(0)) == NULL))
        return -1;
    if (PyType_Ready(&SpanBaseType) < 0 || PyModule_AddObjectRef(module, "SpanBase", (PyObject *)&SpanBaseType) < 0)
        return -1;
    return PyModule_AddFunctions(module, span_functions);
}
