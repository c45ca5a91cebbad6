/* jinja_filters.c — jinja2's built-in filters and tests, with transformers' tojson.
 *
 * Each filter follows jinja2/filters.py (argument names and defaults included) so that output
 * matches byte for byte: e.g. title splits words at whitespace, '-', and brackets; indent adds
 * no indentation to blank lines; dictsort and sort compare strings case-insensitively by
 * default. Unknown filter or test names are rejected at parse time (jfilter_known), as jinja2
 * does at compile time. Entry points: jfilter, jtest, jfilter_known, jtest_known.
 */
#include "text/jinja_int.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const filter_names[] = {
    "length", "count", "first", "last", "join", "upper", "lower", "title", "capitalize", "trim",
    "replace", "default", "d", "list", "items", "selectattr", "rejectattr", "select", "reject",
    "map", "tojson", "string", "int", "float", "abs", "round", "sort", "unique", "reverse", "safe",
    "escape", "e", "forceescape", "indent", "wordcount", "batch", "dictsort", "sum", "min", "max",
    "center", "truncate", "attr", "format", "striptags", "slice", "groupby", "pprint", "xmlattr",
    "urlencode", "filesizeformat", "wordwrap", "urlize", "random", "tojson",
};
static const char *const test_names[] = {
    "defined", "undefined", "none", "string", "number", "integer", "float", "mapping", "iterable",
    "sequence", "boolean", "true", "false", "odd", "even", "divisibleby", "eq", "equalto", "==",
    "ne", "!=", "lt", "lessthan", "<", "le", "<=", "gt", "greaterthan", ">", "ge", ">=", "in",
    "sameas", "callable", "lower", "upper", "escaped", "filter", "test",
};

static bool listed(const char *const *t, size_t n, const char *name) {
    for (size_t i = 0; i < n; i++)
        if (!strcmp(t[i], name)) return true;
    return false;
}

bool jfilter_known(const char *name) { return listed(filter_names, LC_ARRAY_LEN(filter_names), name); }
bool jtest_known(const char *name) { return listed(test_names, LC_ARRAY_LEN(test_names), name); }

static jv S(jctx *c, const char *s) { return jv_cstr(c, s); }

static jv as_str(jctx *c, jv v) { return jv_to_string(c, v); }

/* item.attr for dotted attribute paths ("a.b", "0.name") as jinja2's make_attrgetter. */
static jv attr_path(jctx *c, jv item, jv attr) {
    if (attr.kind == JV_INT) return jgetitem(c, item, attr);
    if (attr.kind != JV_STR) jx_fail(c, "attribute must be a string");
    const char *p = attr.s->s;
    while (1) {
        const char *dot = strchr(p, '.');
        size_t n = dot ? (size_t)(dot - p) : strlen(p);
        jv key;
        bool digits = n > 0;
        for (size_t i = 0; i < n; i++)
            if (p[i] < '0' || p[i] > '9') digits = false;
        if (digits) key = jv_int(strtoll(p, NULL, 10));
        else key = jv_strn(c, p, n);
        item = jgetitem(c, item, key);
        if (!dot) return item;
        p = dot + 1;
    }
}

/* Sort key comparison for sort/dictsort/unique/min/max: strings case-insensitive unless
 * case_sensitive. */
static int key_cmp(jctx *c, jv a, jv b, bool cs) {
    if (!cs && a.kind == JV_STR && b.kind == JV_STR) return jv_cmp(c, jstr_case(c, a, 1), jstr_case(c, b, 1));
    return jv_cmp(c, a, b);
}

/* A stable merge sort (Python's sort is stable) of vals by keys. */
static void msort(jctx *c, jv *vals, jv *keys, size_t n, bool cs, bool rev) {
    if (n < 2) return;
    jv *tv = jx_alloc(c, n * sizeof(jv)), *tk = jx_alloc(c, n * sizeof(jv));
    for (size_t w = 1; w < n; w *= 2) {
        for (size_t lo = 0; lo < n; lo += 2 * w) {
            size_t mid = LC_MIN(lo + w, n), hi = LC_MIN(lo + 2 * w, n), i = lo, j = mid, k = lo;
            while (i < mid || j < hi) {
                bool take_left;
                if (i >= mid) take_left = false;
                else if (j >= hi) take_left = true;
                else {
                    int r = key_cmp(c, keys[j], keys[i], cs);
                    take_left = rev ? r <= 0 : r >= 0;
                }
                if (take_left) {
                    tv[k] = vals[i];
                    tk[k++] = keys[i++];
                } else {
                    tv[k] = vals[j];
                    tk[k++] = keys[j++];
                }
            }
        }
        memcpy(vals, tv, n * sizeof(jv));
        memcpy(keys, tk, n * sizeof(jv));
    }
}

