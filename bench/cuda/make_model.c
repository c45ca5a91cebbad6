/* make_model.c — writes a benchmark-size random-weight GGUF with quantized tensors directly.
 *
 * Owns: the tensor list of the llama and qwen3moe layouts (llama.cpp's names and file order) and
 * their fill: each quantized type gets one pool of random rows, quantized once with Locara's own
 * quantizers and tiled to the largest tensor of that type, so a 30B-A3B Q4_K_M file (~17 GB) is
 * written in seconds with no f16 intermediate. Per-tensor types follow quant_mix (llama.cpp's
 * Q4_K_M rules). Metadata (hparams, tokenizer) is copied from a template made by make_template.py.
 * Not here: meaningful weights — the file is for speed measurement only.
 *
 *   make_model TEMPLATE.gguf FTYPE OUT.gguf      (FTYPE e.g. Q4_K_M)
 */
#include "base/base.h"
#include "gguf/gguf.h"
#include "quant/quant.h"
#include "quant/quant_mix.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_T 1024
#define CHUNK (1 << 20) /* elements quantized per pool seed */

typedef struct tdesc {
    char name[64];
    int n_dims;
    int64_t ne[3];
    lc_type type;
    size_t bytes;
} tdesc;

typedef struct model_desc {
    tdesc t[MAX_T];
    int n;
} model_desc;

