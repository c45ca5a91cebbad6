/* report.c — benchmark rows to JSON lines, a markdown summary and a self-contained HTML report.
 *
 * The HTML carries its charts as inline SVG drawn here in C (log-scale depth axis, one series per
 * configuration and cache state) plus a ten-line inline script that marks each chart with how
 * many of its marks the browser laid out (data-drawn), so a headless browser test can tell a
 * drawn chart from an empty one. Nothing is fetched from the network.
 */
#include "bench/report.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ==== Rows and JSON ==== */

void lc_bench_row_init(lc_bench_row *r) {
    memset(r, 0, sizeof *r);
    r->ttft_ms = r->prefill_tps = r->decode_tps = r->agg_decode_tps = r->total_ms = NAN;
    r->prompt_tokens = r->completion_tokens = r->cached_tokens = r->est_prompt_tokens = -1;
    r->concurrency = 1;
}

static json_t *num_or_null(double v) { return isfinite(v) ? json_real(v) : json_null(); }
static json_t *int_or_null(int v) { return v >= 0 ? json_integer(v) : json_null(); }

json_t *lc_bench_row_to_json(const lc_bench_row *r) {
    json_t *o = json_object();
    if (!o) return NULL;
    json_object_set_new(o, "config", json_string(r->config));
    json_object_set_new(o, "model", json_string(r->model));
    json_object_set_new(o, "depth", json_integer(r->depth));
    json_object_set_new(o, "cache", json_string(r->cache == LC_CACHE_WARM ? "warm" : "cold"));
    json_object_set_new(o, "concurrency", json_integer(r->concurrency));
    json_object_set_new(o, "stream", json_integer(r->stream));
    json_object_set_new(o, "rep", json_integer(r->rep));
    json_object_set_new(o, "ok", json_boolean(r->ok));
    json_object_set_new(o, "error", r->ok ? json_null() : json_string(r->error));
    json_object_set_new(o, "ttft_ms", num_or_null(r->ttft_ms));
    json_object_set_new(o, "prefill_tps", num_or_null(r->prefill_tps));
    json_object_set_new(o, "decode_tps", num_or_null(r->decode_tps));
    json_object_set_new(o, "agg_decode_tps", num_or_null(r->agg_decode_tps));
    json_object_set_new(o, "total_ms", num_or_null(r->total_ms));
    json_object_set_new(o, "prompt_tokens", int_or_null(r->prompt_tokens));
    json_object_set_new(o, "completion_tokens", int_or_null(r->completion_tokens));
    json_object_set_new(o, "cached_tokens", int_or_null(r->cached_tokens));
    json_object_set_new(o, "est_prompt_tokens", int_or_null(r->est_prompt_tokens));
    return o;
}

static double get_num(json_t *o, const char *k) {
    json_t *v = json_object_get(o, k);
    return json_is_number(v) ? json_number_value(v) : NAN;
}

static int get_int(json_t *o, const char *k, int dflt) {
    json_t *v = json_object_get(o, k);
    return json_is_number(v) ? (int)json_number_value(v) : dflt;
}

static void get_str(json_t *o, const char *k, char *dst, size_t cap) {
    json_t *v = json_object_get(o, k);
    snprintf(dst, cap, "%s", json_is_string(v) ? json_string_value(v) : "");
}

/* Reads results.jsonl line by line; blank lines are skipped, anything else must be an object. */
lc_status lc_bench_rows_load(const char *path, lc_bench_row **rows, int *n) {
    char *text = NULL;
    size_t len = 0;
    *rows = NULL;
    *n = 0;
    lc_status st = lc_read_file(path, &text, &len);
    if (st != LC_OK) return st;
    size_t cap = 0;
    int lineno = 0;
    for (char *line = text, *next; line && *line; line = next) {
        next = strchr(line, '\n');
        if (next) *next++ = 0;
        lineno++;
        if (strspn(line, " \t\r") == strlen(line)) continue;
        json_error_t jerr;
        json_t *o = json_loads(line, 0, &jerr);
        if (!json_is_object(o)) {
            json_decref(o);
            st = lc_fail(LC_ERR_FORMAT, "%s:%d: not a JSON object (%s)", path, lineno, jerr.text);
            goto fail;
        }
        if (!lc_grow((void **)rows, sizeof **rows, &cap, (size_t)*n + 1)) {
            json_decref(o);
            st = LC_ERR_OOM;
            goto fail;
        }
        lc_bench_row *r = &(*rows)[(*n)++];
        lc_bench_row_init(r);
        get_str(o, "config", r->config, sizeof r->config);
        get_str(o, "model", r->model, sizeof r->model);
        get_str(o, "error", r->error, sizeof r->error);
        char cache[16];
        get_str(o, "cache", cache, sizeof cache);
        r->cache = !strcmp(cache, "warm") ? LC_CACHE_WARM : LC_CACHE_COLD;
        r->depth = get_int(o, "depth", 0);
        r->concurrency = get_int(o, "concurrency", 1);
        r->stream = get_int(o, "stream", 0);
        r->rep = get_int(o, "rep", 0);
        r->ok = json_is_true(json_object_get(o, "ok"));
        r->ttft_ms = get_num(o, "ttft_ms");
        r->prefill_tps = get_num(o, "prefill_tps");
        r->decode_tps = get_num(o, "decode_tps");
        r->agg_decode_tps = get_num(o, "agg_decode_tps");
        r->total_ms = get_num(o, "total_ms");
        r->prompt_tokens = get_int(o, "prompt_tokens", -1);
        r->completion_tokens = get_int(o, "completion_tokens", -1);
        r->cached_tokens = get_int(o, "cached_tokens", -1);
        r->est_prompt_tokens = get_int(o, "est_prompt_tokens", -1);
        json_decref(o);
    }
    lc_free(text);
    return LC_OK;
fail:
    lc_free(text);
    lc_free(*rows);
    *rows = NULL;
    *n = 0;
    return st;
}

