/* test_sampler.c — the engine's sampler (sampler.h) and stop-string matcher (stop.h).
 *
 * Sampler: greedy and ties, seed reproducibility, each filter on a crafted distribution,
 * penalty math, logit bias, logprobs normalisation, a chi-square check of sampling frequencies,
 * and a 152k-vocabulary check of the partial-sort path against a full sort (with timing).
 * Stop strings: every split point gives the same released text as the naive answer.
 */
#include "engine/sampler.h"
#include "engine/stop.h"
#include "testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ==== Sampler helpers ==== */

static lc_sampler *mk(lc_sampler_params p, int n_vocab) {
    lc_sampler *s = NULL;
    lc_status st = lc_sampler_create(&p, n_vocab, &s);
    CHECKF(st == LC_OK, "create: %s", lc_last_error());
    return s;
}

/* Parameters with every filter off and temperature 1: draws follow softmax(logits). */
static lc_sampler_params plain(uint64_t seed) {
    lc_sampler_params p = lc_sampler_params_default();
    p.temperature = 1.0f;
    p.top_k = 0;
    p.top_p = 1.0f;
    p.min_p = 0.0f;
    p.seed = seed;
    return p;
}

/* Draws n tokens and counts them into hist[n_vocab]. */
static void draw(lc_sampler *s, const float *logits, int n, int *hist) {
    for (int i = 0; i < n; i++) hist[lc_sampler_sample(s, logits)]++;
}

static void test_defaults_and_errors(void) {
    lc_sampler_params p = lc_sampler_params_default();
    CHECK(fabsf(p.temperature - 0.8f) < 1e-6f && p.top_k == 40 && fabsf(p.top_p - 0.95f) < 1e-6f);
    CHECK(fabsf(p.min_p - 0.05f) < 1e-6f && p.repeat_penalty == 1.0f && p.repeat_last_n == 64);
    lc_sampler *s = NULL;
    CHECK(lc_sampler_create(&p, 0, &s) == LC_ERR_INVALID && !s);
    p.top_p = 0;
    CHECK(lc_sampler_create(&p, 10, &s) == LC_ERR_INVALID);
    p = lc_sampler_params_default();
    lc_logit_bias b = {10, 1.0f};
    p.n_logit_bias = 1;
    p.logit_bias = &b;
    CHECK(lc_sampler_create(&p, 10, &s) == LC_ERR_INVALID && strstr(lc_last_error(), "10"));
}

static void test_greedy(void) {
    lc_sampler_params p = lc_sampler_params_default();
    p.temperature = 0;
    lc_sampler *s = mk(p, 6);
    float l[6] = {0.1f, 3.0f, -2.0f, 3.0f, NAN, 1.0f};
    CHECK(lc_sampler_sample(s, l) == 1); /* tie between 1 and 3: lowest id */
    float l2[6] = {-INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY};
    CHECK(lc_sampler_sample(s, l2) == 0);
    lc_sampler_free(s);
}

static void test_seed(void) {
    enum { V = 1000, N = 300 };
    static float l[V];
    for (int i = 0; i < V; i++) l[i] = (float)((i * 7919) % 1000) / 200.0f;
    lc_sampler_params p = lc_sampler_params_default();
    p.top_k = 0; /* exercise the top-p partial sort too */
    p.seed = 42;
    lc_sampler *a = mk(p, V), *b = mk(p, V);
    p.seed = 43;
    lc_sampler *c = mk(p, V);
    int same = 1, diff = 0;
    int32_t first[N];
    for (int i = 0; i < N; i++) {
        int32_t ta = lc_sampler_sample(a, l), tb = lc_sampler_sample(b, l), tc = lc_sampler_sample(c, l);
        first[i] = ta;
        same &= ta == tb;
        diff += ta != tc;
    }
    CHECK(same);
    CHECK(diff > N / 10);
    lc_sampler_reset(a, 42); /* reset reseeds: the same sequence again */
    int again = 1;
    for (int i = 0; i < N; i++) again &= lc_sampler_sample(a, l) == first[i];
    CHECK(again);
    lc_sampler_free(a);
    lc_sampler_free(b);
    lc_sampler_free(c);
}

