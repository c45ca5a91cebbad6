/* test_outparse.c — the output parsers (text/outparse.h) on recorded model outputs.
 *
 * Every case (a .json file) under tests/golden/outputs (see make_outputs.py there) is fed whole, byte
 * by byte, split at every byte boundary, and (short ones) at every pair of boundaries; all must
 * give the expected content / reasoning / tool calls, the same deltas whatever the split, and
 * no marker text in content unless the expected content has it. Plus format detection on the
 * real templates, tool-call ids, hold-back of partial markers, and argument errors.
 */
#include "text/outparse.h"
#include "testutil.h"

#include <dirent.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

/* What one run produced: texts concatenated from the deltas and the calls as "id name args\n". */
typedef struct outcome {
    lc_str content, reasoning, calls;
    int n_calls;
    bool consistent; /* the deltas' concatenation equals lc_outparse_result */
} outcome;

static void outcome_free(outcome *o) {
    lc_str_free(&o->content);
    lc_str_free(&o->reasoning);
    lc_str_free(&o->calls);
}

static void take_delta(outcome *o, lc_outparse_delta *d) {
    lc_str_append(&o->content, d->content.buf ? d->content.buf : "", d->content.len);
    lc_str_append(&o->reasoning, d->reasoning.buf ? d->reasoning.buf : "", d->reasoning.len);
    for (int i = 0; i < d->n_calls; i++) {
        lc_str_printf(&o->calls, "%d %s %s %s\n", d->calls[i].index, d->calls[i].id,
                      d->calls[i].name, d->calls[i].arguments);
        o->n_calls++;
    }
    lc_outparse_delta_clear(d);
}

static bool same(const lc_str *a, const lc_str *b) {
    return a->len == b->len && (a->len == 0 || memcmp(a->buf, b->buf, a->len) == 0);
}

/* Feeds text cut at cuts[0..ncut) (increasing, inside the text) and finishes. */
static void run(const lc_outparse_opts *opts, const char *text, size_t len, const size_t *cuts,
                int ncut, outcome *o) {
    memset(o, 0, sizeof *o);
    lc_outparse *p = NULL;
    if (lc_outparse_create(opts, &p) != LC_OK) {
        CHECKF(0, "create: %s", lc_last_error());
        return;
    }
    lc_outparse_delta d = {0};
    size_t at = 0;
    for (int i = 0; i <= ncut; i++) {
        size_t end = i < ncut ? cuts[i] : len;
        CHECK(lc_outparse_feed(p, text + at, end - at, &d) == LC_OK);
        take_delta(o, &d);
        at = end;
    }
    CHECK(lc_outparse_finish(p, &d) == LC_OK);
    take_delta(o, &d);
    const lc_outparse_final *r = lc_outparse_result(p);
    lc_str rc = {0};
    for (int i = 0; i < r->n_calls; i++)
        lc_str_printf(&rc, "%d %s %s %s\n", r->calls[i].index, r->calls[i].id, r->calls[i].name,
                      r->calls[i].arguments);
    o->consistent = same(&r->content, &o->content) && same(&r->reasoning, &o->reasoning) &&
                    same(&rc, &o->calls) && r->n_calls == o->n_calls;
    lc_str_free(&rc);
    lc_outparse_delta_free(&d);
    lc_outparse_free(p);
}

static bool same_outcome(const outcome *a, const outcome *b) {
    return same(&a->content, &b->content) && same(&a->reasoning, &b->reasoning) &&
           same(&a->calls, &b->calls) && b->consistent;
}

static const char *const markers[] = {
    "<think>", "</think>", "<tool_call>", "</tool_call>", "<|python_tag|>", "[TOOL_CALLS]",
    "[ARGS]", "<|channel|>", "<|message|>", "<|end|>", "<|call|>", "<|start|>", "<|return|>",
    "<|constrain|>", "<|START_THINKING|>", "<|END_THINKING|>", "<seed:think>", "</seed:think>",
};

