/* gguf_read.c — the validating GGUF v2/v3 reader (format in gguf.h).
 *
 * Every read goes through a cursor that checks the remaining length first, so a truncated or
 * corrupt file yields one error line naming what was being read and where, never a read past
 * the mapping. Counts are bounded by what the remaining bytes could possibly hold before any
 * allocation is sized from them. Entry points: lc_gguf_open, lc_gguf_open_buffer, lc_gguf_close.
 */
#include "gguf.h"

#include <stdio.h>
#include <string.h>

#define GGUF_MAGIC 0x46554747u /* "GGUF" little-endian */
#define MAX_ARRAY_DEPTH 8

typedef struct cursor {
    const uint8_t *base;
    size_t size;
    size_t pos;
    const char *what; /* what is being read, for error messages */
} cursor;

static lc_status truncated(const cursor *c, size_t need) {
    return lc_fail(LC_ERR_FORMAT, "truncated file: %s needs %zu bytes at offset %zu, file has %zu",
                   c->what, need, c->pos, c->size);
}

static lc_status rd(cursor *c, void *dst, size_t n) {
    if (c->size - c->pos < n) return truncated(c, n);
    memcpy(dst, c->base + c->pos, n);
    c->pos += n;
    return LC_OK;
}

static lc_status rd_u32(cursor *c, uint32_t *v) { return rd(c, v, 4); }
static lc_status rd_u64(cursor *c, uint64_t *v) { return rd(c, v, 8); }

static lc_status rd_str(cursor *c, lc_gguf_str *s) {
    uint64_t n = 0;
    lc_status st = rd_u64(c, &n);
    if (st) return st;
    if (n > c->size - c->pos)
        return lc_fail(LC_ERR_FORMAT, "string of %llu bytes at offset %zu runs past the end of the file (%zu bytes)",
                       (unsigned long long)n, c->pos - 8, c->size);
    s->p = (const char *)c->base + c->pos;
    s->n = n;
    c->pos += n;
    return LC_OK;
}

size_t lc_gguf_type_size(lc_gguf_type t) {
    switch (t) {
    case LC_GGUF_U8: case LC_GGUF_I8: case LC_GGUF_BOOL: return 1;
    case LC_GGUF_U16: case LC_GGUF_I16: return 2;
    case LC_GGUF_U32: case LC_GGUF_I32: case LC_GGUF_F32: return 4;
    case LC_GGUF_U64: case LC_GGUF_I64: case LC_GGUF_F64: return 8;
    default: return 0;
    }
}

const char *lc_gguf_type_name(lc_gguf_type t) {
    static const char *const names[] = {"u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool",
                                        "string", "array", "u64", "i64", "f64"};
    return (unsigned)t < LC_GGUF_TYPE_COUNT ? names[t] : "invalid";
}

/* Decodes one scalar of type t at p into v. */
static void decode_scalar(lc_gguf_type t, const uint8_t *p, lc_gguf_value *v) {
    v->type = t;
    switch (t) {
    case LC_GGUF_U8: v->u = p[0]; break;
    case LC_GGUF_BOOL: v->u = p[0] != 0; break;
    case LC_GGUF_I8: v->i = (int8_t)p[0]; break;
    case LC_GGUF_U16: { uint16_t x; memcpy(&x, p, 2); v->u = x; break; }
    case LC_GGUF_I16: { int16_t x; memcpy(&x, p, 2); v->i = x; break; }
    case LC_GGUF_U32: { uint32_t x; memcpy(&x, p, 4); v->u = x; break; }
    case LC_GGUF_I32: { int32_t x; memcpy(&x, p, 4); v->i = x; break; }
    case LC_GGUF_F32: { float x; memcpy(&x, p, 4); v->f = x; break; }
    case LC_GGUF_U64: { uint64_t x; memcpy(&x, p, 8); v->u = x; break; }
    case LC_GGUF_I64: { int64_t x; memcpy(&x, p, 8); v->i = x; break; }
    case LC_GGUF_F64: { double x; memcpy(&x, p, 8); v->f = x; break; }
    default: break;
    }
}