/* ==== Groups and statistics ==== */

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double lc_bench_median(double *v, int n) {
    int m = 0;
    for (int i = 0; i < n; i++)
        if (isfinite(v[i])) v[m++] = v[i];
    if (m == 0) return NAN;
    qsort(v, (size_t)m, sizeof *v, cmp_double);
    return m % 2 ? v[m / 2] : 0.5 * (v[m / 2 - 1] + v[m / 2]);
}

/* The statistics of one (config, concurrency, depth, cache) cell. */
typedef struct group {
    const char *config;
    int config_order; /* first appearance of the config in the rows */
    int conc, depth, cache;
    int n, n_ok;
    double ttft_med, ttft_min, ttft_max;
    double prefill_med, decode_med, decode_min, decode_max, agg_med;
    double prompt_med;
    double cached_med; /* median cached_tokens over the ok rows that report it */
    double warm_ratio; /* warm groups: this TTFT median over the matching cold group's */
    const char *error; /* the first failure's message */
} group;

static void minmax(const double *v, int n, double *lo, double *hi) {
    *lo = NAN;
    *hi = NAN;
    for (int i = 0; i < n; i++) {
        if (!isfinite(v[i])) continue;
        if (!isfinite(*lo) || v[i] < *lo) *lo = v[i];
        if (!isfinite(*hi) || v[i] > *hi) *hi = v[i];
    }
}

static int cmp_group(const void *a, const void *b) {
    const group *x = a, *y = b;
    if (x->config_order != y->config_order) return x->config_order - y->config_order;
    if (x->conc != y->conc) return x->conc - y->conc;
    if (x->depth != y->depth) return x->depth - y->depth;
    return x->cache - y->cache;
}

/* Buckets rows into groups sorted by config (in order of appearance), concurrency, depth and
 * cache, with medians over the ok rows. Returns the count, or -1 on OOM; *out is lc_free'd. */
static int make_groups(const lc_bench_row *rows, int n, group **out) {
    group *g = lc_calloc((size_t)(n ? n : 1), sizeof *g);
    double *tmp = lc_malloc(sizeof(double) * (size_t)(n ? n : 1));
    if (!g || !tmp) {
        lc_free(g);
        lc_free(tmp);
        return -1;
    }
    int ng = 0;
    for (int i = 0; i < n; i++) {
        const lc_bench_row *r = &rows[i];
        int order = i;
        for (int j = 0; j < i; j++)
            if (!strcmp(rows[j].config, r->config)) {
                order = j;
                break;
            }
        int k = 0;
        for (; k < ng; k++)
            if (!strcmp(g[k].config, r->config) && g[k].conc == r->concurrency &&
                g[k].depth == r->depth && g[k].cache == r->cache)
                break;
        if (k == ng) {
            g[ng] = (group){.config = r->config, .config_order = order, .conc = r->concurrency,
                            .depth = r->depth, .cache = r->cache};
            ng++;
        }
        g[k].n++;
        if (r->ok) g[k].n_ok++;
        else if (!g[k].error) g[k].error = r->error;
    }
    for (int k = 0; k < ng; k++) {
        group *q = &g[k];
#define COLLECT(field)                                                                   \
    m = 0;                                                                               \
    for (int i = 0; i < n; i++)                                                          \
        if (rows[i].ok && rows[i].concurrency == q->conc && rows[i].depth == q->depth && \
            rows[i].cache == q->cache && !strcmp(rows[i].config, q->config))             \
            tmp[m++] = (double)rows[i].field;
/* A count the server may not report (-1 in the row): unknown values become NaN. */
#define COLLECT_KNOWN(field)             \
    COLLECT(field);                      \
    for (int i = 0; i < m; i++)          \
        if (tmp[i] < 0) tmp[i] = NAN;
        int m;
        COLLECT(ttft_ms);
        minmax(tmp, m, &q->ttft_min, &q->ttft_max);
        q->ttft_med = lc_bench_median(tmp, m);
        COLLECT(decode_tps);
        minmax(tmp, m, &q->decode_min, &q->decode_max);
        q->decode_med = lc_bench_median(tmp, m);
        COLLECT(prefill_tps);
        q->prefill_med = lc_bench_median(tmp, m);
        COLLECT(agg_decode_tps);
        q->agg_med = lc_bench_median(tmp, m);
        COLLECT_KNOWN(prompt_tokens);
        q->prompt_med = lc_bench_median(tmp, m);
        COLLECT_KNOWN(cached_tokens);
        q->cached_med = lc_bench_median(tmp, m);
#undef COLLECT_KNOWN
#undef COLLECT
    }
    for (int k = 0; k < ng; k++) {
        group *q = &g[k];
        q->warm_ratio = NAN;
        if (q->cache != LC_CACHE_WARM) continue;
        for (int j = 0; j < ng; j++)
            if (g[j].cache == LC_CACHE_COLD && g[j].conc == q->conc && g[j].depth == q->depth &&
                !strcmp(g[j].config, q->config) && isfinite(g[j].ttft_med) && g[j].ttft_med > 0)
                q->warm_ratio = q->ttft_med / g[j].ttft_med;
    }
    qsort(g, (size_t)ng, sizeof *g, cmp_group);
    lc_free(tmp);
    *out = g;
    return ng;
}

