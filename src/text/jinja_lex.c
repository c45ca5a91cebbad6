/* jinja_lex.c — the Jinja arena and lexer: splits template source into text and tag tokens.
 *
 * Whitespace control follows jinja2 as transformers configures it: trim_blocks (a block or
 * comment tag eats one newline after it), lstrip_blocks (spaces before a block or comment tag
 * at the start of a line are dropped), `{%-`/`-%}` strip all whitespace on that side, `{%+`
 * and `+%}` turn lstrip/trim off for that tag. One trailing newline of the source is dropped
 * (keep_trailing_newline=False). Entry points: ja_alloc, ja_free, jp_fail, jlex.
 */
#include "text/jinja_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ==== Arena ==== */

struct jchunk {
    jchunk *next;
    size_t used, cap;
    _Alignas(16) unsigned char data[];
};

/* Bump allocation in 16-byte units from chunks of at least 64 KiB; big requests get their own
 * chunk. Returns NULL when the system allocator fails or the arena's limit would be passed. */
void *ja_alloc(jarena *a, size_t n) {
    n = (n + 15) & ~(size_t)15;
    if (n == 0) n = 16;
    if (a->limit && (n > a->limit || a->used > a->limit - n)) return NULL;
    jchunk *h = a->head;
    if (!h || h->cap - h->used < n) {
        size_t cap = n > 65536 ? n : 65536;
        if (h && cap < h->cap * 2 && h->cap < (16u << 20)) cap = h->cap * 2;
        if (cap < n) cap = n;
        jchunk *c = lc_malloc(sizeof(jchunk) + cap);
        if (!c) return NULL;
        c->used = 0;
        c->cap = cap;
        if (h && h->cap - h->used >= 4096) { /* keep the roomier chunk in front */
            c->next = h->next;
            h->next = c;
            c->used = n;
            a->used += n;
            return c->data;
        }
        c->next = h;
        a->head = h = c;
    }
    void *p = h->data + h->used;
    h->used += n;
    a->used += n;
    return p;
}

void ja_free(jarena *a) {
    jchunk *c = a->head;
    while (c) {
        jchunk *next = c->next;
        lc_free(c);
        c = next;
    }
    a->head = NULL;
    a->used = 0;
}

/* Records a parse error at (line, col) and unwinds to lc_jinja_parse. */
_Noreturn void jp_fail(jparse *p, int line, int col, const char *fmt, ...) {
    char tmp[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    snprintf(p->msg, sizeof p->msg, "line %d, column %d: %s", line, col, tmp);
    longjmp(p->jb, 1);
}

/* ==== Lexer ==== */

typedef struct lexer {
    jparse *p;
    const char *src;
    size_t len;
    size_t pos;
    size_t lc_off; /* offset that line/col describe */
    int line, col;
    size_t cap;
} lexer;

static void *lx_alloc(lexer *L, size_t n) {
    void *q = ja_alloc(L->p->ar, n);
    if (!q) jp_fail(L->p, L->line, L->col, "out of memory");
    return q;
}

/* Moves the line/column bookkeeping forward to offset off (offsets only grow). */
static void lx_seek(lexer *L, size_t off) {
    for (size_t i = L->lc_off; i < off && i < L->len; i++) {
        if (L->src[i] == '\n') {
            L->line++;
            L->col = 1;
        } else if (((unsigned char)L->src[i] & 0xC0) != 0x80) {
            L->col++;
        }
    }
    if (off > L->lc_off) L->lc_off = off;
}

static jtok *lx_push(lexer *L, int type, size_t at) {
    jparse *p = L->p;
    if (p->ntok == L->cap) {
        size_t ncap = L->cap ? L->cap * 2 : 256;
        jtok *nt = lx_alloc(L, ncap * sizeof(jtok));
        if (p->ntok) memcpy(nt, p->toks, p->ntok * sizeof(jtok));
        p->toks = nt;
        L->cap = ncap;
    }
    lx_seek(L, at);
    jtok *t = &p->toks[p->ntok++];
    memset(t, 0, sizeof *t);
    t->type = (uint8_t)type;
    t->line = L->line;
    t->col = L->col;
    return t;
}

static bool is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }
static bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
static bool is_digit(char c) { return c >= '0' && c <= '9'; }

