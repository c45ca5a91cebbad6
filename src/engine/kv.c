/* kv.c — the paged KV cache manager (see kv.h): block allocation, per-sequence tables,
 * refcounts, the prefix index (hash of the token chain -> block) and LRU eviction.
 *
 * Invariant: a block is in exactly one state — free (on the free list), used (ref > 0), or
 * cached (ref == 0 and indexed). Full blocks are immutable once indexed; a sequence only ever
 * writes to its own last, partial block, so sharing needs no copy except when a truncation lands
 * inside a shared block (then that block is copied first).
 */
#include "kv.h"

#include <string.h>

#define BLOCK_TOKENS 32
#define HASH_SEED 0x9e3779b97f4a7c15ull

typedef struct kv_seq {
    int32_t *table;
    int cap;
    int len;
} kv_seq;

struct lc_kvc {
    int n_parts;
    lc_backend *be[LC_KVC_MAX_PARTS]; /* part i's layers live on be[i] */
    lc_kv kv[LC_KVC_MAX_PARTS];
    int n_blocks, bt, n_seq;
    int32_t *ref;
    uint64_t *chain;   /* hash of the token chain through this block (valid when full) */
    uint8_t *indexed;
    int32_t *btok;     /* tokens of each block */
    uint64_t *lru;
    uint64_t tick;
    int32_t *free_list;
    int n_free;
    int32_t *ht;       /* open addressing: block id, -1 empty, -2 deleted */
    int ht_cap;
    kv_seq *seqs;
};

static uint64_t mix(uint64_t h, uint32_t v) {
    h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
    h *= 0xbf58476d1ce4e5b9ull;
    return h ^ (h >> 31);
}

static uint64_t block_hash(uint64_t parent, const int32_t *toks, int n) {
    uint64_t h = parent;
    for (int i = 0; i < n; i++) h = mix(h, (uint32_t)toks[i]);
    return h | 1; /* never 0 */
}

size_t lc_kvc_bytes(int n_layer, int n_kv_head, int head_dim, lc_type type, int n_ctx) {
    int n_blocks = (n_ctx + BLOCK_TOKENS - 1) / BLOCK_TOKENS;
    size_t row = lc_type_row_size(type, (int64_t)n_kv_head * head_dim);
    return 2 * (size_t)n_layer * row * BLOCK_TOKENS * (size_t)n_blocks;
}

lc_status lc_kvc_create(lc_backend *be, int n_layer, int n_kv_head, int head_dim, lc_type type, int n_ctx,
                        int n_seq, lc_kvc **out) {
    lc_kvc_part part = {be, n_layer};
    return lc_kvc_create_parts(&part, 1, n_kv_head, head_dim, type, n_ctx, n_seq, out);
}

lc_status lc_kvc_create_parts(const lc_kvc_part *parts, int n_parts, int n_kv_head, int head_dim, lc_type type,
                              int n_ctx, int n_seq, lc_kvc **out) {
    *out = NULL;
    if (n_parts < 1 || n_parts > LC_KVC_MAX_PARTS) return lc_fail(LC_ERR_INVALID, "a KV cache has 1 to %d parts", LC_KVC_MAX_PARTS);
    if (type != LC_TYPE_F16 && type != LC_TYPE_Q8_0 && type != LC_TYPE_Q4_0)
        return lc_fail(LC_ERR_INVALID, "KV cache type must be f16, q8_0 or q4_0 (got %s)", lc_type_name(type));
    if (type != LC_TYPE_F16 && head_dim % 32)
        return lc_fail(LC_ERR_INVALID, "a %s KV cache needs a head dimension divisible by 32 (got %d)", lc_type_name(type), head_dim);
    if (n_ctx < 1 || n_seq < 1) return lc_fail(LC_ERR_INVALID, "context and sequence counts must be positive");
    lc_kvc *c = lc_calloc(1, sizeof *c);
    if (!c) return LC_ERR_OOM;
    c->bt = BLOCK_TOKENS;
    c->n_blocks = (n_ctx + BLOCK_TOKENS - 1) / BLOCK_TOKENS;
    c->n_seq = n_seq;
    c->n_parts = n_parts;
    for (int i = 0; i < n_parts; i++) {
        c->be[i] = parts[i].be;
        c->kv[i] = (lc_kv){.n_layer = parts[i].n_layer, .n_kv_head = n_kv_head, .head_dim = head_dim,
                           .block_tokens = BLOCK_TOKENS, .n_blocks = c->n_blocks, .type = type,
                           .row_bytes = lc_type_row_size(type, (int64_t)n_kv_head * head_dim)};
    }
    size_t nb = (size_t)c->n_blocks;
    c->ht_cap = 16;
    while (c->ht_cap < 2 * c->n_blocks) c->ht_cap *= 2;
    c->ref = lc_calloc(nb, sizeof *c->ref);
    c->chain = lc_calloc(nb, sizeof *c->chain);
    c->indexed = lc_calloc(nb, 1);
    c->btok = lc_calloc(nb * BLOCK_TOKENS, sizeof *c->btok);
    c->lru = lc_calloc(nb, sizeof *c->lru);
    c->free_list = lc_malloc(nb * sizeof *c->free_list);
    c->ht = lc_malloc((size_t)c->ht_cap * sizeof *c->ht);
    c->seqs = lc_calloc((size_t)n_seq, sizeof *c->seqs);
    lc_status st = LC_OK;
    if (!c->ref || !c->chain || !c->indexed || !c->btok || !c->lru || !c->free_list || !c->ht || !c->seqs) {
        st = LC_ERR_OOM;
        goto fail;
    }
    for (int i = 0; i < c->n_blocks; i++) c->free_list[i] = c->n_blocks - 1 - i;
    c->n_free = c->n_blocks;
    for (int i = 0; i < c->ht_cap; i++) c->ht[i] = -1;
    for (int i = 0; i < n_parts; i++) /* a part that failed or was not reached is freed by what it holds */
        if (c->kv[i].n_layer && (st = c->be[i]->ops->kv_alloc(c->be[i], &c->kv[i]))) goto fail;
    *out = c;
    return LC_OK;
fail:
    lc_kvc_free(c);
    return st;
}

