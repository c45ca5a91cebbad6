/* sampler.c — the token sampler and logprobs behind sampler.h.
 *
 * Owns: one scratch copy of the logits and one candidate array (allocated at create), a
 * token-count table and a ring buffer for the penalty window, a xoshiro256** RNG. Candidates
 * are ordered by a total order (logit descending, then id ascending), so partial sorts give
 * the same answer as a full sort and the same seed always gives the same token.
 * Deliberately not here: grammars, speculative decoding. Entry points: lc_sampler_*.
 */
#include "engine/sampler.h"

#include <math.h>
#include <string.h>

typedef struct cand {
    float logit;
    float w; /* exp(logit - max): scratch for the nucleus search */
    int32_t id;
} cand;

struct lc_sampler {
    lc_sampler_params p;
    lc_logit_bias *bias; /* own copy of p.logit_bias */
    int n_vocab;
    float *logit;    /* [n_vocab] scratch: biased, penalised logits */
    cand *cands;     /* [n_vocab] scratch */
    int32_t *counts; /* [n_vocab] occurrences of each token in the penalty window */
    int32_t *ring;   /* [ring_cap] the window when repeat_last_n > 0 */
    int ring_cap, ring_len, ring_head;
    uint64_t rng[4];
};

size_t lc_sampler_bytes(int n_vocab) {
    return sizeof(lc_sampler) + (size_t)n_vocab * (sizeof(float) + sizeof(cand) + sizeof(int32_t));
}

lc_sampler_params lc_sampler_params_default(void) {
    lc_sampler_params p;
    memset(&p, 0, sizeof p);
    p.temperature = 0.8f;
    p.top_k = 40;
    p.top_p = 0.95f;
    p.min_p = 0.05f;
    p.repeat_penalty = 1.0f;
    p.repeat_last_n = 64;
    return p;
}

/* ==== RNG: splitmix64 to seed, xoshiro256** to draw ==== */

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static void rng_seed(uint64_t st[4], uint64_t seed) {
    for (int i = 0; i < 4; i++) st[i] = splitmix64(&seed);
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t rng_next(uint64_t s[4]) {
    uint64_t r = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return r;
}

/* Uniform double in [0, 1) with 53 random bits. */
static double rng_uniform(uint64_t s[4]) { return (double)(rng_next(s) >> 11) * 0x1.0p-53; }

/* ==== Create / free / history ==== */

lc_status lc_sampler_create(const lc_sampler_params *p, int n_vocab, lc_sampler **out) {
    *out = NULL;
    if (!p || n_vocab <= 0) return lc_fail(LC_ERR_INVALID, "sampler: n_vocab must be positive");
    if (!(p->top_p > 0.0f && p->top_p <= 1.0f))
        return lc_fail(LC_ERR_INVALID, "sampler: top_p %g is outside (0, 1]", (double)p->top_p);
    if (p->top_k < 0 || !(p->min_p >= 0.0f && p->min_p <= 1.0f))
        return lc_fail(LC_ERR_INVALID, "sampler: top_k must be >= 0 and min_p in [0, 1]");
    if (p->repeat_last_n < -1 || !(p->repeat_penalty > 0.0f))
        return lc_fail(LC_ERR_INVALID, "sampler: repeat_last_n must be >= -1, repeat_penalty > 0");
    if (p->n_logit_bias < 0 || (p->n_logit_bias > 0 && !p->logit_bias))
        return lc_fail(LC_ERR_INVALID, "sampler: bad logit_bias list");
    for (int i = 0; i < p->n_logit_bias; i++)
        if (p->logit_bias[i].token < 0 || p->logit_bias[i].token >= n_vocab)
            return lc_fail(LC_ERR_INVALID, "sampler: logit_bias token %d is outside [0, %d)",
                           (int)p->logit_bias[i].token, n_vocab);

    lc_sampler *s = lc_calloc(1, sizeof *s);
    if (!s) return LC_ERR_OOM;
    s->p = *p;
    s->n_vocab = n_vocab;
    s->logit = lc_malloc((size_t)n_vocab * sizeof *s->logit);
    s->cands = lc_malloc((size_t)n_vocab * sizeof *s->cands);
    s->counts = lc_calloc((size_t)n_vocab, sizeof *s->counts);
    if (!s->logit || !s->cands || !s->counts) goto oom;
    if (p->n_logit_bias > 0) {
        s->bias = lc_malloc((size_t)p->n_logit_bias * sizeof *s->bias);
        if (!s->bias) goto oom;
        memcpy(s->bias, p->logit_bias, (size_t)p->n_logit_bias * sizeof *s->bias);
    }
    s->p.logit_bias = s->bias;
    if (p->repeat_last_n > 0) {
        s->ring_cap = p->repeat_last_n;
        s->ring = lc_malloc((size_t)s->ring_cap * sizeof *s->ring);
        if (!s->ring) goto oom;
    }
    rng_seed(s->rng, p->seed);
    *out = s;
    return LC_OK;
oom:
    lc_sampler_free(s);
    return lc_fail(LC_ERR_OOM, "sampler: out of memory for a vocabulary of %d", n_vocab);
}

void lc_sampler_free(lc_sampler *s) {
    if (!s) return;
    lc_free(s->logit);
    lc_free(s->cands);
    lc_free(s->counts);
    lc_free(s->ring);
    lc_free(s->bias);
    lc_free(s);
}

/* The window slides: with repeat_last_n > 0 the oldest token leaves when a new one enters;
 * with -1 every accepted token counts forever; with 0 nothing is recorded. */
void lc_sampler_accept(lc_sampler *s, int32_t token) {
    if (token < 0 || token >= s->n_vocab || s->p.repeat_last_n == 0) return;
    if (s->ring_cap > 0) {
        if (s->ring_len == s->ring_cap) { /* full: the oldest token leaves the window */
            s->counts[s->ring[s->ring_head]]--;
            s->ring_head = (s->ring_head + 1) % s->ring_cap;
            s->ring_len--;
        }
        s->ring[(s->ring_head + s->ring_len) % s->ring_cap] = token;
        s->ring_len++;
    }
    s->counts[token]++;
}

void lc_sampler_reset(lc_sampler *s, uint64_t seed) {
    memset(s->counts, 0, (size_t)s->n_vocab * sizeof *s->counts);
    s->ring_len = s->ring_head = 0;
    rng_seed(s->rng, seed);
}

/* ==== Candidate ordering: partial selection and sort ==== */

/* The total order of candidates: higher logit first, then lower id. */
static inline bool before(cand a, cand b) {
    return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);
}

