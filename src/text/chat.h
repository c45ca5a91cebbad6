/* chat.h — chat prompt rendering for the server and CLI: OpenAI-style messages (and tools)
 * through a model's Jinja chat template, with variables set up as Hugging Face transformers
 * does (messages, tools, documents, add_generation_prompt, bos_token, eos_token, ...).
 *
 * Not here: tokenization, tool-call or reasoning parsing of the output. Entry points:
 * lc_chat_template_create/render/free (parse once, render per request) and lc_chat_render.
 */
#ifndef LC_CHAT_H
#define LC_CHAT_H

#include "text/jinja.h"

#include <jansson.h>

typedef struct lc_chat_opts {
    bool add_generation_prompt;
    const char *bos_token;   /* NULL: "" */
    const char *eos_token;   /* NULL: "" */
    int enable_thinking;     /* -1: not passed to the template; 0 false; 1 true */
    const json_t *kwargs;    /* extra template variables (a JSON object), or NULL */
    lc_jinja_opts limits;    /* render bounds and fixed time; zero = defaults */
} lc_chat_opts;

/* Options with defaults: no generation prompt, empty tokens, enable_thinking not passed. */
lc_chat_opts lc_chat_opts_default(void);

/* The ChatML template used when a model has none. */
extern const char *const lc_chat_template_chatml;

typedef struct lc_chat_template lc_chat_template;

/* Parses a chat template once (src NULL: the ChatML fallback). Thread-safe to render from
 * several threads afterwards. Syntax errors give LC_ERR_FORMAT "line L, column C: ...". */
lc_status lc_chat_template_create(const char *src, lc_chat_template **out);
void lc_chat_template_free(lc_chat_template *t);

/* Checks messages: an array of objects, each with a string role and a content that is a
 * string, null, or an array of parts ({type, text, ...}); tool_calls when present an array.
 * Returns LC_ERR_INVALID naming the first bad message. */
lc_status lc_chat_validate(const json_t *messages, const json_t *tools);

/* Renders messages (and tools, may be NULL) into *out_prompt (lc_free it). */
lc_status lc_chat_template_render(const lc_chat_template *t, const json_t *messages, const json_t *tools,
                                  const lc_chat_opts *opts, char **out_prompt);

/* One-shot: parse template_src (NULL: ChatML), validate, render. */
lc_status lc_chat_render(const char *template_src, const json_t *messages, const json_t *tools,
                         const lc_chat_opts *opts, char **out_prompt);

#endif /* LC_CHAT_H */
