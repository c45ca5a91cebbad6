/* kdot_ggml_ref.c — regenerates test_kernels.c's table of llama.cpp's own K-quant row dots
 * (ggml_kdots): the bits of ggml_vec_dot_q{2..6}_K_q8_K, as the peer's libggml-cpu computes them,
 * on the fixed rows kref_rows makes (tests/unit/kref_rows.h, shared with the test). Weights and
 * Q8_K activations are quantized with Locara's reference quantizers; the program also says
 * whether ggml's own Q8_K quantizer gives the same bytes. Not built by default.
 * Build: gcc -O2 -std=c17 -D_GNU_SOURCE -Iinclude -Isrc dev/kdot_ggml_ref.c build/liblocara_core.a \
 *          -L/work/peer/build/bin -lggml-cpu -lggml-base -Wl,-rpath,/work/peer/build/bin \
 *          -lpthread -lm $(pkg-config --libs libmicrohttpd jansson libpcre2-8 libcurl) -o /tmp/kdot_ggml_ref
 * Run:   /tmp/kdot_ggml_ref   (prints the C table to paste into tests/unit/test_kernels.c)
 */
#include "base/base.h"
#include "quant/quant.h"
#include "../tests/unit/kref_rows.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ggml's CPU type traits, declared here by hand (the ids are GGUF's, as lc_type's). */
typedef void (*g_from_float_t)(const float *, void *, int64_t);
typedef void (*g_vec_dot_t)(int n, float *s, size_t bs, const void *x, size_t bx, const void *y, size_t by, int nrc);
struct g_traits {
    g_from_float_t from_float;
    g_vec_dot_t vec_dot;
    int vec_dot_type;
    int64_t nrows;
};
const struct g_traits *ggml_get_type_traits_cpu(int type);
void ggml_cpu_init(void);


int main(void) {
    ggml_cpu_init();
    static const lc_type types[5] = {LC_TYPE_Q2_K, LC_TYPE_Q3_K, LC_TYPE_Q4_K, LC_TYPE_Q5_K, LC_TYPE_Q6_K};
    float w[4096], a[4096];
    static uint8_t qw[4096 * 2], qa[4096 * 2], qa2[4096 * 2];
    int q8_same = 0;
    printf("static const uint32_t ggml_kdots[5][KREF_CASES] = {\n");
    for (int ti = 0; ti < 5; ti++) {
        printf("    /* %s */\n    {", lc_type_name(types[ti]));
        for (int c = 0; c < KREF_CASES; c++) {
            if (c) printf(c % 4 ? ", " : ",\n     ");
            const int n = kref_len[c];
            kref_rows(c, w, a);
            lc_type_get(types[ti])->from_float(w, qw, n);
            lc_type_get(LC_TYPE_Q8_K)->from_float(a, qa, n);
            ggml_get_type_traits_cpu(LC_TYPE_Q8_K)->from_float(a, qa2, n);
            q8_same += !memcmp(qa, qa2, lc_type_row_size(LC_TYPE_Q8_K, n));
            float s;
            ggml_get_type_traits_cpu(types[ti])->vec_dot(n, &s, 0, qw, 0, qa, 0, 1);
            uint32_t bits;
            memcpy(&bits, &s, 4);
            printf("0x%08xu", bits);
        }
        printf("},\n");
    }
    printf("};\n");
    fprintf(stderr, "ggml's Q8_K quantizer gave Locara's bytes in %d of %d rows\n", q8_same, 5 * KREF_CASES);
    return 0;
}
