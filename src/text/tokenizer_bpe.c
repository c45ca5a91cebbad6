/* tokenizer_bpe.c — byte-level BPE ("gpt2" vocabularies): the pre-tokenizer regex sets named by
 * tokenizer.ggml.pre (one table), splitting with PCRE2 (UTF + UCP, JIT), the GPT-2 byte map,
 * and rank-ordered merging of each word with a binary heap over a linked list of symbols.
 *
 * Not here: special-token parsing and BOS/EOS (tokenizer.c). Patterns are the Hugging Face
 * tokenizer.json originals where one regex describes the split; the multi-regex sets apply in
 * sequence, each splitting the pieces of the previous one, with unmatched gaps kept as pieces
 * (the "Isolated" split behaviour, as llama.cpp applies it).
 */
#include "text/tokenizer_impl.h"

#include <string.h>

/* ==== Pre-tokenizer table ==== */

#define RE_GPT2 "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+"
#define RE_CONTRACT "(?i:'s|'t|'re|'ve|'m|'ll|'d)"
#define RE_LLAMA3                                                                             \
    RE_CONTRACT "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|" \
                "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
#define RE_QWEN2                                                                          \
    RE_CONTRACT "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|" \
                "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
#define RE_QWEN35                                                                        \
    RE_CONTRACT "|[^\\r\\n\\p{L}\\p{N}]?[\\p{L}\\p{M}]+|\\p{N}| ?[^\\s\\p{L}\\p{M}\\p{N}]+" \
                "[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
#define RE_UPPER "[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]"
#define RE_LOWER "[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]"
#define RE_GPT4O                                                                              \
    "[^\\r\\n\\p{L}\\p{N}]?" RE_UPPER "*" RE_LOWER "+" RE_CONTRACT "?|[^\\r\\n\\p{L}\\p{N}]?" \
    RE_UPPER "+" RE_LOWER "*" RE_CONTRACT "?|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|"     \
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
#define RE_TEKKEN                                                                            \
    "[^\\r\\n\\p{L}\\p{N}]?" RE_UPPER "*" RE_LOWER "+|[^\\r\\n\\p{L}\\p{N}]?" RE_UPPER "+"     \
    RE_LOWER "*|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
#define RE_SEED_CODER                                                                      \
    RE_CONTRACT "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1}| ?[^\\s\\p{L}\\p{N}\\r\\n]+|" \
                "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
#define RE_BAILING                                                                        \
    "'(?i:[sdmt]|ll|ve|re)|[^\\r\\n\\p{L}\\p{N}]?+\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]++" \
    "[\\r\\n]*|\\s*[\\r\\n]|\\s+(?!\\S)|\\s+"
