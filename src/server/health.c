/* health.c — GET /health: {"status":"ok"} while serving, 503 {"status":"shutting down"} while
 * draining (llama-server compatible shape). Entry: serve_health.
 */
#include "server/server.h"

int serve_health(serve_conn *c) {
    bool draining = atomic_load(&c->srv->draining);
    return serve_reply_json(c, draining ? 503 : 200, json_pack("{s:s}", "status", draining ? "shutting down" : "ok"));
}
