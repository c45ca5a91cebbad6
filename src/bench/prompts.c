/* prompts.c — the benchmark's agent-like conversations, grown to a token depth.
 *
 * Owns loading the material (bench/corpus templates, the project's source files), a small
 * seeded generator (splitmix64), filling tool-output templates, and growing a conversation turn
 * by turn until the caller's token counter says it is deep enough. It does not talk HTTP: the
 * counter is a callback. Entry points: lc_prompt_gen_create, lc_prompt_build.
 */
#include "bench/prompts.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ==== Material ==== */

typedef struct src_file {
    char *path; /* relative to the repository root, e.g. "src/base/alloc.c" */
    char *text;
    size_t len;
} src_file;

typedef struct tool_tpl {
    char *command;
    char *body;
} tool_tpl;

struct lc_prompt_gen {
    char *system;
    char **asks, **shorts, **followups;
    int n_asks, n_shorts, n_followups;
    tool_tpl *tools;
    int n_tools;
    src_file *files;
    int n_files;
    char **words; /* identifiers seen in the sources, for {WORD} */
    int n_words;
};

#define MAX_FILE_BYTES (256 * 1024)
#define MAX_MATERIAL (8u * 1024 * 1024)
#define READ_WINDOW 12000 /* bytes of a file one read_file turn shows (about 3-4k tokens) */

static const char *const fallback_words[] = {"lc_malloc", "lc_free", "lc_fail", "lc_decode",
                                             "lc_model_load", "lc_tokenize", "lc_pool_run"};

static char *trim_dup(const char *s, size_t n) {
    while (n && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' ')) n--;
    return lc_strndup(s, n);
}

/* Splits text into its non-empty lines (owned copies); lines after a "@@ short" line go to
 * *second when second is non-NULL. */
static lc_status split_lines(const char *text, char ***out, int *n, char ***second, int *n2) {
    size_t cap = 0, cap2 = 0;
    int in_second = 0;
    for (const char *p = text; *p;) {
        const char *e = strchr(p, '\n');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len && !strncmp(p, "@@ short", 8) && second) {
            in_second = 1;
        } else if (len > 0 && strspn(p, " \r\t") < len) {
            char ***dst = in_second ? second : out;
            int *cnt = in_second ? n2 : n;
            size_t *c = in_second ? &cap2 : &cap;
            if (!lc_grow((void **)dst, sizeof(char *), c, (size_t)*cnt + 1)) return LC_ERR_OOM;
            if (!((*dst)[*cnt] = trim_dup(p, len))) return LC_ERR_OOM;
            (*cnt)++;
        }
        p += len + (e ? 1 : 0);
    }
    return LC_OK;
}

static lc_status load_text(const char *dir, const char *name, char **out) {
    char path[4096];
    if (snprintf(path, sizeof path, "%s/%s", dir, name) >= (int)sizeof path)
        return lc_fail(LC_ERR_INVALID, "benchmark corpus path too long: %s", dir);
    size_t len;
    lc_status st = lc_read_file(path, out, &len);
    if (st != LC_OK) return lc_fail_wrap(st, "benchmark corpus: ");
    return LC_OK;
}

