/* outparse.c — the incremental output parser behind outparse.h.
 *
 * Owns: one state machine per generation over a pending buffer. In each state a small set of
 * marker strings is searched; the text before the earliest marker goes to the state's sink
 * (content, reasoning or a tool-call body), and a tail that might still become a marker is
 * held. Tool-call bodies are parsed with jansson and their arguments are re-emitted as compact
 * text cut from the model's own JSON (so numbers keep their spelling). Deliberately not here:
 * schema validation, stop strings. Entry points: lc_outparse_create/feed/finish/result.
 */
#include "text/outparse.h"

#include <jansson.h>
#include <string.h>

/* ==== Formats and options ==== */

lc_out_format lc_outparse_detect(const char *t) {
    if (!t) return LC_FMT_PLAIN;
    if (strstr(t, "<|channel|>")) return LC_FMT_HARMONY;
    if (strstr(t, "[TOOL_CALLS]")) return LC_FMT_MISTRAL;
    if (strstr(t, "<tool_call>")) return LC_FMT_HERMES;
    if (strstr(t, "<|python_tag|>") || (strstr(t, "ipython") && strstr(t, "\"parameters\"")))
        return LC_FMT_LLAMA3;
    return LC_FMT_PLAIN;
}

/* The formats' call spelling, as the parser below reads it back. */
static const lc_call_syntax call_syntaxes[] = {
    {LC_FMT_HERMES, "<tool_call>\n{\"name\": ", ", \"arguments\": ", "}\n</tool_call>"},
    {LC_FMT_LLAMA3, "{\"name\": ", ", \"parameters\": ", "}"},
    {LC_FMT_MISTRAL, "[TOOL_CALLS][{\"name\": ", ", \"arguments\": ", "}]"},
};

const lc_call_syntax *lc_outparse_call_syntax(lc_out_format format) {
    for (size_t i = 0; i < sizeof call_syntaxes / sizeof *call_syntaxes; i++)
        if (call_syntaxes[i].format == format) return &call_syntaxes[i];
    return NULL;
}

lc_outparse_opts lc_outparse_opts_default(void) {
    lc_outparse_opts o;
    memset(&o, 0, sizeof o);
    return o;
}

/* Reasoning markers by family, most specific first (Seed's template also mentions <think>). */
static const struct {
    const char *open, *close;
} think_markers[] = {
    {"<seed:think>", "</seed:think>"},
    {"<|START_THINKING|>", "<|END_THINKING|>"},
    {"[THINK]", "[/THINK]"},
    {"<think>", "</think>"},
};

void lc_outparse_opts_from_template(const char *t, lc_outparse_opts *o) {
    o->format = lc_outparse_detect(t);
    o->think_open = o->think_close = NULL;
    if (!t || o->format == LC_FMT_HARMONY) return;
    for (size_t i = 0; i < LC_ARRAY_LEN(think_markers); i++)
        if (strstr(t, think_markers[i].open)) {
            o->think_open = think_markers[i].open;
            o->think_close = think_markers[i].close;
            return;
        }
}

/* ==== Parser state ==== */

typedef enum pstate {
    S_CONTENT,   /* plain content; watching for tool-call openers (and reasoning at the start) */
    S_REASON,    /* inside a reasoning block, until think_close */
    S_HERMES,    /* inside <tool_call>, until </tool_call> */
    S_JSON_WAIT, /* skipping whitespace before a JSON body (what follows depends on jkind) */
    S_JSON,      /* inside a JSON body, until its brackets balance */
    S_MIS_NAME,  /* Mistral [TOOL_CALLS]name[ARGS]: reading the name */
    S_H_HEADER,  /* harmony: between messages, until <|message|> */
    S_H_MSG,     /* harmony: a message body, until <|end|>, <|call|>, <|return|> */
} pstate;

typedef enum jkind { J_LLAMA, J_MIS_CALLS, J_MIS_ARGS } jkind;
typedef enum hkind { H_CONTENT, H_REASON, H_TOOL } hkind;

/* Whitespace policy for one output field: leading whitespace dropped, trailing held. */
typedef struct sink {
    bool started;
    lc_str ws;
} sink;

