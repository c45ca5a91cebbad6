/* kv.h — the paged KV cache manager: blocks, per-sequence block tables, and the prefix index.
 *
 * The cache is a pool of fixed-size blocks (block_tokens token rows in every layer) shared by
 * all sequences: the context is not split between them. Each sequence holds a block table.
 * A full block is indexed by a hash of its whole token prefix (the chain of its tokens and its
 * predecessors'), so a later sequence with the same prefix attaches the same blocks instead of
 * recomputing them. Blocks are refcounted; unreferenced indexed blocks stay cached and are
 * evicted least-recently-used when a sequence needs room. Storage belongs to the backend.
 */
#ifndef LC_ENGINE_KV_H
#define LC_ENGINE_KV_H

#include "backend/backend.h"
#include "model/model.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct lc_kvc lc_kvc;

typedef struct lc_kvc_stats {
    int n_blocks;        /* pool size */
    int block_tokens;
    int used;            /* referenced by a sequence */
    int cached;          /* unreferenced but indexed (reusable) */
    int free;
    size_t bytes;        /* storage of the whole pool */
} lc_kvc_stats;

/* Creates a cache of at least n_ctx token slots for up to n_seq sequences, stored by be. */
lc_status lc_kvc_create(lc_backend *be, int n_layer, int n_kv_head, int head_dim, lc_type type, int n_ctx,
                        int n_seq, lc_kvc **out);

/* A model split across backends (layers on the CPU, the rest on a GPU) keeps each layer's K/V
 * where the layer runs: part i is the next n_layer layers, stored by be. The blocks, tables and
 * prefix index are shared: a block id means the same tokens in every part. */
#define LC_KVC_MAX_PARTS LC_MAX_STAGES /* one part per stage of the forward */
typedef struct lc_kvc_part {
    lc_backend *be;
    int n_layer;
} lc_kvc_part;
lc_status lc_kvc_create_parts(const lc_kvc_part *parts, int n_parts, int n_kv_head, int head_dim, lc_type type,
                              int n_ctx, int n_seq, lc_kvc **out);
void lc_kvc_free(lc_kvc *c);
/* Part `part`'s storage (its layer 0 is the part's first layer); NULL past the last part. */
lc_kv *lc_kvc_store(lc_kvc *c, int part);
int lc_kvc_block_tokens(const lc_kvc *c);

/* Bytes lc_kvc_create would allocate for this geometry (for fit). */
size_t lc_kvc_bytes(int n_layer, int n_kv_head, int head_dim, lc_type type, int n_ctx);

/* Tokens currently held by sequence seq. */
int lc_kvc_seq_len(const lc_kvc *c, int seq);
/* Makes room for n more tokens of seq (allocating or evicting blocks); LC_ERR_RANGE when the
 * pool is full of referenced blocks. */
lc_status lc_kvc_seq_reserve(lc_kvc *c, int seq, int n);
/* Cache slot of position pos of seq (reserved), and the sequence's block table. */
int32_t lc_kvc_slot(const lc_kvc *c, int seq, int pos);
const int32_t *lc_kvc_table(const lc_kvc *c, int seq);
/* Records that seq's next n tokens (ids) were written; full blocks enter the prefix index. */
void lc_kvc_seq_commit(lc_kvc *c, int seq, const int32_t *ids, int n);
/* Drops positions >= p0 of seq (p0 = 0 releases the sequence). */
lc_status lc_kvc_seq_truncate(lc_kvc *c, int seq, int p0);
/* Attaches to the empty sequence seq the longest run of cached full blocks matching ids[0..n),
 * never all n tokens (the last must be computed for its logits). Returns the tokens attached. */
int lc_kvc_seq_attach_prefix(lc_kvc *c, int seq, const int32_t *ids, int n);
/* Drops every cached, unreferenced block (memory pressure). Returns how many were dropped. */
int lc_kvc_drop_cached(lc_kvc *c);
lc_kvc_stats lc_kvc_get_stats(const lc_kvc *c);

#ifdef __cplusplus
}
#endif

#endif
