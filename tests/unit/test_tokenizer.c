/* test_tokenizer.c — the tokenizer against llama.cpp's vocabulary test vectors (every
 * ggml-vocab-*.gguf with .inp/.out in ../shared/refdata/tokenizer, in tests/data, and in the
 * vocab cache $LOCARA_VOCAB_DIR or ~/.cache/locara/vocab for the files too large to commit),
 * plus the default model's round trip, special-token parsing, the streaming detokenizer,
 * invalid UTF-8, thread safety and memory accounting.
 */
#include "testutil.h"

#include "text/tokenizer.h"

#include <dirent.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SEP "\n__ggml_vocab_test__\n"

static bool exists(const char *p) { return access(p, R_OK) == 0; }

/* Runs one vocabulary's vectors; prints a table row. Returns false when it could not run. */
static void run_vocab(const char *label, const char *gguf, const char *inp, const char *outp,
                      const char *source) {
    lc_gguf *g = NULL;
    lc_tok *t = NULL;
    char *in = NULL, *exp = NULL;
    size_t in_len, exp_len;
    if (lc_gguf_open(gguf, &g) != LC_OK) {
        CHECKF(0, "%s: %s", label, lc_last_error());
        return;
    }
    char model[32] = "?", pre[64] = "(none)";
    lc_gguf_get_str(g, "tokenizer.ggml.model", model, sizeof model);
    lc_gguf_get_str(g, "tokenizer.ggml.pre", pre, sizeof pre);
    lc_status st = lc_tok_load(g, &t);
    if (st == LC_ERR_UNSUPPORTED) {
        printf("  %-24s %-7s %-16s %5s %5s  not implemented: %s\n", label, model, pre, "-", "-",
               lc_last_error());
        lc_gguf_close(g);
        return;
    }
    CHECKF(st == LC_OK, "%s: load: %s", label, lc_last_error());
    if (st != LC_OK) { lc_gguf_close(g); return; }
    if (!inp || !outp) {
        printf("  %-24s %-7s %-16s %5s %5s  loads; no .inp/.out upstream (%s)\n", label, model, pre,
               "-", "-", source);
        lc_tok_free(t);
        lc_gguf_close(g);
        return;
    }
    CHECK(lc_read_file(inp, &in, &in_len) == LC_OK);
    CHECK(lc_read_file(outp, &exp, &exp_len) == LC_OK);
    int n_texts = 0, n_pass = 0;
    char *p = in, *line = exp;
    const char *first_fail = NULL;
    for (;;) {
        char *sep = strstr(p, SEP); /* the texts contain no NUL bytes */
        if (!sep) break;
        char *eol = strchr(line, '\n');
        if (!eol) break;
        *eol = 0;
        lc_token *ids = NULL;
        int n = 0;
        bool ok = lc_tok_encode(t, p, (size_t)(sep - p), false, false, &ids, &n) == LC_OK;
        /* compare with " id id ..." */
        char *q = line;
        for (int i = 0; ok && i < n; i++) {
            char *end;
            long v = strtol(q, &end, 10);
            if (end == q || v != ids[i]) ok = false;
            q = end;
        }
        while (*q == ' ') q++;
        if (*q) ok = false;
        if (ok) n_pass++;
        else if (!first_fail) {
            static char buf[200];
            snprintf(buf, sizeof buf, "text %d ('%.30s')", n_texts, p);
            first_fail = buf;
            fprintf(stderr, "%s: text %d mismatch\n  expected:%s\n  got:     ", label, n_texts, line);
            for (int i = 0; i < n; i++) fprintf(stderr, " %d", ids[i]);
            fprintf(stderr, "\n");
        }
        lc_free(ids);
        n_texts++;
        p = sep + strlen(SEP);
        line = eol + 1;
    }
    CHECKF(n_texts > 0 && n_pass == n_texts, "%s: %d/%d texts match", label, n_pass, n_texts);
    printf("  %-24s %-7s %-16s %5d %5d  %s (%s)\n", label, model, pre, n_texts, n_pass,
           n_pass == n_texts ? "ok" : first_fail, source);
    lc_free(in);
    lc_free(exp);
    lc_tok_free(t);
    lc_gguf_close(g);
}

