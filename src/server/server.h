/* server.h — the internals shared by the files of `locara serve` (src/server/).
 *
 * Owns: the server object, the OpenAI request model (parsed and validated JSON), error replies,
 * the route table's handler type, and the helpers endpoints share (chat prompt rendering, JSON
 * mode constraint, the generation response writer). One file per endpoint; HTTP plumbing in
 * http.c; no locks here (they live in engine/scheduler.c and runtime/manager.c). Models come
 * from the model manager: a handler acquires the request's model (loading it on demand) and the
 * lease ends with the response. Entry points: serve_start, serve_drain, serve_stop,
 * serve_req_parse, serve_hook_load/serve_hook_unload (the manager's per-model hooks).
 */
#ifndef LC_SERVER_H
#define LC_SERVER_H

#include "engine/scheduler.h"
#include "runtime/manager.h"
#include "text/outparse.h"

#include <jansson.h>
#include <stdatomic.h>

struct MHD_Connection;
struct MHD_Daemon;

/* ==== Errors ==== */

/* An OpenAI-style error: {"error":{"message","type","param","code"}} with an HTTP status. */
typedef struct serve_err {
    int status;
    const char *type;  /* "invalid_request_error", "not_found_error", "server_error", ... */
    const char *param; /* static string or NULL */
    const char *code;  /* static string or NULL */
    char message[1280]; /* room for a wrapped lc_last_error (1024 bytes) */
} serve_err;

/* Fills e and returns LC_ERR_INVALID, so validation code is one line. */
lc_status serve_fail(serve_err *e, int status, const char *param, const char *code, const char *fmt, ...)
    LC_PRINTF(5, 6);

/* ==== Requests ==== */

typedef enum serve_kind { SERVE_CHAT, SERVE_COMPLETION } serve_kind;

/* A validated /v1/chat/completions or /v1/completions request. */
typedef struct serve_req {
    serve_kind kind;
    json_t *root;            /* the parsed body (owned) */
    const char *model;       /* NULL when absent */
    json_t *messages;        /* chat: normalised messages for the template (owned) */
    json_t *tools;           /* chat: borrowed from root; NULL when none (or tool_choice none) */
    bool tool_required;      /* tool_choice "required" or a named function: the reply is a tool call */
    const char *tool_name;   /* tool_choice {"type":"function","function":{"name":..}} (into root) */
    char *prefill;           /* chat: text appended to the rendered prompt (forced tool call; owned) */
    const char *prompt;      /* completions: text prompt, or NULL with prompt_tokens */
    lc_token *prompt_tokens; /* completions: token prompt (owned) */
    int n_prompt_tokens;
    bool stream, include_usage;
    bool json_mode;          /* response_format json_object, or json_schema served as json_object
                              * (valid JSON object; the schema is not enforced) */
    bool seed_given;
    bool starts_in_reasoning; /* chat: the rendered prompt ends inside a reasoning block */
    double keep_alive;       /* Ollama-style "keep_alive" (seconds, -1 forever); LC_KEEP_UNSET if absent */
    lc_gen_params gp;        /* stops point into root; logit_bias owned */
    const char *stop_strs[16];
} serve_req;

/* Parses and validates body as a request of kind; token ids are only checked to be
 * non-negative int32 (serve_req_check_vocab range-checks them once the model is known). On
 * failure fills err (status 400) and returns non-OK; on success out must be freed with
 * serve_req_free. Never touches a model: fuzzable alone. */
lc_status serve_req_parse(const char *body, size_t len, serve_kind kind, serve_req *out, serve_err *err);
void serve_req_free(serve_req *r);
/* Range-checks the request's token ids (prompt, logit_bias keys) against the model's vocabulary,
 * once the model is known; 400 when one is out of range. */
lc_status serve_req_check_vocab(const serve_req *r, int n_vocab, serve_err *err);

/* ==== The server ==== */

typedef struct serve_opts {
    const char *host;
    int port;
    size_t max_body;
    int timeout_s;      /* an idle connection is closed after this long (0: 600, set by serve_start). A
                         * generation keeps its connection alive while the model works: a stream
                         * sends SSE comments, a whole reply lifts the timeout until it answers. */
} serve_opts;

/* What the server keeps per loaded model: made by serve_hook_load when the manager loads it,
 * freed by serve_hook_unload. Read-only while requests use it. */
typedef struct serve_model {
    const char *id;         /* the manager's id */
    lc_model *model;
    lc_sched *sched;
    char *chat_template;    /* from GGUF metadata; NULL = ChatML fallback */
    void *chat_tmpl;        /* parsed lc_jinja_tmpl */
    lc_outparse_opts parse; /* the template's output syntax (tool-call format, reasoning markers),
                             * derived once here; requests copy it and set their own fields */
    char bos[64], eos[64];  /* the special tokens' text, for templates */
    int n_vocab;
    char **pieces;          /* every token's text (JSON mode) */
    uint16_t *piece_len;
    uint8_t *tok_flags;     /* bit 0: end of generation; bit 1: control token */
} serve_model;

