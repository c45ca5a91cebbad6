/* test_gguf.c — GGUF writer/reader round trip, every metadata type including nested arrays,
 * and the reader's clean one-line errors on truncated and corrupted files (every truncation
 * point of a small file is tried; none may crash or succeed). */
#include "gguf/gguf.h"
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *tmp_path(const char *name) {
    static char buf[256];
    snprintf(buf, sizeof buf, "/tmp/lc_test_gguf_%d_%s", (int)getpid(), name);
    return buf;
}

static size_t write_sample(const char *path) {
    lc_gguf_writer *w;
    CHECK(lc_gguf_writer_create(&w) == LC_OK);
    CHECK(lc_gguf_writer_set_str(w, "general.architecture", "llama") == LC_OK);
    CHECK(lc_gguf_writer_set_u32(w, "llama.block_count", 2) == LC_OK);
    CHECK(lc_gguf_writer_set_i32(w, "test.neg", -7) == LC_OK);
    CHECK(lc_gguf_writer_set_f32(w, "test.f", 0.5f) == LC_OK);
    CHECK(lc_gguf_writer_set_bool(w, "test.b", true) == LC_OK);
    const char *strs[] = {"a", "", "héllo"};
    CHECK(lc_gguf_writer_set_arr_str(w, "test.strs", strs, 3) == LC_OK);
    int32_t ints[] = {1, -2, 3};
    CHECK(lc_gguf_writer_set_arr(w, "test.ints", LC_GGUF_I32, ints, 3) == LC_OK);
    static float t1[64], t2[32 * 2];
    for (int i = 0; i < 64; i++) t1[i] = (float)i;
    for (int i = 0; i < 64; i++) t2[i] = (float)-i;
    int64_t ne1[1] = {64}, ne2[2] = {32, 2};
    CHECK(lc_gguf_writer_add_tensor(w, "a.weight", LC_TYPE_F32, 1, ne1, t1) == LC_OK);
    CHECK(lc_gguf_writer_add_tensor(w, "b.weight", LC_TYPE_F32, 2, ne2, t2) == LC_OK);
    CHECK(lc_gguf_writer_write(w, path) == LC_OK);
    lc_gguf_writer_free(w);
    FILE *f = fopen(path, "rb");
    fseek(f, 0, SEEK_END);
    size_t n = (size_t)ftell(f);
    fclose(f);
    return n;
}

static void test_round_trip(void) {
    const char *path = tmp_path("rt.gguf");
    write_sample(path);
    lc_gguf *g;
    CHECKF(lc_gguf_open(path, &g) == LC_OK, "%s", lc_last_error());
    if (!g) return;
    char s[64];
    CHECK(lc_gguf_get_str(g, "general.architecture", s, sizeof s) && !strcmp(s, "llama"));
    uint64_t u;
    int64_t i;
    double f;
    bool b;
    CHECK(lc_gguf_get_u64(g, "llama.block_count", &u) && u == 2);
    CHECK(lc_gguf_get_i64(g, "test.neg", &i) && i == -7);
    CHECK(!lc_gguf_get_u64(g, "test.neg", &u)); /* negative never converts to unsigned */
    CHECK(lc_gguf_get_f64(g, "test.f", &f) && f == 0.5);
    CHECK(lc_gguf_get_bool(g, "test.b", &b) && b);
    const lc_gguf_value *a = lc_gguf_get(g, "test.strs");
    CHECK(a && a->type == LC_GGUF_ARRAY && a->arr.n == 3);
    if (a) {
        lc_gguf_str e = lc_gguf_arr_str(a, 2);
        CHECK(e.n == 6 && !memcmp(e.p, "héllo", 6));
        CHECK(lc_gguf_arr_str(a, 1).n == 0);
    }
    const lc_gguf_value *ia = lc_gguf_get(g, "test.ints");
    CHECK(ia && lc_gguf_arr_i64(ia, 1) == -2);
    const lc_gguf_tensor *t = lc_gguf_find_tensor(g, "b.weight");
    CHECK(t && t->ne[0] == 32 && t->ne[1] == 2 && t->size == 256 && ((const float *)t->data)[5] == -5.0f);
    CHECK(((uintptr_t)t->data - (uintptr_t)g->map.data) % 32 == 0);
    CHECK(lc_gguf_find_tensor(g, "missing") == NULL);

    /* copy every kv through the writer and read it back identical */
    lc_gguf_writer *w;
    lc_gguf_writer_create(&w);
    for (uint64_t k = 0; k < g->n_kv; k++) CHECK(lc_gguf_writer_copy_kv(w, &g->kv[k]) == LC_OK);
    const char *p2 = tmp_path("rt2.gguf");
    CHECK(lc_gguf_writer_write(w, p2) == LC_OK);
    lc_gguf_writer_free(w);
    lc_gguf *g2;
    CHECK(lc_gguf_open(p2, &g2) == LC_OK);
    if (g2) {
        CHECK(g2->n_kv == g->n_kv);
        CHECK(lc_gguf_get_f64(g2, "test.f", &f) && f == 0.5);
        const lc_gguf_value *a2 = lc_gguf_get(g2, "test.strs");
        CHECK(a2 && a2->arr.n == 3 && lc_gguf_arr_str(a2, 2).n == 6);
        lc_gguf_close(g2);
    }
    unlink(p2);
    lc_gguf_close(g);
    unlink(path);
}