static void put_utf8(char *o, size_t *n, uint32_t cp) {
    if (cp < 0x80) {
        o[(*n)++] = (char)cp;
    } else if (cp < 0x800) {
        o[(*n)++] = (char)(0xC0 | (cp >> 6));
        o[(*n)++] = (char)(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        o[(*n)++] = (char)(0xE0 | (cp >> 12));
        o[(*n)++] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[(*n)++] = (char)(0x80 | (cp & 0x3F));
    } else {
        o[(*n)++] = (char)(0xF0 | (cp >> 18));
        o[(*n)++] = (char)(0x80 | ((cp >> 12) & 0x3F));
        o[(*n)++] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[(*n)++] = (char)(0x80 | (cp & 0x3F));
    }
}

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Reads a quoted string literal at L->pos, decoding Python escapes (\n, \t, \xhh, \uXXXX, ...);
 * an unknown escape keeps its backslash, as Python's unicode-escape does. */
static void lx_string(lexer *L) {
    const char *s = L->src;
    size_t start = L->pos;
    char q = s[start];
    size_t i = start + 1;
    while (i < L->len && s[i] != q) {
        if (s[i] == '\\' && i + 1 < L->len) i++;
        i++;
    }
    if (i >= L->len) {
        lx_seek(L, start);
        jp_fail(L->p, L->line, L->col, "unterminated string");
    }
    jtok *t = lx_push(L, T_STRING, start);
    char *o = lx_alloc(L, (i - start) * 2 + 8);
    size_t n = 0;
    for (size_t j = start + 1; j < i; j++) {
        char ch = s[j];
        if (ch != '\\' || j + 1 >= i) {
            o[n++] = ch;
            continue;
        }
        char e = s[++j];
        int digits = 0;
        switch (e) {
        case 'n': o[n++] = '\n'; break;
        case 't': o[n++] = '\t'; break;
        case 'r': o[n++] = '\r'; break;
        case '\\': o[n++] = '\\'; break;
        case '\'': o[n++] = '\''; break;
        case '"': o[n++] = '"'; break;
        case 'a': o[n++] = '\a'; break;
        case 'b': o[n++] = '\b'; break;
        case 'f': o[n++] = '\f'; break;
        case 'v': o[n++] = '\v'; break;
        case '0': o[n++] = '\0'; break;
        case '\n': break;
        case 'x': digits = 2; break;
        case 'u': digits = 4; break;
        case 'U': digits = 8; break;
        default: o[n++] = '\\'; o[n++] = e; break;
        }
        if (digits) {
            uint32_t cp = 0;
            int k;
            for (k = 0; k < digits && j + 1 + (size_t)k < i && hexval(s[j + 1 + k]) >= 0; k++)
                cp = cp * 16 + (uint32_t)hexval(s[j + 1 + k]);
            if (k < digits || cp > 0x10FFFF) {
                lx_seek(L, j);
                jp_fail(L->p, L->line, L->col, "bad \\%c escape in string", e);
            }
            put_utf8(o, &n, cp);
            j += (size_t)digits;
        }
    }
    o[n] = 0;
    t->s = o;
    t->n = n;
    L->pos = i + 1;
}

/* Reads a number at L->pos: an int, or a float when a '.' digit or an exponent follows. */
static void lx_number(lexer *L) {
    const char *s = L->src;
    size_t i = L->pos;
    char buf[128];
    size_t n = 0;
    bool is_float = false;
    while (i < L->len && (is_digit(s[i]) || (s[i] == '_' && i + 1 < L->len && is_digit(s[i + 1])))) {
        if (s[i] != '_' && n < sizeof buf - 8) buf[n++] = s[i];
        i++;
    }
    if (i + 1 < L->len && s[i] == '.' && is_digit(s[i + 1])) {
        is_float = true;
        buf[n++] = s[i++];
        while (i < L->len && (is_digit(s[i]) || s[i] == '_')) {
            if (s[i] != '_' && n < sizeof buf - 8) buf[n++] = s[i];
            i++;
        }
    }
    if (i < L->len && (s[i] == 'e' || s[i] == 'E')) {
        size_t j = i + 1;
        if (j < L->len && (s[j] == '+' || s[j] == '-')) j++;
        if (j < L->len && is_digit(s[j])) {
            is_float = true;
            buf[n++] = 'e';
            if (s[i + 1] == '-') buf[n++] = '-';
            i = j;
            while (i < L->len && is_digit(s[i])) {
                if (n < sizeof buf - 2) buf[n++] = s[i];
                i++;
            }
        }
    }
    buf[n] = 0;
    jtok *t = lx_push(L, is_float ? T_FLOAT : T_INT, L->pos);
    if (is_float) {
        t->f = strtod(buf, NULL);
    } else {
        errno = 0;
        unsigned long long v = strtoull(buf, NULL, 10);
        if (errno || v > (unsigned long long)INT64_MAX)
            jp_fail(L->p, t->line, t->col, "integer literal too large");
        t->i = (int64_t)v;
    }
    L->pos = i;
}

/* Tokenizes the inside of a tag from L->pos up to its end marker; returns the offset just
 * past the marker and sets *dash and *plus for the marker's modifier. */
static size_t lx_tag(lexer *L, bool block, bool *dash, bool *plus) {
    const char *s = L->src;
    static const char *ops2[] = {"//", "**", "==", "!=", "<=", ">="};
    int depth = 0; /* open brackets: "}}" inside a dict literal does not end the tag */
    for (;;) {
        while (L->pos < L->len && is_ws(s[L->pos])) L->pos++;
        size_t i = L->pos;
        if (i >= L->len) {
            lx_seek(L, i);
            jp_fail(L->p, L->line, L->col, "unexpected end of template, expected '%s'", block ? "%}" : "}}");
        }
        char e = block ? '%' : '}';
        *dash = *plus = false;
        if (depth > 0) goto token;
        if ((s[i] == '-' || (block && s[i] == '+')) && i + 2 < L->len && s[i + 1] == e && s[i + 2] == '}') {
            *dash = s[i] == '-';
            *plus = s[i] == '+';
            lx_push(L, block ? T_BLOCK_END : T_VAR_END, i);
            return i + 3;
        }
        if (s[i] == e && i + 1 < L->len && s[i + 1] == '}') {
            lx_push(L, block ? T_BLOCK_END : T_VAR_END, i);
            return i + 2;
        }
    token:;
        char c = s[i];
        if (is_alpha(c)) {
            size_t j = i;
            while (j < L->len && (is_alpha(s[j]) || is_digit(s[j]))) j++;
            jtok *t = lx_push(L, T_NAME, i);
            char *nm = lx_alloc(L, j - i + 1);
            memcpy(nm, s + i, j - i);
            nm[j - i] = 0;
            t->s = nm;
            t->n = j - i;
            L->pos = j;
        } else if (is_digit(c)) {
            lx_number(L);
        } else if (c == '\'' || c == '"') {
            lx_string(L);
        } else {
            size_t n = 0;
            for (size_t k = 0; k < LC_ARRAY_LEN(ops2); k++)
                if (i + 1 < L->len && s[i] == ops2[k][0] && s[i + 1] == ops2[k][1]) n = 2;
            if (!n && strchr("+-*/%~<>=.,:|()[]{}", c) && c) n = 1;
            if (!n) {
                lx_seek(L, i);
                if ((unsigned char)c < 0x20 || (unsigned char)c >= 0x7F)
                    jp_fail(L->p, L->line, L->col, "unexpected character 0x%02x", (unsigned char)c);
                jp_fail(L->p, L->line, L->col, "unexpected character '%c'", c);
            }
            if (n == 1 && (c == '(' || c == '[' || c == '{')) depth++;
            if (n == 1 && (c == ')' || c == ']' || c == '}') && depth > 0) depth--;
            jtok *t = lx_push(L, T_OP, i);
            t->s = s + i; /* points into the source only while lexing; copied below */
            t->n = n;
            char *o = lx_alloc(L, 3);
            memcpy(o, s + i, n);
            o[n] = 0;
            t->s = o;
            L->pos = i + n;
        }
    }
}

static void lx_text(lexer *L, size_t at, const char *s, size_t n) {
    if (!n) return;
    jtok *t = lx_push(L, T_TEXT, at);
    char *o = lx_alloc(L, n + 1);
    memcpy(o, s, n);
    o[n] = 0;
    t->s = o;
    t->n = n;
}

/* Finds the next "{{", "{%" or "{#" at or after from; returns len when there is none. */
static size_t find_open(const char *s, size_t len, size_t from) {
    for (size_t i = from; i + 1 < len; i++) {
        const char *q = memchr(s + i, '{', len - 1 - i);
        if (!q) return len;
        i = (size_t)(q - s);
        char c = s[i + 1];
        if (c == '{' || c == '%' || c == '#') return i;
    }
    return len;
}

/* Tokenizes the whole template into p->toks, ending with T_EOF. */
void jlex(jparse *p, const char *src, size_t len) {
    lexer L = {.p = p, .src = src, .len = len, .line = 1, .col = 1};
    if (len && src[len - 1] == '\n') len--; /* keep_trailing_newline=False */
    if (len && src[len - 1] == '\r' && len < L.len) len--;
    L.len = len;
    bool line_starting = true;
    while (L.pos < len) {
        size_t start = find_open(src, len, L.pos);
        const char *text = src + L.pos;
        size_t tn = start - L.pos;
        if (start >= len) {
            lx_text(&L, L.pos, text, tn);
            L.pos = len;
            break;
        }
        char kind = src[start + 1];
        char mod = start + 2 < len ? src[start + 2] : 0;
        if (mod == '-') {
            while (tn && is_ws(text[tn - 1])) tn--;
        } else if (kind != '{' && mod != '+') {
            size_t l = tn;
            while (l && text[l - 1] != '\n') l--;
            if (l > 0 || line_starting) {
                size_t k = l;
                while (k < tn && is_ws(text[k])) k++;
                if (k == tn) tn = l;
            }
        }
        lx_text(&L, L.pos, text, tn);
        size_t after;
        bool dash = false, plus = false;
        if (kind == '#') {
            size_t i = start + 2;
            while (i + 1 < len && !(src[i] == '#' && src[i + 1] == '}')) i++;
            if (i + 1 >= len) {
                lx_seek(&L, start);
                jp_fail(p, L.line, L.col, "missing end of comment tag");
            }
            dash = i > start + 2 && src[i - 1] == '-';
            plus = i > start + 2 && src[i - 1] == '+';
            after = i + 2;
        } else {
            lx_push(&L, kind == '{' ? T_VAR_BEGIN : T_BLOCK_BEGIN, start);
            L.pos = start + 2 + ((mod == '-' || (mod == '+' && kind == '%')) ? 1 : 0);
            after = lx_tag(&L, kind == '%', &dash, &plus);
        }
        if (dash) {
            while (after < len && is_ws(src[after])) after++;
        } else if (kind != '{' && !plus && after < len && src[after] == '\n') {
            after++;
        }
        line_starting = after > 0 && src[after - 1] == '\n';
        L.pos = after;
    }
    lx_push(&L, T_EOF, L.pos < L.len ? L.pos : L.len);
}