/* A crafted distribution p = {0.5, 0.3, 0.15, 0.05}: which tokens each filter lets through. */
static void test_filters(void) {
    float l[4] = {logf(0.5f), logf(0.3f), logf(0.15f), logf(0.05f)};
    struct {
        int top_k;
        float top_p, min_p, temp;
        int allowed; /* bitmask of tokens that may appear */
        int need;    /* bitmask of tokens that must appear in 4000 draws */
    } cases[] = {
        {0, 1.0f, 0.0f, 1.0f, 0xF, 0xF},
        {1, 1.0f, 0.0f, 1.0f, 0x1, 0x1},
        {2, 1.0f, 0.0f, 1.0f, 0x3, 0x3},
        {0, 0.75f, 0.0f, 1.0f, 0x3, 0x3},  /* 0.5 < 0.75 <= 0.8 */
        {0, 0.85f, 0.0f, 1.0f, 0x7, 0x7},  /* 0.8 < 0.85 <= 0.95 */
        {0, 0.4f, 0.0f, 1.0f, 0x1, 0x1},
        {0, 1.0f, 0.2f, 1.0f, 0x7, 0x7},   /* threshold 0.1 */
        {0, 1.0f, 0.4f, 1.0f, 0x3, 0x3},   /* threshold 0.2 */
        {3, 0.9f, 0.4f, 1.0f, 0x3, 0x3},   /* k=3 renormalises: {.526,.316,.158}; p .9 -> 3; min-p -> 2 */
        {0, 1.0f, 0.0f, 5.0f, 0xF, 0xF},
    };
    for (size_t ci = 0; ci < LC_ARRAY_LEN(cases); ci++) {
        lc_sampler_params p = plain(7 + ci);
        p.top_k = cases[ci].top_k;
        p.top_p = cases[ci].top_p;
        p.min_p = cases[ci].min_p;
        p.temperature = cases[ci].temp;
        lc_sampler *s = mk(p, 4);
        int hist[4] = {0};
        draw(s, l, 4000, hist);
        int seen = 0;
        for (int t = 0; t < 4; t++)
            if (hist[t]) seen |= 1 << t;
        CHECKF((seen & ~cases[ci].allowed) == 0 && (seen & cases[ci].need) == cases[ci].need,
               "case %zu: seen mask %x, allowed %x", ci, seen, cases[ci].allowed);
        lc_sampler_free(s);
    }
    /* Low temperature sharpens: token 0 (p .5 -> ~1 at T=0.1) dominates. */
    lc_sampler_params p = plain(1);
    p.temperature = 0.1f;
    lc_sampler *s = mk(p, 4);
    int hist[4] = {0};
    draw(s, l, 2000, hist);
    CHECKF(hist[0] > 1980, "T=0.1: token 0 drawn %d/2000", hist[0]);
    lc_sampler_free(s);
}

static int greedy_after(lc_sampler_params p, const float *l, int n, const int32_t *hist, int nh) {
    p.temperature = 0;
    lc_sampler *s = mk(p, n);
    for (int i = 0; i < nh; i++) lc_sampler_accept(s, hist[i]);
    int t = lc_sampler_sample(s, l);
    lc_sampler_free(s);
    return t;
}

