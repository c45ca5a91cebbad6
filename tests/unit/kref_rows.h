/* kref_rows.h — the fixed K-quant test rows whose llama.cpp row dots tests/unit/test_kernels.c
 * holds as bits (ggml_kdots) and dev/kdot_ggml_ref.c regenerates: one definition for both.
 * Header-only (static functions): include it in one unit per program.
 */
#ifndef LC_KREF_ROWS_H
#define LC_KREF_ROWS_H

#include <stdint.h>

#define KREF_CASES 16
static const int kref_len[KREF_CASES] = {256, 768, 2048, 4096, 512, 1280, 256, 1024,
                                         1536, 3072, 256, 512, 2304, 768, 256, 4096};

/* Uniform in [-1, 1) in steps of 2^-23: every value and every scaling below is exact in float,
 * so the rows are the same bits under any compiler's contraction. */
static float kref_rand(uint64_t *st) {
    *st = *st * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((int32_t)(*st >> 40) - (1 << 23)) / (float)(1 << 23);
}

/* Case c's weights w and activations a (n = kref_len[c] each): plain, offset (mins), small,
 * large and spiky rows. */
static void kref_rows(int c, float *w, float *a) {
    static const float ws[4] = {1.0f, 0.5f, 0.125f, 2.0f};
    const float off = c % 3 == 1 ? 0.25f : 0.0f, amp = c % 2 ? 4.0f : 1.0f;
    uint64_t st = 0x5EEDull + 977u * (uint64_t)c;
    for (int i = 0; i < kref_len[c]; i++) {
        w[i] = kref_rand(&st) * ws[c % 4] + off;
        a[i] = kref_rand(&st) * amp * (c % 5 >= 3 && i % 97 == 0 ? 16.0f : 1.0f);
    }
}

#endif