static const char *vocab_cache_dir(void) {
    static char buf[1024];
    const char *d = getenv("LOCARA_VOCAB_DIR");
    if (d && *d) return d;
    const char *home = getenv("HOME");
    snprintf(buf, sizeof buf, "%s/.cache/locara/vocab", home ? home : ".");
    return buf;
}

/* Vocab names already run, so the later sources only add what is missing. */
static char seen[64][64];
static int n_seen;

static bool was_seen(const char *name) {
    for (int i = 0; i < n_seen; i++)
        if (!strcmp(seen[i], name)) return true;
    return false;
}

static void mark_seen(const char *name) {
    size_t l = strlen(name);
    if (n_seen < 64 && l < sizeof seen[0]) memcpy(seen[n_seen++], name, l + 1);
}

/* Runs every ggml-vocab-<name>.gguf in dir (those not seen yet). */
static void run_dir(const char *dir, const char *source, const char *fallback_dir) {
    DIR *d = opendir(dir);
    if (!d) {
        printf("  (%s: %s not present)\n", source, dir);
        return;
    }
    char names[64][128];
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) && n < 64) {
        size_t l = strlen(de->d_name);
        if (strncmp(de->d_name, "ggml-vocab-", 11) || l < 16 || strcmp(de->d_name + l - 5, ".gguf"))
            continue;
        snprintf(names[n++], sizeof names[0], "%.*s", (int)(l - 16), de->d_name + 11);
    }
    closedir(d);
    for (int i = 0; i < n; i++) /* sort for a stable table */
        for (int j = i + 1; j < n; j++)
            if (strcmp(names[j], names[i]) < 0) {
                char tmp[128];
                memcpy(tmp, names[i], sizeof tmp);
                memcpy(names[i], names[j], sizeof tmp);
                memcpy(names[j], tmp, sizeof tmp);
            }
    for (int i = 0; i < n; i++) {
        if (was_seen(names[i])) continue;
        char g[4096], in[4096], out[4096];
        if (snprintf(g, sizeof g, "%s/ggml-vocab-%s.gguf", dir, names[i]) >= (int)sizeof g ||
            snprintf(in, sizeof in, "%s.inp", g) >= (int)sizeof in ||
            snprintf(out, sizeof out, "%s.out", g) >= (int)sizeof out)
            continue;
        if (!exists(in) && fallback_dir &&
            (snprintf(in, sizeof in, "%s/ggml-vocab-%s.gguf.inp", fallback_dir, names[i]) >= (int)sizeof in ||
             snprintf(out, sizeof out, "%s/ggml-vocab-%s.gguf.out", fallback_dir, names[i]) >= (int)sizeof out))
            continue;
        bool have = exists(in) && exists(out);
        run_vocab(names[i], g, have ? in : NULL, have ? out : NULL, source);
        mark_seen(names[i]);
    }
}

static void test_vectors(void) {
    const char *ref = test_shared_path("refdata/tokenizer");
    char refdir[1024] = "", datadir[1024];
    if (ref) snprintf(refdir, sizeof refdir, "%s", ref);
    const char *src = getenv("LC_SOURCE_DIR");
    snprintf(datadir, sizeof datadir, "%s/tests/data", src ? src : ".");
    printf("vocabulary vectors (add_special=false, parse_special=false):\n");
    printf("  %-24s %-7s %-16s %5s %5s  %s\n", "vocab", "model", "pre", "texts", "pass", "result");
    if (ref) run_dir(refdir, "refdata", NULL);
    run_dir(datadir, "tests/data", ref ? refdir : NULL);
    run_dir(vocab_cache_dir(), "vocab cache", ref ? refdir : NULL);
    /* vectors with no vocabulary anywhere */
    if (ref) {
        DIR *d = opendir(refdir);
        struct dirent *de;
        while (d && (de = readdir(d))) {
            size_t l = strlen(de->d_name);
            if (l < 20 || strcmp(de->d_name + l - 9, ".gguf.inp")) continue;
            char name[128];
            snprintf(name, sizeof name, "%.*s", (int)(l - 20), de->d_name + 11);
            if (!was_seen(name))
                printf("  %-24s %-7s %-16s %5s %5s  skipped: no .gguf in refdata, tests/data or %s\n",
                       name, "?", "?", "-", "-", vocab_cache_dir());
        }
        if (d) closedir(d);
    }
}

