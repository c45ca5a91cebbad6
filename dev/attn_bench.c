/* attn_bench.c — the CPU backend's attention op alone, one layer of a Llama-3.2-1B shape (32 query
 * heads, 8 KV heads, head 64, f16 cache): a 512-token prompt over an empty cache, then one decode
 * token at depth 512; best time of N rounds (the machine is shared: the minimum is what the op can
 * do). Compares the attention modes of LOCARA_CPU_ATTN (auto, ggml, online) without the rest of a
 * forward; prints a checksum of the decode output so two builds can be checked for the same bits.
 * Not a ctest.
 * Build: gcc -O2 -std=c17 -D_GNU_SOURCE -Iinclude -Isrc dev/attn_bench.c build/liblocara_core.a \
 *          -lpthread -lm $(pkg-config --libs libmicrohttpd jansson libpcre2-8 libcurl) -o /tmp/attn_bench
 * Run:   for m in online auto ggml; do LOCARA_CPU_ATTN=$m /tmp/attn_bench [rounds]; done
 */
#include "backend/backend.h"
#include "base/base.h"
#include "quant/quant.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

enum { H = 32, HK = 8, D = 64, BT = 32, NB = 24, N = 512 };

static float frand(unsigned *s) {
    *s = *s * 1103515245u + 12345u;
    return (float)((*s >> 8) & 0xffff) / 32768.0f - 1.0f;
}

/* Seconds one call of the attention op takes over batch b. */
static double timed(lc_backend *be, float *out, const float *q, lc_kv *kv, const lc_attn_batch *b) {
    double t0 = lc_time_sec();
    be->ops->attention(be, out, q, kv, 0, b, H, 1.0f / sqrtf((float)D));
    return lc_time_sec() - t0;
}

int main(int argc, char **argv) {
    const int rounds = argc > 1 ? atoi(argv[1]) : 10;
    lc_backend *be;
    if (lc_backend_cpu_create(2, &be)) return fprintf(stderr, "%s\n", lc_last_error()), 1;
    lc_kv kv = {.n_layer = 1, .n_kv_head = HK, .head_dim = D, .block_tokens = BT, .n_blocks = NB,
                .type = LC_TYPE_F16, .row_bytes = lc_type_row_size(LC_TYPE_F16, (int64_t)HK * D)};
    if (be->ops->kv_alloc(be, &kv)) return fprintf(stderr, "%s\n", lc_last_error()), 1;
    int32_t table[NB], pos[N], seq[N] = {0}, slot[N];
    const int32_t *tables[N];
    for (int i = 0; i < NB; i++) table[i] = i;
    for (int t = 0; t < N; t++) pos[t] = t, slot[t] = t, tables[t] = table;
    float *k = malloc(sizeof(float) * N * HK * D), *v = malloc(sizeof(float) * N * HK * D);
    float *q = malloc(sizeof(float) * N * H * D), *o = malloc(sizeof(float) * N * H * D);
    if (!k || !v || !q || !o) return fprintf(stderr, "out of memory\n"), 1;
    unsigned seed = 5;
    for (size_t i = 0; i < (size_t)N * HK * D; i++) k[i] = frand(&seed) * 2, v[i] = frand(&seed);
    for (size_t i = 0; i < (size_t)N * H * D; i++) q[i] = frand(&seed) * 2;
    lc_attn_batch prompt = {N, pos, seq, slot, tables}, dec = {1, pos + N - 1, seq, slot + N - 1, tables};
    be->ops->kv_store(be, &kv, 0, k, v, &prompt);
    double best_prompt = 1e9, best_dec = 1e9;
    for (int r = 0; r < rounds; r++) {
        best_prompt = fmin(best_prompt, timed(be, o, q, &kv, &prompt));
        for (int i = 0; i < 20; i++) best_dec = fmin(best_dec, timed(be, o, q + (size_t)(N - 1) * H * D, &kv, &dec));
    }
    double sum = 0;
    for (int i = 0; i < H * D; i++) sum += o[i];
    const char *mode = getenv("LOCARA_CPU_ATTN");
    printf("%-6s prompt of %d: %.2f ms  decode at depth %d: %.3f ms  (checksum %.6f)\n", mode ? mode : "auto", N,
           best_prompt * 1e3, N, best_dec * 1e3, sum);
    be->ops->kv_free(be, &kv);
    lc_backend_cpu_free(be);
    free(k), free(v), free(q), free(o);
    return 0;
}