static jv copy_list(jctx *c, jlist *l) {
    jv r = jv_list(c, l->n);
    for (size_t i = 0; i < l->n; i++) jl_push(c, r.l, l->v[i]);
    return r;
}

static bool get_bool(jv *a, bool def) { return a ? jv_truthy(*a) : def; }

/* select/reject/selectattr/rejectattr: args after the attribute are the test name and its
 * arguments; without a test the item's truth decides. */
static jv select_items(jctx *c, jv v, jv *args, const char **names, int nargs, bool attr, bool keep) {
    jv r = jv_list(c, 0);
    r.flags = JF_GEN;
    if (!jv_truthy(v)) return r; /* jinja2 checks `if value:` before iterating */
    jlist *items = jv_iter(c, v);
    int pos = 0;
    jv *attrv = NULL;
    if (attr) {
        attrv = jarg(args, names, nargs, 0, NULL);
        if (!attrv) jx_fail(c, "selectattr/rejectattr need an attribute");
        pos = 1;
    }
    jv *testv = jarg(args, names, nargs, pos, NULL);
    if (testv && testv->kind != JV_STR) jx_fail(c, "test name must be a string");
    int ntest = 0;
    jv targs[8];
    for (int i = pos + 1; i < nargs && ntest < 8; i++)
        if (!names[i]) targs[ntest++] = args[i];
    for (size_t i = 0; i < items->n; i++) {
        jv x = attr ? attr_path(c, items->v[i], *attrv) : items->v[i];
        bool t = testv ? jtest(c, testv->s->s, x, targs, ntest) : jv_truthy(x);
        if (t == keep) jl_push(c, r.l, items->v[i]);
    }
    return r;
}

/* jinja2's indent: the first line unindented unless first=True, blank lines not indented
 * unless blank=True; a trailing newline is kept (it splits after appending one). */
static jv do_indent(jctx *c, jv s, jv *width, bool first, bool blank) {
    jbuf ind = {0};
    if (width && width->kind == JV_STR) jb_put(c, &ind, width->s->s, width->s->n);
    else {
        int64_t w = width && width->kind == JV_INT ? width->i : 4;
        if (w > 1000) jx_fail(c, "indent width too large");
        for (int64_t i = 0; i < w; i++) jb_puts(c, &ind, " ");
    }
    const char *in = ind.p ? ind.p : "";
    jbuf b = {0};
    const char *p = s.s->s;
    size_t n = s.s->n, i = 0;
    /* lines of s + "\n", splitlines style */
    bool firstline = true;
    jbuf src = {0};
    jb_put(c, &src, p, n);
    jb_puts(c, &src, "\n");
    p = src.p;
    n = src.n;
    while (i < n) {
        size_t j = i;
        while (j < n && p[j] != '\n' && p[j] != '\r') j++;
        size_t ll = j - i;
        if (!firstline) jb_puts(c, &b, "\n");
        if (firstline ? first : (blank || ll > 0)) jb_puts(c, &b, in);
        jb_put(c, &b, p + i, ll);
        firstline = false;
        if (j < n && p[j] == '\r' && j + 1 < n && p[j + 1] == '\n') j++;
        i = j + 1;
    }
    return jv_strn(c, b.p ? b.p : "", b.n);
}

