/* jinja_value.c — the template value model: constructors, lists and ordered dicts, truth,
 * equality and ordering as Python defines them, Python's str()/repr() (True, None, 0.1, 1e-05,
 * ['a', 1]), json.dumps as transformers' tojson calls it, and conversion from jansson.
 *
 * All values live in the render's arena (jx_alloc); nothing is freed before the render ends.
 * Entry points: jv_* constructors, jv_str, jv_repr, jv_tojson, jv_from_json, jv_eq, jv_cmp.
 */
#include "text/jinja_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Records a render error (prefixed with the current line) and unwinds to lc_jinja_render. */
_Noreturn void jx_fail(jctx *c, const char *fmt, ...) {
    char tmp[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (c->st == LC_OK) c->st = LC_ERR_FORMAT;
    snprintf(c->msg, sizeof c->msg, "line %d: %s", c->line, tmp);
    longjmp(c->jb, 1);
}

void *jx_alloc(jctx *c, size_t n) {
    void *p = ja_alloc(&c->ar, n);
    if (!p) {
        c->st = LC_ERR_OOM;
        jx_fail(c, "template render ran out of memory (limit %zu bytes)", c->ar.limit);
    }
    return p;
}

/* ==== Constructors ==== */

jv jv_undef(const char *name) { return (jv){.kind = JV_UNDEF, .name = name}; }
jv jv_none(void) { return (jv){.kind = JV_NONE}; }
jv jv_bool(bool b) { return (jv){.kind = JV_BOOL, .b = b}; }
jv jv_int(int64_t i) { return (jv){.kind = JV_INT, .i = i}; }
jv jv_float(double f) { return (jv){.kind = JV_FLOAT, .f = f}; }

jv jv_strn(jctx *c, const char *s, size_t n) {
    jstr *js = jx_alloc(c, sizeof(jstr) + n + 1);
    js->n = n;
    if (n) memcpy(js->s, s, n);
    js->s[n] = 0;
    return (jv){.kind = JV_STR, .s = js};
}

jv jv_cstr(jctx *c, const char *s) { return jv_strn(c, s, strlen(s)); }

jv jv_list(jctx *c, size_t cap) {
    jlist *l = jx_alloc(c, sizeof *l);
    l->n = 0;
    l->cap = cap;
    l->v = cap ? jx_alloc(c, cap * sizeof(jv)) : NULL;
    return (jv){.kind = JV_LIST, .l = l};
}

jv jv_dict(jctx *c) {
    jdict *d = jx_alloc(c, sizeof *d);
    memset(d, 0, sizeof *d);
    return (jv){.kind = JV_DICT, .d = d};
}

void jl_push(jctx *c, jlist *l, jv v) {
    if (l->n == l->cap) {
        size_t ncap = l->cap ? l->cap * 2 : 4;
        jv *nv = jx_alloc(c, ncap * sizeof(jv));
        if (l->n) memcpy(nv, l->v, l->n * sizeof(jv));
        l->v = nv;
        l->cap = ncap;
    }
    l->v[l->n++] = v;
}

jv *jd_get(const jdict *d, jv k) {
    for (size_t i = 0; i < d->n; i++)
        if (jv_eq(d->k[i], k)) return &d->v[i];
    return NULL;
}

jv *jd_gets(const jdict *d, const char *key) {
    size_t n = strlen(key);
    for (size_t i = 0; i < d->n; i++)
        if (d->k[i].kind == JV_STR && d->k[i].s->n == n && !memcmp(d->k[i].s->s, key, n)) return &d->v[i];
    return NULL;
}

/* Sets d[k] = v, keeping the first insertion position of k (Python dict order). */
void jd_set(jctx *c, jdict *d, jv k, jv v) {
    jv *slot = jd_get(d, k);
    if (slot) {
        *slot = v;
        return;
    }
    if (d->n == d->cap) {
        size_t ncap = d->cap ? d->cap * 2 : 4;
        jv *nk = jx_alloc(c, ncap * sizeof(jv));
        jv *nv = jx_alloc(c, ncap * sizeof(jv));
        if (d->n) {
            memcpy(nk, d->k, d->n * sizeof(jv));
            memcpy(nv, d->v, d->n * sizeof(jv));
        }
        d->k = nk;
        d->v = nv;
        d->cap = ncap;
    }
    d->k[d->n] = k;
    d->v[d->n] = v;
    d->n++;
}

/* Converts a JSON value: integers stay ints, reals floats, objects keep their key order. */
jv jv_from_json(jctx *c, const json_t *j) {
    if (++c->depth > c->max_depth + 800) jx_fail(c, "input JSON nested too deeply");
    jv r;
    switch (json_typeof(j)) {
    case JSON_OBJECT: {
        r = jv_dict(c);
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)j, k, v) jd_set(c, r.d, jv_cstr(c, k), jv_from_json(c, v));
        break;
    }
    case JSON_ARRAY: {
        size_t n = json_array_size(j);
        r = jv_list(c, n);
        for (size_t i = 0; i < n; i++) jl_push(c, r.l, jv_from_json(c, json_array_get(j, i)));
        break;
    }
    case JSON_STRING: r = jv_strn(c, json_string_value(j), json_string_length(j)); break;
    case JSON_INTEGER: r = jv_int((int64_t)json_integer_value(j)); break;
    case JSON_REAL: r = jv_float(json_real_value(j)); break;
    case JSON_TRUE: r = jv_bool(true); break;
    case JSON_FALSE: r = jv_bool(false); break;
    default: r = jv_none(); break;
    }
    c->depth--;
    return r;
}