struct lc_outparse {
    lc_outparse_opts o;
    pstate st;
    lc_str pend; /* fed text; pend[pos..] not yet consumed */
    size_t pos;
    bool at_start;        /* no content or call yet: start-only markers may match */
    bool think_seen;      /* a reasoning block was opened (it opens at most once) */
    bool reason_at_start; /* in S_REASON before any reasoning: a repeated opener is skipped */
    jkind jk;
    hkind hk;
    int depth;
    bool in_str, esc;
    lc_str tbuf; /* tool-call body */
    lc_str raw;  /* raw opener text given back as content if the call fails */
    lc_str name; /* Mistral function name / harmony recipient */
    lc_str hdr;  /* harmony header */
    sink cs, rs;
    lc_outparse_final res;
    lc_outparse_delta *d; /* the delta of the feed in progress */
    uint64_t rng;
    bool oom, finished;
};

static bool isws(char c) { return c == ' ' || c == '\n' || c == '\t' || c == '\r'; }

static void put(lc_outparse *p, lc_str *s, const char *t, size_t n) {
    if (n && !lc_str_append(s, t, n)) p->oom = true;
}

lc_status lc_outparse_create(const lc_outparse_opts *o, lc_outparse **out) {
    *out = NULL;
    if (!o || (unsigned)o->format > LC_FMT_HARMONY)
        return lc_fail(LC_ERR_INVALID, "outparse: unknown output format");
    if (!o->think_open != !o->think_close || (o->think_open && (!*o->think_open || !*o->think_close)))
        return lc_fail(LC_ERR_INVALID, "outparse: reasoning markers must come in non-empty pairs");
    lc_outparse *p = lc_calloc(1, sizeof *p);
    if (!p) return LC_ERR_OOM;
    p->o = *o;
    p->at_start = true;
    p->rng = o->seed ^ 0x6c6f6361726130ull; /* "locara0": seed 0 still gives varied ids */
    if (o->format == LC_FMT_HARMONY) {
        p->st = S_H_HEADER;
    } else if (o->starts_in_reasoning && o->think_open) {
        p->st = S_REASON;
        p->think_seen = p->reason_at_start = true;
    }
    *out = p;
    return LC_OK;
}

static void free_calls(lc_tool_call *c, int n) {
    for (int i = 0; i < n; i++) {
        lc_free(c[i].name);
        lc_free(c[i].arguments);
    }
}

void lc_outparse_free(lc_outparse *p) {
    if (!p) return;
    lc_str_free(&p->pend);
    lc_str_free(&p->tbuf);
    lc_str_free(&p->raw);
    lc_str_free(&p->name);
    lc_str_free(&p->hdr);
    lc_str_free(&p->cs.ws);
    lc_str_free(&p->rs.ws);
    lc_str_free(&p->res.content);
    lc_str_free(&p->res.reasoning);
    free_calls(p->res.calls, p->res.n_calls);
    lc_free(p->res.calls);
    lc_free(p);
}

void lc_outparse_delta_clear(lc_outparse_delta *d) {
    lc_str_clear(&d->content);
    lc_str_clear(&d->reasoning);
    free_calls(d->calls, d->n_calls);
    d->n_calls = 0;
}

void lc_outparse_delta_free(lc_outparse_delta *d) {
    lc_outparse_delta_clear(d);
    lc_str_free(&d->content);
    lc_str_free(&d->reasoning);
    lc_free(d->calls);
    d->calls = NULL;
    d->cap_calls = 0;
}

const lc_outparse_final *lc_outparse_result(const lc_outparse *p) { return &p->res; }

/* ==== Sinks: content and reasoning with the whitespace policy ==== */

/* Releases t[0..n) to content (reasoning when r): leading whitespace of the field is dropped,
 * trailing whitespace is held until something else follows it, so the stream and the final
 * result never start or end with whitespace and gaps around tool calls do not leak. */
static void emit_text(lc_outparse *p, bool r, const char *t, size_t n) {
    sink *k = r ? &p->rs : &p->cs;
    lc_str *res = r ? &p->res.reasoning : &p->res.content;
    lc_str *dl = r ? &p->d->reasoning : &p->d->content;
    size_t a = 0;
    while (a < n && isws(t[a])) a++;
    if (a == n) {
        if (k->started) put(p, &k->ws, t, n);
        return;
    }
    if (!k->started) {
        k->started = true;
        t += a;
        n -= a;
    } else if (k->ws.len) {
        put(p, res, k->ws.buf, k->ws.len);
        put(p, dl, k->ws.buf, k->ws.len);
        lc_str_clear(&k->ws);
    }
    size_t b = n;
    while (b > 0 && isws(t[b - 1])) b--;
    put(p, res, t, b);
    put(p, dl, t, b);
    put(p, &k->ws, t + b, n - b);
    if (!r) p->at_start = false;
}

