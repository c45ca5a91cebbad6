/* jinja_methods.c — attribute and item access, Python methods of str/dict/list, loop.*, and
 * the global functions (range, dict, namespace, raise_exception, strftime_now).
 *
 * Access follows jinja2's ImmutableSandboxedEnvironment: obj.attr tries a Python attribute
 * (method) first and then obj['attr']; obj[key] tries the item first. Methods that mutate
 * (list.append, dict.update, ...) are unsafe there, so they resolve to undefined and raise when
 * called, exactly as transformers' jinja2 setup does. Entry points: jgetattr, jgetitem,
 * jcall_method, jcall_global, jis_global, jarg.
 */
#include "text/jinja_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

jv *jarg(jv *args, const char **names, int nargs, int pos, const char *kw) {
    if (kw)
        for (int i = 0; i < nargs; i++)
            if (names[i] && !strcmp(names[i], kw)) return &args[i];
    int seen = 0;
    for (int i = 0; i < nargs; i++) {
        if (names[i]) continue;
        if (seen++ == pos) return &args[i];
    }
    return NULL;
}

static const char *const str_methods[] = {
    "strip", "lstrip", "rstrip", "split", "rsplit", "startswith", "endswith", "replace", "upper",
    "lower", "title", "capitalize", "format", "find", "rfind", "index", "count", "join", "isdigit",
    "isalpha", "isalnum", "isspace", "islower", "isupper", "splitlines", "ljust", "rjust",
    "center", "zfill", "removeprefix", "removesuffix", "partition", "rpartition", "swapcase",
    "casefold", "isnumeric", "isdecimal",
};
static const char *const dict_methods[] = {"get", "items", "keys", "values", "copy"};
static const char *const list_methods[] = {"index", "count", "copy"};
static const char *const unsafe_methods[] = {
    "append", "extend", "insert", "pop", "remove", "sort", "reverse", "clear", "update",
    "setdefault", "popitem", "add", "discard",
};

static bool in_table(const char *const *t, size_t n, const char *name) {
    for (size_t i = 0; i < n; i++)
        if (!strcmp(t[i], name)) return true;
    return false;
}

static jv bound(jctx *c, jv self, const char *name) {
    jbound *b = jx_alloc(c, sizeof *b);
    b->self = self;
    b->name = name;
    return (jv){.kind = JV_BOUND, .bd = b};
}

static jv loop_attr(jctx *c, jloop *L, const char *name) {
    int64_t n = (int64_t)L->items->n, i = (int64_t)L->index0;
    if (!strcmp(name, "index")) return jv_int(i + 1);
    if (!strcmp(name, "index0")) return jv_int(i);
    if (!strcmp(name, "revindex")) return jv_int(n - i);
    if (!strcmp(name, "revindex0")) return jv_int(n - i - 1);
    if (!strcmp(name, "first")) return jv_bool(i == 0);
    if (!strcmp(name, "last")) return jv_bool(i == n - 1);
    if (!strcmp(name, "length")) return jv_int(n);
    if (!strcmp(name, "depth")) return jv_int(L->depth0 + 1);
    if (!strcmp(name, "depth0")) return jv_int(L->depth0);
    if (!strcmp(name, "previtem")) return i > 0 ? L->items->v[i - 1] : jv_undef("previtem");
    if (!strcmp(name, "nextitem")) return i + 1 < n ? L->items->v[i + 1] : jv_undef("nextitem");
    if (!strcmp(name, "cycle") || !strcmp(name, "changed")) return bound(c, (jv){.kind = JV_LOOP, .loop = L}, name);
    return jv_undef(name);
}

/* obj.name as jinja2's sandboxed getattr: methods first, then the item; missing gives
 * undefined, except on undefined itself, which raises. */
jv jgetattr(jctx *c, jv obj, const char *name) {
    switch (obj.kind) {
    case JV_UNDEF:
        jx_fail(c, "'%s' is undefined", obj.name ? obj.name : "value");
    case JV_STR:
        if (in_table(str_methods, LC_ARRAY_LEN(str_methods), name)) return bound(c, obj, name);
        break;
    case JV_DICT:
        if (obj.flags & JF_NS) {
            jv *v = jd_gets(obj.d, name);
            return v ? *v : jv_undef(name);
        }
        if (in_table(dict_methods, LC_ARRAY_LEN(dict_methods), name)) return bound(c, obj, name);
        if (in_table(unsafe_methods, LC_ARRAY_LEN(unsafe_methods), name)) return jv_undef(name);
        {
            jv *v = jd_gets(obj.d, name);
            if (v) return *v;
        }
        break;
    case JV_LIST:
        if (in_table(list_methods, LC_ARRAY_LEN(list_methods), name)) return bound(c, obj, name);
        break;
    case JV_LOOP: return loop_attr(c, obj.loop, name);
    default: break;
    }
    return jv_undef(name);
}

