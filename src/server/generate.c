/* generate.c — running one generation request and writing its OpenAI response, for both
 * /v1/chat/completions and /v1/completions: a JSON body, or an SSE stream of chunks ending in
 * "data: [DONE]" (with a usage chunk when stream_options.include_usage).
 *
 * Chat output goes through text/outparse (content, reasoning_content + reasoning, tool_calls).
 * Streams are libmicrohttpd callback responses: the callback waits on the scheduler (100 ms at
 * a time, checking whether the client hung up) and turns what arrived into chunks. A client
 * that disconnects releases its request, which cancels the sequence at the next engine step.
 * Entry point: serve_generate.
 */
#include "server/server.h"

#include "text/outparse.h"

#include <microhttpd.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* ==== State of one response ==== */

typedef struct gen {
    serve *srv;
    serve_model *sm;     /* the leased model */
    lc_mgr_lease lease;
    serve_conn c;        /* body pointers are not valid after the handler returns */
    serve_req rq;
    lc_sched_req *req;
    lc_sched_out out;    /* what the scheduler handed over, consumed as we go */
    lc_outparse *op;     /* chat only */
    lc_outparse_delta d;
    json_t *lp_all;      /* non-stream: accumulated logprobs (chat: array; completions: object) */
    lc_str text_all;     /* non-stream completions: the whole text */
    int n_calls_seen;
    char id[48];
    long long created;
    lc_str sse;
    size_t sse_off;
    int phase;           /* 0 nothing sent, 1 streaming, 2 finished */
    double last_sent;    /* stream: when bytes last went out (keep-alive comments) */
} gen;

static void gen_free(gen *g) {
    if (!g) return;
    lc_sched_release(g->sm->sched, g->req);
    lc_sched_out_free(&g->out);
    lc_outparse_free(g->op);
    lc_outparse_delta_free(&g->d);
    json_decref(g->lp_all);
    lc_str_free(&g->text_all);
    lc_str_free(&g->sse);
    double keep = g->rq.keep_alive;
    serve_req_free(&g->rq);
    lc_mgr_release(g->srv->mgr, &g->lease, keep);
    atomic_fetch_sub(&g->srv->inflight, 1);
    lc_free(g);
}

static const char *finish_name(const gen *g) {
    switch (g->out.finish) {
    case LC_FINISH_LENGTH: return "length";
    case LC_FINISH_STOP: return g->n_calls_seen ? "tool_calls" : "stop";
    default: return "stop";
    }
}

static json_t *usage_json(const gen *g) {
    const lc_sched_out *o = &g->out;
    return json_pack("{s:i, s:i, s:i, s:{s:i}}", "prompt_tokens", o->n_prompt, "completion_tokens", o->n_gen,
                     "total_tokens", o->n_prompt + o->n_gen, "prompt_tokens_details", "cached_tokens", o->n_cached);
}

/* A JSON string of n bytes; invalid UTF-8 (a model can emit any bytes) becomes U+FFFD. */
json_t *serve_json_str(const char *p, size_t n) {
    if (!p) return json_string("");
    json_t *j = json_stringn(p, n);
    if (j) return j;
    lc_str s = {0};
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)p[i];
        size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
        json_t *t = len && i + len <= n ? json_stringn(p + i, len) : NULL;
        if (t) lc_str_append(&s, p + i, len);
        else lc_str_puts(&s, "\xef\xbf\xbd");
        json_decref(t);
        i += t ? len : 1;
    }
    j = json_stringn(s.buf ? s.buf : "", s.len);
    lc_str_free(&s);
    return j ? j : json_string("");
}

/* ==== Logprobs ==== */

static json_t *bytes_json(const char *p, int n) {
    json_t *a = json_array();
    for (int i = 0; i < n; i++) json_array_append_new(a, json_integer((unsigned char)p[i]));
    return a;
}

static json_t *piece_str(const serve_model *sm, lc_token t) {
    if (t < 0 || t >= sm->n_vocab) return json_string("");
    return serve_json_str(sm->pieces[t], sm->piece_len[t]);
}