/* ==== Behaviour on the default model (SmolLM2, BPE, pre "smollm") ==== */

static bool valid_utf8(const char *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        unsigned char c = (unsigned char)s[i];
        size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
        if (!len || i + len > n) return false;
        for (size_t j = 1; j < len; j++)
            if (((unsigned char)s[i + j] & 0xC0) != 0x80) return false;
        i += len;
    }
    return true;
}

/* Streams ids through lc_detok, checking every chunk is whole UTF-8; returns the text. */
static char *stream_decode(const lc_tok *t, const lc_token *ids, int n, bool *chunks_ok) {
    lc_detok *d;
    lc_str all = {0};
    *chunks_ok = true;
    if (lc_detok_create(t, false, &d) != LC_OK) return NULL;
    for (int i = 0; i < n; i++) {
        lc_str chunk = {0};
        if (lc_detok_feed(d, ids[i], &chunk) != LC_OK) *chunks_ok = false;
        if (chunk.len && !valid_utf8(chunk.buf, chunk.len)) *chunks_ok = false;
        lc_str_append(&all, chunk.buf ? chunk.buf : "", chunk.len);
        lc_str_free(&chunk);
    }
    lc_detok_flush(d, &all);
    lc_detok_free(d);
    if (!all.buf) lc_str_append(&all, "", 0);
    return lc_str_take(&all);
}

static const char *const ROUND_TRIP[] = {
    "Hello world",
    " leading space and  double  spaces\n\nnew paragraph\ttab",
    "int main(void) { return printf(\"%d\\n\", 42); }",
    "naïve café — 日本語のテキスト, 한국어, العربية, emoji 🙂🚀 and 𝔘𝔫𝔦𝔠𝔬𝔡𝔢",
    "12345678901234567890 3.14159 1e-9",
    "",
};

typedef struct thr_arg {
    const lc_tok *t;
    const char *text;
    lc_token *expect;
    int n_expect;
    int ok;
} thr_arg;

static void *thr_encode(void *p) {
    thr_arg *a = p;
    a->ok = 1;
    for (int r = 0; r < 20; r++) {
        lc_token *ids;
        int n;
        if (lc_tok_encode(a->t, a->text, strlen(a->text), true, true, &ids, &n) != LC_OK ||
            n != a->n_expect || memcmp(ids, a->expect, sizeof(lc_token) * (size_t)n))
            a->ok = 0;
        lc_free(ids);
    }
    return NULL;
}

