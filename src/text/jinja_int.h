/* jinja_int.h — shared internals of the Jinja engine: the arena, the value model, the syntax
 * tree and the evaluation context, used by jinja_lex.c, jinja_parse.c, jinja_value.c,
 * jinja_eval.c, jinja_filters.c and jinja_methods.c. Nothing here is API.
 *
 * Errors inside the engine unwind with longjmp to the entry point (as Lua's lua_error does);
 * this is safe because every allocation made while parsing or rendering lives in an arena that
 * the entry point frees as a whole.
 */
#ifndef LC_JINJA_INT_H
#define LC_JINJA_INT_H

#include "text/jinja.h"

#include <setjmp.h>

/* ==== Arena ==== */

typedef struct jchunk jchunk;
typedef struct jarena {
    jchunk *head;
    size_t used;  /* bytes handed out so far */
    size_t limit; /* 0 = unlimited */
} jarena;

/* ==== Values ==== */

typedef enum jkind {
    JV_UNDEF, JV_NONE, JV_BOOL, JV_INT, JV_FLOAT, JV_STR, JV_LIST, JV_DICT,
    JV_MACRO, JV_BOUND, JV_FUNC, JV_LOOP,
} jkind;

/* JF_GEN marks a list that jinja2 would hold as a lazy generator (map, select, unique, ...):
 * always true, no len(), not subscriptable, not JSON serializable. */
enum { JF_TUPLE = 1, JF_NS = 2, JF_GEN = 4, JF_SAFE = 8 /* Markup string (|safe, |escape) */ };

typedef struct jstr { size_t n; char s[]; } jstr;
typedef struct jlist jlist;
typedef struct jdict jdict;
typedef struct jbound jbound;
typedef struct jmacro jmacro;
typedef struct jloop jloop;

typedef struct jv {
    uint8_t kind;
    uint8_t flags;
    union {
        bool b;
        int64_t i;
        double f;
        jstr *s;
        jlist *l;
        jdict *d;
        jmacro *m;
        jbound *bd;
        const char *name; /* JV_UNDEF: the missing name (may be NULL); JV_FUNC: the global */
        jloop *loop;
    };
} jv;

struct jlist { size_t n, cap; jv *v; };
struct jdict { size_t n, cap; jv *k; jv *v; };
struct jbound { jv self; const char *name; };

/* ==== Syntax tree ==== */

typedef enum jnk {
    /* expressions */
    N_LIT, N_NAME, N_LIST, N_TUPLE, N_DICT, N_ATTR, N_INDEX, N_SLICE, N_CALL, N_FILTER,
    N_TEST, N_NEG, N_POS, N_NOT, N_AND, N_OR, N_BIN, N_CMP, N_COND,
    /* statements */
    N_BODY, N_TEXT, N_OUT, N_IF, N_FOR, N_SET, N_SETBLOCK, N_MACRO, N_CALLBLOCK, N_FILTERBLOCK,
    N_BREAK, N_CONTINUE,
} jnk;

typedef enum jop {
    OP_ADD, OP_SUB, OP_MUL, OP_DIV, OP_FLOORDIV, OP_MOD, OP_POW, OP_CONCAT,
    OP_EQ, OP_NE, OP_LT, OP_LE, OP_GT, OP_GE, OP_IN, OP_NOTIN,
} jop;

typedef struct jnode jnode;
struct jnode {
    uint8_t kind;
    uint8_t op;
    bool flag;            /* N_TEST: negated; N_FOR: recursive */
    int line, col;
    jnode *a, *b, *c, *d, *e;
    jnode **kids;         /* list items, dict k/v pairs, call args, body statements, params */
    const char **names;   /* call: keyword names (NULL for positional); macro: param names */
    int n;                /* number of kids */
    const char *str;      /* N_NAME, N_ATTR, N_FILTER, N_TEST, N_MACRO name; N_TEXT text */
    size_t len;           /* N_TEXT length */
    jv lit;               /* N_LIT */
};

struct jmacro {
    const jnode *def;       /* N_MACRO */
    struct jframe *closure; /* scope it was defined in */
    const jnode *caller;    /* for the caller() of a call block: the body */
    bool is_caller;
};

/* ==== Lexer ==== */

typedef enum jtk {
    T_EOF, T_TEXT, T_VAR_BEGIN, T_VAR_END, T_BLOCK_BEGIN, T_BLOCK_END,
    T_NAME, T_STRING, T_INT, T_FLOAT, T_OP,
} jtk;

typedef struct jtok {
    uint8_t type;
    int line, col;
    const char *s; /* text, name, op, or decoded string (arena) */
    size_t n;
    int64_t i;
    double f;
} jtok;

/* ==== Parse state ==== */

typedef struct jparse {
    jarena *ar;
    jmp_buf jb;
    char msg[256];
    jtok *toks;
    size_t ntok, pos;
    int depth;
} jparse;

struct lc_jinja_tmpl {
    jarena ar;
    jnode *root;
};

