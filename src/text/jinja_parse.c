/* jinja_parse.c — the Jinja parser: tokens to a syntax tree, following jinja2's grammar and
 * operator precedence (parser.py): condexpr < or < and < not < compare < +,- < ~ < *,/,//,% <
 * ** < unary -,+ < postfix (.attr, [sub], call) < filters and tests.
 *
 * Statements: if/elif/else, for (else, filter, recursive), set (expression and block), macro,
 * call, filter, break, continue, generation. Nesting is bounded (no stack overflow on hostile
 * input). Entry point: lc_jinja_parse (and lc_jinja_free).
 */
#include "text/jinja_int.h"

#include <string.h>

#define MAX_NEST 200

static jtok *cur(jparse *p) { return &p->toks[p->pos]; }
static jtok *peek(jparse *p, size_t k) {
    size_t i = p->pos + k;
    return &p->toks[i < p->ntok ? i : p->ntok - 1];
}
static void next(jparse *p) {
    if (p->pos + 1 < p->ntok) p->pos++;
}

static bool is_op(jtok *t, const char *op) { return t->type == T_OP && !strcmp(t->s, op); }
static bool is_name(jtok *t, const char *nm) { return t->type == T_NAME && !strcmp(t->s, nm); }

static const char *tok_desc(jtok *t) {
    switch (t->type) {
    case T_EOF: return "end of template";
    case T_TEXT: return "template text";
    case T_VAR_BEGIN: return "'{{'";
    case T_VAR_END: return "end of print statement";
    case T_BLOCK_BEGIN: return "'{%'";
    case T_BLOCK_END: return "end of statement block";
    case T_STRING: return "string";
    case T_INT: return "integer";
    case T_FLOAT: return "float";
    default: return t->s;
    }
}

_Noreturn static void fail_at(jparse *p, jtok *t, const char *what) {
    jp_fail(p, t->line, t->col, "%s, got %s", what, tok_desc(t));
}

static void expect_op(jparse *p, const char *op) {
    if (!is_op(cur(p), op)) {
        char m[64];
        snprintf(m, sizeof m, "expected '%s'", op);
        fail_at(p, cur(p), m);
    }
    next(p);
}

static void expect_type(jparse *p, int type, const char *what) {
    if (cur(p)->type != type) fail_at(p, cur(p), what);
    next(p);
}

static const char *expect_name(jparse *p) {
    jtok *t = cur(p);
    if (t->type != T_NAME) fail_at(p, t, "expected a name");
    next(p);
    return t->s;
}

static jnode *nn(jparse *p, int kind, jtok *at) {
    jnode *n = ja_alloc(p->ar, sizeof *n);
    if (!n) jp_fail(p, at->line, at->col, "out of memory");
    memset(n, 0, sizeof *n);
    n->kind = (uint8_t)kind;
    n->line = at->line;
    n->col = at->col;
    return n;
}

/* A growable array of child nodes (and optional names) being collected. */
typedef struct kids {
    jnode **v;
    const char **names;
    int n, cap;
} kids;

static void kids_add(jparse *p, kids *k, jnode *x, const char *name) {
    if (k->n == k->cap) {
        int ncap = k->cap ? k->cap * 2 : 4;
        jnode **nv = ja_alloc(p->ar, (size_t)ncap * sizeof *nv);
        const char **nm = ja_alloc(p->ar, (size_t)ncap * sizeof *nm);
        if (!nv || !nm) jp_fail(p, x ? x->line : 0, x ? x->col : 0, "out of memory");
        if (k->n) {
            memcpy(nv, k->v, (size_t)k->n * sizeof *nv);
            memcpy(nm, k->names, (size_t)k->n * sizeof *nm);
        }
        k->v = nv;
        k->names = nm;
        k->cap = ncap;
    }
    k->v[k->n] = x;
    k->names[k->n] = name;
    k->n++;
}

static void kids_to(jnode *n, kids *k) {
    n->kids = k->v;
    n->names = k->names;
    n->n = k->n;
}

