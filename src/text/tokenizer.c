/* tokenizer.c — the lc_tok object: loading the tokenizer.* GGUF metadata (token table, piece ->
 * id hash, special ids and attributes with llama.cpp's name-based fix-ups, end-of-generation
 * set), special-token parsing, the encode driver (BOS/EOS, SPM space prefix), token pieces and
 * the streaming detokenizer.
 *
 * Not here: the merge algorithms (tokenizer_spm.c, tokenizer_bpe.c). Entry points: lc_tok_load,
 * lc_tok_encode, lc_tok_piece, lc_detok_feed. Token strings are borrowed from the GGUF mapping.
 */
#include "text/tokenizer_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ==== Small helpers ==== */

bool tok_vec_push(tok_vec *o, lc_token id) {
    if (o->n == o->cap && !lc_grow((void **)&o->v, sizeof(lc_token), &o->cap, o->n + 1)) return false;
    o->v[o->n++] = id;
    return true;
}

/* A fast 64-bit hash of a short byte string (8 bytes per step, multiply-xorshift mixing). */
uint64_t tok_hash(const char *p, size_t n) {
    uint64_t h = 0x9E3779B97F4A7C15ull ^ (n * 0xff51afd7ed558ccdull);
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = (h ^ w) * 0xff51afd7ed558ccdull;
        h ^= h >> 29;
        p += 8;
        n -= 8;
    }
    uint64_t w = 0;
    memcpy(&w, p, n);
    h = (h ^ w) * 0xc4ceb9fe1a85ec53ull;
    return h ^ (h >> 32);
}

lc_token tok_lookup(const lc_tok *t, const char *p, size_t n) {
    uint64_t h = tok_hash(p, n);
    uint32_t tag = (uint32_t)(h >> 32), i = (uint32_t)h & t->map_mask;
    for (;;) {
        const tok_slot *s = &t->map[i];
        if (s->id < 0) return LC_TOKEN_NULL;
        if (s->hash == tag) {
            const tok_entry *e = &t->tokens[s->id];
            if (e->n == n && !memcmp(e->p, p, n)) return s->id;
        }
        i = (i + 1) & t->map_mask;
    }
}

/* Returns the offset of the first byte that does not start or continue a valid UTF-8 sequence
 * (overlong forms, surrogates and code points past U+10FFFF are invalid), or len. */
