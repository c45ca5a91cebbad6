/* jinja_eval.c — the Jinja evaluator: scopes, expressions, statements, loops, macros, and the
 * render entry point.
 *
 * Scoping follows jinja2: a for loop body and a macro body get their own scope (so `set` inside
 * a loop does not leak out, which is why templates use namespace()); if blocks do not. Loop
 * iterations, call depth and output size are bounded by lc_jinja_opts.
 * Entry points: lc_jinja_render, jeval, jcall_value.
 */
#include "text/jinja_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ==== Scopes ==== */

static jframe *frame_new(jctx *c, jframe *parent) {
    jframe *f = jx_alloc(c, sizeof *f);
    memset(f, 0, sizeof *f);
    f->parent = parent;
    return f;
}

static void frame_set(jctx *c, jframe *f, const char *name, jv v) {
    for (size_t i = 0; i < f->n; i++)
        if (!strcmp(f->names[i], name)) {
            f->vals[i] = v;
            return;
        }
    if (f->n == f->cap) {
        size_t ncap = f->cap ? f->cap * 2 : 8;
        const char **nn = jx_alloc(c, ncap * sizeof *nn);
        jv *nv = jx_alloc(c, ncap * sizeof *nv);
        if (f->n) {
            memcpy(nn, f->names, f->n * sizeof *nn);
            memcpy(nv, f->vals, f->n * sizeof *nv);
        }
        f->names = nn;
        f->vals = nv;
        f->cap = ncap;
    }
    f->names[f->n] = name;
    f->vals[f->n] = v;
    f->n++;
}

static jv *frame_find(jframe *f, const char *name) {
    for (; f; f = f->parent)
        for (size_t i = f->n; i-- > 0;)
            if (!strcmp(f->names[i], name)) return &f->vals[i];
    return NULL;
}

/* ==== Expressions ==== */

static int64_t py_floordiv(int64_t a, int64_t b) {
    int64_t q = a / b;
    if ((a % b != 0) && ((a < 0) != (b < 0))) q--;
    return q;
}

static int64_t py_mod(int64_t a, int64_t b) {
    int64_t r = a % b;
    if (r != 0 && ((r < 0) != (b < 0))) r += b;
    return r;
}

static bool num(jv v) { return v.kind == JV_INT || v.kind == JV_FLOAT || v.kind == JV_BOOL; }
static double fval(jv v) { return v.kind == JV_FLOAT ? v.f : v.kind == JV_INT ? (double)v.i : (double)v.b; }
static int64_t ival(jv v) { return v.kind == JV_INT ? v.i : (int64_t)v.b; }

_Noreturn static void bad_operands(jctx *c, const char *op, jv a, jv b) {
    if (a.kind == JV_UNDEF || b.kind == JV_UNDEF) {
        jv u = a.kind == JV_UNDEF ? a : b;
        jx_fail(c, "'%s' is undefined", u.name ? u.name : "value");
    }
    jx_fail(c, "unsupported operand type(s) for %s: '%s' and '%s'", op, jv_typename(a), jv_typename(b));
}

static jv repeat(jctx *c, jv seq, int64_t k) {
    if (k < 0) k = 0;
    if (seq.kind == JV_STR) {
        if (seq.s->n && (uint64_t)k > c->max_output / seq.s->n + 1) jx_fail(c, "string repetition too large");
        jbuf b = {0};
        for (int64_t i = 0; i < k; i++) jb_put(c, &b, seq.s->s, seq.s->n);
        return jv_strn(c, b.p ? b.p : "", b.n);
    }
    if (seq.l->n && (uint64_t)k > (uint64_t)c->max_iterations / seq.l->n + 1) jx_fail(c, "list repetition too large");
    jv r = jv_list(c, 0);
    r.flags = seq.flags;
    for (int64_t i = 0; i < k; i++)
        for (size_t j = 0; j < seq.l->n; j++) jl_push(c, r.l, seq.l->v[j]);
    return r;
}

/* Arithmetic with Python's rules: int op int stays int (except /), mixed goes float, strings
 * and lists concatenate and repeat; int overflow and division by zero raise. */