static void enter(jparse *p) {
    if (++p->depth > MAX_NEST) jp_fail(p, cur(p)->line, cur(p)->col, "template nested too deeply (over %d levels)", MAX_NEST);
}

/* ==== Expressions ==== */

static jnode *parse_expr(jparse *p);
static jnode *parse_unary(jparse *p, bool with_filter);
static jnode *parse_or(jparse *p);

/* Parses call arguments after '(' up to ')'; keyword arguments carry their names. */
static void parse_args(jparse *p, jnode *n) {
    kids k = {0};
    expect_op(p, "(");
    while (!is_op(cur(p), ")")) {
        if (k.n) {
            expect_op(p, ",");
            if (is_op(cur(p), ")")) break;
        }
        const char *kw = NULL;
        if (cur(p)->type == T_NAME && is_op(peek(p, 1), "=")) {
            kw = cur(p)->s;
            next(p);
            next(p);
        } else if (is_op(cur(p), "*") || is_op(cur(p), "**")) {
            fail_at(p, cur(p), "*args and **kwargs are not supported");
        }
        kids_add(p, &k, parse_expr(p), kw);
    }
    next(p);
    kids_to(n, &k);
}

/* A comma-separated sequence ending at one of the closing tokens; makes a tuple when a comma
 * was seen (or when explicit is set), else returns the single expression. */
static jnode *parse_tuple(jparse *p, bool with_cond, bool allow_empty) {
    jtok *at = cur(p);
    kids k = {0};
    bool comma = false;
    for (;;) {
        if (k.n) {
            if (!is_op(cur(p), ",")) break;
            next(p);
            comma = true;
        }
        jtok *t = cur(p);
        if (t->type == T_BLOCK_END || t->type == T_VAR_END || is_op(t, ")") || is_name(t, "if") ||
            is_name(t, "recursive") || is_op(t, "="))
            break;
        kids_add(p, &k, with_cond ? parse_expr(p) : parse_or(p), NULL);
    }
    if (!k.n && !allow_empty) fail_at(p, cur(p), "expected an expression");
    if (k.n == 1 && !comma) return k.v[0];
    jnode *n = nn(p, N_TUPLE, at);
    kids_to(n, &k);
    return n;
}

static jnode *parse_primary(jparse *p) {
    jtok *t = cur(p);
    enter(p);
    jnode *n;
    if (t->type == T_NAME) {
        next(p);
        n = nn(p, N_LIT, t);
        if (!strcmp(t->s, "true") || !strcmp(t->s, "True")) {
            n->lit = jv_bool(true);
        } else if (!strcmp(t->s, "false") || !strcmp(t->s, "False")) {
            n->lit = jv_bool(false);
        } else if (!strcmp(t->s, "none") || !strcmp(t->s, "None")) {
            n->lit = jv_none();
        } else {
            n->kind = N_NAME;
            n->str = t->s;
        }
    } else if (t->type == T_STRING) {
        /* adjacent string literals concatenate */
        size_t total = 0, i = p->pos;
        while (p->toks[i].type == T_STRING) total += p->toks[i++].n;
        char *s = ja_alloc(p->ar, sizeof(jstr) + total + 1);
        if (!s) jp_fail(p, t->line, t->col, "out of memory");
        jstr *js = (jstr *)s;
        js->n = 0;
        while (cur(p)->type == T_STRING) {
            memcpy(js->s + js->n, cur(p)->s, cur(p)->n);
            js->n += cur(p)->n;
            next(p);
        }
        js->s[js->n] = 0;
        n = nn(p, N_LIT, t);
        n->lit.kind = JV_STR;
        n->lit.s = js;
    } else if (t->type == T_INT) {
        next(p);
        n = nn(p, N_LIT, t);
        n->lit = jv_int(t->i);
    } else if (t->type == T_FLOAT) {
        next(p);
        n = nn(p, N_LIT, t);
        n->lit = jv_float(t->f);
    } else if (is_op(t, "(")) {
        next(p);
        if (is_op(cur(p), ")")) {
            next(p);
            n = nn(p, N_TUPLE, t);
        } else {
            n = parse_tuple(p, true, false);
            expect_op(p, ")");
        }
    } else if (is_op(t, "[")) {
        next(p);
        kids k = {0};
        while (!is_op(cur(p), "]")) {
            if (k.n) {
                expect_op(p, ",");
                if (is_op(cur(p), "]")) break;
            }
            kids_add(p, &k, parse_expr(p), NULL);
        }
        next(p);
        n = nn(p, N_LIST, t);
        kids_to(n, &k);
    } else if (is_op(t, "{")) {
        next(p);
        kids k = {0};
        while (!is_op(cur(p), "}")) {
            if (k.n) {
                expect_op(p, ",");
                if (is_op(cur(p), "}")) break;
            }
            kids_add(p, &k, parse_expr(p), NULL);
            expect_op(p, ":");
            kids_add(p, &k, parse_expr(p), NULL);
        }
        next(p);
        n = nn(p, N_DICT, t);
        kids_to(n, &k);
    } else {
        fail_at(p, t, "expected an expression");
    }
    p->depth--;
    return n;
}

