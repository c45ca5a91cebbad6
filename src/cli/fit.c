/* fit.c — `locara fit MODEL`: will this model run here, with these settings? Prints weights by
 * tensor type, KV cache, compute buffers, the total, the verdict against available memory and
 * the budget, and the largest context that fits; --json prints one object. */
#include "cli.h"

#include "engine/context.h"
#include "runtime/fit.h"

#include <stdio.h>
#include <string.h>

#define MIB(x) ((double)(x) / (1024.0 * 1024.0))

int cmd_fit(int argc, char **argv) {
    const char *model_path = NULL, *kv = "f16";
    int n_ctx = 0, n_seq = 1, n_batch = 512, threads = 0, ngl = -1;
    long long budget_mb = 0;
    bool json = false;
    const cli_opt opts[] = {
        {"--model", "-m", CLI_STR, &model_path, "GGUF file (or give it as the argument)"},
        {"--ctx", "-c", CLI_INT, &n_ctx, "context size (default: the model's training context)"},
        {"--kv-type", NULL, CLI_STR, &kv, "KV cache type: f16, q8_0, q4_0"},
        {"--parallel", "-np", CLI_INT, &n_seq, "parallel sequences (default 1)"},
        {"--batch", "-b", CLI_INT, &n_batch, "prompt batch size (default 512)"},
        {"--threads", "-t", CLI_INT, &threads, "compute threads (default: physical cores)"},
        {"--memory-budget", NULL, CLI_INT64, &budget_mb, "budget in MiB (default: 90% of available)"},
        {"--n-gpu-layers", "-ngl", CLI_INT, &ngl, "layers on the GPU (default: all when a GPU is present; 0: none)"},
        {"--json", NULL, CLI_BOOL, &json, "print one JSON object"},
    };
    const char *pos[1];
    int npos;
    int rc = cli_parse(argc, argv, opts, (int)LC_ARRAY_LEN(opts), pos, 1, &npos,
                       "locara fit FILE [--ctx N] [--kv-type T] [--parallel P] [--batch B] [--json]");
    if (rc) return rc == 1 ? 0 : rc;
    if (npos == 1) model_path = pos[0];
    int kv_type = cli_kv_type(kv);
    if (!kv_type) return 2;
    if (n_ctx < 0 || n_seq < 1 || n_batch < 1 || threads < 0 || budget_mb < 0) {
        fprintf(stderr, "locara: --ctx must be >= 0, --parallel and --batch >= 1\n");
        return 2;
    }
    if (!model_path && !(model_path = cli_default_model())) return 1;
    size_t baseline = lc_fit_baseline();
    size_t heap0 = lc_mem_in_use();
    lc_model *m;
    if (lc_model_load(model_path, lc_model_params_default(), &m)) {
        fprintf(stderr, "locara: %s\n", lc_last_error());
        return 1;
    }
    lc_fit_params p = lc_fit_params_default();
    p.n_ctx = n_ctx;
    p.n_seq = n_seq;
    p.n_batch = n_batch;
    p.n_threads = threads;
    p.kv_type = (lc_kv_type)kv_type;
    p.model_heap_bytes = lc_mem_in_use() - heap0;
    p.runtime_bytes = baseline;
    p.n_gpu_layers = lc_context_gpu_layers(m, ngl);
    lc_fit f;
    if (lc_fit_model(m, &p, &f)) {
        fprintf(stderr, "locara: %s\n", lc_last_error());
        lc_model_free(m);
        return 1;
    }
    size_t avail = lc_mem_available(NULL, NULL);
    size_t budget = budget_mb ? (size_t)budget_mb << 20 : avail / 10 * 9;
    bool fits = f.total_bytes <= budget && f.total_bytes <= avail;
    int max_ctx = lc_fit_max_ctx(m, &p, LC_MIN(budget, avail));
    if (json) {
        printf("{\"model\": \"%s\", \"arch\": \"%s\", \"n_ctx\": %d, \"kv_type\": \"%s\", \"parallel\": %d, \"batch\": %d,\n"
               " \"weights_bytes\": %zu, \"weights_by_type\": {",
               model_path, lc_model_arch(m), f.n_ctx, kv, n_seq, n_batch, f.weights_bytes);
        int first = 1;
        for (int t = 0; t < LC_TYPE_COUNT; t++)
            if (f.weights_by_type[t]) {
                printf("%s\"%s\": %zu", first ? "" : ", ", lc_type_name((lc_type)t), f.weights_by_type[t]);
                first = 0;
            }
        printf("},\n \"model_heap_bytes\": %zu, \"kv_bytes\": %zu, \"compute_bytes\": %zu, \"runtime_bytes\": %zu,\n"
               " \"total_bytes\": %zu, \"available_bytes\": %zu, \"budget_bytes\": %zu, \"fits\": %s, \"max_ctx\": %d,\n"
               " \"gpu_layers\": %d, \"gpu_weights_bytes\": %zu, \"gpu_kv_bytes\": %zu, \"gpu_compute_bytes\": %zu,"
               " \"gpu_total_bytes\": %zu}\n",
               f.model_heap_bytes, f.kv_bytes, f.compute_bytes, f.runtime_bytes, f.total_bytes, avail, budget,
               fits ? "true" : "false", max_ctx, f.gpu_layers, f.gpu_weights_bytes, f.gpu_kv_bytes, f.gpu_compute_bytes,
               f.gpu_total_bytes);
    } else {
        printf("model     %s (%s)\nsettings  ctx %d, kv %s, parallel %d, batch %d\n\nweights   %9.1f MiB (file-backed)\n",
               model_path, lc_model_arch(m), f.n_ctx, kv, n_seq, n_batch, MIB(f.weights_bytes));
        for (int t = 0; t < LC_TYPE_COUNT; t++)
            if (f.weights_by_type[t]) printf("  %-7s %9.1f MiB\n", lc_type_name((lc_type)t), MIB(f.weights_by_type[t]));
        printf("heap      %9.1f MiB (tokenizer, model)\nkv cache  %9.1f MiB\ncompute   %9.1f MiB\nruntime   %9.1f MiB\n"
               "total     %9.1f MiB\n\navailable %9.1f MiB, budget %.1f MiB: %s\nlargest context that fits: %d\n",
               MIB(f.model_heap_bytes), MIB(f.kv_bytes), MIB(f.compute_bytes), MIB(f.runtime_bytes), MIB(f.total_bytes),
               MIB(avail), MIB(budget), fits ? "fits" : "does NOT fit", max_ctx);
        if (f.gpu_layers)
            printf("\nGPU (%d layers): weights %.1f MiB, kv cache %.1f MiB, compute %.1f MiB, total %.1f MiB "
                   "(besides the CUDA context)\n",
                   f.gpu_layers, MIB(f.gpu_weights_bytes), MIB(f.gpu_kv_bytes), MIB(f.gpu_compute_bytes),
                   MIB(f.gpu_total_bytes));
    }
    lc_model_free(m);
    return 0;
}
