/* test_jinja.c — the Jinja engine and chat rendering: feature tests (whitespace control,
 * scoping, filters, tests, Python str()/repr(), tojson, errors with line/column, bounds) and
 * the golden table: every real template in ../shared/refdata/templates on every conversation in
 * tests/golden/templates/conversations, compared byte for byte with Python jinja2's output
 * (tests/golden/templates/goldens, made by make_goldens.py). Passes at >= 95% of templates.
 */
#include "testutil.h"

#include "text/chat.h"
#include "text/jinja.h"

#include <dirent.h>
#include <stdlib.h>
#include <string.h>

#define FIXED_TIME 1736937000LL /* make_goldens.py's FIXED_TIME */

/* Renders src with vars (JSON text); returns a heap string: the output, or "ERR:" + message. */
static char *render(const char *src, const char *vars_json) {
    json_t *vars = NULL;
    if (vars_json) {
        json_error_t je;
        vars = json_loads(vars_json, 0, &je);
        if (!vars) {
            fprintf(stderr, "bad test JSON: %s\n", je.text);
            return strdup("ERR:bad test json");
        }
    }
    lc_jinja_tmpl *t;
    char *out = NULL;
    lc_jinja_opts o = {.fixed_time = FIXED_TIME};
    lc_status st = lc_jinja_parse(src, strlen(src), &t);
    if (st == LC_OK) {
        st = lc_jinja_render(t, vars, &o, &out, NULL);
        lc_jinja_free(t);
    }
    json_decref(vars);
    if (st != LC_OK) {
        const char *m = lc_last_error();
        char *r = malloc(strlen(m) + 5);
        sprintf(r, "ERR:%s", m);
        return r;
    }
    char *r = strdup(out);
    lc_free(out);
    return r;
}

static void expect(const char *src, const char *vars, const char *want, int line) {
    char *got = render(src, vars);
    if (!strcmp(got, want)) {
        test_passed++;
    } else {
        test_failed++;
        fprintf(stderr, "test_jinja.c:%d: template %s\n  want [%s]\n  got  [%s]\n", line, src, want, got);
    }
    free(got);
}

/* The render must fail and its message contain want. */
static void expect_err(const char *src, const char *vars, const char *want, int line) {
    char *got = render(src, vars);
    if (!strncmp(got, "ERR:", 4) && strstr(got, want)) {
        test_passed++;
    } else {
        test_failed++;
        fprintf(stderr, "test_jinja.c:%d: template %s\n  want error containing [%s]\n  got  [%s]\n", line, src, want, got);
    }
    free(got);
}

#define EQ(src, vars, want) expect(src, vars, want, __LINE__)
#define ERR(src, vars, want) expect_err(src, vars, want, __LINE__)