static inline void swap_c(cand *a, cand *b) {
    cand t = *a;
    *a = *b;
    *b = t;
}

/* Partitions c[lo..hi] (inclusive) around a median-of-three pivot; returns the pivot's final
 * index: everything before it comes before it in the order, everything after comes after. */
static int partition(cand *c, int lo, int hi) {
    int mid = lo + (hi - lo) / 2;
    if (before(c[mid], c[lo])) swap_c(&c[mid], &c[lo]);
    if (before(c[hi], c[lo])) swap_c(&c[hi], &c[lo]);
    if (before(c[mid], c[hi])) swap_c(&c[mid], &c[hi]); /* median now at hi */
    cand piv = c[hi];
    int i = lo;
    for (int j = lo; j < hi; j++)
        if (before(c[j], piv)) swap_c(&c[i++], &c[j]);
    swap_c(&c[i], &c[hi]);
    return i;
}

/* Sorts c[lo..hi] (inclusive) in candidate order: quicksort, insertion sort for short runs,
 * recursing into the smaller side so the stack stays O(log n). */
static void sort_range(cand *c, int lo, int hi) {
    while (hi - lo > 16) {
        int p = partition(c, lo, hi);
        if (p - lo < hi - p) {
            sort_range(c, lo, p - 1);
            lo = p + 1;
        } else {
            sort_range(c, p + 1, hi);
            hi = p - 1;
        }
    }
    for (int i = lo + 1; i <= hi; i++) {
        cand x = c[i];
        int j = i - 1;
        while (j >= lo && before(x, c[j])) {
            c[j + 1] = c[j];
            j--;
        }
        c[j + 1] = x;
    }
}

/* Restores the heap property below i in a heap h[0..k) whose root is the candidate that comes
 * LAST in the order (so the root is the one to evict when a better candidate arrives). */
static void sift_down(cand *h, int k, int i) {
    for (;;) {
        int l = 2 * i + 1, r = l + 1, w = i;
        if (l < k && before(h[w], h[l])) w = l;
        if (r < k && before(h[w], h[r])) w = r;
        if (w == i) return;
        swap_c(&h[i], &h[w]);
        i = w;
    }
}

/* Makes c[lo..lo+k) the k first candidates of c[lo..n) in order, sorted; the rest of the range
 * is left unordered behind them. For small k a bounded heap kept in place at the front of the
 * range: one comparison per candidate with the heap's worst, so O(n) for k << n (the usual
 * top-k = 40 over 150k logits). For larger k quickselect (expected O(n)). Then a sort of the k. */