#define RE_CJK "[\\x{4E00}-\\x{9FA5}\\x{800}-\\x{4E00}\\x{AC00}-\\x{D7FF}]+"
/* Latin, Greek, Cyrillic, ... letter ranges of DeepSeek LLM's tokenizer.json, as \x escapes. */
#define RE_DSLLM_LETTERS                                                                      \
    "\\s?[A-Za-z\\x{B5}\\x{C0}-\\x{D6}\\x{D8}-\\x{F6}\\x{F8}-\\x{1BA}\\x{1BC}-\\x{1BF}"       \
    "\\x{1C4}-\\x{293}\\x{295}-\\x{2AF}\\x{370}-\\x{373}\\x{376}\\x{377}\\x{37B}-\\x{37D}"     \
    "\\x{37F}\\x{386}\\x{388}-\\x{38A}\\x{38C}\\x{38E}-\\x{3A1}\\x{3A3}-\\x{3F5}"              \
    "\\x{3F7}-\\x{481}\\x{48A}-\\x{52F}\\x{531}-\\x{556}\\x{10A0}-\\x{10C5}\\x{13A0}-\\x{13F5}" \
    "\\x{13F8}-\\x{13FD}\\x{1C90}-\\x{1CBA}\\x{1CBD}-\\x{1CBF}\\x{1D00}-\\x{1D2B}"             \
    "\\x{1D6B}-\\x{1D77}\\x{1D79}-\\x{1D9A}\\x{1E00}-\\x{1F15}\\x{1F18}-\\x{1F1D}"             \
    "\\x{1F20}-\\x{1F45}\\x{1F48}-\\x{1F4D}\\x{1F50}-\\x{1F57}\\x{1F59}\\x{1F5B}\\x{1F5D}"     \
    "\\x{1F5F}-\\x{1F7D}\\x{1F80}-\\x{1FB4}\\x{1FB6}-\\x{1FBC}\\x{1FBE}\\x{1FC2}-\\x{1FC4}"    \
    "\\x{1FC6}-\\x{1FCC}\\x{1FD0}-\\x{1FD3}\\x{1FD6}-\\x{1FDB}\\x{1FE0}-\\x{1FEC}"             \
    "\\x{1FF2}-\\x{1FF4}\\x{1FF6}-\\x{1FFC}\\x{2102}\\x{2107}\\x{210A}-\\x{2113}\\x{2115}"     \
    "\\x{2119}-\\x{211D}\\x{2124}\\x{2126}\\x{2128}\\x{212A}-\\x{212D}\\x{212F}-\\x{2134}"     \
    "\\x{2139}\\x{213C}-\\x{213F}\\x{2145}-\\x{2149}\\x{214E}\\x{2183}\\x{2184}"               \
    "\\x{2C00}-\\x{2C7B}\\x{2C7E}-\\x{2CE4}\\x{2CEB}-\\x{2CEE}\\x{2CF2}\\x{2CF3}"              \
    "\\x{A640}-\\x{A66D}\\x{A680}-\\x{A69B}\\x{A722}-\\x{A76F}\\x{A771}-\\x{A787}"             \
    "\\x{A78B}-\\x{A78E}\\x{AB70}-\\x{ABBF}\\x{FB00}-\\x{FB06}\\x{FB13}-\\x{FB17}"             \
    "\\x{FF21}-\\x{FF3A}\\x{FF41}-\\x{FF5A}\\x{10400}-\\x{1044F}\\x{104B0}-\\x{104D3}"         \
    "\\x{104D8}-\\x{104FB}\\x{10C80}-\\x{10CB2}\\x{10CC0}-\\x{10CF2}\\x{118A0}-\\x{118DF}"     \
    "\\x{1E900}-\\x{1E943}]+"
#define RE_PORO " ?[^(\\s|.,!?\\x{2026}\\x{3002}\\x{FF0C}\\x{3001}\\x{964}\\x{6D4}\\x{60C})]+"

typedef struct pre_def {
    const char *names; /* space-separated tokenizer.ggml.pre values */
    const char *re[7]; /* applied in order; NULL-terminated */
    bool ignore_merges; /* a word that is itself a token is emitted whole */
    bool add_bos;       /* default for add_bos_token when the metadata does not say */
} pre_def;