static void test_features(void) {
    /* text, output, comments, whitespace control */
    EQ("Hello {{ name }}!", "{\"name\":\"Bob\"}", "Hello Bob!");
    EQ("a\n", NULL, "a");
    EQ("a\n\n", NULL, "a\n");
    EQ("{# c #}x", NULL, "x");
    EQ("  {% if true %}\n  yes\n  {% endif %}\nend", NULL, "  yes\nend");
    EQ("a  {%- if true -%}  b  {%- endif %}", NULL, "ab");
    EQ("  {%+ if true %}x{% endif %}", NULL, "  x");
    EQ("{% if true +%}\nx{% endif %}", NULL, "\nx");
    EQ("  {{ 1 }}\n", NULL, "  1");
    EQ("x {% if true %}y{% endif %}", NULL, "x y");
    /* Python str() of values */
    EQ("{{ none }} {{ true }} {{ 1.0 }} {{ 0.1 + 0.2 }} {{ 1e-5 }} {{ 2 ** 60 }}", NULL,
       "None True 1.0 0.30000000000000004 1e-05 1152921504606846976");
    EQ("{{ [1, 'a', none, true] }} {{ {'k': \"it's\"} }} {{ (1,) }}", NULL, "[1, 'a', None, True] {'k': \"it's\"} (1,)");
    EQ("{{ 7 // 2 }} {{ -7 // 2 }} {{ -7 % 3 }} {{ 7 / 2 }} {{ 2 ** 3 ** 2 }}", NULL, "3 -4 2 3.5 64");
    EQ("{{ 'a' ~ 1 ~ none }} {{ 'ab' * 2 }} {{ [1] + [2] }}", NULL, "a1None abab [1, 2]");
    /* control flow and scoping */
    EQ("{% for x in [1,2,3] %}{{ loop.index }}{{ x }}{% if not loop.last %},{% endif %}{% endfor %}", NULL, "11,22,33");
    EQ("{% for x in [] %}a{% else %}empty{% endfor %}", NULL, "empty");
    EQ("{% for x in [1,2,3,4] if x is even %}{{ x }}{{ loop.length }}{% endfor %}", NULL, "2242");
    EQ("{% for k, v in {'a': 1, 'b': 2}.items() %}{{ k }}={{ v }};{% endfor %}", NULL, "a=1;b=2;");
    EQ("{% for x in [1,2,3] %}{{ loop.previtem is defined }}{{ loop.nextitem | default('-') }}{% endfor %}", NULL,
       "False2True3True-");
    EQ("{% set x = 1 %}{% for i in [1] %}{% set x = 2 %}{% endfor %}{{ x }}", NULL, "1");
    EQ("{% set ns = namespace(x=1) %}{% for i in [1] %}{% set ns.x = 2 %}{% endfor %}{{ ns.x }}", NULL, "2");
    EQ("{% for i in range(10) %}{% if i == 3 %}{% break %}{% endif %}{% if i == 1 %}{% continue %}{% endif %}{{ i }}{% endfor %}",
       NULL, "02");
    EQ("{% set a, b = 1, 2 %}{{ b }}{{ a }}", NULL, "21");
    EQ("{% set s %}block {{ 1 }}{% endset %}[{{ s }}]", NULL, "[block 1]");
    EQ("{% macro m(a, b='x') %}{{ a }}{{ b }}{% endmacro %}{{ m(1) }}{{ m(2, b='y') }}", NULL, "1x2y");
    EQ("{% macro m() %}[{{ caller() }}]{% endmacro %}{% call m() %}in{% endcall %}", NULL, "[in]");
    EQ("{% filter upper %}abc{% endfilter %}", NULL, "ABC");
    EQ("{{ 'y' if false }}|{{ 'a' if 1 > 2 else 'b' }}", NULL, "|b");
    EQ("{% if 1 in [1,2] and 'b' in 'abc' and 3 not in [1] %}ok{% endif %}", NULL, "ok");
    EQ("{{ [1,2,3,4,5][1:4] }} {{ 'hello'[::-1] }} {{ [1,2,3][-1] }}", NULL, "[2, 3, 4] olleh 3");
    /* tests */
    EQ("{{ x is defined }}{{ y is none }}{{ 's' is string }}{{ 1 is number }}{{ {} is mapping }}{{ [] is sequence }}",
       "{\"y\":null}", "FalseTrueTrueTrueTrueTrue");
    EQ("{{ 3 is odd }}{{ 4 is divisibleby 2 }}{{ 1 is integer }}{{ 1.0 is float }}{{ true is boolean }}", NULL,
       "TrueTrueTrueTrueTrue");
    /* filters */
    EQ("{{ 'a b' | upper }} {{ 'hello world-x' | title }} {{ '  t  ' | trim }} {{ [3,1,2] | sort | join(',') }}", NULL,
       "A B Hello World-X t 1,2,3");
    EQ("{{ x | default('d') }} {{ '' | default('e', true) }} {{ [1,2] | length }} {{ 'héllo' | length }}", NULL,
       "d e 2 5");
    EQ("{{ {'b': 1, 'a': 2} | dictsort }} {{ [1,1,2] | unique | list }} {{ [1,2] | first }}{{ [1,2] | last }}", NULL,
       "[('a', 2), ('b', 1)] [1, 2] 12");
    EQ("{{ msgs | selectattr('role', 'equalto', 'user') | map(attribute='c') | join }}",
       "{\"msgs\":[{\"role\":\"user\",\"c\":\"1\"},{\"role\":\"bot\",\"c\":\"2\"},{\"role\":\"user\",\"c\":\"3\"}]}", "13");
    EQ("{{ d | tojson }}|{{ d | tojson(indent=2) }}", "{\"d\":{\"a\":[1,2.5,\"é\\n\"],\"b\":{}}}",
       "{\"a\": [1, 2.5, \"é\\n\"], \"b\": {}}|{\n  \"a\": [\n    1,\n    2.5,\n    \"é\\n\"\n  ],\n  \"b\": {}\n}");
    EQ("{{ 'a\\nb\\n\\nc' | indent(2) }}|{{ 'x' | indent(2, first=true) }}", NULL, "a\n  b\n\n  c|  x");
    EQ("{{ '42' | int + 1 }} {{ 'x' | int }} {{ 2.6 | int }} {{ 3 | float }} {{ 2.5 | round }} {{ -3 | abs }}", NULL,
       "43 0 2 3.0 2.0 3");
    EQ("{{ [1,2,3] | sum }} {{ [4,2,8] | max }} {{ [1,2,3,4,5] | batch(2) | list }} {{ 'a b c' | wordcount }}", NULL,
       "6 8 [[1, 2], [3, 4], [5]] 3");
    /* jinja2 semantics of generators (map/select/...) and Markup (|safe + str escapes) */
    EQ("{% if [] | select %}gen is true{% endif %}|{{ none | map('upper') | list }}", NULL, "gen is true|[]");
    ERR("{{ [1] | map('string') | tojson }}", NULL, "not JSON serializable");
    ERR("{{ [1] | select | length }}", NULL, "has no len()");
    EQ("{{ 'a'|safe + '<b>' }}|{{ '<b>' ~ 'x'|safe }}|{{ '<>' | escape }}", NULL, "a&lt;b&gt;|<b>x|&lt;&gt;");
    /* methods */
    EQ("{{ ' x '.strip() }}|{{ 'xxaxx'.strip('x') }}|{{ 'a,b'.split(',') }}|{{ 'a b  c'.split() }}", NULL,
       "x|a|['a', 'b']|['a', 'b', 'c']");
    EQ("{{ 'abc'.startswith('ab') }}{{ 'abc'.endswith(('x', 'c')) }}{{ 'aXa'.replace('a', 'b') }}{{ '{}-{}'.format(1, 'z') }}",
       NULL, "TrueTruebXb1-z");
    EQ("{{ d.get('a') }}{{ d.get('z', 0) }}{{ d.keys() | list }}{{ d['a'] }}{{ d.a }}", "{\"d\":{\"a\":5}}", "50['a']55");
    EQ("{{ strftime_now('%Y-%m-%d') }}", NULL, "2025-01-15");
    /* undefined semantics */
    EQ("[{{ nope }}][{{ nope | length }}][{% for x in nope %}x{% endfor %}]", NULL, "[][0][]");
    ERR("{{ nope.attr }}", NULL, "'nope' is undefined");
    ERR("{{ nope + 1 }}", NULL, "undefined");
    EQ("{{ none.x is defined }}", NULL, "False");
    /* errors */
    ERR("{{ raise_exception('bad input') }}", NULL, "bad input");
    ERR("a\n{% if x %}\nb", NULL, "line 3, column 2: unexpected end of template, expected 'endif'");
    ERR("{{ 1 + }}", NULL, "line 1, column 8: expected an expression");
    ERR("x\n  {{ 'abc }}", NULL, "line 2, column 6: unterminated string");
    ERR("{% endfor %}", NULL, "line 1, column 4: unexpected 'endfor'");
    ERR("{% foo %}", NULL, "line 1, column 4: unknown statement 'foo'");
    ERR("{{ [].append(1) }}", NULL, "undefined");
    ERR("{{ 1 / 0 }}", NULL, "division by zero");
    ERR("{{ 'a' | nosuchfilter }}", NULL, "nosuchfilter");
    /* bounds */
    ERR("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}", NULL, "loop iterations");
    ERR("{% macro f(n) %}{{ f(n) }}{% endmacro %}{{ f(1) }}", NULL, "nested deeper");
    ERR("{% set ns = namespace(s='xxxxxxxxxxxxxxxx') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}", NULL,
        "exceeds");
    char deep[4000];
    size_t n = 0;
    n += (size_t)sprintf(deep, "{{ ");
    for (int i = 0; i < 1000; i++) deep[n++] = '(';
    deep[n++] = '1';
    for (int i = 0; i < 1000; i++) deep[n++] = ')';
    strcpy(deep + n, " }}");
    ERR(deep, NULL, "nested too deeply");
}