/* ==== Truth, equality, order ==== */

bool jv_truthy(jv v) {
    switch (v.kind) {
    case JV_UNDEF: case JV_NONE: return false;
    case JV_BOOL: return v.b;
    case JV_INT: return v.i != 0;
    case JV_FLOAT: return v.f != 0.0;
    case JV_STR: return v.s->n != 0;
    case JV_LIST: return (v.flags & JF_GEN) || v.l->n != 0;
    case JV_DICT: return (v.flags & JF_NS) || v.d->n != 0;
    default: return true;
    }
}

static bool is_num(jv v) { return v.kind == JV_INT || v.kind == JV_FLOAT || v.kind == JV_BOOL; }
static double num_f(jv v) { return v.kind == JV_FLOAT ? v.f : v.kind == JV_INT ? (double)v.i : (double)v.b; }

/* Python ==: numbers (and bools) compare by value, containers element-wise. */
bool jv_eq(jv a, jv b) {
    if (is_num(a) && is_num(b)) {
        if (a.kind != JV_FLOAT && b.kind != JV_FLOAT)
            return (a.kind == JV_INT ? a.i : a.b) == (b.kind == JV_INT ? b.i : b.b);
        return num_f(a) == num_f(b);
    }
    if (a.kind != b.kind) return false;
    switch (a.kind) {
    case JV_UNDEF: case JV_NONE: return true;
    case JV_STR: return a.s->n == b.s->n && !memcmp(a.s->s, b.s->s, a.s->n);
    case JV_LIST:
        if ((a.flags & JF_TUPLE) != (b.flags & JF_TUPLE) || a.l->n != b.l->n) return false;
        for (size_t i = 0; i < a.l->n; i++)
            if (!jv_eq(a.l->v[i], b.l->v[i])) return false;
        return true;
    case JV_DICT:
        if (a.d == b.d) return true;
        if ((a.flags & JF_NS) || (b.flags & JF_NS) || a.d->n != b.d->n) return false;
        for (size_t i = 0; i < a.d->n; i++) {
            jv *o = jd_get(b.d, a.d->k[i]);
            if (!o || !jv_eq(a.d->v[i], *o)) return false;
        }
        return true;
    case JV_MACRO: return a.m == b.m;
    case JV_FUNC: return a.name == b.name;
    default: return false;
    }
}

/* Python ordering (<): numbers, strings (by bytes = code points for UTF-8), lists and tuples
 * lexicographically; anything else raises TypeError as Python would. */
