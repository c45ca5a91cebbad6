/* json_mode.c — constrained sampling for the server: response_format json_object (and json_schema,
 * which is served as json_object: the reply is one valid JSON object, the schema itself is not
 * enforced) and forced tool calls (tool_choice "required" or a named function).
 *
 * Both are one small grammar: a sequence of segments, each either a choice among fixed strings
 * (sorted, so the strings still possible after a prefix are a contiguous range) or one JSON object
 * run by a pushdown automaton over bytes (RFC 8259, nesting up to 64, whitespace runs up to 24
 * bytes); after the last segment only end-of-generation tokens are allowed. Every step, tokens
 * whose piece would break the grammar (or strict UTF-8 inside strings) get -inf. When few tokens
 * remain (max_tokens), only tokens that bring the text closer to the end of the grammar are
 * allowed, so a reply cut by the length limit is still complete where that is possible. Also owns
 * the table of every token's piece. Entry points: serve_pieces_init, serve_json_constraint,
 * serve_grammar_constraint, serve_json_check.
 */
#include "server/server.h"

#include "model/model.h"
#include "text/tokenizer.h"

#include <math.h>
#include <string.h>

/* ==== Token pieces ==== */

lc_status serve_pieces_init(serve_model *sm) {
    const lc_tok *tok = sm->model->tok;
    int n = sm->n_vocab;
    sm->pieces = lc_calloc((size_t)n, sizeof *sm->pieces);
    sm->piece_len = lc_calloc((size_t)n, sizeof *sm->piece_len);
    sm->tok_flags = lc_calloc((size_t)n, 1);
    if (!sm->pieces || !sm->piece_len || !sm->tok_flags) return LC_ERR_OOM;
    char buf[512];
    for (int t = 0; t < n; t++) {
        int len = lc_tok_piece(tok, t, buf, (int)sizeof buf);
        if (len < 0 || len > (int)sizeof buf) len = 0;
        sm->pieces[t] = lc_strndup(buf, (size_t)len);
        if (!sm->pieces[t]) return LC_ERR_OOM;
        sm->piece_len[t] = (uint16_t)len;
        sm->tok_flags[t] = (uint8_t)((lc_tok_is_eog(tok, t) ? 1 : 0) | (lc_tok_is_control(tok, t) ? 2 : 0));
    }
    return LC_OK;
}

void serve_pieces_free(serve_model *sm) {
    for (int t = 0; sm->pieces && t < sm->n_vocab; t++) lc_free(sm->pieces[t]);
    lc_free(sm->pieces);
    lc_free(sm->piece_len);
    lc_free(sm->tok_flags);
    sm->pieces = NULL;
    sm->piece_len = NULL;
    sm->tok_flags = NULL;
}

/* ==== The JSON automaton ==== */

#define JMAX 64
#define JWS 24

enum {
    J_START, J_VALUE, J_ARR_FIRST, J_OBJ_FIRST, J_KEY, J_COLON, J_AFTER, J_STR, J_ESC, J_UESC,
    J_NUM_MINUS, J_NUM_ZERO, J_NUM_INT, J_NUM_DOT, J_NUM_FRAC, J_NUM_E, J_NUM_ESIGN, J_NUM_EXP, J_LIT, J_DONE,
};

typedef struct jstate {
    uint8_t mode, depth, pos, lit, ws, key;
    uint8_t u8, lo, hi; /* in a string: UTF-8 continuation bytes still due, and the next one's range */
    uint8_t sur;        /* surrogate pairs: 1 a low \\u escape must follow, 2 it has begun */
    uint16_t uv;        /* value of the \\u escape so far */
    uint8_t stack[JMAX];
} jstate;

static const char *const lits[] = {"true", "false", "null"};