/* ==== Markdown summary ==== */

static void fmt_num(char *buf, size_t cap, double v, int prec) {
    if (isfinite(v)) snprintf(buf, cap, "%.*f", prec, v);
    else snprintf(buf, cap, "–");
}

static void fmt_range(char *buf, size_t cap, double lo, double hi, int prec) {
    if (isfinite(lo) && isfinite(hi)) snprintf(buf, cap, "%.*f–%.*f", prec, lo, prec, hi);
    else snprintf(buf, cap, "–");
}

#define NCOLS 12

/* One summary line's cells, shared by the markdown and HTML tables. */
static void group_cells(const group *q, char cells[NCOLS][96]) {
    snprintf(cells[0], 96, "%s", q->config);
    snprintf(cells[1], 96, "%d", q->conc);
    snprintf(cells[2], 96, "%d", q->depth);
    snprintf(cells[3], 96, "%s", q->cache == LC_CACHE_WARM ? "warm" : "cold");
    snprintf(cells[4], 96, "%d/%d", q->n_ok, q->n);
    fmt_num(cells[5], 96, q->prompt_med, 0);
    char a[40], b[40];
    fmt_num(a, sizeof a, q->ttft_med, 1);
    fmt_range(b, sizeof b, q->ttft_min, q->ttft_max, 1);
    snprintf(cells[6], 96, "%s (%s)", a, b);
    fmt_num(cells[7], 96, q->prefill_med, 1);
    fmt_num(a, sizeof a, q->decode_med, 1);
    fmt_range(b, sizeof b, q->decode_min, q->decode_max, 1);
    snprintf(cells[8], 96, "%s (%s)", a, b);
    fmt_num(cells[9], 96, q->agg_med, 1);
    fmt_num(cells[10], 96, q->cached_med, 0);
    fmt_num(cells[11], 96, q->warm_ratio, 3);
}

static const char *const col_names[NCOLS] = {
    "config", "conc", "depth", "cache", "ok", "prompt tok", "TTFT ms (min–max)",
    "prefill tok/s", "decode tok/s (min–max)", "aggregate decode tok/s", "cached tok",
    "warm TTFT ÷ cold"};

/* ==== Side by side ==== */

static void html_escape(lc_str *o, const char *s);

/* The first configuration against each other one, per (concurrency, depth, cache) cell that
 * both measured: ratios of medians, TTFT (below 1: the first is faster), prefill and decode
 * speed (above 1: the first is faster). Writes a markdown table, or an HTML one when html is
 * set, into o; nothing with fewer than two configurations. */
