/* models.c — GET /v1/models (the one served model, OpenAI's list shape) and the model-name
 * check every generation request goes through. Entries: serve_models, serve_check_model.
 */
#include "server/server.h"

#include <string.h>

/* Accepts the served id, the file's base name with or without ".gguf", or "default". */
lc_status serve_check_model(serve *srv, const char *model, serve_err *err) {
    if (!model || !*model || !strcmp(model, srv->o.model_id) || !strcmp(model, "default")) return LC_OK;
    const char *path = srv->o.model_path ? srv->o.model_path : "";
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    size_t n = strlen(model);
    if (!strcmp(model, base) || (!strncmp(model, base, n) && !strcmp(base + n, ".gguf"))) return LC_OK;
    return serve_fail(err, 404, "model", "model_not_found", "the model '%.200s' does not exist; this server serves '%s'",
                      model, srv->o.model_id);
}

int serve_models(serve_conn *c) {
    serve *srv = c->srv;
    json_t *m = json_pack("{s:s, s:s, s:I, s:s, s:{s:i, s:s}}", "id", srv->o.model_id, "object", "model", "created",
                          (json_int_t)srv->created, "owned_by", "locara", "meta", "n_ctx", lc_sched_n_ctx(srv->sched),
                          "arch", lc_model_arch(srv->model));
    return serve_reply_json(c, 200, json_pack("{s:s, s:[o]}", "object", "list", "data", m));
}
