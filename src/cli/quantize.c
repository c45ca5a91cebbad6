/* quantize.c — `locara quantize IN OUT TYPE`: rewrites a GGUF model with quantized weights.
 *
 * Every metadata key is copied (general.file_type is set to llama.cpp's LLAMA_FTYPE number);
 * each tensor's type comes from llama.cpp's mix rules (quant/quant_mix.c), and its rows are
 * converted to float from any type with a dequantizer and quantized with the reference
 * quantizers (bit-identical to llama.cpp's without an importance matrix), rows split over a
 * thread pool. Not here: importance matrices, IQ types, requantization warnings.
 */
#include "cli.h"

#include "base/base.h"
#include "gguf/gguf.h"
#include "quant/quant_mix.h"

#include <stdio.h>
#include <string.h>

typedef struct qjob {
    const uint8_t *src;
    const lc_type_info *sti, *dti;
    lc_type st, dt;
    int64_t n_per_row, nrows;
    uint8_t *dst;
    float **tmp; /* one row buffer per thread */
} qjob;

/* Pool worker: converts and quantizes this thread's share of the rows. */
static void quant_worker(void *arg, int ith, int nth) {
    qjob *j = arg;
    int64_t lo, hi;
    lc_split(j->nrows, ith, nth, &lo, &hi);
    size_t srs = lc_type_row_size(j->st, j->n_per_row), drs = lc_type_row_size(j->dt, j->n_per_row);
    for (int64_t r = lo; r < hi; r++) {
        const float *row;
        if (j->st == LC_TYPE_F32) {
            row = (const float *)(j->src + r * srs);
        } else {
            j->sti->to_float(j->src + r * srs, j->tmp[ith], j->n_per_row);
            row = j->tmp[ith];
        }
        j->dti->from_float(row, j->dst + r * drs, j->n_per_row);
    }
}

/* Reads an integer hyper-parameter "<arch>.<key>", or def. */
static int64_t arch_int(const lc_gguf *g, const char *arch, const char *key, int64_t def) {
    char k[256];
    snprintf(k, sizeof k, "%s.%s", arch, key);
    int64_t v;
    return lc_gguf_get_i64(g, k, &v) ? v : def;
}

static void usage(FILE *f) {
    int n;
    const lc_ftype *ft = lc_ftype_list(&n);
    fprintf(f, "usage: locara quantize [--threads N] IN.gguf OUT.gguf TYPE\nTYPE:");
    for (int i = 0; i < n; i++) fprintf(f, " %s", ft[i].name);
    fputc('\n', f);
}

