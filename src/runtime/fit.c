/* fit.c — the memory math behind `locara fit` and the model manager's budget (see fit.h). */
#include "fit.h"

#include "engine/context.h"
#include "engine/kv.h"
#include "engine/sampler.h"
#include "quant/quant.h"

#include <stdio.h>
#include <string.h>

lc_fit_params lc_fit_params_default(void) {
    lc_fit_params p = {.n_ctx = 0, .n_batch = 512, .n_seq = 1, .n_threads = 0, .kv_type = LC_KV_F16};
    return p;
}

/* The widest activation row a matrix product takes (hidden, FFN, expert FFN, attention out). */
static int max_cols(const lc_hparams *hp) {
    return LC_MAX(LC_MAX(hp->n_embd, hp->n_head * hp->head_dim), LC_MAX(hp->n_ff, hp->n_ff_exp));
}

/* The CPU backend's conversion buffer (matmul.c's convert): the largest batch of activation rows
 * in the format a product of layers [0, n_cpu) takes (the weight type's vec_dot_type), T rows for
 * a matrix, T x k (token, expert) rows for routed experts, the output head's n_seq rows. */
static size_t conv_bytes(const lc_model *m, const lc_fit_params *p, int n_cpu, int T) {
    size_t best = 0;
    for (int il = 0; il < n_cpu; il++) { /* a layer at a time: a weight seen twice changes no maximum */
        const lc_weight *ws[LC_STAGE_WEIGHTS_MAX(1)];
        for (int i = 0, nw = lc_model_stage_weights(m, il, il + 1, ws); i < nw; i++) {
            const lc_weight *w = ws[i];
            if (w->rows < 2 || w == &m->tok_embd) continue; /* vectors; the embedding is looked up */
            size_t rows = w->n_expert > 1 ? (size_t)T * (size_t)m->hp.n_expert_used : (size_t)T;
            if (w == &m->output) rows = (size_t)p->n_seq;
            best = LC_MAX(best, lc_type_row_size(lc_type_get(w->type)->vec_dot_type, w->cols) * rows + 64);
        }
    }
    return best;
}

/* Host bytes the context allocates besides the KV pool, mirroring context.c, backend/cpu
 * (scratch, conversion buffer, per-thread attention scratch; only when a CPU stage runs some
 * layers) and kv.c (block tables). */
static size_t compute_bytes(const lc_model *m, const lc_fit_params *p, int n_ctx, int n_cpu) {
    const lc_hparams *hp = &m->hp;
    int T = LC_MIN(p->n_batch, n_ctx);
    size_t n = (size_t)p->n_seq * hp->n_vocab * sizeof(float);            /* host logits */
    n += (size_t)p->n_seq * lc_sampler_bytes(hp->n_vocab);                 /* a sampler per sequence */
    size_t blocks = (size_t)(n_ctx + 31) / 32;
    n += blocks * (4 + 8 + 1 + 32 * 4 + 8 + 4 + 8);                        /* kv manager arrays */
    n += (size_t)T * 16;                                                   /* batch bookkeeping */
    if (n_cpu == 0) return n; /* a GPU runs every layer: no CPU backend */
    n += lc_context_scratch_floats(hp, T, p->n_seq) * sizeof(float);
    n += conv_bytes(m, p, n_cpu, T);
    int threads = p->n_threads > 0 ? p->n_threads : lc_cpu_physical_cores();
    n += (size_t)threads * (lc_backend_cpu_attn_scratch(hp->n_head, hp->n_head_kv, hp->head_dim, (lc_type)p->kv_type) + 16) * sizeof(float);
    if (n_cpu < hp->n_layer) n += (size_t)T * hp->n_embd * sizeof(float); /* stage crossing */
    n += (size_t)threads * (8u << 20) / 64;                                /* thread stacks touched */
    return n;
}

/* Device memory the CUDA runtime and cuBLAS take for a backend beyond the buffers it asks for
 * (cuBLAS handle and workspace, graph executables): measured on an H200 as the device memory a
 * `locara run` took beyond the CUDA context minus this file's other terms (60-72 MiB for the
 * default model, bench/results/cuda-h200-verify.txt). */
#define LC_FIT_CUDA_RUNTIME_BYTES ((size_t)64 << 20)

/* The GPU backend's memory for layers [L - n, L) (cuda.cu's upload_weights and scratch): weights
 * 256-byte aligned in one arena, the layers' KV, the scratch activations (lc_context_scratch_floats)
 * and the f16 activation copy, q8 activation blocks and one dequantized f16 weight tile of its
 * matrix products. */
static lc_status gpu_share(const lc_model *m, const lc_fit_params *p, int n_ctx, int n, lc_fit *out) {
    const lc_hparams *hp = &m->hp;
    int L = hp->n_layer, T = LC_MIN(p->n_batch, n_ctx);
    const lc_weight **ws = lc_malloc(LC_STAGE_WEIGHTS_MAX(n) * sizeof *ws);
    if (!ws) return LC_ERR_OOM;
    size_t w = 0;
    for (int i = 0, nw = lc_model_stage_weights(m, L - n, L, ws); i < nw; i++)
        w += (lc_weight_bytes(ws[i]) + 255) / 256 * 256;
    lc_free(ws);
    out->gpu_layers = n;
    out->gpu_weights_bytes = w;
    out->gpu_kv_bytes = lc_kvc_bytes(n, hp->n_head_kv, hp->head_dim, (lc_type)p->kv_type, n_ctx);
    size_t c = lc_context_scratch_floats(hp, T, p->n_seq) * sizeof(float);
    c += (size_t)T * max_cols(hp) * 2 + (16u << 20) * 2;          /* f16 activations, weight tile */
    c += (size_t)T * max_cols(hp) * 36 / 32;                      /* q8 activation blocks */
    c += LC_FIT_CUDA_RUNTIME_BYTES;
    out->gpu_compute_bytes = c;
    out->gpu_total_bytes = w + out->gpu_kv_bytes + c;
    return LC_OK;
}

