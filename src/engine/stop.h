/* stop.h — a streaming stop-string matcher for generated text.
 *
 * Owns: holding back text that might be the start of a stop string, reporting the first stop
 * string hit, and keeping released chunks whole UTF-8. Deliberately not here: token-level stops
 * (EOG ids are the engine's business) and tool/reasoning parsing (text/outparse.h).
 * Entry points: lc_stop_create, lc_stop_feed, lc_stop_finish, lc_stop_free.
 */
#ifndef LC_ENGINE_STOP_H
#define LC_ENGINE_STOP_H

#include "base/base.h"

typedef struct lc_stop lc_stop;

/* Makes a matcher for n stop strings (copied; empty strings are ignored; n may be 0, which
 * still gives a useful UTF-8 chunker). Returns LC_ERR_OOM or LC_ERR_INVALID (stops NULL with
 * n > 0). Free with lc_stop_free. */
lc_status lc_stop_create(const char *const *stops, int n, lc_stop **out);
void lc_stop_free(lc_stop *s);

/* Feeds the next piece of generated text (any split: a token's piece, a byte, a whole reply).
 * Appends to out the text that can now be released: every byte that can no longer be part of a
 * stop string and that does not end in the middle of a UTF-8 sequence. Returns true when a stop
 * string has been hit: out then ends with the text just before the earliest stop string, the
 * stop string and everything after it are dropped, and later feeds release nothing (the caller
 * should stop generating). Returns false otherwise, or with LC_ERR_OOM set if appending failed
 * (check lc_stop_failed). The concatenation of everything released is the same whatever the
 * split of the input. */
bool lc_stop_feed(lc_stop *s, const char *text, size_t len, lc_str *out);

/* End of stream (EOG token, length limit): appends the held-back text, if no stop was hit. */
void lc_stop_finish(lc_stop *s, lc_str *out);

/* Index (into the array given to lc_stop_create) of the stop string that was hit, or -1. */
int lc_stop_hit(const lc_stop *s);

/* True if an allocation failed during a feed (the output is then incomplete). */
bool lc_stop_failed(const lc_stop *s);

/* Forgets the held text and the hit, for reuse on a new generation with the same stops. */
void lc_stop_reset(lc_stop *s);

#endif /* LC_ENGINE_STOP_H */