static bool is_ws(unsigned c) { return c == ' ' || c == '\n' || c == '\t' || c == '\r'; }
static bool is_digit(unsigned c) { return c >= '0' && c <= '9'; }
static bool is_hex(unsigned c) { return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

static void after_close(jstate *s) { s->mode = s->depth ? J_AFTER : J_DONE; }

static bool push(jstate *s, uint8_t b) {
    if (s->depth >= JMAX) return false;
    s->stack[s->depth++] = b;
    s->mode = b == '{' ? J_OBJ_FIRST : J_ARR_FIRST;
    return true;
}

static bool start_value(jstate *s, unsigned c) {
    switch (c) {
    case '{': return push(s, '{');
    case '[': return push(s, '[');
    case '"': s->mode = J_STR; s->key = 0; return true;
    case '-': s->mode = J_NUM_MINUS; return true;
    case '0': s->mode = J_NUM_ZERO; return true;
    case 't': case 'f': case 'n':
        s->mode = J_LIT;
        s->lit = c == 't' ? 0 : c == 'f' ? 1 : 2;
        s->pos = 1;
        return true;
    default:
        if (c >= '1' && c <= '9') { s->mode = J_NUM_INT; return true; }
        return false;
    }
}

/* Advances s by one byte; false if the byte cannot continue a valid JSON object text. */
static bool jfeed(jstate *s, unsigned c) {
    switch (s->mode) {
    case J_STR:
        if (s->u8) { /* strict UTF-8, as jansson checks it: no overlongs, surrogates or > U+10FFFF */
            if (c < s->lo || c > s->hi) return false;
            s->u8--;
            s->lo = 0x80;
            s->hi = 0xBF;
            return true;
        }
        if (s->sur) { /* a high surrogate escape must be followed by a low one */
            if (c != '\\') return false;
            s->mode = J_ESC;
            return true;
        }
        if (c == '"') { s->mode = s->key ? J_COLON : J_AFTER; s->ws = 0; return true; }
        if (c == '\\') { s->mode = J_ESC; return true; }
        if (c < 0x80) return c >= 0x20;
        s->lo = 0x80;
        s->hi = 0xBF;
        if (c >= 0xC2 && c <= 0xDF) s->u8 = 1;
        else if (c >= 0xE0 && c <= 0xEF) {
            s->u8 = 2;
            if (c == 0xE0) s->lo = 0xA0;
            if (c == 0xED) s->hi = 0x9F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            s->u8 = 3;
            if (c == 0xF0) s->lo = 0x90;
            if (c == 0xF4) s->hi = 0x8F;
        } else return false;
        return true;
    case J_ESC:
        if (c && !s->sur && strchr("\"\\/bfnrt", (int)c)) { s->mode = J_STR; return true; }
        if (c == 'u') {
            s->mode = J_UESC;
            s->pos = 0;
            s->uv = 0;
            if (s->sur) s->sur = 2;
            return true;
        }
        return false;
    case J_UESC: {
        if (!is_hex(c)) return false;
        unsigned v = is_digit(c) ? c - '0' : (c | 0x20) - 'a' + 10;
        s->uv = (uint16_t)(s->uv * 16 + v);
        s->pos++;
        if (s->pos == 1 && s->sur == 2 && v != 0xD) return false;
        if (s->pos == 2) {
            bool low = s->uv >= 0xDC && s->uv <= 0xDF, high = s->uv >= 0xD8 && s->uv <= 0xDB;
            if (s->sur == 2 ? !low : low) return false;
            if (s->sur == 2) s->sur = 0;
            else if (high) s->sur = 1;
        }
        if (s->pos == 4) s->mode = J_STR;
        return true;
    }
    case J_LIT: {
        const char *w = lits[s->lit];
        if (c != (unsigned char)w[s->pos]) return false;
        if (!w[++s->pos]) s->mode = J_AFTER;
        return true;
    }
    case J_NUM_MINUS:
        if (c == '0') { s->mode = J_NUM_ZERO; return true; }
        if (c >= '1' && c <= '9') { s->mode = J_NUM_INT; return true; }
        return false;
    case J_NUM_DOT:
        if (is_digit(c)) { s->mode = J_NUM_FRAC; return true; }
        return false;
    case J_NUM_E:
        if (c == '+' || c == '-') { s->mode = J_NUM_ESIGN; return true; }
        if (is_digit(c)) { s->mode = J_NUM_EXP; return true; }
        return false;
    case J_NUM_ESIGN:
        if (is_digit(c)) { s->mode = J_NUM_EXP; return true; }
        return false;
    case J_NUM_ZERO:
    case J_NUM_INT:
    case J_NUM_FRAC:
    case J_NUM_EXP:
        if (is_digit(c) && s->mode != J_NUM_ZERO) return true;
        if (c == '.' && s->mode != J_NUM_FRAC && s->mode != J_NUM_EXP) { s->mode = J_NUM_DOT; return true; }
        if ((c == 'e' || c == 'E') && s->mode != J_NUM_EXP) { s->mode = J_NUM_E; return true; }
        s->mode = J_AFTER; /* the number ended: c is structural */
        s->ws = 0;
        return jfeed(s, c);
    default:
        break;
    }
    if (is_ws(c)) return s->mode != J_DONE && ++s->ws <= JWS;
    s->ws = 0;
    switch (s->mode) {
    case J_START: return c == '{' && push(s, '{');
    case J_ARR_FIRST:
        if (c == ']') { s->depth--; after_close(s); return true; }
        return start_value(s, c);
    case J_VALUE: return start_value(s, c);
    case J_OBJ_FIRST:
        if (c == '}') { s->depth--; after_close(s); return true; }
        if (c == '"') { s->mode = J_STR; s->key = 1; return true; }
        return false;
    case J_KEY:
        if (c == '"') { s->mode = J_STR; s->key = 1; return true; }
        return false;
    case J_COLON:
        if (c == ':') { s->mode = J_VALUE; return true; }
        return false;
    case J_AFTER: {
        uint8_t top = s->stack[s->depth - 1];
        if (c == ',') { s->mode = top == '{' ? J_KEY : J_VALUE; return true; }
        if ((c == '}' && top == '{') || (c == ']' && top == '[')) { s->depth--; after_close(s); return true; }
        return false;
    }
    default: return false;
    }
}

/* The fewest bytes that complete the object from s (e.g. J_KEY: `"":0` then the closers). */
static int jdist(const jstate *s) {
    int close = s->depth, key = s->key ? 2 : 0;
    switch (s->mode) {
    case J_START: return 2;
    case J_VALUE: return 1 + close;
    case J_KEY: return 4 + close;
    case J_COLON: return 2 + close;
    case J_STR: return s->u8 + (s->sur ? 6 : 0) + 1 + key + close;
    case J_ESC: return (s->sur ? 5 : 1) + 1 + key + close;
    case J_UESC: return 4 - s->pos + (s->sur == 1 ? 6 : 0) + 1 + key + close;
    case J_NUM_MINUS: case J_NUM_DOT: case J_NUM_E: case J_NUM_ESIGN: return 1 + close;
    case J_LIT: return (int)strlen(lits[s->lit]) - s->pos + close;
    case J_DONE: return 0;
    default: return close;
    }
}

/* Runs the automaton over text: false when it rejects a byte; *complete says whether the text is
 * a whole JSON object. For tests and the fuzz target. */
bool serve_json_check(const char *text, size_t len, bool *complete) {
    jstate s = {.mode = J_START};
    *complete = false;
    for (size_t i = 0; i < len; i++)
        if (!jfeed(&s, (unsigned char)text[i])) return false;
    *complete = s.mode == J_DONE;
    return true;
}

/* ==== The grammar constraint ==== */

/* One segment: a choice among sorted strings (n_alts > 0) or a JSON object (n_alts == 0). */
typedef struct gseg {
    char **alts;
    int *len;    /* strlen of each alternative, taken once (gdist reads them every step) */
    int n_alts;
    int min_len; /* the shortest alternative (2 for a JSON object: "{}") */
} gseg;

/* Where the grammar is: segment seg; in a choice, pos bytes matched and [lo,hi) the alternatives
 * still possible; in a JSON segment, the automaton. seg == n_segs: complete. */
typedef struct gstate {
    int seg, pos, lo, hi;
    jstate js;
} gstate;

typedef struct gcons {
    const serve_model *sm;
    gseg *segs;
    int n_segs;
    int *tail;   /* tail[i]: the fewest bytes of segments i+1.. */
    gstate st;
    uint8_t *dist; /* per token: bytes still needed after it (255 = not allowed) */
} gcons;

static void gseg_enter(const gcons *g, gstate *s, int seg) {
    s->seg = seg;
    s->pos = 0;
    s->lo = 0;
    s->hi = seg < g->n_segs ? g->segs[seg].n_alts : 0;
    memset(&s->js, 0, sizeof s->js);
    s->js.mode = J_START;
}

/* Advances s by one byte; false if the byte leaves the grammar. */
static bool gfeed(const gcons *g, gstate *s, unsigned c) {
    if (s->seg >= g->n_segs) return false;
    const gseg *sg = &g->segs[s->seg];
    if (!sg->n_alts) {
        if (!jfeed(&s->js, c)) return false;
        if (s->js.mode == J_DONE) gseg_enter(g, s, s->seg + 1);
        return true;
    }
    int lo = s->lo, hi = s->hi;
    while (lo < hi && (unsigned char)sg->alts[lo][s->pos] != c) lo++;
    while (hi > lo && (unsigned char)sg->alts[hi - 1][s->pos] != c) hi--;
    if (lo == hi) return false;
    s->lo = lo;
    s->hi = hi;
    s->pos++;
    if (!sg->alts[lo][s->pos]) gseg_enter(g, s, s->seg + 1); /* alternatives are prefix-free */
    return true;
}

/* The fewest bytes that complete the grammar from s. */
static int gdist(const gcons *g, const gstate *s) {
    if (s->seg >= g->n_segs) return 0;
    const gseg *sg = &g->segs[s->seg];
    int here;
    if (!sg->n_alts) here = jdist(&s->js);
    else {
        here = 1 << 20;
        for (int i = s->lo; i < s->hi; i++) here = LC_MIN(here, sg->len[i] - s->pos);
    }
    return here + g->tail[s->seg];
}

static bool gfeed_piece(const gcons *g, gstate *s, const char *p, int n) {
    for (int i = 0; i < n; i++)
        if (!gfeed(g, s, (unsigned char)p[i])) return false;
    return true;
}

/* Masks every token that would break the grammar. Budget: a token is allowed only if the text
 * can still be completed, and end-of-generation still sampled, in the tokens left after it (one
 * byte per token at worst), so a reply cut by max_tokens is still complete and ends with "stop";
 * if no token can keep that promise, the ones that get closest are allowed. */
static void gc_mask(void *ud, float *logits, int n_vocab, int n_left) {
    gcons *gc = ud;
    const serve_model *sm = gc->sm;
    bool done = gc->st.seg >= gc->n_segs;
    int budget = n_left - 2, best = 255;
    for (int t = 0; t < n_vocab; t++) {
        gc->dist[t] = 255;
        if (logits[t] == -INFINITY) continue;
        uint8_t f = sm->tok_flags[t];
        if (f & 1) {
            if (done) gc->dist[t] = 0;
        } else if (!done && !(f & 2) && sm->piece_len[t]) {
            gstate x = gc->st;
            if (gfeed_piece(gc, &x, sm->pieces[t], sm->piece_len[t])) gc->dist[t] = (uint8_t)LC_MIN(gdist(gc, &x), 254);
        }
        if (gc->dist[t] < best) best = gc->dist[t];
    }
    int limit = LC_MAX(LC_MIN(budget, 254), best);
    for (int t = 0; t < n_vocab; t++)
        if (gc->dist[t] > limit) logits[t] = -INFINITY;
}

static void gc_accept(void *ud, lc_token tok) {
    gcons *gc = ud;
    if (tok < 0 || tok >= gc->sm->n_vocab || (gc->sm->tok_flags[tok] & 1)) return;
    gstate x = gc->st;
    if (gfeed_piece(gc, &x, gc->sm->pieces[tok], gc->sm->piece_len[tok])) gc->st = x;
}

static void gc_free(void *ud) {
    gcons *gc = ud;
    if (!gc) return;
    for (int i = 0; i < gc->n_segs; i++) {
        for (int k = 0; k < gc->segs[i].n_alts; k++) lc_free(gc->segs[i].alts[k]);
        lc_free(gc->segs[i].alts);
        lc_free(gc->segs[i].len);
    }
    lc_free(gc->segs);
    lc_free(gc->tail);
    lc_free(gc->dist);
    lc_free(gc);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

lc_status serve_grammar_constraint(serve_model *sm, const serve_gseg *segs, int n, lc_sched_constraint *out) {
    gcons *gc = lc_calloc(1, sizeof *gc);
    if (!gc) return LC_ERR_OOM;
    gc->sm = sm;
    gc->segs = lc_calloc((size_t)LC_MAX(n, 1), sizeof *gc->segs);
    gc->tail = lc_calloc((size_t)LC_MAX(n, 1), sizeof *gc->tail);
    gc->dist = lc_malloc((size_t)sm->n_vocab);
    if (!gc->segs || !gc->tail || !gc->dist) goto oom;
    gc->n_segs = n;
    for (int i = 0; i < n; i++) {
        gseg *g = &gc->segs[i];
        g->min_len = 2;
        if (!segs[i].n_alts) continue;
        if (!(g->alts = lc_calloc((size_t)segs[i].n_alts, sizeof *g->alts)) ||
            !(g->len = lc_malloc((size_t)segs[i].n_alts * sizeof *g->len)))
            goto oom;
        g->min_len = 1 << 20;
        for (int k = 0; k < segs[i].n_alts; k++) {
            if (!(g->alts[k] = lc_strdup(segs[i].alts[k]))) goto oom;
            g->n_alts++;
            if (!g->alts[k][0]) {
                gc_free(gc);
                return lc_fail(LC_ERR_INVALID, "grammar: an empty alternative");
            }
        }
        qsort(g->alts, (size_t)g->n_alts, sizeof *g->alts, cmp_str);
        int u = 0; /* equal alternatives are one choice */
        for (int k = 0; k < g->n_alts; k++) {
            if (u && !strcmp(g->alts[u - 1], g->alts[k])) lc_free(g->alts[k]);
            else g->alts[u++] = g->alts[k];
        }
        g->n_alts = u;
        for (int k = 0; k < g->n_alts; k++) {
            g->len[k] = (int)strlen(g->alts[k]);
            g->min_len = LC_MIN(g->min_len, g->len[k]);
        }
        for (int k = 0; k + 1 < g->n_alts; k++)
            if (!strncmp(g->alts[k], g->alts[k + 1], (size_t)g->len[k])) {
                lc_status st = lc_fail(LC_ERR_INVALID, "grammar: alternative '%s' is a prefix of another", g->alts[k]);
                gc_free(gc);
                return st;
            }
    }
    for (int i = n - 1, acc = 0; i >= 0; i--) {
        gc->tail[i] = acc;
        acc += gc->segs[i].min_len;
    }
    gseg_enter(gc, &gc->st, 0);
    *out = (lc_sched_constraint){.ud = gc, .mask = gc_mask, .accept = gc_accept, .free = gc_free};
    return LC_OK;
oom:
    gc_free(gc);
    return lc_fail(LC_ERR_OOM, "grammar: out of memory");
}

lc_status serve_json_constraint(serve_model *sm, lc_sched_constraint *out) {
    serve_gseg one = {0};
    return serve_grammar_constraint(sm, &one, 1, out);
}