/* Chat format: [{"token","logprob","bytes","top_logprobs":[...]}] for out.lps[0..n). */
static json_t *chat_logprobs(const gen *g) {
    const serve_model *sm = g->sm;
    json_t *arr = json_array();
    for (int i = 0; i < g->out.n_lps; i++) {
        const lc_sched_logprob *e = &g->out.lps[i];
        json_t *top = json_array();
        for (int k = 0; k < e->n_top && k < g->rq.gp.top_logprobs; k++) {
            lc_token t = e->top[k].token;
            json_array_append_new(top, json_pack("{s:o, s:f, s:o}", "token", piece_str(sm, t), "logprob",
                                                 (double)e->top[k].logprob, "bytes",
                                                 bytes_json(sm->pieces[t], sm->piece_len[t])));
        }
        json_array_append_new(arr, json_pack("{s:o, s:f, s:o, s:o}", "token", piece_str(sm, e->token), "logprob",
                                             (double)e->logprob, "bytes",
                                             bytes_json(sm->pieces[e->token], sm->piece_len[e->token]),
                                             "top_logprobs", top));
    }
    return arr;
}

/* Completions format: {"tokens","token_logprobs","top_logprobs","text_offset"}; appends to acc. */
static void completion_logprobs(const gen *g, json_t *acc, size_t *offset) {
    const serve_model *sm = g->sm;
    for (int i = 0; i < g->out.n_lps; i++) {
        const lc_sched_logprob *e = &g->out.lps[i];
        json_array_append_new(json_object_get(acc, "tokens"), piece_str(sm, e->token));
        json_array_append_new(json_object_get(acc, "token_logprobs"), json_real(e->logprob));
        json_t *top = json_object();
        for (int k = 0; k < e->n_top && k < g->rq.gp.top_logprobs; k++) {
            lc_token t = e->top[k].token;
            char key[600];
            snprintf(key, sizeof key, "%.*s", (int)sm->piece_len[t], sm->pieces[t]);
            json_object_set_new(top, key, json_real(e->top[k].logprob));
        }
        json_array_append_new(json_object_get(acc, "top_logprobs"), top);
        json_array_append_new(json_object_get(acc, "text_offset"), json_integer((json_int_t)*offset));
        *offset += sm->piece_len[e->token];
    }
}

static json_t *completion_lp_new(void) {
    return json_pack("{s:[], s:[], s:[], s:[]}", "tokens", "token_logprobs", "top_logprobs", "text_offset");
}

/* ==== Chat deltas ==== */

static json_t *calls_json(const lc_tool_call *calls, int n, bool with_index) {
    json_t *a = json_array();
    for (int i = 0; i < n; i++) {
        json_t *c = json_pack("{s:s, s:s, s:{s:s, s:s}}", "id", calls[i].id, "type", "function", "function", "name",
                              calls[i].name ? calls[i].name : "", "arguments", calls[i].arguments ? calls[i].arguments : "{}");
        if (c && with_index) json_object_set_new(c, "index", json_integer(calls[i].index));
        if (c) json_array_append_new(a, c);
    }
    return a;
}

/* Feeds newly taken text through the output parser (chat) into g->d. */
static void parse_text(gen *g, bool finish) {
    if (!g->op) return;
    if (g->out.text.len) lc_outparse_feed(g->op, g->out.text.buf, g->out.text.len, &g->d);
    if (finish) lc_outparse_finish(g->op, &g->d);
    g->n_calls_seen += g->d.n_calls;
}

/* ==== Streaming ==== */

static void sse_event(gen *g, json_t *j) {
    char *s = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    if (!s) return;
    lc_str_puts(&g->sse, "data: ");
    lc_str_puts(&g->sse, s);
    lc_str_puts(&g->sse, "\n\n");
    free(s);
}

/* A chunk envelope with one choice (or none when choice is NULL). */
static json_t *chunk(gen *g, json_t *choice) {
    bool chat = g->rq.kind == SERVE_CHAT;
    json_t *j = json_pack("{s:s, s:s, s:I, s:s, s:s}", "id", g->id, "object", chat ? "chat.completion.chunk" : "text_completion",
                          "created", (json_int_t)g->created, "model", g->sm->id, "system_fingerprint", "locara-" LOCARA_VERSION);
    json_t *choices = json_array();
    if (choice) {
        json_object_set_new(choice, "index", json_integer(0));
        json_array_append_new(choices, choice);
    }
    json_object_set_new(j, "choices", choices);
    if (g->rq.include_usage) json_object_set_new(j, "usage", json_null());
    return j;
}

