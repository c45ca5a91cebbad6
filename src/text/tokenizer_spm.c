/* tokenizer_spm.c — SentencePiece-style BPE for "llama" vocabularies, as llama.cpp does it: the
 * fragment (spaces already escaped to U+2581) starts as one symbol per UTF-8 character; the
 * adjacent pair whose concatenation is a token with the highest score is merged first (ties:
 * leftmost), until no pair forms a token. Symbols that are not tokens become <0xXX> byte tokens.
 *
 * Not here: the space prefix and escaping (tokenizer.c). No pre-splitting: the whole fragment is
 * one sequence, so the heap keeps this O(n log n) on long inputs.
 */
#include "text/tokenizer_impl.h"

#include <string.h>

typedef struct ssym {
    int32_t prev, next;
    uint32_t off, n; /* n == 0: merged away */
} ssym;

typedef struct sbigram {
    float score;
    int32_t left, right;
    uint32_t size;
} sbigram;

typedef struct spm_work {
    ssym *sym;
    size_t sym_cap;
    sbigram *heap;
    size_t heap_n, heap_cap;
} spm_work;

/* Max-heap order: higher score first, then the leftmost pair. */
static inline bool big_before(const sbigram *a, const sbigram *b) {
    return a->score > b->score || (a->score == b->score && a->left < b->left);
}

static bool heap_push(spm_work *w, sbigram b) {
    if (!lc_grow((void **)&w->heap, sizeof(sbigram), &w->heap_cap, w->heap_n + 1)) return false;
    size_t i = w->heap_n++;
    while (i > 0) {
        size_t up = (i - 1) / 2;
        if (!big_before(&b, &w->heap[up])) break;
        w->heap[i] = w->heap[up];
        i = up;
    }
    w->heap[i] = b;
    return true;
}

static sbigram heap_pop(spm_work *w) {
    sbigram top = w->heap[0], last = w->heap[--w->heap_n];
    size_t i = 0, n = w->heap_n;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && big_before(&w->heap[c + 1], &w->heap[c])) c++;
        if (!big_before(&w->heap[c], &last)) break;
        w->heap[i] = w->heap[c];
        i = c;
    }
    if (n) w->heap[i] = last;
    return top;
}

static bool try_bigram(const lc_tok *t, spm_work *w, const char *text, int32_t l, int32_t r) {
    if (l < 0 || r < 0) return true;
    uint32_t size = w->sym[l].n + w->sym[r].n;
    lc_token id = tok_lookup(t, text + w->sym[l].off, size);
    if (id < 0) return true;
    sbigram b = {t->tokens[id].score, l, r, size};
    return heap_push(w, b);
}

/* Emits one final symbol: its token, or its bytes as <0xXX> tokens (unknown when absent). A
 * merged symbol is always a token (pairs are only queued when they are), so only single
 * characters can fall back to bytes. */
static bool emit(const lc_tok *t, const char *text, const ssym *s, tok_vec *o) {
    lc_token id = tok_lookup(t, text + s->off, s->n);
    if (id >= 0) return tok_vec_push(o, id);
    for (uint32_t j = 0; j < s->n; j++) {
        lc_token b = t->byte_tok[(unsigned char)text[s->off + j]];
        if (b < 0) b = t->unk;
        if (b >= 0 && !tok_vec_push(o, b)) return false;
    }
    return true;
}

lc_status tok_spm_encode(const lc_tok *t, const char *text, size_t len, tok_vec *o) {
    if (len == 0) return LC_OK;
    if (len > 0x7fffffff) return lc_fail(LC_ERR_RANGE, "text too long (%zu bytes)", len);
    spm_work w = {0};
    lc_status st = LC_ERR_OOM;
    if (!lc_grow((void **)&w.sym, sizeof(ssym), &w.sym_cap, len)) goto done;
    int32_t n = 0;
    for (size_t off = 0; off < len;) {
        unsigned char c = (unsigned char)text[off];
        size_t k = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
        if (k > len - off) k = len - off;
        w.sym[n].off = (uint32_t)off;
        w.sym[n].n = (uint32_t)k;
        w.sym[n].prev = n - 1;
        off += k;
        w.sym[n].next = off == len ? -1 : n + 1;
        n++;
    }
    for (int32_t i = 1; i < n; i++)
        if (!try_bigram(t, &w, text, i - 1, i)) goto done;
    while (w.heap_n) {
        sbigram b = heap_pop(&w);
        ssym *L = &w.sym[b.left], *R = &w.sym[b.right];
        if (L->n == 0 || R->n == 0 || L->n + R->n != b.size) continue; /* stale */
        L->n += R->n;
        R->n = 0;
        L->next = R->next;
        if (R->next >= 0) w.sym[R->next].prev = b.left;
        if (!try_bigram(t, &w, text, L->prev, b.left) || !try_bigram(t, &w, text, b.left, L->next))
            goto done;
    }
    for (int32_t i = 0; i >= 0; i = w.sym[i].next)
        if (!emit(t, text, &w.sym[i], o)) goto done;
    st = LC_OK;
done:
    lc_free(w.sym);
    lc_free(w.heap);
    return st == LC_OK ? LC_OK : lc_fail(st, "out of memory tokenizing %zu bytes", len);
}
