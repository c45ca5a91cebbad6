/* request.c — parsing and validating OpenAI request bodies (chat and completions).
 *
 * Owns: the mapping from JSON fields to lc_gen_params and the 400 errors for every malformed,
 * wrongly typed, out-of-range or unsupported field (n > 1, best_of, echo, suffix, non-text
 * content parts). Unknown fields are ignored. Needs no model (the fuzz target calls it alone);
 * token ids are range-checked once the model is known (serve_req_check_vocab).
 * Entry points: serve_req_parse, serve_req_check_vocab, serve_req_free, serve_fail.
 */
#include "server/server.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

lc_status serve_fail(serve_err *e, int status, const char *param, const char *code, const char *fmt, ...) {
    e->status = status;
    e->type = status == 404 ? "not_found_error" : status >= 500 ? "server_error" : "invalid_request_error";
    e->param = param;
    e->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
    return LC_ERR_INVALID;
}

void serve_req_free(serve_req *r) {
    if (!r) return;
    json_decref(r->root);
    json_decref(r->messages);
    lc_free(r->prompt_tokens);
    lc_free(r->prefill);
    lc_free((void *)r->gp.sp.logit_bias);
    memset(r, 0, sizeof *r);
}

/* ==== Field readers ==== */

/* Each reader returns LC_OK when the field is absent or null (leaving *out alone). */

static lc_status get_num(json_t *root, const char *key, double lo, double hi, double *out, serve_err *e) {
    json_t *v = json_object_get(root, key);
    if (!v || json_is_null(v)) return LC_OK;
    if (!json_is_number(v)) return serve_fail(e, 400, key, "invalid_type", "'%s' must be a number", key);
    double d = json_number_value(v);
    if (!isfinite(d) || d < lo || d > hi)
        return serve_fail(e, 400, key, "invalid_value", "'%s' must be between %g and %g, got %g", key, lo, hi, d);
    *out = d;
    return LC_OK;
}

static lc_status get_int(json_t *root, const char *key, long long lo, long long hi, long long *out, serve_err *e) {
    json_t *v = json_object_get(root, key);
    if (!v || json_is_null(v)) return LC_OK;
    long long x;
    if (json_is_integer(v)) x = json_integer_value(v);
    else if (json_is_real(v) && json_real_value(v) == floor(json_real_value(v)) && fabs(json_real_value(v)) < 9e15)
        x = (long long)json_real_value(v);
    else return serve_fail(e, 400, key, "invalid_type", "'%s' must be an integer", key);
    if (x < lo || x > hi)
        return serve_fail(e, 400, key, "invalid_value", "'%s' must be between %lld and %lld, got %lld", key, lo, hi, x);
    *out = x;
    return LC_OK;
}

static lc_status get_bool(json_t *root, const char *key, bool *out, serve_err *e) {
    json_t *v = json_object_get(root, key);
    if (!v || json_is_null(v)) return LC_OK;
    if (!json_is_boolean(v)) return serve_fail(e, 400, key, "invalid_type", "'%s' must be a boolean", key);
    *out = json_is_true(v);
    return LC_OK;
}

/* "stop": a string or an array of up to 16 strings. */
static lc_status get_stops(json_t *root, serve_req *r, serve_err *e) {
    json_t *v = json_object_get(root, "stop");
    if (!v || json_is_null(v)) return LC_OK;
    if (json_is_string(v)) {
        if (json_string_length(v)) r->stop_strs[r->gp.n_stops++] = json_string_value(v);
        return LC_OK;
    }
    if (!json_is_array(v)) return serve_fail(e, 400, "stop", "invalid_type", "'stop' must be a string or an array of strings");
    if (json_array_size(v) > LC_ARRAY_LEN(r->stop_strs))
        return serve_fail(e, 400, "stop", "invalid_value", "'stop' may hold at most %zu strings", LC_ARRAY_LEN(r->stop_strs));
    size_t i;
    json_t *s;
    json_array_foreach(v, i, s) {
        if (!json_is_string(s)) return serve_fail(e, 400, "stop", "invalid_type", "'stop' must be a string or an array of strings");
        if (json_string_length(s)) r->stop_strs[r->gp.n_stops++] = json_string_value(s);
    }
    return LC_OK;
}

