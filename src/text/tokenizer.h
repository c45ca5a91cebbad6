/* tokenizer.h — text <-> token ids for GGUF vocabularies: SentencePiece-style ("llama", SPM) and
 * byte-level BPE ("gpt2") with the pre-tokenizer regexes named by tokenizer.ggml.pre, special
 * (control / user-defined) token parsing, and a streaming detokenizer.
 *
 * Not here: WordPiece (bert), Unigram (t5) and RWKV vocabularies (lc_tok_load says so), chat
 * templates (text/chat). Entry points: lc_tok_load, lc_tok_encode, lc_tok_piece, lc_detok_*.
 */
#ifndef LC_TOKENIZER_H
#define LC_TOKENIZER_H

#include "base/base.h"
#include "gguf/gguf.h"

typedef struct lc_tok lc_tok;

#define LC_TOKEN_NULL ((lc_token)-1)

typedef enum lc_tok_kind { LC_TOK_SPM, LC_TOK_BPE } lc_tok_kind;

/* Token attributes (a bit set; GGUF token_type plus llama.cpp's name-based fix-ups). */
enum {
    LC_TOK_ATTR_NORMAL = 1 << 0,
    LC_TOK_ATTR_UNKNOWN = 1 << 1,
    LC_TOK_ATTR_CONTROL = 1 << 2,
    LC_TOK_ATTR_USER_DEFINED = 1 << 3,
    LC_TOK_ATTR_UNUSED = 1 << 4,
    LC_TOK_ATTR_BYTE = 1 << 5,
    LC_TOK_ATTR_LSTRIP = 1 << 6, /* parsing this special token eats whitespace on its left */
    LC_TOK_ATTR_RSTRIP = 1 << 7, /* ... and on its right */
};

/* Builds a tokenizer from the tokenizer.* metadata of an opened GGUF (a full model or a
 * vocab-only file). The token strings are NOT copied: the tokenizer points into g's mapping, so
 * g must stay open until lc_tok_free. Indexes (piece -> id hash, merge-rank table, compiled
 * regexes) are allocated through lc_malloc. The result is immutable and may be used from any
 * number of threads at once. Errors: LC_ERR_FORMAT (missing or malformed keys),
 * LC_ERR_UNSUPPORTED (a vocab type other than llama/gpt2, or an unknown pre-tokenizer name),
 * LC_ERR_OOM. */
lc_status lc_tok_load(const lc_gguf *g, lc_tok **out);
void lc_tok_free(lc_tok *t);

/* Tokenizes len bytes of UTF-8 text. add_special adds BOS (and EOS) where the metadata says so
 * (tokenizer.ggml.add_bos_token / add_eos_token, or the vocab type's default); parse_special
 * turns the text of control tokens ("<|im_start|>") into their ids, longest first; without it
 * only user-defined tokens are matched and control-token text is tokenized as plain text.
 * On success *ids is a new array (lc_free it; NULL when *n == 0) of *n ids. Invalid UTF-8 gives
 * LC_ERR_INVALID with the byte offset in the message. Thread-safe. */
lc_status lc_tok_encode(const lc_tok *t, const char *text, size_t len, bool add_special,
                        bool parse_special, lc_token **ids, int *n);

/* The same into a caller buffer: writes at most cap ids and returns the full count (>= 0), or
 * -1 with lc_last_error() set. (The shape of locara.h's lc_tokenize.) */
int lc_tok_encode_into(const lc_tok *t, const char *text, size_t len, bool add_special,
                       bool parse_special, lc_token *out, int cap);

/* Writes the bytes that token id stands for into buf (at most cap bytes, not NUL-terminated)
 * and returns the full length, or -1 for an id out of range. Normal tokens are decoded (SPM:
 * U+2581 -> ' '; BPE: GPT-2 byte map undone; <0xXX> byte tokens -> one raw byte). Control,
 * user-defined and unknown tokens give their text ("<|im_end|>"). A piece may be a partial
 * UTF-8 sequence: concatenate pieces (or use lc_detok) before treating them as text. */
int lc_tok_piece(const lc_tok *t, lc_token id, char *buf, int cap);

/* The token's stored vocabulary text (not decoded) and its length; NULL when out of range. */
const char *lc_tok_text(const lc_tok *t, lc_token id, size_t *len);

/* Exact lookup of a vocabulary string as stored ("<|im_end|>", "<0x0A>", "Ġthe"); returns
 * LC_TOKEN_NULL when absent. */
lc_token lc_tok_find(const lc_tok *t, const char *piece);
lc_token lc_tok_find_n(const lc_tok *t, const char *piece, size_t len);

int lc_tok_n_vocab(const lc_tok *t);
lc_tok_kind lc_tok_get_kind(const lc_tok *t);
/* The pre-tokenizer name from the metadata ("default" when absent) — for messages. */
const char *lc_tok_pre_name(const lc_tok *t);
unsigned lc_tok_attr(const lc_tok *t, lc_token id); /* 0 when out of range */
/* End-of-generation: EOS, EOT, EOM and the tokens llama.cpp treats so ("<|im_end|>", ...). */
bool lc_tok_is_eog(const lc_tok *t, lc_token id);
bool lc_tok_is_control(const lc_tok *t, lc_token id); /* control or unknown: hidden in output */
lc_token lc_tok_bos(const lc_tok *t); /* LC_TOKEN_NULL when the vocab has none */
lc_token lc_tok_eos(const lc_tok *t);
lc_token lc_tok_eot(const lc_tok *t);
lc_token lc_tok_unk(const lc_tok *t);
lc_token lc_tok_pad(const lc_tok *t);
bool lc_tok_add_bos(const lc_tok *t);
bool lc_tok_add_eos(const lc_tok *t);

/* ==== Streaming detokenizer ==== */

/* Turns a stream of tokens into text so that each call appends only complete UTF-8 sequences
 * (a multi-byte character split over two tokens comes out whole on the second), and the
 * concatenation of everything appended (flush included) equals the concatenated pieces.
 * render_special = false drops control/unknown tokens (what a chat reply wants). With an SPM
 * vocab that adds a space prefix, the first piece's leading space is dropped, so
 * detok(encode(text)) == text. One lc_detok per stream; it is not shared between threads. */
typedef struct lc_detok lc_detok;

lc_status lc_detok_create(const lc_tok *t, bool render_special, lc_detok **out);
/* Appends the complete text that token id finishes to out. LC_ERR_INVALID for a bad id. */
lc_status lc_detok_feed(lc_detok *d, lc_token id, lc_str *out);
/* Appends whatever bytes are still held (an unfinished sequence, as raw bytes) and resets. */
lc_status lc_detok_flush(lc_detok *d, lc_str *out);
void lc_detok_free(lc_detok *d);

#endif /* LC_TOKENIZER_H */
