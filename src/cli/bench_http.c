/* bench_http.c — `locara bench http`: flags into lc_bench_http_params, then lc_bench_http_run.
 *
 * One configuration from --url/--model (optionally --server-cmd), or several from --config FILE;
 * flags given on the command line override the file. --report DIR only re-renders DIR's
 * summary.md and report.html from its results.jsonl. Called by `locara bench` for "http".
 */
#include "cli.h"

#include "bench/http.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage_line[] =
    "locara bench http --url URL --model M [--api-key K] [--depths 20,4096,...] [--reps N]\n"
    "         [--concurrency 1,4] [--out DIR]   |   --config FILE   |   --report DIR";

/* Re-renders summary.md and report.html from DIR/results.jsonl. */
static int rerender(const char *dir, const char *title) {
    char path[4096];
    lc_bench_row *rows;
    int n;
    snprintf(path, sizeof path, "%s/results.jsonl", dir);
    lc_status st = lc_bench_rows_load(path, &rows, &n);
    if (st == LC_OK) {
        snprintf(path, sizeof path, "%s/summary.md", dir);
        st = lc_bench_write_summary(path, rows, n, title);
    }
    if (st == LC_OK) {
        snprintf(path, sizeof path, "%s/report.html", dir);
        st = lc_bench_write_html(path, rows, n, title);
        lc_free(rows);
    }
    if (st != LC_OK) {
        fprintf(stderr, "locara: %s\n", lc_last_error());
        return 1;
    }
    fprintf(stderr, "wrote %s/summary.md and %s/report.html from %d rows\n", dir, dir, n);
    return 0;
}

int cmd_bench_http(int argc, char **argv) {
    const char *url = NULL, *model = NULL, *api_key = NULL, *name = NULL, *server_cmd = NULL;
    const char *config = NULL, *depths = NULL, *conc = NULL, *out = NULL, *corpus = NULL;
    const char *src = NULL, *title = NULL, *report = NULL;
    int reps = -1, max_tokens = -1;
    long long seed = -1;
    float timeout = -1, startup_timeout = -1;
    bool no_warm = false, no_skip = false, quiet = false;
    const cli_opt opts[] = {
        {"--url", NULL, CLI_STR, &url, "base URL of an OpenAI-compatible server (http://host:port)"},
        {"--model", NULL, CLI_STR, &model, "model name sent in requests"},
        {"--api-key", NULL, CLI_STR, &api_key, "bearer token"},
        {"--name", NULL, CLI_STR, &name, "label of this configuration in the results"},
        {"--server-cmd", NULL, CLI_STR, &server_cmd, "start this server (sh -c), wait for /health, stop it after"},
        {"--config", NULL, CLI_STR, &config, "JSON file listing several configurations (see bench/http/)"},
        {"--depths", NULL, CLI_STR, &depths, "prompt depths in tokens (default 20,512,4k,16k,32k,64k,128k)"},
        {"--reps", NULL, CLI_INT, &reps, "measured repetitions per depth (default 3)"},
        {"--concurrency", NULL, CLI_STR, &conc, "simultaneous streams, a list (default 1)"},
        {"--max-tokens", NULL, CLI_INT, &max_tokens, "tokens to generate per request (default 64)"},
        {"--seed", NULL, CLI_INT64, &seed, "picks the prompt material (default 42)"},
        {"--timeout", NULL, CLI_FLOAT, &timeout, "seconds per request (default 600)"},
        {"--startup-timeout", NULL, CLI_FLOAT, &startup_timeout, "seconds for a server to become healthy (default 300)"},
        {"--no-warm", NULL, CLI_BOOL, &no_warm, "measure cold requests only"},
        {"--no-skip", NULL, CLI_BOOL, &no_skip, "keep measuring deeper after a depth failed entirely"},
        {"--out", "-o", CLI_STR, &out, "output folder (default bench-out)"},
        {"--title", NULL, CLI_STR, &title, "report title"},
        {"--corpus", NULL, CLI_STR, &corpus, "prompt templates folder (default bench/corpus)"},
        {"--src", NULL, CLI_STR, &src, "source files read by the agent prompts (default src/)"},
        {"--report", NULL, CLI_STR, &report, "only re-render DIR's summary and report from results.jsonl"},
        {"--quiet", "-q", CLI_BOOL, &quiet, "no progress display"},
    };
    const char *pos[1];
    int n_pos;
    int rc = cli_parse(argc, argv, opts, (int)(sizeof opts / sizeof opts[0]), pos, 0, &n_pos, usage_line);
    if (rc) return rc == 1 ? 0 : rc;
    if (report) return rerender(report, title ? title : "locara bench http");

    lc_bench_http_params p;
    lc_bench_http_params_default(&p);
    lc_status st = LC_OK;
    if (config) st = lc_bench_http_load_config(config, &p);
    if (st == LC_OK && url) st = lc_bench_http_add_run(&p, name, server_cmd, url, model, api_key);
    if (st == LC_OK && !url && (model || server_cmd || name)) {
        fprintf(stderr, "locara: --model, --server-cmd and --name need --url\n");
        lc_bench_http_params_free(&p);
        return 2;
    }
    if (st == LC_OK && p.n_runs == 0) {
        fprintf(stderr, "locara: give --url URL --model M, or --config FILE (see --help)\n");
        lc_bench_http_params_free(&p);
        return 2;
    }
    if (st == LC_OK && depths && (p.n_depths = lc_bench_parse_int_list(depths, p.depths, LC_BENCH_MAX_DEPTHS)) < 0)
        st = LC_ERR_INVALID;
    if (st == LC_OK && conc && (p.n_conc = lc_bench_parse_int_list(conc, p.conc, LC_BENCH_MAX_CONC)) < 0)
        st = LC_ERR_INVALID;
    if (st != LC_OK) {
        fprintf(stderr, "locara: %s\n", lc_last_error());
        lc_bench_http_params_free(&p);
        return 2;
    }
    if (reps >= 0) p.reps = reps;
    if (max_tokens >= 0) p.max_tokens = max_tokens;
    if (seed >= 0) p.seed = (uint64_t)seed;
    if (timeout > 0) p.timeout_s = timeout;
    if (startup_timeout > 0) p.startup_timeout_s = startup_timeout;
    if (no_warm) p.warm = 0;
    if (no_skip) p.skip_deeper = 0;
    p.quiet = quiet;
    if (out) {
        lc_free(p.out_dir);
        p.out_dir = lc_strdup(out);
    }
    if (title) {
        lc_free(p.title);
        p.title = lc_strdup(title);
    }
    if (corpus) p.corpus_dir = lc_strdup(corpus);
    if (src) p.src_dir = lc_strdup(src);

    st = lc_bench_http_run(&p);
    if (st != LC_OK) {
        fprintf(stderr, "locara: bench http: %s\n", lc_last_error());
        lc_bench_http_params_free(&p);
        return 1;
    }
    fprintf(stderr, "wrote %s/results.jsonl, summary.md, report.html\n", p.out_dir ? p.out_dir : "bench-out");
    lc_bench_http_params_free(&p);
    return 0;
}