static void test_penalties(void) {
    lc_sampler_params p = lc_sampler_params_default();
    int32_t h0[] = {0};
    float pos[2] = {2.0f, 1.9f}, neg[2] = {-1.0f, -1.05f};
    p.repeat_penalty = 1.1f; /* 2.0/1.1 = 1.818 < 1.9 */
    CHECK(greedy_after(p, pos, 2, h0, 1) == 1);
    p.repeat_penalty = 1.04f; /* 1.923 > 1.9 */
    CHECK(greedy_after(p, pos, 2, h0, 1) == 0);
    p.repeat_penalty = 1.1f; /* negative logits are multiplied: -1.1 < -1.05 */
    CHECK(greedy_after(p, neg, 2, h0, 1) == 1);
    p.repeat_penalty = 1.04f; /* -1.04 > -1.05 */
    CHECK(greedy_after(p, neg, 2, h0, 1) == 0);

    p = lc_sampler_params_default();
    float l[2] = {1.0f, 0.8f};
    p.presence_penalty = 0.3f; /* 0.7 < 0.8 */
    CHECK(greedy_after(p, l, 2, h0, 1) == 1);
    p.presence_penalty = 0.1f; /* 0.9 > 0.8 */
    CHECK(greedy_after(p, l, 2, h0, 1) == 0);
    p.presence_penalty = 0;
    int32_t h3[] = {0, 0, 0};
    p.frequency_penalty = 0.1f; /* 1 - 3*0.1 = 0.7 < 0.8 */
    CHECK(greedy_after(p, l, 2, h3, 3) == 1);
    p.frequency_penalty = 0.05f; /* 0.85 > 0.8 */
    CHECK(greedy_after(p, l, 2, h3, 3) == 0);
    p.frequency_penalty = 0.1f;
    CHECK(greedy_after(p, l, 2, h0, 1) == 0); /* one occurrence: 0.9 > 0.8 */
    p.presence_penalty = 0.1f;                /* both: 1 - 0.1 - 0.1 = 0.8, tie -> lowest id */
    CHECK(greedy_after(p, l, 2, h0, 1) == 0);
    p.presence_penalty = 0.11f;
    CHECK(greedy_after(p, l, 2, h0, 1) == 1);

    /* The window slides: with repeat_last_n 2, token 0 accepted three tokens ago is forgotten. */
    p = lc_sampler_params_default();
    p.presence_penalty = 1.0f;
    p.repeat_last_n = 2;
    int32_t slid[] = {0, 1, 1};
    CHECK(greedy_after(p, l, 2, slid, 3) == 0);
    int32_t in[] = {1, 0, 0};
    CHECK(greedy_after(p, l, 2, in, 3) == 1); /* 0 is in the window: 0.0 < 0.8 */
    p.repeat_last_n = 0;                      /* off: nothing is recorded */
    CHECK(greedy_after(p, l, 2, in, 3) == 0);
    p.repeat_last_n = -1; /* everything counts */
    int32_t old[] = {0, 1, 1, 1, 1, 1};
    p.presence_penalty = 0;
    p.frequency_penalty = 0.1f; /* 0: 1-0.1 = .9; 1: .8-.5 = .3 */
    CHECK(greedy_after(p, l, 2, old, 6) == 0);
    float l3[3] = {1.0f, 0.8f, 0.85f};
    int32_t one0[] = {0, 0};
    CHECK(greedy_after(p, l3, 3, one0, 2) == 2); /* 0.8 < 0.85 */
}

static void test_bias(void) {
    float l[4] = {5.0f, 4.0f, 1.0f, 0.0f};
    lc_logit_bias b[2] = {{0, -INFINITY}, {3, 4.5f}};
    lc_sampler_params p = lc_sampler_params_default();
    p.temperature = 0;
    p.n_logit_bias = 1;
    p.logit_bias = b;
    lc_sampler *s = mk(p, 4);
    CHECK(lc_sampler_sample(s, l) == 1);
    lc_sampler_free(s);
    p.n_logit_bias = 2;
    s = mk(p, 4);
    CHECK(lc_sampler_sample(s, l) == 3);
    /* A banned token is never drawn, even at high temperature. */
    lc_sampler_free(s);
    p = plain(3);
    p.temperature = 10.0f;
    p.n_logit_bias = 1;
    p.logit_bias = b;
    s = mk(p, 4);
    int hist[4] = {0};
    draw(s, l, 3000, hist);
    CHECK(hist[0] == 0 && hist[1] > 0 && hist[2] > 0 && hist[3] > 0);
    lc_sampler_free(s);
}

static void test_logprobs(void) {
    enum { V = 50 };
    float l[V];
    for (int i = 0; i < V; i++) l[i] = sinf((float)i * 1.7f) * 4.0f;
    lc_logit_bias b = {7, 3.0f};
    lc_sampler_params p = lc_sampler_params_default();
    p.n_logit_bias = 1;
    p.logit_bias = &b;
    lc_sampler *s = mk(p, V);
    lc_token_logprob top[V];
    int nw = -1;
    float lp = lc_sampler_logprobs(s, l, 7, V, top, &nw);
    CHECK(nw == V);
    double sum = 0, z = 0;
    for (int i = 0; i < V; i++) {
        sum += exp(top[i].logprob);
        z += exp((double)l[i] + (i == 7 ? 3.0 : 0.0));
    }
    CHECKF(fabs(sum - 1.0) < 1e-5, "sum %f", sum);
    CHECKF(fabs(lp - ((double)l[7] + 3.0 - log(z))) < 1e-5, "lp %f", (double)lp);
    int ordered = 1, seen7 = 0;
    for (int i = 1; i < V; i++) ordered &= top[i - 1].logprob >= top[i].logprob;
    for (int i = 0; i < V; i++) seen7 |= top[i].token == 7 && top[i].logprob == lp;
    CHECK(ordered && seen7);
    lc_token_logprob t3[3];
    lc_sampler_logprobs(s, l, 0, 3, t3, &nw);
    CHECK(nw == 3 && t3[0].token == top[0].token && t3[2].token == top[2].token);
    lc_sampler_free(s);
}