static void side_by_side(lc_str *o, const group *g, int ng, int html) {
    const char *first = NULL;
    for (int k = 0; k < ng; k++)
        if (g[k].config_order == 0) first = g[k].config;
    if (!first) return;
    for (int j = 0; j < ng; j++) {
        const group *other = &g[j];
        if (!strcmp(other->config, first)) continue;
        int seen = 0; /* one table per other configuration: at its first group */
        for (int i = 0; i < j; i++) seen |= !strcmp(g[i].config, other->config);
        if (seen) continue;
        if (html) {
            lc_str_puts(o, "<h2>Side by side: ");
            html_escape(o, first);
            lc_str_puts(o, " ÷ ");
            html_escape(o, other->config);
            lc_str_puts(o, "</h2>\n<p>Ratios of medians: TTFT below 1 and speeds above 1 mean the first "
                           "is faster.</p>\n<table><tr><th>conc</th><th>depth</th><th>cache</th>"
                           "<th>TTFT</th><th>prefill tok/s</th><th>decode tok/s</th></tr>\n");
        } else
            lc_str_printf(o, "\n## Side by side: %s ÷ %s\n\nRatios of medians: TTFT below 1 and "
                             "speeds above 1 mean %s is faster.\n\n| conc | depth | cache | TTFT | "
                             "prefill tok/s | decode tok/s |\n|---|---|---|---:|---:|---:|\n",
                          first, other->config, first);
        for (int a = 0; a < ng; a++) {
            if (strcmp(g[a].config, first)) continue;
            for (int b = 0; b < ng; b++) {
                if (strcmp(g[b].config, other->config) || g[b].conc != g[a].conc ||
                    g[b].depth != g[a].depth || g[b].cache != g[a].cache)
                    continue;
                char t[32], pf[32], d[32];
                fmt_num(t, sizeof t, g[a].ttft_med / g[b].ttft_med, 2);
                fmt_num(pf, sizeof pf, g[a].prefill_med / g[b].prefill_med, 2);
                fmt_num(d, sizeof d, g[a].decode_med / g[b].decode_med, 2);
                const char *cache = g[a].cache == LC_CACHE_WARM ? "warm" : "cold";
                if (html)
                    lc_str_printf(o, "<tr><td>%d</td><td>%d</td><td>%s</td><td class=\"n\">%s</td>"
                                     "<td class=\"n\">%s</td><td class=\"n\">%s</td></tr>\n",
                                  g[a].conc, g[a].depth, cache, t, pf, d);
                else
                    lc_str_printf(o, "| %d | %d | %s | %s | %s | %s |\n", g[a].conc, g[a].depth, cache,
                                  t, pf, d);
            }
        }
        if (html) lc_str_puts(o, "</table>\n");
    }
}

lc_status lc_bench_write_summary(const char *path, const lc_bench_row *rows, int n, const char *title) {
    group *g;
    int ng = make_groups(rows, n, &g);
    if (ng < 0) return LC_ERR_OOM;
    FILE *f = fopen(path, "w");
    if (!f) {
        lc_free(g);
        return lc_fail(LC_ERR_IO, "cannot write %s", path);
    }
    fprintf(f, "# %s\n\nMedians over repetitions (min–max in brackets); TTFT is wall-clock from "
               "sending the request to the first streamed token.\n\n|", title);
    for (int c = 0; c < NCOLS; c++) fprintf(f, " %s |", col_names[c]);
    fprintf(f, "\n|");
    for (int c = 0; c < NCOLS; c++) fprintf(f, "%s", c < 4 ? "---|" : "---:|");
    fprintf(f, "\n");
    for (int k = 0; k < ng; k++) {
        char cells[NCOLS][96];
        group_cells(&g[k], cells);
        fprintf(f, "|");
        for (int c = 0; c < NCOLS; c++) fprintf(f, " %s |", cells[c]);
        fprintf(f, "\n");
    }
    lc_str side = {0};
    side_by_side(&side, g, ng, 0);
    if (side.len) fwrite(side.buf, 1, side.len, f);
    lc_str_free(&side);
    int any_err = 0;
    for (int k = 0; k < ng; k++) {
        if (!g[k].error) continue;
        if (!any_err++) fprintf(f, "\n## Failures\n\n");
        fprintf(f, "- %s, concurrency %d, depth %d, %s: %d of %d failed: `%s`\n", g[k].config,
                g[k].conc, g[k].depth, g[k].cache ? "warm" : "cold", g[k].n - g[k].n_ok, g[k].n,
                g[k].error);
    }
    lc_free(g);
    int bad = ferror(f);
    if (fclose(f) != 0 || bad) return lc_fail(LC_ERR_IO, "error writing %s", path);
    return LC_OK;
}

/* ==== SVG charts ==== */

#define MAX_SERIES 32
#define MAX_POINTS 64

typedef struct series {
    char name[128];
    int n;
    double x[MAX_POINTS], y[MAX_POINTS];
} series;

static const char *const palette[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e",
                                      "#9467bd", "#8c564b", "#e377c2", "#17becf"};

enum { W = 760, H = 380, ML = 70, MR = 190, MT = 40, MB = 50 };

static void html_escape(lc_str *o, const char *s) {
    for (; *s; s++) {
        switch (*s) {
        case '<': lc_str_puts(o, "&lt;"); break;
        case '>': lc_str_puts(o, "&gt;"); break;
        case '&': lc_str_puts(o, "&amp;"); break;
        case '"': lc_str_puts(o, "&quot;"); break;
        default: lc_str_putc(o, *s);
        }
    }
}

