/* serve.c — `locara serve`: load a model, make one context whose KV pool all parallel
 * sequences share, start the engine scheduler and the OpenAI-compatible HTTP server, and
 * serve until SIGINT/SIGTERM; then stop accepting, let in-flight responses finish, exit 0.
 */
#include "cli.h"

#include "server/server.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

static const char usage_text[] =
    "usage: locara serve [-m FILE] [--host H] [--port P] [--parallel N] [--ctx N] [--kv-type T]\n"
    "                    [--batch B] [--keep N] [--max-body BYTES] [-t N] [--alias NAME]\n"
    "Serves the OpenAI API (/v1/chat/completions, /v1/completions, /v1/models) plus /health,\n"
    "/metrics, /tokenize and /detokenize. --ctx is the KV capacity shared by all --parallel\n"
    "sequences. --keep N turns on context shift (keep N tokens, drop half of the rest).\n";

int cmd_serve(int argc, char **argv) {
    const char *model_path = NULL, *host = "127.0.0.1", *kv = "f16", *alias = NULL;
    int port = 8080, parallel = 4, n_ctx = 0, batch = 512, keep = -1, threads = 0;
    long long max_body = 8 << 20;
    bool verbose = false;
    const cli_opt opts[] = {
        {"--model", "-m", CLI_STR, &model_path, "GGUF model file (default: the default model)"},
        {"--host", NULL, CLI_STR, &host, "address to listen on (default 127.0.0.1)"},
        {"--port", NULL, CLI_INT, &port, "port (default 8080; 0 picks a free one)"},
        {"--parallel", "-np", CLI_INT, &parallel, "sequences decoded together (default 4)"},
        {"--ctx", "-c", CLI_INT, &n_ctx, "total KV capacity in tokens, shared (default min(train, 8192))"},
        {"--kv-type", NULL, CLI_STR, &kv, "KV cache type: f16, q8_0, q4_0 (default f16)"},
        {"--batch", "-b", CLI_INT, &batch, "tokens per engine step (default 512)"},
        {"--keep", NULL, CLI_INT, &keep, "context shift: tokens kept at the start (default off)"},
        {"--max-body", NULL, CLI_INT64, &max_body, "largest request body in bytes (default 8 MiB)"},
        {"--threads", "-t", CLI_INT, &threads, "compute threads (default: physical cores)"},
        {"--alias", "-a", CLI_STR, &alias, "model id reported by /v1/models (default: file name)"},
        {"--verbose", "-v", CLI_BOOL, &verbose, "log more"},
    };
    int npos = 0;
    int rc = cli_parse(argc, argv, opts, (int)LC_ARRAY_LEN(opts), NULL, 0, &npos, usage_text);
    if (rc) return rc == 1 ? 0 : rc;
    if (port < 0 || port > 65535 || parallel < 1 || parallel > 256 || n_ctx < 0 || batch < 1 || keep < -1 ||
        max_body < 16 || threads < 0) {
        fprintf(stderr, "locara: serve: a flag value is out of range (see --help)\n");
        return 2;
    }
    int kv_type = cli_kv_type(kv);
    if (!kv_type) return 2;
    if (!model_path && !(model_path = cli_default_model())) return 1;
    if (verbose) lc_log_set_level(LC_LOG_DEBUG);

    /* Signals: block them in every thread; the main thread waits for them with sigwait. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    lc_model *model = NULL;
    lc_context *ctx = NULL;
    lc_sched *sched = NULL;
    serve srv;
    memset(&srv, 0, sizeof srv);
    int exit_code = 1;
    lc_status st = lc_model_load(model_path, lc_model_params_default(), &model);
    if (st) {
        fprintf(stderr, "locara: cannot load %s: %s\n", model_path, lc_last_error());
        return 1;
    }
    lc_context_params cp = lc_context_params_default();
    cp.n_ctx = n_ctx ? n_ctx : LC_MIN(lc_model_n_ctx_train(model), 8192);
    cp.n_batch = LC_MAX(batch, parallel);
    cp.n_seq_max = parallel;
    cp.n_threads = threads;
    cp.kv_type = (lc_kv_type)kv_type;
    if ((st = lc_context_create(model, cp, &ctx))) {
        fprintf(stderr, "locara: cannot create a context: %s\n", lc_last_error());
        goto done;
    }
    lc_sched_params sp = {.n_parallel = parallel, .n_batch = cp.n_batch, .n_keep = keep};
    if ((st = lc_sched_create(ctx, &sp, &sched))) {
        fprintf(stderr, "locara: cannot start the scheduler: %s\n", lc_last_error());
        goto done;
    }
    char id[256];
    const char *base = strrchr(model_path, '/');
    base = base ? base + 1 : model_path;
    snprintf(id, sizeof id, "%s", alias ? alias : base);
    size_t n = strlen(id);
    if (!alias && n > 5 && !strcmp(id + n - 5, ".gguf")) id[n - 5] = 0;
    serve_opts so = {.host = host, .port = port, .max_body = (size_t)max_body, .model_id = id, .model_path = model_path};
    if ((st = serve_start(&srv, &so, model, sched))) {
        fprintf(stderr, "locara: serve: %s\n", lc_last_error());
        goto done;
    }
    fprintf(stderr, "locara serve: %s (ctx %d shared by %d sequences, batch %d) listening on http://%s:%d\n", id,
            cp.n_ctx, parallel, cp.n_batch, host, srv.o.port);
    fflush(stderr);
    int sig = 0;
    sigwait(&set, &sig);
    fprintf(stderr, "locara serve: %s received, finishing in-flight requests\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
    serve_drain(&srv, 120);
    exit_code = 0;
done:
    serve_stop(&srv);
    lc_sched_free(sched);
    lc_context_free(ctx);
    lc_model_free(model);
    return exit_code;
}