lc_status serve_hook_load(void *ud, const char *id, lc_model *model, lc_sched *sched, void **data);
void serve_hook_unload(void *ud, void *data);

typedef struct serve {
    serve_opts o;
    lc_mgr *mgr;            /* not owned */
    struct MHD_Daemon *daemon;
    long long created;
    atomic_int inflight;    /* generation requests in progress */
    atomic_bool draining;
    atomic_long http_requests, http_4xx, http_5xx;
} serve;

/* Starts listening; models come from mgr (not owned). */
lc_status serve_start(serve *srv, const serve_opts *o, lc_mgr *mgr);
/* Stops accepting connections and waits (up to timeout_s) until in-flight requests finished. */
void serve_drain(serve *srv, double timeout_s);
void serve_stop(serve *srv);

/* ==== Route handlers (one file each) ==== */

/* One HTTP request as a handler sees it. */
typedef struct serve_conn {
    serve *srv;
    struct MHD_Connection *mhd;
    const char *method, *url;
    const char *body;
    size_t body_len;
} serve_conn;

typedef int (*serve_handler)(serve_conn *c);

int serve_chat_completions(serve_conn *c);
int serve_completions(serve_conn *c);
int serve_models(serve_conn *c);
int serve_ps(serve_conn *c);
int serve_health(serve_conn *c);
int serve_metrics(serve_conn *c);
int serve_tokenize(serve_conn *c);
int serve_detokenize(serve_conn *c);

/* ==== Reply helpers (http.c) ==== */

/* Sends a JSON body (steals j) with status. Returns an MHD_Result. */
int serve_reply_json(serve_conn *c, int status, json_t *j);
int serve_reply_text(serve_conn *c, int status, const char *ctype, const char *text, size_t len);
int serve_reply_error(serve_conn *c, const serve_err *e);
/* True once the client has closed its side of the connection. */
bool serve_client_gone(serve_conn *c);

/* ==== Shared pieces ==== */

/* Renders req's messages (and tools) with the model's chat template, ending with the assistant
 * generation prompt. *out is lc_malloc'd. On failure fills err. (chat_prompt.c) */
lc_status serve_render_chat(serve_model *sm, const serve_req *rq, char **out, serve_err *err);
lc_status serve_chat_init(serve_model *sm);
void serve_chat_free(serve_model *sm);

/* Token pieces table for JSON mode and tokenization helpers. (json_mode.c) */
lc_status serve_pieces_init(serve_model *sm);
void serve_pieces_free(serve_model *sm);
/* Runs the JSON-mode automaton over text (tests, fuzzing): false if it rejects a byte;
 * *complete when text is one whole JSON object. */
bool serve_json_check(const char *text, size_t len, bool *complete);
/* A constraint that keeps the output a valid JSON object (see json_mode.c). */
lc_status serve_json_constraint(serve_model *sm, lc_sched_constraint *out);

/* One segment of a sampling grammar: the output continues with one of alts[0..n_alts) (copied;
 * equal ones count once, and none may be a prefix of another), or with one JSON object when
 * n_alts is 0. */
typedef struct serve_gseg {
    const char *const *alts;
    int n_alts;
} serve_gseg;
/* A constraint that keeps the output to segs[0..n) in order, then end-of-generation. */
lc_status serve_grammar_constraint(serve_model *sm, const serve_gseg *segs, int n, lc_sched_constraint *out);

/* Forced tool calls (tool_choice "required" or a named function; tool_choice.c). serve_tool_prefill
 * sets rq->prefill: the text the model's call syntax opens with (and the name, when one is
 * named), appended to the rendered prompt; 400 when the template has no tool-call syntax.
 * serve_tool_constraint makes the grammar for the rest of the call (name among the tools,
 * arguments a JSON object, the closing syntax), after which only end-of-generation may follow. */
lc_status serve_tool_prefill(serve_model *sm, serve_req *rq, serve_err *err);
lc_status serve_tool_constraint(serve_model *sm, const serve_req *rq, lc_sched_constraint *out);

/* A JSON string of n bytes; invalid UTF-8 becomes U+FFFD. (generate.c) */
json_t *serve_json_str(const char *p, size_t n);

/* Acquires the model a request names (NULL: the default one), loading it if needed. On failure
 * fills err: 404 for an unknown model, 503 when it does not fit the memory budget or the server
 * is stopping, 500 when it does not load. On success out->data is its serve_model. (models.c) */
lc_status serve_acquire(serve *srv, const char *model, lc_mgr_lease *out, serve_err *err);

/* Tokenizes text into a fresh array (*out lc_malloc'd, *n its length). */
lc_status serve_tokenize_text(serve_model *sm, const char *text, size_t len, bool add_special, bool parse_special,
                              lc_token **out, int *n);

/* Runs a validated request (prompt tokens ready) on the leased model and writes the response: a
 * JSON body or an SSE stream. Takes ownership of rq's contents and of the lease (released with
 * rq's keep_alive when the response ends). (generate.c) */
int serve_generate(serve_conn *c, lc_mgr_lease *lease, serve_req *rq, lc_token *prompt, int n_prompt);

#endif /* LC_SERVER_H */