static jv binop(jctx *c, int op, jv a, jv b) {
    static const char *opname[] = {"+", "-", "*", "/", "//", "%", "**"};
    if (op == OP_CONCAT) {
        jbuf buf = {0};
        jv_str(c, &buf, a);
        jv_str(c, &buf, b);
        return jv_strn(c, buf.p ? buf.p : "", buf.n);
    }
    if (num(a) && num(b)) {
        bool fl = a.kind == JV_FLOAT || b.kind == JV_FLOAT;
        if (!fl) {
            int64_t x = ival(a), y = ival(b), r;
            switch (op) {
            case OP_ADD: if (__builtin_add_overflow(x, y, &r)) goto ovf; return jv_int(r);
            case OP_SUB: if (__builtin_sub_overflow(x, y, &r)) goto ovf; return jv_int(r);
            case OP_MUL: if (__builtin_mul_overflow(x, y, &r)) goto ovf; return jv_int(r);
            case OP_DIV: if (!y) goto zero; return jv_float((double)x / (double)y);
            case OP_FLOORDIV: if (!y) goto zero; if (x == INT64_MIN && y == -1) goto ovf; return jv_int(py_floordiv(x, y));
            case OP_MOD: if (!y) goto zero; if (y == -1) return jv_int(0); return jv_int(py_mod(x, y));
            case OP_POW:
                if (y < 0) return jv_float(pow((double)x, (double)y));
                r = 1;
                for (int64_t i = 0; i < y; i++) {
                    if (__builtin_mul_overflow(r, x, &r)) goto ovf;
                    if (r == 0 || r == 1) break;
                }
                return jv_int(r);
            }
        }
        double x = fval(a), y = fval(b);
        switch (op) {
        case OP_ADD: return jv_float(x + y);
        case OP_SUB: return jv_float(x - y);
        case OP_MUL: return jv_float(x * y);
        case OP_DIV: if (y == 0) goto zero; return jv_float(x / y);
        case OP_FLOORDIV: if (y == 0) goto zero; return jv_float(floor(x / y));
        case OP_MOD: {
            if (y == 0) goto zero;
            double r = fmod(x, y);
            if (r != 0 && ((r < 0) != (y < 0))) r += y;
            return jv_float(r);
        }
        case OP_POW: return jv_float(pow(x, y));
        }
    }
    if (op == OP_ADD && a.kind == JV_STR && b.kind == JV_STR) {
        jbuf buf = {0};
        bool safe = (a.flags | b.flags) & JF_SAFE;
        if (safe) { /* Markup + str escapes the plain operand (markupsafe) */
            a = jstr_escape(c, a);
            b = jstr_escape(c, b);
        }
        jb_put(c, &buf, a.s->s, a.s->n);
        jb_put(c, &buf, b.s->s, b.s->n);
        jv r = jv_strn(c, buf.p ? buf.p : "", buf.n);
        if (safe) r.flags = JF_SAFE;
        return r;
    }
    if (op == OP_ADD && a.kind == JV_LIST && b.kind == JV_LIST && a.flags == b.flags && !(a.flags & JF_GEN)) {
        jv r = jv_list(c, a.l->n + b.l->n);
        r.flags = a.flags;
        for (size_t i = 0; i < a.l->n; i++) jl_push(c, r.l, a.l->v[i]);
        for (size_t i = 0; i < b.l->n; i++) jl_push(c, r.l, b.l->v[i]);
        return r;
    }
    if (op == OP_MUL && (a.kind == JV_STR || (a.kind == JV_LIST && !(a.flags & JF_GEN))) && (b.kind == JV_INT || b.kind == JV_BOOL))
        return repeat(c, a, ival(b));
    if (op == OP_MUL && (b.kind == JV_STR || (b.kind == JV_LIST && !(b.flags & JF_GEN))) && (a.kind == JV_INT || a.kind == JV_BOOL))
        return repeat(c, b, ival(a));
    if (op == OP_MOD && a.kind == JV_STR) {
        /* printf-style formatting: only %s and %d / %% are supported */
        jbuf buf = {0};
        jlist *args = (b.kind == JV_LIST && (b.flags & JF_TUPLE)) ? b.l : NULL;
        size_t ai = 0;
        for (size_t i = 0; i < a.s->n; i++) {
            char ch = a.s->s[i];
            if (ch != '%' || i + 1 >= a.s->n) {
                jb_put(c, &buf, &ch, 1);
                continue;
            }
            char f = a.s->s[++i];
            if (f == '%') {
                jb_puts(c, &buf, "%");
                continue;
            }
            jv arg = args ? (ai < args->n ? args->v[ai++] : jv_undef(NULL)) : (ai++ ? jv_undef(NULL) : b);
            if (arg.kind == JV_UNDEF) jx_fail(c, "not enough arguments for format string");
            if (f == 's') jv_str(c, &buf, arg);
            else if (f == 'r') jv_repr(c, &buf, arg);
            else if (f == 'd' && num(arg)) {
                char t[32];
                snprintf(t, sizeof t, "%lld", (long long)(arg.kind == JV_FLOAT ? (int64_t)arg.f : ival(arg)));
                jb_puts(c, &buf, t);
            } else {
                jx_fail(c, "unsupported format character '%c'", f);
            }
        }
        return jv_strn(c, buf.p ? buf.p : "", buf.n);
    }
    bad_operands(c, opname[op], a, b);
zero:
    jx_fail(c, "division by zero");
ovf:
    jx_fail(c, "integer overflow");
}