static void free_value(lc_gguf_value *v) {
    if (v->type != LC_GGUF_ARRAY) return;
    lc_free((void *)v->arr.offs);
    if (v->arr.items) {
        for (uint64_t i = 0; i < v->arr.n; i++) free_value(&v->arr.items[i]);
        lc_free(v->arr.items);
    }
    v->arr.offs = NULL;
    v->arr.items = NULL;
}

static lc_status rd_value(cursor *c, lc_gguf_type t, lc_gguf_value *v, int depth);

static lc_status rd_array(cursor *c, lc_gguf_value *v, int depth) {
    uint32_t et;
    uint64_t n;
    lc_status st;
    v->type = LC_GGUF_ARRAY;
    if ((st = rd_u32(c, &et)) || (st = rd_u64(c, &n))) return st;
    if (et >= LC_GGUF_TYPE_COUNT)
        return lc_fail(LC_ERR_FORMAT, "array element type %u at offset %zu is not a GGUF value type",
                       et, c->pos - 12);
    if (depth >= MAX_ARRAY_DEPTH)
        return lc_fail(LC_ERR_FORMAT, "arrays nested deeper than %d levels at offset %zu",
                       MAX_ARRAY_DEPTH, c->pos);
    v->arr.elem = (lc_gguf_type)et;
    v->arr.n = n;
    v->arr.data = c->base + c->pos;
    size_t remaining = c->size - c->pos;
    size_t es = lc_gguf_type_size((lc_gguf_type)et);
    if (es) {
        if (n > remaining / es)
            return lc_fail(LC_ERR_FORMAT, "array of %llu %s values at offset %zu runs past the end of the file",
                           (unsigned long long)n, lc_gguf_type_name((lc_gguf_type)et), c->pos);
        c->pos += (size_t)n * es;
        return LC_OK;
    }
    /* strings need >= 8 bytes each, arrays >= 12: bound n before allocating */
    size_t min_each = et == LC_GGUF_STRING ? 8 : 12;
    if (n > remaining / min_each)
        return lc_fail(LC_ERR_FORMAT, "array of %llu %s values at offset %zu cannot fit in the file",
                       (unsigned long long)n, lc_gguf_type_name((lc_gguf_type)et), c->pos);
    if (et == LC_GGUF_STRING) {
        uint64_t *offs = lc_malloc((size_t)(n ? n : 1) * sizeof *offs);
        if (!offs) return LC_ERR_OOM;
        v->arr.offs = offs;
        size_t start = c->pos;
        for (uint64_t i = 0; i < n; i++) {
            offs[i] = c->pos - start;
            lc_gguf_str s;
            if ((st = rd_str(c, &s))) return st;
        }
        return LC_OK;
    }
    lc_gguf_value *items = lc_calloc((size_t)(n ? n : 1), sizeof *items);
    if (!items) return LC_ERR_OOM;
    v->arr.items = items;
    for (uint64_t i = 0; i < n; i++) {
        if ((st = rd_value(c, LC_GGUF_ARRAY, &items[i], depth + 1))) {
            v->arr.n = i + 1; /* so free_value releases what was parsed */
            return st;
        }
    }
    return LC_OK;
}

static lc_status rd_value(cursor *c, lc_gguf_type t, lc_gguf_value *v, int depth) {
    if (t == LC_GGUF_STRING) {
        v->type = t;
        return rd_str(c, &v->str);
    }
    if (t == LC_GGUF_ARRAY) return rd_array(c, v, depth);
    size_t es = lc_gguf_type_size(t);
    if (!es) return lc_fail(LC_ERR_FORMAT, "value type %u at offset %zu is not a GGUF value type", (unsigned)t, c->pos);
    if (c->size - c->pos < es) return truncated(c, es);
    decode_scalar(t, c->base + c->pos, v);
    c->pos += es;
    return LC_OK;
}

static bool key_is(const lc_gguf_str *k, const char *z) {
    size_t n = strlen(z);
    return k->n == n && memcmp(k->p, z, n) == 0;
}

