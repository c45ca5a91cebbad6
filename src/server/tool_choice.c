/* tool_choice.c — enforcing tool_choice "required" and {"type":"function","function":{"name":..}}.
 *
 * Like llama-server (a grammar) and vLLM (guided decoding), the reply is made a tool call by
 * construction, in the syntax the model's template uses (lc_outparse_call_syntax): the call's
 * opening syntax, and the function's name when one is named, are appended to the rendered prompt
 * (a prefill, so the model does not spend steps on forced text), and sampling is constrained to
 * the rest: one of the tools' names, a JSON object of arguments, the closing syntax, then the end
 * of generation (json_mode.c's grammar). One call per reply. Policy where a call cannot be forced:
 * a template without tool-call syntax gets a 400; gpt-oss's harmony format is served as "auto".
 * Entry points: serve_tool_prefill, serve_tool_constraint.
 */
#include "server/server.h"

#include "text/outparse.h"

#include <string.h>

/* The JSON text of a name, quotes included ("get_weather"), lc_malloc'd; NULL on OOM. */
static char *json_name(const char *name) {
    json_t *j = json_string(name);
    char *d = j ? json_dumps(j, JSON_ENCODE_ANY) : NULL;
    json_decref(j);
    char *r = d ? lc_strdup(d) : NULL;
    free(d);
    return r;
}

lc_status serve_tool_prefill(serve_model *sm, serve_req *rq, serve_err *err) {
    if (!rq->tool_required) return LC_OK; /* request.c: a required call comes with tools */
    const lc_outparse_opts *po = &sm->parse;
    const lc_call_syntax *cs = lc_outparse_call_syntax(po->format);
    if (!cs) {
        if (po->format == LC_FMT_HARMONY) { /* channels and control tokens: served as "auto" */
            rq->tool_required = false;
            rq->tool_name = NULL;
            return LC_OK;
        }
        return serve_fail(err, 400, "tool_choice", "unsupported_value",
                          "this model's chat template has no tool-call syntax, so a tool call cannot be required");
    }
    lc_str s = {0};
    bool ok = true;
    if (rq->starts_in_reasoning && po->think_close) /* the prompt opened a reasoning block: close it */
        ok = lc_str_printf(&s, "%s\n\n", po->think_close);
    ok = ok && lc_str_puts(&s, cs->open);
    if (ok && rq->tool_name) {
        char *nm = json_name(rq->tool_name);
        ok = nm && lc_str_printf(&s, "%s%s", nm, cs->mid);
        lc_free(nm);
    }
    if (ok) rq->prefill = lc_str_take(&s);
    lc_str_free(&s);
    if (!rq->prefill) return serve_fail(err, 500, NULL, NULL, "out of memory");
    return LC_OK;
}

lc_status serve_tool_constraint(serve_model *sm, const serve_req *rq, lc_sched_constraint *out) {
    const lc_call_syntax *cs = lc_outparse_call_syntax(sm->parse.format);
    if (!cs) return lc_fail(LC_ERR_INVALID, "no tool-call syntax for this template");
    size_t n_tools = json_array_size(rq->tools);
    char **names = lc_calloc(n_tools ? n_tools : 1, sizeof *names);
    if (!names) return lc_fail(LC_ERR_OOM, "out of memory");
    lc_status st = LC_OK;
    int n = 0;
    if (!rq->tool_name) { /* "required": any of the tools (the grammar merges equal names) */
        size_t i;
        json_t *x;
        json_array_foreach(rq->tools, i, x) {
            const char *name = json_string_value(json_object_get(json_object_get(x, "function"), "name"));
            if (!name[0]) continue; /* request.c: every tool's name is a string */
            char *nm = json_name(name);
            lc_str a = {0};
            if (nm && lc_str_printf(&a, "%s%s", nm, cs->mid)) names[n] = lc_str_take(&a);
            lc_str_free(&a);
            lc_free(nm);
            if (!names[n]) {
                st = lc_fail(LC_ERR_OOM, "out of memory");
                goto done;
            }
            n++;
        }
        if (!n) {
            st = lc_fail(LC_ERR_INVALID, "no tool has a name");
            goto done;
        }
    }
    const char *close[] = {cs->close};
    serve_gseg segs[3];
    int k = 0;
    if (n) segs[k++] = (serve_gseg){(const char *const *)names, n};
    segs[k++] = (serve_gseg){NULL, 0};
    segs[k++] = (serve_gseg){close, 1};
    st = serve_grammar_constraint(sm, segs, k, out);
done:
    for (int i = 0; i < n; i++) lc_free(names[i]);
    lc_free(names);
    return st;
}