/* Python's `in`: substring for strings, key membership for dicts, element for lists. */
static bool contains(jctx *c, jv hay, jv needle) {
    if (hay.kind == JV_STR) {
        if (needle.kind != JV_STR) jx_fail(c, "'in <string>' requires string as left operand, not %s", jv_typename(needle));
        if (!needle.s->n) return true;
        return memmem(hay.s->s, hay.s->n, needle.s->s, needle.s->n) != NULL;
    }
    if (hay.kind == JV_DICT && !(hay.flags & JF_NS)) return jd_get(hay.d, needle) != NULL;
    if (hay.kind == JV_LIST) {
        for (size_t i = 0; i < hay.l->n; i++)
            if (jv_eq(hay.l->v[i], needle)) return true;
        return false;
    }
    if (hay.kind == JV_UNDEF) return false;
    jx_fail(c, "argument of type '%s' is not iterable", jv_typename(hay));
}

static bool compare(jctx *c, int op, jv a, jv b) {
    switch (op) {
    case OP_EQ: return jv_eq(a, b);
    case OP_NE: return !jv_eq(a, b);
    case OP_LT: return jv_cmp(c, a, b) < 0;
    case OP_LE: return jv_cmp(c, a, b) <= 0;
    case OP_GT: return jv_cmp(c, a, b) > 0;
    case OP_GE: return jv_cmp(c, a, b) >= 0;
    case OP_IN: return contains(c, b, a);
    default: return !contains(c, b, a);
    }
}

/* Python slicing obj[start:stop:step] on strings (by code point) and lists. */
static jv do_slice(jctx *c, jv obj, jv s0, jv s1, jv s2) {
    int64_t step = s2.kind == JV_NONE || s2.kind == JV_UNDEF ? 1 : s2.kind == JV_INT ? s2.i : 0;
    if (s2.kind != JV_NONE && s2.kind != JV_UNDEF && s2.kind != JV_INT) jx_fail(c, "slice indices must be integers or None");
    if (step == 0) jx_fail(c, "slice step cannot be zero");
    jlist *items;
    bool is_str = obj.kind == JV_STR;
    if (is_str) items = jv_iter(c, obj);
    else if (obj.kind == JV_LIST) items = obj.l;
    else if (obj.kind == JV_UNDEF) jx_fail(c, "'%s' is undefined", obj.name ? obj.name : "value");
    else jx_fail(c, "'%s' object is not subscriptable", jv_typename(obj));
    int64_t n = (int64_t)items->n;
    int64_t lo, hi;
    jv bounds[2] = {s0, s1};
    int64_t val[2];
    for (int k = 0; k < 2; k++) {
        jv x = bounds[k];
        if (x.kind == JV_NONE || x.kind == JV_UNDEF) {
            val[k] = step > 0 ? (k == 0 ? 0 : n) : (k == 0 ? n - 1 : -1);
            continue;
        }
        if (x.kind != JV_INT && x.kind != JV_BOOL) jx_fail(c, "slice indices must be integers or None");
        int64_t v = ival(x);
        if (v < 0) {
            v += n;
            if (v < 0) v = step > 0 ? 0 : -1;
        } else if (v >= n) {
            v = step > 0 ? n : n - 1;
        }
        val[k] = v;
    }
    lo = val[0];
    hi = val[1];
    jv r = jv_list(c, 0);
    r.flags = obj.flags;
    if (step > 0)
        for (int64_t i = lo; i < hi; i += step) jl_push(c, r.l, items->v[i]);
    else
        for (int64_t i = lo; i > hi; i += step) jl_push(c, r.l, items->v[i]);
    if (!is_str) return r;
    jbuf b = {0};
    for (size_t i = 0; i < r.l->n; i++) jb_put(c, &b, r.l->v[i].s->s, r.l->v[i].s->n);
    return jv_strn(c, b.p ? b.p : "", b.n);
}