/* "logit_bias": {"token id": bias in [-100, 100]}; -100 bans the token. */
static lc_status get_bias(json_t *root, serve_req *r, serve_err *e) {
    json_t *v = json_object_get(root, "logit_bias");
    if (!v || json_is_null(v)) return LC_OK;
    if (!json_is_object(v)) return serve_fail(e, 400, "logit_bias", "invalid_type", "'logit_bias' must be an object");
    size_t n = json_object_size(v);
    if (n > 1024) return serve_fail(e, 400, "logit_bias", "invalid_value", "'logit_bias' may hold at most 1024 entries");
    if (!n) return LC_OK;
    lc_logit_bias *b = lc_malloc(n * sizeof *b);
    if (!b) return serve_fail(e, 500, NULL, NULL, "out of memory");
    r->gp.sp.logit_bias = b;
    const char *key;
    json_t *x;
    int k = 0;
    json_object_foreach(v, key, x) {
        char *end;
        long id = strtol(key, &end, 10);
        if (!*key || *end || id < 0 || id > INT32_MAX)
            return serve_fail(e, 400, "logit_bias", "invalid_value", "'logit_bias' key '%.40s' is not a token id", key);
        if (!json_is_number(x))
            return serve_fail(e, 400, "logit_bias", "invalid_type", "'logit_bias' values must be numbers");
        double d = json_number_value(x);
        if (!isfinite(d) || d < -100 || d > 100)
            return serve_fail(e, 400, "logit_bias", "invalid_value", "'logit_bias' values must be between -100 and 100");
        b[k].token = (int32_t)id;
        b[k].bias = d <= -100 ? -INFINITY : (float)d;
        k++;
        r->gp.sp.n_logit_bias = k;
    }
    return LC_OK;
}

/* ==== Messages ==== */

/* Copies one message into the template's shape: content flattened to a string (text parts
 * joined), tool_calls' arguments parsed from JSON text into objects (templates index them). */