/* Parses tools.txt: blocks opened by "@@ <command>". */
static lc_status load_tools(lc_prompt_gen *g, const char *text) {
    size_t cap = 0;
    const char *p = strstr(text, "@@ ");
    while (p) {
        const char *eol = strchr(p, '\n');
        if (!eol) break;
        const char *next = strstr(eol, "\n@@ ");
        const char *end = next ? next + 1 : eol + strlen(eol);
        if (!lc_grow((void **)&g->tools, sizeof *g->tools, &cap, (size_t)g->n_tools + 1))
            return LC_ERR_OOM;
        tool_tpl *t = &g->tools[g->n_tools++];
        t->command = trim_dup(p + 3, (size_t)(eol - p - 3));
        t->body = trim_dup(eol + 1, (size_t)(end - eol - 1));
        if (!t->command || !t->body) return LC_ERR_OOM;
        p = next ? next + 1 : NULL;
    }
    if (g->n_tools == 0) return lc_fail(LC_ERR_FORMAT, "benchmark corpus: tools.txt has no '@@' blocks");
    return LC_OK;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Collects *.c and *.h paths under dir (recursively) relative to root_len. */
static lc_status walk_sources(const char *dir, char ***paths, int *n, size_t *cap) {
    DIR *d = opendir(dir);
    if (!d) return LC_OK; /* no sources: templates alone will do */
    struct dirent *e;
    lc_status st = LC_OK;
    while ((e = readdir(d)) && st == LC_OK) {
        if (e->d_name[0] == '.') continue;
        char full[4096];
        snprintf(full, sizeof full, "%s/%s", dir, e->d_name);
        struct stat sb;
        if (stat(full, &sb) != 0) continue;
        if (S_ISDIR(sb.st_mode)) {
            st = walk_sources(full, paths, n, cap);
            continue;
        }
        size_t len = strlen(e->d_name);
        if (len < 3 || (strcmp(e->d_name + len - 2, ".c") && strcmp(e->d_name + len - 2, ".h")))
            continue;
        if (sb.st_size <= 0 || sb.st_size > MAX_FILE_BYTES) continue;
        if (!lc_grow((void **)paths, sizeof(char *), cap, (size_t)*n + 1) ||
            !((*paths)[*n] = lc_strdup(full))) {
            st = LC_ERR_OOM;
            break;
        }
        (*n)++;
    }
    closedir(d);
    return st;
}

/* Adds the identifiers starting with "lc_" in text to the word list (distinct, at most 400). */
static void collect_words(lc_prompt_gen *g, const char *text, size_t *cap) {
    for (const char *p = strstr(text, "lc_"); p && g->n_words < 400; p = strstr(p + 3, "lc_")) {
        if (p > text && (p[-1] == '_' || (p[-1] >= 'a' && p[-1] <= 'z'))) continue;
        size_t len = strspn(p, "abcdefghijklmnopqrstuvwxyz_0123456789");
        if (len < 5 || len > 40) continue;
        int dup = 0;
        for (int i = 0; i < g->n_words && !dup; i++)
            dup = strlen(g->words[i]) == len && !strncmp(g->words[i], p, len);
        if (dup) continue;
        if (!lc_grow((void **)&g->words, sizeof(char *), cap, (size_t)g->n_words + 1)) return;
        if ((g->words[g->n_words] = lc_strndup(p, len))) g->n_words++;
    }
}

/* The repository root: where this file was compiled from ("<root>/src/bench/prompts.c"), else
 * the folder above the running program (a build folder inside the checkout), else ".". The
 * first that holds bench/corpus/system.txt wins. */
static void default_root(char *buf, size_t cap) {
    char cand[3][2048] = {".", ".", "."};
    const char *f = __FILE__;
    const char *tail = strstr(f, "src/bench/prompts.c");
    if (tail && tail > f) snprintf(cand[0], sizeof cand[0], "%.*s", (int)(tail - f - 1), f);
    char exe[1900];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = 0;
        char *slash = strrchr(exe, '/');
        if (slash) *slash = 0;
        snprintf(cand[1], sizeof cand[1], "%s/..", exe);
        snprintf(cand[2], sizeof cand[2], "%s/../..", exe);
    }
    for (int i = 0; i < 3; i++) {
        char probe[2200];
        if (snprintf(probe, sizeof probe, "%s/bench/corpus/system.txt", cand[i]) < (int)sizeof probe &&
            access(probe, R_OK) == 0 && snprintf(buf, cap, "%s", cand[i]) < (int)cap)
            return;
    }
    if (snprintf(buf, cap, "%s", cand[0]) >= (int)cap) snprintf(buf, cap, ".");
}