typedef struct evargs {
    jv *v;
    const char **names;
    int n;
} evargs;

static evargs eval_args(jctx *c, const jnode *n) {
    evargs a = {NULL, n->names, n->n};
    if (n->n) {
        a.v = jx_alloc(c, (size_t)n->n * sizeof(jv));
        for (int i = 0; i < n->n; i++) a.v[i] = jeval(c, n->kids[i]);
    }
    return a;
}

/* The value of a name: local scopes outward, then the render's variables, then globals. */
static jv lookup(jctx *c, const char *name) {
    jv *v = frame_find(c->scope, name);
    if (v) return *v;
    if (jis_global(name)) return (jv){.kind = JV_FUNC, .name = name};
    return jv_undef(name);
}

jv jeval(jctx *c, const jnode *n) {
    if (++c->depth > c->max_depth * 4 + 100) {
        c->st = LC_ERR_RANGE;
        jx_fail(c, "expression nested too deeply");
    }
    jv r;
    c->line = n->line;
    switch (n->kind) {
    case N_LIT: r = n->lit; break;
    case N_NAME: r = lookup(c, n->str); break;
    case N_LIST: case N_TUPLE:
        r = jv_list(c, (size_t)n->n);
        if (n->kind == N_TUPLE) r.flags = JF_TUPLE;
        for (int i = 0; i < n->n; i++) jl_push(c, r.l, jeval(c, n->kids[i]));
        break;
    case N_DICT:
        r = jv_dict(c);
        for (int i = 0; i + 1 < n->n; i += 2) {
            jv k = jeval(c, n->kids[i]);
            if (k.kind == JV_LIST && !(k.flags & JF_TUPLE)) jx_fail(c, "unhashable type: 'list'");
            if (k.kind == JV_DICT) jx_fail(c, "unhashable type: 'dict'");
            jd_set(c, r.d, k, jeval(c, n->kids[i + 1]));
        }
        break;
    case N_ATTR: r = jgetattr(c, jeval(c, n->a), n->str); break;
    case N_INDEX: r = jgetitem(c, jeval(c, n->a), jeval(c, n->b)); break;
    case N_SLICE: {
        jv obj = jeval(c, n->a);
        jv s0 = n->b ? jeval(c, n->b) : jv_none();
        jv s1 = n->c ? jeval(c, n->c) : jv_none();
        jv s2 = n->d ? jeval(c, n->d) : jv_none();
        r = do_slice(c, obj, s0, s1, s2);
        break;
    }
    case N_CALL: {
        jv fn = jeval(c, n->a);
        evargs a = eval_args(c, n);
        int line = c->line;
        r = jcall_value(c, fn, a.v, a.names, a.n);
        c->line = line;
        break;
    }
    case N_FILTER: {
        jv v = jeval(c, n->a);
        evargs a = eval_args(c, n);
        r = jfilter(c, n->str, v, a.v, a.names, a.n);
        break;
    }
    case N_TEST: {
        jv v = jeval(c, n->a);
        evargs a = eval_args(c, n);
        bool t = jtest(c, n->str, v, a.v, a.n);
        r = jv_bool(n->flag ? !t : t);
        break;
    }
    case N_NEG: case N_POS: {
        jv v = jeval(c, n->a);
        if (v.kind == JV_INT || v.kind == JV_BOOL) {
            int64_t x = ival(v);
            if (n->kind == N_NEG && x == INT64_MIN) jx_fail(c, "integer overflow");
            r = jv_int(n->kind == N_NEG ? -x : x);
        } else if (v.kind == JV_FLOAT) {
            r = jv_float(n->kind == N_NEG ? -v.f : v.f);
        } else {
            if (v.kind == JV_UNDEF) jx_fail(c, "'%s' is undefined", v.name ? v.name : "value");
            jx_fail(c, "bad operand type for unary %s: '%s'", n->kind == N_NEG ? "-" : "+", jv_typename(v));
        }
        break;
    }
    case N_NOT: r = jv_bool(!jv_truthy(jeval(c, n->a))); break;
    case N_AND: {
        jv a = jeval(c, n->a);
        r = jv_truthy(a) ? jeval(c, n->b) : a;
        break;
    }
    case N_OR: {
        jv a = jeval(c, n->a);
        r = jv_truthy(a) ? a : jeval(c, n->b);
        break;
    }
    case N_BIN: {
        jv a = jeval(c, n->a);
        jv b = jeval(c, n->b);
        r = binop(c, n->op, a, b);
        break;
    }
    case N_CMP: {
        jv a = jeval(c, n->a);
        jv b = jeval(c, n->b);
        r = jv_bool(compare(c, n->op, a, b));
        break;
    }
    case N_COND:
        if (jv_truthy(jeval(c, n->a))) r = jeval(c, n->b);
        else r = n->c ? jeval(c, n->c) : jv_undef(NULL);
        break;
    default: jx_fail(c, "internal error: node %d is not an expression", n->kind);
    }
    c->depth--;
    return r;
}

