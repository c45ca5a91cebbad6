/* template.c — `locara template (-m FILE.gguf | --template FILE.jinja) --input CONV.json`:
 * renders a chat conversation through a chat template and prints the prompt exactly (no
 * newline added), for checking a model's template against Python's transformers.
 *
 * CONV.json: {"messages": [...], "tools": [...], "add_generation_prompt": bool, "bos_token",
 * "eos_token", "enable_thinking": bool, ...}; any other key is passed to the template as is.
 * With -m the template is tokenizer.chat_template and bos/eos default to the model's tokens.
 */
#include "cli.h"

#include "gguf/gguf.h"
#include "text/chat.h"

#include <stdio.h>
#include <string.h>

/* The text of token id key's value (tokenizer.ggml.bos_token_id, ...) as a heap string, or
 * NULL when the model does not say. */
static char *model_token(const lc_gguf *g, const char *key) {
    uint64_t id;
    if (!lc_gguf_get_u64(g, key, &id)) return NULL;
    const lc_gguf_value *toks = lc_gguf_get(g, "tokenizer.ggml.tokens");
    if (!toks || toks->type != LC_GGUF_ARRAY || toks->arr.elem != LC_GGUF_STRING || id >= toks->arr.n) return NULL;
    lc_gguf_str s = lc_gguf_arr_str(toks, id);
    return lc_strndup(s.p, (size_t)s.n);
}

int cmd_template(int argc, char **argv) {
    const char *model = NULL, *tmpl_path = NULL, *input = NULL;
    const cli_opt opts[] = {
        {"--model", "-m", CLI_STR, &model, "GGUF model whose tokenizer.chat_template is used"},
        {"--template", NULL, CLI_STR, &tmpl_path, "a Jinja chat template file"},
        {"--input", "-i", CLI_STR, &input, "conversation JSON (messages, tools, flags)"},
    };
    const char *pos[1];
    int npos;
    int rc = cli_parse(argc, argv, opts, 3, pos, 1, &npos,
                       "locara template (-m FILE.gguf | --template FILE.jinja) --input CONV.json");
    if (rc) return rc == 1 ? 0 : rc;
    if ((!model) == (!tmpl_path) || !input || npos) {
        fprintf(stderr, "locara: template needs exactly one of -m / --template, and --input\n");
        return 2;
    }
    int ret = 1;
    char *src = NULL, *bos = NULL, *eos = NULL, *out = NULL;
    size_t len;
    lc_gguf *g = NULL;
    json_error_t je;
    json_t *conv = json_load_file(input, 0, &je);
    if (!conv || !json_is_object(conv)) {
        fprintf(stderr, "locara: %s: %s\n", input, conv ? "must hold a JSON object" : je.text);
        goto done;
    }
    if (tmpl_path) {
        if (lc_read_file(tmpl_path, &src, &len) != LC_OK) {
            fprintf(stderr, "locara: %s\n", lc_last_error());
            goto done;
        }
    } else {
        if (lc_gguf_open(model, &g) != LC_OK) {
            fprintf(stderr, "locara: %s\n", lc_last_error());
            goto done;
        }
        lc_gguf_str s;
        if (lc_gguf_get_strv(g, "tokenizer.chat_template", &s)) src = lc_strndup(s.p, (size_t)s.n);
        else fprintf(stderr, "locara: %s has no tokenizer.chat_template; using ChatML\n", model);
        bos = model_token(g, "tokenizer.ggml.bos_token_id");
        eos = model_token(g, "tokenizer.ggml.eos_token_id");
    }
    lc_chat_opts o = lc_chat_opts_default();
    o.add_generation_prompt = json_is_true(json_object_get(conv, "add_generation_prompt"));
    json_t *et = json_object_get(conv, "enable_thinking");
    if (et) o.enable_thinking = json_is_true(et);
    const char *b = json_string_value(json_object_get(conv, "bos_token"));
    const char *e = json_string_value(json_object_get(conv, "eos_token"));
    o.bos_token = b ? b : bos;
    o.eos_token = e ? e : eos;
    json_t *kw = json_object();
    const char *k;
    json_t *v;
    json_object_foreach(conv, k, v) {
        if (strcmp(k, "messages") && strcmp(k, "tools") && strcmp(k, "add_generation_prompt") &&
            strcmp(k, "enable_thinking") && strcmp(k, "bos_token") && strcmp(k, "eos_token") && k[0] != '_')
            json_object_set(kw, k, v);
    }
    o.kwargs = kw;
    json_t *msgs = json_object_get(conv, "messages");
    lc_status st = msgs ? lc_chat_render(src, msgs, json_object_get(conv, "tools"), &o, &out)
                        : lc_fail(LC_ERR_INVALID, "%s has no \"messages\"", input);
    json_decref(kw);
    if (st != LC_OK) {
        fprintf(stderr, "locara: %s\n", lc_last_error());
        goto done;
    }
    fwrite(out, 1, strlen(out), stdout);
    fflush(stdout);
    ret = 0;
done:
    lc_free(out);
    lc_free(src);
    lc_free(bos);
    lc_free(eos);
    lc_gguf_close(g);
    json_decref(conv);
    return ret;
}