static lc_out_format format_named(const char *s) {
    if (!strcmp(s, "hermes")) return LC_FMT_HERMES;
    if (!strcmp(s, "llama3")) return LC_FMT_LLAMA3;
    if (!strcmp(s, "mistral")) return LC_FMT_MISTRAL;
    if (!strcmp(s, "harmony")) return LC_FMT_HARMONY;
    return LC_FMT_PLAIN;
}

/* Checks a whole run against the case's expected fields. */
static void check_expected(const char *name, json_t *exp, const outcome *o) {
    const char *ec = json_string_value(json_object_get(exp, "content"));
    const char *er = json_string_value(json_object_get(exp, "reasoning"));
    CHECKF(o->content.len == strlen(ec) && !memcmp(o->content.buf ? o->content.buf : "", ec, o->content.len),
           "%s: content [%s], want [%s]", name, o->content.buf ? o->content.buf : "", ec);
    CHECKF(o->reasoning.len == strlen(er) &&
               !memcmp(o->reasoning.buf ? o->reasoning.buf : "", er, o->reasoning.len),
           "%s: reasoning [%s], want [%s]", name, o->reasoning.buf ? o->reasoning.buf : "", er);
    json_t *calls = json_object_get(exp, "tool_calls");
    CHECKF((int)json_array_size(calls) == o->n_calls, "%s: %d calls, want %zu", name, o->n_calls,
           json_array_size(calls));
    const char *line = o->calls.buf ? o->calls.buf : "";
    for (size_t i = 0; i < json_array_size(calls) && (int)i < o->n_calls; i++) {
        json_t *c = json_array_get(calls, i);
        int idx = -1, off = 0;
        char id[64] = "";
        sscanf(line, "%d %63s %n", &idx, id, &off);
        const char *rest = line + off, *nl = strchr(rest, '\n');
        lc_str want = {0};
        lc_str_printf(&want, "%s %s", json_string_value(json_object_get(c, "name")),
                      json_string_value(json_object_get(c, "arguments")));
        bool ok = idx == (int)i && nl && (size_t)(nl - rest) == want.len && !memcmp(rest, want.buf, want.len);
        CHECKF(ok, "%s: call %zu is [%.*s], want [%s]", name, i, nl ? (int)(nl - rest) : 0, rest, want.buf);
        bool id_ok = strlen(id) == 29 && !strncmp(id, "call_", 5);
        for (int k = 5; k < 29 && id_ok; k++)
            id_ok = (id[k] >= 'a' && id[k] <= 'z') || (id[k] >= 'A' && id[k] <= 'Z') || (id[k] >= '0' && id[k] <= '9');
        CHECKF(id_ok, "%s: bad id %s", name, id);
        lc_str_free(&want);
        line = nl ? nl + 1 : line;
    }
    for (size_t m = 0; m < LC_ARRAY_LEN(markers); m++)
        if (!strstr(ec, markers[m]) && o->content.buf)
            CHECKF(!strstr(o->content.buf, markers[m]), "%s: marker %s in content", name, markers[m]);
}