/* ==== Statements ==== */

typedef enum { FLOW_NORMAL, FLOW_BREAK, FLOW_CONTINUE } jflow;

static jflow exec_body(jctx *c, const jnode *body);

/* Binds target (a name, ns.attr, or a tuple of names) to v in the innermost scope. */
static void assign(jctx *c, const jnode *target, jv v) {
    if (target->kind == N_NAME) {
        frame_set(c, c->scope, target->str, v);
    } else if (target->kind == N_ATTR) {
        jv obj = jeval(c, target->a);
        if (obj.kind != JV_DICT || !(obj.flags & JF_NS))
            jx_fail(c, "cannot assign attribute on non-namespace object");
        jd_set(c, obj.d, jv_cstr(c, target->str), v);
    } else if (target->kind == N_TUPLE) {
        jlist *items = jv_iter(c, v);
        if ((int)items->n != target->n)
            jx_fail(c, "%s values to unpack (expected %d, got %zu)",
                    (int)items->n > target->n ? "too many" : "not enough", target->n, items->n);
        for (int i = 0; i < target->n; i++) assign(c, target->kids[i], items->v[i]);
    } else {
        jx_fail(c, "cannot assign to this expression");
    }
}

static void count_iter(jctx *c) {
    if (++c->iterations > c->max_iterations) {
        c->st = LC_ERR_RANGE;
        jx_fail(c, "template exceeded %ld loop iterations", c->max_iterations);
    }
}

/* Runs the for loop n over iterable in a new scope. Items are filtered by the inline `if`
 * first (as jinja2 does, so loop.length and loop.last count only kept items); loop.* is bound
 * per iteration; break/continue stop here. depth0 is 0 except for recursive loop() calls. */
static void exec_for(jctx *c, const jnode *n, jv iterable, int depth0) {
    jlist *src = jv_iter(c, iterable);
    jframe *saved = c->scope;
    c->scope = frame_new(c, saved);
    jlist *items = src;
    if (n->e) {
        items = jv_list(c, 0).l;
        for (size_t i = 0; i < src->n; i++) {
            count_iter(c);
            assign(c, n->a, src->v[i]);
            if (jv_truthy(jeval(c, n->e))) jl_push(c, items, src->v[i]);
        }
    }
    jloop *L = jx_alloc(c, sizeof *L);
    memset(L, 0, sizeof *L);
    L->items = items;
    L->depth0 = depth0;
    L->rec = n->flag ? n : NULL;
    L->frame = saved;
    frame_set(c, c->scope, "loop", (jv){.kind = JV_LOOP, .loop = L});
    for (size_t i = 0; i < items->n; i++) {
        count_iter(c);
        L->index0 = i;
        assign(c, n->a, items->v[i]);
        if (exec_body(c, n->c) == FLOW_BREAK) break;
    }
    c->scope = saved;
    if (!items->n && n->d) exec_body(c, n->d);
}

/* Runs body with output captured into a fresh buffer; returns the text as a string value. */
static jv capture(jctx *c, const jnode *body) {
    jbuf b = {0};
    jbuf *saved = c->w;
    c->w = &b;
    exec_body(c, body);
    c->w = saved;
    return jv_strn(c, b.p ? b.p : "", b.n);
}

/* Applies a chain of N_FILTER nodes (innermost has a == NULL) to v. */
static jv apply_filters(jctx *c, const jnode *f, jv v) {
    if (f->a) v = apply_filters(c, f->a, v);
    evargs a = eval_args(c, f);
    return jfilter(c, f->str, v, a.v, a.names, a.n);
}

