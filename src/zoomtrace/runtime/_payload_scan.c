/* The worker's checks of a data event's payload, in C: the answers of the pure-Python functions they stand
 * for, at a fraction of the cost (bench/README.md, "Data events").
 *
 *   needs_care(encoded)          zoomtrace.runtime.sanitize._needs_care_python
 *   json_unchanged(encoded, cache, harmless, learn, max_nesting)
 *                                zoomtrace.runtime.scrub.Scrubber.payload_unchanged(decode(encoded), encoded),
 *                                read off the JSON without decoding it ("maybe not" for a name with an escape)
 *   key_cache()                  the cache of harmless names json_unchanged keeps for one scrubber
 *
 * The Python code stays the reference and the fallback (ZOOMTRACE_PURE_PYTHON=1, or no compiler at install
 * time); tests/test_payload_scan.py holds both to the same answers on random payloads.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define LONG_DIGITS 19 /* sanitize._LONG_DIGITS: a run this long may be an integer msgpack cannot carry */
#define CARD_MIN 13    /* scrub._CARD_MIN */

static int is_digit(unsigned char c) { return (unsigned char)(c - '0') < 10; }

/* "null" anywhere, or LONG_DIGITS ASCII digits in a row. */
static PyObject *needs_care(PyObject *module, PyObject *arg) {
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0) return NULL;
    const unsigned char *p = view.buf;
    Py_ssize_t n = view.len, run = 0;
    int care = 0;
    for (Py_ssize_t i = 0; !care && i < n; i++) {
        if (is_digit(p[i])) {
            care = ++run >= LONG_DIGITS;
        } else {
            run = 0;
            care = p[i] == 'n' && i + 4 <= n && memcmp(p + i, "null", 4) == 0;
        }
    }
    PyBuffer_Release(&view);
    return PyBool_FromLong(care);
}

/* scrub._CARD_CLASSES: a digit is '1'; [A-Za-z_+.:] is 'x'; anything else is ' '. */
static unsigned char card_classes[256];

static void fill_card_classes(void) {
    for (int c = 0; c < 256; c++) {
        int letter = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_' || c == '+' || c == '.' || c == ':';
        card_classes[c] = is_digit((unsigned char)c) ? '1' : letter ? 'x' : ' ';
    }
}

static int has(const void *data, Py_ssize_t size, const char *needle, size_t needle_size) {
    return memmem(data, (size_t)size, needle, needle_size) != NULL;
}

/* What the JSON bytes of a payload say (Scrubber.payload_unchanged's byte tests). */
typedef struct {
    int trigger;       /* "=", "earer", "EARER" or "-----BEGIN": scrub_text may change something */
    Py_ssize_t colons; /* ':' bytes */
    int card_shaped;   /* the classes hold " " and CARD_MIN digits (the digits alone if escaped), or "1111 1111" */
} ByteFacts;

static ByteFacts byte_facts(const unsigned char *p, Py_ssize_t n) {
    static const char lone[] = " 1111111111111", grouped[] = "1111 1111";
    ByteFacts facts = {0, 0, 0};
    facts.trigger = memchr(p, '=', (size_t)n) != NULL || has(p, n, "earer", 5) || has(p, n, "EARER", 5) ||
                    has(p, n, "-----BEGIN", 10);
    if (facts.trigger) return facts;
    unsigned char small[4096];
    unsigned char *classes = n <= (Py_ssize_t)sizeof(small) ? small : PyMem_Malloc((size_t)n);
    if (classes == NULL) { /* no memory: "maybe", and the careful walk decides */
        facts.card_shaped = 1;
        return facts;
    }
    for (Py_ssize_t i = 0; i < n; i++) classes[i] = card_classes[p[i]];
    Py_ssize_t colons = 0; /* a loop of its own, so the compiler vectorises it */
    for (Py_ssize_t i = 0; i < n; i++) colons += p[i] == ':';
    int escaped = memchr(p, '\\', (size_t)n) != NULL;
    facts.colons = colons;
    facts.card_shaped = has(classes, n, escaped ? lone + 1 : lone, escaped ? CARD_MIN : CARD_MIN + 1) ||
                        has(classes, n, grouped, 9);
    if (classes != small) PyMem_Free(classes);
    return facts;
}

/* Scrubber._learn(names): whether none of them is sensitive; -1 on an error. */
static int learn_all(PyObject *learn, PyObject *names) {
    PyObject *ok = PyObject_CallOneArg(learn, names);
    if (ok == NULL) return -1;
    int truth = PyObject_IsTrue(ok);
    Py_DECREF(ok);
    return truth;
}

/* -- names known harmless, by their UTF-8 bytes ------------------------------------------------------- */

#define CACHE_SLOTS 8192 /* a power of two */
#define CACHE_MAX 4096   /* scrub._CACHE_MAX: names made from data (ids...) must not grow it forever */

