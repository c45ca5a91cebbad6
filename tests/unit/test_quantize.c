/* test_quantize.c — `locara quantize`: llama.cpp's mix rules (quant_mix.c) on synthetic names,
 * then end to end: the test writes a small GGUF with lc_gguf_writer, runs the locara binary on
 * it, and checks the tensor types chosen, the metadata copied and the dequantized values.
 */
#include "testutil.h"

#include "base/base.h"
#include "gguf/gguf.h"
#include "quant/quant_mix.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void test_mix(void) {
    lc_quant_mix m = {.ft = lc_ftype_from_name("q4_k_m"), .has_output = true, .n_gqa = 1, .n_layer = 8, .n_attn_v = 8};
    CHECK(m.ft && m.ft->ftype == 15 && m.ft->base == LC_TYPE_Q4_K);
    CHECK(lc_quant_mix_pick(&m, "output.weight", 4096) == LC_TYPE_Q6_K);
    CHECK(lc_quant_mix_pick(&m, "token_embd.weight", 4096) == LC_TYPE_Q4_K);
    /* use_more_bits(i, 8): layers 0, 3, 6, 7 */
    static const lc_type want[8] = {LC_TYPE_Q6_K, LC_TYPE_Q4_K, LC_TYPE_Q4_K, LC_TYPE_Q6_K,
                                    LC_TYPE_Q4_K, LC_TYPE_Q4_K, LC_TYPE_Q6_K, LC_TYPE_Q6_K};
    for (int i = 0; i < 8; i++) {
        char nm[64];
        snprintf(nm, sizeof nm, "blk.%d.attn_v.weight", i);
        CHECKF(lc_quant_mix_pick(&m, nm, 4096) == want[i], "attn_v layer %d", i);
        snprintf(nm, sizeof nm, "blk.%d.ffn_down.weight", i);
        CHECKF(lc_quant_mix_pick(&m, nm, 4096) == want[i], "ffn_down layer %d", i);
        snprintf(nm, sizeof nm, "blk.%d.attn_q.weight", i);
        CHECK(lc_quant_mix_pick(&m, nm, 4096) == LC_TYPE_Q4_K);
    }
    /* rows that are not a multiple of 256 fall back like llama.cpp */
    CHECK(lc_quant_mix_pick(&m, "blk.0.attn_q.weight", 96) == LC_TYPE_Q5_0);
    CHECK(lc_quant_mix_pick(&m, "blk.0.attn_q.weight", 100) == LC_TYPE_F16);
    CHECK(lc_quant_mix_pick(&m, "output.weight", 96) == LC_TYPE_Q8_0);
    CHECK(!lc_quant_mix_wants("blk.0.attn_norm.weight", 2));
    CHECK(!lc_quant_mix_wants("blk.0.ffn_gate_inp.weight", 2));
    CHECK(!lc_quant_mix_wants("blk.0.attn_q.bias", 2));
    CHECK(lc_quant_mix_wants("blk.0.ffn_down_exps.weight", 3));

    lc_quant_mix q8 = {.ft = lc_ftype_from_name("Q8_0"), .has_output = false, .n_layer = 8};
    CHECK(lc_quant_mix_pick(&q8, "token_embd.weight", 4096) == LC_TYPE_Q8_0); /* tied: output rule */
    lc_quant_mix q40 = {.ft = lc_ftype_from_name("Q4_0"), .has_output = false, .n_layer = 8};
    CHECK(lc_quant_mix_pick(&q40, "token_embd.weight", 4096) == LC_TYPE_Q6_K);
    /* MoE experts: layer from the name */
    lc_quant_mix moe = {.ft = lc_ftype_from_name("Q5_K_M"), .has_output = true, .n_layer = 8, .n_expert = 4};
    CHECK(lc_quant_mix_pick(&moe, "blk.7.ffn_down_exps.weight", 4096) == LC_TYPE_Q6_K);
    CHECK(lc_quant_mix_pick(&moe, "blk.1.ffn_down_exps.weight", 4096) == LC_TYPE_Q5_K);
    lc_quant_mix q2 = {.ft = lc_ftype_from_name("Q2_K"), .has_output = true, .n_gqa = 4, .n_layer = 8, .n_attn_v = 8};
    CHECK(lc_quant_mix_pick(&q2, "blk.0.attn_v.weight", 4096) == LC_TYPE_Q4_K);
    CHECK(lc_quant_mix_pick(&q2, "blk.0.ffn_down.weight", 4096) == LC_TYPE_Q3_K);
    CHECK(lc_ftype_from_name("Q9_X") == NULL);
}

static float frand(uint32_t *s) {
    *s = *s * 1664525u + 1013904223u;
    return ((float)(*s >> 8) / 16777216.0f) * 2.0f - 1.0f;
}

typedef struct { const char *name; int64_t ne0, ne1; lc_type in; lc_type want; } tcase;

