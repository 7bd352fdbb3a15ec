/* The scans of JSON in C (a data event's, a spool frame's lines): the answers of the pure-Python functions these
 * stand for, at a fraction of the cost (docs/ARCHITECTURE.md, "Native code"; bench/README.md, "Data events").
 *
 *   needs_care(encoded)          zoomtrace.runtime.sanitize._needs_care_python
 *   json_unchanged(encoded, cache, harmless, learn, max_nesting)
 *                                zoomtrace.runtime.scrub.Scrubber.payload_unchanged(decode(encoded), encoded),
 *                                read off the JSON without decoding it ("maybe not" for a name with an escape)
 *   key_cache()                  the cache of harmless names json_unchanged keeps for one scrubber
 *   count_lines(data)            zoomtrace.wire.spool._count_lines_python (the records of a spool frame)
 *
 * tests/test_speedups.py holds them to the Python on random payloads.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "_speedups_parts.h"

#define LONG_DIGITS 19 /* sanitize._LONG_DIGITS: a run this long may be an integer msgpack cannot carry */
#define CARD_MIN 13    /* scrub._CARD_MIN */

static int is_digit(unsigned char c) { return (unsigned char)(c - '0') < 10; }

/* Whether ``word`` (``size`` bytes, at least 2) is in ``p``. The places where its first and last bytes stand
 * are looked for in blocks of 64, by a loop the compiler vectorises without a branch per byte; only a block
 * with one is compared byte by byte (glibc's memmem branches on every byte, and letters are frequent). */
static int contains(const unsigned char *p, Py_ssize_t n, const char *word, Py_ssize_t size) {
    const unsigned char first = (unsigned char)word[0], last = (unsigned char)word[size - 1];
    const Py_ssize_t starts = n - size + 1; /* the places the word could start */
    for (Py_ssize_t block = 0; block < starts; block += 64) {
        const Py_ssize_t end = starts - block < 64 ? starts : block + 64;
        unsigned char any = 0;
        for (Py_ssize_t i = block; i < end; i++) any |= (p[i] == first) & (p[i + size - 1] == last);
        if (!any) continue;
        for (Py_ssize_t i = block; i < end; i++) {
            if (p[i] == first && p[i + size - 1] == last && memcmp(p + i, word, (size_t)size) == 0) return 1;
        }
    }
    return 0;
}

#define CONTAINS(p, n, literal) contains((p), (n), (literal), (Py_ssize_t)sizeof(literal) - 1)

/* wire.spool.count_lines: the newlines of a buffer (bytes.count reads it a byte at a time; memchr, a vector at a
 * time, and a line is hundreds of bytes). */
static PyObject *count_lines(PyObject *module, PyObject *arg) {
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0) return NULL;
    const char *p = view.buf, *end = p + view.len;
    Py_ssize_t count = 0;
    while (p < end && (p = memchr(p, '\n', (size_t)(end - p))) != NULL) {
        count++;
        p++;
    }
    PyBuffer_Release(&view);
    return PyLong_FromSsize_t(count);
}

/* scrub._CARD_CLASSES: a digit is '1'; [A-Za-z_+.:] is 'x'; anything else is ' '. */
static unsigned char card_classes[256];

static void fill_card_classes(void) {
    for (int c = 0; c < 256; c++) {
        int letter = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_' || c == '+' || c == '.' || c == ':';
        card_classes[c] = is_digit((unsigned char)c) ? '1' : letter ? 'x' : ' ';
    }
}

/* What the JSON bytes of a payload say (Scrubber.payload_unchanged's byte tests, and needs_care's). Past a trigger,
 * the other fields are not looked at (the payload is not proven unchanged anyway). */
typedef struct {
    int trigger;       /* "=", "earer", "EARER" or "-----BEGIN": scrub_text may change something */
    Py_ssize_t colons; /* ':' bytes */
    int card_shaped;   /* the classes hold " " and CARD_MIN digits (the digits alone if escaped), or "1111 1111" */
    int plain;         /* no raw control byte (JSON escapes them, and msgspec's and orjson's compact forms have no
                        * whitespace) and valid UTF-8: may be JSON text at all */
    int care;          /* speedups_needs_care (only when asked for) */
} ByteFacts;