lc_status lc_prompt_gen_create(const char *corpus_dir, const char *src_dir, lc_prompt_gen **out) {
    char root[4000], cdir[4096], sdir[4096];
    default_root(root, sizeof root);
    snprintf(cdir, sizeof cdir, "%s", corpus_dir ? corpus_dir : "");
    snprintf(sdir, sizeof sdir, "%s", src_dir ? src_dir : "");
    if (!corpus_dir) snprintf(cdir, sizeof cdir, "%s/bench/corpus", root);
    if (!src_dir) snprintf(sdir, sizeof sdir, "%s/src", root);

    *out = NULL;
    lc_prompt_gen *g = lc_calloc(1, sizeof *g);
    if (!g) return LC_ERR_OOM;
    char *text = NULL, **paths = NULL;
    int n_paths = 0;
    size_t cap = 0;
    lc_status st = load_text(cdir, "system.txt", &g->system);
    if (st == LC_OK) st = load_text(cdir, "asks.txt", &text);
    if (st == LC_OK) st = split_lines(text, &g->asks, &g->n_asks, &g->shorts, &g->n_shorts);
    lc_free(text);
    text = NULL;
    if (st == LC_OK) st = load_text(cdir, "followups.txt", &text);
    if (st == LC_OK) st = split_lines(text, &g->followups, &g->n_followups, NULL, NULL);
    lc_free(text);
    text = NULL;
    if (st == LC_OK) st = load_text(cdir, "tools.txt", &text);
    if (st == LC_OK) st = load_tools(g, text);
    lc_free(text);
    if (st == LC_OK && (!g->n_asks || !g->n_shorts || !g->n_followups))
        st = lc_fail(LC_ERR_FORMAT, "benchmark corpus %s: asks.txt needs long and short questions "
                                    "and followups.txt at least one line", cdir);
    if (st == LC_OK) st = walk_sources(sdir, &paths, &n_paths, &cap);
    if (st != LC_OK) goto fail;
    qsort(paths, (size_t)n_paths, sizeof *paths, cmp_str);
    size_t total = 0, fcap = 0, wcap = 0;
    size_t skip = strlen(sdir) - (strlen(sdir) >= 3 ? 3 : 0); /* keep the "src/" prefix */
    for (int i = 0; i < n_paths && total < MAX_MATERIAL; i++) {
        char *body;
        size_t len;
        if (lc_read_file(paths[i], &body, &len) != LC_OK) continue;
        if (!lc_grow((void **)&g->files, sizeof *g->files, &fcap, (size_t)g->n_files + 1)) {
            lc_free(body);
            st = LC_ERR_OOM;
            goto fail;
        }
        src_file *f = &g->files[g->n_files++];
        f->path = lc_strdup(paths[i] + (strlen(paths[i]) > skip ? skip : 0));
        f->text = body;
        f->len = len;
        total += len;
        collect_words(g, body, &wcap);
    }
    for (int i = 0; i < n_paths; i++) lc_free(paths[i]);
    lc_free(paths);
    *out = g;
    return LC_OK;
fail:
    for (int i = 0; i < n_paths; i++) lc_free(paths[i]);
    lc_free(paths);
    lc_prompt_gen_free(g);
    return st;
}

static void free_list(char **v, int n) {
    for (int i = 0; i < n; i++) lc_free(v[i]);
    lc_free(v);
}

void lc_prompt_gen_free(lc_prompt_gen *g) {
    if (!g) return;
    lc_free(g->system);
    free_list(g->asks, g->n_asks);
    free_list(g->shorts, g->n_shorts);
    free_list(g->followups, g->n_followups);
    free_list(g->words, g->n_words);
    for (int i = 0; i < g->n_tools; i++) {
        lc_free(g->tools[i].command);
        lc_free(g->tools[i].body);
    }
    lc_free(g->tools);
    for (int i = 0; i < g->n_files; i++) {
        lc_free(g->files[i].path);
        lc_free(g->files[i].text);
    }
    lc_free(g->files);
    lc_free(g);
}

/* ==== Conversations ==== */

lc_status lc_convo_add(lc_convo *c, const char *role, const char *content) {
    size_t cap = (size_t)c->cap;
    if (c->n == c->cap) {
        size_t cap2 = cap;
        if (!lc_grow((void **)&c->role, sizeof(char *), &cap, (size_t)c->n + 1) ||
            !lc_grow((void **)&c->content, sizeof(char *), &cap2, (size_t)c->n + 1))
            return LC_ERR_OOM;
        c->cap = (int)(cap < cap2 ? cap : cap2);
    }
    c->role[c->n] = lc_strdup(role);
    c->content[c->n] = lc_strdup(content);
    if (!c->role[c->n] || !c->content[c->n]) {
        lc_free(c->role[c->n]);
        lc_free(c->content[c->n]);
        return LC_ERR_OOM;
    }
    c->n++;
    return LC_OK;
}

void lc_convo_free(lc_convo *c) {
    for (int i = 0; i < c->n; i++) {
        lc_free(c->role[i]);
        lc_free(c->content[i]);
    }
    lc_free(c->role);
    lc_free(c->content);
    memset(c, 0, sizeof *c);
}

json_t *lc_convo_to_json(const lc_convo *c) {
    json_t *a = json_array();
    for (int i = 0; a && i < c->n; i++) {
        json_t *m = json_pack("{s:s, s:s}", "role", c->role[i], "content", c->content[i]);
        if (!m || json_array_append_new(a, m) != 0) {
            json_decref(a);
            return NULL;
        }
    }
    return a;
}

/* ==== Generation ==== */

typedef struct rng {
    uint64_t s;
} rng;