/* Pearson's chi-square of observed counts against expected probabilities. */
static double chi2(const int *obs, const double *prob, int k, int n) {
    double x = 0;
    for (int i = 0; i < k; i++) {
        double e = prob[i] * n;
        x += (obs[i] - e) * (obs[i] - e) / e;
    }
    return x;
}

static void test_frequencies(void) {
    enum { K = 8, N = 40000 };
    float l[K] = {1.0f, 0.5f, 0.0f, -0.5f, 2.0f, 1.5f, -1.0f, 0.2f};
    double prob[K], z = 0;
    for (int i = 0; i < K; i++) z += exp(l[i]);
    for (int i = 0; i < K; i++) prob[i] = exp(l[i]) / z;
    lc_sampler *s = mk(plain(2024), K);
    int hist[K] = {0};
    draw(s, l, N, hist);
    double x = chi2(hist, prob, K, N);
    CHECKF(x < 24.3, "chi2 %.2f >= 24.3 (df 7, p 0.001)", x); /* fails by chance 1 in 1000 seeds */
    lc_sampler_free(s);

    /* top_k 3 at T=2: the three best (ids 4, 5, 0) renormalised at the temperature. */
    lc_sampler_params p = plain(99);
    p.top_k = 3;
    p.temperature = 2.0f;
    s = mk(p, K);
    int h2[K] = {0};
    draw(s, l, N, h2);
    int ids[3] = {4, 5, 0}, obs[3];
    double pr[3], z2 = 0;
    for (int i = 0; i < 3; i++) z2 += exp(l[ids[i]] / 2.0);
    for (int i = 0; i < 3; i++) {
        pr[i] = exp(l[ids[i]] / 2.0) / z2;
        obs[i] = h2[ids[i]];
    }
    CHECK(obs[0] + obs[1] + obs[2] == N);
    x = chi2(obs, pr, 3, N);
    CHECKF(x < 13.8, "top-k chi2 %.2f (df 2, p 0.001)", x);
    lc_sampler_free(s);
}

static int cmp_desc(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x < y) - (x > y);
}

/* A Qwen-sized vocabulary: the partial-sort nucleus must equal the one a full sort gives. */
static void test_large_vocab(void) {
    enum { V = 151936, N = 200 };
    float *l = malloc(V * sizeof *l), *sorted = malloc(V * sizeof *l);
    uint64_t x = 12345;
    for (int i = 0; i < V; i++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        l[i] = (float)((x >> 40) % 100000) / 100000.0f * 20.0f - 10.0f; /* uniform in [-10, 10) */
    }
    memcpy(sorted, l, V * sizeof *l);
    qsort(sorted, V, sizeof *sorted, cmp_desc);
    /* Reference nucleus at top_p 0.95 with a full sort: the smallest logit that can be drawn. */
    double z = 0, cum = 0;
    for (int i = 0; i < V; i++) z += exp((double)sorted[i] - sorted[0]);
    float cutoff = sorted[V - 1];
    for (int i = 0; i < V; i++) {
        cum += exp((double)sorted[i] - sorted[0]);
        if (cum >= 0.95 * z) {
            cutoff = sorted[i];
            break;
        }
    }
    lc_sampler_params p = plain(5);
    p.top_p = 0.95f;
    lc_sampler *s = mk(p, V);
    int ok = 1;
    double t0 = lc_time_sec();
    for (int i = 0; i < N; i++) ok &= l[lc_sampler_sample(s, l)] >= cutoff;
    double t_topp = (lc_time_sec() - t0) / N;
    CHECK(ok);
    lc_sampler_free(s);

    p = lc_sampler_params_default(); /* top_k 40 + top_p + min_p */
    s = mk(p, V);
    ok = 1;
    t0 = lc_time_sec();
    for (int i = 0; i < N; i++) ok &= l[lc_sampler_sample(s, l)] >= sorted[39];
    double t_def = (lc_time_sec() - t0) / N;
    CHECK(ok);
    lc_sampler_free(s);
    printf("sampler, V=%d: defaults %.3f ms/token, top_p 0.95 only %.3f ms/token\n", V,
           t_def * 1e3, t_topp * 1e3);
    free(l);
    free(sorted);
}