/* Turns everything taken since the last call into SSE chunks in g->sse. */
static void stream_emit(gen *g, bool done) {
    bool chat = g->rq.kind == SERVE_CHAT;
    if (chat) {
        lc_outparse_delta_clear(&g->d);
        parse_text(g, done);
        json_t *delta = json_object();
        if (g->d.reasoning.len) {
            json_object_set_new(delta, "reasoning_content", serve_json_str(g->d.reasoning.buf, g->d.reasoning.len));
            json_object_set_new(delta, "reasoning", serve_json_str(g->d.reasoning.buf, g->d.reasoning.len));
        }
        if (g->d.content.len) json_object_set_new(delta, "content", serve_json_str(g->d.content.buf, g->d.content.len));
        if (g->d.n_calls) json_object_set_new(delta, "tool_calls", calls_json(g->d.calls, g->d.n_calls, true));
        if (json_object_size(delta) || g->out.n_lps) {
            json_t *lp = g->out.n_lps ? json_pack("{s:o}", "content", chat_logprobs(g)) : json_null();
            sse_event(g, chunk(g, json_pack("{s:o, s:o, s:n}", "delta", delta, "logprobs", lp, "finish_reason")));
        } else {
            json_decref(delta);
        }
    } else if (g->out.text.len || g->out.n_lps) {
        json_t *lp = json_null();
        if (g->out.n_lps) {
            lp = completion_lp_new();
            size_t off = g->text_all.len;
            completion_logprobs(g, lp, &off);
        }
        lc_str_append(&g->text_all, g->out.text.buf ? g->out.text.buf : "", g->out.text.len);
        sse_event(g, chunk(g, json_pack("{s:o, s:o, s:n}", "text", serve_json_str(g->out.text.buf, g->out.text.len), "logprobs",
                                        lp, "finish_reason")));
    }
    lc_str_clear(&g->out.text);
    g->out.n_lps = 0;
    if (!done) return;
    if (g->out.finish == LC_FINISH_ERROR || g->out.finish == LC_FINISH_CANCELLED) {
        const char *msg = g->out.finish == LC_FINISH_ERROR ? g->out.error : "the request was cancelled";
        sse_event(g, json_pack("{s:{s:s, s:s, s:n, s:n}}", "error", "message", msg, "type", "server_error", "param", "code"));
    } else {
        json_t *last = chat ? json_pack("{s:{}, s:n, s:s}", "delta", "logprobs", "finish_reason", finish_name(g))
                            : json_pack("{s:s, s:n, s:s}", "text", "", "logprobs", "finish_reason", finish_name(g));
        sse_event(g, chunk(g, last));
        if (g->rq.include_usage) {
            json_t *u = chunk(g, NULL);
            json_object_set_new(u, "usage", usage_json(g));
            sse_event(g, u);
        }
    }
    lc_str_puts(&g->sse, "data: [DONE]\n\n");
}

static ssize_t stream_cb(void *cls, uint64_t pos, char *buf, size_t max) {
    gen *g = cls;
    while (g->sse_off >= g->sse.len) {
        lc_str_clear(&g->sse);
        g->sse_off = 0;
        if (g->phase == 2) return MHD_CONTENT_READER_END_OF_STREAM;
        if (g->phase == 0) {
            g->phase = 1;
            if (g->rq.kind == SERVE_CHAT)
                sse_event(g, chunk(g, json_pack("{s:{s:s, s:s}, s:n, s:n}", "delta", "role", "assistant", "content", "",
                                                "logprobs", "finish_reason")));
            continue;
        }
        if (serve_client_gone(&g->c)) return MHD_CONTENT_READER_END_WITH_ERROR;
        bool done = lc_sched_take(g->sm->sched, g->req, &g->out, 100);
        stream_emit(g, done);
        if (done) g->phase = 2;
        /* a long prefill sends nothing for minutes: an SSE comment (clients skip lines starting
         * with ':') keeps the connection inside the idle timeout and proxies from closing it */
        if (g->sse.len == 0 && lc_time_sec() - g->last_sent > LC_MAX(1.0, g->srv->o.timeout_s / 4.0))
            lc_str_puts(&g->sse, ": keep-alive\n\n");
    }
    g->last_sent = lc_time_sec();
    size_t n = LC_MIN(max, g->sse.len - g->sse_off);
    memcpy(buf, g->sse.buf + g->sse_off, n);
    g->sse_off += n;
    return (ssize_t)n;
}

