/* test_quant.c — the quant module against ggml: type table sanity, and bit-exact reference
 * quantize/dequantize against tests/golden/quant/quant_goldens.bin (made by
 * make_quant_goldens.py from gguf-py and ggml's own reference functions).
 * SIMD kernels are compared with the scalar reference in test_kernels.c.
 */
#include "testutil.h"

#include "base/base.h"
#include "quant/quant.h"
#include "quant/quant_blocks.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static uint32_t rd32(const uint8_t *p) {
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

static void test_table(void) {
    CHECK(lc_type_get(LC_TYPE_Q4_K)->block_size == 256);
    CHECK(lc_type_get(LC_TYPE_Q4_K)->type_size == sizeof(lc_block_q4_K));
    CHECK(lc_type_get(3) && lc_type_get(3)->vec_dot_type == LC_TYPE_Q8_1);
    CHECK(lc_type_get(4) == NULL);
    CHECK(lc_type_get(-1) == NULL && lc_type_get(LC_TYPE_COUNT) == NULL);
    CHECK(lc_type_from_name("Q6_K") == LC_TYPE_Q6_K);
    CHECK(lc_type_from_name("bf16") == LC_TYPE_BF16);
    CHECK(lc_type_from_name("nope") == -1);
    CHECK(lc_type_row_size(LC_TYPE_Q8_0, 64) == 68);
    CHECK(strcmp(lc_type_name(LC_TYPE_Q5_K), "q5_K") == 0);
}

/* Reads the golden file and checks every entry; counts what was checked per kind. */
static void test_goldens(void) {
    const char *srcdir = getenv("LC_SOURCE_DIR");
    char path[4096];
    snprintf(path, sizeof path, "%s/tests/golden/quant/quant_goldens.bin", srcdir ? srcdir : ".");
    char *buf = NULL;
    size_t len = 0;
    lc_status st = lc_read_file(path, &buf, &len);
    CHECKF(st == LC_OK, "cannot read %s: %s", path, lc_last_error());
    if (st != LC_OK) return;
    const uint8_t *p = (const uint8_t *)buf, *end = p + len;
    CHECK(len > 20 && memcmp(p, "LCQG", 4) == 0 && rd32(p + 4) == 1);
    uint32_t nrows = rd32(p + 8), npr = rd32(p + 12);
    p += 16;
    float *rows = malloc((size_t)nrows * npr * sizeof(float));
    memcpy(rows, p, (size_t)nrows * npr * 4);
    p += (size_t)nrows * npr * 4;
    uint32_t n = rd32(p);
    p += 4;
    int nquant = 0, ndeq = 0;
    for (uint32_t e = 0; e < n && p + 20 <= end; e++) {
        uint32_t t = rd32(p), kind = rd32(p + 4), nbytes = rd32(p + 12), nfl = rd32(p + 16);
        p += 20;
        const uint8_t *bytes = p;
        const uint8_t *fl = p + nbytes;
        p += nbytes + (size_t)nfl * 4;
        const lc_type_info *ti = lc_type_get((int)t);
        CHECKF(ti != NULL, "golden type %u unknown", t);
        if (!ti) continue;
        if (kind == 0) {
            size_t want = lc_type_row_size((lc_type)t, npr) * nrows;
            CHECKF(want == nbytes, "%s: golden has %u bytes, we expect %zu", ti->name, nbytes, want);
            uint8_t *q = calloc(1, want);
            for (uint32_t r = 0; r < nrows; r++)
                ti->from_float(rows + (size_t)r * npr, q + r * lc_type_row_size((lc_type)t, npr), npr);
            size_t diff = 0, first = (size_t)-1;
            for (size_t i = 0; i < want && i < nbytes; i++)
                if (q[i] != bytes[i]) { diff++; if (first == (size_t)-1) first = i; }
            CHECKF(diff == 0, "%s quantize: %zu bytes differ from ggml (first at %zu)", ti->name, diff, first);
            /* lc_quantize_rows must give the same bytes */
            memset(q, 0, want);
            CHECK(lc_quantize_rows((lc_type)t, rows, q, nrows, npr) == want);
            CHECK(memcmp(q, bytes, want) == 0);
            free(q);
            nquant++;
        } else {
            int64_t nel = (int64_t)nbytes / (int64_t)ti->type_size * ti->block_size;
            CHECKF(nel == nfl, "%s dequant sizes", ti->name);
            float *out = malloc((size_t)nel * 4);
            ti->to_float(bytes, out, nel);
            int64_t diff = 0;
            for (int64_t i = 0; i < nel; i++)
                if (memcmp(&out[i], fl + i * 4, 4) != 0) diff++;
            CHECKF(diff == 0, "%s dequantize: %lld values differ from ggml", ti->name, (long long)diff);
            free(out);
            ndeq++;
        }
    }
    CHECKF(nquant >= 12 && ndeq >= 11, "golden entries: %d quantize, %d dequantize", nquant, ndeq);
    printf("goldens: %d quantize and %d dequantize entries checked\n", nquant, ndeq);
    free(rows);
    lc_free(buf);
}

/* Round trips: quantize then dequantize stays within a bound that depends on the bits. */
static void test_roundtrip(void) {
    static const struct { lc_type t; float tol; } cases[] = {
        {LC_TYPE_Q4_0, 0.2f}, {LC_TYPE_Q4_1, 0.15f}, {LC_TYPE_Q5_0, 0.1f}, {LC_TYPE_Q5_1, 0.08f},
        {LC_TYPE_Q8_0, 0.01f}, {LC_TYPE_Q2_K, 0.5f}, {LC_TYPE_Q3_K, 0.3f}, {LC_TYPE_Q4_K, 0.15f},
        {LC_TYPE_Q5_K, 0.08f}, {LC_TYPE_Q6_K, 0.04f}, {LC_TYPE_Q8_K, 0.01f}, {LC_TYPE_F16, 1e-3f},
        {LC_TYPE_BF16, 1e-2f},
    };
    enum { N = 1024 };
    float x[N], y[N];
    uint32_t s = 12345;
    for (int i = 0; i < N; i++) {
        s = s * 1664525u + 1013904223u;
        x[i] = ((float)(s >> 8) / 16777216.0f) * 2.0f - 1.0f;
    }
    for (size_t c = 0; c < LC_ARRAY_LEN(cases); c++) {
        const lc_type_info *ti = lc_type_get(cases[c].t);
        uint8_t q[N * 4];
        ti->from_float(x, q, N);
        ti->to_float(q, y, N);
        float maxerr = 0;
        for (int i = 0; i < N; i++) maxerr = fmaxf(maxerr, fabsf(x[i] - y[i]));
        CHECKF(maxerr < cases[c].tol, "%s round trip max error %g", ti->name, maxerr);
    }
}

int main(void) {
    test_table();
    test_goldens();
    test_roundtrip();
    return test_done();
}