static void emit_content(lc_outparse *p, const char *t, size_t n) { emit_text(p, false, t, n); }

/* Gives a failed call back as content: the opener's raw text, then the body, then `tail`. */
static void give_back(lc_outparse *p, const char *tail) {
    emit_content(p, p->raw.buf ? p->raw.buf : "", p->raw.len);
    emit_content(p, p->tbuf.buf ? p->tbuf.buf : "", p->tbuf.len);
    if (tail) emit_content(p, tail, strlen(tail));
    lc_str_clear(&p->raw);
    lc_str_clear(&p->tbuf);
    p->st = S_CONTENT;
}

/* ==== Tool calls ==== */

static bool grow_calls(lc_outparse *p, lc_tool_call **arr, size_t *cap, int n) {
    if (lc_grow((void **)arr, sizeof **arr, cap, (size_t)n + 1)) return true;
    p->oom = true;
    return false;
}

/* Records a complete call (name[0..nn), arguments args[0..na)) in the result and the delta,
 * with a fresh id: "call_" + 24 characters from [A-Za-z0-9], drawn from the seeded RNG. */
static void emit_call(lc_outparse *p, const char *name, size_t nn, const char *args, size_t na) {
    static const char alnum[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    lc_tool_call c;
    memset(&c, 0, sizeof c);
    c.index = p->res.n_calls;
    memcpy(c.id, "call_", 5);
    for (int i = 0; i < 24; i++) {
        uint64_t z = (p->rng += 0x9E3779B97F4A7C15ull);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        z ^= z >> 31;
        c.id[5 + i] = alnum[z % 62];
    }
    lc_outparse_delta *d = p->d;
    if (!grow_calls(p, &p->res.calls, &p->res.cap_calls, p->res.n_calls)) return;
    if (!grow_calls(p, &d->calls, &d->cap_calls, d->n_calls)) return;
    lc_tool_call r = c, dc = c;
    r.name = lc_strndup(name, nn);
    r.arguments = lc_strndup(args, na);
    dc.name = lc_strndup(name, nn);
    dc.arguments = lc_strndup(args, na);
    if (!r.name || !r.arguments || !dc.name || !dc.arguments) {
        lc_free(r.name), lc_free(r.arguments), lc_free(dc.name), lc_free(dc.arguments);
        p->oom = true;
        return;
    }
    p->res.calls[p->res.n_calls++] = r;
    d->calls[d->n_calls++] = dc;
    p->at_start = false;
}

/* ---- Spans in JSON text that jansson has already accepted ---- */

static size_t skip_ws(const char *s, size_t n, size_t i) {
    while (i < n && isws(s[i])) i++;
    return i;
}

/* s[i] starts a JSON value; returns the index just past it. */
static size_t value_end(const char *s, size_t n, size_t i) {
    if (i >= n) return n;
    if (s[i] == '"') {
        for (i++; i < n; i++) {
            if (s[i] == '\\') i++;
            else if (s[i] == '"') return i + 1;
        }
        return n;
    }
    if (s[i] == '{' || s[i] == '[') {
        int depth = 0;
        bool str = false;
        for (; i < n; i++) {
            char c = s[i];
            if (str) {
                if (c == '\\') i++;
                else if (c == '"') str = false;
            } else if (c == '"') {
                str = true;
            } else if (c == '{' || c == '[') {
                depth++;
            } else if ((c == '}' || c == ']') && --depth == 0) {
                return i + 1;
            }
        }
        return n;
    }
    while (i < n && !isws(s[i]) && s[i] != ',' && s[i] != '}' && s[i] != ']') i++;
    return i;
}

/* Finds the value of top-level member `key` in the object starting at s[i]; sets [*b, *e). */
static bool member_span(const char *s, size_t n, size_t i, const char *key, size_t *b, size_t *e) {
    size_t kl = strlen(key);
    i = skip_ws(s, n, i);
    if (i >= n || s[i] != '{') return false;
    i++;
    for (;;) {
        i = skip_ws(s, n, i);
        if (i >= n || s[i] != '"') return false;
        size_t ke = value_end(s, n, i);
        bool match = ke - i == kl + 2 && memcmp(s + i + 1, key, kl) == 0;
        i = skip_ws(s, n, ke);
        if (i >= n || s[i] != ':') return false;
        i = skip_ws(s, n, i + 1);
        size_t ve = value_end(s, n, i);
        if (match) {
            *b = i;
            *e = ve;
            return true;
        }
        i = skip_ws(s, n, ve);
        if (i >= n || s[i] != ',') return false;
        i++;
    }
}

/* Appends s[0..n) without the whitespace outside strings: OpenAI's compact arguments text. */
static void compact(lc_outparse *p, lc_str *out, const char *s, size_t n) {
    bool str = false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (str) {
            put(p, out, s + i, 1);
            if (c == '\\' && i + 1 < n) put(p, out, s + ++i, 1);
            else if (c == '"') str = false;
        } else if (!isws(c)) {
            put(p, out, s + i, 1);
            if (c == '"') str = true;
        }
    }
}

