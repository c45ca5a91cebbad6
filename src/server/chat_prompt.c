/* chat_prompt.c — the server's chat prompt: the model's GGUF chat template (or ChatML when it
 * has none), parsed once at start-up and rendered per request through text/chat.h with the
 * model's BOS/EOS text and the generation prompt. Also the tokenization helper endpoints share.
 * Entry points: serve_chat_init, serve_render_chat, serve_tokenize_text, serve_chat_free.
 */
#include "server/server.h"

#include "model/model.h"
#include "text/chat.h"
#include "text/tokenizer.h"

#include <string.h>

lc_status serve_chat_init(serve_model *sm) {
    lc_gguf_str s = {0};
    if (lc_gguf_get_strv(sm->model->gguf, "tokenizer.chat_template", &s) && s.n) {
        sm->chat_template = lc_strndup(s.p, (size_t)s.n);
        if (!sm->chat_template) return LC_ERR_OOM;
    }
    const lc_tok *tok = sm->model->tok;
    size_t n;
    const char *t;
    if ((t = lc_tok_text(tok, lc_tok_bos(tok), &n)) && n < sizeof sm->bos) memcpy(sm->bos, t, n);
    if ((t = lc_tok_text(tok, lc_tok_eos(tok), &n)) && n < sizeof sm->eos) memcpy(sm->eos, t, n);
    lc_chat_template *tmpl = NULL;
    lc_status st = lc_chat_template_create(sm->chat_template, &tmpl);
    if (st) {
        lc_log(LC_LOG_WARN, "the model's chat template does not parse (%s); using ChatML", lc_last_error());
        lc_free(sm->chat_template);
        sm->chat_template = NULL;
        if ((st = lc_chat_template_create(NULL, &tmpl))) return st;
    }
    sm->chat_tmpl = tmpl;
    sm->parse = lc_outparse_opts_default();
    lc_outparse_opts_from_template(sm->chat_template, &sm->parse);
    return LC_OK;
}

void serve_chat_free(serve_model *sm) {
    lc_chat_template_free(sm->chat_tmpl);
    sm->chat_tmpl = NULL;
    lc_free(sm->chat_template);
    sm->chat_template = NULL;
}

lc_status serve_render_chat(serve_model *sm, const serve_req *rq, char **out, serve_err *err) {
    *out = NULL;
    lc_chat_opts o = lc_chat_opts_default();
    o.add_generation_prompt = true;
    o.bos_token = sm->bos;
    o.eos_token = sm->eos;
    json_t *kw = json_object_get(rq->root, "chat_template_kwargs");
    if (json_is_object(kw)) {
        o.kwargs = kw;
        json_t *et = json_object_get(kw, "enable_thinking");
        if (json_is_boolean(et)) o.enable_thinking = json_is_true(et);
    }
    lc_status st = lc_chat_template_render(sm->chat_tmpl, rq->messages, rq->tools, &o, out);
    if (st) {
        serve_fail(err, 400, "messages", "template_error", "the chat template rejected the messages: %s", lc_last_error());
        return st;
    }
    return LC_OK;
}

lc_status serve_tokenize_text(serve_model *sm, const char *text, size_t len, bool add_special, bool parse_special,
                              lc_token **out, int *n) {
    return lc_tok_encode(sm->model->tok, text, len, add_special, parse_special, out, n);
}