static void test_chat(void) {
    json_t *msgs = json_loads("[{\"role\":\"system\",\"content\":\"S\"},{\"role\":\"user\",\"content\":\"Hi\"}]", 0, NULL);
    lc_chat_opts o = lc_chat_opts_default();
    o.add_generation_prompt = true;
    char *out = NULL;
    CHECK(lc_chat_render(NULL, msgs, NULL, &o, &out) == LC_OK);
    CHECK(out && !strcmp(out, "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"));
    lc_free(out);
    /* parse once, render many */
    lc_chat_template *t;
    CHECK(lc_chat_template_create("{{ bos_token }}{% for m in messages %}{{ m.content }}{% endfor %}{{ eos_token }}", &t) == LC_OK);
    o.bos_token = "<s>";
    o.eos_token = "</s>";
    for (int i = 0; i < 3; i++) {
        CHECK(lc_chat_template_render(t, msgs, NULL, &o, &out) == LC_OK);
        CHECK(out && !strcmp(out, "<s>SHi</s>"));
        lc_free(out);
    }
    lc_chat_template_free(t);
    /* validation */
    json_t *bad = json_loads("[{\"content\":\"x\"}]", 0, NULL);
    CHECK(lc_chat_render(NULL, bad, NULL, &o, &out) == LC_ERR_INVALID);
    CHECK(strstr(lc_last_error(), "messages[0] has no 'role'") != NULL);
    json_decref(bad);
    bad = json_loads("[{\"role\":\"user\",\"content\":5}]", 0, NULL);
    CHECK(lc_chat_render(NULL, bad, NULL, &o, &out) == LC_ERR_INVALID);
    CHECK(strstr(lc_last_error(), "content must be") != NULL);
    json_decref(bad);
    bad = json_loads("[{\"role\":\"user\"}]", 0, NULL);
    CHECK(lc_chat_render(NULL, bad, NULL, &o, &out) == LC_ERR_INVALID);
    json_decref(bad);
    CHECK(lc_chat_render("{% if %}", msgs, NULL, &o, &out) == LC_ERR_FORMAT);
    CHECK(strstr(lc_last_error(), "line 1, column 7") != NULL);
    json_decref(msgs);
}