/* The arguments of a call object (text s[i..] parsed as obj): "arguments" or "parameters";
 * an object is compacted from the text, a string (some models double-encode) is taken as it
 * is, a missing one is "{}". Fills args; returns false if the value is not usable. */
static bool call_args(lc_outparse *p, const char *s, size_t n, size_t i, json_t *obj, lc_str *args) {
    const char *key = json_object_get(obj, "arguments") ? "arguments"
                      : json_object_get(obj, "parameters") ? "parameters" : NULL;
    if (!key) return lc_str_append(args, "{}", 2);
    json_t *v = json_object_get(obj, key);
    if (json_is_string(v)) {
        put(p, args, json_string_value(v), json_string_length(v));
        return true;
    }
    if (!json_is_object(v)) return false;
    size_t b, e;
    if (!member_span(s, n, i, key, &b, &e)) return false;
    compact(p, args, s + b, e - b);
    return true;
}

/* One call object {"name": .., "arguments"|"parameters": ..} at s[i..]: emits it. With
 * need_args, an object without arguments is not a call (Llama 3: a plain JSON answer). */
static bool call_object(lc_outparse *p, const char *s, size_t n, size_t i, json_t *obj,
                        bool need_args) {
    json_t *nm = json_object_get(obj, "name");
    if (!json_is_object(obj) || !json_is_string(nm) || json_string_length(nm) == 0) return false;
    if (need_args && !json_object_get(obj, "arguments") && !json_object_get(obj, "parameters"))
        return false;
    lc_str args = {0};
    bool ok = call_args(p, s, n, i, obj, &args);
    if (ok) emit_call(p, json_string_value(nm), json_string_length(nm), args.buf, args.len);
    lc_str_free(&args);
    return ok;
}

/* Parses tbuf as one call object or (list) an array of them; every element must be a call
 * for any to be emitted (so a failure gives the whole text back). */
static bool parse_calls(lc_outparse *p, bool list, bool need_args) {
    const char *s = p->tbuf.buf ? p->tbuf.buf : "";
    size_t n = p->tbuf.len;
    json_error_t err;
    json_t *v = json_loadb(s, n, 0, &err);
    if (!v) return false;
    bool ok = false;
    if (json_is_object(v)) {
        json_t *nm = json_object_get(v, "name");
        ok = json_is_string(nm) && json_string_length(nm) > 0 &&
             (!need_args || json_object_get(v, "arguments") || json_object_get(v, "parameters"));
        if (ok) ok = call_object(p, s, n, 0, v, need_args);
    } else if (list && json_is_array(v) && json_array_size(v) > 0) {
        ok = true;
        for (size_t k = 0; k < json_array_size(v) && ok; k++) {
            json_t *e = json_array_get(v, k);
            json_t *nm = json_object_get(e, "name");
            ok = json_is_object(e) && json_is_string(nm) && json_string_length(nm) > 0;
        }
        size_t i = skip_ws(s, n, 0) + 1; /* past '[' */
        for (size_t k = 0; k < json_array_size(v) && ok; k++) {
            i = skip_ws(s, n, i);
            ok = call_object(p, s, n, i, json_array_get(v, k), false);
            i = skip_ws(s, n, value_end(s, n, i));
            if (i < n && s[i] == ',') i++;
        }
    }
    json_decref(v);
    return ok;
}