static const pre_def PRE_DEFS[] = {
    {"default", {"[\\p{P}\\$\\+<=>\\^~\\|]+", RE_GPT2, "\\p{N}+", "[0-9][0-9][0-9]"}, false, false},
    {"llama3 llama-v3 llama-bpe falcon3 falcon-h1 pixtral midm-2.0 lfm2 jina-v5-nano",
     {RE_LLAMA3}, true, true},
    {"dbrx smaug-bpe chatglm-bpe", {RE_LLAMA3}, false, false},
    {"glm4 glm5", {RE_LLAMA3}, true, false},
    {"deepseek-llm",
     {"[\\r\\n]", RE_DSLLM_LETTERS,
      "\\s?[!-/:-~\\x{FF01}-\\x{FF0F}\\x{FF1A}-\\x{FF5E}\\x{2018}-\\x{201F}\\x{3000}-\\x{3002}]+",
      "\\s+$", RE_CJK, "\\p{N}+"},
     false, false},
    {"deepseek-coder", {"[\\r\\n]", "\\s?\\p{L}+", "\\s?\\p{P}+", RE_CJK, "\\p{N}"}, false, false},
    {"deepseek-v3 hunyuan-dense joyai-llm hy_v4",
     {"\\p{N}{1,3}", "[\\x{4E00}-\\x{9FA5}\\x{3040}-\\x{309F}\\x{30A0}-\\x{30FF}]+",
      "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\\r\\n\\p{L}\\p{P}\\p{S}]?"
      "[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"},
     false, false},
    {"falcon", {"[\\p{P}\\$\\+<=>\\^~\\|`]+", RE_GPT2, "[0-9][0-9][0-9]"}, false, false},
    {"starcoder refact command-r smollm codeshell exaone minerva-7b mellum2",
     {"\\p{N}", RE_GPT2}, false, false},
    {"gpt-2 phi-2 jina-es jina-de gigachat jina-v2-es jina-v2-de a.x-4.0 mellum modern-bert mpt "
     "olmo jais trillion granite-docling exaone4 jina-v1-en jina-v2-code roberta-bpe",
     {RE_GPT2}, false, false},
    {"qwen2 deepseek-r1-qwen kormo f2llmv2 stablelm2 megrez hunyuan solar-open grok-2",
     {RE_QWEN2}, false, false},
    {"qwen35", {RE_QWEN35}, false, false},
    {"poro-chat bloom gpt3-finnish", {RE_PORO}, false, false},
    {"viking", {RE_PORO, "\\p{N}"}, false, false},
    {"tekken", {RE_TEKKEN}, true, true},
    {"gpt-4o llama4 kanana2 talkie minimax-m2", {RE_GPT4O}, false, false},
    {"chameleon",
     {"<sentinel:[0-9]+>", "(IMGIMG)((A|B|C|D|E|F|G|H|I){1,4})Z", "([\\t\\n]|    |  )", "\\p{N}",
      "[\\p{P}!-/:-@\\[-`{-~]", RE_GPT2},
     false, true},
    {"seed-coder", {RE_SEED_CODER}, false, false},
    {"bailingmoe bailingmoe2 llada-moe", {RE_BAILING}, false, false},
};

static bool name_in_list(const char *list, const char *name) {
    size_t n = strlen(name);
    for (const char *p = list; *p;) {
        const char *e = strchr(p, ' ');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == n && !memcmp(p, name, n)) return true;
        if (!e) break;
        p = e + 1;
    }
    return false;
}

static void *re_alloc(size_t n, void *ud) {
    (void)ud;
    return lc_malloc(n);
}

static void re_free(void *p, void *ud) {
    (void)ud;
    lc_free(p);
}

static lc_status compile_one(lc_tok *t, const char *pattern) {
    if (t->n_regex >= TOK_MAX_REGEX) return lc_fail(LC_ERR_FORMAT, "too many pre-tokenizer regexes");
    pcre2_compile_context *cc = pcre2_compile_context_create(t->gctx);
    if (!cc) return lc_fail(LC_ERR_OOM, "out of memory compiling a regex");
    int err = 0;
    PCRE2_SIZE erroff = 0;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED,
                                   PCRE2_UTF | PCRE2_UCP | PCRE2_DOLLAR_ENDONLY, &err, &erroff, cc);
    pcre2_compile_context_free(cc);
    if (!re) {
        PCRE2_UCHAR msg[160];
        pcre2_get_error_message(err, msg, sizeof msg);
        return lc_fail(LC_ERR_FORMAT, "pre-tokenizer regex '%.40s...' does not compile at %zu: %s",
                       pattern, (size_t)erroff, (const char *)msg);
    }
    /* JIT is an optimisation: if this build or machine lacks it, the interpreter is used. */
    (void)pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);
    t->re[t->n_regex++] = re;
    return LC_OK;
}

