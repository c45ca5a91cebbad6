/* models.c — the server's side of the model manager: the per-model hooks (chat template and
 * token pieces made when a model loads), acquiring the request's model with the HTTP error for
 * each failure, GET /v1/models (every model with its state) and GET /api/ps (loaded models,
 * memory, idle time and unload deadline; what `locara ps` prints).
 * Entries: serve_hook_load, serve_hook_unload, serve_acquire, serve_models, serve_ps.
 */
#include "server/server.h"

#include <string.h>

/* ==== Hooks ==== */

lc_status serve_hook_load(void *ud, const char *id, lc_model *model, lc_sched *sched, void **data) {
    serve_model *sm = lc_calloc(1, sizeof *sm);
    if (!sm) return LC_ERR_OOM;
    sm->id = id;
    sm->model = model;
    sm->sched = sched;
    sm->n_vocab = lc_model_n_vocab(model);
    lc_status st;
    if ((st = serve_chat_init(sm)) || (st = serve_pieces_init(sm))) {
        serve_hook_unload(ud, sm);
        return st;
    }
    *data = sm;
    return LC_OK;
}

void serve_hook_unload(void *ud, void *data) {
    serve_model *sm = data;
    if (!sm) return;
    serve_chat_free(sm);
    serve_pieces_free(sm);
    lc_free(sm);
}

/* ==== Acquiring ==== */

lc_status serve_acquire(serve *srv, const char *model, lc_mgr_lease *out, serve_err *err) {
    lc_status st = lc_mgr_acquire(srv->mgr, model, out);
    if (!st) return LC_OK;
    switch (st) {
    case LC_ERR_INVALID: return serve_fail(err, 404, "model", "model_not_found", "%s", lc_last_error());
    case LC_ERR_OOM: return serve_fail(err, 503, "model", "insufficient_memory", "%s", lc_last_error());
    case LC_ERR_CANCELLED: return serve_fail(err, 503, NULL, "shutting_down", "%s", lc_last_error());
    default: return serve_fail(err, 500, "model", "model_load_failed", "cannot load the model: %s", lc_last_error());
    }
}

/* ==== Listings ==== */

/* seconds as JSON, null for "never" (< 0) */
static json_t *secs(double s) { return s < 0 ? json_null() : json_real(s); }

static json_t *aliases_json(const lc_mgr_info *in) {
    json_t *a = json_array();
    for (int k = 0; k < in->n_aliases; k++) json_array_append_new(a, json_string(in->aliases[k]));
    return a;
}

int serve_models(serve_conn *c) {
    serve *srv = c->srv;
    json_t *data = json_array();
    for (int i = 0; i < lc_mgr_count(srv->mgr); i++) {
        lc_mgr_info in;
        lc_mgr_info_get(srv->mgr, i, &in);
        json_t *meta = json_pack("{s:i, s:s, s:s, s:i, s:s, s:o, s:I, s:o}", "n_ctx", in.n_ctx, "arch", in.arch,
                                 "kv_type", in.kv_type, "parallel", in.parallel, "file", in.file, "aliases",
                                 aliases_json(&in), "memory_bytes", (json_int_t)in.bytes, "keep_alive_s",
                                 secs(in.keep_alive_s));
        if (in.draft) json_object_set_new(meta, "draft", json_string(in.draft));
        if (in.error[0]) json_object_set_new(meta, "error", json_string(in.error));
        json_array_append_new(data, json_pack("{s:s, s:s, s:I, s:s, s:s, s:b, s:o}", "id", in.id, "object", "model",
                                              "created", (json_int_t)srv->created, "owned_by", "locara", "state",
                                              lc_mgr_state_name(in.state), "loaded", in.state == LC_MGR_LOADED,
                                              "meta", meta));
    }
    return serve_reply_json(c, 200, json_pack("{s:s, s:o}", "object", "list", "data", data));
}

/* GET /api/ps: {"models": [loaded or loading models], "memory": {budget, used, runtime}, "stats"}.
 * expires_in_s is null for a pinned model or one in use. */
int serve_ps(serve_conn *c) {
    serve *srv = c->srv;
    json_t *models = json_array();
    for (int i = 0; i < lc_mgr_count(srv->mgr); i++) {
        lc_mgr_info in;
        lc_mgr_info_get(srv->mgr, i, &in);
        if (in.state == LC_MGR_UNLOADED) continue;
        json_array_append_new(models,
                              json_pack("{s:s, s:s, s:s, s:o, s:I, s:i, s:f, s:o, s:o, s:i, s:s, s:i, s:s}", "id", in.id,
                                        "state", lc_mgr_state_name(in.state), "file", in.file, "aliases",
                                        aliases_json(&in), "memory_bytes", (json_int_t)in.bytes, "requests", in.refs,
                                        "idle_s", in.idle_s, "keep_alive_s", secs(in.keep_alive_s), "expires_in_s",
                                        secs(in.expires_in_s), "n_ctx", in.n_ctx, "kv_type", in.kv_type, "parallel",
                                        in.parallel, "arch", in.arch));
    }
    lc_mgr_stats st;
    lc_mgr_stats_get(srv->mgr, &st);
    json_t *mem = json_pack("{s:I, s:I, s:I}", "budget_bytes", (json_int_t)st.budget_bytes, "used_bytes",
                            (json_int_t)st.used_bytes, "runtime_bytes", (json_int_t)st.runtime_bytes);
    json_t *stats = json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "loads", (json_int_t)st.loads, "unloads",
                              (json_int_t)st.unloads, "evictions", (json_int_t)st.evictions, "idle_unloads",
                              (json_int_t)st.idle_unloads, "pressure_unloads", (json_int_t)st.pressure_unloads,
                              "pressure_warnings", (json_int_t)st.pressure_warnings, "pressure_criticals",
                              (json_int_t)st.pressure_criticals);
    return serve_reply_json(c, 200, json_pack("{s:o, s:o, s:o}", "models", models, "memory", mem, "stats", stats));
}