/* obj[key] as jinja2's getitem: the item first, then (for string keys) the attribute. */
jv jgetitem(jctx *c, jv obj, jv key) {
    switch (obj.kind) {
    case JV_UNDEF: jx_fail(c, "'%s' is undefined", obj.name ? obj.name : "value");
    case JV_DICT:
        if (!(obj.flags & JF_NS)) {
            jv *v = jd_get(obj.d, key);
            if (v) return *v;
        }
        break;
    case JV_LIST:
    case JV_STR:
        if (obj.flags & JF_GEN) jx_fail(c, "'generator' object is not subscriptable");
        if (key.kind == JV_INT || key.kind == JV_BOOL) {
            int64_t i = key.kind == JV_INT ? key.i : key.b;
            if (obj.kind == JV_LIST) {
                int64_t n = (int64_t)obj.l->n;
                if (i < 0) i += n;
                if (i >= 0 && i < n) return obj.l->v[i];
                return jv_undef(NULL);
            }
            jlist *chars = jv_iter(c, obj);
            int64_t n = (int64_t)chars->n;
            if (i < 0) i += n;
            if (i >= 0 && i < n) return chars->v[i];
            return jv_undef(NULL);
        }
        break;
    case JV_LOOP:
        break;
    default: break;
    }
    if (key.kind == JV_STR) {
        if (obj.kind == JV_DICT && !(obj.flags & JF_NS)) return jv_undef(key.s->s);
        return jgetattr(c, obj, key.s->s);
    }
    return jv_undef(NULL);
}

/* ==== String methods ==== */

static bool ws(unsigned char ch) { return ch == ' ' || (ch >= '\t' && ch <= '\r') || (ch >= 0x1c && ch <= 0x1f); }

static bool in_chars(const jstr *set, const char *s, size_t clen) {
    if (!set) return clen == 1 && ws((unsigned char)s[0]);
    for (size_t i = 0; i + clen <= set->n;) {
        size_t l = 1;
        while (i + l < set->n && ((unsigned char)set->s[i + l] & 0xC0) == 0x80) l++;
        if (l == clen && !memcmp(set->s + i, s, clen)) return true;
        i += l;
    }
    return false;
}

/* Python str.strip/lstrip/rstrip(chars=None), by code point. */
static jv do_strip(jctx *c, jv s, jv *chars, bool left, bool right) {
    const jstr *set = (chars && chars->kind == JV_STR) ? chars->s : NULL;
    if (chars && chars->kind != JV_STR && chars->kind != JV_NONE) jx_fail(c, "strip arg must be None or str");
    const char *p = s.s->s;
    size_t lo = 0, hi = s.s->n;
    while (left && lo < hi) {
        size_t l = 1;
        while (lo + l < hi && ((unsigned char)p[lo + l] & 0xC0) == 0x80) l++;
        if (!in_chars(set, p + lo, l)) break;
        lo += l;
    }
    while (right && hi > lo) {
        size_t st = hi - 1;
        while (st > lo && ((unsigned char)p[st] & 0xC0) == 0x80) st--;
        if (!in_chars(set, p + st, hi - st)) break;
        hi = st;
    }
    return jv_strn(c, p + lo, hi - lo);
}

jv jstr_strip(jctx *c, jv s, jv *chars, bool left, bool right) { return do_strip(c, s, chars, left, right); }

