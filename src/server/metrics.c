/* metrics.c — GET /metrics in the Prometheus text format: HTTP requests and errors, generation
 * requests, prompt/generated/cached tokens, time-to-first-token and per-request decode-speed
 * histograms, KV cache blocks (total, used, cached, dropped) and queue depth, summed over every
 * model (lc_mgr_metrics), plus the model manager's memory and load/unload counters and the
 * server's atomic counters. Entry: serve_metrics.
 */
#include "server/server.h"

static void counter(lc_str *s, const char *name, const char *type, const char *help, double v) {
    lc_str_printf(s, "# HELP locara_%s %s\n# TYPE locara_%s %s\nlocara_%s %.17g\n", name, help, name, type, name, v);
}

static void histogram(lc_str *s, const char *name, const char *help, const double *le, const long *cum, int n,
                      double sum) {
    lc_str_printf(s, "# HELP locara_%s %s\n# TYPE locara_%s histogram\n", name, help, name);
    for (int i = 0; i < n; i++) lc_str_printf(s, "locara_%s_bucket{le=\"%g\"} %ld\n", name, le[i], cum[i]);
    lc_str_printf(s, "locara_%s_bucket{le=\"+Inf\"} %ld\nlocara_%s_sum %.17g\nlocara_%s_count %ld\n", name, cum[n],
                  name, sum, name, cum[n]);
}

int serve_metrics(serve_conn *c) {
    serve *srv = c->srv;
    lc_sched_metrics m;
    lc_mgr_metrics(srv->mgr, &m);
    lc_mgr_stats ms;
    lc_mgr_stats_get(srv->mgr, &ms);
    lc_str s = {0};
    counter(&s, "http_requests_total", "counter", "HTTP requests received", (double)atomic_load(&srv->http_requests));
    counter(&s, "http_client_errors_total", "counter", "HTTP 4xx replies", (double)atomic_load(&srv->http_4xx));
    counter(&s, "http_server_errors_total", "counter", "HTTP 5xx replies", (double)atomic_load(&srv->http_5xx));
    counter(&s, "requests_total", "counter", "generation requests submitted", (double)m.requests);
    counter(&s, "requests_finished_total", "counter", "generation requests finished (stop or length)", (double)m.finished);
    counter(&s, "requests_cancelled_total", "counter", "generation requests cancelled (client gone)", (double)m.cancelled);
    counter(&s, "requests_failed_total", "counter", "generation requests ended by an error", (double)m.errors);
    counter(&s, "prompt_tokens_total", "counter", "prompt tokens received", (double)m.prompt_tokens);
    counter(&s, "generated_tokens_total", "counter", "tokens generated", (double)m.gen_tokens);
    counter(&s, "prefix_tokens_reused_total", "counter", "prompt tokens served from the prefix cache", (double)m.cached_tokens);
    counter(&s, "engine_steps_total", "counter", "engine steps (batched decodes)", (double)m.steps);
    counter(&s, "requests_running", "gauge", "sequences being decoded", m.running);
    counter(&s, "requests_queued", "gauge", "requests waiting for a slot", m.queued);
    counter(&s, "kv_blocks", "gauge", "KV cache blocks in the pool", m.kv_blocks);
    counter(&s, "kv_blocks_used", "gauge", "KV cache blocks held by sequences", m.kv_used);
    counter(&s, "kv_blocks_cached", "gauge", "KV cache blocks kept for prefix reuse", m.kv_cached);
    counter(&s, "kv_block_tokens", "gauge", "tokens per KV cache block", m.kv_block_tokens);
    counter(&s, "kv_blocks_dropped_total", "counter", "cached KV blocks dropped under memory pressure", (double)m.kv_dropped);
    counter(&s, "memory_budget_bytes", "gauge", "the model manager's memory budget", (double)ms.budget_bytes);
    counter(&s, "memory_used_bytes", "gauge", "process baseline plus loaded models' predicted memory", (double)ms.used_bytes);
    counter(&s, "model_loads_total", "counter", "models loaded", (double)ms.loads);
    counter(&s, "model_unloads_total", "counter", "models unloaded (idle, budget, pressure)", (double)ms.unloads);
    counter(&s, "model_evictions_total", "counter", "idle models unloaded to make room for another", (double)ms.evictions);
    counter(&s, "memory_pressure_events_total", "counter", "memory pressure warnings and criticals",
            (double)(ms.pressure_warnings + ms.pressure_criticals));
    histogram(&s, "time_to_first_token_seconds", "submit to first generated token", m.ttft_le, m.ttft_count,
              LC_SCHED_TTFT_BUCKETS, m.ttft_sum);
    histogram(&s, "decode_tokens_per_second", "per-request decode speed", m.tps_le, m.tps_count, LC_SCHED_TPS_BUCKETS,
              m.tps_sum);
    int ret = serve_reply_text(c, 200, "text/plain; version=0.0.4", s.buf ? s.buf : "", s.len);
    lc_str_free(&s);
    return ret;
}
