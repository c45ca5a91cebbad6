/* gguf_write.c — writes GGUF v3 files (format in gguf.h).
 *
 * Metadata is serialised as it is added into one growing buffer; tensors are remembered by
 * pointer and streamed to the file at write time, each padded to the alignment. Used by
 * `locara quantize` and the random-model generator.
 */
#include "gguf.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

typedef struct wtensor {
    char *name;
    lc_type type;
    int n_dims;
    int64_t ne[LC_GGUF_MAX_DIMS];
    size_t size;
    const void *data;
} wtensor;

struct lc_gguf_writer {
    lc_str kv;       /* serialised metadata entries */
    uint64_t n_kv;
    wtensor *tensors;
    size_t n_tensors, cap_tensors;
    uint32_t alignment;
};

lc_status lc_gguf_writer_create(lc_gguf_writer **out) {
    *out = lc_calloc(1, sizeof **out);
    if (!*out) return LC_ERR_OOM;
    (*out)->alignment = 32;
    return LC_OK;
}

void lc_gguf_writer_free(lc_gguf_writer *w) {
    if (!w) return;
    for (size_t i = 0; i < w->n_tensors; i++) lc_free(w->tensors[i].name);
    lc_free(w->tensors);
    lc_str_free(&w->kv);
    lc_free(w);
}

static bool put(lc_gguf_writer *w, const void *p, size_t n) { return lc_str_append(&w->kv, p, n); }
static bool put_u32(lc_gguf_writer *w, uint32_t v) { return put(w, &v, 4); }
static bool put_u64(lc_gguf_writer *w, uint64_t v) { return put(w, &v, 8); }
static bool put_str(lc_gguf_writer *w, const char *s, size_t n) { return put_u64(w, n) && put(w, s, n); }

static lc_status begin_kv(lc_gguf_writer *w, const char *key, lc_gguf_type t) {
    if (!put_str(w, key, strlen(key)) || !put_u32(w, (uint32_t)t)) return LC_ERR_OOM;
    w->n_kv++;
    return LC_OK;
}

lc_status lc_gguf_writer_set_u32(lc_gguf_writer *w, const char *key, uint32_t v) {
    if (!strcmp(key, "general.alignment")) w->alignment = v;
    return begin_kv(w, key, LC_GGUF_U32) || !put_u32(w, v) ? LC_ERR_OOM : LC_OK;
}
lc_status lc_gguf_writer_set_i32(lc_gguf_writer *w, const char *key, int32_t v) {
    return begin_kv(w, key, LC_GGUF_I32) || !put(w, &v, 4) ? LC_ERR_OOM : LC_OK;
}
lc_status lc_gguf_writer_set_f32(lc_gguf_writer *w, const char *key, float v) {
    return begin_kv(w, key, LC_GGUF_F32) || !put(w, &v, 4) ? LC_ERR_OOM : LC_OK;
}
lc_status lc_gguf_writer_set_bool(lc_gguf_writer *w, const char *key, bool v) {
    uint8_t b = v;
    return begin_kv(w, key, LC_GGUF_BOOL) || !put(w, &b, 1) ? LC_ERR_OOM : LC_OK;
}
lc_status lc_gguf_writer_set_str(lc_gguf_writer *w, const char *key, const char *v) {
    return begin_kv(w, key, LC_GGUF_STRING) || !put_str(w, v, strlen(v)) ? LC_ERR_OOM : LC_OK;
}

lc_status lc_gguf_writer_set_arr(lc_gguf_writer *w, const char *key, lc_gguf_type elem,
                                 const void *data, uint64_t n) {
    size_t es = lc_gguf_type_size(elem);
    if (!es) return lc_fail(LC_ERR_INVALID, "set_arr: %s is not a scalar type", lc_gguf_type_name(elem));
    if (begin_kv(w, key, LC_GGUF_ARRAY) || !put_u32(w, elem) || !put_u64(w, n) || !put(w, data, (size_t)n * es))
        return LC_ERR_OOM;
    return LC_OK;
}

lc_status lc_gguf_writer_set_arr_str(lc_gguf_writer *w, const char *key, const char *const *v, uint64_t n) {
    if (begin_kv(w, key, LC_GGUF_ARRAY) || !put_u32(w, LC_GGUF_STRING) || !put_u64(w, n)) return LC_ERR_OOM;
    for (uint64_t i = 0; i < n; i++)
        if (!put_str(w, v[i], strlen(v[i]))) return LC_ERR_OOM;
    return LC_OK;
}

/* Serialises a parsed value verbatim: scalars and scalar arrays are copied as bytes. */
static bool put_value(lc_gguf_writer *w, const lc_gguf_value *v) {
    switch (v->type) {
    case LC_GGUF_STRING: return put_str(w, v->str.p, v->str.n);
    case LC_GGUF_ARRAY: {
        if (!put_u32(w, v->arr.elem) || !put_u64(w, v->arr.n)) return false;
        size_t es = lc_gguf_type_size(v->arr.elem);
        if (es) return put(w, v->arr.data, (size_t)v->arr.n * es);
        for (uint64_t i = 0; i < v->arr.n; i++) {
            if (v->arr.elem == LC_GGUF_STRING) {
                lc_gguf_str s = lc_gguf_arr_str(v, i);
                if (!put_str(w, s.p, s.n)) return false;
            } else if (!put_value(w, &v->arr.items[i])) {
                return false;
            }
        }
        return true;
    }
    default: {
        uint8_t buf[8];
        size_t es = lc_gguf_type_size(v->type);
        switch (v->type) {
        case LC_GGUF_F32: { float f = (float)v->f; memcpy(buf, &f, 4); break; }
        case LC_GGUF_F64: memcpy(buf, &v->f, 8); break;
        default: memcpy(buf, &v->u, es); break; /* little-endian: low bytes first */
        }
        return put(w, buf, es);
    }
    }
}