int jv_cmp(jctx *c, jv a, jv b) {
    if (is_num(a) && is_num(b)) {
        if (a.kind == JV_INT && b.kind == JV_INT) return (a.i > b.i) - (a.i < b.i);
        double x = num_f(a), y = num_f(b);
        return (x > y) - (x < y);
    }
    if (a.kind == JV_STR && b.kind == JV_STR) {
        size_t n = LC_MIN(a.s->n, b.s->n);
        int r = memcmp(a.s->s, b.s->s, n);
        if (r) return r < 0 ? -1 : 1;
        return (a.s->n > b.s->n) - (a.s->n < b.s->n);
    }
    if (a.kind == JV_LIST && b.kind == JV_LIST && (a.flags & JF_TUPLE) == (b.flags & JF_TUPLE)) {
        size_t n = LC_MIN(a.l->n, b.l->n);
        for (size_t i = 0; i < n; i++) {
            if (jv_eq(a.l->v[i], b.l->v[i])) continue;
            return jv_cmp(c, a.l->v[i], b.l->v[i]);
        }
        return (a.l->n > b.l->n) - (a.l->n < b.l->n);
    }
    if (a.kind == JV_UNDEF || b.kind == JV_UNDEF)
        jx_fail(c, "'%s' is undefined", a.kind == JV_UNDEF ? (a.name ? a.name : "value") : (b.name ? b.name : "value"));
    jx_fail(c, "'<' not supported between instances of '%s' and '%s'", jv_typename(a), jv_typename(b));
}

const char *jv_typename(jv v) {
    switch (v.kind) {
    case JV_UNDEF: return "Undefined";
    case JV_NONE: return "NoneType";
    case JV_BOOL: return "bool";
    case JV_INT: return "int";
    case JV_FLOAT: return "float";
    case JV_STR: return "str";
    case JV_LIST: return v.flags & JF_TUPLE ? "tuple" : v.flags & JF_GEN ? "generator" : "list";
    case JV_DICT: return v.flags & JF_NS ? "Namespace" : "dict";
    case JV_MACRO: return "Macro";
    case JV_LOOP: return "LoopContext";
    default: return "function";
    }
}

/* ==== Output buffers ==== */

