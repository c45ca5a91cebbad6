/* test_kv.c — the paged KV manager: block accounting, prefix reuse across sequences, never
 * attaching the whole prompt, truncation with copy-on-write of a shared block, LRU eviction of
 * cached blocks, the full-cache error, and drop_cached (memory pressure). */
#include "backend/backend.h"
#include "engine/kv.h"
#include "runtime/fit.h"
#include "testutil.h"

#include <stdlib.h>
#include <string.h>

static void fill(int32_t *ids, int n, int base) {
    for (int i = 0; i < n; i++) ids[i] = base + i;
}

int main(void) {
    lc_backend *be;
    CHECK(lc_backend_cpu_create(1, &be) == LC_OK);
    lc_kvc *c;
    /* 8 blocks of 32 tokens, 2 sequences */
    CHECKF(lc_kvc_create(be, 2, 2, 32, LC_TYPE_F16, 256, 2, &c) == LC_OK, "%s", lc_last_error());
    int bt = lc_kvc_block_tokens(c);
    CHECK(bt == 32);
    int32_t ids[256];
    fill(ids, 256, 100);

    /* sequence 0 takes 100 tokens: 4 blocks, 3 full ones indexed */
    CHECK(lc_kvc_seq_reserve(c, 0, 100) == LC_OK);
    lc_kvc_seq_commit(c, 0, ids, 100);
    lc_kvc_stats st = lc_kvc_get_stats(c);
    CHECK(st.used == 4 && st.free == 4 && st.cached == 0);
    CHECK(lc_kvc_seq_len(c, 0) == 100);
    CHECK(lc_kvc_slot(c, 0, 33) == lc_kvc_table(c, 0)[1] * bt + 1);

    /* sequence 1 with the same first 70 tokens reuses 2 full blocks (64 tokens) */
    CHECK(lc_kvc_seq_attach_prefix(c, 1, ids, 70) == 64);
    CHECK(lc_kvc_seq_len(c, 1) == 64);
    CHECK(lc_kvc_table(c, 1)[0] == lc_kvc_table(c, 0)[0] && lc_kvc_table(c, 1)[1] == lc_kvc_table(c, 0)[1]);
    st = lc_kvc_get_stats(c);
    CHECK(st.used == 4);
    /* a different token in block 2 stops the match there */
    lc_kvc_seq_truncate(c, 1, 0);
    int32_t other[96];
    memcpy(other, ids, sizeof other);
    other[40] = 7;
    CHECK(lc_kvc_seq_attach_prefix(c, 1, other, 96) == 32);
    lc_kvc_seq_truncate(c, 1, 0);
    /* exactly 64 tokens: only one block may be attached (the last token must be computed) */
    CHECK(lc_kvc_seq_attach_prefix(c, 1, ids, 64) == 32);

    /* truncating into a shared block copies it first */
    int shared = lc_kvc_table(c, 1)[0];
    CHECK(lc_kvc_seq_truncate(c, 1, 10) == LC_OK);
    CHECK(lc_kvc_table(c, 1)[0] != shared);
    CHECK(lc_kvc_table(c, 0)[0] == shared);
    CHECK(lc_kvc_seq_len(c, 1) == 10);
    lc_kvc_seq_truncate(c, 1, 0);

    /* releasing sequence 0 leaves its 3 full blocks cached, the partial one free */
    CHECK(lc_kvc_seq_truncate(c, 0, 0) == LC_OK);
    st = lc_kvc_get_stats(c);
    CHECK(st.used == 0 && st.cached == 3 && st.free == 5);
    /* a new request with the prefix still finds them */
    CHECK(lc_kvc_seq_attach_prefix(c, 0, ids, 100) == 96);
    lc_kvc_seq_truncate(c, 0, 0);

    /* filling the cache evicts cached blocks (LRU) rather than failing */
    CHECK(lc_kvc_seq_reserve(c, 1, 256) == LC_OK);
    st = lc_kvc_get_stats(c);
    CHECK(st.used == 8 && st.cached == 0);
    /* and then it is full: a clear error */
    CHECK(lc_kvc_seq_reserve(c, 0, 1) == LC_ERR_RANGE && strstr(lc_last_error(), "full"));
    lc_kvc_seq_truncate(c, 1, 0);

    /* drop_cached frees unreferenced indexed blocks (and gives their pages back) */
    CHECK(lc_kvc_seq_reserve(c, 0, 64) == LC_OK);
    lc_kvc_seq_commit(c, 0, ids, 64);
    lc_kvc_seq_truncate(c, 0, 0);
    st = lc_kvc_get_stats(c);
    CHECK(st.cached == 2);
    CHECK(lc_kvc_drop_cached(c) == 2);
    st = lc_kvc_get_stats(c);
    CHECK(st.cached == 0 && st.free == 8);
    CHECK(lc_kvc_seq_attach_prefix(c, 0, ids, 100) == 0);

    /* geometry errors */
    lc_kvc *bad;
    CHECK(lc_kvc_create(be, 2, 2, 48, LC_TYPE_Q8_0, 64, 1, &bad) == LC_ERR_INVALID);
    CHECK(lc_kvc_create(be, 2, 2, 32, LC_TYPE_Q4_K, 64, 1, &bad) == LC_ERR_INVALID);
    /* q8_0 takes about half the bytes of f16 */
    size_t f16 = lc_kvc_bytes(30, 3, 64, LC_TYPE_F16, 4096), q8 = lc_kvc_bytes(30, 3, 64, LC_TYPE_Q8_0, 4096);
    CHECKF(q8 * 100 / f16 >= 50 && q8 * 100 / f16 <= 55, "q8_0 %zu vs f16 %zu", q8, f16);

    lc_kvc_free(c);

    /* dropping cached blocks gives their memory back to the system (pressure response) */
    lc_kvc *big;
    CHECK(lc_kvc_create(be, 2, 8, 128, LC_TYPE_F16, 8192, 1, &big) == LC_OK);
    int32_t *many = malloc(sizeof(int32_t) * 8192);
    fill(many, 8192, 5);
    CHECK(lc_kvc_seq_reserve(big, 0, 8192) == LC_OK);
    lc_kvc_seq_commit(big, 0, many, 8192);
    lc_kvc_seq_truncate(big, 0, 0);
    size_t before = lc_rss_now().anon;
    CHECK(lc_kvc_drop_cached(big) == 256);
    size_t after = lc_rss_now().anon;
    CHECKF(before > after + (48u << 20), "anonymous RSS %zu -> %zu after dropping 64 MiB of cached KV", before, after);
    free(many);
    lc_kvc_free(big);
    lc_backend_cpu_free(be);
    return test_done();
}