static lc_status parse(lc_gguf *g, const uint8_t *data, size_t size) {
    cursor c = {data, size, 0, "header"};
    uint32_t magic;
    lc_status st;
    if (size < 4) return lc_fail(LC_ERR_FORMAT, "not a GGUF file: %zu bytes is too short for a header", size);
    if ((st = rd_u32(&c, &magic))) return st;
    if (magic != GGUF_MAGIC)
        return lc_fail(LC_ERR_FORMAT, "not a GGUF file: bad magic 0x%08x (expected \"GGUF\")", magic);
    if ((st = rd_u32(&c, &g->version))) return st;
    if (g->version != 2 && g->version != 3)
        return lc_fail(LC_ERR_UNSUPPORTED, "unsupported GGUF version %u (this reader handles 2 and 3)", g->version);
    if ((st = rd_u64(&c, &g->n_tensors)) || (st = rd_u64(&c, &g->n_kv))) return st;

    /* A kv needs at least 8 (key length) + 4 (type) + 1 bytes; a tensor info 8 + 4 + 4 + 8. */
    if (g->n_kv > (size - c.pos) / 13)
        return lc_fail(LC_ERR_FORMAT, "metadata count %llu cannot fit in a %zu-byte file",
                       (unsigned long long)g->n_kv, size);
    if (g->n_tensors > (size - c.pos) / 24)
        return lc_fail(LC_ERR_FORMAT, "tensor count %llu cannot fit in a %zu-byte file",
                       (unsigned long long)g->n_tensors, size);

    g->kv = lc_calloc((size_t)(g->n_kv ? g->n_kv : 1), sizeof *g->kv);
    if (!g->kv) return LC_ERR_OOM;
    g->alignment = 32;
    for (uint64_t i = 0; i < g->n_kv; i++) {
        lc_gguf_kv *kv = &g->kv[i];
        uint32_t t;
        c.what = "metadata key";
        if ((st = rd_str(&c, &kv->key))) return lc_fail_wrap(st, "metadata entry %llu: ", (unsigned long long)i);
        c.what = "metadata value type";
        if ((st = rd_u32(&c, &t))) return st;
        if (t >= LC_GGUF_TYPE_COUNT)
            return lc_fail(LC_ERR_FORMAT, "metadata '%.*s' has unknown value type %u",
                           (int)LC_MIN(kv->key.n, 200), kv->key.p, t);
        c.what = "metadata value";
        if ((st = rd_value(&c, (lc_gguf_type)t, &kv->val, 0))) {
            g->n_kv = i + 1;
            return lc_fail_wrap(st, "metadata '%.*s': ", (int)LC_MIN(kv->key.n, 200), kv->key.p);
        }
        if (key_is(&kv->key, "general.alignment")) {
            if (kv->val.type != LC_GGUF_U32 || kv->val.u == 0 || (kv->val.u & (kv->val.u - 1)))
                return lc_fail(LC_ERR_FORMAT, "general.alignment must be a power-of-two u32");
            g->alignment = (uint32_t)kv->val.u;
        }
    }

    g->tensors = lc_calloc((size_t)(g->n_tensors ? g->n_tensors : 1), sizeof *g->tensors);
    if (!g->tensors) return LC_ERR_OOM;
    /* Names go into one arena; first pass finds its size. */
    size_t names_start = c.pos, names_bytes = 0;
    for (int pass = 0; pass < 2; pass++) {
        c.pos = names_start;
        char *arena = g->arena;
        for (uint64_t i = 0; i < g->n_tensors; i++) {
            lc_gguf_tensor *t = &g->tensors[i];
            lc_gguf_str name;
            uint32_t nd, type;
            c.what = "tensor info";
            if ((st = rd_str(&c, &name))) return lc_fail_wrap(st, "tensor %llu: ", (unsigned long long)i);
            if ((st = rd_u32(&c, &nd))) return st;
            if (nd < 1 || nd > LC_GGUF_MAX_DIMS)
                return lc_fail(LC_ERR_FORMAT, "tensor '%.*s' has %u dimensions (1 to %d allowed)",
                               (int)LC_MIN(name.n, 200), name.p, nd, LC_GGUF_MAX_DIMS);
            uint64_t ne[LC_GGUF_MAX_DIMS] = {1, 1, 1, 1};
            for (uint32_t d = 0; d < nd; d++)
                if ((st = rd_u64(&c, &ne[d]))) return st;
            if ((st = rd_u32(&c, &type)) || (st = rd_u64(&c, &t->offset))) return st;
            if (pass == 0) {
                names_bytes += name.n + 1;
                continue;
            }
            memcpy(arena, name.p, name.n);
            arena[name.n] = 0;
            t->name = arena;
            arena += name.n + 1;
            const lc_type_info *ti = lc_type_get((int)type);
            if (!ti)
                return lc_fail(LC_ERR_FORMAT, "tensor '%s' has unknown type %u", t->name, type);
            t->type = (lc_type)type;
            t->n_dims = (int)nd;
            uint64_t total = 1;
            for (int d = 0; d < LC_GGUF_MAX_DIMS; d++) {
                if (ne[d] > (uint64_t)INT64_MAX || (ne[d] && total > (uint64_t)INT64_MAX / ne[d]))
                    return lc_fail(LC_ERR_FORMAT, "tensor '%s' dimensions overflow (dim %d = %llu)",
                                   t->name, d, (unsigned long long)ne[d]);
                total *= ne[d];
                t->ne[d] = (int64_t)ne[d];
            }
            if (ne[0] % (uint64_t)ti->block_size)
                return lc_fail(LC_ERR_FORMAT, "tensor '%s' row of %llu elements is not a multiple of %s's block of %d",
                               t->name, (unsigned long long)ne[0], ti->name, ti->block_size);
            uint64_t blocks = total / (uint64_t)ti->block_size;
            if (blocks > SIZE_MAX / ti->type_size)
                return lc_fail(LC_ERR_FORMAT, "tensor '%s' size overflows", t->name);
            t->size = (size_t)blocks * ti->type_size;
            if (t->offset % g->alignment)
                return lc_fail(LC_ERR_FORMAT, "tensor '%s' offset %llu is not aligned to %u",
                               t->name, (unsigned long long)t->offset, g->alignment);
        }
        if (pass == 0) {
            g->arena = lc_malloc(names_bytes ? names_bytes : 1);
            if (!g->arena) return LC_ERR_OOM;
        }
    }
    size_t data_off = (c.pos + g->alignment - 1) / g->alignment * g->alignment;
    if (g->n_tensors > 0 && data_off > size)
        return lc_fail(LC_ERR_FORMAT, "truncated file: the tensor data section would start at %zu, past the end (%zu)",
                       data_off, size);
    g->data_offset = data_off;
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        lc_gguf_tensor *t = &g->tensors[i];
        size_t avail = size - data_off;
        if (t->offset > avail || t->size > avail - t->offset)
            return lc_fail(LC_ERR_FORMAT, "tensor '%s' (%zu bytes at data offset %llu) ends past the end of the file (%zu bytes of data)",
                           t->name, t->size, (unsigned long long)t->offset, avail);
        t->data = data + data_off + t->offset;
        for (uint64_t j = 0; j < i; j++)
            if (!strcmp(g->tensors[j].name, t->name) && g->n_tensors < 4096)
                return lc_fail(LC_ERR_FORMAT, "duplicate tensor name '%s'", t->name);
    }
    return LC_OK;
}

