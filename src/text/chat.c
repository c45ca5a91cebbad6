/* chat.c — chat prompt rendering: validates OpenAI-style messages, builds the template
 * variables as transformers' apply_chat_template does, and renders through the Jinja engine.
 *
 * Variables: messages, tools (None when absent), documents (None), add_generation_prompt,
 * bos_token, eos_token, enable_thinking (only when set), then the caller's extra kwargs (which
 * may override any of these). Entry points: lc_chat_template_create, lc_chat_template_render,
 * lc_chat_render, lc_chat_validate.
 */
#include "text/chat.h"

#include <string.h>

const char *const lc_chat_template_chatml =
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' }}"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% elif message['content'] is iterable %}{% for part in message['content'] %}"
    "{% if part['type'] == 'text' %}{{ part['text'] }}{% endif %}{% endfor %}{% endif %}"
    "{{ '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

struct lc_chat_template {
    lc_jinja_tmpl *tmpl;
};

lc_chat_opts lc_chat_opts_default(void) {
    lc_chat_opts o;
    memset(&o, 0, sizeof o);
    o.enable_thinking = -1;
    return o;
}

lc_status lc_chat_template_create(const char *src, lc_chat_template **out) {
    *out = NULL;
    if (!src) src = lc_chat_template_chatml;
    lc_chat_template *t = lc_calloc(1, sizeof *t);
    if (!t) return LC_ERR_OOM;
    lc_status st = lc_jinja_parse(src, strlen(src), &t->tmpl);
    if (st != LC_OK) {
        lc_free(t);
        return lc_fail_wrap(st, "chat template: ");
    }
    *out = t;
    return LC_OK;
}

void lc_chat_template_free(lc_chat_template *t) {
    if (!t) return;
    lc_jinja_free(t->tmpl);
    lc_free(t);
}

lc_status lc_chat_validate(const json_t *messages, const json_t *tools) {
    if (!json_is_array(messages)) return lc_fail(LC_ERR_INVALID, "messages must be an array");
    size_t i;
    json_t *m;
    json_array_foreach(messages, i, m) {
        if (!json_is_object(m)) return lc_fail(LC_ERR_INVALID, "messages[%zu] must be an object", i);
        json_t *role = json_object_get(m, "role");
        if (!role) return lc_fail(LC_ERR_INVALID, "messages[%zu] has no 'role'", i);
        if (!json_is_string(role)) return lc_fail(LC_ERR_INVALID, "messages[%zu].role must be a string", i);
        json_t *content = json_object_get(m, "content");
        json_t *calls = json_object_get(m, "tool_calls");
        if (!content && !calls) return lc_fail(LC_ERR_INVALID, "messages[%zu] has no 'content'", i);
        if (content && !json_is_string(content) && !json_is_null(content) && !json_is_array(content))
            return lc_fail(LC_ERR_INVALID, "messages[%zu].content must be a string, an array of parts, or null", i);
        if (json_is_array(content)) {
            size_t k;
            json_t *part;
            json_array_foreach(content, k, part) {
                if (!json_is_object(part) || !json_is_string(json_object_get(part, "type")))
                    return lc_fail(LC_ERR_INVALID, "messages[%zu].content[%zu] must be an object with a string 'type'", i, k);
            }
        }
        if (calls && !json_is_array(calls) && !json_is_null(calls))
            return lc_fail(LC_ERR_INVALID, "messages[%zu].tool_calls must be an array", i);
    }
    if (tools && !json_is_array(tools) && !json_is_null(tools)) return lc_fail(LC_ERR_INVALID, "tools must be an array");
    return LC_OK;
}

lc_status lc_chat_template_render(const lc_chat_template *t, const json_t *messages, const json_t *tools,
                                  const lc_chat_opts *opts, char **out_prompt) {
    *out_prompt = NULL;
    lc_chat_opts o = opts ? *opts : lc_chat_opts_default();
    lc_status st = lc_chat_validate(messages, tools);
    if (st != LC_OK) return st;
    if (o.kwargs && !json_is_object(o.kwargs)) return lc_fail(LC_ERR_INVALID, "chat template kwargs must be an object");
    json_t *vars = json_object();
    if (!vars) return lc_fail(LC_ERR_OOM, "out of memory");
    json_object_set(vars, "messages", (json_t *)messages);
    json_object_set_new(vars, "tools", tools ? json_incref((json_t *)tools) : json_null());
    json_object_set_new(vars, "documents", json_null());
    json_object_set_new(vars, "add_generation_prompt", json_boolean(o.add_generation_prompt));
    json_object_set_new(vars, "bos_token", json_string(o.bos_token ? o.bos_token : ""));
    json_object_set_new(vars, "eos_token", json_string(o.eos_token ? o.eos_token : ""));
    if (o.enable_thinking >= 0) json_object_set_new(vars, "enable_thinking", json_boolean(o.enable_thinking));
    if (o.kwargs) json_object_update(vars, (json_t *)o.kwargs);
    st = lc_jinja_render(t->tmpl, vars, &o.limits, out_prompt, NULL);
    json_decref(vars);
    return st;
}

lc_status lc_chat_render(const char *template_src, const json_t *messages, const json_t *tools,
                         const lc_chat_opts *opts, char **out_prompt) {
    *out_prompt = NULL;
    lc_chat_template *t;
    lc_status st = lc_chat_template_create(template_src, &t);
    if (st != LC_OK) return st;
    st = lc_chat_template_render(t, messages, tools, opts, out_prompt);
    lc_chat_template_free(t);
    return st;
}