/* Subscript contents after '[': an index or a slice a:b:c with any part omitted. */
static jnode *parse_subscript(jparse *p, jnode *target, jtok *at) {
    jnode *parts[3] = {NULL, NULL, NULL};
    int np = 0;
    bool slice = false;
    for (;;) {
        if (!is_op(cur(p), ":") && !is_op(cur(p), "]")) parts[np] = parse_expr(p);
        if (is_op(cur(p), ":")) {
            slice = true;
            if (np == 2) fail_at(p, cur(p), "expected ']'");
            np++;
            next(p);
            continue;
        }
        break;
    }
    expect_op(p, "]");
    jnode *n = nn(p, slice ? N_SLICE : N_INDEX, at);
    n->a = target;
    if (slice) {
        n->b = parts[0];
        n->c = parts[1];
        n->d = parts[2];
    } else {
        if (!parts[0]) fail_at(p, cur(p), "expected a subscript");
        n->b = parts[0];
    }
    return n;
}

static jnode *parse_postfix(jparse *p, jnode *n) {
    for (;;) {
        jtok *t = cur(p);
        if (is_op(t, ".")) {
            next(p);
            jtok *a = cur(p);
            if (a->type == T_NAME) {
                next(p);
                jnode *x = nn(p, N_ATTR, t);
                x->a = n;
                x->str = a->s;
                n = x;
            } else if (a->type == T_INT) {
                next(p);
                jnode *x = nn(p, N_INDEX, t);
                x->a = n;
                x->b = nn(p, N_LIT, a);
                x->b->lit = jv_int(a->i);
                n = x;
            } else {
                fail_at(p, a, "expected a name after '.'");
            }
        } else if (is_op(t, "[")) {
            next(p);
            n = parse_subscript(p, n, t);
        } else if (is_op(t, "(")) {
            jnode *x = nn(p, N_CALL, t);
            x->a = n;
            parse_args(p, x);
            n = x;
        } else {
            return n;
        }
    }
}

static jnode *parse_filter(jparse *p, jnode *target, jtok *at) {
    jtok *t = cur(p);
    const char *name = expect_name(p);
    while (is_op(cur(p), ".")) { /* dotted filter names: take the last part */
        next(p);
        name = expect_name(p);
    }
    jnode *f = nn(p, N_FILTER, t->line ? t : at);
    f->a = target;
    f->str = name;
    if (is_op(cur(p), "(")) parse_args(p, f);
    return f;
}