static lc_status norm_message(json_t *m, size_t idx, json_t *out, serve_err *e) {
    if (!json_is_object(m)) return serve_fail(e, 400, "messages", "invalid_type", "messages[%zu] must be an object", idx);
    json_t *role = json_object_get(m, "role");
    if (!json_is_string(role)) return serve_fail(e, 400, "messages", "invalid_value", "messages[%zu].role must be a string", idx);
    const char *rs = json_string_value(role);
    static const char *const roles[] = {"system", "user", "assistant", "tool", "developer", "function"};
    bool ok = false;
    for (size_t i = 0; i < LC_ARRAY_LEN(roles); i++) ok |= !strcmp(rs, roles[i]);
    if (!ok) return serve_fail(e, 400, "messages", "invalid_value", "messages[%zu].role '%.40s' is not one of system, user, assistant, tool, developer", idx, rs);
    json_t *nm = json_object();
    if (!nm) return serve_fail(e, 500, NULL, NULL, "out of memory");
    json_array_append_new(out, nm);
    json_object_set_new(nm, "role", json_string(!strcmp(rs, "developer") ? "system" : rs));
    json_t *c = json_object_get(m, "content");
    json_t *calls = json_object_get(m, "tool_calls");
    if (calls && !json_is_null(calls) && !json_is_array(calls))
        return serve_fail(e, 400, "messages", "invalid_type", "messages[%zu].tool_calls must be an array", idx);
    bool has_calls = json_is_array(calls) && json_array_size(calls) > 0;
    if (json_is_string(c)) {
        json_object_set(nm, "content", c);
    } else if (json_is_array(c)) {
        lc_str s = {0};
        size_t i;
        json_t *part;
        json_array_foreach(c, i, part) {
            json_t *type = json_object_get(part, "type");
            json_t *text = json_object_get(part, "text");
            if (!json_is_object(part) || !json_is_string(type) || strcmp(json_string_value(type), "text") || !json_is_string(text)) {
                lc_str_free(&s);
                return serve_fail(e, 400, "messages", "invalid_value",
                                  "messages[%zu].content[%zu]: only {\"type\":\"text\",\"text\":...} parts are supported", idx, i);
            }
            lc_str_append(&s, json_string_value(text), json_string_length(text));
        }
        json_object_set_new(nm, "content", json_stringn(s.buf ? s.buf : "", s.len));
        lc_str_free(&s);
    } else if ((!c || json_is_null(c)) && (has_calls || !strcmp(rs, "assistant"))) {
        json_object_set_new(nm, "content", has_calls ? json_null() : json_string(""));
    } else {
        return serve_fail(e, 400, "messages", "invalid_type", "messages[%zu].content must be a string or an array of text parts", idx);
    }
    if (has_calls) {
        json_t *nc = json_array();
        json_object_set_new(nm, "tool_calls", nc);
        size_t i;
        json_t *tc;
        json_array_foreach(calls, i, tc) {
            json_t *fn = json_object_get(tc, "function");
            json_t *name = json_object_get(fn, "name");
            if (!json_is_object(tc) || !json_is_object(fn) || !json_is_string(name))
                return serve_fail(e, 400, "messages", "invalid_value", "messages[%zu].tool_calls[%zu] needs function.name", idx, i);
            json_t *cc = json_deep_copy(tc);
            json_t *cfn = json_object_get(cc, "function");
            json_t *args = json_object_get(cfn, "arguments");
            if (json_is_string(args)) {
                json_t *parsed = json_loads(json_string_value(args), JSON_DECODE_ANY, NULL);
                if (parsed) json_object_set_new(cfn, "arguments", parsed);
            }
            json_array_append_new(nc, cc);
        }
    }
    static const char *const keep[] = {"name", "tool_call_id", "reasoning_content"};
    for (size_t i = 0; i < LC_ARRAY_LEN(keep); i++) {
        json_t *v = json_object_get(m, keep[i]);
        if (json_is_string(v)) json_object_set(nm, keep[i], v);
    }
    return LC_OK;
}

static lc_status parse_messages(json_t *root, serve_req *r, serve_err *e) {
    json_t *v = json_object_get(root, "messages");
    if (!v) return serve_fail(e, 400, "messages", "missing_required_parameter", "'messages' is required");
    if (!json_is_array(v)) return serve_fail(e, 400, "messages", "invalid_type", "'messages' must be an array");
    if (!json_array_size(v)) return serve_fail(e, 400, "messages", "invalid_value", "'messages' must not be empty");
    if (json_array_size(v) > 100000) return serve_fail(e, 400, "messages", "invalid_value", "too many messages");
    r->messages = json_array();
    if (!r->messages) return serve_fail(e, 500, NULL, NULL, "out of memory");
    size_t i;
    json_t *m;
    json_array_foreach(v, i, m) {
        lc_status st = norm_message(m, i, r->messages, e);
        if (st) return st;
    }
    return LC_OK;
}

