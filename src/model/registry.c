/* registry.c — the table of supported architectures; adding one is a file plus a line here. */
#include "model.h"

#include <string.h>

extern const lc_arch lc_arch_llama, lc_arch_qwen2, lc_arch_qwen3, lc_arch_qwen3moe;

static const lc_arch *const archs[] = {
    &lc_arch_llama,
    &lc_arch_qwen2,
    &lc_arch_qwen3,
    &lc_arch_qwen3moe,
};

const lc_arch *lc_arch_find(const char *name) {
    for (size_t i = 0; i < LC_ARRAY_LEN(archs); i++)
        if (!strcmp(archs[i]->name, name)) return archs[i];
    return NULL;
}