lc_status lc_gguf_open_buffer(const void *buf, size_t size, lc_gguf **out) {
    *out = NULL;
    lc_gguf *g = lc_calloc(1, sizeof *g);
    if (!g) return LC_ERR_OOM;
    g->map.fd = -1;
    lc_status st = parse(g, buf, size);
    if (st) {
        lc_gguf_close(g);
        return st;
    }
    *out = g;
    return LC_OK;
}

lc_status lc_gguf_open(const char *path, lc_gguf **out) {
    *out = NULL;
    lc_map m;
    lc_status st = lc_map_open(path, &m);
    if (st) return st;
    lc_gguf *g = NULL;
    st = lc_gguf_open_buffer(m.data, m.size, &g);
    if (st) {
        lc_map_close(&m);
        return lc_fail_wrap(st, "%s: ", path);
    }
    g->map = m;
    *out = g;
    return LC_OK;
}

void lc_gguf_close(lc_gguf *g) {
    if (!g) return;
    if (g->kv)
        for (uint64_t i = 0; i < g->n_kv; i++) free_value(&g->kv[i].val);
    lc_free(g->kv);
    lc_free(g->tensors);
    lc_free(g->arena);
    if (g->map.fd >= 0 || g->map.data) lc_map_close(&g->map);
    lc_free(g);
}

/* ==== Lookup ==== */