void jb_put(jctx *c, jbuf *b, const char *s, size_t n) {
    if (!n) return;
    if (b->n + n > c->max_output) {
        c->st = LC_ERR_RANGE;
        jx_fail(c, "template output (or a string it builds) exceeds %zu bytes", c->max_output);
    }
    if (b->n + n + 1 > b->cap) {
        size_t ncap = b->cap ? b->cap * 2 : 256;
        while (ncap < b->n + n + 1) ncap *= 2;
        char *np = jx_alloc(c, ncap);
        if (b->n) memcpy(np, b->p, b->n);
        b->p = np;
        b->cap = ncap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}

void jb_puts(jctx *c, jbuf *b, const char *s) { jb_put(c, b, s, strlen(s)); }

/* ==== str() and repr() ==== */

/* Python's repr(float): the shortest digits that read back to the same double, printed in
 * fixed notation for exponents -4..15 and as 1e-05 / 1e+16 otherwise. */
void jv_float_repr(char *buf, size_t cap, double f) {
    if (isnan(f)) {
        snprintf(buf, cap, "nan");
        return;
    }
    if (isinf(f)) {
        snprintf(buf, cap, f < 0 ? "-inf" : "inf");
        return;
    }
    char tmp[40];
    int prec;
    for (prec = 1; prec <= 17; prec++) {
        snprintf(tmp, sizeof tmp, "%.*e", prec - 1, f);
        if (strtod(tmp, NULL) == f) break;
    }
    /* tmp = [-]d.ddde[+-]XX */
    char digits[24];
    int nd = 0;
    const char *q = tmp;
    bool neg = false;
    if (*q == '-') {
        neg = true;
        q++;
    }
    for (; *q && *q != 'e'; q++)
        if (*q != '.') digits[nd++] = *q;
    int exp = atoi(q + 1);
    while (nd > 1 && digits[nd - 1] == '0') nd--;
    digits[nd] = 0;
    char *o = buf;
    size_t left = cap;
#define PUT(...) do { int w_ = snprintf(o, left, __VA_ARGS__); if (w_ < 0 || (size_t)w_ >= left) return; o += w_; left -= (size_t)w_; } while (0)
    if (neg) PUT("-");
    if (exp < -4 || exp >= 16) {
        PUT("%c", digits[0]);
        if (nd > 1) PUT(".%s", digits + 1);
        PUT("e%c%02d", exp < 0 ? '-' : '+', exp < 0 ? -exp : exp);
    } else if (exp < 0) {
        PUT("0.");
        for (int i = 0; i < -exp - 1; i++) PUT("0");
        PUT("%s", digits);
    } else {
        for (int i = 0; i <= exp; i++) PUT("%c", i < nd ? digits[i] : '0');
        PUT(".");
        if (nd > exp + 1) PUT("%s", digits + exp + 1);
        else PUT("0");
    }
#undef PUT
}

/* Python's repr(str): single quotes unless the text has ' and no ", escapes for \\, the quote,
 * \n \r \t and other control characters; printable non-ASCII stays as is. */
void jv_repr_str(jctx *c, jbuf *b, const char *s, size_t n) {
    bool sq = memchr(s, '\'', n) != NULL, dq = memchr(s, '"', n) != NULL;
    char q = (sq && !dq) ? '"' : '\'';
    jb_put(c, b, &q, 1);
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        const char *esc = NULL;
        char hex[8];
        if (ch == '\\') esc = "\\\\";
        else if (ch == (unsigned char)q) esc = q == '\'' ? "\\'" : "\\\"";
        else if (ch == '\n') esc = "\\n";
        else if (ch == '\r') esc = "\\r";
        else if (ch == '\t') esc = "\\t";
        else if (ch < 0x20 || ch == 0x7f) {
            snprintf(hex, sizeof hex, "\\x%02x", ch);
            esc = hex;
        }
        if (esc) {
            jb_put(c, b, s + run, i - run);
            jb_puts(c, b, esc);
            run = i + 1;
        }
    }
    jb_put(c, b, s + run, n - run);
    jb_put(c, b, &q, 1);
}

static void repr_in(jctx *c, jbuf *b, jv v, bool top);

void jv_str(jctx *c, jbuf *b, jv v) {
    if (v.kind == JV_STR) jb_put(c, b, v.s->s, v.s->n);
    else if (v.kind == JV_UNDEF) return;
    else repr_in(c, b, v, true);
}

void jv_repr(jctx *c, jbuf *b, jv v) { repr_in(c, b, v, false); }

static void repr_in(jctx *c, jbuf *b, jv v, bool top) {
    char num[64];
    if (++c->depth > c->max_depth + 800) jx_fail(c, "value nested too deeply to print");
    switch (v.kind) {
    case JV_UNDEF: if (!top) jb_puts(c, b, "Undefined"); break;
    case JV_NONE: jb_puts(c, b, "None"); break;
    case JV_BOOL: jb_puts(c, b, v.b ? "True" : "False"); break;
    case JV_INT: snprintf(num, sizeof num, "%lld", (long long)v.i); jb_puts(c, b, num); break;
    case JV_FLOAT: jv_float_repr(num, sizeof num, v.f); jb_puts(c, b, num); break;
    case JV_STR: jv_repr_str(c, b, v.s->s, v.s->n); break;
    case JV_LIST: {
        if (v.flags & JF_GEN) {
            jb_puts(c, b, "<generator object>");
            break;
        }
        bool tup = v.flags & JF_TUPLE;
        jb_puts(c, b, tup ? "(" : "[");
        for (size_t i = 0; i < v.l->n; i++) {
            if (i) jb_puts(c, b, ", ");
            repr_in(c, b, v.l->v[i], false);
        }
        if (tup && v.l->n == 1) jb_puts(c, b, ",");
        jb_puts(c, b, tup ? ")" : "]");
        break;
    }
    case JV_DICT:
        if (v.flags & JF_NS) {
            jb_puts(c, b, "<Namespace {");
        } else {
            jb_puts(c, b, "{");
        }
        for (size_t i = 0; i < v.d->n; i++) {
            if (i) jb_puts(c, b, ", ");
            repr_in(c, b, v.d->k[i], false);
            jb_puts(c, b, ": ");
            repr_in(c, b, v.d->v[i], false);
        }
        jb_puts(c, b, (v.flags & JF_NS) ? "}>" : "}");
        break;
    case JV_MACRO: jb_puts(c, b, "<Macro>"); break;
    default: jb_puts(c, b, "<function>"); break;
    }
    c->depth--;
}