typedef struct {
    uint64_t hash;
    Py_ssize_t size;
    char *name; /* NULL: a free slot */
} Slot;

typedef struct {
    Py_ssize_t count;
    Slot slots[CACHE_SLOTS];
} KeyCache;

static const char CACHE_NAME[] = "zoomtrace.runtime._payload_scan.KeyCache";

static uint64_t fnv1a(const unsigned char *p, Py_ssize_t n) {
    uint64_t h = 1469598103934665603ULL;
    for (Py_ssize_t i = 0; i < n; i++) h = (h ^ p[i]) * 1099511628211ULL;
    return h;
}

static Slot *cache_slot(KeyCache *cache, uint64_t hash, const unsigned char *name, Py_ssize_t size) {
    for (size_t i = (size_t)hash & (CACHE_SLOTS - 1);; i = (i + 1) & (CACHE_SLOTS - 1)) {
        Slot *slot = &cache->slots[i];
        if (slot->name == NULL || (slot->hash == hash && slot->size == size && memcmp(slot->name, name, size) == 0))
            return slot;
    }
}

static void cache_clear(KeyCache *cache) {
    for (Py_ssize_t i = 0; i < CACHE_SLOTS; i++) {
        PyMem_RawFree(cache->slots[i].name);
        cache->slots[i].name = NULL;
    }
    cache->count = 0;
}

static void cache_free(PyObject *capsule) {
    KeyCache *cache = PyCapsule_GetPointer(capsule, CACHE_NAME);
    if (cache == NULL) return;
    cache_clear(cache);
    PyMem_RawFree(cache);
}

static PyObject *key_cache(PyObject *module, PyObject *unused) {
    KeyCache *cache = PyMem_RawCalloc(1, sizeof(KeyCache));
    if (cache == NULL) return PyErr_NoMemory();
    PyObject *capsule = PyCapsule_New(cache, CACHE_NAME, cache_free);
    if (capsule == NULL) PyMem_RawFree(cache);
    return capsule;
}

/* Whether the name (a JSON string's bytes, without escapes) is harmless: known here, else judged by the
 * scrubber (its harmless dict, then ``learn``) and remembered. 1 yes, 0 no, -1 an error. */
static int name_harmless(KeyCache *cache, const unsigned char *p, Py_ssize_t size, PyObject *harmless, PyObject *learn) {
    uint64_t hash = fnv1a(p, size);
    Slot *slot = cache_slot(cache, hash, p, size);
    if (slot->name != NULL) return 1;
    PyObject *name = PyUnicode_DecodeUTF8((const char *)p, size, "strict");
    if (name == NULL) { /* not UTF-8: no JSON encoder wrote it; "maybe", and the careful path decides */
        PyErr_Clear();
        return 0;
    }
    int fine = PyDict_Contains(harmless, name);
    if (fine == 0) {
        PyObject *names = PyTuple_Pack(1, name);
        fine = names == NULL ? -1 : learn_all(learn, names);
        Py_XDECREF(names);
    }
    Py_DECREF(name);
    if (fine <= 0) return fine;
    if (cache->count >= CACHE_MAX) {
        cache_clear(cache);
        slot = cache_slot(cache, hash, p, size);
    }
    char *copy = PyMem_RawMalloc(size > 0 ? (size_t)size : 1);
    if (copy == NULL) return 1; /* harmless, just not remembered */
    memcpy(copy, p, (size_t)size);
    slot->hash = hash;
    slot->size = size;
    slot->name = copy;
    cache->count++;
    return 1;
}

/* -- the names of a payload's JSON ----------------------------------------------------------------------- */

typedef struct {
    int is_object;
    int expect_key;
    Py_ssize_t items;              /* values begun, in an array */
    const unsigned char *first;    /* the array's first value, when a string: its bytes */
    Py_ssize_t first_size;
    int first_escaped;
} Level;

/* The end of the string whose opening quote is at ``start`` (the index of its closing quote), or -1. */
static Py_ssize_t string_end(const unsigned char *p, Py_ssize_t n, Py_ssize_t start, int *escaped) {
    Py_ssize_t from = start + 1;
    for (;;) {
        const unsigned char *quote = from < n ? memchr(p + from, '"', (size_t)(n - from)) : NULL;
        if (quote == NULL) return -1;
        Py_ssize_t end = quote - p, slashes = 0;
        while (end - 1 - slashes > start && p[end - 1 - slashes] == '\\') slashes++;
        if (slashes % 2 == 0) {
            *escaped = memchr(p + start + 1, '\\', (size_t)(end - start - 1)) != NULL;
            return end;
        }
        from = end + 1;
    }
}

/* Scrubber._names_harmless on the JSON itself: the number of keys, -1 if a name may be sensitive (or has an
 * escape, or the JSON is not what a JSON encoder writes) or the nesting is too deep, -2 on an error. */