/* The digits of ``p[at .. at + 64)`` (what of it is before ``n``) as the bits of a word, byte k at bit k: sixteen
 * bytes at a time where SSE2 is there (every x86-64), else a byte at a time, without a branch either way. */
static uint64_t digit_bits(const unsigned char *p, Py_ssize_t n, Py_ssize_t at) {
    uint64_t bits = 0;
    Py_ssize_t k = 0;
#if defined(__SSE2__)
    const __m128i zero = _mm_set1_epi8('0'), nine = _mm_set1_epi8(9);
    for (; k + 16 <= 64 && at + k + 16 <= n; k += 16) {
        const __m128i v = _mm_sub_epi8(_mm_loadu_si128((const __m128i *)(p + at + k)), zero);
        const __m128i digit = _mm_cmpeq_epi8(_mm_min_epu8(v, nine), v); /* (c - '0') <= 9, unsigned */
        bits |= (uint64_t)(uint16_t)_mm_movemask_epi8(digit) << k;
    }
#endif
    for (; k < 64 && at + k < n; k++) bits |= (uint64_t)is_digit(p[at + k]) << k;
    return bits;
}

/* What the runs of at least 4 ASCII digits in ``p`` say. A card shape (scrub's card classes hold " " followed by
 * CARD_MIN digits, CARD_MIN digits anywhere if ``escaped``, or "1111 1111") starts with such a run, and so does a
 * run of LONG_DIGITS (an integer msgpack may not carry). The runs are found from a bitmask of the digits, 64 bytes
 * at a time: a payload's few numbers cost no branch per byte (probing every 4th byte mispredicted on every
 * number), and only an actual run is measured. */
typedef struct {
    int card_shaped;
    int long_run;
} DigitRuns;

static DigitRuns digit_runs(const unsigned char *p, Py_ssize_t n, int escaped) {
    DigitRuns runs = {0, 0};
    Py_ssize_t resume = 0; /* bytes before this are in runs already measured */
    uint64_t next = n > 0 ? digit_bits(p, n, 0) : 0;
    for (Py_ssize_t at = 0; at < n; at += 64) {
        const uint64_t bits = next;
        next = at + 64 < n ? digit_bits(p, n, at + 64) : 0;
        /* bit k: the bytes at + k .. at + k + 3 are digits (the next word's first bytes continue this one's) */
        uint64_t starts = bits & (bits >> 1 | next << 63) & (bits >> 2 | next << 62) & (bits >> 3 | next << 61);
        while (starts) {
            const Py_ssize_t start = at + __builtin_ctzll(starts);
            starts &= starts - 1;
            if (start < resume) continue;
            Py_ssize_t end = start + 4;
            while (end < n && is_digit(p[end])) end++;
            resume = end;
            if (end - start >= LONG_DIGITS) runs.long_run = 1;
            if (end - start >= CARD_MIN && (escaped || (start > 0 && card_classes[p[start - 1]] == ' ')))
                runs.card_shaped = 1;
            const Py_ssize_t after = end + 1; /* "1111 1111": one " " byte, then 4 digits */
            if (after + 4 <= n && card_classes[p[end]] == ' ' && is_digit(p[after]) && is_digit(p[after + 1]) &&
                is_digit(p[after + 2]) && is_digit(p[after + 3]))
                runs.card_shaped = 1;
        }
    }
    return runs;
}

/* "null" anywhere, or LONG_DIGITS ASCII digits in a row. */
int speedups_needs_care(const unsigned char *p, Py_ssize_t n) {
    return CONTAINS(p, n, "null") || digit_runs(p, n, 0).long_run;
}

static PyObject *needs_care(PyObject *module, PyObject *arg) {
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0) return NULL;
    int care = speedups_needs_care(view.buf, view.len);
    PyBuffer_Release(&view);
    return PyBool_FromLong(care);
}

static int valid_utf8(const unsigned char *p, Py_ssize_t n);

