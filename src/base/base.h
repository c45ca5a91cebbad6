/* base.h — services every module may use: errors, counting allocation, logging, file mapping,
 * a persistent thread pool, CPU feature detection, growable strings, clocks.
 *
 * Deliberately not here: anything model- or format-specific. The only global mutable state is
 * the allocator's counters (like Redis's used_memory), the CPU feature word filled once, and the
 * log level. Entry points: lc_fail, lc_malloc/lc_free, lc_log, lc_map_open, lc_pool_run.
 */
#ifndef LC_BASE_H
#define LC_BASE_H

#include "locara.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define LC_PRINTF(a, b) __attribute__((format(printf, a, b)))
#define LC_LIKELY(x) __builtin_expect(!!(x), 1)
#define LC_UNLIKELY(x) __builtin_expect(!!(x), 0)
#else
#define LC_PRINTF(a, b)
#define LC_LIKELY(x) (x)
#define LC_UNLIKELY(x) (x)
#endif

#define LC_MIN(a, b) ((a) < (b) ? (a) : (b))
#define LC_MAX(a, b) ((a) > (b) ? (a) : (b))
#define LC_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* ==== Errors ==== */

/* Records a formatted message as this thread's last error and returns st, so a failure is one
 * line: `return lc_fail(LC_ERR_FORMAT, "tensor %s ends past the file", name);` */
lc_status lc_fail(lc_status st, const char *fmt, ...) LC_PRINTF(2, 3);

/* Prefixes the current last-error message with context ("loading x.gguf: " + old message). */
lc_status lc_fail_wrap(lc_status st, const char *fmt, ...) LC_PRINTF(2, 3);

void lc_clear_error(void);

/* ==== Counting allocator ==== */

/* All engine heap memory goes through these so that lc_mem_in_use() is the truth. They return
 * NULL on failure (and set LC_ERR_OOM's message); lc_free(NULL) is fine. */
void *lc_malloc(size_t n);
void *lc_calloc(size_t count, size_t size);
void *lc_realloc(void *p, size_t n);
void lc_free(void *p);
char *lc_strdup(const char *s);
char *lc_strndup(const char *s, size_t n);

/* 64-byte aligned blocks for SIMD buffers; pair with lc_free_aligned. */
void *lc_malloc_aligned(size_t n);
void lc_free_aligned(void *p);

/* Memory the engine holds that does not come from these (a GPU backend's page-locked host
 * buffers) is counted by the backend itself: n bytes taken, then given back. */
void lc_mem_taken(size_t n);
void lc_mem_given_back(size_t n);

/* Fault injection for tests: the n-th allocation from now fails (0 turns it off). */
void lc_alloc_fail_after(long n);

/* Grows *arr (element size elt) so it holds at least need elements; *cap is updated.
 * Returns false (with LC_ERR_OOM set) on failure, leaving *arr valid. */
bool lc_grow(void **arr, size_t elt, size_t *cap, size_t need);

/* ==== Logging ==== */

typedef enum lc_log_level { LC_LOG_ERROR, LC_LOG_WARN, LC_LOG_INFO, LC_LOG_DEBUG } lc_log_level;

void lc_log_set_level(lc_log_level lvl);
lc_log_level lc_log_get_level(void);
void lc_log(lc_log_level lvl, const char *fmt, ...) LC_PRINTF(2, 3);

/* ==== Growable strings ==== */

typedef struct lc_str {
    char *buf; /* always NUL-terminated when non-NULL */
    size_t len;
    size_t cap;
} lc_str;

bool lc_str_append(lc_str *s, const char *data, size_t n);
bool lc_str_puts(lc_str *s, const char *z);
bool lc_str_putc(lc_str *s, char c);
bool lc_str_printf(lc_str *s, const char *fmt, ...) LC_PRINTF(2, 3);
void lc_str_clear(lc_str *s); /* len = 0, keeps the buffer */
void lc_str_free(lc_str *s);
/* Hands the buffer to the caller (free with lc_free) and resets s. Never NULL on success. */
char *lc_str_take(lc_str *s);

/* ==== Files ==== */

/* A read-only private mapping of a whole file. */
typedef struct lc_map {
    const uint8_t *data;
    size_t size;
    int fd;
} lc_map;

lc_status lc_map_open(const char *path, lc_map *out);
void lc_map_close(lc_map *m);

/* $env/rel when the XDG variable env ("XDG_CACHE_HOME", "XDG_DATA_HOME") is set, else
 * $HOME/home_rel/rel (home_rel ".cache", ".local/share"), into buf. */
void lc_xdg_path(const char *env, const char *home_rel, const char *rel, char *buf, size_t cap);

/* Where scripts/fetch-model.sh provisions the default model (it may not exist yet). */
void lc_default_model_path(char *buf, size_t cap);

