/* alloc.c — the counting allocator: every engine heap byte passes through here.
 *
 * Each block carries a small header with its size so lc_free can subtract it; aligned blocks
 * carry a 64-byte header. The counters are process-wide atomics (the one piece of global
 * mutable state besides the CPU feature word and log level). Fault injection makes the n-th
 * allocation fail, for tests of every error path.
 */
#include "base.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define HDR 16     /* keeps malloc's 16-byte alignment */
#define AHDR 64    /* aligned blocks: one cache line of header */

static atomic_size_t mem_in_use;
static atomic_size_t mem_peak;
static atomic_long fail_countdown;

static void account_add(size_t n) {
    size_t now = atomic_fetch_add(&mem_in_use, n) + n;
    size_t peak = atomic_load(&mem_peak);
    while (now > peak && !atomic_compare_exchange_weak(&mem_peak, &peak, now)) {
    }
}

static bool injected_failure(void) {
    long c = atomic_load(&fail_countdown);
    if (c <= 0) return false;
    return atomic_fetch_sub(&fail_countdown, 1) == 1;
}

void lc_alloc_fail_after(long n) { atomic_store(&fail_countdown, n); }

size_t lc_mem_in_use(void) { return atomic_load(&mem_in_use); }
size_t lc_mem_peak(void) { return atomic_load(&mem_peak); }

void *lc_malloc(size_t n) {
    if (n > SIZE_MAX - HDR || injected_failure()) {
        lc_fail(LC_ERR_OOM, "out of memory allocating %zu bytes", n);
        return NULL;
    }
    unsigned char *p = malloc(n + HDR);
    if (!p) {
        lc_fail(LC_ERR_OOM, "out of memory allocating %zu bytes", n);
        return NULL;
    }
    memcpy(p, &n, sizeof n);
    account_add(n);
    return p + HDR;
}

void *lc_calloc(size_t count, size_t size) {
    if (size && count > SIZE_MAX / size) {
        lc_fail(LC_ERR_OOM, "allocation of %zu x %zu bytes overflows", count, size);
        return NULL;
    }
    void *p = lc_malloc(count * size);
    if (p) memset(p, 0, count * size);
    return p;
}

void lc_mem_taken(size_t n) { account_add(n); }
void lc_mem_given_back(size_t n) { atomic_fetch_sub(&mem_in_use, n); }

void lc_free(void *p) {
    if (!p) return;
    unsigned char *b = (unsigned char *)p - HDR;
    size_t n;
    memcpy(&n, b, sizeof n);
    atomic_fetch_sub(&mem_in_use, n);
    free(b);
}

void *lc_realloc(void *p, size_t n) {
    if (!p) return lc_malloc(n);
    if (n > SIZE_MAX - HDR || injected_failure()) {
        lc_fail(LC_ERR_OOM, "out of memory reallocating to %zu bytes", n);
        return NULL;
    }
    unsigned char *b = (unsigned char *)p - HDR;
    size_t old;
    memcpy(&old, b, sizeof old);
    unsigned char *nb = realloc(b, n + HDR);
    if (!nb) {
        lc_fail(LC_ERR_OOM, "out of memory reallocating to %zu bytes", n);
        return NULL;
    }
    memcpy(nb, &n, sizeof n);
    atomic_fetch_sub(&mem_in_use, old);
    account_add(n);
    return nb + HDR;
}

char *lc_strndup(const char *s, size_t n) {
    char *d = lc_malloc(n + 1);
    if (!d) return NULL;
    memcpy(d, s, n);
    d[n] = 0;
    return d;
}

char *lc_strdup(const char *s) { return lc_strndup(s, strlen(s)); }

void *lc_malloc_aligned(size_t n) {
    if (n > SIZE_MAX - 2 * AHDR || injected_failure()) {
        lc_fail(LC_ERR_OOM, "out of memory allocating %zu aligned bytes", n);
        return NULL;
    }
    size_t total = (n + AHDR + AHDR - 1) / AHDR * AHDR;
    unsigned char *p = aligned_alloc(AHDR, total);
    if (!p) {
        lc_fail(LC_ERR_OOM, "out of memory allocating %zu aligned bytes", n);
        return NULL;
    }
    memcpy(p, &n, sizeof n);
    account_add(n);
    return p + AHDR;
}

void lc_free_aligned(void *p) {
    if (!p) return;
    unsigned char *b = (unsigned char *)p - AHDR;
    size_t n;
    memcpy(&n, b, sizeof n);
    atomic_fetch_sub(&mem_in_use, n);
    free(b);
}

bool lc_grow(void **arr, size_t elt, size_t *cap, size_t need) {
    if (need <= *cap) return true;
    size_t ncap = *cap ? *cap : 8;
    while (ncap < need) {
        if (ncap > SIZE_MAX / 2 / elt) {
            lc_fail(LC_ERR_OOM, "array of %zu elements is too large", need);
            return false;
        }
        ncap *= 2;
    }
    void *p = lc_realloc(*arr, ncap * elt);
    if (!p) return false;
    *arr = p;
    *cap = ncap;
    return true;
}
