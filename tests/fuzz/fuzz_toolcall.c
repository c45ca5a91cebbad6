/* fuzz_toolcall.c — libFuzzer target for the output parsers (text/outparse.h).
 *
 * Input: byte 0 picks options (reasoning markers, starts-in-reasoning, tools), byte 1 picks a
 * split point, the rest is model output. Every format parses it whole and split in two; the
 * results must agree and equal the concatenated deltas (else trap). ASan/UBSan catch the rest.
 */
#include "text/outparse.h"

#include <stdlib.h>
#include <string.h>

typedef struct got {
    lc_str content, reasoning, calls;
} got;

static void take(got *g, lc_outparse_delta *d) {
    lc_str_append(&g->content, d->content.buf ? d->content.buf : "", d->content.len);
    lc_str_append(&g->reasoning, d->reasoning.buf ? d->reasoning.buf : "", d->reasoning.len);
    for (int i = 0; i < d->n_calls; i++) {
        lc_str_printf(&g->calls, "%d|%s|%s|%s\n", d->calls[i].index, d->calls[i].id, d->calls[i].name,
                      d->calls[i].arguments);
        if (strlen(d->calls[i].id) != 29) __builtin_trap();
    }
    lc_outparse_delta_clear(d);
}

static bool eq(const lc_str *a, const lc_str *b) {
    return a->len == b->len && (a->len == 0 || memcmp(a->buf, b->buf, a->len) == 0);
}

/* Feeds data in two pieces cut at `cut` (0 = whole) and checks the result matches the deltas. */
static void run(const lc_outparse_opts *o, const char *data, size_t len, size_t cut, got *g) {
    memset(g, 0, sizeof *g);
    lc_outparse *p = NULL;
    if (lc_outparse_create(o, &p) != LC_OK) __builtin_trap();
    lc_outparse_delta d = {0};
    if (cut > 0 && cut < len) {
        lc_outparse_feed(p, data, cut, &d);
        take(g, &d);
        lc_outparse_feed(p, data + cut, len - cut, &d);
    } else {
        lc_outparse_feed(p, data, len, &d);
    }
    take(g, &d);
    lc_outparse_finish(p, &d);
    take(g, &d);
    const lc_outparse_final *r = lc_outparse_result(p);
    if (!eq(&r->content, &g->content) || !eq(&r->reasoning, &g->reasoning)) __builtin_trap();
    for (int i = 0; i < r->n_calls; i++)
        if (!r->calls[i].name || !r->calls[i].arguments) __builtin_trap();
    lc_outparse_delta_free(&d);
    lc_outparse_free(p);
}

static void got_free(got *g) {
    lc_str_free(&g->content);
    lc_str_free(&g->reasoning);
    lc_str_free(&g->calls);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 2) return 0;
    static const char *const opens[] = {NULL, "<think>", "<seed:think>", "[THINK]"};
    static const char *const closes[] = {NULL, "</think>", "</seed:think>", "[/THINK]"};
    uint8_t flags = data[0];
    const char *text = (const char *)data + 2;
    size_t len = size - 2, cut = len ? (size_t)data[1] * len / 255 : 0;
    for (int f = LC_FMT_PLAIN; f <= LC_FMT_HARMONY; f++) {
        lc_outparse_opts o = lc_outparse_opts_default();
        o.format = (lc_out_format)f;
        o.think_open = opens[flags & 3];
        o.think_close = closes[flags & 3];
        o.starts_in_reasoning = (flags >> 2) & 1;
        o.tools = !((flags >> 3) & 1);
        o.seed = flags;
        got whole, split;
        run(&o, text, len, 0, &whole);
        run(&o, text, len, cut, &split);
        if (!eq(&whole.content, &split.content) || !eq(&whole.reasoning, &split.reasoning) ||
            !eq(&whole.calls, &split.calls))
            __builtin_trap();
        got_free(&whole);
        got_free(&split);
    }
    return 0;
}
