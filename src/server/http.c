/* http.c — the HTTP plumbing of `locara serve`: the libmicrohttpd daemon, the route table,
 * request bodies (bounded by --max-body), reply helpers and graceful draining.
 *
 * Threading: one MHD thread per connection; handlers run there, parse and validate, then hand
 * work to the scheduler and wait on it (no locks here). Deliberately not here: endpoint logic
 * (one file per endpoint). Entry points: serve_start, serve_drain, serve_stop, serve_reply_*.
 */
#include "server/server.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* ==== Routes ==== */

typedef struct route {
    const char *method;
    const char *path;
    serve_handler fn;
} route;

static const route routes[] = {
    {"POST", "/v1/chat/completions", serve_chat_completions},
    {"POST", "/chat/completions", serve_chat_completions},
    {"POST", "/v1/completions", serve_completions},
    {"POST", "/completions", serve_completions},
    {"GET", "/v1/models", serve_models},
    {"GET", "/models", serve_models},
    {"GET", "/api/ps", serve_ps},
    {"GET", "/health", serve_health},
    {"GET", "/metrics", serve_metrics},
    {"POST", "/tokenize", serve_tokenize},
    {"POST", "/detokenize", serve_detokenize},
};

/* ==== Replies ==== */

int serve_reply_text(serve_conn *c, int status, const char *ctype, const char *text, size_t len) {
    struct MHD_Response *r = MHD_create_response_from_buffer(len, (void *)text, MHD_RESPMEM_MUST_COPY);
    if (!r) return MHD_NO;
    MHD_add_response_header(r, "Content-Type", ctype);
    MHD_add_response_header(r, "Access-Control-Allow-Origin", "*");
    enum MHD_Result ret = MHD_queue_response(c->mhd, (unsigned)status, r);
    MHD_destroy_response(r);
    if (status >= 500) atomic_fetch_add(&c->srv->http_5xx, 1);
    else if (status >= 400) atomic_fetch_add(&c->srv->http_4xx, 1);
    return ret;
}

int serve_reply_json(serve_conn *c, int status, json_t *j) {
    char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (!s) return serve_reply_text(c, 500, "application/json", "{\"error\":{\"message\":\"out of memory\",\"type\":\"server_error\",\"param\":null,\"code\":null}}", 85);
    int ret = serve_reply_text(c, status, "application/json", s, strlen(s));
    free(s);
    return ret;
}

int serve_reply_error(serve_conn *c, const serve_err *e) {
    json_t *err = json_pack("{s:s, s:s, s:o, s:o}", "message", e->message, "type", e->type ? e->type : "invalid_request_error",
                            "param", e->param ? json_string(e->param) : json_null(), "code",
                            e->code ? json_string(e->code) : json_null());
    return serve_reply_json(c, e->status ? e->status : 500, json_pack("{s:o}", "error", err));
}