/* ==== Marker search ==== */

/* Earliest occurrence in b[0..n) of any marker: returns its offset and sets *which. With none,
 * *which = -1 and the result is how much may be released: n minus the longest tail that is a
 * proper prefix of some marker. */
static size_t scan(const char *b, size_t n, const char *const *m, int nm, int *which) {
    size_t best = n;
    *which = -1;
    for (int i = 0; i < nm; i++) {
        const char *f = memmem(b, n, m[i], strlen(m[i]));
        if (f && (size_t)(f - b) < best) {
            best = (size_t)(f - b);
            *which = i;
        }
    }
    if (*which >= 0) return best;
    size_t maxl = 0;
    for (int i = 0; i < nm; i++) maxl = LC_MAX(maxl, strlen(m[i]));
    for (size_t k = LC_MIN(n, maxl ? maxl - 1 : 0); k > 0; k--)
        for (int i = 0; i < nm; i++)
            if (strlen(m[i]) > k && memcmp(b + n - k, m[i], k) == 0) return n - k;
    return n;
}

/* 1: b starts with m; -1: b is a proper prefix of m (undecided); 0: neither. */
static int starts_with(const char *b, size_t n, const char *m) {
    size_t ml = strlen(m);
    if (n >= ml) return memcmp(b, m, ml) == 0 ? 1 : 0;
    return memcmp(b, m, n) == 0 ? -1 : 0;
}

/* ==== States ==== */

/* Each step looks at the unconsumed text b[0..n), consumes some (p->pos) and/or changes state,
 * and returns whether it made progress; false means it needs more input. With fin (end of
 * stream) every state must resolve what it holds. */

static void open_json(lc_outparse *p, jkind k) {
    p->st = S_JSON_WAIT;
    p->jk = k;
    lc_str_clear(&p->tbuf);
}

static bool step_content(lc_outparse *p, const char *b, size_t n, bool fin) {
    if (n == 0) return false;
    const lc_outparse_opts *o = &p->o;
    if (p->at_start) {
        size_t w = skip_ws(b, n, 0);
        if (w) { /* leading whitespace of content is dropped anyway */
            p->pos += w;
            return true;
        }
        if (o->think_open && !p->think_seen) {
            int r = starts_with(b, n, o->think_open);
            if (r == 1) {
                p->pos += strlen(o->think_open);
                p->st = S_REASON;
                p->think_seen = p->reason_at_start = true;
                return true;
            }
            if (r < 0 && !fin) return false;
        }
        if (o->tools && o->format == LC_FMT_LLAMA3 && b[0] == '{') {
            lc_str_clear(&p->raw);
            open_json(p, J_LLAMA);
            return true;
        }
        p->at_start = false;
        return true;
    }
    const char *marks[1];
    int nm = 0;
    if (o->tools) {
        if (o->format == LC_FMT_HERMES) marks[nm++] = "<tool_call>";
        else if (o->format == LC_FMT_LLAMA3) marks[nm++] = "<|python_tag|>";
        else if (o->format == LC_FMT_MISTRAL) marks[nm++] = "[TOOL_CALLS]";
    }
    int which = -1;
    size_t k = scan(b, n, marks, nm, &which);
    if (which < 0 && fin) k = n;
    emit_content(p, b, k);
    p->pos += k;
    if (which < 0) return k > 0;
    size_t ml = strlen(marks[which]);
    p->pos += ml;
    lc_str_clear(&p->raw);
    put(p, &p->raw, marks[which], ml);
    lc_str_clear(&p->tbuf);
    if (o->format == LC_FMT_HERMES) p->st = S_HERMES;
    else open_json(p, o->format == LC_FMT_LLAMA3 ? J_LLAMA : J_MIS_CALLS);
    return true;
}