lc_status lc_fit_model(const lc_model *m, const lc_fit_params *p, lc_fit *out) {
    memset(out, 0, sizeof *out);
    int n_ctx = p->n_ctx > 0 ? p->n_ctx : m->hp.n_ctx_train;
    if (n_ctx < 1) return lc_fail(LC_ERR_INVALID, "context size must be positive");
    if (p->n_seq < 1 || p->n_batch < 1) return lc_fail(LC_ERR_INVALID, "parallel and batch must be positive");
    for (uint64_t i = 0; i < m->gguf->n_tensors; i++) {
        const lc_gguf_tensor *t = &m->gguf->tensors[i];
        out->weights_bytes += t->size;
        out->weights_by_type[t->type] += t->size;
    }
    out->weights_bytes += m->gguf->data_offset; /* metadata: read at load (vocabulary, template) */
    out->model_heap_bytes = p->model_heap_bytes;
    int L = m->hp.n_layer, ngl = p->n_gpu_layers < 0 || p->n_gpu_layers > L ? L : p->n_gpu_layers;
    out->kv_bytes = lc_kvc_bytes(L - ngl, m->hp.n_head_kv, m->hp.head_dim, (lc_type)p->kv_type, n_ctx);
    lc_status st = ngl > 0 ? gpu_share(m, p, n_ctx, ngl, out) : LC_OK;
    if (st) return st;
    out->compute_bytes = compute_bytes(m, p, n_ctx, L - ngl);
    out->runtime_bytes = p->runtime_bytes ? p->runtime_bytes : (8u << 20);
    out->total_bytes = out->weights_bytes + out->model_heap_bytes + out->kv_bytes + out->compute_bytes + out->runtime_bytes;
    out->n_ctx = n_ctx;
    return LC_OK;
}

int lc_fit_max_ctx(const lc_model *m, const lc_fit_params *p, size_t budget) {
    int lo = 0, hi = m->hp.n_ctx_train / 256;
    while (lo < hi) { /* largest multiple of 256 that fits */
        int mid = (lo + hi + 1) / 2;
        lc_fit_params q = *p;
        q.n_ctx = mid * 256;
        lc_fit f;
        if (lc_fit_model(m, &q, &f) == LC_OK && f.total_bytes <= budget) lo = mid;
        else hi = mid - 1;
    }
    return lo * 256;
}

static size_t read_kb_field(const char *path, const char *field) {
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    char line[256];
    size_t v = 0, n = strlen(field);
    while (fgets(line, sizeof line, f)) {
        if (!strncmp(line, field, n) && line[n] == ':') {
            unsigned long long kb = 0;
            if (sscanf(line + n + 1, "%llu", &kb) == 1) v = (size_t)kb * 1024;
            break;
        }
    }
    fclose(f);
    return v;
}

static bool read_u64_file(const char *path, unsigned long long *v) {
    FILE *f = fopen(path, "r");
    if (!f) return false;
    char buf[64];
    bool ok = fgets(buf, sizeof buf, f) && sscanf(buf, "%llu", v) == 1; /* "max" fails: no limit */
    fclose(f);
    return ok;
}

size_t lc_mem_available(const char *meminfo_path, const char *cgroup_dir) {
    size_t avail = read_kb_field(meminfo_path ? meminfo_path : "/proc/meminfo", "MemAvailable");
    char path[512];
    const char *dir = cgroup_dir ? cgroup_dir : "/sys/fs/cgroup";
    unsigned long long max = 0, cur = 0;
    snprintf(path, sizeof path, "%s/memory.max", dir);
    if (read_u64_file(path, &max)) {
        snprintf(path, sizeof path, "%s/memory.current", dir);
        read_u64_file(path, &cur);
        size_t room = max > cur ? (size_t)(max - cur) : 0;
        if (avail == 0 || room < avail) avail = room;
    }
    return avail;
}

/* Code and library pages a process first touches when it loads and runs a model, beyond what it
 * had resident before (the binary's kernels, libc's and libm's paths): measured as `locara run`'s
 * mapped pages at exit against `locara fit`'s before the model, 0.8-1.2 MB for the CPU build
 * (tests/e2e/test_fit.py prints the totals). */
#define ENGINE_CODE_BYTES ((size_t)1 << 20)

size_t lc_fit_baseline(void) { return lc_rss_now().rss + ENGINE_CODE_BYTES; }

lc_rss lc_rss_now(void) {
    lc_rss r;
    r.rss = read_kb_field("/proc/self/status", "VmRSS");
    r.anon = read_kb_field("/proc/self/status", "RssAnon");
    r.file = read_kb_field("/proc/self/status", "RssFile");
    r.peak = read_kb_field("/proc/self/status", "VmHWM");
    return r;
}