/* Calls a macro: binds parameters from positional and keyword arguments (defaults evaluated
 * in the macro's scope, missing ones undefined), runs the body with captured output and
 * returns it as a string. Extra arguments raise, as jinja2 does for macros without varargs. */
static jv call_macro(jctx *c, jmacro *m, jv *args, const char **names, int nargs) {
    const jnode *def = m->def;
    if (++c->calls > c->max_depth) {
        c->st = LC_ERR_RANGE;
        jx_fail(c, "macro calls nested deeper than %d (runaway recursion?)", c->max_depth);
    }
    jframe *saved = c->scope;
    jframe *f = frame_new(c, m->closure);
    int npos = 0;
    for (int i = 0; i < nargs; i++)
        if (!names[i]) npos++;
    if (npos > def->n) jx_fail(c, "macro '%s' takes not more than %d argument(s)", def->str, def->n);
    c->scope = f;
    for (int i = 0; i < nargs; i++) {
        if (!names[i]) continue;
        bool found = !strcmp(names[i], "caller");
        for (int k = 0; k < def->n; k++)
            if (!strcmp(def->names[k], names[i])) found = true;
        if (!found) jx_fail(c, "macro '%s' takes no keyword argument '%s'", def->str, names[i]);
    }
    int pi = 0;
    for (int k = 0; k < def->n; k++) {
        jv v = jv_undef(def->names[k]);
        bool set = false;
        if (pi < npos) {
            for (int i = 0, seen = 0; i < nargs; i++)
                if (!names[i] && seen++ == pi) {
                    v = args[i];
                    set = true;
                    break;
                }
            pi++;
        } else {
            for (int i = 0; i < nargs; i++)
                if (names[i] && !strcmp(names[i], def->names[k])) {
                    v = args[i];
                    set = true;
                }
        }
        if (!set && def->kids[k]) v = jeval(c, def->kids[k]);
        frame_set(c, f, def->names[k], v);
    }
    for (int i = 0; i < nargs; i++)
        if (names[i] && !strcmp(names[i], "caller")) frame_set(c, f, "caller", args[i]);
    jv out = capture(c, def->b);
    c->scope = saved;
    c->calls--;
    return out;
}

/* Calls any callable value: macros, bound methods, globals, and loop() in recursive loops. */
jv jcall_value(jctx *c, jv fn, jv *args, const char **names, int nargs) {
    switch (fn.kind) {
    case JV_MACRO: return call_macro(c, fn.m, args, names, nargs);
    case JV_BOUND: return jcall_method(c, fn.bd->self, fn.bd->name, args, names, nargs);
    case JV_FUNC: return jcall_global(c, fn.name, args, names, nargs);
    case JV_LOOP: {
        jloop *L = fn.loop;
        if (!L->rec) jx_fail(c, "the loop must be marked 'recursive' to be called");
        if (nargs != 1) jx_fail(c, "loop() takes exactly one argument");
        if (++c->calls > c->max_depth) {
            c->st = LC_ERR_RANGE;
            jx_fail(c, "recursive loop nested deeper than %d", c->max_depth);
        }
        jbuf b = {0};
        jbuf *saved = c->w;
        jframe *sf = c->scope;
        c->w = &b;
        c->scope = L->frame;
        exec_for(c, L->rec, args[0], L->depth0 + 1);
        c->scope = sf;
        c->w = saved;
        c->calls--;
        return jv_strn(c, b.p ? b.p : "", b.n);
    }
    case JV_UNDEF: jx_fail(c, "'%s' is undefined", fn.name ? fn.name : "value");
    default: jx_fail(c, "'%s' object is not callable", jv_typename(fn));
    }
}