static bool step_reason(lc_outparse *p, const char *b, size_t n, bool fin) {
    if (n == 0) return false;
    if (p->reason_at_start) {
        size_t w = skip_ws(b, n, 0);
        if (w) {
            p->pos += w;
            return true;
        }
        int r = starts_with(b, n, p->o.think_open);
        if (r < 0 && !fin) return false;
        if (r == 1) p->pos += strlen(p->o.think_open);
        p->reason_at_start = false;
        return true;
    }
    const char *close = p->o.think_close;
    int which;
    size_t k = scan(b, n, &close, 1, &which);
    if (which < 0 && fin) k = n;
    emit_text(p, true, b, k);
    p->pos += k;
    if (which < 0) return k > 0;
    p->pos += strlen(close);
    p->st = S_CONTENT;
    p->at_start = !p->cs.started && p->res.n_calls == 0;
    return true;
}

static bool step_hermes(lc_outparse *p, const char *b, size_t n, bool fin) {
    static const char *const close[] = {"</tool_call>"};
    int which;
    size_t k = scan(b, n, close, 1, &which);
    if (which < 0 && fin) k = n;
    put(p, &p->tbuf, b, k);
    p->pos += k;
    if (which >= 0) {
        p->pos += strlen(close[0]);
        if (parse_calls(p, false, false)) {
            lc_str_clear(&p->tbuf);
            p->st = S_CONTENT;
        } else {
            give_back(p, close[0]);
        }
        return true;
    }
    if (fin) {
        give_back(p, NULL);
        return true;
    }
    return k > 0;
}

/* Whitespace (and ';' between Llama calls) before a JSON body; then the opening bracket
 * decides: a body, a Mistral function name, or (not a call after all) content. */
static bool step_json_wait(lc_outparse *p, const char *b, size_t n, bool fin) {
    size_t i = 0;
    while (i < n && (isws(b[i]) || (p->jk == J_LLAMA && b[i] == ';'))) i++;
    if (p->raw.len) put(p, &p->raw, b, i); /* part of the text a failure gives back */
    p->pos += i;
    if (i == n) {
        if (!fin) return i > 0;
        give_back(p, NULL);
        return true;
    }
    char c = b[i];
    if (c == '{' || (c == '[' && p->jk == J_MIS_CALLS)) {
        p->st = S_JSON;
        p->depth = 0;
        p->in_str = p->esc = false;
        return true;
    }
    if (p->jk == J_MIS_CALLS) {
        lc_str_clear(&p->name);
        p->st = S_MIS_NAME;
        return true;
    }
    give_back(p, NULL); /* e.g. text after a Llama call, or <|python_tag|> not followed by JSON */
    return true;
}

static bool step_json(lc_outparse *p, const char *b, size_t n, bool fin) {
    size_t i = 0;
    bool done = false;
    for (; i < n && !done; i++) {
        char c = b[i];
        if (p->in_str) {
            if (p->esc) p->esc = false;
            else if (c == '\\') p->esc = true;
            else if (c == '"') p->in_str = false;
        } else if (c == '"') {
            p->in_str = true;
        } else if (c == '{' || c == '[') {
            p->depth++;
        } else if ((c == '}' || c == ']') && --p->depth == 0) {
            done = true;
        }
    }
    put(p, &p->tbuf, b, i);
    p->pos += i;
    if (!done) {
        if (!fin) return i > 0;
        give_back(p, NULL);
        return true;
    }
    bool ok;
    if (p->jk == J_MIS_ARGS) {
        json_error_t err;
        json_t *v = json_loadb(p->tbuf.buf, p->tbuf.len, 0, &err);
        ok = json_is_object(v);
        json_decref(v);
        if (ok) {
            lc_str args = {0};
            compact(p, &args, p->tbuf.buf, p->tbuf.len);
            emit_call(p, p->name.buf, p->name.len, args.buf ? args.buf : "{}", args.len ? args.len : 2);
            lc_str_free(&args);
        }
    } else {
        ok = parse_calls(p, p->jk == J_MIS_CALLS, p->jk == J_LLAMA);
    }
    if (!ok) {
        give_back(p, NULL);
        return true;
    }
    lc_str_clear(&p->raw);
    lc_str_clear(&p->tbuf);
    if (p->jk == J_LLAMA) open_json(p, J_LLAMA); /* another call may follow */
    else p->st = S_CONTENT;
    return true;
}

