/* run.c — `locara run`: generate text from a prompt with one sequence.
 *
 * Only the generated text goes to stdout, streamed as it is decoded (never half a UTF-8
 * character); diagnostics and the speed summary go to stderr. The prompt is raw text unless
 * --chat wraps it in the model's chat template (a user turn plus the generation prompt).
 */
#include "cli.h"

#include "backend/cuda/cuda_backend.h"
#include "engine/context.h"
#include "engine/sampler.h"
#include "engine/stop.h"
#include "runtime/fit.h"
#include "text/tokenizer.h"

#include <stdio.h>
#include <string.h>

typedef struct run_opts {
    const char *model, *prompt, *kv, *stop;
    int n_predict, n_ctx, threads, top_k, n_batch, ngl;
    long long seed;
    float temp, top_p, min_p, repeat_penalty, presence, frequency;
    const char *prompt_file;
    bool quiet, no_special, mem_report;
} run_opts;

/* Prefills the prompt in n_batch chunks, then samples until EOG, a stop string, or n_predict. */
static int generate(lc_context *ctx, const lc_model *model, const run_opts *o, const lc_token *prompt, int n_prompt) {
    const lc_tok *tok = lc_model_tokenizer(model);
    lc_sampler_params sp = lc_sampler_params_default();
    sp.temperature = o->temp;
    sp.top_k = o->top_k;
    sp.top_p = o->top_p;
    sp.min_p = o->min_p;
    sp.repeat_penalty = o->repeat_penalty;
    sp.presence_penalty = o->presence;
    sp.frequency_penalty = o->frequency;
    sp.seed = (uint64_t)o->seed;
    lc_sampler *smp = NULL;
    lc_detok *dt = NULL;
    lc_stop *stop = NULL;
    lc_str piece = {0}, text = {0};
    int rc = 1, n_gen = 0;
    lc_token *buf = lc_malloc((size_t)LC_MAX(o->n_batch, 1) * (sizeof(lc_token) + 2 * sizeof(int32_t) + 1));
    if (!buf) goto done;
    int32_t *pos = (int32_t *)(buf + o->n_batch), *seq = pos + o->n_batch;
    int8_t *want = (int8_t *)(seq + o->n_batch);
    const char *stops[1] = {o->stop};
    if (lc_sampler_create(&sp, lc_model_n_vocab(model), &smp) || lc_detok_create(tok, false, &dt) ||
        lc_stop_create(stops, o->stop ? 1 : 0, &stop))
        goto done;
    for (int i = 0; i < n_prompt; i++) lc_sampler_accept(smp, prompt[i]);

    double t0 = lc_time_sec();
    for (int done = 0; done < n_prompt;) {
        int m = LC_MIN(o->n_batch, n_prompt - done);
        for (int i = 0; i < m; i++) {
            buf[i] = prompt[done + i];
            pos[i] = done + i;
            seq[i] = 0;
            want[i] = done + i == n_prompt - 1;
        }
        lc_batch b = {m, buf, pos, seq, want};
        if (lc_decode(ctx, &b)) goto done;
        done += m;
    }
    double t1 = lc_time_sec();
    int cur = n_prompt;
    bool stopped = false;
    while (n_gen < o->n_predict && !stopped) {
        lc_token t = lc_sampler_sample(smp, lc_get_logits(ctx, 0));
        lc_sampler_accept(smp, t);
        n_gen++;
        if (lc_token_is_eog(model, t)) break;
        lc_str_clear(&piece);
        if (lc_detok_feed(dt, t, &piece)) goto done;
        lc_str_clear(&text);
        stopped = lc_stop_feed(stop, piece.buf ? piece.buf : "", piece.len, &text);
        if (text.len) {
            fwrite(text.buf, 1, text.len, stdout);
            fflush(stdout);
        }
        if (stopped || n_gen >= o->n_predict) break;
        if (cur >= ctx->params.n_ctx) {
            fprintf(stderr, "\nlocara: context full (%d tokens); stopping\n", cur);
            break;
        }
        int32_t p = cur++, s = 0;
        int8_t w = 1;
        lc_batch b = {1, &t, &p, &s, &w};
        if (lc_decode(ctx, &b)) goto done;
    }
    if (!stopped) {
        lc_str_clear(&piece);
        lc_detok_flush(dt, &piece);
        lc_str_clear(&text);
        if (piece.len) lc_stop_feed(stop, piece.buf, piece.len, &text);
        lc_stop_finish(stop, &text);
        if (text.len) fwrite(text.buf, 1, text.len, stdout);
    }
    fputc('\n', stdout);
    double t2 = lc_time_sec();
    if (!o->quiet)
        fprintf(stderr, "locara: prompt %d tokens in %.3f s (%.1f tok/s), generated %d tokens in %.3f s (%.1f tok/s)\n",
                n_prompt, t1 - t0, n_prompt / (t1 - t0 > 0 ? t1 - t0 : 1e-9), n_gen, t2 - t1,
                n_gen > 1 ? (n_gen - 1) / (t2 - t1 > 0 ? t2 - t1 : 1e-9) : 0.0);
    rc = 0;
done:
    if (rc) fprintf(stderr, "locara: %s\n", lc_last_error());
    lc_free(buf);
    lc_str_free(&piece);
    lc_str_free(&text);
    lc_stop_free(stop);
    lc_detok_free(dt);
    lc_sampler_free(smp);
    return rc;
}

