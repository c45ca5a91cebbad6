/* pool.c — the persistent compute thread pool.
 *
 * lc_pool_run publishes a job by bumping a generation counter; workers spin on it for a short
 * while (decode issues hundreds of jobs per token, so wake-up latency matters), then sleep on a
 * futex so an idle server burns no CPU. The caller runs share 0 itself and spins until the
 * workers have finished. Not re-entrant: one lc_pool_run at a time per pool.
 */
#include "base.h"

#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <sys/syscall.h>
#include <unistd.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define cpu_relax() _mm_pause()
#else
#define cpu_relax() ((void)0)
#endif

/* Spin with pause this many times, then yield the CPU between checks (on an oversubscribed
 * machine a spinning waiter would otherwise burn the time slice the thread it waits for needs),
 * then sleep on the futex. */
#define SPIN_ITERS 2000
#define YIELD_ITERS 2000

struct lc_pool {
    int n;                 /* threads including the caller */
    pthread_t *threads;
    atomic_int generation; /* bumped once per job (and at shutdown) */
    atomic_int pending;    /* workers still running the current job */
    atomic_int sleepers;   /* workers blocked in futex_wait */
    atomic_int stop;
    lc_pool_fn fn;
    void *arg;
};

typedef struct worker_arg {
    lc_pool *pool;
    int ith;
} worker_arg;

static void futex_wait(atomic_int *addr, int expected) {
    syscall(SYS_futex, addr, FUTEX_WAIT_PRIVATE, expected, NULL, NULL, 0);
}

static void futex_wake_all(atomic_int *addr) {
    syscall(SYS_futex, addr, FUTEX_WAKE_PRIVATE, 0x7fffffff, NULL, NULL, 0);
}

static void *worker_main(void *p) {
    worker_arg wa = *(worker_arg *)p;
    lc_free(p);
    lc_pool *pool = wa.pool;
    int seen = 0; /* generation starts at 0: a job published before this thread ran is still seen */
    for (;;) {
        int gen;
        int spins = 0;
        while ((gen = atomic_load_explicit(&pool->generation, memory_order_acquire)) == seen) {
            if (++spins < SPIN_ITERS) {
                cpu_relax();
                continue;
            }
            if (spins < SPIN_ITERS + YIELD_ITERS) {
                sched_yield();
                continue;
            }
            atomic_fetch_add(&pool->sleepers, 1);
            futex_wait(&pool->generation, seen);
            atomic_fetch_sub(&pool->sleepers, 1);
            spins = 0;
        }
        seen = gen;
        if (atomic_load(&pool->stop)) return NULL;
        pool->fn(pool->arg, wa.ith, pool->n);
        atomic_fetch_sub_explicit(&pool->pending, 1, memory_order_release);
    }
}

lc_status lc_pool_create(int n_threads, lc_pool **out) {
    *out = NULL;
    if (n_threads < 1) n_threads = 1;
    if (n_threads > 1024) return lc_fail(LC_ERR_INVALID, "too many threads (%d)", n_threads);
    lc_pool *pool = lc_calloc(1, sizeof *pool);
    if (!pool) return LC_ERR_OOM;
    pool->n = n_threads;
    pool->threads = lc_calloc((size_t)n_threads, sizeof(pthread_t));
    if (!pool->threads) {
        lc_free(pool);
        return LC_ERR_OOM;
    }
    for (int i = 1; i < n_threads; i++) {
        worker_arg *wa = lc_malloc(sizeof *wa);
        if (!wa) {
            pool->n = i;
            lc_pool_free(pool);
            return LC_ERR_OOM;
        }
        wa->pool = pool;
        wa->ith = i;
        if (pthread_create(&pool->threads[i], NULL, worker_main, wa) != 0) {
            lc_free(wa);
            pool->n = i;
            lc_pool_free(pool);
            return lc_fail(LC_ERR_IO, "cannot start compute thread %d", i);
        }
    }
    *out = pool;
    return LC_OK;
}

void lc_pool_free(lc_pool *pool) {
    if (!pool) return;
    atomic_store(&pool->stop, 1);
    atomic_fetch_add_explicit(&pool->generation, 1, memory_order_release);
    futex_wake_all(&pool->generation);
    for (int i = 1; i < pool->n; i++) pthread_join(pool->threads[i], NULL);
    lc_free(pool->threads);
    lc_free(pool);
}

int lc_pool_size(const lc_pool *pool) { return pool ? pool->n : 1; }

void lc_pool_run(lc_pool *pool, lc_pool_fn fn, void *arg) {
    if (!pool || pool->n == 1) {
        fn(arg, 0, 1);
        return;
    }
    pool->fn = fn;
    pool->arg = arg;
    atomic_store_explicit(&pool->pending, pool->n - 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&pool->generation, 1, memory_order_release);
    if (atomic_load(&pool->sleepers) > 0) futex_wake_all(&pool->generation);
    fn(arg, 0, pool->n);
    for (int spins = 0; atomic_load_explicit(&pool->pending, memory_order_acquire) > 0; spins++) {
        if (spins < SPIN_ITERS) cpu_relax();
        else sched_yield();
    }
}