static lc_status parse_tools(json_t *root, serve_req *r, serve_err *e) {
    json_t *t = json_object_get(root, "tools");
    json_t *tc = json_object_get(root, "tool_choice");
    if (t && !json_is_null(t)) {
        if (!json_is_array(t)) return serve_fail(e, 400, "tools", "invalid_type", "'tools' must be an array");
        size_t i;
        json_t *x;
        json_array_foreach(t, i, x) {
            json_t *fn = json_object_get(x, "function");
            if (!json_is_object(x) || !json_is_object(fn) || !json_is_string(json_object_get(fn, "name")))
                return serve_fail(e, 400, "tools", "invalid_value", "tools[%zu] must be {\"type\":\"function\",\"function\":{\"name\":...}}", i);
        }
        if (json_array_size(t)) r->tools = t;
    }
    if (tc && !json_is_null(tc)) {
        if (json_is_string(tc)) {
            const char *s = json_string_value(tc);
            if (!strcmp(s, "none")) r->tools = NULL;
            else if (!strcmp(s, "required")) r->tool_required = true;
            else if (strcmp(s, "auto"))
                return serve_fail(e, 400, "tool_choice", "invalid_value", "'tool_choice' must be none, auto, required or an object");
        } else if (!json_is_object(tc)) {
            return serve_fail(e, 400, "tool_choice", "invalid_type", "'tool_choice' must be a string or an object");
        } else {
            json_t *fn = json_object_get(tc, "function");
            json_t *nm = json_object_get(fn, "name");
            if (!json_is_string(nm))
                return serve_fail(e, 400, "tool_choice", "invalid_value",
                                  "'tool_choice' must be {\"type\":\"function\",\"function\":{\"name\":...}}");
            r->tool_required = true;
            r->tool_name = json_string_value(nm);
        }
        if (r->tool_required && !r->tools)
            return serve_fail(e, 400, "tool_choice", "invalid_value", "'tool_choice' requires 'tools'");
        if (r->tool_name) {
            bool found = false;
            size_t i;
            json_t *x;
            json_array_foreach(r->tools, i, x) {
                const char *n = json_string_value(json_object_get(json_object_get(x, "function"), "name"));
                if (!strcmp(n, r->tool_name)) found = true; /* names checked above */
            }
            if (!found)
                return serve_fail(e, 400, "tool_choice", "invalid_value", "'tool_choice' names '%.200s', which is not in 'tools'",
                                  r->tool_name);
        }
    }
    return LC_OK;
}

/* "prompt": a string, an array of one string, an array of token ids, or an array of one such. */
static lc_status parse_prompt(json_t *root, serve_req *r, serve_err *e) {
    json_t *p = json_object_get(root, "prompt");
    if (!p || json_is_null(p)) return serve_fail(e, 400, "prompt", "missing_required_parameter", "'prompt' is required");
    if (json_is_array(p) && json_array_size(p) == 1 && !json_is_integer(json_array_get(p, 0))) p = json_array_get(p, 0);
    if (json_is_string(p)) {
        r->prompt = json_string_value(p);
        if (!json_string_length(p)) return serve_fail(e, 400, "prompt", "invalid_value", "'prompt' must not be empty");
        return LC_OK;
    }
    if (!json_is_array(p) || !json_array_size(p))
        return serve_fail(e, 400, "prompt", "invalid_type", "'prompt' must be a string or an array of token ids (one prompt per request)");
    size_t n = json_array_size(p);
    r->prompt_tokens = lc_malloc(n * sizeof(lc_token));
    if (!r->prompt_tokens) return serve_fail(e, 500, NULL, NULL, "out of memory");
    for (size_t i = 0; i < n; i++) {
        json_t *x = json_array_get(p, i);
        json_int_t id = json_is_integer(x) ? json_integer_value(x) : -1;
        if (id < 0 || id > INT32_MAX)
            return serve_fail(e, 400, "prompt", "invalid_value", "prompt[%zu] is not a token id%s", i,
                              json_is_string(x) ? " (several prompts in one request are not supported)" : "");
        r->prompt_tokens[i] = (lc_token)id;
    }
    r->n_prompt_tokens = (int)n;
    return LC_OK;
}

/* ==== The request ==== */