/* An axis mapping: linear or log10, from [lo, hi] onto [p0, p1] pixels. */
typedef struct axis {
    double lo, hi, p0, p1;
    int log;
} axis;

static double ax_map(const axis *a, double v) {
    double t = a->log ? (log10(v) - log10(a->lo)) / (log10(a->hi) - log10(a->lo))
                      : (v - a->lo) / (a->hi - a->lo);
    return a->p0 + t * (a->p1 - a->p0);
}

static void fmt_tick(char *buf, size_t cap, double v) {
    if (v >= 1024 && fmod(v, 1024) == 0) snprintf(buf, cap, "%gk", v / 1024);
    else if (v >= 10000) snprintf(buf, cap, "%.0fk", v / 1000);
    else if (v >= 100 || v == floor(v)) snprintf(buf, cap, "%.0f", v);
    else snprintf(buf, cap, "%.2g", v);
}

/* Fits a y axis to the finite values of all series: log scale spans whole decades, linear
 * starts at 0 (or at the smallest value if negative) with 10% headroom. */
static axis fit_y(const series *s, int ns, int logy, double floor_max) {
    double lo = INFINITY, hi = -INFINITY;
    for (int i = 0; i < ns; i++)
        for (int j = 0; j < s[i].n; j++) {
            double v = s[i].y[j];
            if (!isfinite(v) || (logy && v <= 0)) continue;
            lo = fmin(lo, v);
            hi = fmax(hi, v);
        }
    if (!isfinite(lo)) lo = 1, hi = 10;
    axis a = {.p0 = H - MB, .p1 = MT, .log = logy};
    if (logy) {
        a.lo = pow(10, floor(log10(lo)));
        a.hi = pow(10, ceil(log10(hi)));
        if (a.hi <= a.lo) a.hi = a.lo * 10;
    } else {
        a.lo = lo < 0 ? lo * 1.1 : 0;
        a.hi = fmax(hi * 1.1, floor_max);
        if (a.hi <= a.lo) a.hi = a.lo + 1;
    }
    return a;
}

static void draw_frame(lc_str *o, const char *id, const char *title, const char *xlabel,
                       const char *ylabel, int points, const axis *ya) {
    lc_str_printf(o, "<figure><svg id=\"%s\" class=\"chart\" data-points=\"%d\" "
                     "xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
                     "viewBox=\"0 0 %d %d\">\n", id, points, W, H, W, H);
    lc_str_printf(o, "<text x=\"%d\" y=\"22\" class=\"title\">", ML);
    html_escape(o, title);
    lc_str_puts(o, "</text>\n");
    lc_str_printf(o, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" class=\"plot\"/>\n", ML,
                  MT, W - ML - MR, H - MT - MB);
    /* y ticks */
    if (ya->log) {
        /* decades, plus 2x and 5x marks when the axis spans at most two decades */
        int fine = ya->hi / ya->lo <= 100.5;
        for (double v = ya->lo; v <= ya->hi * 1.0001;) {
            double y = ax_map(ya, v);
            char b[32];
            fmt_tick(b, sizeof b, v);
            lc_str_printf(o, "<line x1=\"%d\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\" class=\"grid\"/>"
                             "<text x=\"%d\" y=\"%.1f\" class=\"ytick\">%s</text>\n",
                          ML, W - MR, y, y, ML - 6, y + 4, b);
            double dec = pow(10, floor(log10(v) + 1e-9));
            double m = v / dec;
            v = !fine ? v * 10 : m < 1.5 ? 2 * dec : m < 3 ? 5 * dec : 10 * dec;
        }
    } else {
        double step = pow(10, floor(log10((ya->hi - ya->lo) / 4)));
        if ((ya->hi - ya->lo) / step > 10) step *= 2;
        if ((ya->hi - ya->lo) / step > 10) step *= 2.5;
        for (double v = ceil(ya->lo / step) * step; v <= ya->hi + 1e-9; v += step) {
            double y = ax_map(ya, v);
            char b[32];
            fmt_tick(b, sizeof b, v);
            lc_str_printf(o, "<line x1=\"%d\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\" class=\"grid\"/>"
                             "<text x=\"%d\" y=\"%.1f\" class=\"ytick\">%s</text>\n",
                          ML, W - MR, y, y, ML - 6, y + 4, b);
        }
    }
    lc_str_printf(o, "<text x=\"%d\" y=\"%d\" class=\"xlabel\">%s</text>\n", (ML + W - MR) / 2,
                  H - 10, xlabel);
    lc_str_printf(o, "<text x=\"16\" y=\"%d\" class=\"ylabel\" transform=\"rotate(-90 16 %d)\">"
                     "%s</text>\n", (MT + H - MB) / 2, (MT + H - MB) / 2, ylabel);
}

