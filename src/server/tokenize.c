/* tokenize.c — POST /tokenize {"content": text, "add_special"?: bool} -> {"tokens": [...]} and
 * POST /detokenize {"tokens": [...]} -> {"content": text}, as llama-server has them.
 * Entries: serve_tokenize, serve_detokenize.
 */
#include "server/server.h"

#include "model/model.h"
#include "text/tokenizer.h"

static json_t *parse_object(serve_conn *c, serve_err *e) {
    json_error_t je;
    json_t *j = json_loadb(c->body, c->body_len, 0, &je);
    if (!j) {
        serve_fail(e, 400, NULL, "invalid_json", "the request body is not valid JSON: %s", je.text);
        return NULL;
    }
    if (!json_is_object(j)) {
        json_decref(j);
        serve_fail(e, 400, NULL, "invalid_json", "the request body must be a JSON object");
        return NULL;
    }
    return j;
}

/* The model the body's optional "model" names (the default one when absent). */
static lc_status body_model(serve_conn *c, json_t *j, lc_mgr_lease *l, serve_err *e) {
    json_t *m = json_object_get(j, "model");
    if (m && !json_is_null(m) && !json_is_string(m))
        return serve_fail(e, 400, "model", "invalid_type", "'model' must be a string");
    return serve_acquire(c->srv, json_string_value(m), l, e);
}

int serve_tokenize(serve_conn *c) {
    serve_err e = {0};
    json_t *j = parse_object(c, &e);
    if (!j) return serve_reply_error(c, &e);
    lc_mgr_lease l = {.idx = -1};
    if (body_model(c, j, &l, &e)) {
        json_decref(j);
        return serve_reply_error(c, &e);
    }
    json_t *content = json_object_get(j, "content");
    json_t *as = json_object_get(j, "add_special");
    json_t *ps = json_object_get(j, "parse_special");
    if (!json_is_string(content) || (as && !json_is_boolean(as)) || (ps && !json_is_boolean(ps))) {
        json_decref(j);
        lc_mgr_release(c->srv->mgr, &l, LC_KEEP_UNSET);
        serve_fail(&e, 400, "content", "invalid_type", "expected {\"content\": string, \"add_special\"?: bool, \"parse_special\"?: bool}");
        return serve_reply_error(c, &e);
    }
    lc_token *toks = NULL;
    int n = 0;
    lc_status st = serve_tokenize_text(l.data, json_string_value(content), json_string_length(content), json_is_true(as),
                                       !ps || json_is_true(ps), &toks, &n);
    lc_mgr_release(c->srv->mgr, &l, LC_KEEP_UNSET);
    if (st) {
        json_decref(j);
        serve_fail(&e, 400, "content", "invalid_value", "%s", lc_last_error());
        return serve_reply_error(c, &e);
    }
    json_t *arr = json_array();
    for (int i = 0; i < n; i++) json_array_append_new(arr, json_integer(toks[i]));
    lc_free(toks);
    json_decref(j);
    return serve_reply_json(c, 200, json_pack("{s:o}", "tokens", arr));
}

int serve_detokenize(serve_conn *c) {
    serve_err e = {0};
    json_t *j = parse_object(c, &e);
    if (!j) return serve_reply_error(c, &e);
    json_t *toks = json_object_get(j, "tokens");
    lc_mgr_lease l = {.idx = -1};
    if (body_model(c, j, &l, &e)) {
        json_decref(j);
        return serve_reply_error(c, &e);
    }
    const serve_model *sm = l.data;
    if (!json_is_array(toks)) {
        lc_mgr_release(c->srv->mgr, &l, LC_KEEP_UNSET);
        json_decref(j);
        serve_fail(&e, 400, "tokens", "invalid_type", "expected {\"tokens\": [token ids]}");
        return serve_reply_error(c, &e);
    }
    lc_str out = {0};
    char buf[512];
    size_t i;
    json_t *t;
    json_array_foreach(toks, i, t) {
        json_int_t id = json_is_integer(t) ? json_integer_value(t) : -1;
        if (id < 0 || id >= sm->n_vocab) {
            lc_mgr_release(c->srv->mgr, &l, LC_KEEP_UNSET);
            lc_str_free(&out);
            json_decref(j);
            serve_fail(&e, 400, "tokens", "invalid_value", "tokens[%zu] is not a token id", i);
            return serve_reply_error(c, &e);
        }
        int n = lc_tok_piece(sm->model->tok, (lc_token)id, buf, (int)sizeof buf);
        if (n > 0) lc_str_append(&out, buf, (size_t)LC_MIN(n, (int)sizeof buf));
    }
    lc_mgr_release(c->srv->mgr, &l, LC_KEEP_UNSET);
    json_decref(j);
    json_t *s = serve_json_str(out.buf, out.len);
    lc_str_free(&out);
    return serve_reply_json(c, 200, json_pack("{s:o}", "content", s));
}