void lc_kvc_free(lc_kvc *c) {
    if (!c) return;
    for (int i = 0; i < c->n_parts; i++)
        if (c->kv[i].k || c->kv[i].v) c->be[i]->ops->kv_free(c->be[i], &c->kv[i]);
    for (int s = 0; c->seqs && s < c->n_seq; s++) lc_free(c->seqs[s].table);
    lc_free(c->seqs);
    lc_free(c->ref);
    lc_free(c->chain);
    lc_free(c->indexed);
    lc_free(c->btok);
    lc_free(c->lru);
    lc_free(c->free_list);
    lc_free(c->ht);
    lc_free(c);
}

lc_kv *lc_kvc_store(lc_kvc *c, int part) { return part >= 0 && part < c->n_parts ? &c->kv[part] : NULL; }
int lc_kvc_block_tokens(const lc_kvc *c) { return c->bt; }
int lc_kvc_seq_len(const lc_kvc *c, int seq) { return c->seqs[seq].len; }
const int32_t *lc_kvc_table(const lc_kvc *c, int seq) { return c->seqs[seq].table; }

int32_t lc_kvc_slot(const lc_kvc *c, int seq, int pos) {
    return c->seqs[seq].table[pos / c->bt] * c->bt + pos % c->bt;
}

/* ==== Prefix index ==== */

static int ht_find(const lc_kvc *c, uint64_t h) {
    for (int i = (int)(h & (uint64_t)(c->ht_cap - 1)), n = 0; n < c->ht_cap; i = (i + 1) & (c->ht_cap - 1), n++) {
        int b = c->ht[i];
        if (b == -1) return -1;
        if (b >= 0 && c->chain[b] == h) return i;
    }
    return -1;
}

static void ht_insert(lc_kvc *c, int block) {
    uint64_t h = c->chain[block];
    for (int i = (int)(h & (uint64_t)(c->ht_cap - 1));; i = (i + 1) & (c->ht_cap - 1)) {
        if (c->ht[i] < 0) {
            c->ht[i] = block;
            c->indexed[block] = 1;
            return;
        }
    }
}

static void ht_remove(lc_kvc *c, int block) {
    int i = ht_find(c, c->chain[block]);
    if (i >= 0 && c->ht[i] == block) c->ht[i] = -2;
    c->indexed[block] = 0;
}

/* ==== Blocks ==== */

static int alloc_block(lc_kvc *c) {
    if (c->n_free > 0) return c->free_list[--c->n_free];
    int victim = -1;
    for (int b = 0; b < c->n_blocks; b++)
        if (c->ref[b] == 0 && c->indexed[b] && (victim < 0 || c->lru[b] < c->lru[victim])) victim = b;
    if (victim >= 0) ht_remove(c, victim);
    return victim;
}

static void release_block(lc_kvc *c, int b) {
    if (--c->ref[b] > 0) return;
    if (c->indexed[b]) c->lru[b] = ++c->tick;
    else c->free_list[c->n_free++] = b;
}

lc_status lc_kvc_seq_reserve(lc_kvc *c, int seq, int n) {
    kv_seq *s = &c->seqs[seq];
    int need = (s->len + n + c->bt - 1) / c->bt;
    int have = (s->len + c->bt - 1) / c->bt;
    /* blocks beyond `have` may already exist from an earlier reserve */
    while (have < need && have < s->cap && s->table[have] >= 0) have++;
    if (need > s->cap) {
        int ncap = s->cap ? s->cap : 8;
        while (ncap < need) ncap *= 2;
        int32_t *t = lc_realloc(s->table, (size_t)ncap * sizeof *t);
        if (!t) return LC_ERR_OOM;
        for (int i = s->cap; i < ncap; i++) t[i] = -1;
        s->table = t;
        s->cap = ncap;
    }
    for (int i = have; i < need; i++) {
        if (s->table[i] >= 0) continue;
        int b = alloc_block(c);
        if (b < 0)
            return lc_fail(LC_ERR_RANGE, "the KV cache is full (%d blocks of %d tokens, all in use)", c->n_blocks, c->bt);
        c->ref[b] = 1;
        c->lru[b] = ++c->tick;
        s->table[i] = b;
    }
    return LC_OK;
}