static Py_ssize_t json_names_harmless(const unsigned char *p, Py_ssize_t n, KeyCache *cache, PyObject *harmless,
                                      PyObject *learn, Py_ssize_t max_nesting) {
    if (max_nesting < 1) return -1;
    Level *levels = PyMem_Malloc((size_t)max_nesting * sizeof(Level));
    if (levels == NULL) {
        PyErr_NoMemory();
        return -2;
    }
    Py_ssize_t depth = 0, keys = 0, i = 0, result = -1;
    while (i < n) {
        unsigned char c = p[i];
        Level *top = depth > 0 ? &levels[depth - 1] : NULL;
        if (c == '"') {
            int escaped = 0;
            Py_ssize_t end = string_end(p, n, i, &escaped);
            if (end < 0) goto done;
            if (top != NULL && top->is_object && top->expect_key) {
                if (escaped) goto done;
                int fine = name_harmless(cache, p + i + 1, end - i - 1, harmless, learn);
                if (fine <= 0) {
                    result = fine < 0 ? -2 : -1;
                    goto done;
                }
                keys++;
                top->expect_key = 0;
            } else if (top != NULL && !top->is_object && ++top->items == 1) {
                top->first = p + i + 1;
                top->first_size = end - i - 1;
                top->first_escaped = escaped;
            }
            i = end + 1;
        } else if (c == '{' || c == '[') {
            if (depth >= max_nesting - 1) goto done; /* as deep as Scrubber._value cuts */
            if (top != NULL && !top->is_object && ++top->items == 1) top->first = NULL;
            Level *level = &levels[depth++];
            level->is_object = c == '{';
            level->expect_key = c == '{';
            level->items = 0;
            level->first = NULL;
            i++;
        } else if (c == '}' || c == ']') {
            if (top == NULL || top->is_object != (c == '}')) goto done;
            if (!top->is_object && top->items == 2 && top->first != NULL) { /* a (name, value) pair */
                if (top->first_escaped) goto done;
                int fine = name_harmless(cache, top->first, top->first_size, harmless, learn);
                if (fine <= 0) {
                    result = fine < 0 ? -2 : -1;
                    goto done;
                }
            }
            depth--;
            i++;
        } else if (c == ',') {
            if (top != NULL && top->is_object) top->expect_key = 1;
            i++;
        } else if (c == ':') {
            i++;
        } else { /* a number, true, false or null */
            if (top != NULL && !top->is_object && ++top->items == 1) top->first = NULL;
            while (i < n && p[i] != ',' && p[i] != ']' && p[i] != '}') i++;
        }
    }
    if (depth == 0) result = keys;
done:
    PyMem_Free(levels);
    return result;
}

/* json_unchanged(encoded, cache, harmless, learn, max_nesting): Scrubber.payload_unchanged(decode(encoded),
 * encoded) without decoding: the byte tests, then the names read off the JSON. */
static PyObject *json_unchanged(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 5) {
        PyErr_SetString(PyExc_TypeError, "json_unchanged(encoded, cache, harmless, learn, max_nesting)");
        return NULL;
    }
    KeyCache *cache = PyCapsule_GetPointer(args[1], CACHE_NAME);
    if (cache == NULL) return NULL;
    PyObject *harmless = args[2], *learn = args[3];
    if (!PyDict_Check(harmless)) {
        PyErr_SetString(PyExc_TypeError, "harmless must be a dict");
        return NULL;
    }
    Py_ssize_t max_nesting = PyLong_AsSsize_t(args[4]);
    if (max_nesting == -1 && PyErr_Occurred()) return NULL;
    Py_buffer view;
    if (PyObject_GetBuffer(args[0], &view, PyBUF_SIMPLE) < 0) return NULL;
    ByteFacts facts = byte_facts(view.buf, view.len);
    int unchanged = 0;
    if (!facts.trigger && !facts.card_shaped) {
        Py_ssize_t keys = json_names_harmless(view.buf, view.len, cache, harmless, learn, max_nesting);
        if (keys == -2) {
            PyBuffer_Release(&view);
            return NULL;
        }
        unchanged = keys == facts.colons;
    }
    PyBuffer_Release(&view);
    return PyBool_FromLong(unchanged);
}

static PyMethodDef methods[] = {
    {"needs_care", needs_care, METH_O, "sanitize._needs_care, in C."},
    {"key_cache", key_cache, METH_NOARGS, "A new cache of names known harmless, for json_unchanged."},
    {"json_unchanged", (PyCFunction)(void (*)(void))json_unchanged, METH_FASTCALL,
     "Scrubber.payload_unchanged on a payload's JSON alone (harmless and learn are the scrubber's)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_payload_scan", NULL, 0, methods};

PyMODINIT_FUNC PyInit__payload_scan(void) {
    fill_card_classes();
    return PyModule_Create(&module);
}