static void test_default_model_tok(void) {
    const char *path = test_default_model();
    if (!path) {
        printf("default model: skipped (not provisioned)\n");
        return;
    }
    lc_gguf *g;
    lc_tok *t;
    CHECK(lc_gguf_open(path, &g) == LC_OK);
    size_t mem_before = lc_mem_in_use();
    CHECKF(lc_tok_load(g, &t) == LC_OK, "%s", lc_last_error());
    printf("default model: tokenizer index memory %.2f MB for %d tokens\n",
           (double)(lc_mem_in_use() - mem_before) / 1048576.0, lc_tok_n_vocab(t));
    CHECK(lc_tok_get_kind(t) == LC_TOK_BPE);
    CHECK(!strcmp(lc_tok_pre_name(t), "smollm"));

    for (size_t i = 0; i < LC_ARRAY_LEN(ROUND_TRIP); i++) {
        const char *s = ROUND_TRIP[i];
        lc_token *ids;
        int n;
        CHECK(lc_tok_encode(t, s, strlen(s), false, false, &ids, &n) == LC_OK);
        bool chunks_ok;
        char *back = stream_decode(t, ids, n, &chunks_ok);
        CHECKF(back && !strcmp(back, s), "round trip of '%s' gave '%s'", s, back ? back : "(null)");
        CHECKF(chunks_ok, "stream chunks of '%s' were not whole UTF-8", s);
        /* pieces concatenated equal the text too */
        lc_str cat = {0};
        for (int k = 0; k < n; k++) {
            char buf[256];
            int m = lc_tok_piece(t, ids[k], buf, sizeof buf);
            CHECK(m >= 0 && m <= (int)sizeof buf);
            lc_str_append(&cat, buf, (size_t)m);
        }
        CHECK(cat.len == strlen(s) && (cat.len == 0 || !memcmp(cat.buf, s, cat.len)));
        lc_str_free(&cat);
        lc_free(back);
        lc_free(ids);
    }

    /* an emoji is split over several byte tokens; the stream must hold them until whole */
    {
        const char *s = "🙂";
        lc_token *ids;
        int n;
        CHECK(lc_tok_encode(t, s, strlen(s), false, false, &ids, &n) == LC_OK);
        CHECKF(n > 1, "expected the emoji to take several tokens, got %d", n);
        lc_detok *d;
        CHECK(lc_detok_create(t, false, &d) == LC_OK);
        lc_str out = {0};
        for (int k = 0; k < n - 1; k++) CHECK(lc_detok_feed(d, ids[k], &out) == LC_OK);
        CHECKF(out.len == 0, "partial emoji leaked %zu bytes", out.len);
        CHECK(lc_detok_feed(d, ids[n - 1], &out) == LC_OK);
        CHECK(out.len == 4 && !memcmp(out.buf, s, 4));
        lc_str_free(&out);
        lc_detok_free(d);
        lc_free(ids);
    }

    /* special tokens: parsed with parse_special, plain text without */
    lc_token im_start = lc_tok_find(t, "<|im_start|>"), im_end = lc_tok_find(t, "<|im_end|>");
    CHECK(im_start >= 0 && im_end >= 0);
    CHECK(lc_tok_is_eog(t, im_end));
    CHECK(!lc_tok_is_eog(t, im_start));
    CHECK(lc_tok_is_control(t, im_start));
    {
        const char *s = "<|im_start|>user\nHi<|im_end|>\n";
        lc_token *ids;
        int n;
        CHECK(lc_tok_encode(t, s, strlen(s), false, true, &ids, &n) == LC_OK);
        CHECK(n >= 4 && ids[0] == im_start);
        int ends = 0;
        for (int k = 0; k < n; k++) ends += ids[k] == im_end;
        CHECK(ends == 1);
        lc_free(ids);
        CHECK(lc_tok_encode(t, s, strlen(s), false, false, &ids, &n) == LC_OK);
        bool has = false;
        for (int k = 0; k < n; k++) has |= ids[k] == im_start || ids[k] == im_end;
        CHECKF(!has && n > 8, "without parse_special the markers must be plain text (%d ids)", n);
        lc_free(ids);
        /* add_special follows the metadata: SmolLM2 says add_bos_token = false */
        CHECK(lc_tok_encode(t, "hi", 2, true, true, &ids, &n) == LC_OK);
        CHECK(n >= 1 && (lc_tok_add_bos(t) ? ids[0] == lc_tok_bos(t) : ids[0] != lc_tok_bos(t)));
        lc_free(ids);
        /* caller-buffer form reports the full count */
        lc_token small[2];
        int full = lc_tok_encode_into(t, s, strlen(s), false, true, small, 2);
        CHECK(full > 2 && small[0] == im_start);
    }

    /* invalid UTF-8 is rejected with the offending byte's offset */
    {
        lc_token *ids = (lc_token *)1;
        int n = 7;
        const char bad[] = "abc\xff" "def";
        CHECK(lc_tok_encode(t, bad, 7, false, false, &ids, &n) == LC_ERR_INVALID);
        CHECKF(strstr(lc_last_error(), "byte 3") != NULL, "message: %s", lc_last_error());
        CHECK(ids == NULL && n == 0);
        const char trunc[] = "ok \xe2\x96";
        CHECK(lc_tok_encode(t, trunc, 5, false, false, &ids, &n) == LC_ERR_INVALID);
        CHECK(strstr(lc_last_error(), "byte 3") != NULL);
        const char surrogate[] = "\xed\xa0\x80";
        CHECK(lc_tok_encode(t, surrogate, 3, false, false, &ids, &n) == LC_ERR_INVALID);
    }

    /* bad ids */
    {
        char buf[8];
        CHECK(lc_tok_piece(t, -1, buf, 8) == -1);
        CHECK(lc_tok_piece(t, lc_tok_n_vocab(t), buf, 8) == -1);
        lc_detok *d;
        lc_str out = {0};
        CHECK(lc_detok_create(t, false, &d) == LC_OK);
        CHECK(lc_detok_feed(d, 1 << 30, &out) == LC_ERR_INVALID);
        lc_detok_free(d);
    }

    /* many threads on one tokenizer */
    {
        const char *s = "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
                        "<|im_start|>user\nWrite quicksort in C, please: ünïcödé 🙂<|im_end|>\n";
        lc_token *ids;
        int n;
        CHECK(lc_tok_encode(t, s, strlen(s), true, true, &ids, &n) == LC_OK);
        pthread_t th[4];
        thr_arg a[4];
        for (int k = 0; k < 4; k++) {
            a[k] = (thr_arg){t, s, ids, n, 0};
            pthread_create(&th[k], NULL, thr_encode, &a[k]);
        }
        for (int k = 0; k < 4; k++) {
            pthread_join(th[k], NULL);
            CHECK(a[k].ok);
        }
        lc_free(ids);
    }
    lc_tok_free(t);
    lc_gguf_close(g);
    printf("default model: round trips, special tokens, streaming, invalid UTF-8, threads checked\n");
}