static jnode *parse_filter_expr(jparse *p, jnode *n) {
    for (;;) {
        jtok *t = cur(p);
        if (is_op(t, "|")) {
            next(p);
            n = parse_filter(p, n, t);
        } else if (is_name(t, "is")) {
            next(p);
            jnode *x = nn(p, N_TEST, t);
            if (is_name(cur(p), "not")) {
                next(p);
                x->flag = true;
            }
            x->a = n;
            x->str = expect_name(p);
            while (is_op(cur(p), ".")) {
                next(p);
                x->str = expect_name(p);
            }
            jtok *c = cur(p);
            if (is_op(c, "(")) {
                parse_args(p, x);
            } else if ((c->type == T_NAME || c->type == T_STRING || c->type == T_INT || c->type == T_FLOAT ||
                        is_op(c, "[") || is_op(c, "{")) &&
                       !is_name(c, "else") && !is_name(c, "or") && !is_name(c, "and")) {
                if (is_name(c, "is")) fail_at(p, c, "cannot chain multiple tests with is");
                kids k = {0};
                kids_add(p, &k, parse_postfix(p, parse_primary(p)), NULL);
                kids_to(x, &k);
            }
            n = x;
        } else if (is_op(t, "(")) {
            jnode *x = nn(p, N_CALL, t);
            x->a = n;
            parse_args(p, x);
            n = x;
        } else {
            return n;
        }
    }
}

static jnode *parse_unary(jparse *p, bool with_filter) {
    jtok *t = cur(p);
    jnode *n;
    enter(p);
    if (is_op(t, "-") || is_op(t, "+")) {
        next(p);
        n = nn(p, is_op(t, "-") ? N_NEG : N_POS, t);
        n->a = parse_unary(p, false);
    } else {
        n = parse_primary(p);
    }
    n = parse_postfix(p, n);
    if (with_filter) n = parse_filter_expr(p, n);
    p->depth--;
    return n;
}

static jnode *binop(jparse *p, jtok *at, int op, jnode *a, jnode *b) {
    jnode *n = nn(p, N_BIN, at);
    n->op = (uint8_t)op;
    n->a = a;
    n->b = b;
    return n;
}

static jnode *parse_pow(jparse *p) {
    jnode *n = parse_unary(p, true);
    while (is_op(cur(p), "**")) {
        jtok *t = cur(p);
        next(p);
        n = binop(p, t, OP_POW, n, parse_unary(p, true));
    }
    return n;
}

static jnode *parse_math2(jparse *p) {
    jnode *n = parse_pow(p);
    for (;;) {
        jtok *t = cur(p);
        int op = is_op(t, "*") ? OP_MUL : is_op(t, "/") ? OP_DIV : is_op(t, "//") ? OP_FLOORDIV
               : is_op(t, "%") ? OP_MOD : -1;
        if (op < 0) return n;
        next(p);
        n = binop(p, t, op, n, parse_pow(p));
    }
}

static jnode *parse_concat(jparse *p) {
    jnode *n = parse_math2(p);
    while (is_op(cur(p), "~")) {
        jtok *t = cur(p);
        next(p);
        n = binop(p, t, OP_CONCAT, n, parse_math2(p));
    }
    return n;
}

static jnode *parse_math1(jparse *p) {
    jnode *n = parse_concat(p);
    for (;;) {
        jtok *t = cur(p);
        int op = is_op(t, "+") ? OP_ADD : is_op(t, "-") ? OP_SUB : -1;
        if (op < 0) return n;
        next(p);
        n = binop(p, t, op, n, parse_concat(p));
    }
}

/* Comparisons; a chain a < b < c becomes (a < b) and (b < c). */
static jnode *parse_compare(jparse *p) {
    jnode *n = parse_math1(p);
    jnode *result = NULL, *left = n;
    for (;;) {
        jtok *t = cur(p);
        int op = is_op(t, "==") ? OP_EQ : is_op(t, "!=") ? OP_NE : is_op(t, "<") ? OP_LT
               : is_op(t, "<=") ? OP_LE : is_op(t, ">") ? OP_GT : is_op(t, ">=") ? OP_GE
               : is_name(t, "in") ? OP_IN : (is_name(t, "not") && is_name(peek(p, 1), "in")) ? OP_NOTIN : -1;
        if (op < 0) break;
        next(p);
        if (op == OP_NOTIN) next(p);
        jnode *right = parse_math1(p);
        jnode *c = nn(p, N_CMP, t);
        c->op = (uint8_t)op;
        c->a = left;
        c->b = right;
        if (result) {
            jnode *a = nn(p, N_AND, t);
            a->a = result;
            a->b = c;
            result = a;
        } else {
            result = c;
        }
        left = right;
    }
    return result ? result : n;
}

