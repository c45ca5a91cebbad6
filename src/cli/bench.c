/* bench.c — `locara bench`: engine-level throughput like llama-bench (pp = prompt processing of
 * P tokens in batches, tg = generating N tokens one at a time, optionally at context depth D),
 * repeated R times, reported as mean ± stddev tokens/s in markdown or JSON. `locara bench http`
 * is the HTTP-level agentic benchmark (bench_http.c).
 *
 * Token ids are pseudo-random (as llama-bench does); no sampling is timed. Depth is prefilled
 * once per configuration and kept: repetitions truncate back to it.
 */
#include "cli.h"

#include "engine/context.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_LIST 16

typedef struct bench_result {
    const char *test; /* "pp" or "tg" */
    int n, depth, threads;
    const char *kv;
    double mean, sd;  /* tokens/s */
    double samples[64];
    int n_samples;
} bench_result;

static int parse_list(const char *s, int *out, int max, const char *flag) {
    int n = 0;
    while (s && *s) {
        char *end;
        long v = strtol(s, &end, 10);
        if (end == s || v < 0 || v > 1 << 24 || (*end && *end != ',') || n >= max) {
            fprintf(stderr, "locara: %s expects a comma-separated list of non-negative integers\n", flag);
            return -1;
        }
        out[n++] = (int)v;
        s = *end ? end + 1 : end;
    }
    return n;
}

static uint32_t rng_next(uint64_t *st) {
    *st = *st * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(*st >> 33);
}

/* Feeds n random tokens to sequence 0 starting at its current length, in batches. */
static lc_status feed(lc_context *ctx, int n, int n_batch, uint64_t *rng, bool one_by_one) {
    int n_vocab = lc_model_n_vocab(ctx->model);
    lc_token tok[512];
    int32_t pos[512], seq[512];
    int8_t want[512];
    int step = one_by_one ? 1 : LC_MIN(n_batch, 512);
    for (int done = 0; done < n;) {
        int m = LC_MIN(step, n - done);
        int base = lc_kvc_seq_len(ctx->kvc, 0);
        for (int i = 0; i < m; i++) {
            tok[i] = (lc_token)(rng_next(rng) % (uint32_t)n_vocab);
            pos[i] = base + i;
            seq[i] = 0;
            want[i] = i == m - 1;
        }
        lc_batch b = {m, tok, pos, seq, want};
        lc_status st = lc_decode(ctx, &b);
        if (st) return st;
        done += m;
    }
    return LC_OK;
}