/* Finds t->pre_name in the table and compiles its regexes with a general context whose
 * allocations go through lc_malloc, so compiled patterns and JIT code are counted. */
lc_status tok_bpe_init(lc_tok *t, bool *add_bos_default) {
    const pre_def *def = NULL;
    for (size_t i = 0; i < LC_ARRAY_LEN(PRE_DEFS) && !def; i++)
        if (name_in_list(PRE_DEFS[i].names, t->pre_name)) def = &PRE_DEFS[i];
    if (!def)
        return lc_fail(LC_ERR_UNSUPPORTED, "unknown pre-tokenizer '%s' (tokenizer.ggml.pre)",
                       t->pre_name);
    t->gctx = pcre2_general_context_create(re_alloc, re_free, NULL);
    if (!t->gctx) return lc_fail(LC_ERR_OOM, "out of memory creating the regex context");
    for (int i = 0; i < 7 && def->re[i]; i++) {
        lc_status st = compile_one(t, def->re[i]);
        if (st != LC_OK) return st;
    }
    t->ignore_merges = def->ignore_merges;
    *add_bos_default = def->add_bos;
    return LC_OK;
}

void tok_bpe_free(lc_tok *t) {
    for (int i = 0; i < t->n_regex; i++) pcre2_code_free(t->re[i]);
    t->n_regex = 0;
    if (t->gctx) pcre2_general_context_free(t->gctx);
    t->gctx = NULL;
}

/* ==== GPT-2 byte map and merge table ==== */

/* GPT-2's bytes_to_unicode: printable Latin-1 bytes map to themselves, the other 68 bytes to
 * U+0100.. in byte order, so every byte has a visible, whitespace-free character. */
static uint32_t byte_to_cp(int b) {
    if ((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255)) return (uint32_t)b;
    int k = 0;
    for (int x = 0; x < b; x++)
        if (!((x >= 33 && x <= 126) || (x >= 161 && x <= 172) || (x >= 174 && x <= 255))) k++;
    return 256u + (uint32_t)k;
}

static int cp_to_byte(uint32_t cp) {
    if ((cp >= 33 && cp <= 126) || (cp >= 161 && cp <= 172) || (cp >= 174 && cp <= 255)) return (int)cp;
    if (cp < 256 || cp >= 256 + 68) return -1;
    int k = (int)(cp - 256);
    for (int x = 0; x < 256; x++) {
        if (!((x >= 33 && x <= 126) || (x >= 161 && x <= 172) || (x >= 174 && x <= 255))) {
            if (k == 0) return x;
            k--;
        }
    }
    return -1;
}

static uint64_t merge_slot(const lc_tok *t, uint64_t key) {
    return (key * 0x9E3779B97F4A7C15ull) >> t->merge_shift;
}

/* Builds the byte tables and the (left id, right id) -> (rank, merged id) table. A merge whose
 * parts or result are not in the vocabulary can never fire on ids and is skipped (llama.cpp
 * would merge the strings and then fall back to bytes; no real vocabulary has such lines). */
