/* serve.c — `locara serve`: build the model list (-m FILE, --manifest FILE, --models-dir DIR),
 * start the model manager (memory budget, keep_alive, pressure monitor) and the OpenAI-compatible
 * HTTP server, load pinned models up front, and serve until SIGINT/SIGTERM; then stop accepting,
 * let in-flight responses finish, unload everything, exit 0.
 */
#include "cli.h"

#include "server/server.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char usage_text[] =
    "usage: locara serve [-m FILE] [--models-dir DIR] [--manifest FILE] [--memory-budget SIZE]\n"
    "                    [--keep-alive DUR] [--host H] [--port P] [--parallel N] [--ctx N] [--kv-type T]\n"
    "                    [--batch B] [--keep N] [--max-body BYTES] [-t N] [--alias NAME]\n"
    "                    [--pressure-file PATH] [--memory-events PATH] [--pressure-interval MS]\n"
    "Serves the OpenAI API (/v1/chat/completions, /v1/completions, /v1/models) plus /health,\n"
    "/metrics, /tokenize, /detokenize and /api/ps (what `locara ps` shows).\n"
    "Models: -m FILE serves one file, pinned (never unloaded unless a request sends keep_alive 0);\n"
    "--models-dir serves every *.gguf in DIR (id = file name without .gguf); --manifest reads a JSON\n"
    "list (see src/runtime/manifest.h). With none of them: the default model, pinned, plus the\n"
    "default models dir ($XDG_DATA_HOME/locara/models) when it exists. A request's \"model\" picks\n"
    "an id or alias; models load on first use and unload after keep_alive idle (default 3m; a\n"
    "request may send \"keep_alive\": \"5m\", 0 or -1, as with Ollama).\n"
    "Memory: the budget (default 90% of MemAvailable, capped by the cgroup's memory.max) counts the\n"
    "process baseline once plus each loaded model's predicted memory (`locara fit`, or its\n"
    "requires.memoryGB when larger). A model that does not fit unloads idle models LRU first, else\n"
    "the request gets 503.\n"
    "Pressure: PSI (/proc/pressure/memory) and the cgroup's memory.events. A WARNING (PSI some\n"
    "avg10 >= 10%, or memory.events 'high' rises) drops cached KV blocks; a CRITICAL (PSI full\n"
    "avg10 >= 5%, or 'max'/'oom'/'oom_kill' rise) also unloads idle, unpinned models. Regular\n"
    "files are re-read every --pressure-interval ms and judged when they change; FIFOs line by\n"
    "line; 'off' disables a source. --ctx is the KV capacity shared by all --parallel sequences.\n"
    "--keep N turns on context shift (keep N tokens, drop half of the rest).\n";

/* $XDG_DATA_HOME/locara/models (default ~/.local/share/locara/models) into buf. */
static void default_models_dir(char *buf, size_t cap) {
    lc_xdg_path("XDG_DATA_HOME", ".local/share", "locara/models", buf, cap);
}