/* Mistral [TOOL_CALLS]name[ARGS]{...}: the name runs to [ARGS] (an optional [CALL_ID]id
 * between them is dropped). A name that grows implausibly long or spans lines is not one. */
static bool step_mis_name(lc_outparse *p, const char *b, size_t n, bool fin) {
    static const char *const args[] = {"[ARGS]"};
    /* The name ends badly at its first newline or past 256 bytes: find where that would be in
     * b, so the decision depends on the text, not on how it was split. */
    size_t lim = p->name.len < 257 ? 257 - p->name.len : 0;
    const char *nl = memchr(b, '\n', n);
    size_t cut = LC_MIN(nl ? (size_t)(nl - b) : n, lim);
    int which;
    size_t k = scan(b, LC_MIN(n, cut + 5), args, 1, &which);
    if (which >= 0 && k >= cut) which = -1;
    if (which < 0 && cut < n) { /* not a name: give it back up to where it went wrong */
        put(p, &p->raw, b, cut);
        p->pos += cut;
        give_back(p, NULL);
        return true;
    }
    if (which < 0) {
        if (fin) k = n;
        put(p, &p->name, b, k);
        put(p, &p->raw, b, k);
        p->pos += k;
        if (fin) give_back(p, NULL);
        return k > 0 || fin;
    }
    put(p, &p->name, b, k);
    put(p, &p->raw, b, k);
    p->pos += k;
    p->pos += strlen(args[0]);
    put(p, &p->raw, args[0], strlen(args[0]));
    char *cid = strstr(p->name.buf ? p->name.buf : "", "[CALL_ID]");
    if (cid) p->name.len = (size_t)(cid - p->name.buf);
    while (p->name.len && isws(p->name.buf[p->name.len - 1])) p->name.len--;
    size_t lead = skip_ws(p->name.buf, p->name.len, 0);
    memmove(p->name.buf, p->name.buf + lead, p->name.len - lead);
    p->name.len -= lead;
    if (p->name.len == 0) {
        give_back(p, NULL);
        return true;
    }
    p->st = S_JSON_WAIT;
    p->jk = J_MIS_ARGS;
    lc_str_clear(&p->tbuf);
    return true;
}

/* Harmony header text up to <|message|>: the channel and the recipient decide where the
 * message goes. "<|channel|>commentary to=functions.get_weather <|constrain|>json". */
static void parse_header(lc_outparse *p) {
    const char *h = p->hdr.buf ? p->hdr.buf : "";
    const char *ch = strstr(h, "<|channel|>");
    char chan[32] = "";
    if (ch) {
        ch += strlen("<|channel|>");
        size_t l = 0;
        while (ch[l] && !isws(ch[l]) && ch[l] != '<' && l + 1 < sizeof chan) l++;
        memcpy(chan, ch, l);
        chan[l] = 0;
    }
    const char *to = strstr(h, "to=");
    lc_str_clear(&p->name);
    if (to) {
        to += 3;
        size_t l = 0;
        while (to[l] && !isws(to[l]) && to[l] != '<') l++;
        if (l > 10 && memcmp(to, "functions.", 10) == 0) to += 10, l -= 10;
        put(p, &p->name, to, l);
    }
    p->hk = p->name.len ? H_TOOL : strcmp(chan, "analysis") == 0 ? H_REASON : H_CONTENT;
    lc_str_clear(&p->tbuf);
}

static bool step_h_header(lc_outparse *p, const char *b, size_t n, bool fin) {
    static const char *const msg[] = {"<|message|>"};
    /* Text that cannot be a harmony header (the model ignored the format: its first two
     * non-blank characters are not "<|") is content; decide before consuming anything. */
    char c2[2];
    int got = 0;
    size_t i = p->hdr.len ? skip_ws(p->hdr.buf, p->hdr.len, 0) : 0;
    for (; i < p->hdr.len && got < 2; i++) c2[got++] = p->hdr.buf[i];
    for (size_t j = got ? 0 : skip_ws(b, n, 0); j < n && got < 2; j++) c2[got++] = b[j];
    if ((got >= 1 && c2[0] != '<') || (got >= 2 && c2[1] != '|') || (fin && got == 1)) {
        emit_content(p, p->hdr.buf ? p->hdr.buf : "", p->hdr.len);
        lc_str_clear(&p->hdr);
        p->hk = H_CONTENT;
        p->st = S_H_MSG;
        return true;
    }
    int which;
    size_t k = scan(b, n, msg, 1, &which);
    if (which < 0 && fin) k = n;
    put(p, &p->hdr, b, k);
    p->pos += k;
    if (which >= 0) {
        p->pos += strlen(msg[0]);
        parse_header(p);
        lc_str_clear(&p->hdr);
        p->st = S_H_MSG;
        return true;
    }
    if (fin) lc_str_clear(&p->hdr); /* an unfinished header carries nothing */
    return k > 0;
}