jv jstr_escape(jctx *c, jv v) {
    jv s = as_str(c, v);
    if (s.flags & JF_SAFE) return s;
    jbuf b = {0};
    for (size_t i = 0; i < s.s->n; i++) {
        char ch = s.s->s[i];
        switch (ch) {
        case '&': jb_puts(c, &b, "&amp;"); break;
        case '<': jb_puts(c, &b, "&lt;"); break;
        case '>': jb_puts(c, &b, "&gt;"); break;
        case '"': jb_puts(c, &b, "&#34;"); break;
        case '\'': jb_puts(c, &b, "&#39;"); break;
        default: jb_put(c, &b, &ch, 1);
        }
    }
    jv r = jv_strn(c, b.p ? b.p : "", b.n);
    r.flags = JF_SAFE;
    return r;
}

/* jinja2's title: words split at whitespace, '-', and opening brackets; each word gets its
 * first character upper-cased and the rest lower-cased. */
static jv do_title(jctx *c, jv s) {
    jv r = jv_strn(c, s.s->s, s.s->n);
    bool start = true;
    for (size_t i = 0; i < r.s->n; i++) {
        char ch = r.s->s[i];
        bool sep = ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == '\f' || ch == '\v' || ch == '-' ||
                   ch == '(' || ch == '{' || ch == '[' || ch == '<';
        if (sep) {
            start = true;
            continue;
        }
        if (start && ch >= 'a' && ch <= 'z') r.s->s[i] = (char)(ch - 32);
        if (!start && ch >= 'A' && ch <= 'Z') r.s->s[i] = (char)(ch + 32);
        start = false;
    }
    return r;
}

static jv to_int(jctx *c, jv v, jv def) {
    switch (v.kind) {
    case JV_INT: return v;
    case JV_BOOL: return jv_int(v.b);
    case JV_FLOAT:
        if (!isfinite(v.f) || fabs(v.f) > 9.2e18) return def;
        return jv_int((int64_t)v.f);
    case JV_STR: {
        char *end;
        jv t = jstr_strip(c, v, NULL, true, true);
        if (!t.s->n) return def;
        errno = 0;
        long long x = strtoll(t.s->s, &end, 10);
        if (!*end && !errno) return jv_int(x);
        double f = strtod(t.s->s, &end);
        if (!*end && isfinite(f) && fabs(f) < 9.2e18) return jv_int((int64_t)f);
        return def;
    }
    default: return def;
    }
}

static jv to_float(jctx *c, jv v, jv def) {
    switch (v.kind) {
    case JV_INT: return jv_float((double)v.i);
    case JV_BOOL: return jv_float(v.b);
    case JV_FLOAT: return v;
    case JV_STR: {
        char *end;
        jv t = jstr_strip(c, v, NULL, true, true);
        if (!t.s->n) return def;
        double f = strtod(t.s->s, &end);
        return *end ? def : jv_float(f);
    }
    default: return def;
    }
}

static jv minmax(jctx *c, jv v, jv *args, const char **names, int nargs, bool want_max) {
    jlist *items = jv_iter(c, v);
    if (!items->n) return jv_undef("min/max of an empty sequence");
    bool cs = get_bool(jarg(args, names, nargs, 0, "case_sensitive"), false);
    jv *attr = jarg(args, names, nargs, 1, "attribute");
    jv best = items->v[0], bk = attr ? attr_path(c, best, *attr) : best;
    for (size_t i = 1; i < items->n; i++) {
        jv k = attr ? attr_path(c, items->v[i], *attr) : items->v[i];
        int r = key_cmp(c, k, bk, cs);
        if (want_max ? r > 0 : r < 0) {
            best = items->v[i];
            bk = k;
        }
    }
    return best;
}