static void test_golden_case(const char *dir, const char *file) {
    char path[8192];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    json_error_t err;
    json_t *doc = json_load_file(path, 0, &err);
    CHECKF(doc != NULL, "%s: %s", path, err.text);
    if (!doc) return;
    lc_outparse_opts o = lc_outparse_opts_default();
    o.format = format_named(json_string_value(json_object_get(doc, "format")));
    json_t *think = json_object_get(doc, "think");
    if (json_is_array(think)) {
        o.think_open = json_string_value(json_array_get(think, 0));
        o.think_close = json_string_value(json_array_get(think, 1));
    }
    o.starts_in_reasoning = json_is_true(json_object_get(doc, "starts_in_reasoning"));
    o.tools = json_is_true(json_object_get(doc, "tools"));
    o.seed = 1234;

    /* The template of the family must be detected as this format with these markers. */
    const char *tname = json_string_value(json_object_get(doc, "template"));
    if (tname) {
        char rel[512];
        snprintf(rel, sizeof rel, "refdata/templates/%s", tname);
        const char *tp = test_shared_path(rel);
        char *tmpl = NULL;
        size_t tl;
        if (tp && lc_read_file(tp, &tmpl, &tl) == LC_OK) {
            lc_outparse_opts d = lc_outparse_opts_default();
            lc_outparse_opts_from_template(tmpl, &d);
            CHECKF(d.format == o.format, "%s: detected format %d, want %d", file, d.format, o.format);
            CHECKF((!d.think_open && !o.think_open) ||
                       (d.think_open && o.think_open && !strcmp(d.think_open, o.think_open) &&
                        !strcmp(d.think_close, o.think_close)),
                   "%s: detected reasoning marker %s", file, d.think_open ? d.think_open : "(none)");
            lc_free(tmpl);
        }
    }

    const char *text = json_string_value(json_object_get(doc, "output"));
    size_t len = strlen(text);
    outcome whole;
    run(&o, text, len, NULL, 0, &whole);
    CHECKF(whole.consistent, "%s: deltas differ from the result", file);
    check_expected(file, json_object_get(doc, "expected"), &whole);

    size_t *cuts = malloc((len + 1) * sizeof *cuts);
    for (size_t i = 0; i + 1 < len; i++) cuts[i] = i + 1;
    outcome b;
    run(&o, text, len, cuts, len > 1 ? (int)len - 1 : 0, &b); /* byte by byte */
    CHECKF(same_outcome(&whole, &b), "%s: byte-by-byte differs: content [%s] reasoning [%s]", file,
           b.content.buf ? b.content.buf : "", b.reasoning.buf ? b.reasoning.buf : "");
    outcome_free(&b);
    int bad2 = 0, bad3 = 0;
    for (size_t a = 1; a < len; a++) {
        outcome s;
        run(&o, text, len, &a, 1, &s);
        if (!same_outcome(&whole, &s)) {
            if (!bad2) fprintf(stderr, "%s: split at %zu: content [%s]\n", file, a, s.content.buf ? s.content.buf : "");
            bad2++;
        }
        outcome_free(&s);
        if (len > 130) continue;
        for (size_t c = a + 1; c < len; c++) {
            size_t two[2] = {a, c};
            run(&o, text, len, two, 2, &s);
            bad3 += !same_outcome(&whole, &s);
            outcome_free(&s);
        }
    }
    CHECKF(bad2 == 0, "%s: %d two-way splits differ", file, bad2);
    CHECKF(bad3 == 0, "%s: %d three-way splits differ", file, bad3);
    free(cuts);
    outcome_free(&whole);
    json_decref(doc);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static void test_goldens(void) {
    const char *src = getenv("LC_SOURCE_DIR");
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/tests/golden/outputs", src ? src : "..");
    DIR *dp = opendir(dir);
    CHECKF(dp != NULL, "no golden outputs at %s", dir);
    if (!dp) return;
    char *names[256];
    int n = 0;
    struct dirent *e;
    while ((e = readdir(dp)) && n < 256) {
        size_t l = strlen(e->d_name);
        if (l > 5 && !strcmp(e->d_name + l - 5, ".json")) names[n++] = strdup(e->d_name);
    }
    closedir(dp);
    qsort(names, (size_t)n, sizeof *names, cmp_str);
    CHECKF(n >= 20, "only %d golden outputs", n);
    for (int i = 0; i < n; i++) {
        test_golden_case(dir, names[i]);
        free(names[i]);
    }
    printf("%d recorded outputs checked at every split\n", n);
}

/* ==== Focused checks ==== */

static void test_detect(void) {
    CHECK(lc_outparse_detect(NULL) == LC_FMT_PLAIN);
    CHECK(lc_outparse_detect("{{ '<|im_start|>' + m.role }}") == LC_FMT_PLAIN);
    lc_outparse_opts o = lc_outparse_opts_default();
    lc_outparse_opts_from_template("{% if x %}[THINK]{{ t }}[/THINK]{% endif %}[TOOL_CALLS]", &o);
    CHECK(o.format == LC_FMT_MISTRAL && o.think_open && !strcmp(o.think_close, "[/THINK]"));
    const char *tp = test_shared_path("refdata/templates/HuggingFaceTB-SmolLM3-3B.jinja");
    char *t = NULL;
    size_t tl;
    if (tp && lc_read_file(tp, &t, &tl) == LC_OK) {
        lc_outparse_opts_from_template(t, &o);
        CHECK(o.think_open && !strcmp(o.think_open, "<think>"));
        lc_free(t);
    }
}

static void test_errors_and_ids(void) {
    lc_outparse_opts o = lc_outparse_opts_default();
    lc_outparse *p = NULL;
    o.think_open = "<think>";
    CHECK(lc_outparse_create(&o, &p) == LC_ERR_INVALID && !p);
    o = lc_outparse_opts_default();
    o.format = (lc_out_format)99;
    CHECK(lc_outparse_create(&o, &p) == LC_ERR_INVALID);

    /* Same seed -> same ids; another seed -> other ids; ids within a reply differ. */
    const char *txt = "<tool_call>{\"name\":\"a\",\"arguments\":{}}</tool_call>"
                      "<tool_call>{\"name\":\"b\",\"arguments\":{}}</tool_call>";
    o = lc_outparse_opts_default();
    o.format = LC_FMT_HERMES;
    o.tools = true;
    o.seed = 7;
    outcome a, b, c;
    run(&o, txt, strlen(txt), NULL, 0, &a);
    run(&o, txt, strlen(txt), NULL, 0, &b);
    o.seed = 8;
    run(&o, txt, strlen(txt), NULL, 0, &c);
    CHECK(a.n_calls == 2 && same(&a.calls, &b.calls) && !same(&a.calls, &c.calls));
    CHECK(a.calls.buf && strncmp(a.calls.buf + 2, a.calls.buf + a.calls.len / 2 + 2, 29) != 0);
    outcome_free(&a);
    outcome_free(&b);
    outcome_free(&c);
}

/* Streaming behaviour: partial markers are held, a call is released when it closes. */
static void test_streaming(void) {
    lc_outparse_opts o = lc_outparse_opts_default();
    o.format = LC_FMT_HERMES;
    o.tools = true;
    o.think_open = "<think>";
    o.think_close = "</think>";
    lc_outparse *p = NULL;
    CHECK(lc_outparse_create(&o, &p) == LC_OK);
    lc_outparse_delta d = {0};
    lc_outparse_feed(p, "<th", 3, &d);
    CHECK(d.content.len == 0 && d.reasoning.len == 0);
    lc_outparse_feed(p, "ink>Plan it.", 12, &d);
    CHECK(d.reasoning.buf && !strcmp(d.reasoning.buf, "Plan it.") && d.content.len == 0);
    lc_outparse_delta_clear(&d);
    lc_outparse_feed(p, "</think>\n\nSure <tool_c", 22, &d);
    CHECK(d.content.buf && !strcmp(d.content.buf, "Sure"));
    lc_outparse_delta_clear(&d);
    lc_outparse_feed(p, "all>\n{\"name\": \"f\", \"arguments\": {\"x\": 1}}\n</tool_", 49, &d);
    CHECK(d.content.len == 0 && d.n_calls == 0);
    lc_outparse_feed(p, "call>", 5, &d);
    CHECK(d.n_calls == 1 && !strcmp(d.calls[0].name, "f") && !strcmp(d.calls[0].arguments, "{\"x\":1}"));
    lc_outparse_delta_clear(&d);
    lc_outparse_feed(p, "\n", 1, &d);
    lc_outparse_finish(p, &d);
    CHECK(d.content.len == 0 && d.n_calls == 0);
    const lc_outparse_final *r = lc_outparse_result(p);
    CHECK(r->n_calls == 1 && !strcmp(r->content.buf, "Sure") && !strcmp(r->reasoning.buf, "Plan it."));
    /* After finish, feeds are ignored. */
    CHECK(lc_outparse_feed(p, "more", 4, &d) == LC_OK && d.content.len == 0);
    lc_outparse_delta_free(&d);
    lc_outparse_free(p);
}

int main(void) {
    test_detect();
    test_errors_and_ids();
    test_streaming();
    test_goldens();
    return test_done();
}