/* ==== Golden table ==== */

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Sorted names (without extension ext) of the files in dir ending in ext. */
static int list_dir(const char *dir, const char *ext, char ***out) {
    DIR *d = opendir(dir);
    if (!d) return -1;
    char **names = NULL;
    int n = 0;
    struct dirent *e;
    size_t el = strlen(ext);
    while ((e = readdir(d))) {
        size_t l = strlen(e->d_name);
        if (l <= el || strcmp(e->d_name + l - el, ext)) continue;
        names = realloc(names, (size_t)(n + 1) * sizeof *names);
        names[n++] = strndup(e->d_name, l - el);
    }
    closedir(d);
    qsort(names, (size_t)n, sizeof *names, cmp_str);
    *out = names;
    return n;
}

/* Renders one conversation as make_goldens.py does: the conversation's keys are the template
 * variables; messages/tools/flags go through lc_chat_template_render, the rest as kwargs. */
static lc_status render_conv(lc_chat_template *t, json_t *conv, char **out) {
    lc_chat_opts o = lc_chat_opts_default();
    o.limits.fixed_time = FIXED_TIME;
    o.add_generation_prompt = json_is_true(json_object_get(conv, "add_generation_prompt"));
    json_t *et = json_object_get(conv, "enable_thinking");
    if (et) o.enable_thinking = json_is_true(et);
    o.bos_token = json_string_value(json_object_get(conv, "bos_token"));
    o.eos_token = json_string_value(json_object_get(conv, "eos_token"));
    json_t *kw = json_object();
    const char *k;
    json_t *v;
    json_object_foreach(conv, k, v) {
        if (strcmp(k, "messages") && strcmp(k, "tools") && strcmp(k, "add_generation_prompt") && strcmp(k, "enable_thinking") &&
            strcmp(k, "bos_token") && strcmp(k, "eos_token") && k[0] != '_')
            json_object_set(kw, k, v);
    }
    o.kwargs = kw;
    lc_status st = lc_chat_template_render(t, json_object_get(conv, "messages"), json_object_get(conv, "tools"), &o, out);
    json_decref(kw);
    return st;
}

