/* dispatch.c — picks the CPU kernel table once per process.
 *
 * Each table is built lazily and exactly once (pthread_once): the scalar entries first, then
 * each ISA level overwrites what it accelerates. After that the tables are read-only; they are
 * the only state here (DESIGN: the CPU-feature dispatch table filled once).
 * Entry points: lc_kernels_best, lc_kernels_named.
 */
#include "quant.h"

#include "base/base.h"

#include <pthread.h>
#include <string.h>

enum { ISA_SCALAR, ISA_AVX2, ISA_AVX512, ISA_COUNT };

static lc_kernels tables[ISA_COUNT];
static pthread_once_t once[ISA_COUNT] = {PTHREAD_ONCE_INIT, PTHREAD_ONCE_INIT, PTHREAD_ONCE_INIT};

static void init_scalar(void) { lc_kernels_fill_scalar(&tables[ISA_SCALAR]); }
static void init_avx2(void) {
    lc_kernels_fill_scalar(&tables[ISA_AVX2]);
    lc_kernels_fill_avx2(&tables[ISA_AVX2]);
}
static void init_avx512(void) {
    lc_kernels_fill_scalar(&tables[ISA_AVX512]);
    lc_kernels_fill_avx2(&tables[ISA_AVX512]);
    lc_kernels_fill_avx512(&tables[ISA_AVX512]);
    if (lc_cpu_features() & LC_CPU_AVX512_BF16) lc_kernels_fill_avx512bf16(&tables[ISA_AVX512]);
}

static void (*const init_fns[ISA_COUNT])(void) = {init_scalar, init_avx2, init_avx512};

/* Whether this CPU (as capped by LOCARA_CPU) runs the ISA's translation unit. The avx512 unit
 * is compiled with VNNI, so it needs both. */
static bool cpu_has(int isa) {
    unsigned f = lc_cpu_features();
    switch (isa) {
    case ISA_SCALAR: return true;
    case ISA_AVX2: return (f & LC_CPU_AVX2) != 0;
    case ISA_AVX512: return (f & LC_CPU_AVX2) && (f & LC_CPU_AVX512) && (f & LC_CPU_AVX512_VNNI);
    default: return false;
    }
}

static const lc_kernels *get(int isa) {
    if (!cpu_has(isa)) return NULL;
    pthread_once(&once[isa], init_fns[isa]);
    return &tables[isa];
}

const lc_kernels *lc_kernels_named(const char *isa) {
    static const char *const names[ISA_COUNT] = {"scalar", "avx2", "avx512"};
    for (int i = 0; i < ISA_COUNT; i++)
        if (isa && !strcmp(isa, names[i])) return get(i);
    return NULL;
}

const lc_kernels *lc_kernels_best(void) {
    for (int i = ISA_COUNT - 1; i > 0; i--)
        if (cpu_has(i)) return get(i);
    return get(ISA_SCALAR);
}