lc_status tok_bpe_load_merges(lc_tok *t, const lc_gguf_value *merges) {
    for (int b = 0; b < 256; b++) {
        uint32_t cp = byte_to_cp(b);
        if (cp < 0x80) {
            t->byte_enc[b][0] = (uint8_t)cp;
            t->byte_enc_len[b] = 1;
        } else {
            t->byte_enc[b][0] = (uint8_t)(0xC0 | (cp >> 6));
            t->byte_enc[b][1] = (uint8_t)(0x80 | (cp & 0x3F));
            t->byte_enc_len[b] = 2;
        }
        t->byte_tok[b] = tok_lookup(t, (const char *)t->byte_enc[b], t->byte_enc_len[b]);
    }
    uint64_t n = merges ? merges->arr.n : 0;
    if (n > 0x7fffffff) return lc_fail(LC_ERR_FORMAT, "too many merges (%llu)", (unsigned long long)n);
    int bits = 4;
    while ((1ull << bits) < n + n / 2 + 16) bits++;
    t->merge_shift = 64 - bits;
    t->merge_mask = (1ull << bits) - 1;
    t->merges = lc_malloc(sizeof(tok_merge) << bits);
    if (!t->merges) return LC_ERR_OOM;
    for (uint64_t i = 0; i <= t->merge_mask; i++) t->merges[i].key = UINT64_MAX;
    char buf[512];
    for (uint64_t i = 0; i < n; i++) {
        lc_gguf_str s = lc_gguf_arr_str(merges, i);
        const char *sp = s.n > 1 ? memchr(s.p + 1, ' ', s.n - 1) : NULL;
        if (!sp) continue;
        size_t nl = (size_t)(sp - s.p), nr = s.n - nl - 1;
        if (nl + nr > sizeof buf) continue;
        lc_token l = tok_lookup(t, s.p, nl), r = tok_lookup(t, sp + 1, nr);
        memcpy(buf, s.p, nl);
        memcpy(buf + nl, sp + 1, nr);
        lc_token m = tok_lookup(t, buf, nl + nr);
        if (l < 0 || r < 0 || m < 0) continue;
        uint64_t key = (uint64_t)(uint32_t)l << 32 | (uint32_t)r;
        uint64_t h = merge_slot(t, key);
        while (t->merges[h].key != UINT64_MAX && t->merges[h].key != key) h = (h + 1) & t->merge_mask;
        if (t->merges[h].key == key) continue; /* the first rank of a repeated line wins */
        t->merges[h].key = key;
        t->merges[h].rank = (int32_t)i;
        t->merges[h].result = m;
        t->n_merges++;
    }
    return LC_OK;
}

static inline const tok_merge *find_merge(const lc_tok *t, lc_token l, lc_token r) {
    uint64_t key = (uint64_t)(uint32_t)l << 32 | (uint32_t)r;
    uint64_t h = merge_slot(t, key);
    for (;;) {
        const tok_merge *m = &t->merges[h];
        if (m->key == key) return m;
        if (m->key == UINT64_MAX) return NULL;
        h = (h + 1) & t->merge_mask;
    }
}

int tok_bpe_decode(const char *p, size_t n, char *buf, int cap) {
    int len = 0;
    size_t i = 0;
    while (i < n) {
        unsigned char c = (unsigned char)p[i];
        uint32_t cp;
        size_t k;
        if (c < 0x80) { cp = c; k = 1; }
        else if ((c >> 5) == 6 && i + 1 < n) { cp = (uint32_t)(c & 0x1F) << 6 | (p[i + 1] & 0x3F); k = 2; }
        else { cp = 0xFFFFFFFF; k = 1; }
        int b = cp == 0xFFFFFFFF ? -1 : cp_to_byte(cp);
        if (b >= 0) {
            if (len < cap) buf[len] = (char)b;
            len++;
        } else { /* not a mapped character: pass its bytes through */
            for (size_t j = 0; j < k; j++) {
                if (len < cap) buf[len] = p[i + j];
                len++;
            }
        }
        i += k;
    }
    return len;
}

/* ==== Encoding ==== */

typedef struct bsym {
    lc_token id;  /* -2: merged away */
    int32_t prev, next;
} bsym;

typedef struct bpair {
    int32_t rank, left, right;
    lc_token lid, rid, result;
} bpair;

/* Per-call scratch, so that the tokenizer itself stays immutable. */
typedef struct bpe_work {
    bsym *sym;
    size_t sym_cap;
    bpair *heap;
    size_t heap_n, heap_cap;
    size_t *seg, *seg2; /* (offset, length) pairs */
    size_t seg_n, seg_cap, seg2_n, seg2_cap;
    char *enc;
    size_t enc_cap;
} bpe_work;

