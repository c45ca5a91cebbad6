/* jinja.h — a Jinja2 template engine for chat templates: parse once, render many times.
 *
 * Covers what Hugging Face chat templates use, configured as transformers does (trim_blocks,
 * lstrip_blocks, loopcontrols, immutable sandbox, tojson = json.dumps(ensure_ascii=False)).
 * Output matches Python jinja2 byte for byte, including Python's str()/repr() of values.
 * Not here: include/extends/import, autoescape. Entry points: lc_jinja_parse, lc_jinja_render.
 */
#ifndef LC_JINJA_H
#define LC_JINJA_H

#include "base/base.h"

#include <jansson.h>

typedef struct lc_jinja_tmpl lc_jinja_tmpl;

/* Bounds on one render; zero fields take the defaults (see lc_jinja_render). */
typedef struct lc_jinja_opts {
    size_t max_output;    /* bytes of output (default 16 MiB) */
    size_t max_memory;    /* bytes of working memory for one render (default 256 MiB) */
    long max_iterations;  /* loop iterations over the whole render (default 1,000,000) */
    int max_depth;        /* nested macro calls / evaluation depth (default 200) */
    long long fixed_time; /* strftime_now uses this UTC epoch second when > 0; else env
                             LOCARA_FIXED_TIME if set, else the current local time */
} lc_jinja_opts;

/* Parses template source src (len bytes). On failure returns LC_ERR_FORMAT with a message
 * "line L, column C: ...". The template is immutable after parsing and may be rendered from
 * several threads at once. Free with lc_jinja_free. */
lc_status lc_jinja_parse(const char *src, size_t len, lc_jinja_tmpl **out);
void lc_jinja_free(lc_jinja_tmpl *t);

/* Renders t with the top-level variables of the JSON object vars (may be NULL). On success
 * *out is a NUL-terminated heap string (lc_free it) and *out_len its length (may be NULL).
 * Template errors (raise_exception, undefined access, type errors, exceeded bounds) return
 * LC_ERR_FORMAT or LC_ERR_RANGE with the message prefixed "line L: ". */
lc_status lc_jinja_render(const lc_jinja_tmpl *t, const json_t *vars, const lc_jinja_opts *opts,
                          char **out, size_t *out_len);

#endif /* LC_JINJA_H */