static jnode *parse_not(jparse *p) {
    if (is_name(cur(p), "not")) {
        jtok *t = cur(p);
        next(p);
        enter(p);
        jnode *n = nn(p, N_NOT, t);
        n->a = parse_not(p);
        p->depth--;
        return n;
    }
    return parse_compare(p);
}

static jnode *parse_and(jparse *p) {
    jnode *n = parse_not(p);
    while (is_name(cur(p), "and")) {
        jtok *t = cur(p);
        next(p);
        jnode *x = nn(p, N_AND, t);
        x->a = n;
        x->b = parse_not(p);
        n = x;
    }
    return n;
}

static jnode *parse_or(jparse *p) {
    jnode *n = parse_and(p);
    while (is_name(cur(p), "or")) {
        jtok *t = cur(p);
        next(p);
        jnode *x = nn(p, N_OR, t);
        x->a = n;
        x->b = parse_and(p);
        n = x;
    }
    return n;
}

/* expr [if cond [else expr]] — a missing else gives undefined, as in jinja2. */
static jnode *parse_expr(jparse *p) {
    enter(p);
    jnode *n = parse_or(p);
    while (is_name(cur(p), "if")) {
        jtok *t = cur(p);
        next(p);
        jnode *x = nn(p, N_COND, t);
        x->b = n;
        x->a = parse_or(p);
        if (is_name(cur(p), "else")) {
            next(p);
            x->c = parse_expr(p);
        }
        n = x;
    }
    p->depth--;
    return n;
}

/* ==== Statements ==== */

static jnode *parse_body(jparse *p, const char *const *ends, int nends);

/* An assignment target: a name, an attribute (ns.x), or a tuple of names. */
static jnode *parse_target(jparse *p, bool allow_attr) {
    jtok *at = cur(p);
    kids k = {0};
    bool paren = false, comma = false;
    if (is_op(cur(p), "(")) {
        paren = true;
        next(p);
    }
    for (;;) {
        jtok *t = cur(p);
        if (t->type != T_NAME) fail_at(p, t, "expected a name to assign to");
        next(p);
        jnode *x = nn(p, N_NAME, t);
        x->str = t->s;
        if (allow_attr && is_op(cur(p), ".")) {
            next(p);
            jnode *a = nn(p, N_ATTR, t);
            a->a = x;
            a->str = expect_name(p);
            x = a;
        }
        kids_add(p, &k, x, NULL);
        if (!is_op(cur(p), ",")) break;
        comma = true;
        next(p);
        if (paren && is_op(cur(p), ")")) break;
    }
    if (paren) expect_op(p, ")");
    if (k.n == 1 && !comma) return k.v[0];
    jnode *n = nn(p, N_TUPLE, at);
    kids_to(n, &k);
    return n;
}

static void end_block(jparse *p) { expect_type(p, T_BLOCK_END, "expected end of statement block"); }

static jnode *parse_if(jparse *p, jtok *at) {
    static const char *const ends[] = {"elif", "else", "endif"};
    jnode *n = nn(p, N_IF, at);
    n->a = parse_tuple(p, false, false);
    end_block(p);
    n->b = parse_body(p, ends, 3);
    jtok *t = cur(p);
    next(p);
    if (!strcmp(t->s, "elif")) {
        n->c = parse_if(p, t);
        return n;
    }
    if (!strcmp(t->s, "else")) {
        end_block(p);
        n->c = parse_body(p, ends + 2, 1);
        next(p);
    }
    end_block(p);
    return n;
}