static void test_e2e(void) {
    const char *bin = getenv("LC_BINARY_DIR");
    char exe[4096], in[256], out[256], cmd[4096 + 1024];
    snprintf(exe, sizeof exe, "%s/locara", bin ? bin : ".");
    if (access(exe, X_OK) != 0) {
        fprintf(stderr, "locara binary not found at %s\n", exe);
        CHECK(0);
        return;
    }
    snprintf(in, sizeof in, "/tmp/lc_test_quantize_%d_in.gguf", (int)getpid());
    snprintf(out, sizeof out, "/tmp/lc_test_quantize_%d_out.gguf", (int)getpid());
    static const tcase cases[] = {
        {"token_embd.weight", 256, 32, LC_TYPE_F32, LC_TYPE_Q4_K},
        {"blk.0.attn_norm.weight", 256, 1, LC_TYPE_F32, LC_TYPE_F32},
        {"blk.0.attn_v.weight", 256, 8, LC_TYPE_F32, LC_TYPE_Q4_K},
        {"blk.0.ffn_down.weight", 512, 8, LC_TYPE_F16, LC_TYPE_Q4_K},
        {"blk.0.ffn_up.weight", 96, 16, LC_TYPE_F32, LC_TYPE_Q5_0},
        {"blk.1.attn_v.weight", 256, 8, LC_TYPE_BF16, LC_TYPE_Q6_K},
        {"blk.1.ffn_down.weight", 512, 8, LC_TYPE_Q8_0, LC_TYPE_Q6_K},
        {"output.weight", 256, 32, LC_TYPE_F16, LC_TYPE_Q6_K},
    };
    enum { NC = sizeof cases / sizeof cases[0] };
    float *vals[NC];
    void *raw[NC];
    lc_gguf_writer *w;
    CHECK(lc_gguf_writer_create(&w) == LC_OK);
    CHECK(lc_gguf_writer_set_str(w, "general.architecture", "llama") == LC_OK);
    CHECK(lc_gguf_writer_set_u32(w, "llama.block_count", 2) == LC_OK);
    CHECK(lc_gguf_writer_set_str(w, "test.custom", "kept") == LC_OK);
    CHECK(lc_gguf_writer_set_u32(w, "general.file_type", 0) == LC_OK);
    uint32_t seed = 7;
    for (int i = 0; i < NC; i++) {
        int64_t n = cases[i].ne0 * cases[i].ne1;
        vals[i] = malloc(sizeof(float) * n);
        for (int64_t k = 0; k < n; k++) vals[i][k] = frand(&seed) * 0.1f;
        const lc_type_info *ti = lc_type_get(cases[i].in);
        raw[i] = malloc(lc_type_row_size(cases[i].in, n));
        ti->from_float(vals[i], raw[i], n);
        ti->to_float(raw[i], vals[i], n); /* the values the file really holds */
        int64_t ne[2] = {cases[i].ne0, cases[i].ne1};
        CHECK(lc_gguf_writer_add_tensor(w, cases[i].name, cases[i].in, cases[i].ne1 > 1 ? 2 : 1, ne, raw[i]) == LC_OK);
    }
    CHECK(lc_gguf_writer_write(w, in) == LC_OK);
    lc_gguf_writer_free(w);

    snprintf(cmd, sizeof cmd, "'%s' quantize --threads 1 '%s' '%s' Q4_K_M 2>/dev/null", exe, in, out);
    CHECKF(system(cmd) == 0, "%s failed", cmd);
    lc_gguf *g = NULL;
    CHECK(lc_gguf_open(out, &g) == LC_OK);
    if (g) {
        uint64_t ftype = 0;
        CHECK(lc_gguf_get_u64(g, "general.file_type", &ftype) && ftype == 15);
        char buf[32];
        CHECK(lc_gguf_get_str(g, "test.custom", buf, sizeof buf) && !strcmp(buf, "kept"));
        CHECK(g->n_tensors == NC);
        for (int i = 0; i < NC; i++) {
            const lc_gguf_tensor *t = lc_gguf_find_tensor(g, cases[i].name);
            CHECKF(t != NULL, "%s missing", cases[i].name);
            if (!t) continue;
            CHECKF(t->type == cases[i].want, "%s: got %s, want %s", cases[i].name, lc_type_name(t->type),
                   lc_type_name(cases[i].want));
            int64_t n = cases[i].ne0 * cases[i].ne1;
            float *d = malloc(sizeof(float) * n);
            lc_type_get(t->type)->to_float(t->data, d, n);
            double err = 0, ref = 0;
            for (int64_t k = 0; k < n; k++) {
                err += (d[k] - vals[i][k]) * (double)(d[k] - vals[i][k]);
                ref += vals[i][k] * (double)vals[i][k];
            }
            CHECKF(sqrt(err / ref) < 0.12, "%s: relative rms error %g", cases[i].name, sqrt(err / ref));
            free(d);
        }
        lc_gguf_close(g);
    }
    /* bad type name: usage error, no output */
    snprintf(cmd, sizeof cmd, "'%s' quantize '%s' '%s.x' Q9 2>/dev/null", exe, in, out);
    CHECK(system(cmd) != 0);
    for (int i = 0; i < NC; i++) {
        free(vals[i]);
        free(raw[i]);
    }
    unlink(in);
    unlink(out);
}

int main(void) {
    test_mix();
    test_e2e();
    return test_done();
}
