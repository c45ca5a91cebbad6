/* gguf.h — GGUF v2/v3 files: a validating reader over a read-only mapping, and a writer.
 *
 * Format (little-endian): "GGUF" magic, u32 version, u64 tensor count, u64 metadata count;
 * metadata as (string key, u32 type, value); tensor infos as (string name, u32 n_dims,
 * u64 dims[n_dims], u32 type, u64 offset); padding to general.alignment (default 32); the
 * tensor data, each tensor at data_start + offset. A string is u64 length + bytes (no NUL);
 * an array is u32 element type + u64 count + elements (arrays may nest).
 *
 * The reader checks every count, length and offset against the file size and reports the first
 * problem in one line. Values point into the mapping (zero-copy); only indexes are allocated.
 */
#ifndef LC_GGUF_H
#define LC_GGUF_H

#include "base/base.h"
#include "quant/quant.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum lc_gguf_type {
    LC_GGUF_U8 = 0,
    LC_GGUF_I8 = 1,
    LC_GGUF_U16 = 2,
    LC_GGUF_I16 = 3,
    LC_GGUF_U32 = 4,
    LC_GGUF_I32 = 5,
    LC_GGUF_F32 = 6,
    LC_GGUF_BOOL = 7,
    LC_GGUF_STRING = 8,
    LC_GGUF_ARRAY = 9,
    LC_GGUF_U64 = 10,
    LC_GGUF_I64 = 11,
    LC_GGUF_F64 = 12,
    LC_GGUF_TYPE_COUNT
} lc_gguf_type;

typedef struct lc_gguf_str {
    const char *p; /* not NUL-terminated: points into the file */
    uint64_t n;
} lc_gguf_str;

typedef struct lc_gguf_value lc_gguf_value;
struct lc_gguf_value {
    lc_gguf_type type;
    union {
        uint64_t u;  /* U8..U64 (widened) and BOOL */
        int64_t i;   /* I8..I64 (sign-extended) */
        double f;    /* F32, F64 */
        lc_gguf_str str;
        struct {
            lc_gguf_type elem;
            uint64_t n;
            const uint8_t *data;    /* first element in the file */
            const uint64_t *offs;   /* STRING arrays: byte offset of element i from data */
            lc_gguf_value *items;   /* ARRAY-of-ARRAY: the parsed inner arrays */
        } arr;
    };
};

typedef struct lc_gguf_kv {
    lc_gguf_str key;
    lc_gguf_value val;
} lc_gguf_kv;

#define LC_GGUF_MAX_DIMS 4

typedef struct lc_gguf_tensor {
    const char *name;       /* NUL-terminated copy */
    int n_dims;
    int64_t ne[LC_GGUF_MAX_DIMS]; /* ne[0] is the contiguous (row) dimension; unused dims are 1 */
    lc_type type;
    uint64_t offset;        /* from the data section */
    size_t size;            /* bytes */
    const void *data;       /* in the mapping */
} lc_gguf_tensor;

typedef struct lc_gguf {
    lc_map map;
    uint32_t version;
    uint32_t alignment;
    size_t data_offset;
    uint64_t n_kv;
    lc_gguf_kv *kv;
    uint64_t n_tensors;
    lc_gguf_tensor *tensors;
    void *arena; /* names and string-offset tables, one allocation */
} lc_gguf;

/* Opens and validates path. On failure the message names the file and the first problem. */
lc_status lc_gguf_open(const char *path, lc_gguf **out);
/* The same over a caller-owned buffer (used by the fuzzer); buf must outlive the handle. */
lc_status lc_gguf_open_buffer(const void *buf, size_t size, lc_gguf **out);
void lc_gguf_close(lc_gguf *g);

/* Metadata lookup by key; NULL when absent. */
const lc_gguf_value *lc_gguf_get(const lc_gguf *g, const char *key);
/* Typed getters: return false (and leave *out) when absent or of a non-convertible type. */
bool lc_gguf_get_u64(const lc_gguf *g, const char *key, uint64_t *out);
bool lc_gguf_get_i64(const lc_gguf *g, const char *key, int64_t *out);
bool lc_gguf_get_f64(const lc_gguf *g, const char *key, double *out);
bool lc_gguf_get_bool(const lc_gguf *g, const char *key, bool *out);
/* A string value as a NUL-terminated copy in buf (truncated to cap); false when absent. */
bool lc_gguf_get_str(const lc_gguf *g, const char *key, char *buf, size_t cap);
bool lc_gguf_get_strv(const lc_gguf *g, const char *key, lc_gguf_str *out);

/* Array element access (no bounds beyond i < arr.n are needed: the reader checked them). */
lc_gguf_str lc_gguf_arr_str(const lc_gguf_value *v, uint64_t i);
double lc_gguf_arr_f64(const lc_gguf_value *v, uint64_t i);
int64_t lc_gguf_arr_i64(const lc_gguf_value *v, uint64_t i);

const lc_gguf_tensor *lc_gguf_find_tensor(const lc_gguf *g, const char *name);

const char *lc_gguf_type_name(lc_gguf_type t);
/* Bytes of one scalar of type t; 0 for STRING, ARRAY and unknown types. */
size_t lc_gguf_type_size(lc_gguf_type t);

/* ==== Writer ==== */

/* Builds a GGUF file in memory-light steps: add metadata and tensor infos, then write. Tensor
 * data is supplied by pointer and copied at write time (it must stay valid until then). */
typedef struct lc_gguf_writer lc_gguf_writer;

lc_status lc_gguf_writer_create(lc_gguf_writer **out);
void lc_gguf_writer_free(lc_gguf_writer *w);
/* Copies a value (including arrays and strings) from an opened file, keeping its type. */
lc_status lc_gguf_writer_copy_kv(lc_gguf_writer *w, const lc_gguf_kv *kv);
lc_status lc_gguf_writer_set_u32(lc_gguf_writer *w, const char *key, uint32_t v);
lc_status lc_gguf_writer_set_i32(lc_gguf_writer *w, const char *key, int32_t v);
lc_status lc_gguf_writer_set_f32(lc_gguf_writer *w, const char *key, float v);
lc_status lc_gguf_writer_set_bool(lc_gguf_writer *w, const char *key, bool v);
lc_status lc_gguf_writer_set_str(lc_gguf_writer *w, const char *key, const char *v);
/* Arrays of scalars (elem a numeric type, n elements at data in that type's width) or strings. */
lc_status lc_gguf_writer_set_arr(lc_gguf_writer *w, const char *key, lc_gguf_type elem,
                                 const void *data, uint64_t n);
lc_status lc_gguf_writer_set_arr_str(lc_gguf_writer *w, const char *key, const char *const *v,
                                     uint64_t n);
/* Adds a tensor; ne has n_dims entries, data holds lc_type_row_size(type, ne[0]) * rows bytes. */
lc_status lc_gguf_writer_add_tensor(lc_gguf_writer *w, const char *name, lc_type type, int n_dims,
                                    const int64_t *ne, const void *data);
/* Writes the whole file (GGUF v3, alignment 32 unless general.alignment was set). */
lc_status lc_gguf_writer_write(lc_gguf_writer *w, const char *path);

#ifdef __cplusplus
}
#endif

#endif /* LC_GGUF_H */