/* Reads a whole file into a NUL-terminated heap buffer (lc_free it). */
lc_status lc_read_file(const char *path, char **out, size_t *len);

/* ==== Time ==== */

double lc_time_sec(void);   /* monotonic seconds */
int64_t lc_time_us(void);   /* monotonic microseconds */

/* ==== CPU ==== */

enum {
    LC_CPU_AVX2 = 1 << 0,    /* AVX2 + FMA + F16C */
    LC_CPU_AVX512 = 1 << 1,  /* AVX-512 F, BW, VL, DQ */
    LC_CPU_AVX512_VNNI = 1 << 2,
    LC_CPU_AVX_VNNI = 1 << 3,
    LC_CPU_AVX512_BF16 = 1 << 4, /* vdpbf16ps */
};

/* Feature bits of this CPU, detected once; LOCARA_CPU=scalar|avx2|avx512 caps them (tests). */
unsigned lc_cpu_features(void);
/* Physical cores (as opposed to hardware threads) available to this process. */
int lc_cpu_physical_cores(void);

/* ==== Thread pool ==== */

/* A persistent pool. lc_pool_run calls fn(arg, ith, nth) on nth threads (the caller is ith 0)
 * and returns when all have finished. Workers spin briefly, then sleep, between jobs. */
typedef struct lc_pool lc_pool;
typedef void (*lc_pool_fn)(void *arg, int ith, int nth);

lc_status lc_pool_create(int n_threads, lc_pool **out);
void lc_pool_free(lc_pool *pool);
int lc_pool_size(const lc_pool *pool);
void lc_pool_run(lc_pool *pool, lc_pool_fn fn, void *arg);

/* Splits n items into nth near-equal contiguous ranges; sets [*lo, *hi) for thread ith. */
static inline void lc_split(int64_t n, int ith, int nth, int64_t *lo, int64_t *hi) {
    int64_t per = n / nth, rem = n % nth;
    *lo = per * ith + (ith < rem ? ith : rem);
    *hi = *lo + per + (ith < rem ? 1 : 0);
}

/* ==== Half precision ==== */

static inline float lc_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
    uint32_t bits;
    if (exp == 0) {
        if (mant == 0) {
            bits = sign;
        } else { /* subnormal: renormalise */
            int e = -1;
            do { e++; mant <<= 1; } while (!(mant & 0x400));
            bits = sign | ((uint32_t)(127 - 15 - e) << 23) | ((mant & 0x3ff) << 13);
        }
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | (mant << 13);
    } else {
        bits = sign | ((exp + 112) << 23) | (mant << 13);
    }
    float f;
    __builtin_memcpy(&f, &bits, 4);
    return f;
}

/* Round-to-nearest-even conversion, as F16C's vcvtps2ph does. */
static inline uint16_t lc_f32_to_f16(float f) {
    uint32_t x;
    __builtin_memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000;
    uint32_t absx = x & 0x7fffffff;
    if (absx >= 0x7f800000u) /* inf or nan */
        return (uint16_t)(sign | 0x7c00 | (absx > 0x7f800000u ? 0x200 : 0));
    if (absx >= 0x477ff000u) /* rounds to >= 65520: overflow to inf */
        return (uint16_t)(sign | 0x7c00);
    if (absx < 0x38800000u) { /* subnormal or zero in f16 */
        if (absx < 0x33000000u) return (uint16_t)sign;
        uint32_t e = absx >> 23, m = (absx & 0x7fffff) | 0x800000;
        uint32_t shift = 126 - e; /* 14 + (113 - e) - 1 */
        uint32_t half = m >> shift, rem = m & ((1u << shift) - 1), mid = 1u << (shift - 1);
        if (rem > mid || (rem == mid && (half & 1))) half++;
        return (uint16_t)(sign | half);
    }
    uint32_t r = absx - 0x38000000u; /* rebias exponent 127 -> 15 */
    uint32_t half = r >> 13, rem = r & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (half & 1))) half++;
    return (uint16_t)(sign | half);
}

static inline float lc_bf16_to_f32(uint16_t h) {
    uint32_t bits = (uint32_t)h << 16;
    float f;
    __builtin_memcpy(&f, &bits, 4);
    return f;
}

static inline uint16_t lc_f32_to_bf16(float f) {
    uint32_t x;
    __builtin_memcpy(&x, &f, 4);
    if ((x & 0x7fffffff) > 0x7f800000u) return (uint16_t)((x >> 16) | 64); /* quiet nan */
    return (uint16_t)((x + (0x7fff + ((x >> 16) & 1))) >> 16);
}

#ifdef __cplusplus
}
#endif

#endif /* LC_BASE_H */