static size_t utf8_invalid_at(const unsigned char *s, size_t len) {
    size_t i = 0;
    while (i < len) {
        unsigned char c = s[i];
        if (c < 0x80) { i++; continue; }
        size_t k;
        uint32_t cp, min;
        if ((c & 0xE0) == 0xC0) { k = 2; cp = c & 0x1F; min = 0x80; }
        else if ((c & 0xF0) == 0xE0) { k = 3; cp = c & 0x0F; min = 0x800; }
        else if ((c & 0xF8) == 0xF0) { k = 4; cp = c & 0x07; min = 0x10000; }
        else return i;
        if (len - i < k) return i;
        for (size_t j = 1; j < k; j++) {
            if ((s[i + j] & 0xC0) != 0x80) return i;
            cp = cp << 6 | (s[i + j] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return i;
        i += k;
    }
    return len;
}

/* ==== Loading ==== */

static lc_token get_id(const lc_gguf *g, const char *key, lc_token dflt, int n_vocab) {
    uint64_t v;
    if (dflt >= n_vocab) dflt = LC_TOKEN_NULL;
    if (!lc_gguf_get_u64(g, key, &v)) return dflt;
    if (v >= (uint64_t)n_vocab) {
        lc_log(LC_LOG_WARN, "tokenizer: %s = %llu is out of the vocabulary; using %d", key,
               (unsigned long long)v, dflt);
        return dflt;
    }
    return (lc_token)v;
}

/* Special roles llama.cpp recognises by token text when the metadata leaves them unset; every
 * token found this way is also marked CONTROL. The first name present wins. */
enum { R_EOT, R_EOM, R_FIM_PRE, R_FIM_SUF, R_FIM_MID, R_FIM_PAD, R_FIM_REP, R_FIM_SEP, R_COUNT };
static const char *const ROLE_NAMES[R_COUNT][12] = {
    [R_EOT] = {"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>",
               "<|end_of_text|>", "<EOT>", "_<EOT>", "[EOT]",
               "<\xef\xbd\x9c" "end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>",
               "<end_of_utterance>"},
    [R_EOM] = {"<|eom_id|>"},
    [R_FIM_PRE] = {"<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>",
                   "<\xef\xbd\x9c" "fim\xe2\x96\x81" "begin\xef\xbd\x9c>", "<PRE>",
                   "\xe2\x96\x81<PRE>", "<|code_prefix|>", "<|prefix|>"},
    [R_FIM_SUF] = {"<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>",
                   "<\xef\xbd\x9c" "fim\xe2\x96\x81hole\xef\xbd\x9c>", "<SUF>",
                   "\xe2\x96\x81<SUF>", "<|code_suffix|>", "<|suffix|>"},
    [R_FIM_MID] = {"<|fim_middle|>", "<fim-middle>", "<fim_middle>",
                   "<\xef\xbd\x9c" "fim\xe2\x96\x81" "end\xef\xbd\x9c>", "<MID>",
                   "\xe2\x96\x81<MID>", "<|code_middle|>", "<|middle|>"},
    [R_FIM_PAD] = {"<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]"},
    [R_FIM_REP] = {"<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>"},
    [R_FIM_SEP] = {"<|file_sep|>"},
};

/* Token texts that end generation (llama.cpp's list); each is also marked CONTROL. */
static const char *const EOG_NAMES[] = {
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<|flush|>", "<|calls|>",
    "<end_of_turn>", "<|endoftext|>", "</s>", "<|eom_id|>", "<EOT>", "_<EOT>", "[EOT]", "[EOS]",
    "<|end_of_text|>", "<end_of_utterance>", "<eos>", "<turn|>", "<|tool_response>",
    "<\xef\xbd\x9c" "end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>", "[e~[",
};

static int cmp_token(const void *a, const void *b) {
    lc_token x = *(const lc_token *)a, y = *(const lc_token *)b;
    return (x > y) - (x < y);
}

static bool eog_add(lc_tok *t, lc_token id, int cap) {
    if (id < 0) return true;
    for (int i = 0; i < t->n_eog; i++)
        if (t->eog[i] == id) return true;
    if (t->n_eog >= cap) return false;
    t->eog[t->n_eog++] = id;
    return true;
}

/* Sorts the special list longest first, ties by id (a bottom-up merge sort: qsort would need
 * the token table through global state to compare lengths). */
static bool sort_special(lc_tok *t) {
    int n = t->n_special;
    lc_token *tmp = lc_malloc(sizeof(lc_token) * (size_t)(n ? n : 1));
    if (!tmp) return false;
    for (int width = 1; width < n; width *= 2) {
        for (int lo = 0; lo < n; lo += 2 * width) {
            int mid = LC_MIN(lo + width, n), hi = LC_MIN(lo + 2 * width, n);
            int i = lo, j = mid, k = lo;
            while (i < mid && j < hi) {
                lc_token x = t->special[i], y = t->special[j];
                uint32_t nx = t->tokens[x].n, ny = t->tokens[y].n;
                bool take_y = ny > nx || (ny == nx && y < x);
                tmp[k++] = take_y ? t->special[j++] : t->special[i++];
            }
            while (i < mid) tmp[k++] = t->special[i++];
            while (j < hi) tmp[k++] = t->special[j++];
        }
        memcpy(t->special, tmp, sizeof(lc_token) * (size_t)n);
    }
    lc_free(tmp);
    return true;
}

static lc_status build_map(lc_tok *t) {
    uint32_t cap = 16;
    while (cap < (uint32_t)t->n_vocab * 2u) cap *= 2;
    t->map = lc_malloc(sizeof(tok_slot) * cap);
    if (!t->map) return LC_ERR_OOM;
    t->map_mask = cap - 1;
    for (uint32_t i = 0; i < cap; i++) t->map[i].id = -1;
    for (int id = 0; id < t->n_vocab; id++) {
        const tok_entry *e = &t->tokens[id];
        if (e->n == 0) continue; /* an empty piece can never be produced or looked up */
        uint64_t h = tok_hash(e->p, e->n);
        uint32_t tag = (uint32_t)(h >> 32), i = (uint32_t)h & t->map_mask;
        for (;;) {
            tok_slot *s = &t->map[i];
            if (s->id < 0) { s->hash = tag; s->id = id; break; }
            const tok_entry *o = &t->tokens[s->id];
            if (s->hash == tag && o->n == e->n && !memcmp(o->p, e->p, e->n)) {
                s->id = id; /* a repeated string maps to its last id, as in llama.cpp */
                break;
            }
            i = (i + 1) & t->map_mask;
        }
    }
    return LC_OK;
}

static void set_attr(lc_tok *t, const char *name, uint32_t add, uint32_t clear) {
    lc_token id = lc_tok_find(t, name);
    if (id >= 0) t->tokens[id].attr = (t->tokens[id].attr & ~clear) | add;
}

/* Roles, EOG set and attribute fix-ups that llama.cpp derives from token names. */
static lc_status derive_specials(lc_tok *t, const lc_gguf *g) {
    lc_token *role[R_COUNT] = {&t->eot, &t->eom, &t->fim_pre, &t->fim_suf,
                               &t->fim_mid, &t->fim_pad, &t->fim_rep, &t->fim_sep};
    for (int r = 0; r < R_COUNT; r++) {
        for (int k = 0; k < 12 && ROLE_NAMES[r][k]; k++) {
            lc_token id = lc_tok_find(t, ROLE_NAMES[r][k]);
            if (id < 0) continue;
            if (*role[r] < 0) *role[r] = id;
            if (*role[r] == id) t->tokens[id].attr |= LC_TOK_ATTR_CONTROL;
        }
    }
    for (int id = 0; id < t->n_vocab; id++) { /* control tokens named "...unused..." */
        tok_entry *e = &t->tokens[id];
        if ((e->attr & LC_TOK_ATTR_CONTROL) && e->n >= 6 && memmem(e->p, e->n, "unused", 6))
            e->attr |= LC_TOK_ATTR_UNUSED;
    }
    int cap = (int)LC_ARRAY_LEN(EOG_NAMES) + 8;
    t->eog = lc_malloc(sizeof(lc_token) * (size_t)cap);
    if (!t->eog) return LC_ERR_OOM;
    eog_add(t, t->fim_pad, cap);
    eog_add(t, t->fim_rep, cap);
    eog_add(t, t->fim_sep, cap);
    for (size_t k = 0; k < LC_ARRAY_LEN(EOG_NAMES); k++) {
        lc_token id = lc_tok_find(t, EOG_NAMES[k]);
        if (id < 0) continue;
        eog_add(t, id, cap);
        t->tokens[id].attr |= LC_TOK_ATTR_CONTROL;
    }
    /* gpt-oss: these structural tokens are rendered, so they are user-defined */
    static const char *const shown[] = {"<|channel|>", "<|message|>", "<|start|>", "<|constrain|>"};
    for (size_t k = 0; k < LC_ARRAY_LEN(shown); k++) {
        lc_token id = lc_tok_find(t, shown[k]);
        if (id >= 0) t->tokens[id].attr = LC_TOK_ATTR_USER_DEFINED;
    }
    eog_add(t, t->eos, cap);
    eog_add(t, t->eot, cap);
    eog_add(t, t->eom, cap);
    /* o200k_harmony: with <|return|> and <|call|> present, <|end|> only ends a message */
    lc_token end = lc_tok_find(t, "<|end|>");
    if (end >= 0 && lc_tok_find(t, "<|return|>") >= 0 && lc_tok_find(t, "<|call|>") >= 0) {
        for (int i = 0; i < t->n_eog; i++)
            if (t->eog[i] == end) t->eog[i] = t->eog[--t->n_eog];
    }
    qsort(t->eog, (size_t)t->n_eog, sizeof(lc_token), cmp_token);

    /* special-token cache: what the parser looks for in the input */
    t->special = lc_malloc(sizeof(lc_token) * (size_t)(t->n_vocab ? t->n_vocab : 1));
    if (!t->special) return LC_ERR_OOM;
    for (int id = 0; id < t->n_vocab; id++)
        if ((t->tokens[id].attr &
             (LC_TOK_ATTR_CONTROL | LC_TOK_ATTR_USER_DEFINED | LC_TOK_ATTR_UNKNOWN)) &&
            t->tokens[id].n > 0)
            t->special[t->n_special++] = id;
    lc_token *fit = lc_realloc(t->special, sizeof(lc_token) * (size_t)(t->n_special ? t->n_special : 1));
    if (fit) t->special = fit;
    if (!sort_special(t)) return LC_ERR_OOM;

    /* Phi-3 (by general.name, as llama.cpp does): special tokens eat whitespace on the right */
    char name[128] = "";
    lc_gguf_get_str(g, "general.name", name, sizeof name);
    for (char *c = name; *c; c++)
        if (*c >= 'A' && *c <= 'Z') *c = (char)(*c - 'A' + 'a');
    if (strstr(name, "phi-3") || strstr(name, "phi3")) {
        for (int i = 0; i < t->n_special; i++) t->tokens[t->special[i]].attr |= LC_TOK_ATTR_RSTRIP;
        set_attr(t, "</s>", LC_TOK_ATTR_RSTRIP, 0);
        set_attr(t, "<unk>", 0, LC_TOK_ATTR_RSTRIP);
        set_attr(t, "<s>", 0, LC_TOK_ATTR_RSTRIP);
        set_attr(t, "<|endoftext|>", 0, LC_TOK_ATTR_RSTRIP);
    }

    /* group the special list by first byte for the parser's scan */
    t->special_by_byte = lc_malloc(sizeof(int32_t) * (size_t)(t->n_special ? t->n_special : 1));
    if (!t->special_by_byte) return LC_ERR_OOM;
    int32_t count[256] = {0};
    for (int i = 0; i < t->n_special; i++) count[(unsigned char)t->tokens[t->special[i]].p[0]]++;
    t->special_start[0] = 0;
    for (int b = 0; b < 256; b++) t->special_start[b + 1] = t->special_start[b] + count[b];
    int32_t fill[256];
    memcpy(fill, t->special_start, sizeof fill);
    for (int i = 0; i < t->n_special; i++)
        t->special_by_byte[fill[(unsigned char)t->tokens[t->special[i]].p[0]]++] = i;
    return LC_OK;
}

/* Builds the tokenizer (see tokenizer.h). Mirrors llama.cpp's defaults: SPM adds BOS and a
 * space prefix; BPE adds BOS only for the pre-tokenizers that say so; metadata overrides. */
lc_status lc_tok_load(const lc_gguf *g, lc_tok **out) {
    *out = NULL;
    char model[32] = "";
    if (!lc_gguf_get_str(g, "tokenizer.ggml.model", model, sizeof model))
        return lc_fail(LC_ERR_FORMAT, "no tokenizer.ggml.model in the GGUF metadata");
    lc_tok_kind kind;
    if (!strcmp(model, "llama")) kind = LC_TOK_SPM;
    else if (!strcmp(model, "gpt2")) kind = LC_TOK_BPE;
    else {
        static const char *const KNOWN[][2] = {{"bert", "WordPiece"}, {"t5", "Unigram"},
                                               {"gemma4", "SentencePiece-style BPE on raw UTF-8"},
                                               {"rwkv", "RWKV trie"}, {"plamo2", "PLaMo-2"}};
        const char *what = "unknown algorithm";
        for (size_t i = 0; i < LC_ARRAY_LEN(KNOWN); i++)
            if (!strcmp(model, KNOWN[i][0])) what = KNOWN[i][1];
        return lc_fail(LC_ERR_UNSUPPORTED,
                       "tokenizer model '%s' (%s) is not implemented; only 'llama' (SPM) and "
                       "'gpt2' (byte-level BPE) are", model, what);
    }
    const lc_gguf_value *toks = lc_gguf_get(g, "tokenizer.ggml.tokens");
    if (!toks || toks->type != LC_GGUF_ARRAY || toks->arr.elem != LC_GGUF_STRING)
        return lc_fail(LC_ERR_FORMAT, "tokenizer.ggml.tokens is missing or not a string array");
    if (toks->arr.n == 0 || toks->arr.n > 0x7fffffff)
        return lc_fail(LC_ERR_FORMAT, "tokenizer.ggml.tokens has %llu entries",
                       (unsigned long long)toks->arr.n);
    int n = (int)toks->arr.n;
    const lc_gguf_value *scores = lc_gguf_get(g, "tokenizer.ggml.scores");
    const lc_gguf_value *types = lc_gguf_get(g, "tokenizer.ggml.token_type");
    if (scores && (scores->type != LC_GGUF_ARRAY ||
                   (scores->arr.elem != LC_GGUF_F32 && scores->arr.elem != LC_GGUF_I32) ||
                   scores->arr.n < (uint64_t)n))
        return lc_fail(LC_ERR_FORMAT, "tokenizer.ggml.scores is not a float array of %d", n);
    if (types && (types->type != LC_GGUF_ARRAY || types->arr.elem != LC_GGUF_I32 ||
                  types->arr.n < (uint64_t)n))
        return lc_fail(LC_ERR_FORMAT, "tokenizer.ggml.token_type is not an int32 array of %d", n);

    lc_tok *t = lc_calloc(1, sizeof *t);
    if (!t) return LC_ERR_OOM;
    lc_status st = LC_ERR_OOM;
    t->kind = kind;
    t->n_vocab = n;
    t->tokens = lc_malloc(sizeof(tok_entry) * (size_t)n);
    if (!t->tokens) goto fail;
    for (int i = 0; i < n; i++) {
        lc_gguf_str s = lc_gguf_arr_str(toks, (uint64_t)i);
        tok_entry *e = &t->tokens[i];
        if (s.n > 0xffffffffu) { st = lc_fail(LC_ERR_FORMAT, "token %d is too long", i); goto fail; }
        e->p = s.p;
        e->n = (uint32_t)s.n;
        e->score = scores ? (float)lc_gguf_arr_f64(scores, (uint64_t)i) : 0.0f;
        int64_t ty = types ? lc_gguf_arr_i64(types, (uint64_t)i) : 1;
        static const uint32_t ATTR_OF_TYPE[7] = {0, LC_TOK_ATTR_NORMAL, LC_TOK_ATTR_UNKNOWN,
                                                 LC_TOK_ATTR_CONTROL, LC_TOK_ATTR_USER_DEFINED,
                                                 LC_TOK_ATTR_UNUSED, LC_TOK_ATTR_BYTE};
        e->attr = ty >= 0 && ty < 7 ? ATTR_OF_TYPE[ty] : 0;
    }
    if ((st = build_map(t)) != LC_OK) goto fail;

    bool add_bos = kind == LC_TOK_SPM;
    strcpy(t->pre_name, "default");
    lc_gguf_get_str(g, "tokenizer.ggml.pre", t->pre_name, sizeof t->pre_name);
    if (kind == LC_TOK_SPM) {
        t->bos = 1, t->eos = 2, t->unk = 0;
        t->add_space_prefix = true;
        for (int b = 0; b < 256; b++) {
            char hex[8];
            snprintf(hex, sizeof hex, "<0x%02X>", b);
            t->byte_tok[b] = lc_tok_find(t, hex);
            if (t->byte_tok[b] < 0) {
                char c = (char)b;
                t->byte_tok[b] = tok_lookup(t, &c, 1);
            }
        }
    } else {
        t->bos = 11, t->eos = 11, t->unk = LC_TOKEN_NULL;
        if ((st = tok_bpe_init(t, &add_bos)) != LC_OK) goto fail;
        const lc_gguf_value *merges = lc_gguf_get(g, "tokenizer.ggml.merges");
        if (!merges || merges->type != LC_GGUF_ARRAY || merges->arr.elem != LC_GGUF_STRING) {
            st = lc_fail(LC_ERR_FORMAT, "BPE vocabulary without tokenizer.ggml.merges");
            goto fail;
        }
        if ((st = tok_bpe_load_merges(t, merges)) != LC_OK) goto fail;
    }
    t->bos = get_id(g, "tokenizer.ggml.bos_token_id", t->bos, n);
    t->eos = get_id(g, "tokenizer.ggml.eos_token_id", t->eos, n);
    t->unk = get_id(g, "tokenizer.ggml.unknown_token_id", t->unk, n);
    t->eot = get_id(g, "tokenizer.ggml.eot_token_id", LC_TOKEN_NULL, n);
    t->eom = get_id(g, "tokenizer.ggml.eom_token_id", LC_TOKEN_NULL, n);
    t->sep = get_id(g, "tokenizer.ggml.seperator_token_id", LC_TOKEN_NULL, n);
    t->pad = get_id(g, "tokenizer.ggml.padding_token_id", LC_TOKEN_NULL, n);
    t->fim_pre = get_id(g, "tokenizer.ggml.fim_pre_token_id", LC_TOKEN_NULL, n);
    t->fim_suf = get_id(g, "tokenizer.ggml.fim_suf_token_id", LC_TOKEN_NULL, n);
    t->fim_mid = get_id(g, "tokenizer.ggml.fim_mid_token_id", LC_TOKEN_NULL, n);
    t->fim_pad = get_id(g, "tokenizer.ggml.fim_pad_token_id", LC_TOKEN_NULL, n);
    t->fim_rep = get_id(g, "tokenizer.ggml.fim_rep_token_id", LC_TOKEN_NULL, n);
    t->fim_sep = get_id(g, "tokenizer.ggml.fim_sep_token_id", LC_TOKEN_NULL, n);
    t->add_bos = add_bos;
    t->add_eos = false;
    lc_gguf_get_bool(g, "tokenizer.ggml.add_bos_token", &t->add_bos);
    lc_gguf_get_bool(g, "tokenizer.ggml.add_eos_token", &t->add_eos);
    lc_gguf_get_bool(g, "tokenizer.ggml.add_space_prefix", &t->add_space_prefix);
    if ((st = derive_specials(t, g)) != LC_OK) goto fail;
    *out = t;
    return LC_OK;
fail:
    if (st == LC_ERR_OOM) lc_fail(LC_ERR_OOM, "out of memory loading the tokenizer");
    lc_tok_free(t);
    return st;
}

void lc_tok_free(lc_tok *t) {
    if (!t) return;
    tok_bpe_free(t);
    lc_free(t->tokens);
    lc_free(t->map);
    lc_free(t->merges);
    lc_free(t->eog);
    lc_free(t->special);
    lc_free(t->special_by_byte);
    lc_free(t);
}

/* ==== Special-token parsing ==== */

typedef struct frag {
    size_t off, len;
    lc_token tok; /* LC_TOKEN_NULL: text */
} frag;

typedef struct frag_list {
    frag *v;
    size_t n, cap;
} frag_list;

static bool frag_push(frag_list *l, size_t off, size_t len, lc_token tok) {
    if (tok < 0 && len == 0) return true;
    if (!lc_grow((void **)&l->v, sizeof(frag), &l->cap, l->n + 1)) return false;
    l->v[l->n++] = (frag){off, len, tok};
    return true;
}

static inline bool is_space(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

static bool special_eligible(const lc_tok *t, lc_token id, bool parse_special) {
    return parse_special || !(t->tokens[id].attr & (LC_TOK_ATTR_CONTROL | LC_TOK_ATTR_UNKNOWN));
}

/* Splits text into text and special-token fragments exactly as llama.cpp does: special tokens
 * are taken longest first, each one splitting every remaining text fragment at each of its
 * non-overlapping occurrences (LSTRIP/RSTRIP tokens eat neighbouring whitespace). Without
 * parse_special only user-defined tokens count. A first scan finds which special tokens occur
 * at all, so the per-token passes run only for those (usually none). */
static lc_status partition(const lc_tok *t, const char *text, size_t len, bool parse_special,
                           frag_list *out) {
    frag_list cur = {0}, nxt = {0};
    uint8_t *present = NULL;
    lc_status st = LC_ERR_OOM;
    if (!frag_push(&cur, 0, len, LC_TOKEN_NULL)) goto done;
    if (t->n_special > 0 && len > 0) {
        present = lc_calloc((size_t)t->n_special, 1);
        if (!present) goto done;
        int any = 0;
        for (size_t i = 0; i < len; i++) {
            unsigned char b = (unsigned char)text[i];
            for (int32_t k = t->special_start[b]; k < t->special_start[b + 1]; k++) {
                int32_t si = t->special_by_byte[k];
                const tok_entry *e = &t->tokens[t->special[si]];
                if (!present[si] && e->n <= len - i && !memcmp(text + i, e->p, e->n) &&
                    special_eligible(t, t->special[si], parse_special)) {
                    present[si] = 1;
                    any = 1;
                }
            }
        }
        for (int si = 0; any && si < t->n_special; si++) {
            if (!present[si]) continue;
            lc_token id = t->special[si];
            const tok_entry *e = &t->tokens[id];
            nxt.n = 0;
            for (size_t f = 0; f < cur.n; f++) {
                frag fr = cur.v[f];
                if (fr.tok >= 0) {
                    if (!frag_push(&nxt, fr.off, fr.len, fr.tok)) goto done;
                    continue;
                }
                size_t off = fr.off, l = fr.len;
                for (;;) {
                    const char *m = l >= e->n ? memmem(text + off, l, e->p, e->n) : NULL;
                    if (!m) {
                        if (!frag_push(&nxt, off, l, LC_TOKEN_NULL)) goto done;
                        break;
                    }
                    size_t mo = (size_t)(m - text), left = mo - off;
                    if (e->attr & LC_TOK_ATTR_LSTRIP)
                        while (left > 0 && is_space(text[off + left - 1])) left--;
                    if (!frag_push(&nxt, off, left, LC_TOKEN_NULL) || !frag_push(&nxt, mo, e->n, id))
                        goto done;
                    size_t ro = mo + e->n, rl = off + l - ro;
                    if (e->attr & LC_TOK_ATTR_RSTRIP)
                        while (rl > 0 && is_space(text[ro])) ro++, rl--;
                    if (rl == 0) break;
                    off = ro;
                    l = rl;
                }
            }
            frag_list tmp = cur;
            cur = nxt;
            nxt = tmp;
        }
    }
    *out = cur;
    cur.v = NULL;
    st = LC_OK;
done:
    lc_free(cur.v);
    lc_free(nxt.v);
    lc_free(present);
    return st == LC_OK ? LC_OK : lc_fail(st, "out of memory parsing special tokens");
}

/* ==== Encoding ==== */

lc_status lc_tok_encode(const lc_tok *t, const char *text, size_t len, bool add_special,
                        bool parse_special, lc_token **ids, int *n) {
    *ids = NULL;
    *n = 0;
    if (!text && len) return lc_fail(LC_ERR_INVALID, "tokenize: NULL text");
    size_t bad = utf8_invalid_at((const unsigned char *)text, len);
    if (bad < len)
        return lc_fail(LC_ERR_INVALID, "tokenize: invalid UTF-8 at byte %zu (0x%02x)", bad,
                       (unsigned char)text[bad]);
    frag_list fl = {0};
    tok_vec o = {0};
    char *esc = NULL;
    size_t esc_cap = 0;
    lc_status st = partition(t, text, len, parse_special, &fl);
    if (st != LC_OK) return st;
    if (add_special && t->add_bos && t->bos >= 0 && !tok_vec_push(&o, t->bos)) goto oom;
    bool prev_special = true; /* SPM: the first text fragment gets the space prefix */
    for (size_t f = 0; f < fl.n && st == LC_OK; f++) {
        const frag *fr = &fl.v[f];
        if (fr->tok >= 0) {
            if (!tok_vec_push(&o, fr->tok)) goto oom;
            prev_special = true;
            continue;
        }
        if (t->kind == LC_TOK_BPE) {
            st = tok_bpe_encode(t, text + fr->off, fr->len, &o);
            continue;
        }
        /* SPM: optional leading space, then every ' ' becomes U+2581 */
        if (!lc_grow((void **)&esc, 1, &esc_cap, 3 * fr->len + 3)) goto oom;
        size_t k = 0;
        const char *s = text + fr->off;
        if (t->add_space_prefix && prev_special) { memcpy(esc, "\xe2\x96\x81", 3); k = 3; }
        for (size_t i = 0; i < fr->len; i++) {
            if (s[i] == ' ') { memcpy(esc + k, "\xe2\x96\x81", 3); k += 3; }
            else esc[k++] = s[i];
        }
        st = tok_spm_encode(t, esc, k, &o);
        prev_special = false;
    }
    if (st == LC_OK && add_special && t->add_eos && t->eos >= 0 && !tok_vec_push(&o, t->eos)) goto oom;
    lc_free(fl.v);
    lc_free(esc);
    if (st != LC_OK || o.n > 0x7fffffff) {
        lc_free(o.v);
        return st != LC_OK ? st : lc_fail(LC_ERR_RANGE, "tokenize: too many tokens");
    }
    *ids = o.v;
    *n = (int)o.n;
    return LC_OK;
oom:
    lc_free(fl.v);
    lc_free(esc);
    lc_free(o.v);
    return lc_fail(LC_ERR_OOM, "tokenize: out of memory");
}

int lc_tok_encode_into(const lc_tok *t, const char *text, size_t len, bool add_special,
                       bool parse_special, lc_token *out, int cap) {
    lc_token *ids;
    int n;
    if (lc_tok_encode(t, text, len, add_special, parse_special, &ids, &n) != LC_OK) return -1;
    if (out && cap > 0) memcpy(out, ids, sizeof(lc_token) * (size_t)LC_MIN(n, cap));
    lc_free(ids);
    return n;
}

/* ==== Pieces and queries ==== */

static int copy_out(char *buf, int cap, const char *p, size_t n) {
    if (cap > 0) memcpy(buf, p, LC_MIN((size_t)cap, n));
    return (int)n;
}

int lc_tok_piece(const lc_tok *t, lc_token id, char *buf, int cap) {
    if (id < 0 || id >= t->n_vocab) return -1;
    const tok_entry *e = &t->tokens[id];
    if (e->attr & (LC_TOK_ATTR_CONTROL | LC_TOK_ATTR_USER_DEFINED | LC_TOK_ATTR_UNKNOWN))
        return copy_out(buf, cap, e->p, e->n);
    if (e->attr & LC_TOK_ATTR_NORMAL) {
        if (t->kind == LC_TOK_BPE) return tok_bpe_decode(e->p, e->n, buf, cap);
        int len = 0; /* SPM: U+2581 -> ' ' */
        for (uint32_t i = 0; i < e->n;) {
            if (e->n - i >= 3 && !memcmp(e->p + i, "\xe2\x96\x81", 3)) {
                if (len < cap) buf[len] = ' ';
                len++;
                i += 3;
            } else {
                if (len < cap) buf[len] = e->p[i];
                len++;
                i++;
            }
        }
        return len;
    }
    if (e->attr & LC_TOK_ATTR_BYTE) {
        if (e->n == 6 && !memcmp(e->p, "<0x", 3) && e->p[5] == '>') {
            char hex[3] = {e->p[3], e->p[4], 0};
            char byte = (char)strtol(hex, NULL, 16);
            return copy_out(buf, cap, &byte, 1);
        }
        return copy_out(buf, cap, e->p, e->n);
    }
    return 0; /* unused / undefined tokens stand for nothing */
}

const char *lc_tok_text(const lc_tok *t, lc_token id, size_t *len) {
    if (id < 0 || id >= t->n_vocab) return NULL;
    if (len) *len = t->tokens[id].n;
    return t->tokens[id].p;
}

lc_token lc_tok_find_n(const lc_tok *t, const char *piece, size_t len) {
    return tok_lookup(t, piece, len);
}

lc_token lc_tok_find(const lc_tok *t, const char *piece) {
    return tok_lookup(t, piece, strlen(piece));
}

int lc_tok_n_vocab(const lc_tok *t) { return t->n_vocab; }
lc_tok_kind lc_tok_get_kind(const lc_tok *t) { return t->kind; }
const char *lc_tok_pre_name(const lc_tok *t) { return t->pre_name; }
unsigned lc_tok_attr(const lc_tok *t, lc_token id) {
    return id >= 0 && id < t->n_vocab ? t->tokens[id].attr : 0;
}

bool lc_tok_is_eog(const lc_tok *t, lc_token id) {
    int lo = 0, hi = t->n_eog;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (t->eog[mid] == id) return true;
        if (t->eog[mid] < id) lo = mid + 1;
        else hi = mid;
    }
    return false;
}

bool lc_tok_is_control(const lc_tok *t, lc_token id) {
    return (lc_tok_attr(t, id) & (LC_TOK_ATTR_CONTROL | LC_TOK_ATTR_UNKNOWN)) != 0;
}

lc_token lc_tok_bos(const lc_tok *t) { return t->bos; }
lc_token lc_tok_eos(const lc_tok *t) { return t->eos; }
lc_token lc_tok_eot(const lc_tok *t) { return t->eot; }
lc_token lc_tok_unk(const lc_tok *t) { return t->unk; }
lc_token lc_tok_pad(const lc_tok *t) { return t->pad; }
bool lc_tok_add_bos(const lc_tok *t) { return t->add_bos; }
bool lc_tok_add_eos(const lc_tok *t) { return t->add_eos; }

/* ==== Streaming detokenizer ==== */

struct lc_detok {
    const lc_tok *t;
    bool render_special;
    bool started;  /* a text piece has been seen (SPM leading-space rule) */
    char *buf;     /* held bytes (an unfinished UTF-8 sequence) followed by the new piece */
    size_t held, cap;
};

lc_status lc_detok_create(const lc_tok *t, bool render_special, lc_detok **out) {
    lc_detok *d = lc_calloc(1, sizeof *d);
    if (!d) return lc_fail(LC_ERR_OOM, "out of memory creating a detokenizer");
    d->t = t;
    d->render_special = render_special;
    *out = d;
    return LC_OK;
}

void lc_detok_free(lc_detok *d) {
    if (!d) return;
    lc_free(d->buf);
    lc_free(d);
}

/* Where the complete text in buf[0..n) ends: before a trailing lead byte whose sequence is not
 * finished yet. Anything else (ASCII, invalid bytes) is released at once. */
static size_t complete_prefix(const unsigned char *buf, size_t n) {
    for (size_t back = 1; back <= 4 && back <= n; back++) {
        unsigned char c = buf[n - back];
        if ((c & 0xC0) == 0x80) continue;
        size_t need = c >= 0xF0 && c < 0xF8 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
        return need > back ? n - back : n;
    }
    return n;
}

lc_status lc_detok_feed(lc_detok *d, lc_token id, lc_str *out) {
    const lc_tok *t = d->t;
    if (id < 0 || id >= t->n_vocab)
        return lc_fail(LC_ERR_INVALID, "detokenize: token id %d is outside the vocabulary (%d)", id,
                       t->n_vocab);
    if (!d->render_special && lc_tok_is_control(t, id)) return LC_OK;
    int n = lc_tok_piece(t, id, NULL, 0);
    if (!lc_grow((void **)&d->buf, 1, &d->cap, d->held + (size_t)n + 1))
        return lc_fail(LC_ERR_OOM, "detokenize: out of memory");
    lc_tok_piece(t, id, d->buf + d->held, n);
    char *piece = d->buf + d->held;
    size_t pn = (size_t)n;
    if (!lc_tok_is_control(t, id) && pn > 0) {
        if (!d->started && t->kind == LC_TOK_SPM && t->add_space_prefix && piece[0] == ' ') {
            memmove(piece, piece + 1, --pn);
        }
        d->started = true;
    }
    size_t total = d->held + pn;
    size_t done = complete_prefix((const unsigned char *)d->buf, total);
    if (done && !lc_str_append(out, d->buf, done)) return lc_fail(LC_ERR_OOM, "detokenize: out of memory");
    memmove(d->buf, d->buf + done, total - done);
    d->held = total - done;
    return LC_OK;
}

lc_status lc_detok_flush(lc_detok *d, lc_str *out) {
    if (d->held && !lc_str_append(out, d->buf, d->held))
        return lc_fail(LC_ERR_OOM, "detokenize: out of memory");
    d->held = 0;
    d->started = false;
    return LC_OK;
}