static jnode *parse_for(jparse *p, jtok *at) {
    static const char *const ends[] = {"else", "endfor"};
    jnode *n = nn(p, N_FOR, at);
    n->a = parse_target(p, false);
    if (!is_name(cur(p), "in")) fail_at(p, cur(p), "expected 'in'");
    next(p);
    n->b = parse_tuple(p, false, false);
    if (is_name(cur(p), "if")) {
        next(p);
        n->e = parse_expr(p);
    }
    if (is_name(cur(p), "recursive")) {
        next(p);
        n->flag = true;
    }
    end_block(p);
    n->c = parse_body(p, ends, 2);
    jtok *t = cur(p);
    next(p);
    if (!strcmp(t->s, "else")) {
        end_block(p);
        n->d = parse_body(p, ends + 1, 1);
        next(p);
    }
    end_block(p);
    return n;
}

static jnode *parse_set(jparse *p, jtok *at) {
    static const char *const ends[] = {"endset"};
    jnode *target = parse_target(p, true);
    if (is_op(cur(p), "=")) {
        next(p);
        jnode *n = nn(p, N_SET, at);
        n->a = target;
        n->b = parse_tuple(p, true, false);
        end_block(p);
        return n;
    }
    jnode *n = nn(p, N_SETBLOCK, at);
    n->a = target;
    jnode *filt = NULL;
    while (is_op(cur(p), "|")) { /* {% set x | upper %} */
        jtok *t = cur(p);
        next(p);
        filt = parse_filter(p, filt, t);
    }
    end_block(p);
    n->b = parse_body(p, ends, 1);
    next(p);
    end_block(p);
    n->c = filt;
    return n;
}

/* Macro parameters "(a, b=default, ...)"; names[i] are the names, kids[i] the defaults. */
static void parse_params(jparse *p, jnode *n) {
    kids k = {0};
    expect_op(p, "(");
    while (!is_op(cur(p), ")")) {
        if (k.n) {
            expect_op(p, ",");
            if (is_op(cur(p), ")")) break;
        }
        const char *name = expect_name(p);
        jnode *def = NULL;
        if (is_op(cur(p), "=")) {
            next(p);
            def = parse_expr(p);
        }
        kids_add(p, &k, def, name);
    }
    next(p);
    kids_to(n, &k);
}

static jnode *parse_macro(jparse *p, jtok *at) {
    static const char *const ends[] = {"endmacro"};
    jnode *n = nn(p, N_MACRO, at);
    n->str = expect_name(p);
    parse_params(p, n);
    end_block(p);
    n->b = parse_body(p, ends, 1);
    next(p);
    if (cur(p)->type == T_NAME) next(p); /* {% endmacro name %} */
    end_block(p);
    return n;
}

static jnode *parse_call_block(jparse *p, jtok *at) {
    static const char *const ends[] = {"endcall"};
    jnode *n = nn(p, N_CALLBLOCK, at);
    n->d = nn(p, N_MACRO, at); /* the caller: parameters + body */
    n->d->str = "caller";
    if (is_op(cur(p), "(")) parse_params(p, n->d);
    n->a = parse_expr(p);
    if (n->a->kind != N_CALL) jp_fail(p, at->line, at->col, "expected a call in {%% call %%}");
    end_block(p);
    n->d->b = parse_body(p, ends, 1);
    next(p);
    end_block(p);
    return n;
}

static jnode *parse_filter_block(jparse *p, jtok *at) {
    static const char *const ends[] = {"endfilter"};
    jnode *n = nn(p, N_FILTERBLOCK, at);
    jnode *f = parse_filter(p, NULL, at);
    while (is_op(cur(p), "|")) {
        jtok *t = cur(p);
        next(p);
        f = parse_filter(p, f, t);
    }
    n->a = f;
    end_block(p);
    n->b = parse_body(p, ends, 1);
    next(p);
    end_block(p);
    return n;
}