static bool step_h_msg(lc_outparse *p, const char *b, size_t n, bool fin) {
    static const char *const ends[] = {"<|end|>", "<|call|>", "<|return|>", "<|start|>"};
    if (n == 0 && !(fin && p->hk == H_TOOL)) return false;
    int which;
    size_t k = scan(b, n, ends, 4, &which);
    if (which < 0 && fin) k = n;
    if (p->hk == H_TOOL) put(p, &p->tbuf, b, k);
    else emit_text(p, p->hk == H_REASON, b, k);
    p->pos += k;
    if (which < 0 && !fin) return k > 0;
    if (which >= 0) p->pos += strlen(ends[which]);
    if (p->hk == H_TOOL) {
        json_error_t err;
        json_t *v = json_loadb(p->tbuf.buf ? p->tbuf.buf : "", p->tbuf.len, JSON_DECODE_ANY, &err);
        if (v && which >= 0) {
            lc_str args = {0};
            compact(p, &args, p->tbuf.buf, p->tbuf.len);
            emit_call(p, p->name.buf, p->name.len, args.buf, args.len);
            lc_str_free(&args);
        } else {
            emit_content(p, p->tbuf.buf ? p->tbuf.buf : "", p->tbuf.len);
        }
        json_decref(v);
        lc_str_clear(&p->tbuf);
        p->hk = H_CONTENT;
    }
    p->st = S_H_HEADER;
    return true;
}

/* ==== Driving ==== */

static void run(lc_outparse *p, bool fin) {
    while (!p->oom) {
        const char *b = p->pend.buf ? p->pend.buf + p->pos : "";
        size_t n = p->pend.len - p->pos;
        bool prog;
        switch (p->st) {
        case S_CONTENT: prog = step_content(p, b, n, fin); break;
        case S_REASON: prog = step_reason(p, b, n, fin); break;
        case S_HERMES: prog = step_hermes(p, b, n, fin); break;
        case S_JSON_WAIT: prog = step_json_wait(p, b, n, fin); break;
        case S_JSON: prog = step_json(p, b, n, fin); break;
        case S_MIS_NAME: prog = step_mis_name(p, b, n, fin); break;
        case S_H_HEADER: prog = step_h_header(p, b, n, fin); break;
        case S_H_MSG: prog = step_h_msg(p, b, n, fin); break;
        default: prog = false;
        }
        if (!prog) break;
    }
    /* Drop the consumed prefix so the pending buffer stays as small as what is held. */
    if (p->pos) {
        memmove(p->pend.buf, p->pend.buf + p->pos, p->pend.len - p->pos);
        p->pend.len -= p->pos;
        p->pend.buf[p->pend.len] = 0;
        p->pos = 0;
    }
}

lc_status lc_outparse_feed(lc_outparse *p, const char *text, size_t len, lc_outparse_delta *d) {
    if (p->oom) return lc_fail(LC_ERR_OOM, "outparse: out of memory");
    if (p->finished || len == 0) return LC_OK;
    p->d = d;
    put(p, &p->pend, text, len);
    run(p, false);
    p->d = NULL;
    return p->oom ? lc_fail(LC_ERR_OOM, "outparse: out of memory") : LC_OK;
}

lc_status lc_outparse_finish(lc_outparse *p, lc_outparse_delta *d) {
    if (p->oom) return lc_fail(LC_ERR_OOM, "outparse: out of memory");
    if (p->finished) return LC_OK;
    p->d = d;
    run(p, true);
    p->d = NULL;
    p->finished = true;
    return p->oom ? lc_fail(LC_ERR_OOM, "outparse: out of memory") : LC_OK;
}