/* The bytes the tests look for, in one pass: "=", "\\", control and high bytes, colons, and the places where the
 * first and last bytes of "null", "earer", "EARER" and "-----BEGIN" stand (the words themselves are looked for only
 * when those are found). ``look`` bytes after each place are read: the pass stops that many bytes before the end,
 * and the rest is read by the second loop, with its bounds checked. Blocks of 64 bytes keep a block's colon count in
 * a byte, so that the compiler vectorises the loop. */
typedef struct {
    unsigned char equals, backslash, control, high, null, earer, upper_earer, pem;
    Py_ssize_t colons;
} ByteMarks;

#define MARK(c, at)                                                                                                   \
    do {                                                                                                              \
        marks.equals |= (c) == '=';                                                                                   \
        marks.backslash |= (c) == '\\';                                                                               \
        marks.control |= (c) < 0x20;                                                                                  \
        marks.high |= (c) & 0x80;                                                                                     \
        colons += (c) == ':';                                                                                         \
        marks.null |= ((c) == 'n') & (at(3) == 'l');                                                                  \
        marks.earer |= ((c) == 'e') & (at(4) == 'r');                                                                 \
        marks.upper_earer |= ((c) == 'E') & (at(4) == 'R');                                                           \
        marks.pem |= ((c) == '-') & (at(9) == 'N');                                                                   \
    } while (0)

static ByteMarks byte_marks(const unsigned char *p, Py_ssize_t n) {
    ByteMarks marks = {0, 0, 0, 0, 0, 0, 0, 0, 0};
    const Py_ssize_t look = 9, safe = n > look ? n - look : 0;
    Py_ssize_t i = 0;
    while (i < safe) {
        const Py_ssize_t end = safe - i < 64 ? safe : i + 64;
        unsigned char colons = 0;
#define AHEAD(k) p[i + (k)]
        for (; i < end; i++) MARK(p[i], AHEAD);
#undef AHEAD
        marks.colons += colons;
    }
    Py_ssize_t colons = 0;
#define INSIDE(k) (i + (k) < n ? p[i + (k)] : 0)
    for (; i < n; i++) MARK(p[i], INSIDE);
#undef INSIDE
    marks.colons += colons;
    return marks;
}

#undef MARK