static jflow exec_stmt(jctx *c, const jnode *n) {
    c->line = n->line;
    switch (n->kind) {
    case N_TEXT: jb_put(c, c->w, n->str, n->len); break;
    case N_OUT: jv_str(c, c->w, jeval(c, n->a)); break;
    case N_BODY: return exec_body(c, n);
    case N_IF:
        if (jv_truthy(jeval(c, n->a))) return exec_body(c, n->b);
        if (n->c) return n->c->kind == N_IF ? exec_stmt(c, n->c) : exec_body(c, n->c);
        break;
    case N_FOR: exec_for(c, n, jeval(c, n->b), 0); break;
    case N_SET: assign(c, n->a, jeval(c, n->b)); break;
    case N_SETBLOCK: {
        jv v = capture(c, n->b);
        if (n->c) v = apply_filters(c, n->c, v);
        assign(c, n->a, v);
        break;
    }
    case N_MACRO: {
        jmacro *m = jx_alloc(c, sizeof *m);
        memset(m, 0, sizeof *m);
        m->def = n;
        m->closure = c->scope;
        frame_set(c, c->scope, n->str, (jv){.kind = JV_MACRO, .m = m});
        break;
    }
    case N_CALLBLOCK: {
        jmacro *m = jx_alloc(c, sizeof *m);
        memset(m, 0, sizeof *m);
        m->def = n->d;
        m->closure = c->scope;
        m->is_caller = true;
        const jnode *call = n->a;
        jv fn = jeval(c, call->a);
        evargs a = eval_args(c, call);
        jv *args = jx_alloc(c, (size_t)(a.n + 1) * sizeof(jv));
        const char **names = jx_alloc(c, (size_t)(a.n + 1) * sizeof(char *));
        for (int i = 0; i < a.n; i++) {
            args[i] = a.v[i];
            names[i] = a.names[i];
        }
        args[a.n] = (jv){.kind = JV_MACRO, .m = m};
        names[a.n] = "caller";
        jv_str(c, c->w, jcall_value(c, fn, args, names, a.n + 1));
        break;
    }
    case N_FILTERBLOCK: jv_str(c, c->w, apply_filters(c, n->a, capture(c, n->b))); break;
    case N_BREAK: return FLOW_BREAK;
    case N_CONTINUE: return FLOW_CONTINUE;
    default: jx_fail(c, "internal error: node %d is not a statement", n->kind);
    }
    return FLOW_NORMAL;
}

static jflow exec_body(jctx *c, const jnode *body) {
    for (int i = 0; i < body->n; i++) {
        jflow f = exec_stmt(c, body->kids[i]);
        if (f != FLOW_NORMAL) return f;
    }
    return FLOW_NORMAL;
}

/* ==== Entry point ==== */

lc_status lc_jinja_render(const lc_jinja_tmpl *t, const json_t *vars, const lc_jinja_opts *opts,
                          char **out, size_t *out_len) {
    *out = NULL;
    if (out_len) *out_len = 0;
    if (!t) return lc_fail(LC_ERR_INVALID, "no template");
    if (vars && !json_is_object(vars)) return lc_fail(LC_ERR_INVALID, "template variables must be a JSON object");
    lc_jinja_opts o = opts ? *opts : (lc_jinja_opts){0};
    jctx *c = lc_calloc(1, sizeof *c);
    if (!c) return LC_ERR_OOM;
    c->max_output = o.max_output ? o.max_output : (16u << 20);
    c->ar.limit = o.max_memory ? o.max_memory : (256u << 20);
    c->max_iterations = o.max_iterations > 0 ? o.max_iterations : 1000000;
    c->max_depth = o.max_depth > 0 ? o.max_depth : 200;
    c->fixed_time = o.fixed_time;
    if (c->fixed_time <= 0) {
        const char *env = getenv("LOCARA_FIXED_TIME");
        if (env && *env) c->fixed_time = strtoll(env, NULL, 10);
    }
    c->line = 1;
    if (setjmp(c->jb)) {
        lc_status st = c->st != LC_OK ? c->st : LC_ERR_FORMAT;
        lc_fail(st, "template error: %s", c->msg);
        ja_free(&c->ar);
        lc_free(c);
        return st;
    }
    c->scope = frame_new(c, NULL);
    if (vars) {
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)vars, k, v) {
            jv key = jv_cstr(c, k);
            frame_set(c, c->scope, key.s->s, jv_from_json(c, v));
        }
    }
    jbuf *b = jx_alloc(c, sizeof *b);
    memset(b, 0, sizeof *b);
    c->out = c->w = b;
    exec_body(c, t->root);
    char *res = lc_malloc(b->n + 1);
    if (!res) {
        ja_free(&c->ar);
        lc_free(c);
        return LC_ERR_OOM;
    }
    if (b->n) memcpy(res, b->p, b->n);
    res[b->n] = 0;
    *out = res;
    if (out_len) *out_len = b->n;
    ja_free(&c->ar);
    lc_free(c);
    return LC_OK;
}