/* Python str.split(sep=None, maxsplit=-1): whitespace runs when sep is None. */
static jv do_split(jctx *c, jv s, jv *sepv, jv *maxv) {
    int64_t maxsplit = (maxv && maxv->kind == JV_INT) ? maxv->i : -1;
    jv r = jv_list(c, 0);
    const char *p = s.s->s;
    size_t n = s.s->n;
    if (!sepv || sepv->kind == JV_NONE) {
        size_t i = 0;
        while (i < n) {
            while (i < n && ws((unsigned char)p[i])) i++;
            if (i >= n) break;
            if (maxsplit >= 0 && (int64_t)r.l->n >= maxsplit) {
                size_t e = n;
                while (e > i && ws((unsigned char)p[e - 1])) e--;
                jl_push(c, r.l, jv_strn(c, p + i, e - i));
                break;
            }
            size_t j = i;
            while (j < n && !ws((unsigned char)p[j])) j++;
            jl_push(c, r.l, jv_strn(c, p + i, j - i));
            i = j;
        }
        return r;
    }
    if (sepv->kind != JV_STR) jx_fail(c, "must be str or None, not %s", jv_typename(*sepv));
    const jstr *sep = sepv->s;
    if (!sep->n) jx_fail(c, "empty separator");
    size_t i = 0;
    for (;;) {
        const char *hit = (maxsplit < 0 || (int64_t)r.l->n < maxsplit) ? memmem(p + i, n - i, sep->s, sep->n) : NULL;
        if (!hit) {
            jl_push(c, r.l, jv_strn(c, p + i, n - i));
            break;
        }
        size_t at = (size_t)(hit - p);
        jl_push(c, r.l, jv_strn(c, p + i, at - i));
        i = at + sep->n;
    }
    return r;
}

static jv do_replace(jctx *c, jv s, jv old, jv new, int64_t count) {
    if (old.kind != JV_STR || new.kind != JV_STR) jx_fail(c, "replace() arguments must be str");
    jbuf b = {0};
    const char *p = s.s->s;
    size_t n = s.s->n, i = 0;
    int64_t done = 0;
    if (!old.s->n) { /* Python inserts new between every code point */
        jlist *chars = jv_iter(c, s);
        for (size_t k = 0; k < chars->n; k++) {
            if (count < 0 || done++ < count) jb_put(c, &b, new.s->s, new.s->n);
            jb_put(c, &b, chars->v[k].s->s, chars->v[k].s->n);
        }
        if (count < 0 || done < count) jb_put(c, &b, new.s->s, new.s->n);
        return jv_strn(c, b.p ? b.p : "", b.n);
    }
    while (i < n) {
        const char *hit = (count < 0 || done < count) ? memmem(p + i, n - i, old.s->s, old.s->n) : NULL;
        if (!hit) break;
        size_t at = (size_t)(hit - p);
        jb_put(c, &b, p + i, at - i);
        jb_put(c, &b, new.s->s, new.s->n);
        i = at + old.s->n;
        done++;
    }
    jb_put(c, &b, p + i, n - i);
    return jv_strn(c, b.p ? b.p : "", b.n);
}

jv jstr_replace(jctx *c, jv s, jv old, jv new, int64_t count) { return do_replace(c, s, old, new, count); }

static bool affix(jctx *c, jv s, jv arg, bool start) {
    if (arg.kind == JV_LIST && (arg.flags & JF_TUPLE)) {
        for (size_t i = 0; i < arg.l->n; i++)
            if (affix(c, s, arg.l->v[i], start)) return true;
        return false;
    }
    if (arg.kind != JV_STR) jx_fail(c, "%swith first arg must be str or a tuple of str", start ? "starts" : "ends");
    size_t n = arg.s->n;
    if (n > s.s->n) return false;
    return !memcmp(start ? s.s->s : s.s->s + s.s->n - n, arg.s->s, n);
}

/* Case mapping of ASCII letters; other bytes (UTF-8 included) pass through. */
static jv map_case(jctx *c, jv s, int mode) {
    jv r = jv_strn(c, s.s->s, s.s->n);
    char *p = r.s->s;
    bool word_start = true;
    for (size_t i = 0; i < r.s->n; i++) {
        char ch = p[i];
        bool alpha = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z');
        bool up = mode == 0 || (mode == 2 && word_start) || (mode == 3 && i == 0);
        if (mode == 4) up = ch >= 'a' && ch <= 'z';
        if (alpha) {
            if (up && ch >= 'a' && ch <= 'z') p[i] = (char)(ch - 32);
            if (!up && ch >= 'A' && ch <= 'Z') p[i] = (char)(ch + 32);
        }
        word_start = mode == 2 ? !alpha && !((unsigned char)ch & 0x80) : word_start;
    }
    return r;
}

jv jstr_case(jctx *c, jv s, int mode) { return map_case(c, s, mode); }