static jnode *parse_stmt(jparse *p) {
    jtok *t = cur(p);
    if (t->type != T_NAME) fail_at(p, t, "expected a statement name");
    next(p);
    const char *k = t->s;
    if (!strcmp(k, "if")) return parse_if(p, t);
    if (!strcmp(k, "for")) return parse_for(p, t);
    if (!strcmp(k, "set")) return parse_set(p, t);
    if (!strcmp(k, "macro")) return parse_macro(p, t);
    if (!strcmp(k, "call")) return parse_call_block(p, t);
    if (!strcmp(k, "filter")) return parse_filter_block(p, t);
    if (!strcmp(k, "break") || !strcmp(k, "continue")) {
        jnode *n = nn(p, k[0] == 'b' ? N_BREAK : N_CONTINUE, t);
        end_block(p);
        return n;
    }
    if (!strcmp(k, "generation")) {
        static const char *const ends[] = {"endgeneration"};
        end_block(p);
        jnode *n = parse_body(p, ends, 1);
        next(p);
        end_block(p);
        return n;
    }
    jp_fail(p, t->line, t->col, "unknown statement '%s'", k);
}

/* Statements until EOF (nends == 0) or until a block whose name is one of ends; then the
 * current token is that name (the caller consumes it). */
static jnode *parse_body(jparse *p, const char *const *ends, int nends) {
    jtok *at = cur(p);
    jnode *body = nn(p, N_BODY, at);
    kids k = {0};
    enter(p);
    for (;;) {
        jtok *t = cur(p);
        if (t->type == T_EOF) {
            if (nends) jp_fail(p, t->line, t->col, "unexpected end of template, expected '%s'", ends[nends - 1]);
            break;
        }
        if (t->type == T_TEXT) {
            jnode *x = nn(p, N_TEXT, t);
            x->str = t->s;
            x->len = t->n;
            kids_add(p, &k, x, NULL);
            next(p);
        } else if (t->type == T_VAR_BEGIN) {
            next(p);
            jnode *x = nn(p, N_OUT, t);
            x->a = parse_tuple(p, true, false);
            expect_type(p, T_VAR_END, "expected end of print statement");
            kids_add(p, &k, x, NULL);
        } else if (t->type == T_BLOCK_BEGIN) {
            jtok *nm = peek(p, 1);
            if (nm->type == T_NAME) {
                for (int i = 0; i < nends; i++)
                    if (!strcmp(nm->s, ends[i])) {
                        next(p);
                        goto done;
                    }
                if (!strncmp(nm->s, "end", 3) || !strcmp(nm->s, "elif") || !strcmp(nm->s, "else"))
                    jp_fail(p, nm->line, nm->col, "unexpected '%s'%s%s%s", nm->s, nends ? ", expected '" : "",
                            nends ? ends[nends - 1] : "", nends ? "'" : "");
            }
            next(p);
            kids_add(p, &k, parse_stmt(p), NULL);
        } else {
            fail_at(p, t, "unexpected token");
        }
    }
done:
    p->depth--;
    kids_to(body, &k);
    return body;
}

/* ==== Entry points ==== */

lc_status lc_jinja_parse(const char *src, size_t len, lc_jinja_tmpl **out) {
    *out = NULL;
    if (!src) return lc_fail(LC_ERR_INVALID, "template source is NULL");
    lc_jinja_tmpl *t = lc_calloc(1, sizeof *t);
    if (!t) return LC_ERR_OOM;
    jparse *p = lc_calloc(1, sizeof *p);
    if (!p) {
        lc_free(t);
        return LC_ERR_OOM;
    }
    p->ar = &t->ar;
    if (setjmp(p->jb)) {
        lc_status st = lc_fail(LC_ERR_FORMAT, "template syntax error: %s", p->msg);
        lc_free(p);
        lc_jinja_free(t);
        return st;
    }
    jlex(p, src, len);
    t->root = parse_body(p, NULL, 0);
    lc_free(p);
    *out = t;
    return LC_OK;
}

void lc_jinja_free(lc_jinja_tmpl *t) {
    if (!t) return;
    ja_free(&t->ar);
    lc_free(t);
}