jv jfilter(jctx *c, const char *f, jv v, jv *args, const char **names, int nargs) {
    jv *a0 = jarg(args, names, nargs, 0, NULL), *a1 = jarg(args, names, nargs, 1, NULL);
    if (!strcmp(f, "length") || !strcmp(f, "count")) {
        switch (v.kind) {
        case JV_UNDEF: return jv_int(0);
        case JV_STR: return jv_int((int64_t)ju_len(v.s->s, v.s->n));
        case JV_LIST: if (!(v.flags & JF_GEN)) return jv_int((int64_t)v.l->n); break;
        case JV_DICT: if (!(v.flags & JF_NS)) return jv_int((int64_t)v.d->n); break;
        default: break;
        }
        jx_fail(c, "object of type '%s' has no len()", jv_typename(v));
    }
    if (!strcmp(f, "default") || !strcmp(f, "d")) {
        jv *dv = jarg(args, names, nargs, 0, "default_value");
        bool boolean = get_bool(jarg(args, names, nargs, 1, "boolean"), false);
        if (v.kind == JV_UNDEF || (boolean && !jv_truthy(v))) return dv ? *dv : S(c, "");
        return v;
    }
    if (!strcmp(f, "string")) return as_str(c, v);
    if (!strcmp(f, "safe")) {
        jv r = v.kind == JV_UNDEF ? S(c, "") : as_str(c, v);
        r.flags |= JF_SAFE;
        return r;
    }
    if (!strcmp(f, "escape") || !strcmp(f, "e")) return jstr_escape(c, v);
    if (!strcmp(f, "forceescape")) {
        jv s = as_str(c, v);
        s.flags = 0;
        return jstr_escape(c, s);
    }
    if (!strcmp(f, "tojson")) {
        jv *ind = jarg(args, names, nargs, 1, "indent");
        jv *sk = jarg(args, names, nargs, 4, "sort_keys");
        jbuf b = {0};
        int indent = -1;
        if (ind && ind->kind == JV_INT) indent = (int)LC_MAX(0, LC_MIN(ind->i, 64));
        jv_tojson(c, &b, v, indent, get_bool(sk, false), 0);
        return jv_strn(c, b.p ? b.p : "", b.n);
    }
    if (!strcmp(f, "upper") || !strcmp(f, "lower") || !strcmp(f, "capitalize"))
        return jstr_case(c, as_str(c, v), f[0] == 'u' ? 0 : f[0] == 'l' ? 1 : 3);
    if (!strcmp(f, "title")) return do_title(c, as_str(c, v));
    if (!strcmp(f, "trim")) return jstr_strip(c, as_str(c, v), jarg(args, names, nargs, 0, "chars"), true, true);
    if (!strcmp(f, "replace")) {
        if (!a0 || !a1) jx_fail(c, "replace filter needs old and new");
        jv *cnt = jarg(args, names, nargs, 2, "count");
        return jstr_replace(c, as_str(c, v), as_str(c, *a0), as_str(c, *a1), cnt && cnt->kind == JV_INT ? cnt->i : -1);
    }
    if (!strcmp(f, "first") || !strcmp(f, "last")) {
        if (f[0] == 'l' && v.kind == JV_LIST && (v.flags & JF_GEN)) jx_fail(c, "'generator' object is not reversible");
        jlist *items = jv_iter(c, v);
        if (!items->n) return jv_undef(f);
        return items->v[f[0] == 'f' ? 0 : items->n - 1];
    }
    if (!strcmp(f, "join")) {
        jv *d = jarg(args, names, nargs, 0, "d");
        jv *attr = jarg(args, names, nargs, 1, "attribute");
        jv sep = d ? as_str(c, *d) : S(c, "");
        jlist *items = jv_iter(c, v);
        jbuf b = {0};
        for (size_t i = 0; i < items->n; i++) {
            if (i) jb_put(c, &b, sep.s->s, sep.s->n);
            jv_str(c, &b, attr ? attr_path(c, items->v[i], *attr) : items->v[i]);
        }
        return jv_strn(c, b.p ? b.p : "", b.n);
    }
    if (!strcmp(f, "list")) return copy_list(c, jv_iter(c, v));
    if (!strcmp(f, "items")) {
        if (v.kind == JV_UNDEF) return jv_list(c, 0);
        if (v.kind != JV_DICT || (v.flags & JF_NS)) jx_fail(c, "Can only get item pairs from a mapping.");
        jv r = jcall_method(c, v, "items", NULL, NULL, 0);
        r.flags = JF_GEN;
        return r;
    }
    if (!strcmp(f, "dictsort")) {
        if (v.kind != JV_DICT || (v.flags & JF_NS)) jx_fail(c, "dictsort: expected a mapping, got %s", jv_typename(v));
        bool cs = get_bool(jarg(args, names, nargs, 0, "case_sensitive"), false);
        jv *by = jarg(args, names, nargs, 1, "by");
        bool rev = get_bool(jarg(args, names, nargs, 2, "reverse"), false);
        bool by_value = by && by->kind == JV_STR && !strcmp(by->s->s, "value");
        jv items = jcall_method(c, v, "items", NULL, NULL, 0);
        size_t n = items.l->n;
        jv *keys = jx_alloc(c, (n + 1) * sizeof(jv));
        for (size_t i = 0; i < n; i++) keys[i] = items.l->v[i].l->v[by_value ? 1 : 0];
        msort(c, items.l->v, keys, n, cs, rev);
        return items;
    }
    if (!strcmp(f, "sort")) {
        bool rev = get_bool(jarg(args, names, nargs, 0, "reverse"), false);
        bool cs = get_bool(jarg(args, names, nargs, 1, "case_sensitive"), false);
        jv *attr = jarg(args, names, nargs, 2, "attribute");
        jv r = copy_list(c, jv_iter(c, v));
        size_t n = r.l->n;
        jv *keys = jx_alloc(c, (n + 1) * sizeof(jv));
        for (size_t i = 0; i < n; i++) keys[i] = attr ? attr_path(c, r.l->v[i], *attr) : r.l->v[i];
        msort(c, r.l->v, keys, n, cs, rev);
        return r;
    }
    if (!strcmp(f, "unique")) {
        bool cs = get_bool(jarg(args, names, nargs, 0, "case_sensitive"), false);
        jv *attr = jarg(args, names, nargs, 1, "attribute");
        jlist *items = jv_iter(c, v);
        jv r = jv_list(c, 0), seen = jv_list(c, 0);
        for (size_t i = 0; i < items->n; i++) {
            jv k = attr ? attr_path(c, items->v[i], *attr) : items->v[i];
            if (!cs && k.kind == JV_STR) k = jstr_case(c, k, 1);
            bool dup = false;
            for (size_t j = 0; j < seen.l->n && !dup; j++) dup = jv_eq(seen.l->v[j], k);
            if (!dup) {
                jl_push(c, seen.l, k);
                jl_push(c, r.l, items->v[i]);
            }
        }
        r.flags = JF_GEN;
        return r;
    }
    if (!strcmp(f, "reverse")) {
        if (v.kind == JV_STR) {
            jlist *ch = jv_iter(c, v);
            jbuf b = {0};
            for (size_t i = ch->n; i-- > 0;) jb_put(c, &b, ch->v[i].s->s, ch->v[i].s->n);
            return jv_strn(c, b.p ? b.p : "", b.n);
        }
        jlist *items = jv_iter(c, v);
        jv r = jv_list(c, items->n);
        for (size_t i = items->n; i-- > 0;) jl_push(c, r.l, items->v[i]);
        r.flags = JF_GEN; /* reversed() iterator */
        return r;
    }
    if (!strcmp(f, "selectattr")) return select_items(c, v, args, names, nargs, true, true);
    if (!strcmp(f, "rejectattr")) return select_items(c, v, args, names, nargs, true, false);
    if (!strcmp(f, "select")) return select_items(c, v, args, names, nargs, false, true);
    if (!strcmp(f, "reject")) return select_items(c, v, args, names, nargs, false, false);
    if (!strcmp(f, "map")) {
        jv r = jv_list(c, 0);
        r.flags = JF_GEN;
        if (!jv_truthy(v)) return r;
        jlist *items = jv_iter(c, v);
        jv *attr = jarg(args, names, nargs, -1, "attribute");
        if (attr) {
            jv *def = jarg(args, names, nargs, -1, "default");
            for (size_t i = 0; i < items->n; i++) {
                jv x = attr_path(c, items->v[i], *attr);
                if (x.kind == JV_UNDEF && def) x = *def;
                jl_push(c, r.l, x);
            }
            return r;
        }
        if (!a0 || a0->kind != JV_STR) jx_fail(c, "map needs a filter name or attribute=");
        if (!jfilter_known(a0->s->s)) jx_fail(c, "No filter named '%s'.", a0->s->s);
        for (size_t i = 0; i < items->n; i++)
            jl_push(c, r.l, jfilter(c, a0->s->s, items->v[i], args + 1, names + 1, nargs - 1));
        return r;
    }
    if (!strcmp(f, "int")) {
        jv *def = jarg(args, names, nargs, 0, "default");
        return to_int(c, v, def ? *def : jv_int(0));
    }
    if (!strcmp(f, "float")) {
        jv *def = jarg(args, names, nargs, 0, "default");
        return to_float(c, v, def ? *def : jv_float(0.0));
    }
    if (!strcmp(f, "abs")) {
        if (v.kind == JV_INT) return jv_int(v.i < 0 ? -v.i : v.i);
        if (v.kind == JV_FLOAT) return jv_float(fabs(v.f));
        if (v.kind == JV_BOOL) return jv_int(v.b);
        jx_fail(c, "bad operand type for abs(): '%s'", jv_typename(v));
    }
    if (!strcmp(f, "round")) {
        jv *pv = jarg(args, names, nargs, 0, "precision");
        jv *mv = jarg(args, names, nargs, 1, "method");
        int64_t prec = pv && pv->kind == JV_INT ? pv->i : 0;
        const char *method = mv && mv->kind == JV_STR ? mv->s->s : "common";
        if (v.kind != JV_INT && v.kind != JV_FLOAT && v.kind != JV_BOOL) jx_fail(c, "round: expected a number");
        double x = v.kind == JV_FLOAT ? v.f : v.kind == JV_INT ? (double)v.i : v.b;
        if (prec > 300) prec = 300;
        double m = pow(10.0, (double)prec);
        double r;
        if (!strcmp(method, "ceil")) r = ceil(x * m) / m;
        else if (!strcmp(method, "floor")) r = floor(x * m) / m;
        else if (!strcmp(method, "common")) {
            /* Python's round(x, n): correctly rounded from the exact binary value */
            char buf[400];
            if (prec >= 0 && fabs(x) < 1e300) {
                snprintf(buf, sizeof buf, "%.*f", (int)prec, x);
                r = strtod(buf, NULL);
            } else {
                r = nearbyint(x * m) / m;
            }
        }
        else jx_fail(c, "method must be common, ceil or floor");
        if (v.kind == JV_INT && !strcmp(method, "common")) return v;
        return jv_float(r);
    }
    if (!strcmp(f, "indent")) {
        return do_indent(c, as_str(c, v), jarg(args, names, nargs, 0, "width"),
                         get_bool(jarg(args, names, nargs, 1, "first"), false),
                         get_bool(jarg(args, names, nargs, 2, "blank"), false));
    }
    if (!strcmp(f, "wordcount")) {
        jv s = as_str(c, v);
        int64_t k = 0;
        bool in = false;
        for (size_t i = 0; i < s.s->n; i++) {
            char ch = s.s->s[i];
            bool w = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '_' ||
                     ((unsigned char)ch & 0x80);
            if (w && !in) k++;
            in = w;
        }
        return jv_int(k);
    }
    if (!strcmp(f, "batch")) {
        jv *nv = jarg(args, names, nargs, 0, "linecount");
        jv *fill = jarg(args, names, nargs, 1, "fill_with");
        if (!nv || nv->kind != JV_INT || nv->i <= 0) jx_fail(c, "batch needs a positive count");
        jlist *items = jv_iter(c, v);
        jv r = jv_list(c, 0), cur = jv_list(c, 0);
        for (size_t i = 0; i < items->n; i++) {
            jl_push(c, cur.l, items->v[i]);
            if ((int64_t)cur.l->n == nv->i) {
                jl_push(c, r.l, cur);
                cur = jv_list(c, 0);
            }
        }
        if (cur.l->n) {
            if (fill)
                while ((int64_t)cur.l->n < nv->i) jl_push(c, cur.l, *fill);
            jl_push(c, r.l, cur);
        }
        r.flags = JF_GEN;
        return r;
    }
    if (!strcmp(f, "sum")) {
        jv *attr = jarg(args, names, nargs, 0, "attribute");
        jv *start = jarg(args, names, nargs, 1, "start");
        jv acc = start ? *start : jv_int(0);
        jlist *items = jv_iter(c, v);
        for (size_t i = 0; i < items->n; i++) {
            jnode fake = {.kind = N_BIN, .op = OP_ADD};
            fake.lit = attr ? attr_path(c, items->v[i], *attr) : items->v[i];
            jnode la = {.kind = N_LIT, .lit = acc}, lb = {.kind = N_LIT, .lit = fake.lit};
            fake.a = &la;
            fake.b = &lb;
            acc = jeval(c, &fake);
        }
        return acc;
    }
    if (!strcmp(f, "min")) return minmax(c, v, args, names, nargs, false);
    if (!strcmp(f, "max")) return minmax(c, v, args, names, nargs, true);
    if (!strcmp(f, "center")) {
        jv *w = jarg(args, names, nargs, 0, "width");
        return jstr_center(c, as_str(c, v), w && w->kind == JV_INT ? w->i : 80);
    }
    if (!strcmp(f, "truncate")) {
        jv s = as_str(c, v);
        jv *lv = jarg(args, names, nargs, 0, "length");
        bool kill = get_bool(jarg(args, names, nargs, 1, "killwords"), false);
        jv *ev = jarg(args, names, nargs, 2, "end");
        jv *lw = jarg(args, names, nargs, 3, "leeway");
        int64_t length = lv && lv->kind == JV_INT ? lv->i : 255, leeway = lw && lw->kind == JV_INT ? lw->i : 5;
        jv end = ev ? as_str(c, *ev) : S(c, "...");
        jlist *ch = jv_iter(c, s);
        int64_t endlen = (int64_t)ju_len(end.s->s, end.s->n);
        if ((int64_t)ch->n <= length + leeway) return s;
        int64_t cut = length - endlen;
        if (cut < 0) cut = 0;
        jbuf b = {0};
        for (int64_t i = 0; i < cut && i < (int64_t)ch->n; i++) jb_put(c, &b, ch->v[i].s->s, ch->v[i].s->n);
        if (!kill) { /* drop the last partial word: rsplit(" ", 1)[0] */
            size_t k = b.n;
            while (k > 0 && b.p[k - 1] != ' ') k--;
            if (k > 0) b.n = k - 1;
        }
        jb_put(c, &b, end.s->s, end.s->n);
        return jv_strn(c, b.p ? b.p : "", b.n);
    }
    if (!strcmp(f, "attr")) {
        if (!a0 || a0->kind != JV_STR) jx_fail(c, "attr needs a name");
        return jgetattr(c, v, a0->s->s);
    }
    if (!strcmp(f, "format")) {
        jv t = jv_list(c, (size_t)nargs);
        t.flags = JF_TUPLE;
        for (int i = 0; i < nargs; i++) jl_push(c, t.l, args[i]);
        jnode fake = {.kind = N_BIN, .op = OP_MOD};
        jnode la = {.kind = N_LIT, .lit = as_str(c, v)}, lb = {.kind = N_LIT, .lit = t};
        fake.a = &la;
        fake.b = &lb;
        return jeval(c, &fake);
    }
    if (!strcmp(f, "pprint")) {
        jbuf b = {0};
        jv_repr(c, &b, v);
        return jv_strn(c, b.p ? b.p : "", b.n);
    }
    jx_fail(c, "filter '%s' is not supported", f);
}

