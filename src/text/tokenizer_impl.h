/* tokenizer_impl.h — the inside of lc_tok, shared by tokenizer.c (load, special tokens, pieces,
 * streaming detokenizer), tokenizer_spm.c (SentencePiece bigram merging) and tokenizer_bpe.c
 * (pre-tokenizer regexes, byte-level BPE merges). Not part of any API: only these files
 * include it.
 */
#ifndef LC_TOKENIZER_IMPL_H
#define LC_TOKENIZER_IMPL_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "text/tokenizer.h"

#define TOK_MAX_REGEX 8

/* One vocabulary entry. p points into the GGUF mapping (never copied). */
typedef struct tok_entry {
    const char *p;
    uint32_t n;
    float score;
    uint32_t attr;
} tok_entry;

/* Open-addressing slot of the piece -> id table (id < 0: empty). */
typedef struct tok_slot {
    uint32_t hash;
    int32_t id;
} tok_slot;

/* Open-addressing slot of the BPE merge table: key = left id << 32 | right id. */
typedef struct tok_merge {
    uint64_t key; /* UINT64_MAX: empty */
    int32_t rank;
    int32_t result;
} tok_merge;

struct lc_tok {
    lc_tok_kind kind;
    int n_vocab;
    tok_entry *tokens;
    tok_slot *map;
    uint32_t map_mask;
    tok_merge *merges;
    uint64_t merge_mask;
    int merge_shift;
    int n_merges;

    lc_token byte_tok[256]; /* SPM: the <0xXX> token; BPE: the token of the byte's mapped char */
    uint8_t byte_enc[256][2]; /* BPE: UTF-8 of the GPT-2 byte-to-unicode mapping */
    uint8_t byte_enc_len[256];

    lc_token bos, eos, eot, eom, unk, pad, sep;
    lc_token fim_pre, fim_suf, fim_mid, fim_pad, fim_rep, fim_sep;
    bool add_bos, add_eos, add_space_prefix, ignore_merges;

    lc_token *eog; /* sorted */
    int n_eog;
    lc_token *special; /* control / user-defined / unknown tokens, longest text first */
    int n_special;
    int32_t *special_by_byte; /* indexes into special, grouped by the text's first byte */
    int32_t special_start[257]; /* group of byte b: special_by_byte[start[b] .. start[b+1]) */

    char pre_name[64];
    int n_regex;
    pcre2_code *re[TOK_MAX_REGEX];
    pcre2_general_context *gctx;
};

/* A growable id vector (the encoder's output). */
typedef struct tok_vec {
    lc_token *v;
    size_t n, cap;
} tok_vec;

bool tok_vec_push(tok_vec *o, lc_token id);

uint64_t tok_hash(const char *p, size_t n);
lc_token tok_lookup(const lc_tok *t, const char *p, size_t n);

/* SPM: tokenizes one fragment (already escaped: ' ' -> U+2581, prefix added) into o. */
lc_status tok_spm_encode(const lc_tok *t, const char *text, size_t len, tok_vec *o);

/* BPE: compiles the pre-tokenizer regexes named by t->pre_name (sets ignore_merges and the
 * add_bos default as llama.cpp does); LC_ERR_UNSUPPORTED for unknown names. */
lc_status tok_bpe_init(lc_tok *t, bool *add_bos_default);
/* BPE: builds byte tables and the merge-rank table from tokenizer.ggml.merges. */
lc_status tok_bpe_load_merges(lc_tok *t, const lc_gguf_value *merges);
/* BPE: splits one fragment with the regexes and merges each word into o. */
lc_status tok_bpe_encode(const lc_tok *t, const char *text, size_t len, tok_vec *o);
void tok_bpe_free(lc_tok *t);
/* BPE: the raw bytes of a byte-level token text (GPT-2 mapping undone) into buf; returns the
 * full length. */
int tok_bpe_decode(const char *p, size_t n, char *buf, int cap);

#endif /* LC_TOKENIZER_IMPL_H */