static ByteFacts byte_facts(const unsigned char *p, Py_ssize_t n, int with_care) {
    ByteFacts facts = {0, 0, 0, 0, 0};
    ByteMarks marks = byte_marks(p, n);
    facts.trigger = marks.equals || (marks.earer && CONTAINS(p, n, "earer")) ||
                    (marks.upper_earer && CONTAINS(p, n, "EARER")) || (marks.pem && CONTAINS(p, n, "-----BEGIN"));
    if (facts.trigger) return facts;
    facts.colons = marks.colons;
    const DigitRuns runs = digit_runs(p, n, marks.backslash);
    facts.card_shaped = runs.card_shaped;
    facts.plain = !marks.control && (!marks.high || valid_utf8(p, n));
    if (with_care) facts.care = (marks.null && CONTAINS(p, n, "null")) || runs.long_run;
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

static const char CACHE_NAME[] = "zoomtrace._speedups.KeyCache";

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
    /* Python code ran (learn, a key's __eq__): another call may have filled or cleared the cache meanwhile. */
    if (cache->count >= CACHE_MAX) cache_clear(cache);
    slot = cache_slot(cache, hash, p, size);
    if (slot->name != NULL) return 1;
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

/* The scan reads compact JSON as msgspec writes it (no whitespace); anything else is "maybe not" (-1), so that
 * only JSON a decoder reads back is ever proven clean. */

typedef struct {
    int is_object;
    Py_ssize_t items;           /* values begun, in an array */
    const unsigned char *first; /* the array's first value, when a string: its bytes */
    Py_ssize_t first_size;
    int first_escaped;
} Level;

static int is_hex(unsigned char c) { return is_digit(c) || ((unsigned char)((c | 0x20) - 'a') < 6); }

/* The index after the string whose opening quote is at ``start``, or -1 if it is not a valid JSON string
 * (unterminated, or a bad escape); ``escaped`` says whether it holds an escape. Raw control bytes and invalid
 * UTF-8 are refused for the whole JSON beforehand (``json_unchanged``). */
static Py_ssize_t string_after(const unsigned char *p, Py_ssize_t n, Py_ssize_t start, int *escaped) {
    Py_ssize_t from = start + 1;
    *escaped = 0;
    for (;;) {
        const unsigned char *quote = from < n ? memchr(p + from, '"', (size_t)(n - from)) : NULL;
        if (quote == NULL) return -1;
        const unsigned char *slash = memchr(p + from, '\\', (size_t)(quote - (p + from)));
        if (slash == NULL) return quote - p + 1;
        *escaped = 1;
        Py_ssize_t k = slash - p + 1; /* the escaped character */
        if (k >= n) return -1;
        if (p[k] == 'u') {
            if (k + 4 >= n || !is_hex(p[k + 1]) || !is_hex(p[k + 2]) || !is_hex(p[k + 3]) || !is_hex(p[k + 4]))
                return -1;
            from = k + 5;
        } else if (strchr("\"\\/bfnrt", p[k]) != NULL && p[k] != 0) {
            from = k + 1;
        } else {
            return -1;
        }
    }
}

/* The index after the number, true, false or null at ``i``, or -1. */
static Py_ssize_t scalar_after(const unsigned char *p, Py_ssize_t n, Py_ssize_t i) {
    static const char *const words[] = {"true", "false", "null"};
    for (int w = 0; w < 3; w++) {
        Py_ssize_t size = (Py_ssize_t)strlen(words[w]);
        if (p[i] == (unsigned char)words[w][0]) return i + size <= n && memcmp(p + i, words[w], (size_t)size) == 0 ? i + size : -1;
    }
    if (p[i] == '-') i++;
    if (i >= n || !is_digit(p[i])) return -1;
    if (p[i] == '0') {
        i++;
    } else {
        while (i < n && is_digit(p[i])) i++;
    }
    if (i < n && p[i] == '.') {
        if (++i >= n || !is_digit(p[i])) return -1;
        while (i < n && is_digit(p[i])) i++;
    }
    if (i < n && (p[i] == 'e' || p[i] == 'E')) {
        if (++i < n && (p[i] == '+' || p[i] == '-')) i++;
        if (i >= n || !is_digit(p[i])) return -1;
        while (i < n && is_digit(p[i])) i++;
    }
    return i;
}

/* Scrubber._names_harmless on the JSON itself: the number of keys; -1 if a name may be sensitive (or has an
 * escape), the nesting is too deep or the bytes are not compact JSON; -2 on an error. */
static Py_ssize_t json_names_harmless(const unsigned char *p, Py_ssize_t n, KeyCache *cache, PyObject *harmless,
                                      PyObject *learn, Py_ssize_t max_nesting) {
    if (max_nesting < 1) return -1;
    Py_ssize_t most = max_nesting - 1 < n ? max_nesting - 1 : n; /* the depth reaches neither */
    Level *levels = PyMem_New(Level, most > 0 ? most : 1);
    if (levels == NULL) {
        PyErr_NoMemory();
        return -2;
    }
    Py_ssize_t depth = 0, keys = 0, i = 0, result = -1;
    enum { VALUE, FIRST_VALUE, FIRST_KEY, KEY, COLON, NEXT } want = VALUE;
    while (i < n) {
        unsigned char c = p[i];
        Level *top = depth > 0 ? &levels[depth - 1] : NULL;
        int closing = 0; /* the end of the container, where one may end */
        if (want == NEXT) { /* after a value: a comma, the end of the container, or the end of the JSON */
            if (top == NULL) goto done;
            if (c == ',') {
                want = top->is_object ? KEY : VALUE;
                i++;
                continue;
            }
            if (c != (top->is_object ? '}' : ']')) goto done;
            closing = 1;
        } else if ((want == FIRST_VALUE && c == ']') || (want == FIRST_KEY && c == '}')) {
            closing = 1;
        } else if (want == COLON) {
            if (c != ':') goto done;
            want = VALUE;
            i++;
            continue;
        } else if (want == KEY || want == FIRST_KEY) {
            int escaped;
            Py_ssize_t after = c == '"' ? string_after(p, n, i, &escaped) : -1;
            if (after < 0 || escaped) goto done;
            int fine = name_harmless(cache, p + i + 1, after - i - 2, harmless, learn);
            if (fine <= 0) {
                result = fine < 0 ? -2 : -1;
                goto done;
            }
            keys++;
            want = COLON;
            i = after;
            continue;
        }
        if (closing) {
            if (!top->is_object && top->items == 2 && top->first != NULL) { /* a (name, value) pair */
                if (top->first_escaped) goto done;
                int fine = name_harmless(cache, top->first, top->first_size, harmless, learn);
                if (fine <= 0) {
                    result = fine < 0 ? -2 : -1;
                    goto done;
                }
            }
            depth--;
            want = NEXT;
            i++;
            continue;
        }
        /* a value (want is VALUE or FIRST_VALUE) */
        if (c == '}' || c == ']' || c == ',' || c == ':') goto done;
        int in_array = top != NULL && !top->is_object && ++top->items == 1;
        if (c == '"') {
            int escaped;
            Py_ssize_t after = string_after(p, n, i, &escaped);
            if (after < 0) goto done;
            if (in_array) {
                top->first = p + i + 1;
                top->first_size = after - i - 2;
                top->first_escaped = escaped;
            }
            i = after;
            want = NEXT;
        } else if (c == '{' || c == '[') {
            if (depth >= max_nesting - 1) goto done; /* as deep as Scrubber._value cuts */
            if (in_array) top->first = NULL;
            Level *level = &levels[depth++];
            level->is_object = c == '{';
            level->items = 0;
            level->first = NULL;
            want = c == '{' ? FIRST_KEY : FIRST_VALUE;
            i++;
        } else {
            Py_ssize_t after = scalar_after(p, n, i);
            if (after < 0) goto done;
            if (in_array) top->first = NULL;
            i = after;
            want = NEXT;
        }
    }
    if (depth == 0 && want == NEXT) result = keys;
done:
    PyMem_Free(levels);
    return result;
}

/* Whether ``p`` is valid UTF-8 as Python's strict codec takes it (no overlong forms, no surrogates). */
static int valid_utf8(const unsigned char *p, Py_ssize_t n) {
    for (Py_ssize_t i = 0; i < n;) {
        unsigned char c = p[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        int size = (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
        if (size == 0 || i + size > n) return 0;
        uint32_t code = c & (0x7F >> size);
        for (int k = 1; k < size; k++) {
            if ((p[i + k] & 0xC0) != 0x80) return 0;
            code = (code << 6) | (p[i + k] & 0x3F);
        }
        if ((size == 2 && code < 0x80) || (size == 3 && code < 0x800) || (size == 4 && code < 0x10000) ||
            code > 0x10FFFF || (code >= 0xD800 && code <= 0xDFFF))
            return 0;
        i += size;
    }
    return 1;
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
    ByteFacts facts = byte_facts(view.buf, view.len, 0);
    int unchanged = 0;
    if (!facts.trigger && !facts.card_shaped && facts.plain) {
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

int speedups_plain_json(const unsigned char *p, Py_ssize_t n, Py_ssize_t keys) {
    ByteFacts facts = byte_facts(p, n, 1);
    return !facts.trigger && !facts.card_shaped && facts.plain && !facts.care && facts.colons == keys;
}

static PyMethodDef scan_functions[] = {
    {"needs_care", needs_care, METH_O, "sanitize._needs_care, in C."},
    {"count_lines", count_lines, METH_O, "wire.spool.count_lines, in C: the newlines of a buffer."},
    {"key_cache", key_cache, METH_NOARGS, "A new cache of names known harmless, for json_unchanged."},
    {"json_unchanged", (PyCFunction)(void (*)(void))json_unchanged, METH_FASTCALL,
     "Scrubber.payload_unchanged on a payload's JSON alone (harmless and learn are the scrubber's)."},
    {NULL, NULL, 0, NULL},
};

int scan_init(PyObject *module) {
    fill_card_classes();
    return PyModule_AddFunctions(module, scan_functions);
}