bool serve_client_gone(serve_conn *c) {
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c->mhd, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (!ci) return false;
    struct pollfd p = {.fd = ci->connect_fd, .events = POLLRDHUP};
    if (poll(&p, 1, 0) <= 0) return false;
    return (p.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0;
}

/* ==== Dispatch ==== */

/* Per-connection state while the body arrives. */
typedef struct pending {
    const route *r;
    lc_str body;
    bool too_big;
} pending;

static enum MHD_Result on_request(void *cls, struct MHD_Connection *mhd, const char *url, const char *method,
                                  const char *version, const char *upload, size_t *upload_size, void **con_cls) {
    serve *srv = cls;
    serve_conn c = {.srv = srv, .mhd = mhd, .method = method, .url = url};
    pending *p = *con_cls;
    serve_err e = {0};
    if (!p) {
        atomic_fetch_add(&srv->http_requests, 1);
        const route *hit = NULL;
        bool path_ok = false;
        for (size_t i = 0; i < LC_ARRAY_LEN(routes); i++) {
            if (strcmp(routes[i].path, url)) continue;
            path_ok = true;
            if (!strcmp(routes[i].method, method)) hit = &routes[i];
        }
        if (!hit) {
            if (path_ok) serve_fail(&e, 405, NULL, "method_not_allowed", "%s is not allowed on %s", method, url);
            else serve_fail(&e, 404, NULL, "not_found", "no route for %s %.200s", method, url);
            return (enum MHD_Result)serve_reply_error(&c, &e);
        }
        p = lc_calloc(1, sizeof *p);
        if (!p) return MHD_NO;
        p->r = hit;
        *con_cls = p;
        const char *cl = MHD_lookup_connection_value(mhd, MHD_HEADER_KIND, "Content-Length");
        if (cl && strtoull(cl, NULL, 10) > srv->o.max_body) p->too_big = true;
        return MHD_YES;
    }
    if (*upload_size) {
        if (!p->too_big && p->body.len + *upload_size > srv->o.max_body) p->too_big = true;
        if (!p->too_big && !lc_str_append(&p->body, upload, *upload_size)) p->too_big = true;
        *upload_size = 0;
        return MHD_YES;
    }
    if (p->too_big) {
        serve_fail(&e, 413, NULL, "request_too_large", "the request body exceeds %zu bytes (--max-body)", srv->o.max_body);
        return (enum MHD_Result)serve_reply_error(&c, &e);
    }
    if (atomic_load(&srv->draining) && strcmp(p->r->method, "GET")) {
        serve_fail(&e, 503, NULL, "shutting_down", "the server is shutting down");
        return (enum MHD_Result)serve_reply_error(&c, &e);
    }
    c.body = p->body.buf ? p->body.buf : "";
    c.body_len = p->body.len;
    return (enum MHD_Result)p->r->fn(&c);
}

static void on_completed(void *cls, struct MHD_Connection *mhd, void **con_cls, enum MHD_RequestTerminationCode toe) {
    pending *p = *con_cls;
    if (!p) return;
    lc_str_free(&p->body);
    lc_free(p);
    *con_cls = NULL;
}

/* ==== Life cycle ==== */

lc_status serve_start(serve *srv, const serve_opts *o, lc_mgr *mgr) {
    srv->o = *o;
    if (srv->o.timeout_s <= 0) srv->o.timeout_s = 600; /* the default, as llama-server's */
    srv->mgr = mgr;
    srv->created = (long long)time(NULL);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE}, *ai = NULL;
    char port[16];
    snprintf(port, sizeof port, "%d", o->port);
    int gai = getaddrinfo(o->host, port, &hints, &ai);
    if (gai || !ai) return lc_fail(LC_ERR_INVALID, "--host %s: %s", o->host, gai_strerror(gai));
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ITC;
    if (ai->ai_family == AF_INET6) flags |= MHD_USE_IPv6;
    srv->daemon = MHD_start_daemon(flags, (uint16_t)o->port, NULL, NULL, on_request, srv, MHD_OPTION_SOCK_ADDR,
                                   ai->ai_addr, MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv,
                                   MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)srv->o.timeout_s, MHD_OPTION_CONNECTION_LIMIT,
                                   (unsigned)512, MHD_OPTION_END);
    freeaddrinfo(ai);
    if (!srv->daemon) return lc_fail(LC_ERR_IO, "cannot listen on %s:%d (address in use?)", o->host, o->port);
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(srv->daemon, MHD_DAEMON_INFO_BIND_PORT);
    if (di) srv->o.port = di->port;
    return LC_OK;
}

void serve_drain(serve *srv, double timeout_s) {
    atomic_store(&srv->draining, true);
    if (!srv->daemon) return;
    MHD_socket fd = MHD_quiesce_daemon(srv->daemon);
    if (fd != MHD_INVALID_SOCKET) close(fd);
    double t0 = lc_time_sec();
    while (atomic_load(&srv->inflight) > 0 && lc_time_sec() - t0 < timeout_s) {
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

void serve_stop(serve *srv) {
    if (srv->daemon) MHD_stop_daemon(srv->daemon);
    srv->daemon = NULL;
}