int cmd_quantize(int argc, char **argv) {
    int n_threads = 0;
    const cli_opt opts[] = {
        {"--threads", "-t", CLI_INT, &n_threads, "worker threads (default: physical cores)"},
    };
    const char *pos[3];
    int n_pos = 0;
    int rc = cli_parse(argc, argv, opts, 1, pos, 3, &n_pos, "locara quantize [--threads N] IN OUT TYPE");
    if (rc) return rc == 1 ? 0 : rc;
    if (n_pos != 3) {
        usage(stderr);
        return 2;
    }
    const lc_ftype *ft = lc_ftype_from_name(pos[2]);
    if (!ft) {
        fprintf(stderr, "locara quantize: unknown type '%s'\n", pos[2]);
        usage(stderr);
        return 2;
    }
    lc_gguf *g = NULL;
    lc_gguf_writer *w = NULL;
    lc_pool *pool = NULL;
    void **bufs = NULL;
    float **tmp = NULL;
    int nth = 0;
    int64_t tmp_cap = 0;
    rc = 1;
    double t0 = lc_time_sec();
    /* The pool is started before the file is parsed: its workers read the job counter when they
     * start, so a job published before a worker first runs would be missed (base/pool.c race,
     * reported); starting early makes that window practically unreachable. */
    nth = n_threads > 0 ? n_threads : lc_cpu_physical_cores();
    if (lc_pool_create(nth, &pool) != LC_OK) goto fail;
    nth = lc_pool_size(pool);
    if (lc_gguf_open(pos[0], &g) != LC_OK) goto fail;
    if (lc_gguf_writer_create(&w) != LC_OK) goto fail;

    /* metadata: everything but the keys we set */
    for (uint64_t i = 0; i < g->n_kv; i++) {
        const lc_gguf_str *k = &g->kv[i].key;
        if ((k->n == 17 && !memcmp(k->p, "general.file_type", 17)) ||
            (k->n == 28 && !memcmp(k->p, "general.quantization_version", 28)))
            continue;
        if (lc_gguf_writer_copy_kv(w, &g->kv[i]) != LC_OK) goto fail;
    }
    if (lc_gguf_writer_set_u32(w, "general.quantization_version", 2) != LC_OK) goto fail;
    if (lc_gguf_writer_set_u32(w, "general.file_type", (uint32_t)ft->ftype) != LC_OK) goto fail;

    char arch[64] = "";
    lc_gguf_get_str(g, "general.architecture", arch, sizeof arch);
    lc_quant_mix mix = {.ft = ft};
    mix.has_output = lc_gguf_find_tensor(g, "output.weight") != NULL;
    mix.falcon = !strcmp(arch, "falcon");
    mix.n_layer = (int)arch_int(g, arch, "block_count", 0);
    mix.n_expert = (int)arch_int(g, arch, "expert_count", 0);
    int64_t nh = arch_int(g, arch, "attention.head_count", 1), nkv = arch_int(g, arch, "attention.head_count_kv", nh);
    mix.n_gqa = nkv > 0 ? (int)(nh / nkv) : 1;
    for (uint64_t i = 0; i < g->n_tensors; i++)
        if (strstr(g->tensors[i].name, "attn_v.weight")) mix.n_attn_v++;

    bufs = lc_calloc(g->n_tensors ? g->n_tensors : 1, sizeof *bufs);
    tmp = lc_calloc((size_t)nth, sizeof *tmp);
    if (!bufs || !tmp) goto fail;
    size_t bytes_in = 0, bytes_out = 0;
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        const lc_gguf_tensor *t = &g->tensors[i];
        lc_type dt = t->type;
        if (lc_quant_mix_wants(t->name, t->n_dims)) dt = lc_quant_mix_pick(&mix, t->name, t->ne[0]);
        int64_t nrows = 1;
        for (int d = 1; d < t->n_dims; d++) nrows *= t->ne[d];
        const void *data = t->data;
        const lc_type_info *sti = lc_type_get(t->type), *dti = lc_type_get(dt);
        if (dt != t->type) {
            if (!sti || !sti->to_float) {
                lc_fail(LC_ERR_UNSUPPORTED, "tensor %s: cannot convert from %s", t->name, lc_type_name(t->type));
                goto fail;
            }
            if (t->ne[0] > tmp_cap) { /* per-thread row buffers, grown to the widest row */
                for (int k = 0; k < nth; k++) {
                    lc_free_aligned(tmp[k]);
                    tmp[k] = lc_malloc_aligned(sizeof(float) * (size_t)t->ne[0]);
                    if (!tmp[k]) goto fail;
                }
                tmp_cap = t->ne[0];
            }
            size_t sz = lc_type_row_size(dt, t->ne[0]) * (size_t)nrows;
            bufs[i] = lc_malloc(sz ? sz : 1);
            if (!bufs[i]) goto fail;
            qjob j = {t->data, sti, dti, t->type, dt, t->ne[0], nrows, bufs[i], tmp};
            lc_pool_run(pool, quant_worker, &j);
            data = bufs[i];
        }
        size_t out_sz = lc_type_row_size(dt, t->ne[0]) * (size_t)nrows;
        bytes_in += t->size;
        bytes_out += out_sz;
        fprintf(stderr, "[%4llu/%4llu] %-40s %-6s -> %-6s %8.2f MiB -> %8.2f MiB\n",
                (unsigned long long)i + 1, (unsigned long long)g->n_tensors, t->name,
                lc_type_name(t->type), lc_type_name(dt), t->size / 1048576.0, out_sz / 1048576.0);
        if (lc_gguf_writer_add_tensor(w, t->name, dt, t->n_dims, t->ne, data) != LC_OK) goto fail;
    }
    if (lc_gguf_writer_write(w, pos[1]) != LC_OK) goto fail;
    fprintf(stderr, "quantized %s -> %s as %s (ftype %d): %.2f MiB -> %.2f MiB in %.2f s, %d threads\n",
            pos[0], pos[1], ft->name, ft->ftype, bytes_in / 1048576.0, bytes_out / 1048576.0,
            lc_time_sec() - t0, nth);
    rc = 0;
fail:
    if (rc) fprintf(stderr, "locara quantize: %s\n", lc_last_error());
    if (bufs && g)
        for (uint64_t i = 0; i < g->n_tensors; i++) lc_free(bufs[i]);
    lc_free(bufs);
    if (tmp)
        for (int k = 0; k < nth; k++) lc_free_aligned(tmp[k]);
    lc_free(tmp);
    lc_pool_free(pool);
    lc_gguf_writer_free(w);
    lc_gguf_close(g);
    return rc;
}
