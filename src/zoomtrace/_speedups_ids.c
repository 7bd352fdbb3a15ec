/* Record, trace and span ids in C (docs/ARCHITECTURE.md, "Native code").
 *
 *   uuid7(ts_ns=None)            zoomtrace.wire.record._uuid7_python (a record's id)
 *   new_trace_id(), new_span_id() zoomtrace.wire.record._new_trace_id_python, _new_span_id_python
 *
 * tests/test_speedups.py and tests/test_hot_path.py hold them to the Python's format and uniqueness.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <pthread.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>
#if defined(__APPLE__)
#include <sys/random.h>
#endif

#include "_speedups_parts.h"

/* wire.record.uuid7's random bits: splitmix64 from a seed of the system's entropy, seeded again in a forked
 * child (two processes must not make the same ids). Not for secrets: as random.getrandbits, which the Python
 * code uses. Calls hold the GIL, so one state serves every thread. */
static uint64_t id_state;

static void seed_ids(void) {
    uint64_t seed = 0;
    if (getentropy(&seed, sizeof seed) != 0) { /* no entropy source: time and process, still distinct */
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        seed = ((uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec) ^ ((uint64_t)getpid() << 32);
    }
    id_state = seed;
}

static uint64_t next_bits(void) {
    uint64_t z = (id_state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static void put_hex(Py_UCS1 *out, uint64_t value, int digits) {
    static const char hex[] = "0123456789abcdef";
    for (int i = digits - 1; i >= 0; i--, value >>= 4) out[i] = (Py_UCS1)hex[value & 0xF];
}

/* wire.record._uuid7_python: "tttttttt-tttt-7rrr-vrrr-rrrrrrrrrrrr" from the millisecond of ``ts_ns``
 * (default: now), version 7, variant 0b10, 74 random bits. */
PyObject *speedups_uuid7(PyObject *ts_ns) {
    uint64_t ms; /* its low 48 bits are the id's time */
    if (ts_ns == NULL || ts_ns == Py_None) {
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        ms = (uint64_t)((int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000);
    } else if (!PyLong_Check(ts_ns)) {
        PyErr_Format(PyExc_TypeError, "uuid7: ts_ns must be an int or None, not %.100s", Py_TYPE(ts_ns)->tp_name);
        return NULL;
    } else {
        int overflow = 0;
        long long ts = PyLong_AsLongLongAndOverflow(ts_ns, &overflow);
        if (ts == -1 && PyErr_Occurred()) return NULL;
        if (!overflow) {
            ms = (uint64_t)(ts / 1000000 - (ts % 1000000 < 0)); /* floor division, as Python's // */
        } else { /* beyond 64 bits: Python's arithmetic, as the Python code does it */
            PyObject *million = PyLong_FromLong(1000000), *mask = PyLong_FromUnsignedLongLong(0xFFFFFFFFFFFFULL);
            PyObject *whole = million == NULL ? NULL : PyNumber_FloorDivide(ts_ns, million);
            PyObject *low = whole == NULL || mask == NULL ? NULL : PyNumber_And(whole, mask);
            Py_XDECREF(million);
            Py_XDECREF(mask);
            Py_XDECREF(whole);
            if (low == NULL) return NULL;
            ms = PyLong_AsUnsignedLongLong(low);
            Py_DECREF(low);
            if (ms == (uint64_t)-1 && PyErr_Occurred()) return NULL;
        }
    }
    uint64_t high = next_bits(), low = next_bits();
    PyObject *text = PyUnicode_New(36, 127);
    if (text == NULL) return NULL;
    Py_UCS1 *out = PyUnicode_1BYTE_DATA(text);
    put_hex(out, (ms >> 16) & 0xFFFFFFFFu, 8);
    out[8] = '-';
    put_hex(out + 9, ms & 0xFFFF, 4);
    out[13] = '-';
    put_hex(out + 14, 0x7000 | (high >> 52), 4);
    out[18] = '-';
    put_hex(out + 19, 0x8000 | ((high >> 38) & 0x3FFF), 4);
    out[23] = '-';
    put_hex(out + 24, low & 0xFFFFFFFFFFFFULL, 12);
    return text;
}

static PyObject *uuid7(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs > 1) {
        PyErr_SetString(PyExc_TypeError, "uuid7(ts_ns=None) takes at most one argument");
        return NULL;
    }
    return speedups_uuid7(nargs == 0 ? NULL : args[0]);
}

/* wire.record._new_trace_id_python and _new_span_id_python: ``words`` 64-bit words of random bits as lower-case
 * hex, never all zero (W3C forbids it; the Python code makes that 1 too). */
static PyObject *random_hex(int words) {
    uint64_t bits[2] = {next_bits(), words > 1 ? next_bits() : 0};
    if (bits[0] == 0 && bits[1] == 0) bits[words - 1] = 1;
    PyObject *text = PyUnicode_New(16 * words, 127);
    if (text == NULL) return NULL;
    for (int i = 0; i < words; i++) put_hex(PyUnicode_1BYTE_DATA(text) + 16 * i, bits[i], 16);
    return text;
}

PyObject *speedups_new_trace_id(void) { return random_hex(2); }

PyObject *speedups_new_span_id(void) { return random_hex(1); }

static PyObject *new_trace_id(PyObject *module, PyObject *unused) { return random_hex(2); }

static PyObject *new_span_id(PyObject *module, PyObject *unused) { return random_hex(1); }

static PyMethodDef id_functions[] = {
    {"uuid7", (PyCFunction)(void (*)(void))uuid7, METH_FASTCALL, "wire.record.uuid7, in C."},
    {"new_trace_id", new_trace_id, METH_NOARGS, "wire.record.new_trace_id, in C."},
    {"new_span_id", new_span_id, METH_NOARGS, "wire.record.new_span_id, in C."},
    {NULL, NULL, 0, NULL},
};

int ids_init(PyObject *module) {
    seed_ids();
    static int fork_handler; /* once per process: a module imported again must not add another */
    if (!fork_handler) fork_handler = pthread_atfork(NULL, NULL, seed_ids) == 0;
    return PyModule_AddFunctions(module, id_functions);
}
