/* outparse.h — splitting what a model generates into OpenAI's content, reasoning_content and
 * tool_calls, incrementally (for streaming) and in total (for the final response).
 *
 * Owns: the output formats of the model families (Hermes/Qwen <tool_call>, Llama 3 JSON,
 * Mistral [TOOL_CALLS], gpt-oss harmony channels) and their reasoning markers (<think>, ...).
 * Deliberately not here: stop strings (engine/stop.h), rendering prompts (text/chat), JSON
 * validation of arguments against the tools' schemas. Entry points: lc_outparse_detect,
 * lc_outparse_opts_from_template, lc_outparse_create, lc_outparse_feed, lc_outparse_finish.
 */
#ifndef LC_TEXT_OUTPARSE_H
#define LC_TEXT_OUTPARSE_H

#include "base/base.h"

/* How a family writes tool calls after the prompt. */
typedef enum lc_out_format {
    LC_FMT_PLAIN = 0, /* no tool-call syntax: everything is content (and reasoning markers) */
    LC_FMT_HERMES,    /* <tool_call>{"name":..,"arguments":{..}}</tool_call>: Qwen2.5/Qwen3/QwQ, Hermes 2/3 */
    LC_FMT_LLAMA3,    /* {"name":..,"parameters":{..}} as the whole reply, optionally after
                       * <|python_tag|>; several calls separated by ';' or whitespace */
    LC_FMT_MISTRAL,   /* [TOOL_CALLS][{"name":..,"arguments":{..}},..] or
                       * [TOOL_CALLS]name[ARGS]{..} (Mistral Small 3.2, Devstral, Magistral) */
    LC_FMT_HARMONY,   /* gpt-oss: <|channel|>analysis<|message|>..<|end|>, commentary
                       * to=functions.NAME ..<|message|>{args}<|call|>, final ..<|return|> */
} lc_out_format;

/* The format a chat template's model emits, from marker text in the Jinja source. NULL or an
 * unknown template gives LC_FMT_PLAIN. */
lc_out_format lc_outparse_detect(const char *chat_template);

typedef struct lc_outparse_opts {
    lc_out_format format;
    const char *think_open;   /* reasoning start marker ("<think>"); NULL = none. Not copied:
                               * must outlive the parser (string literals in practice) */
    const char *think_close;  /* reasoning end marker ("</think>"); NULL when think_open is */
    bool starts_in_reasoning; /* the rendered prompt ends inside a reasoning block (DeepSeek-R1
                               * and QwQ prompts end with "<think>\n"): text before think_close
                               * is reasoning */
    bool tools;               /* the request offered tools: only then is tool-call syntax parsed
                               * (otherwise it is content) */
    uint64_t seed;            /* seeds the tool-call ids ("call_" + 24 alphanumerics) */
} lc_outparse_opts;

/* How a format spells one call, for writing one (forced tool calls): open + "name" (JSON
 * string) + mid + {arguments} + close. */
typedef struct lc_call_syntax {
    lc_out_format format;
    const char *open, *mid, *close;
} lc_call_syntax;

/* The call syntax of format; NULL for formats without one (PLAIN, and HARMONY, whose calls go
 * through channels and control tokens). */
const lc_call_syntax *lc_outparse_call_syntax(lc_out_format format);

/* PLAIN, no reasoning markers, not in reasoning, tools off, seed 0. */
lc_outparse_opts lc_outparse_opts_default(void);

/* Fills o->format (lc_outparse_detect) and o->think_open/think_close from the template's
 * reasoning markers: "<think>" (Qwen3, QwQ, DeepSeek-R1, GLM, SmolLM3, ...), "<seed:think>"
 * (Seed-OSS), "<|START_THINKING|>" (Command R7B), "[THINK]" (Magistral); harmony's analysis
 * channel needs none. Leaves the other fields alone. Markers point to static strings. */
void lc_outparse_opts_from_template(const char *chat_template, lc_outparse_opts *o);

/* One tool call. In a delta it is complete: a call is released once, when its closing syntax
 * has been seen and its JSON parsed; index counts calls from 0 in the order they were made. */
typedef struct lc_tool_call {
    int index;
    char id[32];     /* "call_" + 24 alphanumerics, NUL-terminated */
    char *name;      /* function name (lc_malloc'd, owned by the delta or result) */
    char *arguments; /* compact JSON text of the arguments object, as OpenAI sends it */
} lc_tool_call;

/* What one feed/finish released. The parser APPENDS to it; the caller clears it (or not)
 * between calls. Zero-initialise it ({0}); free with lc_outparse_delta_free. */
typedef struct lc_outparse_delta {
    lc_str content;
    lc_str reasoning;
    lc_tool_call *calls;
    int n_calls;
    size_t cap_calls;
} lc_outparse_delta;

/* Empties a delta but keeps its buffers for reuse. */
void lc_outparse_delta_clear(lc_outparse_delta *d);
void lc_outparse_delta_free(lc_outparse_delta *d);

/* Everything released so far: content and reasoning are exactly the concatenation of the
 * deltas' texts, calls the list of all calls. Owned by the parser. */
typedef struct lc_outparse_final {
    lc_str content;
    lc_str reasoning;
    lc_tool_call *calls;
    int n_calls;
    size_t cap_calls;
} lc_outparse_final;

typedef struct lc_outparse lc_outparse;

/* Makes a parser for one generation. Returns LC_ERR_INVALID (think_open without think_close,
 * a bad format) or LC_ERR_OOM. Free with lc_outparse_free. */
lc_status lc_outparse_create(const lc_outparse_opts *o, lc_outparse **out);
void lc_outparse_free(lc_outparse *p);

/* Feeds the next generated text (any split: pieces may cut markers, JSON or UTF-8 anywhere).
 * Appends to d what can be released now. Text that might be the start of a marker ("<tool_c")
 * is held back until it is decided, so marker text never reaches content; whitespace is held
 * too where it might turn out to be the gap before a tool call or the end of the reply.
 * Policy (the same for every split): leading and trailing whitespace of content and of
 * reasoning is dropped; reasoning markers count only before any content; a tool call that
 * fails to parse comes back as content text (its raw text, markers included) when its end is
 * seen or at finish. Feeding any split of a text gives the same concatenated deltas and
 * result. Returns LC_OK, or LC_ERR_OOM (the parser is then unusable). */
lc_status lc_outparse_feed(lc_outparse *p, const char *text, size_t len, lc_outparse_delta *d);

/* End of stream: releases held text (a partial marker becomes content or reasoning text; an
 * unfinished tool call becomes content text). Further feeds are ignored. */
lc_status lc_outparse_finish(lc_outparse *p, lc_outparse_delta *d);

/* The accumulated result (valid until the parser is freed). */
const lc_outparse_final *lc_outparse_result(const lc_outparse *p);

#endif /* LC_TEXT_OUTPARSE_H */