lc_status lc_gguf_writer_copy_kv(lc_gguf_writer *w, const lc_gguf_kv *kv) {
    char key[512];
    size_t n = LC_MIN((size_t)kv->key.n, sizeof key - 1);
    memcpy(key, kv->key.p, n);
    key[n] = 0;
    if (!strcmp(key, "general.alignment") && kv->val.type == LC_GGUF_U32) w->alignment = (uint32_t)kv->val.u;
    if (begin_kv(w, key, kv->val.type) || !put_value(w, &kv->val)) return LC_ERR_OOM;
    return LC_OK;
}

lc_status lc_gguf_writer_add_tensor(lc_gguf_writer *w, const char *name, lc_type type, int n_dims,
                                    const int64_t *ne, const void *data) {
    const lc_type_info *ti = lc_type_get((int)type);
    if (!ti) return lc_fail(LC_ERR_INVALID, "tensor %s: unknown type %d", name, (int)type);
    if (n_dims < 1 || n_dims > LC_GGUF_MAX_DIMS) return lc_fail(LC_ERR_INVALID, "tensor %s: %d dims", name, n_dims);
    if (ne[0] % ti->block_size)
        return lc_fail(LC_ERR_INVALID, "tensor %s: row of %lld is not a multiple of %d", name, (long long)ne[0], ti->block_size);
    if (!lc_grow((void **)&w->tensors, sizeof *w->tensors, &w->cap_tensors, w->n_tensors + 1)) return LC_ERR_OOM;
    wtensor *t = &w->tensors[w->n_tensors];
    memset(t, 0, sizeof *t);
    t->name = lc_strdup(name);
    if (!t->name) return LC_ERR_OOM;
    t->type = type;
    t->n_dims = n_dims;
    int64_t rows = 1;
    for (int d = 0; d < LC_GGUF_MAX_DIMS; d++) {
        t->ne[d] = d < n_dims ? ne[d] : 1;
        if (d > 0) rows *= t->ne[d];
    }
    t->size = lc_type_row_size(type, t->ne[0]) * (size_t)rows;
    t->data = data;
    w->n_tensors++;
    return LC_OK;
}

static bool fput(FILE *f, const void *p, size_t n) { return fwrite(p, 1, n, f) == n; }

static bool fpad(FILE *f, uint64_t *pos, uint32_t align) {
    static const uint8_t zeros[64];
    uint64_t pad = (align - *pos % align) % align;
    while (pad) {
        size_t k = pad > sizeof zeros ? sizeof zeros : (size_t)pad;
        if (!fput(f, zeros, k)) return false;
        pad -= k;
        *pos += k;
    }
    return true;
}

lc_status lc_gguf_writer_write(lc_gguf_writer *w, const char *path) {
    FILE *f = fopen(path, "wb");
    if (!f) return lc_fail(LC_ERR_IO, "cannot create %s: %s", path, strerror(errno));
    uint32_t magic = 0x46554747u, version = 3;
    uint64_t nt = w->n_tensors, pos = 0;
    bool ok = fput(f, &magic, 4) && fput(f, &version, 4) && fput(f, &nt, 8) && fput(f, &w->n_kv, 8) &&
              (w->kv.len == 0 || fput(f, w->kv.buf, w->kv.len));
    pos = 24 + w->kv.len;
    uint64_t off = 0;
    for (size_t i = 0; ok && i < w->n_tensors; i++) {
        wtensor *t = &w->tensors[i];
        uint64_t n = strlen(t->name);
        uint32_t nd = (uint32_t)t->n_dims, type = (uint32_t)t->type;
        ok = fput(f, &n, 8) && fput(f, t->name, n) && fput(f, &nd, 4);
        for (int d = 0; ok && d < t->n_dims; d++) ok = fput(f, &t->ne[d], 8);
        ok = ok && fput(f, &type, 4) && fput(f, &off, 8);
        pos += 8 + n + 4 + 8 * (uint64_t)t->n_dims + 4 + 8;
        off += (t->size + w->alignment - 1) / w->alignment * w->alignment;
    }
    ok = ok && fpad(f, &pos, w->alignment);
    for (size_t i = 0; ok && i < w->n_tensors; i++) {
        ok = fput(f, w->tensors[i].data, w->tensors[i].size);
        pos += w->tensors[i].size;
        ok = ok && fpad(f, &pos, w->alignment);
    }
    if (fclose(f) != 0) ok = false;
    if (!ok) return lc_fail(LC_ERR_IO, "cannot write %s: %s", path, strerror(errno));
    return LC_OK;
}
