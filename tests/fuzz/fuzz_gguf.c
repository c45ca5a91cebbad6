/* fuzz_gguf.c — libFuzzer target for the GGUF reader: any bytes must give a handle or a clean
 * error; when a handle comes back, every metadata value and tensor is walked. */
#include "gguf/gguf.h"

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint64_t walk(const lc_gguf_value *v) {
    uint64_t h = v->type;
    if (v->type == LC_GGUF_STRING && v->str.n) h += (uint8_t)v->str.p[v->str.n - 1];
    if (v->type != LC_GGUF_ARRAY) return h;
    for (uint64_t i = 0; i < v->arr.n && i < 1000; i++) {
        if (v->arr.elem == LC_GGUF_STRING) {
            lc_gguf_str s = lc_gguf_arr_str(v, i);
            if (s.n) h += (uint8_t)s.p[s.n - 1];
        } else if (v->arr.elem == LC_GGUF_ARRAY) {
            h += walk(&v->arr.items[i]);
        } else {
            h += (uint64_t)lc_gguf_arr_i64(v, i);
        }
    }
    return h;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    lc_gguf *g;
    if (lc_gguf_open_buffer(data, size, &g) != LC_OK) return 0;
    volatile uint64_t h = 0;
    for (uint64_t i = 0; i < g->n_kv; i++) h += walk(&g->kv[i].val);
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        const lc_gguf_tensor *t = &g->tensors[i];
        if (t->size) h += ((const uint8_t *)t->data)[t->size - 1];
    }
    (void)h;
    lc_gguf_close(g);
    return 0;
}