static lc_status parse_body(json_t *root, serve_kind kind, serve_req *r, serve_err *e) {
    lc_status st;
    json_t *model = json_object_get(root, "model");
    if (model && !json_is_null(model)) {
        if (!json_is_string(model)) return serve_fail(e, 400, "model", "invalid_type", "'model' must be a string");
        r->model = json_string_value(model);
    }
    if (kind == SERVE_CHAT) {
        if ((st = parse_messages(root, r, e)) || (st = parse_tools(root, r, e))) return st;
    } else if ((st = parse_prompt(root, r, e))) {
        return st;
    }
    lc_gen_params *gp = &r->gp;
    gp->sp = lc_sampler_params_default();
    gp->max_tokens = -1;
    long long n = 1, best_of = 1, mt = -1, seed = 0, top_k = gp->sp.top_k, top_logprobs = 0;
    double temp = gp->sp.temperature, top_p = gp->sp.top_p, min_p = gp->sp.min_p;
    double pres = 0, freq = 0, rep = 1;
    if ((st = get_int(root, "n", 1, 128, &n, e))) return st;
    if (n != 1) return serve_fail(e, 400, "n", "unsupported_value", "only n = 1 is supported");
    if ((st = get_int(root, "best_of", 1, 128, &best_of, e))) return st;
    if (best_of != 1) return serve_fail(e, 400, "best_of", "unsupported_value", "only best_of = 1 is supported");
    if ((st = get_int(root, "max_tokens", 1, 1 << 24, &mt, e))) return st;
    if ((st = get_int(root, "max_completion_tokens", 1, 1 << 24, &mt, e))) return st;
    if ((st = get_num(root, "temperature", 0, 100, &temp, e))) return st;
    if ((st = get_num(root, "top_p", 0, 1, &top_p, e))) return st;
    if ((st = get_int(root, "top_k", 0, 1 << 24, &top_k, e))) return st;
    if ((st = get_num(root, "min_p", 0, 1, &min_p, e))) return st;
    if ((st = get_num(root, "presence_penalty", -2, 2, &pres, e))) return st;
    if ((st = get_num(root, "frequency_penalty", -2, 2, &freq, e))) return st;
    if ((st = get_num(root, "repeat_penalty", 0.01, 10, &rep, e))) return st;
    json_t *sv = json_object_get(root, "seed");
    if (sv && !json_is_null(sv)) {
        if (!json_is_integer(sv)) return serve_fail(e, 400, "seed", "invalid_type", "'seed' must be an integer");
        seed = json_integer_value(sv);
        r->seed_given = true;
    }
    gp->max_tokens = (int)mt;
    gp->sp.temperature = (float)temp;
    gp->sp.top_p = top_p < 1e-6 ? 1e-6f : (float)top_p;
    gp->sp.top_k = (int)top_k;
    gp->sp.min_p = (float)min_p;
    gp->sp.presence_penalty = (float)pres;
    gp->sp.frequency_penalty = (float)freq;
    gp->sp.repeat_penalty = (float)rep;
    gp->sp.seed = (uint64_t)seed;
    if ((st = get_stops(root, r, e))) return st;
    gp->stops = r->stop_strs;
    if ((st = get_bias(root, r, e))) return st;
    /* logprobs: a boolean (chat) or an integer count (completions) */
    json_t *lp = json_object_get(root, "logprobs");
    if (kind == SERVE_CHAT) {
        if ((st = get_bool(root, "logprobs", &gp->logprobs, e))) return st;
        if ((st = get_int(root, "top_logprobs", 0, 20, &top_logprobs, e))) return st;
        if (top_logprobs && !gp->logprobs)
            return serve_fail(e, 400, "top_logprobs", "invalid_value", "'top_logprobs' requires 'logprobs': true");
    } else if (lp && !json_is_null(lp)) {
        if ((st = get_int(root, "logprobs", 0, 20, &top_logprobs, e))) return st;
        gp->logprobs = true;
    }
    gp->top_logprobs = (int)top_logprobs;
    bool echo = false;
    if ((st = get_bool(root, "ignore_eos", &gp->ignore_eos, e))) return st;
    if ((st = get_bool(root, "stream", &r->stream, e)) || (st = get_bool(root, "echo", &echo, e))) return st;
    if (echo) return serve_fail(e, 400, "echo", "unsupported_value", "'echo' is not supported");
    /* Ollama's keep_alive: how long the model stays loaded after this request */
    json_t *ka = json_object_get(root, "keep_alive");
    if (ka && !json_is_null(ka)) {
        if (json_is_number(ka)) {
            r->keep_alive = json_number_value(ka) < 0 ? LC_KEEP_FOREVER : json_number_value(ka);
        } else if (!json_is_string(ka) || lc_duration_parse(json_string_value(ka), &r->keep_alive)) {
            lc_clear_error();
            return serve_fail(e, 400, "keep_alive", "invalid_value",
                              "'keep_alive' must be a duration (\"5m\", \"1s\"), a number of seconds, 0 or -1");
        }
    }
    json_t *suffix = json_object_get(root, "suffix");
    if (suffix && !json_is_null(suffix) && !(json_is_string(suffix) && !json_string_length(suffix)))
        return serve_fail(e, 400, "suffix", "unsupported_value", "'suffix' is not supported");
    json_t *so = json_object_get(root, "stream_options");
    if (so && !json_is_null(so)) {
        if (!json_is_object(so)) return serve_fail(e, 400, "stream_options", "invalid_type", "'stream_options' must be an object");
        if ((st = get_bool(so, "include_usage", &r->include_usage, e))) return st;
    }
    json_t *rf = json_object_get(root, "response_format");
    if (rf && !json_is_null(rf)) {
        json_t *t = json_object_get(rf, "type");
        if (!json_is_object(rf) || !json_is_string(t))
            return serve_fail(e, 400, "response_format", "invalid_type", "'response_format' must be {\"type\": ...}");
        const char *ts = json_string_value(t);
        if (!strcmp(ts, "json_object") || !strcmp(ts, "json_schema")) r->json_mode = true;
        else if (strcmp(ts, "text"))
            return serve_fail(e, 400, "response_format", "invalid_value", "'response_format.type' must be text, json_object or json_schema");
    }
    return LC_OK;
}