static void stream_free(void *cls) { gen_free(cls); }

/* ==== Whole responses ==== */

static int reply_whole(gen *g) {
    bool chat = g->rq.kind == SERVE_CHAT;
    size_t off = 0;
    /* nothing can be sent before the whole reply: no idle timeout while the model works */
    MHD_set_connection_option(g->c.mhd, MHD_CONNECTION_OPTION_TIMEOUT, 0u);
    for (;;) {
        if (serve_client_gone(&g->c)) {
            gen_free(g);
            return MHD_NO;
        }
        bool done = lc_sched_take(g->sm->sched, g->req, &g->out, 100);
        if (g->out.n_lps) {
            if (chat) {
                json_t *a = chat_logprobs(g);
                json_array_extend(g->lp_all, a);
                json_decref(a);
            } else completion_logprobs(g, g->lp_all, &off);
            g->out.n_lps = 0;
        }
        if (chat) parse_text(g, done);
        else lc_str_append(&g->text_all, g->out.text.buf ? g->out.text.buf : "", g->out.text.len);
        lc_str_clear(&g->out.text);
        if (done) break;
    }
    MHD_set_connection_option(g->c.mhd, MHD_CONNECTION_OPTION_TIMEOUT, (unsigned)g->srv->o.timeout_s);
    int ret;
    if (g->out.finish == LC_FINISH_ERROR || g->out.finish == LC_FINISH_CANCELLED) {
        serve_err e;
        serve_fail(&e, g->out.finish == LC_FINISH_ERROR ? 500 : 503, NULL, NULL, "%s",
                   g->out.finish == LC_FINISH_ERROR ? g->out.error : "the request was cancelled (shutting down)");
        ret = serve_reply_error(&g->c, &e);
        gen_free(g);
        return ret;
    }
    json_t *choice;
    if (chat) {
        const lc_outparse_final *r = lc_outparse_result(g->op);
        json_t *msg = json_pack("{s:s}", "role", "assistant");
        json_object_set_new(msg, "content", r->content.len || !r->n_calls ? serve_json_str(r->content.buf, r->content.len) : json_null());
        if (r->reasoning.len) {
            json_object_set_new(msg, "reasoning_content", serve_json_str(r->reasoning.buf, r->reasoning.len));
            json_object_set_new(msg, "reasoning", serve_json_str(r->reasoning.buf, r->reasoning.len));
        }
        if (r->n_calls) json_object_set_new(msg, "tool_calls", calls_json(r->calls, r->n_calls, false));
        g->n_calls_seen = r->n_calls;
        choice = json_pack("{s:i, s:o, s:o, s:s}", "index", 0, "message", msg, "logprobs",
                           g->rq.gp.logprobs ? json_pack("{s:O}", "content", g->lp_all) : json_null(), "finish_reason",
                           finish_name(g));
    } else {
        choice = json_pack("{s:i, s:o, s:O, s:s}", "index", 0, "text", serve_json_str(g->text_all.buf, g->text_all.len), "logprobs", g->rq.gp.logprobs ? g->lp_all : json_null(), "finish_reason",
                           finish_name(g));
    }
    json_t *j = json_pack("{s:s, s:s, s:I, s:s, s:s, s:[o], s:o}", "id", g->id, "object",
                          chat ? "chat.completion" : "text_completion", "created", (json_int_t)g->created, "model",
                          g->sm->id, "system_fingerprint", "locara-" LOCARA_VERSION, "choices", choice, "usage",
                          usage_json(g));
    ret = serve_reply_json(&g->c, 200, j);
    gen_free(g);
    return ret;
}