static void select_top(cand *c, int lo, int n, int k) {
    if (k <= 0 || lo >= n) return;
    if (k > n - lo) k = n - lo;
    if (k < n - lo && k <= 256) {
        cand *h = c + lo;
        for (int i = k / 2 - 1; i >= 0; i--) sift_down(h, k, i);
        for (int j = lo + k; j < n; j++)
            if (before(c[j], h[0])) {
                swap_c(&c[j], &h[0]);
                sift_down(h, k, 0);
            }
    } else if (k < n - lo) {
        int want = lo + k - 1, l = lo, h = n - 1; /* index that must hold the k-th candidate */
        while (l < h) {
            int p = partition(c, l, h);
            if (p == want) break;
            if (p < want) l = p + 1;
            else h = p - 1;
        }
    }
    sort_range(c, lo, lo + k - 1);
}

/* Top-p: the nucleus is the shortest prefix of the candidate order whose mass (c[i].w) reaches
 * target. When c[0..sorted) is already in order it is scanned; otherwise a weighted
 * quickselect finds the crossing element without sorting: partition, weigh the better side,
 * keep the side that holds the crossing. Expected O(n) however large the nucleus. Leaves the
 * nucleus in c[0..result) (in no particular but deterministic order). */
static int nucleus(cand *c, int sorted, int n, double target) {
    if (sorted == n) {
        double cum = 0;
        for (int i = 0; i < n; i++)
            if ((cum += c[i].w) >= target) return i + 1;
        return n;
    }
    int lo = 0, hi = n - 1;
    double acc = 0; /* mass of c[0..lo), all before the crossing */
    while (lo < hi) {
        int p = partition(c, lo, hi);
        double before_p = 0;
        for (int i = lo; i < p; i++) before_p += c[i].w;
        if (acc + before_p >= target) {
            hi = p - 1;
        } else if (acc + before_p + c[p].w >= target) {
            lo = hi = p;
        } else {
            acc += before_p + c[p].w;
            lo = p + 1;
        }
    }
    return LC_MIN(lo, n - 1) + 1;
}

/* ==== Sampling ==== */

/* Max of s->logit. Eight running maxima break the compare-latency chain of a single one. */
static float max_logit(const lc_sampler *s) {
    float m8[8] = {-INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY};
    int i = 0, n = s->n_vocab;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++) m8[j] = s->logit[i + j] > m8[j] ? s->logit[i + j] : m8[j];
    float m = -INFINITY;
    for (; i < n; i++) m = s->logit[i] > m ? s->logit[i] : m;
    for (int j = 0; j < 8; j++) m = m8[j] > m ? m8[j] : m;
    return m;
}

/* Greedy: the first token whose logit is the maximum m, so ties go to the lowest id. */
static int32_t first_max(const lc_sampler *s, float m) {
    int32_t i = 0;
    while (i < s->n_vocab - 1 && s->logit[i] != m) i++;
    return i;
}

/* Copies logits into s->logit, NaN -> -inf, then adds the logit bias. Returns the maximum. */
static float load_biased(lc_sampler *s, const float *logits) {
    float *l = s->logit;
    for (int i = 0; i < s->n_vocab; i++) {
        float v = logits[i];
        l[i] = v == v ? v : -INFINITY;
    }
    for (int i = 0; i < s->p.n_logit_bias; i++) l[s->bias[i].token] += s->bias[i].bias;
    return max_logit(s);
}

/* Repetition penalty (llama.cpp / CTRL: a seen token's positive logit is divided by the
 * penalty, a negative one multiplied, so it always becomes less likely) and OpenAI's presence
 * (once per seen token) and frequency (per occurrence) penalties, over the accepted window. */
static bool apply_penalties(lc_sampler *s) {
    const lc_sampler_params *p = &s->p;
    if (p->repeat_last_n == 0) return false;
    if (p->repeat_penalty == 1.0f && p->presence_penalty == 0.0f && p->frequency_penalty == 0.0f)
        return false;
    for (int i = 0; i < s->n_vocab; i++) {
        int32_t n = s->counts[i];
        if (n <= 0) continue;
        float l = s->logit[i];
        if (p->repeat_penalty != 1.0f) l = l > 0 ? l / p->repeat_penalty : l * p->repeat_penalty;
        l -= (float)n * p->frequency_penalty + p->presence_penalty;
        s->logit[i] = l;
    }
    return true;
}