static inline bool pair_less(const bpair *a, const bpair *b) {
    return a->rank < b->rank || (a->rank == b->rank && a->left < b->left);
}

static bool heap_push(bpe_work *w, bpair p) {
    if (!lc_grow((void **)&w->heap, sizeof(bpair), &w->heap_cap, w->heap_n + 1)) return false;
    size_t i = w->heap_n++;
    while (i > 0) {
        size_t up = (i - 1) / 2;
        if (!pair_less(&p, &w->heap[up])) break;
        w->heap[i] = w->heap[up];
        i = up;
    }
    w->heap[i] = p;
    return true;
}

static bpair heap_pop(bpe_work *w) {
    bpair top = w->heap[0], last = w->heap[--w->heap_n];
    size_t i = 0, n = w->heap_n;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && pair_less(&w->heap[c + 1], &w->heap[c])) c++;
        if (!pair_less(&w->heap[c], &last)) break;
        w->heap[i] = w->heap[c];
        i = c;
    }
    if (n) w->heap[i] = last;
    return top;
}

static bool try_pair(const lc_tok *t, bpe_work *w, int32_t l, int32_t r) {
    if (l < 0 || r < 0) return true;
    lc_token a = w->sym[l].id, b = w->sym[r].id;
    if (a < 0 || b < 0) return true;
    const tok_merge *m = find_merge(t, a, b);
    if (!m) return true;
    bpair p = {m->rank, l, r, a, b, m->result};
    return heap_push(w, p);
}

/* Merges one pre-tokenized word (raw bytes) by rank: every adjacent pair with a merge goes on a
 * min-heap keyed (rank, position); popping applies the lowest-ranked, leftmost merge and
 * offers the two new neighbour pairs. Stale entries (a side already merged) are skipped on pop.
 * O(n log n) per word. */
static lc_status bpe_word(const lc_tok *t, bpe_work *w, const unsigned char *s, size_t n, tok_vec *o) {
    if (n == 0) return LC_OK;
    if (n == 1) {
        if (t->byte_tok[s[0]] >= 0 && !tok_vec_push(o, t->byte_tok[s[0]])) return LC_ERR_OOM;
        return LC_OK;
    }
    if (t->ignore_merges) { /* a word that is already a token is not split */
        if (!lc_grow((void **)&w->enc, 1, &w->enc_cap, 2 * n)) return LC_ERR_OOM;
        size_t k = 0;
        for (size_t i = 0; i < n; i++) {
            memcpy(w->enc + k, t->byte_enc[s[i]], t->byte_enc_len[s[i]]);
            k += t->byte_enc_len[s[i]];
        }
        lc_token id = tok_lookup(t, w->enc, k);
        if (id >= 0) return tok_vec_push(o, id) ? LC_OK : LC_ERR_OOM;
    }
    if (!lc_grow((void **)&w->sym, sizeof(bsym), &w->sym_cap, n)) return LC_ERR_OOM;
    for (size_t i = 0; i < n; i++) {
        w->sym[i].id = t->byte_tok[s[i]];
        w->sym[i].prev = (int32_t)i - 1;
        w->sym[i].next = i + 1 < n ? (int32_t)i + 1 : -1;
    }
    w->heap_n = 0;
    for (size_t i = 1; i < n; i++)
        if (!try_pair(t, w, (int32_t)i - 1, (int32_t)i)) return LC_ERR_OOM;
    while (w->heap_n) {
        bpair p = heap_pop(w);
        bsym *L = &w->sym[p.left], *R = &w->sym[p.right];
        if (L->id != p.lid || L->next != p.right || R->id != p.rid) continue;
        L->id = p.result;
        R->id = -2;
        L->next = R->next;
        if (R->next >= 0) w->sym[R->next].prev = p.left;
        if (!try_pair(t, w, L->prev, p.left) || !try_pair(t, w, p.left, L->next)) return LC_ERR_OOM;
    }
    for (int32_t i = 0; i >= 0; i = w->sym[i].next)
        if (w->sym[i].id >= 0 && !tok_vec_push(o, w->sym[i].id)) return LC_ERR_OOM;
    return LC_OK;
}