/* SPM: the space prefix is added on encode and removed by the detokenizer; user text that
 * looks like a control token stays text unless parse_special. */
static void test_spm(void) {
    const char *p = test_shared_path("refdata/tokenizer/ggml-vocab-llama-spm.gguf");
    if (!p) return;
    lc_gguf *g;
    lc_tok *t;
    CHECK(lc_gguf_open(p, &g) == LC_OK);
    CHECK(lc_tok_load(g, &t) == LC_OK);
    CHECK(lc_tok_get_kind(t) == LC_TOK_SPM);
    for (size_t i = 0; i < LC_ARRAY_LEN(ROUND_TRIP); i++) {
        const char *s = ROUND_TRIP[i];
        lc_token *ids;
        int n;
        CHECK(lc_tok_encode(t, s, strlen(s), true, false, &ids, &n) == LC_OK);
        CHECK(n >= 1 && ids[0] == lc_tok_bos(t)); /* llama SPM adds BOS */
        bool ok;
        char *back = stream_decode(t, ids, n, &ok);
        CHECKF(back && !strcmp(back, s), "SPM round trip of '%s' gave '%s'", s, back ? back : "");
        CHECK(ok);
        lc_free(back);
        lc_free(ids);
    }
    lc_token *ids;
    int n;
    CHECK(lc_tok_encode(t, "</s>", 4, false, true, &ids, &n) == LC_OK);
    CHECK(n == 1 && ids[0] == lc_tok_eos(t));
    lc_free(ids);
    CHECK(lc_tok_encode(t, "</s>", 4, false, false, &ids, &n) == LC_OK);
    CHECK(n > 1);
    lc_free(ids);
    lc_tok_free(t);
    lc_gguf_close(g);
}

int main(void) {
    size_t mem0 = lc_mem_in_use();
    test_vectors();
    test_default_model_tok();
    test_spm();
    CHECKF(lc_mem_in_use() == mem0, "memory held after freeing everything: %zu -> %zu", mem0,
           lc_mem_in_use());
    return test_done();
}