lc_status serve_req_parse(const char *body, size_t len, serve_kind kind, serve_req *out, serve_err *err) {
    memset(out, 0, sizeof *out);
    out->kind = kind;
    out->keep_alive = LC_KEEP_UNSET;
    json_error_t je;
    out->root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
    if (!out->root) {
        bool utf8 = strstr(je.text, "UTF-8") || strstr(je.text, "decode byte") || strstr(je.text, "unicode");
        return serve_fail(err, 400, NULL, utf8 ? "invalid_utf8" : "invalid_json", "%s: %s (line %d, column %d)",
                          utf8 ? "invalid UTF-8 in the request body" : "the request body is not valid JSON", je.text,
                          je.line, je.column);
    }
    if (!json_is_object(out->root)) return serve_fail(err, 400, NULL, "invalid_json", "the request body must be a JSON object");
    return parse_body(out->root, kind, out, err);
}

lc_status serve_req_check_vocab(const serve_req *r, int n_vocab, serve_err *err) {
    for (int i = 0; i < r->n_prompt_tokens; i++)
        if (r->prompt_tokens[i] >= n_vocab)
            return serve_fail(err, 400, "prompt", "invalid_value", "prompt[%d] is not a token id", i);
    for (int i = 0; i < r->gp.sp.n_logit_bias; i++)
        if (r->gp.sp.logit_bias[i].token >= n_vocab)
            return serve_fail(err, 400, "logit_bias", "invalid_value", "'logit_bias' key '%d' is not a token id",
                              (int)r->gp.sp.logit_bias[i].token);
    return LC_OK;
}