/* ==== Stop strings ==== */

/* Feeds text to a fresh matcher in pieces cut at the given points (sorted, inside the text)
 * and returns what was released; *hit gets the stop index. */
static char *stop_run(const char *const *stops, int ns, const char *text, const size_t *cuts,
                      int ncut, int *hit, int check_utf8) {
    lc_stop *m = NULL;
    CHECK(lc_stop_create(stops, ns, &m) == LC_OK);
    lc_str out = {0}, piece = {0};
    size_t len = strlen(text), at = 0;
    bool done = false;
    for (int i = 0; i <= ncut && !done; i++) {
        size_t end = i < ncut ? cuts[i] : len;
        lc_str_clear(&piece);
        done = lc_stop_feed(m, text + at, end - at, &piece);
        if (check_utf8 && piece.len) { /* a released chunk never ends inside a UTF-8 char */
            unsigned char c = (unsigned char)piece.buf[piece.len - 1];
            CHECK(c < 0x80 || (c & 0xC0) == 0x80);
        }
        lc_str_append(&out, piece.buf ? piece.buf : "", piece.len);
        at = end;
    }
    if (!done) lc_stop_finish(m, &out);
    *hit = lc_stop_hit(m);
    lc_stop_free(m);
    lc_str_free(&piece);
    return lc_str_take(&out);
}

static void test_stop(void) {
    const char *stops[] = {"</s>", "", "STOP", "\n\nUser:", "ab"};
    struct {
        const char *text, *want;
        int hit;
    } cases[] = {
        {"hello world", "hello world", -1},
        {"hello </s> world", "hello ", 0},
        {"a STOP b </s>", "a ", 2},
        {"</s", "</s", -1},
        {"<<</s>", "<<", 0},
        {"SSTOSTOP!", "SSTO", 2},
        {"x\n\nUser\n\nUser: y", "x\n\nUser", 3},
        {"aaab", "aa", 4},
        {"\n\nUse", "\n\nUse", -1},
        {"", "", -1},
        {"héllo 日本 STOP 語", "héllo 日本 ", 2},
    };
    for (size_t ci = 0; ci < LC_ARRAY_LEN(cases); ci++) {
        const char *t = cases[ci].text;
        size_t len = strlen(t);
        int hit;
        char *whole = stop_run(stops, 5, t, NULL, 0, &hit, 0);
        CHECKF(strcmp(whole, cases[ci].want) == 0 && hit == cases[ci].hit, "case %zu: '%s' hit %d",
               ci, whole, hit);
        lc_free(whole);
        int all_ok = 1;
        for (size_t a = 1; a < len; a++) { /* every 2-way split */
            char *o = stop_run(stops, 5, t, &a, 1, &hit, 1);
            all_ok &= strcmp(o, cases[ci].want) == 0 && hit == cases[ci].hit;
            lc_free(o);
            for (size_t b = a + 1; b < len; b++) { /* and every 3-way split */
                size_t cuts[2] = {a, b};
                o = stop_run(stops, 5, t, cuts, 2, &hit, 1);
                all_ok &= strcmp(o, cases[ci].want) == 0 && hit == cases[ci].hit;
                lc_free(o);
            }
        }
        size_t bytes[64];
        for (size_t i = 0; i + 1 < len && i < 64; i++) bytes[i] = i + 1;
        char *o = stop_run(stops, 5, t, bytes, len > 1 ? (int)LC_MIN(len - 1, 64) : 0, &hit, 1);
        all_ok &= strcmp(o, cases[ci].want) == 0;
        lc_free(o);
        CHECKF(all_ok, "case %zu: some split differs", ci);
    }
    /* Reuse after reset; no stops at all is a UTF-8 chunker. */
    lc_stop *m = NULL;
    CHECK(lc_stop_create(NULL, 0, &m) == LC_OK);
    lc_str out = {0};
    CHECK(!lc_stop_feed(m, "\xe6\x97", 2, &out) && out.len == 0);
    CHECK(!lc_stop_feed(m, "\xa5!", 2, &out) && strcmp(out.buf, "\xe6\x97\xa5!") == 0);
    lc_stop_reset(m);
    lc_stop_free(m);
    lc_str_free(&out);
}

int main(void) {
    test_defaults_and_errors();
    test_greedy();
    test_seed();
    test_filters();
    test_penalties();
    test_bias();
    test_logprobs();
    test_frequencies();
    test_large_vocab();
    test_stop();
    return test_done();
}
