/* membw.c — a STREAM-like memory bandwidth probe (copy and triad) for the engine benchmarks.
 *
 * Owns: one number per kernel, the median GB/s over R runs on arrays much larger than the last
 * level cache, with T threads (each takes a contiguous slice). Bytes counted as STREAM does:
 * copy moves 2 x 8 bytes per element, triad 3 x 8. Not a tuned STREAM: no non-temporal stores.
 *
 *   cc -O2 -march=native -pthread bench/engine/membw.c -o membw && ./membw [MiB per array] [threads] [runs]
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

typedef struct job {
    double *a, *b, *c;
    size_t lo, hi;
    int kind; /* 0 copy c = a, 1 triad a = b + s * c */
} job;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* One thread's slice of the kernel. */
static void *work(void *p) {
    job *j = p;
    if (j->kind == 0) {
        for (size_t i = j->lo; i < j->hi; i++) j->c[i] = j->a[i];
    } else {
        for (size_t i = j->lo; i < j->hi; i++) j->a[i] = j->b[i] + 3.0 * j->c[i];
    }
    return NULL;
}

static int cmp(const void *x, const void *y) {
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

/* Runs kind over n elements with nt threads, returns seconds. */
static double run(double *a, double *b, double *c, size_t n, int nt, int kind) {
    pthread_t th[64];
    job jobs[64];
    double t0 = now();
    for (int t = 0; t < nt; t++) {
        jobs[t] = (job){a, b, c, n * t / nt, n * (t + 1) / nt, kind};
        pthread_create(&th[t], NULL, work, &jobs[t]);
    }
    for (int t = 0; t < nt; t++) pthread_join(th[t], NULL);
    return now() - t0;
}

int main(int argc, char **argv) {
    size_t mib = argc > 1 ? strtoul(argv[1], NULL, 10) : 512;
    int nt = argc > 2 ? atoi(argv[2]) : 1, runs = argc > 3 ? atoi(argv[3]) : 7;
    if (nt < 1 || nt > 64 || runs < 1 || runs > 100) return 2;
    size_t n = mib * 1024 * 1024 / sizeof(double);
    double *a = malloc(n * 8), *b = malloc(n * 8), *c = malloc(n * 8);
    if (!a || !b || !c) return 1;
    for (size_t i = 0; i < n; i++) a[i] = 1.0, b[i] = 2.0, c[i] = 0.5; /* fault every page in */
    double gbs[2][100];
    for (int r = 0; r < runs; r++) {
        gbs[0][r] = 2.0 * 8 * n / run(a, b, c, n, nt, 0) / 1e9;
        gbs[1][r] = 3.0 * 8 * n / run(a, b, c, n, nt, 1) / 1e9;
    }
    const char *names[2] = {"copy", "triad"};
    for (int k = 0; k < 2; k++) {
        qsort(gbs[k], (size_t)runs, sizeof(double), cmp);
        printf("%s threads=%d MiB/array=%zu runs=%d median=%.2f GB/s min=%.2f max=%.2f\n", names[k], nt, mib, runs,
               gbs[k][runs / 2], gbs[k][0], gbs[k][runs - 1]);
    }
    int odd = a[n / 2] == 12345.0; /* keep the stores observable */
    free(a);
    free(b);
    free(c);
    return odd;
}