static bool seg_push(size_t **arr, size_t *n, size_t *cap, size_t off, size_t len) {
    if (len == 0) return true;
    if (!lc_grow((void **)arr, 2 * sizeof(size_t), cap, *n + 1)) return false;
    (*arr)[2 * *n] = off;
    (*arr)[2 * *n + 1] = len;
    (*n)++;
    return true;
}

/* Applies one regex to every current piece: matches become pieces and so do the gaps between
 * them. Each piece is matched on its own (its end is the subject's end, as in llama.cpp). */
static lc_status split_pass(const lc_tok *t, const pcre2_code *re, pcre2_match_data *md,
                            const char *text, bpe_work *w) {
    w->seg2_n = 0;
    for (size_t si = 0; si < w->seg_n; si++) {
        size_t off = w->seg[2 * si], len = w->seg[2 * si + 1];
        const PCRE2_SPTR subj = (PCRE2_SPTR)(text + off);
        size_t pos = 0, last = 0;
        while (pos < len) {
            int rc = pcre2_match(re, subj, len, pos, PCRE2_NO_UTF_CHECK, md, NULL);
            if (rc == PCRE2_ERROR_NOMATCH) break;
            if (rc < 0) {
                PCRE2_UCHAR msg[120];
                pcre2_get_error_message(rc, msg, sizeof msg);
                return lc_fail(LC_ERR_INVALID, "pre-tokenizer regex failed at byte %zu: %s",
                               off + pos, (const char *)msg);
            }
            PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
            size_t ms = ov[0], me = ov[1];
            if (ms > last && !seg_push(&w->seg2, &w->seg2_n, &w->seg2_cap, off + last, ms - last))
                return LC_ERR_OOM;
            if (me == ms) { /* an empty match splits here; step over one character */
                last = ms;
                pos = ms + 1;
                while (pos < len && (subj[pos] & 0xC0) == 0x80) pos++;
                continue;
            }
            if (!seg_push(&w->seg2, &w->seg2_n, &w->seg2_cap, off + ms, me - ms)) return LC_ERR_OOM;
            last = pos = me;
        }
        if (last < len && !seg_push(&w->seg2, &w->seg2_n, &w->seg2_cap, off + last, len - last))
            return LC_ERR_OOM;
    }
    size_t *tmp = w->seg;
    w->seg = w->seg2;
    w->seg2 = tmp;
    size_t c = w->seg_cap;
    w->seg_cap = w->seg2_cap;
    w->seg2_cap = c;
    w->seg_n = w->seg2_n;
    return LC_OK;
}

/* Pre-tokenizes one fragment (valid UTF-8) with the regex set, then merges each word. */
lc_status tok_bpe_encode(const lc_tok *t, const char *text, size_t len, tok_vec *o) {
    bpe_work w = {0};
    lc_status st = LC_OK;
    pcre2_match_data *md = pcre2_match_data_create(1, t->gctx);
    if (!md) return lc_fail(LC_ERR_OOM, "out of memory for regex match data");
    if (!seg_push(&w.seg, &w.seg_n, &w.seg_cap, 0, len)) { st = LC_ERR_OOM; goto done; }
    for (int i = 0; i < t->n_regex && st == LC_OK; i++) st = split_pass(t, t->re[i], md, text, &w);
    for (size_t i = 0; i < w.seg_n && st == LC_OK; i++)
        st = bpe_word(t, &w, (const unsigned char *)text + w.seg[2 * i], w.seg[2 * i + 1], o);
done:
    pcre2_match_data_free(md);
    lc_free(w.sym);
    lc_free(w.heap);
    lc_free(w.seg);
    lc_free(w.seg2);
    lc_free(w.enc);
    return st;
}