const lc_gguf_value *lc_gguf_get(const lc_gguf *g, const char *key) {
    for (uint64_t i = 0; i < g->n_kv; i++)
        if (key_is(&g->kv[i].key, key)) return &g->kv[i].val;
    return NULL;
}

static bool is_unsigned(lc_gguf_type t) {
    return t == LC_GGUF_U8 || t == LC_GGUF_U16 || t == LC_GGUF_U32 || t == LC_GGUF_U64 || t == LC_GGUF_BOOL;
}
static bool is_signed(lc_gguf_type t) {
    return t == LC_GGUF_I8 || t == LC_GGUF_I16 || t == LC_GGUF_I32 || t == LC_GGUF_I64;
}

bool lc_gguf_get_i64(const lc_gguf *g, const char *key, int64_t *out) {
    const lc_gguf_value *v = lc_gguf_get(g, key);
    if (!v) return false;
    if (is_unsigned(v->type)) { *out = (int64_t)v->u; return true; }
    if (is_signed(v->type)) { *out = v->i; return true; }
    return false;
}

bool lc_gguf_get_u64(const lc_gguf *g, const char *key, uint64_t *out) {
    int64_t x;
    if (!lc_gguf_get_i64(g, key, &x) || x < 0) return false;
    *out = (uint64_t)x;
    return true;
}

bool lc_gguf_get_f64(const lc_gguf *g, const char *key, double *out) {
    const lc_gguf_value *v = lc_gguf_get(g, key);
    if (!v) return false;
    if (v->type == LC_GGUF_F32 || v->type == LC_GGUF_F64) { *out = v->f; return true; }
    if (is_unsigned(v->type)) { *out = (double)v->u; return true; }
    if (is_signed(v->type)) { *out = (double)v->i; return true; }
    return false;
}

bool lc_gguf_get_bool(const lc_gguf *g, const char *key, bool *out) {
    const lc_gguf_value *v = lc_gguf_get(g, key);
    if (!v || !(is_unsigned(v->type) || is_signed(v->type))) return false;
    *out = v->u != 0;
    return true;
}

bool lc_gguf_get_strv(const lc_gguf *g, const char *key, lc_gguf_str *out) {
    const lc_gguf_value *v = lc_gguf_get(g, key);
    if (!v || v->type != LC_GGUF_STRING) return false;
    *out = v->str;
    return true;
}

bool lc_gguf_get_str(const lc_gguf *g, const char *key, char *buf, size_t cap) {
    lc_gguf_str s;
    if (!lc_gguf_get_strv(g, key, &s) || cap == 0) return false;
    size_t n = LC_MIN((size_t)s.n, cap - 1);
    memcpy(buf, s.p, n);
    buf[n] = 0;
    return true;
}

lc_gguf_str lc_gguf_arr_str(const lc_gguf_value *v, uint64_t i) {
    const uint8_t *p = v->arr.data + v->arr.offs[i];
    lc_gguf_str s;
    memcpy(&s.n, p, 8);
    s.p = (const char *)p + 8;
    return s;
}

double lc_gguf_arr_f64(const lc_gguf_value *v, uint64_t i) {
    lc_gguf_value x;
    size_t es = lc_gguf_type_size(v->arr.elem);
    decode_scalar(v->arr.elem, v->arr.data + i * es, &x);
    if (x.type == LC_GGUF_F32 || x.type == LC_GGUF_F64) return x.f;
    return is_signed(x.type) ? (double)x.i : (double)x.u;
}

int64_t lc_gguf_arr_i64(const lc_gguf_value *v, uint64_t i) {
    lc_gguf_value x;
    size_t es = lc_gguf_type_size(v->arr.elem);
    decode_scalar(v->arr.elem, v->arr.data + i * es, &x);
    if (x.type == LC_GGUF_F32 || x.type == LC_GGUF_F64) return (int64_t)x.f;
    return is_signed(x.type) ? x.i : (int64_t)x.u;
}

const lc_gguf_tensor *lc_gguf_find_tensor(const lc_gguf *g, const char *name) {
    for (uint64_t i = 0; i < g->n_tensors; i++)
        if (!strcmp(g->tensors[i].name, name)) return &g->tensors[i];
    return NULL;
}
