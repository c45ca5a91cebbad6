/* chat_completions.c — POST /v1/chat/completions: validate the request, render the messages
 * (and tools) with the model's chat template, append a forced tool call's opening (tool_choice.c),
 * tokenize, and hand over to serve_generate for the JSON or SSE response (content, reasoning,
 * tool calls). Entry: serve_chat_completions.
 */
#include "server/server.h"

#include "text/outparse.h"

#include <string.h>

/* True when the rendered prompt ends inside an opened reasoning block ("<think>\n"). */
static bool ends_in_reasoning(const serve_model *sm, const char *prompt) {
    const lc_outparse_opts po = sm->parse;
    if (!po.think_open) return false;
    size_t n = strlen(prompt);
    while (n && (prompt[n - 1] == '\n' || prompt[n - 1] == ' ')) n--;
    size_t m = strlen(po.think_open);
    return n >= m && !memcmp(prompt + n - m, po.think_open, m);
}

int serve_chat_completions(serve_conn *c) {
    serve *srv = c->srv;
    serve_req rq;
    serve_err e = {0};
    lc_mgr_lease lease = {.idx = -1};
    serve_model *sm = NULL;
    char *prompt = NULL;
    lc_token *toks = NULL;
    int n = 0, ret;
    if (serve_req_parse(c->body, c->body_len, SERVE_CHAT, &rq, &e) || serve_acquire(srv, rq.model, &lease, &e))
        goto fail;
    sm = lease.data;
    if (serve_req_check_vocab(&rq, sm->n_vocab, &e) || serve_render_chat(sm, &rq, &prompt, &e)) goto fail;
    rq.starts_in_reasoning = ends_in_reasoning(sm, prompt);
    if (serve_tool_prefill(sm, &rq, &e)) goto fail;
    if (rq.prefill) { /* a forced tool call opens the reply */
        size_t a = strlen(prompt), b = strlen(rq.prefill);
        char *p = lc_malloc(a + b + 1);
        if (!p) {
            serve_fail(&e, 500, NULL, NULL, "out of memory");
            goto fail;
        }
        memcpy(p, prompt, a);
        memcpy(p + a, rq.prefill, b + 1);
        lc_free(prompt);
        prompt = p;
    }
    if (serve_tokenize_text(sm, prompt, strlen(prompt), true, true, &toks, &n)) {
        serve_fail(&e, 400, "messages", "invalid_value", "cannot tokenize the prompt: %s", lc_last_error());
        goto fail;
    }
    if (n <= 0) {
        serve_fail(&e, 400, "messages", "invalid_value", "the rendered prompt is empty");
        goto fail;
    }
    lc_free(prompt);
    ret = serve_generate(c, &lease, &rq, toks, n);
    lc_free(toks);
    return ret;
fail:
    lc_mgr_release(srv->mgr, &lease, rq.keep_alive);
    lc_free(prompt);
    lc_free(toks);
    serve_req_free(&rq);
    return serve_reply_error(c, &e);
}
