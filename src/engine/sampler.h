/* sampler.h — turning a row of logits into the next token, and logprobs for the API.
 *
 * Owns: logit bias, repetition/presence/frequency penalties over accepted history, top-k, top-p,
 * min-p, temperature and a seeded draw; log-softmax of the chosen token with top alternatives.
 * Deliberately not here: grammars/constrained output, speculative decoding, stop strings
 * (engine/stop.h). Entry points: lc_sampler_create, lc_sampler_sample, lc_sampler_accept,
 * lc_sampler_logprobs, lc_sampler_free.
 */
#ifndef LC_ENGINE_SAMPLER_H
#define LC_ENGINE_SAMPLER_H

#include "base/base.h"

/* One logit_bias entry (OpenAI's "logit_bias": {"token id": bias}); -INFINITY bans a token. */
typedef struct lc_logit_bias {
    int32_t token;
    float bias;
} lc_logit_bias;

typedef struct lc_sampler_params {
    float temperature;       /* 0 (or less) = greedy argmax, ties to the lowest id */
    int top_k;               /* keep the k most likely tokens; 0 or >= n_vocab = off */
    float top_p;             /* nucleus: smallest prefix whose probability >= top_p; 1 = off */
    float min_p;             /* drop tokens with p < min_p * p_max; 0 = off */
    float repeat_penalty;    /* llama.cpp style: divide positive, multiply negative logits; 1 = off */
    int repeat_last_n;       /* window of accepted tokens the penalties look at; 0 = off, -1 = all */
    float presence_penalty;  /* OpenAI: logit -= presence if the token occurred in the window */
    float frequency_penalty; /* OpenAI: logit -= frequency * count in the window */
    uint64_t seed;           /* same seed + same logits + same history -> same tokens */
    int n_logit_bias;
    const lc_logit_bias *logit_bias; /* copied by lc_sampler_create */
} lc_sampler_params;

/* llama.cpp-like defaults: temperature 0.8, top_k 40, top_p 0.95, min_p 0.05, penalties off
 * (repeat_penalty 1, presence 0, frequency 0), repeat_last_n 64, seed 0, no bias. */
lc_sampler_params lc_sampler_params_default(void);

typedef struct lc_sampler lc_sampler;

/* Makes a sampler for a vocabulary of n_vocab tokens. All scratch memory is allocated here, once;
 * sampling allocates nothing. Returns LC_ERR_INVALID for bad parameters (n_vocab <= 0, a bias
 * token out of range, top_p outside (0, 1], negative min_p/top_k) or LC_ERR_OOM. */
lc_status lc_sampler_create(const lc_sampler_params *p, int n_vocab, lc_sampler **out);
/* Bytes a sampler over n_vocab tokens holds (its per-token arrays; fit's memory math). */
size_t lc_sampler_bytes(int n_vocab);
void lc_sampler_free(lc_sampler *s);

/* Picks the next token from logits[n_vocab] (not modified). Order: logit bias, penalties over
 * the accepted window, then (if temperature > 0) top-k, top-p and min-p on the softmax at
 * temperature 1, then temperature, then a draw from the sampler's own RNG. The result depends
 * only on the seed, the logits and the history (not on threads or call timing). It does not
 * accept the token: call lc_sampler_accept with whatever token is finally used. NaN logits are
 * treated as -inf; if every logit is -inf the lowest id is returned. Cost O(n_vocab): top-k by a
 * bounded heap, top-p by a weighted quickselect (no full sort, whatever the nucleus size). */
int32_t lc_sampler_sample(lc_sampler *s, const float *logits);

/* Adds a token to the penalty history (generated tokens; prompt tokens too if the caller wants
 * the prompt penalised, as llama.cpp does). Out-of-range ids are ignored. */
void lc_sampler_accept(lc_sampler *s, int32_t token);

/* Clears the history and reseeds the RNG with seed (for reuse on a new request). */
void lc_sampler_reset(lc_sampler *s, uint64_t seed);

/* One (token, log-probability) pair for logprobs / top_logprobs. */
typedef struct lc_token_logprob {
    int32_t token;
    float logprob;
} lc_token_logprob;

/* Log-softmax over logits[n_vocab] after the logit bias only (no penalties, filters or
 * temperature: what OpenAI reports). Returns the chosen token's log-probability and writes the
 * n_top most likely tokens, most likely first (ties: lower id first), to top[0..n_top); n_top
 * is clamped to [0, n_vocab] and the number written is returned in *n_written (may be NULL). */
float lc_sampler_logprobs(lc_sampler *s, const float *logits, int32_t token, int n_top,
                          lc_token_logprob *top, int *n_written);

#endif /* LC_ENGINE_SAMPLER_H */
