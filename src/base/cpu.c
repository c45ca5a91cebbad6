/* cpu.c — CPU feature detection (once, cached) and the physical-core count.
 *
 * The feature word picks the kernel table at start-up (quant/dispatch); LOCARA_CPU=scalar,
 * avx2 or avx512 caps it so tests and benchmarks can force a path.
 */
#include "base.h"

#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static atomic_uint cpu_features_word; /* bit 31 set once detected */

static unsigned detect(void) {
    unsigned f = 0;
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
        __builtin_cpu_supports("f16c"))
        f |= LC_CPU_AVX2;
    if ((f & LC_CPU_AVX2) && __builtin_cpu_supports("avx512f") &&
        __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
        __builtin_cpu_supports("avx512dq"))
        f |= LC_CPU_AVX512;
    if ((f & LC_CPU_AVX512) && __builtin_cpu_supports("avx512vnni")) f |= LC_CPU_AVX512_VNNI;
    if ((f & LC_CPU_AVX2) && __builtin_cpu_supports("avxvnni")) f |= LC_CPU_AVX_VNNI;
#endif
    const char *cap = getenv("LOCARA_CPU");
    if (cap) {
        if (!strcmp(cap, "scalar")) f = 0;
        else if (!strcmp(cap, "avx2")) f &= LC_CPU_AVX2 | LC_CPU_AVX_VNNI;
    }
    return f;
}

unsigned lc_cpu_features(void) {
    unsigned w = atomic_load_explicit(&cpu_features_word, memory_order_acquire);
    if (w & 0x80000000u) return w & 0x7fffffffu;
    w = detect();
    atomic_store_explicit(&cpu_features_word, w | 0x80000000u, memory_order_release);
    return w;
}

static int read_int(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    int v = -1;
    if (fscanf(f, "%d", &v) != 1) v = -1;
    fclose(f);
    return v;
}

int lc_cpu_physical_cores(void) {
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) != 0) return 1;
    /* (package, core) pairs seen so far; a hardware thread sharing a pair is a sibling. */
    int seen[CPU_SETSIZE][2];
    int n_seen = 0, n_cpus = 0;
    for (int c = 0; c < CPU_SETSIZE; c++) {
        if (!CPU_ISSET(c, &set)) continue;
        n_cpus++;
        char path[128];
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu%d/topology/core_id", c);
        int core = read_int(path);
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu%d/topology/physical_package_id", c);
        int pkg = read_int(path);
        if (core < 0) return n_cpus > 0 ? CPU_COUNT(&set) : 1; /* no topology: count threads */
        int dup = 0;
        for (int i = 0; i < n_seen; i++)
            if (seen[i][0] == pkg && seen[i][1] == core) dup = 1;
        if (!dup) {
            seen[n_seen][0] = pkg;
            seen[n_seen][1] = core;
            n_seen++;
        }
    }
    return n_seen > 0 ? n_seen : 1;
}