/* ==== Tests ==== */

static bool is_int(jv v) { return v.kind == JV_INT; }

bool jtest(jctx *c, const char *t, jv v, jv *args, int nargs) {
    jv *a0 = nargs > 0 ? &args[0] : NULL;
    if (!strcmp(t, "defined")) return v.kind != JV_UNDEF;
    if (!strcmp(t, "undefined")) return v.kind == JV_UNDEF;
    if (!strcmp(t, "none")) return v.kind == JV_NONE;
    if (!strcmp(t, "string")) return v.kind == JV_STR;
    if (!strcmp(t, "number")) return v.kind == JV_INT || v.kind == JV_FLOAT || v.kind == JV_BOOL;
    if (!strcmp(t, "integer")) return is_int(v);
    if (!strcmp(t, "float")) return v.kind == JV_FLOAT;
    if (!strcmp(t, "mapping")) return v.kind == JV_DICT && !(v.flags & JF_NS);
    if (!strcmp(t, "iterable")) return v.kind == JV_STR || v.kind == JV_LIST || v.kind == JV_UNDEF || (v.kind == JV_DICT && !(v.flags & JF_NS));
    if (!strcmp(t, "sequence")) return v.kind == JV_STR || v.kind == JV_LIST || v.kind == JV_UNDEF || (v.kind == JV_DICT && !(v.flags & JF_NS));
    if (!strcmp(t, "boolean")) return v.kind == JV_BOOL;
    if (!strcmp(t, "true")) return v.kind == JV_BOOL && v.b;
    if (!strcmp(t, "false")) return v.kind == JV_BOOL && !v.b;
    if (!strcmp(t, "callable")) return v.kind == JV_MACRO || v.kind == JV_BOUND || v.kind == JV_FUNC;
    if (!strcmp(t, "odd") || !strcmp(t, "even") || !strcmp(t, "divisibleby")) {
        if (v.kind != JV_INT && v.kind != JV_BOOL) {
            if (v.kind == JV_UNDEF) jx_fail(c, "'%s' is undefined", v.name ? v.name : "value");
            jx_fail(c, "test '%s' needs an integer, got %s", t, jv_typename(v));
        }
        int64_t x = v.kind == JV_INT ? v.i : v.b;
        if (t[0] == 'o') return x % 2 != 0;
        if (t[0] == 'e') return x % 2 == 0;
        if (!a0 || a0->kind != JV_INT) jx_fail(c, "divisibleby needs an integer");
        if (!a0->i) jx_fail(c, "integer division or modulo by zero");
        return x % a0->i == 0;
    }
    if (!strcmp(t, "lower") || !strcmp(t, "upper")) {
        if (v.kind != JV_STR) return false;
        jv s = jstr_case(c, v, t[0] == 'l' ? 1 : 0);
        return jv_eq(s, v);
    }
    if (!strcmp(t, "escaped")) return false;
    if (!strcmp(t, "filter")) return a0 && a0->kind == JV_STR && jfilter_known(a0->s->s);
    if (!strcmp(t, "test")) return a0 && a0->kind == JV_STR && jtest_known(a0->s->s);
    if (!a0) jx_fail(c, "test '%s' needs an argument", t);
    if (!strcmp(t, "eq") || !strcmp(t, "equalto") || !strcmp(t, "==")) return jv_eq(v, *a0);
    if (!strcmp(t, "ne") || !strcmp(t, "!=")) return !jv_eq(v, *a0);
    if (!strcmp(t, "lt") || !strcmp(t, "lessthan") || !strcmp(t, "<")) return jv_cmp(c, v, *a0) < 0;
    if (!strcmp(t, "le") || !strcmp(t, "<=")) return jv_cmp(c, v, *a0) <= 0;
    if (!strcmp(t, "gt") || !strcmp(t, "greaterthan") || !strcmp(t, ">")) return jv_cmp(c, v, *a0) > 0;
    if (!strcmp(t, "ge") || !strcmp(t, ">=")) return jv_cmp(c, v, *a0) >= 0;
    if (!strcmp(t, "sameas")) {
        if (v.kind != a0->kind) return false;
        if (v.kind == JV_NONE || v.kind == JV_UNDEF) return true;
        if (v.kind == JV_BOOL) return v.b == a0->b;
        if (v.kind == JV_INT) return v.i == a0->i && v.i >= -5 && v.i <= 256;
        return v.kind == JV_STR ? v.s == a0->s : v.kind == JV_LIST ? v.l == a0->l : v.kind == JV_DICT ? v.d == a0->d : false;
    }
    if (!strcmp(t, "in")) {
        if (a0->kind == JV_STR) {
            if (v.kind != JV_STR) jx_fail(c, "'in <string>' requires string as left operand");
            return memmem(a0->s->s, a0->s->n, v.s->s, v.s->n) != NULL || !v.s->n;
        }
        if (a0->kind == JV_DICT) return jd_get(a0->d, v) != NULL;
        jlist *items = jv_iter(c, *a0);
        for (size_t i = 0; i < items->n; i++)
            if (jv_eq(items->v[i], v)) return true;
        return false;
    }
    jx_fail(c, "No test named '%s'.", t);
}