static void draw_legend(lc_str *o, const series *s, int ns) {
    for (int i = 0; i < ns; i++) {
        int y = MT + 10 + 20 * i;
        lc_str_printf(o, "<rect x=\"%d\" y=\"%d\" width=\"12\" height=\"12\" fill=\"%s\"/>"
                         "<text x=\"%d\" y=\"%d\" class=\"legend\">", W - MR + 12, y - 10,
                      palette[i % LC_ARRAY_LEN(palette)], W - MR + 30, y);
        html_escape(o, s[i].name);
        lc_str_puts(o, "</text>\n");
    }
}

/* A line chart over depth (log2-spaced x axis with a tick at every depth measured). Points
 * whose y is not finite are left out, and the line breaks there. */
static void line_chart(lc_str *o, const char *id, const char *title, const char *ylabel,
                       const series *s, int ns, int logy, double floor_max) {
    double xlo = INFINITY, xhi = -INFINITY;
    int points = 0;
    for (int i = 0; i < ns; i++)
        for (int j = 0; j < s[i].n; j++) {
            if (!isfinite(s[i].y[j]) || (logy && s[i].y[j] <= 0)) continue;
            xlo = fmin(xlo, s[i].x[j]);
            xhi = fmax(xhi, s[i].x[j]);
            points++;
        }
    if (!isfinite(xlo)) xlo = 1, xhi = 2;
    if (xhi <= xlo) xhi = xlo * 2, xlo = xlo / 2;
    axis xa = {.lo = xlo / 1.3, .hi = xhi * 1.3, .p0 = ML, .p1 = W - MR, .log = 1};
    axis ya = fit_y(s, ns, logy, floor_max);
    draw_frame(o, id, title, "context depth (prompt tokens, log scale)", ylabel, points, &ya);
    /* x ticks at every distinct depth */
    double seen[MAX_POINTS * 4];
    int nseen = 0;
    for (int i = 0; i < ns; i++)
        for (int j = 0; j < s[i].n; j++) {
            int dup = 0;
            for (int k = 0; k < nseen; k++) dup |= seen[k] == s[i].x[j];
            if (dup || nseen == (int)LC_ARRAY_LEN(seen)) continue;
            seen[nseen++] = s[i].x[j];
            double x = ax_map(&xa, s[i].x[j]);
            char b[32];
            fmt_tick(b, sizeof b, s[i].x[j]);
            lc_str_printf(o, "<text x=\"%.1f\" y=\"%d\" class=\"xtick\">%s</text>\n", x, H - MB + 16, b);
        }
    for (int i = 0; i < ns; i++) {
        const char *col = palette[i % LC_ARRAY_LEN(palette)];
        lc_str_printf(o, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\" points=\"", col);
        for (int j = 0; j < s[i].n; j++) {
            if (!isfinite(s[i].y[j]) || (logy && s[i].y[j] <= 0)) continue;
            lc_str_printf(o, "%.1f,%.1f ", ax_map(&xa, s[i].x[j]), ax_map(&ya, s[i].y[j]));
        }
        lc_str_puts(o, "\"/>\n");
        for (int j = 0; j < s[i].n; j++) {
            if (!isfinite(s[i].y[j]) || (logy && s[i].y[j] <= 0)) continue;
            lc_str_printf(o, "<circle class=\"pt\" cx=\"%.1f\" cy=\"%.1f\" r=\"4\" fill=\"%s\">"
                             "<title>", ax_map(&xa, s[i].x[j]), ax_map(&ya, s[i].y[j]), col);
            html_escape(o, s[i].name);
            lc_str_printf(o, ": depth %.0f → %.4g</title></circle>\n", s[i].x[j], s[i].y[j]);
        }
    }
    draw_legend(o, s, ns);
    lc_str_puts(o, "</svg></figure>\n");
}