jv jv_to_string(jctx *c, jv v) {
    if (v.kind == JV_STR) return v;
    jbuf b = {0};
    jv_str(c, &b, v);
    return jv_strn(c, b.p ? b.p : "", b.n);
}

/* ==== json.dumps ==== */

static void json_str(jctx *c, jbuf *b, const char *s, size_t n) {
    jb_puts(c, b, "\"");
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        const char *esc = NULL;
        char hex[8];
        switch (ch) {
        case '"': esc = "\\\""; break;
        case '\\': esc = "\\\\"; break;
        case '\n': esc = "\\n"; break;
        case '\r': esc = "\\r"; break;
        case '\t': esc = "\\t"; break;
        case '\b': esc = "\\b"; break;
        case '\f': esc = "\\f"; break;
        default:
            if (ch < 0x20) {
                snprintf(hex, sizeof hex, "\\u%04x", ch);
                esc = hex;
            }
        }
        if (esc) {
            jb_put(c, b, s + run, i - run);
            jb_puts(c, b, esc);
            run = i + 1;
        }
    }
    jb_put(c, b, s + run, n - run);
    jb_puts(c, b, "\"");
}

static void json_nl(jctx *c, jbuf *b, int indent, int level) {
    jb_puts(c, b, "\n");
    for (int i = 0; i < indent * level; i++) jb_puts(c, b, " ");
}

static int key_cmp_ctx(const void *x, const void *y) {
    const jv *a = x, *bb = y;
    size_t n = LC_MIN(a->s->n, bb->s->n);
    int r = memcmp(a->s->s, bb->s->s, n);
    return r ? r : (a->s->n > bb->s->n) - (a->s->n < bb->s->n);
}

/* json.dumps(v, ensure_ascii=False, indent=indent or None, sort_keys=sort_keys) with Python's
 * default separators (", " and ": ", or "," and ": " when indenting). Keys that are not strings
 * are converted as Python does (ints, floats, bools, None). */