static void test_goldens(void) {
    const char *tdir = test_shared_path("refdata/templates");
    const char *src = getenv("LC_SOURCE_DIR");
    if (!tdir || !src) {
        fprintf(stderr, "golden table skipped: no shared refdata or LC_SOURCE_DIR\n");
        return;
    }
    char cdir[1024], gdir[1024], path[2048];
    snprintf(cdir, sizeof cdir, "%s/tests/golden/templates/conversations", src);
    snprintf(gdir, sizeof gdir, "%s/tests/golden/templates/goldens", src);
    char **convs, **golds;
    int nc = list_dir(cdir, ".json", &convs), ng = list_dir(gdir, ".json", &golds);
    CHECK(nc >= 12);
    CHECK(ng >= 1);
    json_t **cj = calloc((size_t)nc, sizeof *cj);
    for (int i = 0; i < nc; i++) {
        snprintf(path, sizeof path, "%s/%s.json", cdir, convs[i]);
        cj[i] = json_load_file(path, 0, NULL);
        CHECK(cj[i] != NULL);
    }
    int files_ok = 0, renders = 0, renders_ok = 0;
    printf("%-52s %6s %6s  %s\n", "template", "match", "of", "first difference");
    for (int g = 0; g < ng; g++) {
        snprintf(path, sizeof path, "%s/%s.json", gdir, golds[g]);
        json_t *gold = json_load_file(path, 0, NULL);
        snprintf(path, sizeof path, "%s/%s.jinja", tdir, golds[g]);
        char *tsrc = NULL;
        size_t tlen;
        lc_chat_template *t = NULL;
        char parse_err[300] = "";
        if (lc_read_file(path, &tsrc, &tlen) != LC_OK || lc_chat_template_create(tsrc, &t) != LC_OK)
            snprintf(parse_err, sizeof parse_err, "%s", lc_last_error());
        int match = 0, total = 0;
        char first[400] = "";
        for (int i = 0; i < nc; i++) {
            json_t *ge = json_object_get(gold, convs[i]);
            if (!ge || !cj[i]) continue;
            total++;
            bool gok = json_is_true(json_object_get(ge, "ok"));
            char *out = NULL;
            lc_status st = t ? render_conv(t, cj[i], &out) : LC_ERR_FORMAT;
            const char *err = t ? lc_last_error() : parse_err;
            bool same;
            if (gok) {
                const char *want = json_string_value(json_object_get(ge, "output"));
                same = st == LC_OK && want && !strcmp(out, want);
                if (!same && !first[0]) {
                    if (st != LC_OK) {
                        snprintf(first, sizeof first, "%s: we raised: %.200s", convs[i], err);
                    } else {
                        size_t k = 0;
                        while (out[k] && out[k] == want[k]) k++;
                        snprintf(first, sizeof first, "%s: output differs at byte %zu: want [%.40s] got [%.40s]", convs[i], k,
                                 want + k, out + k);
                    }
                }
            } else {
                same = st != LC_OK;
                if (!same && !first[0])
                    snprintf(first, sizeof first, "%s: jinja2 raised (%.120s) but we rendered", convs[i],
                             json_string_value(json_object_get(ge, "error")));
            }
            match += same;
            lc_free(out);
        }
        renders += total;
        renders_ok += match;
        if (match == total) files_ok++;
        for (char *q = first; *q; q++)
            if (*q == '\n') *q = ' ';
        printf("%-52s %6d %6d  %s\n", golds[g], match, total, match == total ? "" : first);
        lc_chat_template_free(t);
        lc_free(tsrc);
        json_decref(gold);
    }
    double pct = ng ? 100.0 * files_ok / ng : 0;
    printf("templates matching on every conversation: %d of %d (%.1f%%); renders matching: %d of %d\n", files_ok, ng, pct,
           renders_ok, renders);
    CHECKF(pct >= 95.0, "only %.1f%% of template files match on every conversation", pct);
    for (int i = 0; i < nc; i++) {
        json_decref(cj[i]);
        free(convs[i]);
    }
    for (int g = 0; g < ng; g++) free(golds[g]);
    free(cj);
    free(convs);
    free(golds);
}

/* `locara template --template T --input C` prints exactly the golden output (no newline). */
static void test_cli(void) {
    const char *bin = getenv("LC_BINARY_DIR"), *src = getenv("LC_SOURCE_DIR");
    const char *tdir = test_shared_path("refdata/templates");
    char cmd[4096], path[2048];
    if (!bin || !src || !tdir) return;
    snprintf(path, sizeof path, "%s/locara", bin);
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "cli check skipped: %s not built\n", path);
        return;
    }
    fclose(f);
    snprintf(cmd, sizeof cmd, "LOCARA_FIXED_TIME=%lld %s/locara template --template %s/meta-llama-Llama-3.1-8B-Instruct.jinja "
             "--input %s/tests/golden/templates/conversations/08_tool_call_dict_args.json", FIXED_TIME, bin, tdir, src);
    FILE *p = popen(cmd, "r");
    CHECK(p != NULL);
    if (!p) return;
    static char got[1 << 16];
    size_t n = fread(got, 1, sizeof got - 1, p);
    got[n] = 0;
    CHECK(pclose(p) == 0);
    snprintf(path, sizeof path, "%s/tests/golden/templates/goldens/meta-llama-Llama-3.1-8B-Instruct.json", src);
    json_t *gold = json_load_file(path, 0, NULL);
    const char *want = json_string_value(json_object_get(json_object_get(gold, "08_tool_call_dict_args"), "output"));
    CHECKF(want && !strcmp(got, want), "locara template output differs from the golden");
    json_decref(gold);
}

int main(void) {
    test_features();
    test_chat();
    test_goldens();
    test_cli();
    return test_done();
}