/* Python str.format with {} / {0} / {name} fields (no format specs beyond none). */
static jv do_format(jctx *c, jv s, jv *args, const char **names, int nargs) {
    jbuf b = {0};
    const char *p = s.s->s;
    size_t n = s.s->n;
    int auto_i = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '{' && i + 1 < n && p[i + 1] == '{') {
            jb_puts(c, &b, "{");
            i++;
            continue;
        }
        if (p[i] == '}' && i + 1 < n && p[i + 1] == '}') {
            jb_puts(c, &b, "}");
            i++;
            continue;
        }
        if (p[i] != '{') {
            jb_put(c, &b, p + i, 1);
            continue;
        }
        const char *e = memchr(p + i, '}', n - i);
        if (!e) jx_fail(c, "Single '{' encountered in format string");
        size_t fl = (size_t)(e - (p + i + 1));
        char field[64];
        if (fl >= sizeof field) jx_fail(c, "format field too long");
        memcpy(field, p + i + 1, fl);
        field[fl] = 0;
        char *colon = strchr(field, ':');
        if (colon) jx_fail(c, "format specs are not supported");
        jv *v;
        if (!fl) v = jarg(args, names, nargs, auto_i++, NULL);
        else if (field[0] >= '0' && field[0] <= '9') v = jarg(args, names, nargs, atoi(field), NULL);
        else {
            v = NULL;
            for (int k = 0; k < nargs; k++)
                if (names[k] && !strcmp(names[k], field)) v = &args[k];
        }
        if (!v) jx_fail(c, "format: no argument for field '{%s}'", field);
        jv_str(c, &b, *v);
        i += fl + 1;
    }
    return jv_strn(c, b.p ? b.p : "", b.n);
}

static int64_t find_sub(jv s, jv sub, bool rev) {
    if (sub.s->n > s.s->n) return -1;
    if (rev) {
        for (size_t i = s.s->n - sub.s->n + 1; i-- > 0;)
            if (!memcmp(s.s->s + i, sub.s->s, sub.s->n)) return (int64_t)ju_len(s.s->s, i);
        return -1;
    }
    const char *hit = memmem(s.s->s, s.s->n, sub.s->s, sub.s->n);
    return hit ? (int64_t)ju_len(s.s->s, (size_t)(hit - s.s->s)) : -1;
}

static jv need_str(jctx *c, jv *a, const char *m) {
    if (!a || a->kind != JV_STR) jx_fail(c, "%s() needs a string argument", m);
    return *a;
}

static jv pad(jctx *c, jv s, int64_t width, const char *fill, int where) {
    int64_t len = (int64_t)ju_len(s.s->s, s.s->n);
    if (width > (int64_t)c->max_output) jx_fail(c, "padding width too large");
    if (width <= len) return s;
    int64_t total = width - len, left = where == 0 ? 0 : where == 2 ? total : total / 2 + (total & width & 1);
    jbuf b = {0};
    for (int64_t i = 0; i < left; i++) jb_puts(c, &b, fill);
    jb_put(c, &b, s.s->s, s.s->n);
    for (int64_t i = 0; i < total - left; i++) jb_puts(c, &b, fill);
    return jv_strn(c, b.p ? b.p : "", b.n);
}

jv jstr_center(jctx *c, jv s, int64_t width) { return pad(c, s, width, " ", 1); }