void jv_tojson(jctx *c, jbuf *b, jv v, int indent, bool sort_keys, int level) {
    char num[64];
    if (++c->depth > c->max_depth + 800) jx_fail(c, "value nested too deeply for tojson");
    switch (v.kind) {
    case JV_NONE: jb_puts(c, b, "null"); break;
    case JV_BOOL: jb_puts(c, b, v.b ? "true" : "false"); break;
    case JV_INT: snprintf(num, sizeof num, "%lld", (long long)v.i); jb_puts(c, b, num); break;
    case JV_FLOAT:
        if (isnan(v.f)) jb_puts(c, b, "NaN");
        else if (isinf(v.f)) jb_puts(c, b, v.f < 0 ? "-Infinity" : "Infinity");
        else {
            jv_float_repr(num, sizeof num, v.f);
            jb_puts(c, b, num);
        }
        break;
    case JV_STR: json_str(c, b, v.s->s, v.s->n); break;
    case JV_LIST:
        if (v.flags & JF_GEN) jx_fail(c, "Object of type generator is not JSON serializable");
        if (!v.l->n) {
            jb_puts(c, b, "[]");
            break;
        }
        jb_puts(c, b, "[");
        for (size_t i = 0; i < v.l->n; i++) {
            if (i) jb_puts(c, b, indent >= 0 ? "," : ", ");
            if (indent >= 0) json_nl(c, b, indent, level + 1);
            jv_tojson(c, b, v.l->v[i], indent, sort_keys, level + 1);
        }
        if (indent >= 0) json_nl(c, b, indent, level);
        jb_puts(c, b, "]");
        break;
    case JV_DICT: {
        if (v.flags & JF_NS) jx_fail(c, "Object of type Namespace is not JSON serializable");
        if (!v.d->n) {
            jb_puts(c, b, "{}");
            break;
        }
        size_t n = v.d->n;
        size_t *order = jx_alloc(c, n * sizeof *order);
        for (size_t i = 0; i < n; i++) order[i] = i;
        if (sort_keys) {
            jv *keys = jx_alloc(c, n * sizeof *keys);
            for (size_t i = 0; i < n; i++) {
                if (v.d->k[i].kind != JV_STR) jx_fail(c, "tojson: sort_keys needs string keys");
                keys[i] = v.d->k[i];
            }
            qsort(keys, n, sizeof *keys, key_cmp_ctx);
            for (size_t i = 0; i < n; i++)
                for (size_t j = 0; j < n; j++)
                    if (v.d->k[j].s == keys[i].s) order[i] = j;
        }
        jb_puts(c, b, "{");
        for (size_t ii = 0; ii < n; ii++) {
            size_t i = order[ii];
            if (ii) jb_puts(c, b, indent >= 0 ? "," : ", ");
            if (indent >= 0) json_nl(c, b, indent, level + 1);
            jv k = v.d->k[i];
            if (k.kind == JV_STR) {
                json_str(c, b, k.s->s, k.s->n);
            } else if (k.kind == JV_INT || k.kind == JV_FLOAT) {
                jbuf t = {0};
                jv_tojson(c, &t, k, -1, false, 0);
                json_str(c, b, t.p, t.n);
            } else if (k.kind == JV_BOOL || k.kind == JV_NONE) {
                json_str(c, b, k.kind == JV_NONE ? "null" : k.b ? "true" : "false",
                         k.kind == JV_NONE ? 4 : k.b ? 4 : 5);
            } else {
                jx_fail(c, "keys must be str, int, float, bool or None, not %s", jv_typename(k));
            }
            jb_puts(c, b, ": ");
            jv_tojson(c, b, v.d->v[i], indent, sort_keys, level + 1);
        }
        if (indent >= 0) json_nl(c, b, indent, level);
        jb_puts(c, b, "}");
        break;
    }
    default: jx_fail(c, "Object of type %s is not JSON serializable", jv_typename(v));
    }
    c->depth--;
}

/* ==== Iteration and UTF-8 ==== */

size_t ju_len(const char *s, size_t n) {
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (((unsigned char)s[i] & 0xC0) != 0x80) k++;
    return k;
}

/* The sequence a for loop (or list()) visits: list items, dict keys, string characters;
 * undefined iterates as empty. Other types raise "object is not iterable". */
jlist *jv_iter(jctx *c, jv v) {
    switch (v.kind) {
    case JV_LIST: return v.l;
    case JV_UNDEF: return jv_list(c, 0).l;
    case JV_DICT: {
        if (v.flags & JF_NS) break;
        jv r = jv_list(c, v.d->n);
        for (size_t i = 0; i < v.d->n; i++) jl_push(c, r.l, v.d->k[i]);
        return r.l;
    }
    case JV_STR: {
        jv r = jv_list(c, v.s->n);
        const char *s = v.s->s;
        size_t i = 0;
        while (i < v.s->n) {
            size_t j = i + 1;
            while (j < v.s->n && ((unsigned char)s[j] & 0xC0) == 0x80) j++;
            jl_push(c, r.l, jv_strn(c, s + i, j - i));
            i = j;
        }
        return r.l;
    }
    default: break;
    }
    jx_fail(c, "'%s' object is not iterable", jv_typename(v));
}