/* ==== Entry ==== */

int serve_generate(serve_conn *c, lc_mgr_lease *lease, serve_req *rq, lc_token *prompt, int n_prompt) {
    serve *srv = c->srv;
    serve_model *sm = lease->data;
    serve_err e = {0};
    gen *g = lc_calloc(1, sizeof *g);
    if (!g) {
        lc_mgr_release(srv->mgr, lease, rq->keep_alive);
        serve_req_free(rq);
        serve_fail(&e, 500, NULL, NULL, "out of memory");
        return serve_reply_error(c, &e);
    }
    atomic_fetch_add(&srv->inflight, 1);
    g->srv = srv;
    g->sm = sm;
    g->lease = *lease;
    lease->idx = -1;
    g->c = *c;
    g->c.body = NULL;
    g->rq = *rq;
    g->rq.gp.stops = g->rq.stop_strs; /* pointed into the caller's copy */
    memset(rq, 0, sizeof *rq);
    g->created = (long long)time(NULL);
    long n = atomic_load(&srv->http_requests);
    snprintf(g->id, sizeof g->id, "%s-%llx%lx", g->rq.kind == SERVE_CHAT ? "chatcmpl" : "cmpl",
             (unsigned long long)lc_time_us(), n);
    g->lp_all = g->rq.kind == SERVE_CHAT ? json_array() : completion_lp_new();
    lc_gen_params gp = g->rq.gp;
    if (!g->rq.seed_given) gp.sp.seed = (uint64_t)lc_time_us() * 0x9E3779B97F4A7C15ull ^ (uint64_t)n;
    lc_status st = LC_OK;
    if (g->rq.prefill) st = serve_tool_constraint(sm, &g->rq, &gp.constraint); /* wins over json_mode */
    else if (g->rq.json_mode) st = serve_json_constraint(sm, &gp.constraint);
    if (!st && g->rq.kind == SERVE_CHAT) {
        lc_outparse_opts po = sm->parse;
        po.tools = g->rq.tools != NULL;
        po.seed = gp.sp.seed;
        po.starts_in_reasoning = g->rq.starts_in_reasoning;
        st = lc_outparse_create(&po, &g->op);
        if (!st && g->rq.prefill) { /* the forced call's opening is part of the reply's text */
            lc_outparse_delta d0 = {0};
            st = lc_outparse_feed(g->op, g->rq.prefill, strlen(g->rq.prefill), &d0);
            lc_outparse_delta_free(&d0);
        }
    }
    if (st) {
        if (gp.constraint.free) gp.constraint.free(gp.constraint.ud);
        serve_fail(&e, 500, NULL, NULL, "cannot start the request: %s", lc_last_error());
        gen_free(g);
        return serve_reply_error(c, &e);
    }
    st = lc_sched_submit(sm->sched, prompt, n_prompt, &gp, &g->req);
    if (st) {
        if (gp.constraint.free) gp.constraint.free(gp.constraint.ud);
        if (st == LC_ERR_RANGE)
            serve_fail(&e, 400, g->rq.kind == SERVE_CHAT ? "messages" : "prompt", "context_length_exceeded", "%s", lc_last_error());
        else if (st == LC_ERR_CANCELLED)
            serve_fail(&e, 503, NULL, "shutting_down", "%s", lc_last_error());
        else
            serve_fail(&e, st == LC_ERR_INVALID ? 400 : 500, NULL, NULL, "%s", lc_last_error());
        gen_free(g);
        return serve_reply_error(c, &e);
    }
    if (!g->rq.stream) return reply_whole(g);
    g->last_sent = lc_time_sec();
    struct MHD_Response *r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384, stream_cb, g, stream_free);
    if (!r) {
        gen_free(g);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", "text/event-stream");
    MHD_add_response_header(r, "Cache-Control", "no-cache");
    MHD_add_response_header(r, "Access-Control-Allow-Origin", "*");
    enum MHD_Result ret = MHD_queue_response(c->mhd, 200, r);
    MHD_destroy_response(r);
    return ret;
}
