/* tokenize.c — `locara tokenize -m FILE`: UTF-8 text on stdin -> token ids on one line (spaces
 * between). Works on vocab-only GGUF files. --ids reverses it (ids on stdin -> text);
 * --bench N times N encodes of the input (median, ms and tokens/s on stderr), the figure
 * bench/tokenize/bench_tokenize.py compares with llama.cpp.
 *
 * Defaults follow llama.cpp's tokenize tool: BOS/EOS as the metadata says, special tokens parsed.
 */
#include "cli.h"

#include "text/tokenizer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *read_stdin(size_t *len) {
    lc_str s = {0};
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, stdin)) > 0)
        if (!lc_str_append(&s, buf, n)) return NULL;
    if (!s.buf && !lc_str_append(&s, "", 0)) return NULL;
    *len = s.len;
    return lc_str_take(&s);
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Reverse mode: whitespace-separated ids -> text through the streaming detokenizer. */
static int ids_to_text(const lc_tok *t, const char *in, bool special) {
    lc_detok *d;
    if (lc_detok_create(t, special, &d) != LC_OK) return 1;
    lc_str out = {0};
    const char *p = in;
    int rc = 0;
    for (;;) {
        while (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r' || *p == ',') p++;
        if (!*p) break;
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p) {
            fprintf(stderr, "locara: --ids expects integers, got '%.20s'\n", p);
            rc = 2;
            break;
        }
        if (lc_detok_feed(d, (lc_token)v, &out) != LC_OK) {
            fprintf(stderr, "locara: %s\n", lc_last_error());
            rc = 1;
            break;
        }
        p = end;
    }
    lc_detok_flush(d, &out);
    if (out.len) fwrite(out.buf, 1, out.len, stdout);
    lc_str_free(&out);
    lc_detok_free(d);
    return rc;
}

int cmd_tokenize(int argc, char **argv) {
    const char *model = NULL;
    bool no_special = false, no_bos = false, ids_mode = false;
    int bench = 0;
    const cli_opt opts[] = {
        {"--model", "-m", CLI_STR, &model, "GGUF file (a model or a vocab-only file)"},
        {"--no-special", NULL, CLI_BOOL, &no_special, "treat control-token text as plain text"},
        {"--no-bos", NULL, CLI_BOOL, &no_bos, "do not add BOS/EOS"},
        {"--ids", NULL, CLI_BOOL, &ids_mode, "reverse: read ids, print the text"},
        {"--bench", NULL, CLI_INT, &bench, "encode the input N times; print the median time"},
    };
    const char *usage = "locara tokenize -m FILE [--no-special] [--no-bos] [--ids] < text";
    int n_pos = 0;
    int rc = cli_parse(argc, argv, opts, (int)LC_ARRAY_LEN(opts), NULL, 0, &n_pos, usage);
    if (rc) return rc == 1 ? 0 : rc;
    if (!model) model = cli_default_model();
    if (!model) {
        fprintf(stderr, "locara: tokenize needs -m FILE\n");
        return 2;
    }
    if (bench < 0) {
        fprintf(stderr, "locara: --bench expects a positive count\n");
        return 2;
    }
    lc_gguf *g = NULL;
    lc_tok *t = NULL;
    char *text = NULL;
    size_t len = 0;
    rc = 1;
    if (lc_gguf_open(model, &g) != LC_OK || lc_tok_load(g, &t) != LC_OK) {
        fprintf(stderr, "locara: %s: %s\n", model, lc_last_error());
        goto done;
    }
    if (!(text = read_stdin(&len))) {
        fprintf(stderr, "locara: reading stdin: %s\n", lc_last_error());
        goto done;
    }
    if (ids_mode) {
        rc = ids_to_text(t, text, !no_special);
        goto done;
    }
    lc_token *ids = NULL;
    int n = 0;
    double *times = bench ? lc_malloc(sizeof(double) * (size_t)bench) : NULL;
    for (int r = 0; r < (bench ? bench : 1); r++) {
        lc_free(ids);
        double t0 = lc_time_sec();
        if (lc_tok_encode(t, text, len, !no_bos, !no_special, &ids, &n) != LC_OK) {
            fprintf(stderr, "locara: %s\n", lc_last_error());
            lc_free(times);
            goto done;
        }
        if (times) times[r] = lc_time_sec() - t0;
    }
    if (times) {
        qsort(times, (size_t)bench, sizeof(double), cmp_double);
        double med = times[bench / 2];
        fprintf(stderr, "tokenize: %d tokens from %zu bytes: median %.3f ms over %d runs (%.0f tokens/s)\n",
                n, len, med * 1e3, bench, n / med);
        lc_free(times);
    }
    for (int i = 0; i < n; i++) printf(i ? " %d" : "%d", ids[i]);
    putchar('\n');
    lc_free(ids);
    rc = 0;
done:
    lc_free(text);
    lc_tok_free(t);
    if (g) lc_gguf_close(g);
    return rc;
}
