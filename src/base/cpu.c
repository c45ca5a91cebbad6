/* cpu.c — CPU feature detection (once, cached) and the physical-core count.
 *
 * The feature word picks the kernel table at start-up (quant/dispatch); LOCARA_CPU=scalar,
 * avx2 or avx512 caps it so tests and benchmarks can force a path.
 */
#include "base.h"

#include <sched.h>
#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static atomic_uint cpu_features_word; /* bit 31 set once detected */

/* CPUID leaf 7 / leaf 1 bits, plus XGETBV to see that the OS saves the AVX / AVX-512 state. */
static unsigned detect(void) {
    unsigned f = 0;
#if defined(__x86_64__) || defined(__i386__)
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    bool fma = c & (1u << 12), osxsave = c & (1u << 27), avx = c & (1u << 28), f16c = c & (1u << 29);
    if (!osxsave || !avx) return 0;
    unsigned xlo, xhi;
    __asm__ volatile("xgetbv" : "=a"(xlo), "=d"(xhi) : "c"(0));
    bool os_avx = (xlo & 0x6) == 0x6, os_avx512 = (xlo & 0xe6) == 0xe6;
    unsigned b7 = 0, c7 = 0, d7 = 0, a71 = 0, b71 = 0, c71 = 0, d71 = 0;
    __cpuid_count(7, 0, a, b7, c7, d7);
    __cpuid_count(7, 1, a71, b71, c71, d71);
    (void)b71; (void)c71; (void)d71;
    bool avx2 = b7 & (1u << 5), avx512f = b7 & (1u << 16), avx512dq = b7 & (1u << 17),
         avx512bw = b7 & (1u << 30), avx512vl = b7 & (1u << 31), vnni512 = c7 & (1u << 11),
         avxvnni = a71 & (1u << 4), bf16 = a71 & (1u << 5);
    if (os_avx && avx2 && fma && f16c) f |= LC_CPU_AVX2;
    if ((f & LC_CPU_AVX2) && os_avx512 && avx512f && avx512dq && avx512bw && avx512vl) f |= LC_CPU_AVX512;
    if ((f & LC_CPU_AVX512) && vnni512) f |= LC_CPU_AVX512_VNNI;
    if ((f & LC_CPU_AVX512) && bf16) f |= LC_CPU_AVX512_BF16;
    if ((f & LC_CPU_AVX2) && avxvnni) f |= LC_CPU_AVX_VNNI;
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