void lc_kvc_seq_commit(lc_kvc *c, int seq, const int32_t *ids, int n) {
    kv_seq *s = &c->seqs[seq];
    for (int i = 0; i < n; i++) {
        int pos = s->len + i;
        int b = s->table[pos / c->bt];
        c->btok[(size_t)b * c->bt + pos % c->bt] = ids[i];
        if (pos % c->bt != c->bt - 1) continue;
        /* the block is full: hash its chain and index it unless an identical one is cached */
        int bi = pos / c->bt;
        uint64_t parent = bi ? c->chain[s->table[bi - 1]] : HASH_SEED;
        c->chain[b] = block_hash(parent, &c->btok[(size_t)b * c->bt], c->bt);
        if (!c->indexed[b] && ht_find(c, c->chain[b]) < 0) ht_insert(c, b);
    }
    s->len += n;
}

lc_status lc_kvc_seq_truncate(lc_kvc *c, int seq, int p0) {
    kv_seq *s = &c->seqs[seq];
    if (p0 < 0) p0 = 0;
    if (p0 > s->len) p0 = s->len;
    bool cut = p0 < s->len;
    /* blocks past p0, including ones reserved but never written, go back */
    int keep = (p0 + c->bt - 1) / c->bt;
    for (int i = keep; i < s->cap && s->table[i] >= 0; i++) {
        release_block(c, s->table[i]);
        s->table[i] = -1;
    }
    if (cut && p0 % c->bt) {
        /* the last kept block becomes partial: it must be private and unindexed */
        int bi = keep - 1, b = s->table[bi];
        if (c->ref[b] > 1) {
            int nb = alloc_block(c);
            if (nb < 0) return lc_fail(LC_ERR_RANGE, "the KV cache is full (copy on truncate)");
            for (int i = 0; i < c->n_parts; i++)
                if (c->kv[i].n_layer) c->be[i]->ops->kv_copy_block(c->be[i], &c->kv[i], nb, b, p0 % c->bt);
            memcpy(&c->btok[(size_t)nb * c->bt], &c->btok[(size_t)b * c->bt], (size_t)c->bt * sizeof *c->btok);
            c->ref[nb] = 1;
            release_block(c, b);
            s->table[bi] = nb;
        } else if (c->indexed[b]) {
            ht_remove(c, b);
        }
    }
    s->len = p0;
    return LC_OK;
}

int lc_kvc_seq_attach_prefix(lc_kvc *c, int seq, const int32_t *ids, int n) {
    kv_seq *s = &c->seqs[seq];
    if (s->len != 0) return 0;
    int n_full = (n - 1) / c->bt; /* leave at least one token to compute */
    uint64_t h = HASH_SEED;
    int got = 0;
    for (int bi = 0; bi < n_full; bi++) {
        h = block_hash(h, ids + (size_t)bi * c->bt, c->bt);
        int slot = ht_find(c, h);
        if (slot < 0) break;
        int b = c->ht[slot];
        if (memcmp(&c->btok[(size_t)b * c->bt], ids + (size_t)bi * c->bt, (size_t)c->bt * sizeof *ids)) break;
        if (bi >= s->cap) {
            int ncap = s->cap ? s->cap * 2 : 8;
            while (ncap <= bi) ncap *= 2;
            int32_t *t = lc_realloc(s->table, (size_t)ncap * sizeof *t);
            if (!t) break;
            for (int i = s->cap; i < ncap; i++) t[i] = -1;
            s->table = t;
            s->cap = ncap;
        }
        c->ref[b]++;
        c->lru[b] = ++c->tick;
        s->table[bi] = b;
        s->len += c->bt;
        got += c->bt;
    }
    return got;
}

int lc_kvc_drop_cached(lc_kvc *c) {
    int n = 0;
    for (int b = 0; b < c->n_blocks; b++) {
        if (c->ref[b] == 0 && c->indexed[b]) {
            ht_remove(c, b);
            c->free_list[c->n_free++] = b;
            for (int i = 0; i < c->n_parts; i++)
                if (c->kv[i].n_layer && c->be[i]->ops->kv_discard_block)
                    c->be[i]->ops->kv_discard_block(c->be[i], &c->kv[i], b);
            n++;
        }
    }
    return n;
}

lc_kvc_stats lc_kvc_get_stats(const lc_kvc *c) {
    size_t layers = 0;
    for (int i = 0; i < c->n_parts; i++) layers += (size_t)c->kv[i].n_layer;
    lc_kvc_stats st = {c->n_blocks, c->bt, 0, 0, c->n_free, 2 * layers * c->kv[0].row_bytes * (size_t)c->bt * (size_t)c->n_blocks};
    for (int b = 0; b < c->n_blocks; b++) {
        if (c->ref[b] > 0) st.used++;
        else if (c->indexed[b]) st.cached++;
    }
    return st;
}
