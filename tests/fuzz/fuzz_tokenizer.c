/* fuzz_tokenizer.c — libFuzzer target for the tokenizer: arbitrary bytes are encoded with both
 * parse_special settings by a byte-level BPE vocab (Qwen2, tests/data) and an SPM vocab (llama,
 * ../shared/refdata), then streamed back through lc_detok. Invalid UTF-8 must be refused cleanly;
 * for valid input the BPE round trip must give the input back exactly.
 * Vocabs: $LOCARA_FUZZ_BPE / $LOCARA_FUZZ_SPM, else paths relative to this source file.
 * Build: CC=clang cmake -S . -B build-fuzz-tok -DLOCARA_FUZZ=ON -DLOCARA_WERROR=OFF
 */
#include "text/tokenizer.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct vocab {
    lc_gguf *g;
    lc_tok *t;
} vocab;

static void load(vocab *v, const char *env, const char *rel) {
    char path[4096];
    const char *p = getenv(env);
    if (!p) {
        const char *file = __FILE__, *slash = strrchr(file, '/');
        int dir = slash ? (int)(slash - file) : 1;
        snprintf(path, sizeof path, "%.*s/%s", dir, slash ? file : ".", rel);
        p = path;
    }
    if (lc_gguf_open(p, &v->g) != LC_OK || lc_tok_load(v->g, &v->t) != LC_OK) {
        fprintf(stderr, "fuzz_tokenizer: cannot load %s: %s\n", p, lc_last_error());
        abort();
    }
}

static void check_one(const lc_tok *t, const uint8_t *data, size_t size, bool parse_special,
                      bool exact) {
    lc_token *ids;
    int n;
    lc_status st = lc_tok_encode(t, (const char *)data, size, parse_special, parse_special, &ids, &n);
    if (st == LC_ERR_INVALID) return; /* invalid UTF-8: refused with a message */
    if (st != LC_OK) abort();
    for (int r = 0; r < 2; r++) {
        lc_detok *d;
        lc_str out = {0};
        if (lc_detok_create(t, r == 1, &d) != LC_OK) abort();
        for (int i = 0; i < n; i++)
            if (lc_detok_feed(d, ids[i], &out) != LC_OK) abort();
        lc_detok_flush(d, &out);
        /* without specials added or parsed, rendering every token gives the input back */
        if (exact && r == 1 && !parse_special && (out.len != size || (size && memcmp(out.buf, data, size))))
            abort();
        lc_str_free(&out);
        lc_detok_free(d);
    }
    lc_free(ids);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static vocab bpe, spm; /* loaded once; the tokenizers are read-only */
    if (!bpe.t) {
        load(&bpe, "LOCARA_FUZZ_BPE", "../data/ggml-vocab-qwen2.gguf");
        load(&spm, "LOCARA_FUZZ_SPM", "../../../shared/refdata/tokenizer/ggml-vocab-llama-spm.gguf");
    }
    if (size > 4096) return 0;
    for (int ps = 0; ps < 2; ps++) {
        check_one(bpe.t, data, size, ps, true);
        check_one(spm.t, data, size, ps, false);
    }
    return 0;
}
