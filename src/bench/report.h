/* report.h — benchmark measurements as rows, and the three ways they are written out:
 * one JSON object per line (results.jsonl), a markdown summary (medians and spread per
 * configuration, concurrency, depth and cache state) and a self-contained HTML report with
 * inline SVG charts (no scripts or fonts from the network).
 * Deliberately not here: taking measurements (bench/http*.c does that).
 * Entry points: lc_bench_row_to_json, lc_bench_rows_load, lc_bench_write_summary, lc_bench_write_html.
 */
#ifndef LC_BENCH_REPORT_H
#define LC_BENCH_REPORT_H

#include "base/base.h"

#include <jansson.h>

enum { LC_CACHE_COLD = 0, LC_CACHE_WARM = 1 };

/* One measurement: one request of one stream. Unknown numbers are NaN (written as null) or -1
 * for token counts. A failed request has ok = 0 and a non-empty error. */
typedef struct lc_bench_row {
    char config[64];   /* the configuration's name ("locara", "llama-server", ...) */
    char model[128];
    int depth;         /* the target prompt depth in tokens */
    int cache;         /* LC_CACHE_COLD or LC_CACHE_WARM */
    int concurrency;   /* streams sent at once */
    int stream;        /* 0 .. concurrency-1 */
    int rep;           /* repetition, 0-based */
    int ok;
    char error[256];
    double ttft_ms;        /* send -> first chunk carrying content or reasoning */
    double prefill_tps;    /* prompt_tokens / ttft */
    double decode_tps;     /* (completion_tokens - 1) / (t_last - t_first) */
    double agg_decode_tps; /* all streams of the group: tokens after each first / group span */
    double total_ms;       /* send -> end of stream */
    int prompt_tokens;     /* from the server's usage (or our own count when absent) */
    int completion_tokens;
    int cached_tokens;     /* prompt tokens the server says it took from its cache, -1 unknown */
    int est_prompt_tokens; /* what the prompt builder counted */
} lc_bench_row;

/* Fills a row's numbers with "unknown" and copies its identity. */
void lc_bench_row_init(lc_bench_row *r);

/* The row as a new JSON object (caller decrefs), or NULL on OOM. */
json_t *lc_bench_row_to_json(const lc_bench_row *r);

/* Reads results.jsonl; *rows (lc_free) holds *n rows. Lines that are not objects are an error. */
lc_status lc_bench_rows_load(const char *path, lc_bench_row **rows, int *n);

/* Writes summary.md: one table row per (config, concurrency, depth, cache) group with the count
 * of ok/total, medians and min..max of TTFT, prefill and decode speed, and the failures' errors. */
lc_status lc_bench_write_summary(const char *path, const lc_bench_row *rows, int n, const char *title);

/* Writes report.html: charts TTFT vs depth, decode vs depth, cold vs warm TTFT, context-scaling
 * retention (cold prefill speed at depth over prefill speed at 512, or the nearest shallower
 * depth measured), and the summary table. Each chart is <svg id="chart-..." data-points="N">
 * holding N <circle class="pt"> or <rect class="pt"> marks. */
lc_status lc_bench_write_html(const char *path, const lc_bench_row *rows, int n, const char *title);

/* Median of the finite values among v[0..n) (NaN when none); v is reordered. */
double lc_bench_median(double *v, int n);

#endif