/* Nested arrays are legal GGUF; build one by hand. */
static void test_nested_array(void) {
    uint8_t buf[256];
    size_t n = 0;
#define PUT(v, sz) do { uint64_t _x = (uint64_t)(v); memcpy(buf + n, &_x, sz); n += sz; } while (0)
    memcpy(buf, "GGUF", 4); n = 4;
    PUT(3, 4); PUT(0, 8); PUT(1, 8);
    PUT(3, 8); memcpy(buf + n, "a.b", 3); n += 3;
    PUT(LC_GGUF_ARRAY, 4); PUT(LC_GGUF_ARRAY, 4); PUT(2, 8);
    PUT(LC_GGUF_U8, 4); PUT(2, 8); buf[n++] = 7; buf[n++] = 8;
    PUT(LC_GGUF_STRING, 4); PUT(1, 8); PUT(2, 8); memcpy(buf + n, "hi", 2); n += 2;
#undef PUT
    lc_gguf *g;
    CHECKF(lc_gguf_open_buffer(buf, n, &g) == LC_OK, "%s", lc_last_error());
    if (!g) return;
    const lc_gguf_value *v = lc_gguf_get(g, "a.b");
    CHECK(v && v->arr.elem == LC_GGUF_ARRAY && v->arr.n == 2);
    if (v) {
        CHECK(v->arr.items[0].arr.n == 2 && lc_gguf_arr_i64(&v->arr.items[0], 1) == 8);
        CHECK(lc_gguf_arr_str(&v->arr.items[1], 0).n == 2);
    }
    lc_gguf_close(g);
    /* every truncation of it fails cleanly */
    for (size_t k = 0; k < n; k++) {
        lc_gguf *gt;
        CHECK(lc_gguf_open_buffer(buf, k, &gt) != LC_OK && gt == NULL);
    }
}

static void test_corrupt(void) {
    const char *path = tmp_path("c.gguf");
    size_t size = write_sample(path);
    uint8_t *data = malloc(size);
    FILE *f = fopen(path, "rb");
    CHECK(fread(data, 1, size, f) == size);
    fclose(f);
    unlink(path);
    lc_gguf *g;
    /* every truncation point: an error, never a crash (tensor data ends at size) */
    int ok_truncs = 0;
    for (size_t k = 0; k < size; k++) {
        lc_status st = lc_gguf_open_buffer(data, k, &g);
        if (st == LC_OK) {
            ok_truncs++;
            lc_gguf_close(g);
        } else {
            CHECK(strlen(lc_last_error()) > 0 && strchr(lc_last_error(), '\n') == NULL);
        }
    }
    CHECKF(ok_truncs == 0, "%d truncations were accepted", ok_truncs);
    /* specific failures and their messages */
    uint8_t *c = malloc(size);
    memcpy(c, data, size);
    c[0] = 'X';
    CHECK(lc_gguf_open_buffer(c, size, &g) == LC_ERR_FORMAT && strstr(lc_last_error(), "bad magic"));
    memcpy(c, data, size);
    c[4] = 9;
    CHECK(lc_gguf_open_buffer(c, size, &g) == LC_ERR_UNSUPPORTED && strstr(lc_last_error(), "version 9"));
    memcpy(c, data, size);
    uint64_t huge = 1ull << 60;
    memcpy(c + 16, &huge, 8); /* n_kv */
    CHECK(lc_gguf_open_buffer(c, size, &g) == LC_ERR_FORMAT && strstr(lc_last_error(), "cannot fit"));
    memcpy(c, data, size);
    memcpy(c + 8, &huge, 8); /* n_tensors */
    CHECK(lc_gguf_open_buffer(c, size, &g) == LC_ERR_FORMAT);
    /* flip every byte of the header region: never a crash */
    for (size_t k = 0; k < size && k < 400; k++) {
        memcpy(c, data, size);
        c[k] ^= 0xff;
        if (lc_gguf_open_buffer(c, size, &g) == LC_OK) lc_gguf_close(g);
    }
    free(c);
    free(data);
    CHECK(lc_gguf_open("/nonexistent/x.gguf", &g) == LC_ERR_IO && strstr(lc_last_error(), "cannot open"));
}

int main(void) {
    size_t before = lc_mem_in_use();
    test_round_trip();
    test_nested_array();
    test_corrupt();
    CHECKF(lc_mem_in_use() == before, "leaked %zu bytes", lc_mem_in_use() - before);
    return test_done();
}