int32_t lc_sampler_sample(lc_sampler *s, const float *logits) {
    const lc_sampler_params *p = &s->p;
    float m = load_biased(s, logits);
    if (apply_penalties(s)) m = max_logit(s);

    if (p->temperature <= 0.0f || m == -INFINITY) return first_max(s, m);

    const float *l = s->logit;
    cand *c = s->cands;
    int n = 0, sorted = 0; /* c[0..sorted) are the first candidates, in order */
    if (p->top_k > 0 && p->top_k < s->n_vocab) {
        /* Top-k straight from the logits: a bounded heap in c[0..k), one comparison per
         * token with the heap's worst; banned (-inf) tokens never enter. */
        int k = p->top_k;
        for (int i = 0; i < s->n_vocab; i++) {
            if (l[i] == -INFINITY) continue;
            cand x = {l[i], 0.0f, i};
            if (n < k) {
                c[n++] = x;
                if (n == k)
                    for (int j = k / 2 - 1; j >= 0; j--) sift_down(c, k, j);
            } else if (before(x, c[0])) {
                c[0] = x;
                sift_down(c, k, 0);
            }
        }
        sort_range(c, 0, n - 1);
        sorted = n;
    } else if (p->top_p >= 1.0f && p->min_p <= 0.0f) {
        /* No filter at all: draw over the whole vocabulary in id order, no candidate list. */
        double inv_t = 1.0 / (double)p->temperature, total = 0;
        for (int i = 0; i < s->n_vocab; i++) {
            s->logit[i] = expf((float)(((double)l[i] - m) * inv_t));
            total += s->logit[i];
        }
        double u = rng_uniform(s->rng) * total, acc = 0;
        for (int i = 0; i < s->n_vocab; i++) {
            acc += s->logit[i];
            if (u < acc) return i;
        }
        return first_max(s, 1.0f); /* rounding left u past the end: the top token (w = 1) */
    } else {
        for (int i = 0; i < s->n_vocab; i++)
            if (l[i] > -INFINITY) c[n++] = (cand){l[i], 0.0f, i};
    }
    if (p->top_p < 1.0f && n > 1) {
        double z = 0;
        for (int i = 0; i < n; i++) z += (c[i].w = expf(c[i].logit - m));
        n = nucleus(c, sorted, n, (double)p->top_p * z);
        if (sorted > n) sorted = n;
    }
    if (p->min_p > 0.0f) {
        /* p_i >= min_p * p_max  <=>  logit_i >= max + log(min_p). A stable compaction keeps a
         * sorted prefix sorted (and the maximum itself always survives). */
        float thr = m + logf(p->min_p);
        int k = 0;
        for (int i = 0; i < n; i++)
            if (c[i].logit >= thr) c[k++] = c[i];
        n = k;
        if (sorted > n) sorted = n;
    }

    /* Temperature, then one draw over the candidates in their (deterministic) array order. */
    double inv_t = 1.0 / (double)p->temperature, total = 0;
    for (int i = 0; i < n; i++) {
        c[i].logit = (float)exp(((double)c[i].logit - m) * inv_t);
        total += c[i].logit;
    }
    double u = rng_uniform(s->rng) * total, acc = 0;
    for (int i = 0; i < n; i++) {
        acc += c[i].logit;
        if (u < acc) return c[i].id;
    }
    return c[n - 1].id; /* rounding left u at the very end */
}

/* ==== Logprobs ==== */

float lc_sampler_logprobs(lc_sampler *s, const float *logits, int32_t token, int n_top,
                          lc_token_logprob *top, int *n_written) {
    float m = load_biased(s, logits);
    if (n_top < 0) n_top = 0;
    if (n_top > s->n_vocab) n_top = s->n_vocab;
    double lse = -INFINITY;
    if (m > -INFINITY) {
        double z = 0;
        for (int i = 0; i < s->n_vocab; i++) z += exp((double)s->logit[i] - m);
        lse = m + log(z);
    }
    if (n_top > 0 && top) {
        cand *c = s->cands;
        for (int i = 0; i < s->n_vocab; i++) c[i] = (cand){s->logit[i], 0.0f, i};
        select_top(c, 0, s->n_vocab, n_top);
        for (int i = 0; i < n_top; i++) {
            top[i].token = c[i].id;
            top[i].logprob = m > -INFINITY ? (float)((double)c[i].logit - lse) : -INFINITY;
        }
    }
    if (n_written) *n_written = top ? n_top : 0;
    if (token < 0 || token >= s->n_vocab || m == -INFINITY) return -INFINITY;
    return (float)((double)s->logit[token] - lse);
}