/* Grouped bars on a log y axis: one category per depth, one bar per series. */
static void bar_chart(lc_str *o, const char *id, const char *title, const char *ylabel,
                      const series *s, int ns) {
    double cats[MAX_POINTS];
    int nc = 0, points = 0;
    for (int i = 0; i < ns; i++)
        for (int j = 0; j < s[i].n; j++) {
            int k = 0;
            while (k < nc && cats[k] != s[i].x[j]) k++;
            if (k == nc && nc < MAX_POINTS) cats[nc++] = s[i].x[j];
            if (isfinite(s[i].y[j]) && s[i].y[j] > 0) points++;
        }
    qsort(cats, (size_t)nc, sizeof *cats, cmp_double);
    axis ya = fit_y(s, ns, 1, 0);
    draw_frame(o, id, title, "context depth (prompt tokens)", ylabel, points, &ya);
    double cw = (double)(W - ML - MR) / (nc ? nc : 1);
    double bw = cw * 0.8 / (ns ? ns : 1);
    for (int c = 0; c < nc; c++) {
        char b[32];
        fmt_tick(b, sizeof b, cats[c]);
        lc_str_printf(o, "<text x=\"%.1f\" y=\"%d\" class=\"xtick\">%s</text>\n",
                      ML + cw * (c + 0.5), H - MB + 16, b);
        for (int i = 0; i < ns; i++)
            for (int j = 0; j < s[i].n; j++) {
                double v = s[i].y[j];
                if (s[i].x[j] != cats[c] || !isfinite(v) || v <= 0) continue;
                double x = ML + cw * c + cw * 0.1 + bw * i, y = ax_map(&ya, v);
                double h = (H - MB) - y;
                lc_str_printf(o, "<rect class=\"pt\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" "
                                 "height=\"%.1f\" fill=\"%s\"><title>", x, y, bw, h > 1 ? h : 1,
                              palette[i % LC_ARRAY_LEN(palette)]);
                html_escape(o, s[i].name);
                lc_str_printf(o, ": depth %.0f → %.4g</title></rect>\n", cats[c], v);
            }
    }
    draw_legend(o, s, ns);
    lc_str_puts(o, "</svg></figure>\n");
}

/* ==== HTML report ==== */

typedef enum metric { M_TTFT, M_DECODE, M_PREFILL } metric;

static double group_metric(const group *q, metric m) {
    return m == M_TTFT ? q->ttft_med : m == M_DECODE ? q->decode_med : q->prefill_med;
}

/* One series per (config, cache, concurrency) over depth; cache < 0 takes both states and
 * conc_only > 0 keeps one concurrency level. Names carry the concurrency when several exist. */
static int build_series(const group *g, int ng, metric m, int cache_only, int conc_only,
                        int multi_conc, series *s) {
    int ns = 0;
    for (int k = 0; k < ng; k++) {
        const group *q = &g[k];
        if (cache_only >= 0 && q->cache != cache_only) continue;
        if (conc_only > 0 && q->conc != conc_only) continue;
        char name[128];
        if (multi_conc)
            snprintf(name, sizeof name, "%s %s c=%d", q->config, q->cache ? "warm" : "cold", q->conc);
        else snprintf(name, sizeof name, "%s %s", q->config, q->cache ? "warm" : "cold");
        int i = 0;
        while (i < ns && strcmp(s[i].name, name)) i++;
        if (i == ns) {
            if (ns == MAX_SERIES) continue;
            memset(&s[ns], 0, sizeof s[ns]);
            snprintf(s[ns].name, sizeof s[ns].name, "%s", name);
            ns++;
        }
        if (s[i].n == MAX_POINTS) continue;
        s[i].x[s[i].n] = q->depth;
        s[i].y[s[i].n] = group_metric(q, m);
        s[i].n++;
    }
    return ns;
}

static const char css[] =
    "body{font-family:system-ui,sans-serif;margin:24px;color:#222;max-width:1100px}"
    "svg .plot{fill:#fafafa;stroke:#ccc}svg .grid{stroke:#e4e4e4}"
    "svg text{font-size:12px;fill:#333}svg .title{font-size:15px;font-weight:600}"
    "svg .ytick{text-anchor:end}svg .xtick,svg .xlabel,svg .ylabel{text-anchor:middle}"
    "table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ddd;padding:3px 8px}"
    "td.n{text-align:right}figure{margin:16px 0}.note{color:#666;font-size:13px}";

/* Counts, per chart, the marks the browser actually laid out, so a test can tell it was drawn. */
static const char drawn_script[] =
    "document.querySelectorAll('svg.chart').forEach(function(s){var n=0;"
    "s.querySelectorAll('.pt').forEach(function(p){var b=p.getBBox();if(b.width>0&&b.height>0)n++;});"
    "s.setAttribute('data-drawn',String(n));});";