int cmd_serve(int argc, char **argv) {
    const char *model_path = NULL, *host = "127.0.0.1", *kv = "f16", *alias = NULL;
    const char *models_dir = NULL, *manifest_path = NULL, *budget_s = NULL, *keep_s = NULL;
    const char *psi_path = NULL, *events_path = NULL;
    int port = 8080, parallel = 4, n_ctx = 0, batch = 512, keep = -1, threads = 0, interval_ms = 1000, ngl = -1;
    long long max_body = 8 << 20;
    int timeout = 600;
    bool verbose = false;
    const cli_opt opts[] = {
        {"--model", "-m", CLI_STR, &model_path, "GGUF model file, pinned (default: the default model)"},
        {"--models-dir", NULL, CLI_STR, &models_dir, "serve every *.gguf file in this directory"},
        {"--manifest", NULL, CLI_STR, &manifest_path, "JSON list of models (ids, aliases, files, settings)"},
        {"--memory-budget", NULL, CLI_STR, &budget_s, "memory for the process and its models (bytes, 512MiB, 8GiB)"},
        {"--keep-alive", NULL, CLI_STR, &keep_s, "idle time before a model unloads (default 3m; -1 never)"},
        {"--host", NULL, CLI_STR, &host, "address to listen on (default 127.0.0.1)"},
        {"--port", NULL, CLI_INT, &port, "port (default 8080; 0 picks a free one)"},
        {"--parallel", "-np", CLI_INT, &parallel, "sequences decoded together per model (default 4)"},
        {"--ctx", "-c", CLI_INT, &n_ctx, "total KV capacity in tokens, shared (default min(train, 8192))"},
        {"--kv-type", NULL, CLI_STR, &kv, "KV cache type: f16, q8_0, q4_0 (default f16)"},
        {"--batch", "-b", CLI_INT, &batch, "tokens per engine step (default 512)"},
        {"--keep", NULL, CLI_INT, &keep, "context shift: tokens kept at the start (default off)"},
        {"--max-body", NULL, CLI_INT64, &max_body, "largest request body in bytes (default 8 MiB)"},
        {"--timeout", NULL, CLI_INT, &timeout, "seconds an idle connection stays open (default 600)"},
        {"--threads", "-t", CLI_INT, &threads, "compute threads (default: physical cores)"},
        {"--n-gpu-layers", "-ngl", CLI_INT, &ngl, "layers on the GPU when one is present (default: all; 0: none)"},
        {"--alias", "-a", CLI_STR, &alias, "id of the -m model in /v1/models (default: file name)"},
        {"--pressure-file", NULL, CLI_STR, &psi_path, "PSI file to watch (default /proc/pressure/memory; off)"},
        {"--memory-events", NULL, CLI_STR, &events_path, "memory.events to watch (default: this cgroup's; off)"},
        {"--pressure-interval", NULL, CLI_INT, &interval_ms, "re-read period of pressure files in ms (default 1000)"},
        {"--verbose", "-v", CLI_BOOL, &verbose, "log more"},
    };
    int npos = 0;
    int rc = cli_parse(argc, argv, opts, (int)LC_ARRAY_LEN(opts), NULL, 0, &npos, usage_text);
    if (rc) return rc == 1 ? 0 : rc;
    if (port < 0 || port > 65535 || parallel < 1 || parallel > 256 || n_ctx < 0 || batch < 1 || keep < -1 ||
        max_body < 16 || threads < 0 || interval_ms < 1 || timeout < 1) {
        fprintf(stderr, "locara: serve: a flag value is out of range (see --help)\n");
        return 2;
    }
    int kv_type = cli_kv_type(kv);
    if (!kv_type) return 2;
    size_t budget = 0;
    double keep_alive = LC_KEEP_UNSET;
    if (budget_s && (lc_size_parse(budget_s, &budget) || !budget)) {
        fprintf(stderr, "locara: serve: --memory-budget: %s\n", budget ? lc_last_error() : "must be positive");
        return 2;
    }
    if (keep_s && lc_duration_parse(keep_s, &keep_alive)) {
        fprintf(stderr, "locara: serve: --keep-alive: %s\n", lc_last_error());
        return 2;
    }
    if (verbose) lc_log_set_level(LC_LOG_DEBUG);

    /* The model list. */
    lc_manifest mf = {0};
    mf.keep_alive = LC_KEEP_UNSET;
    lc_status st = LC_OK;
    char dflt_dir[1024];
    if (manifest_path && (st = lc_manifest_load(manifest_path, &mf))) {
        fprintf(stderr, "locara: serve: %s\n", lc_last_error());
        return 1;
    }
    if (!model_path && !models_dir && !manifest_path) {
        if (!(model_path = cli_default_model())) return 1;
        struct stat sb;
        default_models_dir(dflt_dir, sizeof dflt_dir);
        if (!stat(dflt_dir, &sb) && S_ISDIR(sb.st_mode)) models_dir = dflt_dir;
    }
    if (model_path) st = lc_manifest_add_file(&mf, model_path, alias, LC_KEEP_FOREVER);
    if (!st && models_dir) st = lc_manifest_add_dir(&mf, models_dir);
    if (st) {
        fprintf(stderr, "locara: serve: %s\n", lc_last_error());
        lc_manifest_free(&mf);
        return 1;
    }

    /* Signals: block them in every thread; the main thread waits for them with sigwait. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    serve srv;
    memset(&srv, 0, sizeof srv);
    lc_mgr *mgr = NULL;
    int exit_code = 1;
    lc_mgr_params mp = lc_mgr_params_default();
    mp.budget_bytes = budget;
    mp.keep_alive = keep_alive;
    mp.n_ctx = n_ctx;
    mp.kv_type = kv_type;
    mp.parallel = parallel;
    mp.n_batch = LC_MAX(batch, parallel);
    mp.n_keep = keep;
    mp.n_threads = threads;
    mp.n_gpu_layers = ngl;
    mp.hooks = (lc_mgr_hooks){.ud = &srv, .on_load = serve_hook_load, .on_unload = serve_hook_unload};
    mp.psi_path = psi_path;
    mp.events_path = events_path;
    mp.pressure_interval_ms = interval_ms;
    if ((st = lc_mgr_create(&mf, &mp, &mgr))) {
        fprintf(stderr, "locara: serve: %s\n", lc_last_error());
        lc_manifest_free(&mf);
        return 1;
    }
    /* pinned models load now, so a bad file stops start-up as it always did */
    int n_models = lc_mgr_count(mgr);
    for (int i = 0; i < n_models; i++) {
        lc_mgr_info in;
        lc_mgr_info_get(mgr, i, &in);
        if (in.keep_alive_s >= 0) continue;
        lc_mgr_lease l;
        if ((st = lc_mgr_acquire(mgr, in.id, &l))) {
            fprintf(stderr, "locara: cannot load %s: %s\n", in.file, lc_last_error());
            goto done;
        }
        lc_mgr_release(mgr, &l, LC_KEEP_UNSET);
    }
    serve_opts so = {.host = host, .port = port, .max_body = (size_t)max_body, .timeout_s = timeout};
    if ((st = serve_start(&srv, &so, mgr))) {
        fprintf(stderr, "locara: serve: %s\n", lc_last_error());
        goto done;
    }
    lc_mgr_stats ms;
    lc_mgr_stats_get(mgr, &ms);
    lc_mgr_info first;
    lc_mgr_info_get(mgr, 0, &first);
    fprintf(stderr, "locara serve: %s%s (%d model%s; budget %.0f MiB, %.0f MiB in use) listening on http://%s:%d\n",
            first.id, n_models > 1 ? " and others" : "", n_models, n_models > 1 ? "s" : "",
            (double)ms.budget_bytes / 1048576.0, (double)ms.used_bytes / 1048576.0, host, srv.o.port);
    fflush(stderr);
    int sig = 0;
    sigwait(&set, &sig);
    fprintf(stderr, "locara serve: %s received, finishing in-flight requests\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
    serve_drain(&srv, 120);
    exit_code = 0;
done:
    serve_stop(&srv);
    lc_mgr_free(mgr);
    return exit_code;
}