static jv str_method(jctx *c, jv s, const char *m, jv *args, const char **names, int nargs) {
    jv *a0 = jarg(args, names, nargs, 0, NULL), *a1 = jarg(args, names, nargs, 1, NULL);
    if (!strcmp(m, "strip")) return do_strip(c, s, a0, true, true);
    if (!strcmp(m, "lstrip")) return do_strip(c, s, a0, true, false);
    if (!strcmp(m, "rstrip")) return do_strip(c, s, a0, false, true);
    if (!strcmp(m, "split")) return do_split(c, s, jarg(args, names, nargs, 0, "sep"), jarg(args, names, nargs, 1, "maxsplit"));
    if (!strcmp(m, "rsplit")) {
        jv *mx = jarg(args, names, nargs, 1, "maxsplit");
        jv *sep = jarg(args, names, nargs, 0, "sep");
        if (!mx || mx->kind != JV_INT || mx->i < 0) return do_split(c, s, sep, NULL);
        /* rsplit with a limit: split fully, then rejoin the leading parts */
        jv all = do_split(c, s, sep, NULL);
        if ((int64_t)all.l->n <= mx->i + 1 || !sep || sep->kind != JV_STR) return all;
        size_t keep = all.l->n - (size_t)mx->i;
        jbuf b = {0};
        for (size_t i = 0; i < keep; i++) {
            if (i) jb_put(c, &b, sep->s->s, sep->s->n);
            jb_put(c, &b, all.l->v[i].s->s, all.l->v[i].s->n);
        }
        jv r = jv_list(c, 0);
        jl_push(c, r.l, jv_strn(c, b.p ? b.p : "", b.n));
        for (size_t i = keep; i < all.l->n; i++) jl_push(c, r.l, all.l->v[i]);
        return r;
    }
    if (!strcmp(m, "startswith") || !strcmp(m, "endswith")) {
        if (!a0) jx_fail(c, "%s() takes at least 1 argument", m);
        return jv_bool(affix(c, s, *a0, m[0] == 's'));
    }
    if (!strcmp(m, "replace")) {
        if (!a0 || !a1) jx_fail(c, "replace() takes at least 2 arguments");
        jv *cnt = jarg(args, names, nargs, 2, "count");
        return do_replace(c, s, *a0, *a1, cnt && cnt->kind == JV_INT ? cnt->i : -1);
    }
    if (!strcmp(m, "upper")) return map_case(c, s, 0);
    if (!strcmp(m, "lower") || !strcmp(m, "casefold")) return map_case(c, s, 1);
    if (!strcmp(m, "title")) return map_case(c, s, 2);
    if (!strcmp(m, "capitalize")) return map_case(c, s, 3);
    if (!strcmp(m, "swapcase")) {
        jv r = jv_strn(c, s.s->s, s.s->n);
        for (size_t i = 0; i < r.s->n; i++) {
            char ch = r.s->s[i];
            if (ch >= 'a' && ch <= 'z') r.s->s[i] = (char)(ch - 32);
            else if (ch >= 'A' && ch <= 'Z') r.s->s[i] = (char)(ch + 32);
        }
        return r;
    }
    if (!strcmp(m, "format")) return do_format(c, s, args, names, nargs);
    if (!strcmp(m, "find") || !strcmp(m, "rfind") || !strcmp(m, "index")) {
        int64_t at = find_sub(s, need_str(c, a0, m), m[0] == 'r');
        if (at < 0 && m[0] == 'i') jx_fail(c, "substring not found");
        return jv_int(at);
    }
    if (!strcmp(m, "count")) {
        jv sub = need_str(c, a0, m);
        if (!sub.s->n) return jv_int((int64_t)ju_len(s.s->s, s.s->n) + 1);
        int64_t k = 0;
        const char *p = s.s->s, *end = p + s.s->n;
        while ((p = memmem(p, (size_t)(end - p), sub.s->s, sub.s->n))) {
            k++;
            p += sub.s->n;
        }
        return jv_int(k);
    }
    if (!strcmp(m, "join")) {
        if (!a0) jx_fail(c, "join() takes exactly one argument");
        jlist *items = jv_iter(c, *a0);
        jbuf b = {0};
        for (size_t i = 0; i < items->n; i++) {
            if (items->v[i].kind != JV_STR) jx_fail(c, "sequence item %zu: expected str instance, %s found", i, jv_typename(items->v[i]));
            if (i) jb_put(c, &b, s.s->s, s.s->n);
            jb_put(c, &b, items->v[i].s->s, items->v[i].s->n);
        }
        return jv_strn(c, b.p ? b.p : "", b.n);
    }
    if (!strncmp(m, "is", 2)) {
        if (!s.s->n) return jv_bool(false);
        bool ok = true, any_cased = false;
        for (size_t i = 0; i < s.s->n; i++) {
            char ch = s.s->s[i];
            bool d = ch >= '0' && ch <= '9', lo = ch >= 'a' && ch <= 'z', up = ch >= 'A' && ch <= 'Z';
            if (lo || up) any_cased = true;
            if (!strcmp(m, "isdigit") || !strcmp(m, "isnumeric") || !strcmp(m, "isdecimal")) ok &= d;
            else if (!strcmp(m, "isalpha")) ok &= lo || up;
            else if (!strcmp(m, "isalnum")) ok &= lo || up || d;
            else if (!strcmp(m, "isspace")) ok &= ws((unsigned char)ch);
            else if (!strcmp(m, "islower")) ok &= !up;
            else if (!strcmp(m, "isupper")) ok &= !lo;
        }
        if (!strcmp(m, "islower") || !strcmp(m, "isupper")) ok &= any_cased;
        return jv_bool(ok);
    }
    if (!strcmp(m, "splitlines")) {
        jv r = jv_list(c, 0);
        const char *p = s.s->s;
        size_t n = s.s->n, i = 0;
        while (i < n) {
            size_t j = i;
            while (j < n && p[j] != '\n' && p[j] != '\r') j++;
            jl_push(c, r.l, jv_strn(c, p + i, j - i));
            if (j < n && p[j] == '\r' && j + 1 < n && p[j + 1] == '\n') j++;
            i = j + 1;
        }
        return r;
    }
    if (!strcmp(m, "ljust") || !strcmp(m, "rjust") || !strcmp(m, "center") || !strcmp(m, "zfill")) {
        if (!a0 || a0->kind != JV_INT) jx_fail(c, "%s() needs an integer width", m);
        const char *fill = m[0] == 'z' ? "0" : (a1 && a1->kind == JV_STR) ? a1->s->s : " ";
        return pad(c, s, a0->i, fill, m[0] == 'l' ? 0 : m[0] == 'c' ? 1 : 2);
    }
    if (!strcmp(m, "removeprefix") || !strcmp(m, "removesuffix")) {
        jv a = need_str(c, a0, m);
        bool pre = m[6] == 'p';
        if (affix(c, s, a, pre)) return pre ? jv_strn(c, s.s->s + a.s->n, s.s->n - a.s->n) : jv_strn(c, s.s->s, s.s->n - a.s->n);
        return s;
    }
    if (!strcmp(m, "partition") || !strcmp(m, "rpartition")) {
        jv sep = need_str(c, a0, m);
        jv r = jv_list(c, 3);
        r.flags = JF_TUPLE;
        int64_t cp = find_sub(s, sep, m[0] == 'r');
        if (cp < 0) {
            jv e = jv_strn(c, "", 0);
            jl_push(c, r.l, m[0] == 'r' ? e : s);
            jl_push(c, r.l, e);
            jl_push(c, r.l, m[0] == 'r' ? s : e);
            return r;
        }
        const char *hit = m[0] == 'r' ? NULL : memmem(s.s->s, s.s->n, sep.s->s, sep.s->n);
        if (!hit)
            for (size_t i = s.s->n - sep.s->n + 1; i-- > 0;)
                if (!memcmp(s.s->s + i, sep.s->s, sep.s->n)) {
                    hit = s.s->s + i;
                    break;
                }
        size_t at = (size_t)(hit - s.s->s);
        jl_push(c, r.l, jv_strn(c, s.s->s, at));
        jl_push(c, r.l, sep);
        jl_push(c, r.l, jv_strn(c, s.s->s + at + sep.s->n, s.s->n - at - sep.s->n));
        return r;
    }
    jx_fail(c, "'str' object has no attribute '%s'", m);
}