static uint64_t rng_next(uint64_t *s) {
    uint64_t x = (*s += 0x9E3779B97F4A7C15ull);
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

/* Uniform in [-a, a]. */
static float rng_uni(uint64_t *s, float a) { return ((float)(rng_next(s) >> 40) / (float)(1 << 24) * 2.0f - 1.0f) * a; }

static void add(model_desc *m, const char *name, int n_dims, int64_t ne0, int64_t ne1, int64_t ne2, lc_type type) {
    tdesc *d = &m->t[m->n++];
    snprintf(d->name, sizeof d->name, "%s", name);
    d->n_dims = n_dims;
    d->ne[0] = ne0, d->ne[1] = ne1, d->ne[2] = ne2;
    d->type = type;
}

static int64_t geti(const lc_gguf *g, const char *arch, const char *key) {
    char k[128];
    int64_t v = 0;
    snprintf(k, sizeof k, "%s.%s", arch, key);
    return lc_gguf_get_i64(g, k, &v) ? v : 0;
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: make_model TEMPLATE.gguf FTYPE OUT.gguf\n");
        return 2;
    }
    lc_gguf *g = NULL;
    if (lc_gguf_open(argv[1], &g)) {
        fprintf(stderr, "make_model: %s\n", lc_last_error());
        return 1;
    }
    const lc_ftype *ft = lc_ftype_from_name(argv[2]);
    if (!ft) {
        fprintf(stderr, "make_model: unknown file type %s\n", argv[2]);
        return 2;
    }
    char arch[32] = "";
    lc_gguf_get_str(g, "general.architecture", arch, sizeof arch);
    const int64_t E = geti(g, arch, "embedding_length"), L = geti(g, arch, "block_count");
    const int64_t H = geti(g, arch, "attention.head_count"), KV = geti(g, arch, "attention.head_count_kv");
    const int64_t D = geti(g, arch, "attention.key_length"), F = geti(g, arch, "feed_forward_length");
    const int64_t X = geti(g, arch, "expert_count"), FE = geti(g, arch, "expert_feed_forward_length");
    const int64_t V = geti(g, arch, "vocab_size");
    const bool moe = X > 1;
    static model_desc m;
    lc_quant_mix mix = {.ft = ft, .has_output = true, .n_gqa = (int)(H / KV), .n_expert = (int)X,
                        .n_layer = (int)L, .n_attn_v = (int)L};
    char nm[64];
#define Q(name, ne0, ne1, ne2, nd) add(&m, name, nd, ne0, ne1, ne2, lc_quant_mix_pick(&mix, name, ne0))
#define F32(name, ne0, ne1) add(&m, name, (ne1) > 1 ? 2 : 1, ne0, ne1, 1, LC_TYPE_F32)
    Q("token_embd.weight", E, V, 1, 2);
    for (int64_t i = 0; i < L; i++) {
#define N(s) (snprintf(nm, sizeof nm, "blk.%d.%s", (int)i, s), nm)
        F32(N("attn_norm.weight"), E, 1);
        Q(N("attn_q.weight"), E, H * D, 1, 2);
        Q(N("attn_k.weight"), E, KV * D, 1, 2);
        Q(N("attn_v.weight"), E, KV * D, 1, 2);
        Q(N("attn_output.weight"), H * D, E, 1, 2);
        if (moe) {
            F32(N("attn_q_norm.weight"), D, 1);
            F32(N("attn_k_norm.weight"), D, 1);
        }
        F32(N("ffn_norm.weight"), E, 1);
        if (moe) {
            F32(N("ffn_gate_inp.weight"), E, X);
            Q(N("ffn_gate_exps.weight"), E, FE, X, 3);
            Q(N("ffn_up_exps.weight"), E, FE, X, 3);
            Q(N("ffn_down_exps.weight"), FE, E, X, 3);
        } else {
            Q(N("ffn_gate.weight"), E, F, 1, 2);
            Q(N("ffn_up.weight"), E, F, 1, 2);
            Q(N("ffn_down.weight"), F, E, 1, 2);
        }
#undef N
    }
    F32("output_norm.weight", E, 1);
    Q("output.weight", E, V, 1, 2);
    /* pools: one per type, as large as its largest tensor */
    size_t pool_bytes[LC_TYPE_COUNT] = {0}, total = 0;
    for (int i = 0; i < m.n; i++) {
        tdesc *d = &m.t[i];
        d->bytes = lc_type_row_size(d->type, d->ne[0]) * (size_t)d->ne[1] * (size_t)d->ne[2];
        if (d->type != LC_TYPE_F32 && d->bytes > pool_bytes[d->type]) pool_bytes[d->type] = d->bytes;
        total += d->bytes;
    }
    uint8_t *pool[LC_TYPE_COUNT] = {0};
    float *src = malloc(sizeof(float) * CHUNK);
    uint64_t s = 12345;
    for (int t = 0; t < LC_TYPE_COUNT; t++) {
        if (!pool_bytes[t]) continue;
        const lc_type_info *ti = lc_type_get(t);
        size_t cb = lc_type_row_size((lc_type)t, CHUNK);
        pool[t] = malloc(pool_bytes[t] + cb);
        for (int64_t j = 0; j < CHUNK; j++) src[j] = rng_uni(&s, 0.03f);
        ti->from_float(src, pool[t], CHUNK);
        for (size_t o = cb; o < pool_bytes[t]; o += cb) memcpy(pool[t] + o, pool[t], cb);
        fprintf(stderr, "pool %s: %.1f MB\n", lc_type_name((lc_type)t), pool_bytes[t] / 1e6);
    }
    /* F32 tensors: own buffers (norms near 1, router logits spread so routing varies) */
    lc_gguf_writer *w = NULL;
    if (lc_gguf_writer_create(&w)) return 1;
    for (uint64_t i = 0; i < g->n_kv; i++)
        if (lc_gguf_writer_copy_kv(w, &g->kv[i])) goto fail;
    for (int i = 0; i < m.n; i++) {
        tdesc *d = &m.t[i];
        const void *data = pool[d->type];
        if (d->type == LC_TYPE_F32) {
            size_t n = (size_t)d->ne[0] * d->ne[1];
            float *f = malloc(n * sizeof(float));
            bool router = strstr(d->name, "ffn_gate_inp") != NULL;
            for (size_t j = 0; j < n; j++) f[j] = router ? rng_uni(&s, 0.1f) : 1.0f + rng_uni(&s, 0.1f);
            data = f; /* freed at exit */
        }
        if (lc_gguf_writer_add_tensor(w, d->name, d->type, d->n_dims, d->ne, data)) goto fail;
    }
    fprintf(stderr, "writing %s: %d tensors, %.2f GB\n", argv[3], m.n, total / 1e9);
    if (lc_gguf_writer_write(w, argv[3])) goto fail;
    lc_gguf_writer_free(w);
    lc_gguf_close(g);
    return 0;
fail:
    fprintf(stderr, "make_model: %s\n", lc_last_error());
    return 1;
}