int cmd_run(int argc, char **argv) {
    run_opts o = {.kv = "f16", .n_predict = 256, .n_ctx = 4096, .top_k = 40, .n_batch = 512, .ngl = -1, .seed = 0,
                  .temp = 0.8f, .top_p = 0.95f, .min_p = 0.05f, .repeat_penalty = 1.0f};
    const cli_opt opts[] = {
        {"--model", "-m", CLI_STR, &o.model, "GGUF file (default: the default model)"},
        {"--prompt", "-p", CLI_STR, &o.prompt, "prompt text"},
        {"--n-predict", "-n", CLI_INT, &o.n_predict, "tokens to generate at most (default 256)"},
        {"--ctx", "-c", CLI_INT, &o.n_ctx, "context size in tokens (default 4096)"},
        {"--temp", NULL, CLI_FLOAT, &o.temp, "temperature; 0 = greedy (default 0.8)"},
        {"--top-k", NULL, CLI_INT, &o.top_k, "top-k (default 40; 0 = off)"},
        {"--top-p", NULL, CLI_FLOAT, &o.top_p, "top-p (default 0.95)"},
        {"--min-p", NULL, CLI_FLOAT, &o.min_p, "min-p (default 0.05)"},
        {"--repeat-penalty", NULL, CLI_FLOAT, &o.repeat_penalty, "repetition penalty (default 1.0 = off)"},
        {"--presence-penalty", NULL, CLI_FLOAT, &o.presence, "presence penalty (default 0)"},
        {"--frequency-penalty", NULL, CLI_FLOAT, &o.frequency, "frequency penalty (default 0)"},
        {"--seed", "-s", CLI_INT64, &o.seed, "random seed (default 0)"},
        {"--stop", NULL, CLI_STR, &o.stop, "stop string"},
        {"--threads", "-t", CLI_INT, &o.threads, "compute threads (default: physical cores)"},
        {"--kv-type", NULL, CLI_STR, &o.kv, "KV cache type: f16, q8_0, q4_0"},
        {"--n-gpu-layers", "-ngl", CLI_INT, &o.ngl, "layers on the GPU when one is present (default: all; 0: none)"},
        {"--batch", "-b", CLI_INT, &o.n_batch, "prompt batch size (default 512)"},
        {"--quiet", "-q", CLI_BOOL, &o.quiet, "no speed summary on stderr"},
        {"--no-special", NULL, CLI_BOOL, &o.no_special, "do not parse special-token text in the prompt"},
        {"--prompt-file", "-f", CLI_STR, &o.prompt_file, "read the prompt from a file"},
        {"--mem-report", NULL, CLI_BOOL, &o.mem_report, "print peak, anonymous and file-backed RSS on stderr at exit"},
    };
    const char *pos[1];
    int npos;
    int rc = cli_parse(argc, argv, opts, (int)LC_ARRAY_LEN(opts), pos, 0, &npos,
                       "locara run [-m FILE] -p TEXT [-n N] [--ctx N] [--temp T] [--seed S] [-t N] [--kv-type T]");
    if (rc) return rc == 1 ? 0 : rc;
    char *file_prompt = NULL;
    if (o.prompt_file) {
        if (lc_read_file(o.prompt_file, &file_prompt, NULL)) {
            fprintf(stderr, "locara: %s\n", lc_last_error());
            return 1;
        }
        o.prompt = file_prompt;
    }
    if (!o.prompt) {
        fprintf(stderr, "locara: run needs a prompt (-p TEXT or -f FILE)\n");
        return 2;
    }
    int kv = cli_kv_type(o.kv);
    if (!kv) return 2;
    if (o.n_predict < 0 || o.n_ctx < 1 || o.n_batch < 1 || o.threads < 0 || o.temp < 0) {
        fprintf(stderr, "locara: -n, --ctx, --batch and -t must be non-negative (ctx, batch positive); --temp >= 0\n");
        return 2;
    }
    if (!o.model && !(o.model = cli_default_model())) return 1;
    lc_model *model = NULL;
    lc_context *ctx = NULL;
    lc_token *ids = NULL;
    int n = 0;
    size_t gpu0 = 0;
    rc = 1;
    lc_model_params mp = lc_model_params_default();
    mp.n_gpu_layers = o.ngl;
    if (lc_model_load(o.model, mp, &model)) goto fail;
    if (lc_tok_encode(lc_model_tokenizer(model), o.prompt, strlen(o.prompt), true, !o.no_special, &ids, &n)) goto fail;
    if (n == 0) {
        fprintf(stderr, "locara: the prompt tokenizes to nothing\n");
        goto out;
    }
    if (n >= o.n_ctx) {
        fprintf(stderr, "locara: the prompt (%d tokens) does not fit the context (%d); raise --ctx\n", n, o.n_ctx);
        goto out;
    }
    lc_context_params cp = lc_context_params_default();
    cp.n_ctx = o.n_ctx;
    cp.n_batch = o.n_batch;
    cp.n_threads = o.threads;
    cp.kv_type = (lc_kv_type)kv;
    gpu0 = o.mem_report ? lc_cuda_mem_used() : 0; /* the CUDA context exists once a device was counted */
    if (lc_context_create(model, cp, &ctx)) goto fail;
    rc = generate(ctx, model, &o, ids, n);
    goto out;
fail:
    fprintf(stderr, "locara: %s\n", lc_last_error());
out:
    if (o.mem_report) {
        lc_rss r = lc_rss_now();
        fprintf(stderr, "locara: memory: peak_rss %zu rss %zu anon %zu file %zu heap %zu heap_peak %zu\n", r.peak, r.rss,
                r.anon, r.file, lc_mem_in_use(), lc_mem_peak());
        size_t gpu1 = lc_cuda_mem_used();
        if (gpu1) fprintf(stderr, "locara: memory: gpu_used_by_model %zu (device memory in use beyond the CUDA context)\n",
                          gpu1 > gpu0 ? gpu1 - gpu0 : 0);
    }
    lc_free(ids);
    lc_free(file_prompt);
    lc_context_free(ctx);
    lc_model_free(model);
    return rc;
}