/* ==== Methods ==== */

jv jcall_method(jctx *c, jv self, const char *m, jv *args, const char **names, int nargs) {
    if (self.kind == JV_STR) return str_method(c, self, m, args, names, nargs);
    jv *a0 = jarg(args, names, nargs, 0, NULL);
    if (self.kind == JV_DICT) {
        if (!strcmp(m, "get")) {
            if (!a0) jx_fail(c, "get expected at least 1 argument, got 0");
            jv *v = jd_get(self.d, *a0);
            if (v) return *v;
            jv *d = jarg(args, names, nargs, 1, NULL);
            return d ? *d : jv_none();
        }
        if (!strcmp(m, "items") || !strcmp(m, "keys") || !strcmp(m, "values")) {
            jv r = jv_list(c, self.d->n);
            for (size_t i = 0; i < self.d->n; i++) {
                if (m[0] == 'k') {
                    jl_push(c, r.l, self.d->k[i]);
                } else if (m[0] == 'v') {
                    jl_push(c, r.l, self.d->v[i]);
                } else {
                    jv t = jv_list(c, 2);
                    t.flags = JF_TUPLE;
                    jl_push(c, t.l, self.d->k[i]);
                    jl_push(c, t.l, self.d->v[i]);
                    jl_push(c, r.l, t);
                }
            }
            return r;
        }
        if (!strcmp(m, "copy")) {
            jv r = jv_dict(c);
            for (size_t i = 0; i < self.d->n; i++) jd_set(c, r.d, self.d->k[i], self.d->v[i]);
            return r;
        }
    }
    if (self.kind == JV_LIST) {
        if (!strcmp(m, "index") || !strcmp(m, "count")) {
            if (!a0) jx_fail(c, "%s() takes exactly one argument", m);
            int64_t k = 0;
            for (size_t i = 0; i < self.l->n; i++)
                if (jv_eq(self.l->v[i], *a0)) {
                    if (m[0] == 'i') return jv_int((int64_t)i);
                    k++;
                }
            if (m[0] == 'i') jx_fail(c, "value is not in list");
            return jv_int(k);
        }
        if (!strcmp(m, "copy")) {
            jv r = jv_list(c, self.l->n);
            for (size_t i = 0; i < self.l->n; i++) jl_push(c, r.l, self.l->v[i]);
            return r;
        }
    }
    if (self.kind == JV_LOOP && !strcmp(m, "cycle")) {
        if (!nargs) jx_fail(c, "no items for cycling given");
        return args[self.loop->index0 % (size_t)nargs];
    }
    jx_fail(c, "'%s' object has no callable attribute '%s'", jv_typename(self), m);
}

