/* prompts.h — agent-like benchmark conversations of a chosen depth, deterministic from a seed.
 *
 * A conversation is a system prompt, then turns that look like a coding agent at work (the
 * assistant asks to read a file or run a tool, the user turn carries the tool's output: source
 * files, grep hits, build and test logs), then a final question. The material is text shipped
 * with the project (bench/corpus) and the project's own source files. Token counts come from a
 * caller-supplied counter (the endpoint's /tokenize, or an estimate).
 * Entry points: lc_prompt_gen_create, lc_prompt_build, lc_convo_to_json, lc_convo_free.
 */
#ifndef LC_BENCH_PROMPTS_H
#define LC_BENCH_PROMPTS_H

#include "base/base.h"

#include <jansson.h>

typedef struct lc_prompt_gen lc_prompt_gen; /* the loaded material */

/* A chat conversation: roles and contents are owned (lc_free) by the convo. */
typedef struct lc_convo {
    int n, cap;
    char **role;
    char **content;
    int tokens; /* the builder's count: content tokens plus a per-message overhead */
} lc_convo;

/* Counts the tokens of text (>= 0), or returns -1 when it cannot (the builder then falls back
 * to bytes / 4 for that piece). */
typedef int (*lc_token_count_fn)(void *ud, const char *text);

/* Loads the material: corpus_dir holds the templates (system.txt, asks.txt, tools.txt, see
 * bench/corpus/README.md) and src_dir the source files read by the "agent" (every *.c and *.h
 * under it, sorted by path). NULL for either picks the copy beside this source file. Missing
 * source files are fine (templates alone are used); a missing corpus is an LC_ERR_IO. */
lc_status lc_prompt_gen_create(const char *corpus_dir, const char *src_dir, lc_prompt_gen **out);
void lc_prompt_gen_free(lc_prompt_gen *g);

/* Builds a conversation of about `depth` tokens, deterministic in (seed, depth) apart from the
 * nonce, which opens the system prompt so that no server can have cached any prefix of it. The
 * conversation ends with a user question; it overshoots depth by at most a few percent. */
lc_status lc_prompt_build(const lc_prompt_gen *g, uint64_t seed, const char *nonce, int depth,
                          lc_token_count_fn count, void *ud, lc_convo *out);

/* Appends one message (copies role and content). */
lc_status lc_convo_add(lc_convo *c, const char *role, const char *content);

/* The follow-up user turn of a warm request, picked by seed and rep. Static string. */
const char *lc_prompt_followup(const lc_prompt_gen *g, uint64_t seed, int rep);

/* The messages as an OpenAI "messages" array (new reference), or NULL on OOM. */
json_t *lc_convo_to_json(const lc_convo *c);

void lc_convo_free(lc_convo *c);

/* Tokens per message the chat template adds around each content (role markers). */
#define LC_PROMPT_MSG_OVERHEAD 4

#endif