/* ==== Evaluation context ==== */

typedef struct jframe jframe;
struct jframe {
    jframe *parent;
    size_t n, cap;
    const char **names;
    jv *vals;
};

typedef struct jbuf { char *p; size_t n, cap; } jbuf;

struct jloop {
    jlist *items;
    size_t index0;
    int depth0;
    const jnode *rec;  /* N_FOR node when recursive */
    jframe *frame;
};

typedef struct jctx {
    jarena ar;
    jmp_buf jb;
    lc_status st;
    char msg[512];
    int line;           /* line of the statement being evaluated */
    jbuf *out;          /* the render's output */
    jbuf *w;            /* where output goes now (out, or a capture for macro/set/filter) */
    int calls;          /* nested macro calls */
    size_t max_output;
    long iterations, max_iterations;
    int depth, max_depth;
    long long fixed_time;
    jframe *scope; /* innermost scope: `set` writes here */
} jctx;

/* ==== jinja_lex.c / jinja_parse.c ==== */

void *ja_alloc(jarena *a, size_t n); /* NULL when out of memory or over the limit */
void ja_free(jarena *a);
_Noreturn void jp_fail(jparse *p, int line, int col, const char *fmt, ...) LC_PRINTF(4, 5);
void jlex(jparse *p, const char *src, size_t len);
jnode *jparse_template(jparse *p);

/* ==== jinja_value.c ==== */

_Noreturn void jx_fail(jctx *c, const char *fmt, ...) LC_PRINTF(2, 3);
void *jx_alloc(jctx *c, size_t n);
jv jv_undef(const char *name);
jv jv_none(void);
jv jv_bool(bool b);
jv jv_int(int64_t i);
jv jv_float(double f);
jv jv_strn(jctx *c, const char *s, size_t n);
jv jv_cstr(jctx *c, const char *s);
jv jv_list(jctx *c, size_t cap);
jv jv_dict(jctx *c);
void jl_push(jctx *c, jlist *l, jv v);
void jd_set(jctx *c, jdict *d, jv k, jv v);
jv *jd_get(const jdict *d, jv k);
jv *jd_gets(const jdict *d, const char *key);
jv jv_from_json(jctx *c, const json_t *j);
bool jv_truthy(jv v);
bool jv_eq(jv a, jv b);
int jv_cmp(jctx *c, jv a, jv b); /* <0, 0, >0; raises on incomparable types */
const char *jv_typename(jv v);
void jb_put(jctx *c, jbuf *b, const char *s, size_t n);
void jb_puts(jctx *c, jbuf *b, const char *s);
void jv_str(jctx *c, jbuf *b, jv v);  /* Python str() */
void jv_repr(jctx *c, jbuf *b, jv v); /* Python repr() */
void jv_repr_str(jctx *c, jbuf *b, const char *s, size_t n);
void jv_float_repr(char *buf, size_t cap, double f);
jv jv_to_string(jctx *c, jv v); /* str() as a string value */
/* json.dumps(v, ensure_ascii=False, indent=indent (<0: None), sort_keys). */
void jv_tojson(jctx *c, jbuf *b, jv v, int indent, bool sort_keys, int level);
jlist *jv_iter(jctx *c, jv v);     /* the items a for loop visits (dict: keys) */
size_t ju_len(const char *s, size_t n); /* code points in UTF-8 */

/* ==== jinja_eval.c ==== */

jv jeval(jctx *c, const jnode *n);
jv jcall_value(jctx *c, jv fn, jv *args, const char **names, int nargs);

/* ==== jinja_filters.c ==== */

jv jfilter(jctx *c, const char *name, jv v, jv *args, const char **names, int nargs);
bool jtest(jctx *c, const char *name, jv v, jv *args, int nargs);
bool jfilter_known(const char *name);
bool jtest_known(const char *name);

/* ==== jinja_methods.c ==== */

jv jgetattr(jctx *c, jv obj, const char *name);
jv jgetitem(jctx *c, jv obj, jv key);
jv jcall_method(jctx *c, jv self, const char *name, jv *args, const char **names, int nargs);
/* String helpers shared with the filters. mode: 0 upper, 1 lower, 2 str.title, 3 capitalize. */
jv jstr_strip(jctx *c, jv s, jv *chars, bool left, bool right);
jv jstr_replace(jctx *c, jv s, jv old, jv new, int64_t count);
jv jstr_case(jctx *c, jv s, int mode);
jv jstr_center(jctx *c, jv s, int64_t width);
/* markupsafe.escape of a string (& < > " ' as entities); a JF_SAFE string is returned as is. */
jv jstr_escape(jctx *c, jv s);
jv jcall_global(jctx *c, const char *name, jv *args, const char **names, int nargs);
bool jis_global(const char *name);
/* The argument named kw, or positional argument pos, or NULL. */
jv *jarg(jv *args, const char **names, int nargs, int pos, const char *kw);

#endif /* LC_JINJA_INT_H */