lc_status lc_bench_write_html(const char *path, const lc_bench_row *rows, int n, const char *title) {
    group *g;
    int ng = make_groups(rows, n, &g);
    if (ng < 0) return LC_ERR_OOM;
    series *s = lc_malloc(sizeof(series) * MAX_SERIES);
    lc_str o = {0};
    if (!s) {
        lc_free(g);
        return LC_ERR_OOM;
    }
    int min_conc = 0, multi_conc = 0;
    for (int k = 0; k < ng; k++) {
        if (min_conc && g[k].conc != min_conc) multi_conc = 1;
        if (!min_conc || g[k].conc < min_conc) min_conc = g[k].conc;
    }
    lc_str_puts(&o, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>");
    html_escape(&o, title);
    lc_str_printf(&o, "</title><style>%s</style></head><body>\n<h1>", css);
    html_escape(&o, title);
    lc_str_printf(&o, "</h1>\n<p class=\"note\">%d measurements. Medians over repetitions. "
                      "Cold: a prompt whose prefix the server has never seen; warm: the same "
                      "conversation plus one new turn. Charts at concurrency %d unless named.</p>\n",
                  n, min_conc);

    int ns = build_series(g, ng, M_TTFT, -1, multi_conc ? 0 : min_conc, multi_conc, s);
    line_chart(&o, "chart-ttft", "Time to first token vs depth", "TTFT (ms, log scale)", s, ns, 1, 0);
    ns = build_series(g, ng, M_DECODE, -1, multi_conc ? 0 : min_conc, multi_conc, s);
    line_chart(&o, "chart-decode", "Decode speed vs depth", "decode tok/s per stream", s, ns, 0, 0);
    ns = build_series(g, ng, M_TTFT, -1, min_conc, 0, s);
    bar_chart(&o, "chart-coldwarm", "Cold vs warm TTFT", "TTFT (ms, log scale)", s, ns);

    /* Retention: cold prefill speed at depth over the speed at 512 (or the nearest depth below,
     * or the shallowest depth of at least 256 tokens when 512 was not measured). */
    ns = build_series(g, ng, M_PREFILL, LC_CACHE_COLD, min_conc, 0, s);
    double base_depth = NAN;
    for (int i = 0; i < ns; i++) {
        double best = NAN;
        for (int j = 0; j < s[i].n; j++) {
            double d = s[i].x[j];
            if (!isfinite(s[i].y[j])) continue;
            int better = !isfinite(best) || (d <= 512 && (best > 512 || d > best)) ||
                         (d > 512 && best > 512 && d < best);
            if (d >= 256 && better) best = d;
        }
        double base = NAN;
        for (int j = 0; j < s[i].n; j++)
            if (s[i].x[j] == best) base = s[i].y[j];
        int m = 0;
        for (int j = 0; j < s[i].n; j++) {
            if (!isfinite(base) || s[i].x[j] < best) continue;
            s[i].x[m] = s[i].x[j];
            s[i].y[m] = s[i].y[j] / base;
            m++;
        }
        s[i].n = m;
        if (isfinite(best)) base_depth = best;
    }
    char rtitle[128];
    if (isfinite(base_depth))
        snprintf(rtitle, sizeof rtitle, "Context-scaling retention (cold prefill tok/s ÷ at %.0f)",
                 base_depth);
    else snprintf(rtitle, sizeof rtitle, "Context-scaling retention (no depth ≥ 256 measured)");
    line_chart(&o, "chart-retention", rtitle, "retention (1 = no slowdown)", s, ns, 0, 1.1);

    lc_str_puts(&o, "<h2>Summary</h2>\n<table><tr>");
    for (int c = 0; c < NCOLS; c++) lc_str_printf(&o, "<th>%s</th>", col_names[c]);
    lc_str_puts(&o, "</tr>\n");
    for (int k = 0; k < ng; k++) {
        char cells[NCOLS][96];
        group_cells(&g[k], cells);
        lc_str_puts(&o, "<tr>");
        for (int c = 0; c < NCOLS; c++) {
            lc_str_puts(&o, c < 4 ? "<td>" : "<td class=\"n\">");
            html_escape(&o, cells[c]);
            lc_str_puts(&o, "</td>");
        }
        lc_str_puts(&o, "</tr>\n");
    }
    lc_str_puts(&o, "</table>\n");
    side_by_side(&o, g, ng, 1);
    int any_err = 0;
    for (int k = 0; k < ng; k++) {
        if (!g[k].error) continue;
        if (!any_err++) lc_str_puts(&o, "<h2>Failures</h2>\n<ul>\n");
        lc_str_printf(&o, "<li>%s, concurrency %d, depth %d, %s: %d of %d failed: <code>",
                      g[k].config, g[k].conc, g[k].depth, g[k].cache ? "warm" : "cold",
                      g[k].n - g[k].n_ok, g[k].n);
        html_escape(&o, g[k].error);
        lc_str_puts(&o, "</code></li>\n");
    }
    if (any_err) lc_str_puts(&o, "</ul>\n");
    lc_str_printf(&o, "<script>%s</script>\n</body></html>\n", drawn_script);
    lc_free(s);
    lc_free(g);
    if (!o.buf) return LC_ERR_OOM;

    lc_status st = LC_OK;
    FILE *f = fopen(path, "w");
    if (!f) st = lc_fail(LC_ERR_IO, "cannot write %s", path);
    else {
        size_t w = fwrite(o.buf, 1, o.len, f);
        if (fclose(f) != 0 || w != o.len) st = lc_fail(LC_ERR_IO, "error writing %s", path);
    }
    lc_str_free(&o);
    return st;
}