/* ==== Globals ==== */

static const char *const globals[] = {"range", "dict", "namespace", "raise_exception", "strftime_now"};

bool jis_global(const char *name) { return in_table(globals, LC_ARRAY_LEN(globals), name); }

jv jcall_global(jctx *c, const char *name, jv *args, const char **names, int nargs) {
    if (!strcmp(name, "range")) {
        int64_t v[3] = {0, 0, 1};
        int np = 0;
        for (int i = 0; i < nargs; i++) {
            if (names[i] || np >= 3) jx_fail(c, "range() takes 1 to 3 positional arguments");
            if (args[i].kind != JV_INT && args[i].kind != JV_BOOL)
                jx_fail(c, "'%s' object cannot be interpreted as an integer", jv_typename(args[i]));
            v[np++] = args[i].kind == JV_INT ? args[i].i : args[i].b;
        }
        if (!np) jx_fail(c, "range expected at least 1 argument, got 0");
        int64_t start = np == 1 ? 0 : v[0], stop = np == 1 ? v[0] : v[1], step = np == 3 ? v[2] : 1;
        if (!step) jx_fail(c, "range() arg 3 must not be zero");
        jv r = jv_list(c, 0);
        for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) {
            if ((long)r.l->n >= c->max_iterations) {
                c->st = LC_ERR_RANGE;
                jx_fail(c, "range() too large (over %ld items)", c->max_iterations);
            }
            jl_push(c, r.l, jv_int(i));
            if ((step > 0 && i > INT64_MAX - step) || (step < 0 && i < INT64_MIN - step)) break;
        }
        return r;
    }
    if (!strcmp(name, "dict") || !strcmp(name, "namespace")) {
        jv r = jv_dict(c);
        if (name[0] == 'n') r.flags = JF_NS;
        for (int i = 0; i < nargs; i++) {
            if (!names[i]) {
                if (args[i].kind != JV_DICT) jx_fail(c, "%s() positional argument must be a dict", name);
                for (size_t k = 0; k < args[i].d->n; k++) jd_set(c, r.d, args[i].d->k[k], args[i].d->v[k]);
            }
        }
        for (int i = 0; i < nargs; i++)
            if (names[i]) jd_set(c, r.d, jv_cstr(c, names[i]), args[i]);
        return r;
    }
    if (!strcmp(name, "raise_exception")) {
        jbuf b = {0};
        if (nargs) jv_str(c, &b, args[0]);
        jx_fail(c, "%s", b.p ? b.p : "");
    }
    if (!strcmp(name, "strftime_now")) {
        if (!nargs || args[0].kind != JV_STR) jx_fail(c, "strftime_now() needs a format string");
        time_t t;
        struct tm tmv;
        if (c->fixed_time > 0) {
            t = (time_t)c->fixed_time;
            gmtime_r(&t, &tmv);
        } else {
            t = time(NULL);
            localtime_r(&t, &tmv);
        }
        char buf[512];
        size_t n = args[0].s->n ? strftime(buf, sizeof buf, args[0].s->s, &tmv) : 0;
        return jv_strn(c, buf, n);
    }
    jx_fail(c, "'%s' is undefined", name);
}