/* splitmix64: tiny, good enough for picking, and the same everywhere. */
static uint64_t rng_next(rng *r) {
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static int rng_below(rng *r, int n) { return n > 0 ? (int)(rng_next(r) % (uint64_t)n) : 0; }

const char *lc_prompt_followup(const lc_prompt_gen *g, uint64_t seed, int rep) {
    rng r = {seed ^ 0x5f0110f0ull ^ (uint64_t)rep * 0x100000001b3ull};
    return g->followups[rng_below(&r, g->n_followups)];
}

/* Fills one template body: placeholders drawn afresh per occurrence, "*K " lines repeated. */
static bool fill_template(const lc_prompt_gen *g, rng *r, const char *body, lc_str *o) {
    bool ok = true;
    for (const char *p = body; *p && ok;) {
        const char *e = strchr(p, '\n');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        int reps = 1;
        if (p[0] == '*' && len > 2) {
            reps = atoi(p + 1);
            const char *sp = memchr(p, ' ', len);
            if (sp) {
                len -= (size_t)(sp + 1 - p);
                p = sp + 1;
            }
            if (reps < 1) reps = 1;
        }
        for (int k = 0; k < reps && ok; k++) {
            for (size_t i = 0; i < len && ok;) {
                if (p[i] == '{') {
                    if (!strncmp(p + i, "{FILE}", 6)) {
                        ok = lc_str_puts(o, g->n_files ? g->files[rng_below(r, g->n_files)].path
                                                       : "src/base/alloc.c");
                        i += 6;
                        continue;
                    }
                    if (!strncmp(p + i, "{WORD}", 6)) {
                        ok = lc_str_puts(o, g->n_words ? g->words[rng_below(r, g->n_words)]
                                                       : fallback_words[rng_below(r, LC_ARRAY_LEN(fallback_words))]);
                        i += 6;
                        continue;
                    }
                    if (!strncmp(p + i, "{LINE}", 6)) {
                        ok = lc_str_printf(o, "%d", 1 + rng_below(r, 1400));
                        i += 6;
                        continue;
                    }
                    if (!strncmp(p + i, "{N}", 3)) {
                        ok = lc_str_printf(o, "%d", 1 + rng_below(r, 59));
                        i += 3;
                        continue;
                    }
                }
                ok = lc_str_putc(o, p[i++]);
            }
            ok = ok && lc_str_putc(o, '\n');
        }
        p += len + (e ? 1 : 0);
    }
    return ok;
}

/* Counts tokens with the callback, or estimates bytes / 4 when it cannot. */
static int count_tokens(lc_token_count_fn count, void *ud, const char *text) {
    int n = count ? count(ud, text) : -1;
    return n >= 0 ? n : (int)(strlen(text) / 4) + 1;
}

/* One agent step: the assistant's call (into *call) and the tool's output (into *result). */
static bool make_step(const lc_prompt_gen *g, rng *r, lc_str *call, lc_str *result) {
    lc_str_clear(call);
    lc_str_clear(result);
    if (g->n_files && rng_below(r, 100) < 65) {
        const src_file *f = &g->files[rng_below(r, g->n_files)];
        size_t start = 0, end = f->len;
        if (f->len > READ_WINDOW) {
            start = (size_t)rng_below(r, (int)(f->len - READ_WINDOW));
            while (start > 0 && f->text[start - 1] != '\n') start--;
            end = start + READ_WINDOW;
            while (end < f->len && f->text[end] != '\n') end++;
        }
        int line0 = 1;
        for (size_t i = 0; i < start; i++) line0 += f->text[i] == '\n';
        return lc_str_printf(call, "I'll read `%s` to see how it works.\n<tool_call>read_file(\"%s\", "
                                   "%d)</tool_call>", f->path, f->path, line0) &&
               lc_str_printf(result, "<tool_result name=\"read_file\" path=\"%s\" start_line=\"%d\">\n",
                             f->path, line0) &&
               lc_str_append(result, f->text + start, end - start) &&
               lc_str_puts(result, "\n</tool_result>");
    }
    const tool_tpl *t = &g->tools[rng_below(r, g->n_tools)];
    lc_str cmd = {0};
    bool ok = fill_template(g, r, t->command, &cmd);
    if (ok && cmd.len && cmd.buf[cmd.len - 1] == '\n') cmd.buf[--cmd.len] = 0;
    ok = ok && lc_str_printf(call, "Let me check with a command.\n<tool_call>run(\"%s\")</tool_call>",
                             cmd.buf ? cmd.buf : "") &&
         lc_str_printf(result, "<tool_result name=\"run\" command=\"%s\" exit_status=\"%d\">\n",
                       cmd.buf ? cmd.buf : "", rng_below(r, 3) == 0) &&
         fill_template(g, r, t->body, result) && lc_str_puts(result, "</tool_result>");
    lc_str_free(&cmd);
    return ok;
}

/* Cuts a tool result down to about keep/have of its bytes (at a line boundary) and closes it. */
static bool shrink_result(lc_str *result, double frac) {
    if (frac <= 0) frac = 0.01;
    size_t want = (size_t)((double)result->len * frac);
    while (want > 0 && result->buf[want - 1] != '\n') want--;
    if (want == 0) want = result->len / 2;
    result->len = want;
    result->buf[want] = 0;
    return lc_str_puts(result, "[... output truncated ...]\n</tool_result>");
}

lc_status lc_prompt_build(const lc_prompt_gen *g, uint64_t seed, const char *nonce, int depth,
                          lc_token_count_fn count, void *ud, lc_convo *out) {
    memset(out, 0, sizeof *out);
    rng r = {seed * 0x9e3779b97f4a7c15ull + 0x1234567ull};
    lc_str sys = {0}, call = {0}, result = {0}, remind = {0};
    lc_status st = LC_OK;
    int shallow = depth < 200;
    const char *ask = shallow ? g->shorts[rng_below(&r, g->n_shorts)] : g->asks[rng_below(&r, g->n_asks)];
    bool ok = shallow ? lc_str_printf(&sys, "[session %s] You are a coding agent.", nonce)
                      : lc_str_printf(&sys, "[session %s]\n%s", nonce, g->system);
    if (!ok) goto oom;
    /* The task comes first (roles must alternate user/assistant for many chat templates), and
     * is repeated after the last tool result, as agents do. */
    if ((st = lc_convo_add(out, "system", sys.buf)) != LC_OK ||
        (st = lc_convo_add(out, "user", ask)) != LC_OK)
        goto fail;
    int ask_tokens = count_tokens(count, ud, ask) + LC_PROMPT_MSG_OVERHEAD;
    int used = count_tokens(count, ud, sys.buf) + LC_PROMPT_MSG_OVERHEAD + ask_tokens;
    if (!lc_str_printf(&remind, "\n\nYou have enough context now. %s", ask)) goto oom;
    int remind_tokens = shallow ? 0 : count_tokens(count, ud, remind.buf);
    int budget = depth - used - remind_tokens;
    for (int step = 0; !shallow && budget > 48 && step < 100000; step++) {
        if (!make_step(g, &r, &call, &result)) goto oom;
        int tc = count_tokens(count, ud, call.buf) + LC_PROMPT_MSG_OVERHEAD;
        int tr = count_tokens(count, ud, result.buf) + LC_PROMPT_MSG_OVERHEAD;
        if (tc + tr > budget) {
            /* The last step: shrink its output to the budget left (up to three cuts, since
             * each is an estimate from the average bytes per token). */
            for (int tries = 0; tries < 3 && tc + tr > budget; tries++) {
                double frac = (double)(budget - tc - 16) / (double)tr;
                if (frac < 0.02) break;
                if (!shrink_result(&result, frac * 0.97)) goto oom;
                tr = count_tokens(count, ud, result.buf) + LC_PROMPT_MSG_OVERHEAD;
            }
            if (tc + tr > budget + budget / 20 + 16) break;
        }
        if ((st = lc_convo_add(out, "assistant", call.buf)) != LC_OK ||
            (st = lc_convo_add(out, "user", result.buf)) != LC_OK)
            goto fail;
        used += tc + tr;
        budget -= tc + tr;
    }
    if (out->n > 2) {
        lc_str last = {0};
        if (!lc_str_puts(&last, out->content[out->n - 1]) || !lc_str_puts(&last, remind.buf)) {
            lc_str_free(&last);
            goto oom;
        }
        lc_free(out->content[out->n - 1]);
        out->content[out->n - 1] = lc_str_take(&last);
        used += remind_tokens;
    }
    out->tokens = used;
    lc_str_free(&sys);
    lc_str_free(&call);
    lc_str_free(&result);
    lc_str_free(&remind);
    return LC_OK;
oom:
    st = LC_ERR_OOM;
fail:
    lc_str_free(&sys);
    lc_str_free(&call);
    lc_str_free(&result);
    lc_str_free(&remind);
    lc_convo_free(out);
    return st;
}
