/* locara.h — the public C API of Locara, a local LLM runtime.
 *
 * Owns: opaque handles (models, contexts), plain parameter structs with *_default() helpers,
 * status codes with a thread-local message, and the few calls an embedder needs: load a GGUF
 * model, make a context, decode a batch of tokens, read logits, tokenize and detokenize.
 * Everything not declared here is internal. Compiles as C17 and as C++.
 */
#ifndef LOCARA_H
#define LOCARA_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define LOCARA_VERSION "0.1.0"

/* ==== Status codes ==== */

/* Every fallible call returns one of these; on failure lc_last_error() says what went wrong. */
typedef enum lc_status {
    LC_OK = 0,
    LC_ERR_IO,          /* a file or socket could not be read or written */
    LC_ERR_FORMAT,      /* input is malformed (GGUF, JSON, template, ...) */
    LC_ERR_OOM,         /* an allocation failed or a budget was exceeded */
    LC_ERR_DEVICE,      /* a GPU call failed */
    LC_ERR_UNSUPPORTED, /* valid input this build cannot handle (architecture, quant type) */
    LC_ERR_INVALID,     /* a caller passed a bad argument (flag value, token id, size) */
    LC_ERR_RANGE,       /* a size or position is out of range (context full, ...) */
    LC_ERR_CANCELLED,   /* the operation was cancelled */
} lc_status;

/* The message of the last failure on this thread ("" when none). Owned by the library; valid
 * until the next failing call on the same thread. */
const char *lc_last_error(void);

/* A short constant name for a status ("ok", "format error", ...). */
const char *lc_status_name(lc_status st);

/* ==== Types ==== */

typedef int32_t lc_token;
typedef struct lc_model lc_model;     /* weights, hparams, tokenizer: read-only once loaded */
typedef struct lc_context lc_context; /* KV cache, scratch buffers, thread pool of one model */

/* KV cache element types (values match the GGUF tensor type ids). */
typedef enum lc_kv_type {
    LC_KV_F16 = 1,
    LC_KV_Q4_0 = 2,
    LC_KV_Q8_0 = 8,
} lc_kv_type;

/* ==== Models ==== */

typedef struct lc_model_params {
    int n_gpu_layers; /* layers to offload to a GPU backend; -1 = all, 0 = CPU only */
} lc_model_params;

lc_model_params lc_model_params_default(void);

/* Maps the GGUF file at path and binds its tensors. On success *out owns the model; free it
 * with lc_model_free. Weights stay in the read-only file mapping. */
lc_status lc_model_load(const char *path, lc_model_params params, lc_model **out);

/* Frees a model (NULL is fine). Contexts made from it must be freed first. */
void lc_model_free(lc_model *model);

/* Vocabulary size, trained context length, and the architecture name ("llama", "qwen3", ...). */
int lc_model_n_vocab(const lc_model *model);
int lc_model_n_ctx_train(const lc_model *model);
const char *lc_model_arch(const lc_model *model);

/* ==== Contexts ==== */

typedef struct lc_context_params {
    int n_ctx;           /* total KV capacity in tokens, shared by all sequences (0 = train ctx) */
    int n_batch;         /* most tokens one lc_decode call may carry */
    int n_seq_max;       /* most sequences alive at once */
    int n_threads;       /* compute threads (0 = physical cores) */
    lc_kv_type kv_type;  /* element type of the KV cache */
} lc_context_params;

lc_context_params lc_context_params_default(void);

/* Makes a context for model: allocates the paged KV cache and scratch buffers and starts the
 * thread pool. *out owns it; free it with lc_context_free. */
lc_status lc_context_create(lc_model *model, lc_context_params params, lc_context **out);
void lc_context_free(lc_context *ctx);

/* A batch of tokens, each with its position and sequence id. want_logits[i] != 0 asks for the
 * logits of token i. Arrays are owned by the caller. */
typedef struct lc_batch {
    int n_tokens;
    const lc_token *tokens;
    const int32_t *pos;
    const int32_t *seq_id;
    const int8_t *want_logits;
} lc_batch;

/* Runs the model on a batch, appending each token's K/V to its sequence's cache. A sequence's
 * tokens must come in position order, continuing where its cache ends. */
lc_status lc_decode(lc_context *ctx, const lc_batch *batch);

/* Logits of the i-th token of the last batch that asked for logits (i counts only tokens with
 * want_logits set). Owned by the context; valid until the next lc_decode. NULL if out of range. */
const float *lc_get_logits(lc_context *ctx, int i);

/* Drops every cached position >= p0 of sequence seq (p0 = 0 drops the sequence). */
lc_status lc_seq_truncate(lc_context *ctx, int32_t seq, int32_t p0);

/* ==== Text ==== */

/* Tokenizes UTF-8 text. add_special adds BOS/EOS as the model's metadata says; parse_special
 * turns control-token text ("<|im_end|>") into its id. Writes at most cap ids to out and
 * returns the full count (>= 0), or -1 with lc_last_error() set. */
int lc_tokenize(const lc_model *model, const char *text, size_t len, lc_token *out, int cap,
                int add_special, int parse_special);

/* Writes the bytes of one token's piece to buf (at most cap); returns the full length or -1. */
int lc_token_to_piece(const lc_model *model, lc_token tok, char *buf, int cap);

/* End-of-generation tokens (EOS, EOT, ...): nonzero if tok ends a turn. */
int lc_token_is_eog(const lc_model *model, lc_token tok);

/* ==== Memory accounting ==== */

/* Bytes currently held through the library's counting allocator, and the high-water mark. */
size_t lc_mem_in_use(void);
size_t lc_mem_peak(void);

#ifdef __cplusplus
}
#endif

#endif /* LOCARA_H */