int cmd_bench(int argc, char **argv) {
    if (argc > 0 && !strcmp(argv[0], "http")) return cmd_bench_http(argc - 1, argv + 1);
    const char *model_path = NULL, *p_list = "512", *n_list = "128", *d_list = "0", *t_list = NULL, *kv = "f16";
    int reps = 5, n_batch = 512, ngl = -1;
    bool json = false;
    const cli_opt opts[] = {
        {"--model", "-m", CLI_STR, &model_path, "GGUF file (default: the default model)"},
        {"--n-prompt", "-p", CLI_STR, &p_list, "prompt sizes, comma-separated (0 skips pp)"},
        {"--n-gen", "-n", CLI_STR, &n_list, "generation sizes, comma-separated (0 skips tg)"},
        {"--depth", "-d", CLI_STR, &d_list, "context depths to test at, comma-separated"},
        {"--threads", "-t", CLI_STR, &t_list, "thread counts, comma-separated (default: physical cores)"},
        {"--kv-type", NULL, CLI_STR, &kv, "KV cache type: f16, q8_0, q4_0"},
        {"--repetitions", "-r", CLI_INT, &reps, "repetitions per test (default 5)"},
        {"--batch", "-b", CLI_INT, &n_batch, "batch size for prompt processing (default 512)"},
        {"--n-gpu-layers", "-ngl", CLI_INT, &ngl, "layers on the GPU when one is present (default: all; 0: none)"},
        {"--json", NULL, CLI_BOOL, &json, "print JSON instead of markdown"},
    };
    const char *pos[1];
    int npos;
    int rc = cli_parse(argc, argv, opts, (int)LC_ARRAY_LEN(opts), pos, 0, &npos,
                       "locara bench [-m FILE] [-p 512] [-n 128] [-d 0] [-t N] [--kv-type T] [-r 5] [--json] | locara bench http ...");
    if (rc) return rc == 1 ? 0 : rc;
    int ps[MAX_LIST], ns[MAX_LIST], ds[MAX_LIST], ts[MAX_LIST];
    int np = parse_list(p_list, ps, MAX_LIST, "-p"), nn = parse_list(n_list, ns, MAX_LIST, "-n"),
        nd = parse_list(d_list, ds, MAX_LIST, "-d");
    int nt = 1;
    ts[0] = lc_cpu_physical_cores();
    if (t_list) nt = parse_list(t_list, ts, MAX_LIST, "-t");
    int kv_type = cli_kv_type(kv);
    if (np < 0 || nn < 0 || nd < 0 || nt < 1 || !kv_type) return 2;
    if (reps < 1 || reps > 64 || n_batch < 1) {
        fprintf(stderr, "locara: -r must be 1..64 and -b positive\n");
        return 2;
    }
    if (!model_path && !(model_path = cli_default_model())) return 1;
    lc_model *model;
    lc_model_params mp = lc_model_params_default();
    mp.n_gpu_layers = ngl;
    if (lc_model_load(model_path, mp, &model)) {
        fprintf(stderr, "locara: %s\n", lc_last_error());
        return 1;
    }
    int max_p = 0, max_n = 0, max_d = 0;
    for (int i = 0; i < np; i++) max_p = LC_MAX(max_p, ps[i]);
    for (int i = 0; i < nn; i++) max_n = LC_MAX(max_n, ns[i]);
    for (int i = 0; i < nd; i++) max_d = LC_MAX(max_d, ds[i]);
    double size_gib = (double)model->weight_bytes / (1024.0 * 1024 * 1024);
    const char *name = strrchr(model_path, '/') ? strrchr(model_path, '/') + 1 : model_path;
    if (json) printf("[\n");
    else printf("| model | size | threads | kv | test | t/s |\n| --- | ---: | ---: | --- | --- | ---: |\n");
    int first = 1, status = 0;
    for (int ti = 0; ti < nt && !status; ti++) {
        lc_context_params cp = lc_context_params_default();
        cp.n_ctx = max_d + LC_MAX(max_p, max_n) + 64;
        cp.n_batch = LC_MIN(n_batch, 512);
        cp.n_threads = ts[ti];
        cp.kv_type = (lc_kv_type)kv_type;
        lc_context *ctx;
        if (lc_context_create(model, cp, &ctx)) {
            fprintf(stderr, "locara: %s\n", lc_last_error());
            status = 1;
            break;
        }
        uint64_t rng = 1234;
        for (int di = 0; di < nd && !status; di++) {
            lc_seq_truncate(ctx, 0, 0);
            if (ds[di] > 0 && feed(ctx, ds[di], cp.n_batch, &rng, false)) {
                status = 1;
                break;
            }
            for (int kind = 0; kind < 2 && !status; kind++) {
                int *sizes = kind == 0 ? ps : ns, count = kind == 0 ? np : nn;
                for (int si = 0; si < count && !status; si++) {
                    if (sizes[si] == 0) continue;
                    bench_result r = {kind == 0 ? "pp" : "tg", sizes[si], ds[di], ts[ti], kv, 0, 0, {0}, 0};
                    /* one untimed warm-up run, then the repetitions */
                    for (int rep = -1; rep < reps; rep++) {
                        lc_seq_truncate(ctx, 0, ds[di]);
                        double t0 = lc_time_sec();
                        if (feed(ctx, sizes[si], cp.n_batch, &rng, kind == 1)) {
                            status = 1;
                            break;
                        }
                        double dt = lc_time_sec() - t0;
                        if (rep >= 0) r.samples[r.n_samples++] = sizes[si] / dt;
                    }
                    if (status) break;
                    for (int i = 0; i < r.n_samples; i++) r.mean += r.samples[i] / r.n_samples;
                    for (int i = 0; i < r.n_samples; i++) r.sd += (r.samples[i] - r.mean) * (r.samples[i] - r.mean);
                    r.sd = r.n_samples > 1 ? sqrt(r.sd / (r.n_samples - 1)) : 0;
                    char test[64];
                    if (r.depth) snprintf(test, sizeof test, "%s%d @ d%d", r.test, r.n, r.depth);
                    else snprintf(test, sizeof test, "%s%d", r.test, r.n);
                    if (json) {
                        printf("%s  {\"model\": \"%s\", \"size_bytes\": %zu, \"threads\": %d, \"kv_type\": \"%s\", "
                               "\"test\": \"%s\", \"n\": %d, \"depth\": %d, \"reps\": %d, \"tps_mean\": %.3f, \"tps_stddev\": %.3f, \"samples\": [",
                               first ? "" : ",\n", name, model->weight_bytes, r.threads, r.kv, r.test, r.n, r.depth,
                               r.n_samples, r.mean, r.sd);
                        for (int i = 0; i < r.n_samples; i++) printf("%s%.3f", i ? ", " : "", r.samples[i]);
                        printf("]}");
                    } else {
                        printf("| %s | %.2f GiB | %d | %s | %s | %.2f ± %.2f |\n", name, size_gib, r.threads, r.kv,
                               test, r.mean, r.sd);
                    }
                    fflush(stdout);
                    first = 0;
                }
            }
        }
        if (status) fprintf(stderr, "locara: %s\n", lc_last_error());
        lc_context_free(ctx);
    }
    if (json) printf("\n]\n");
    lc_model_free(model);
    return status;
}
