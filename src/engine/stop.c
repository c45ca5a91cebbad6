/* stop.c — the streaming stop-string matcher behind stop.h.
 *
 * Owns: a small pending buffer (never longer than the longest stop string plus one fed piece
 * plus a partial UTF-8 sequence) searched for the earliest stop string on each feed.
 * Deliberately not here: tokens, tool-call markers. Entry points: lc_stop_create/feed/finish.
 */
#include "engine/stop.h"

#include <string.h>

struct lc_stop {
    char **stops;
    size_t *lens;
    int *orig; /* caller's index of each kept stop string (empty ones are skipped) */
    int n;
    size_t max_len;
    lc_str pend; /* fed but not yet released */
    int hit;     /* index of the stop string hit, or -1 */
    bool failed;
};

lc_status lc_stop_create(const char *const *stops, int n, lc_stop **out) {
    *out = NULL;
    if (n < 0 || (n > 0 && !stops)) return lc_fail(LC_ERR_INVALID, "stop: bad stop-string list");
    lc_stop *s = lc_calloc(1, sizeof *s);
    if (!s) return LC_ERR_OOM;
    s->hit = -1;
    if (n > 0) {
        s->stops = lc_calloc((size_t)n, sizeof *s->stops);
        s->lens = lc_calloc((size_t)n, sizeof *s->lens);
        s->orig = lc_calloc((size_t)n, sizeof *s->orig);
        if (!s->stops || !s->lens || !s->orig) goto oom;
    }
    for (int i = 0; i < n; i++) {
        if (!stops[i] || !stops[i][0]) continue; /* an empty stop would match everywhere */
        s->stops[s->n] = lc_strdup(stops[i]);
        if (!s->stops[s->n]) goto oom;
        s->lens[s->n] = strlen(stops[i]);
        s->orig[s->n] = i;
        if (s->lens[s->n] > s->max_len) s->max_len = s->lens[s->n];
        s->n++;
    }
    *out = s;
    return LC_OK;
oom:
    lc_stop_free(s);
    return lc_fail(LC_ERR_OOM, "stop: out of memory");
}

void lc_stop_free(lc_stop *s) {
    if (!s) return;
    for (int i = 0; i < s->n; i++) lc_free(s->stops[i]);
    lc_free(s->stops);
    lc_free(s->lens);
    lc_free(s->orig);
    lc_str_free(&s->pend);
    lc_free(s);
}

/* Length of the longest suffix of buf[0..len) that is a proper prefix of some stop string:
 * those bytes might still become a stop string, so they are held. */
static size_t partial_len(const lc_stop *s, const char *buf, size_t len) {
    size_t k = LC_MIN(len, s->max_len ? s->max_len - 1 : 0);
    for (; k > 0; k--) {
        for (int i = 0; i < s->n; i++)
            if (s->lens[i] > k && memcmp(buf + len - k, s->stops[i], k) == 0) return k;
    }
    return 0;
}

/* Bytes at the end of buf[0..len) that form an incomplete UTF-8 sequence (0 if complete or
 * invalid: invalid bytes are released as they are, the consumer decides what to do). */
static size_t utf8_tail(const char *buf, size_t len) {
    for (size_t back = 1; back <= 4 && back <= len; back++) {
        unsigned char c = (unsigned char)buf[len - back];
        if ((c & 0xC0) == 0x80) continue; /* continuation byte: keep looking for the lead */
        size_t need = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
        if (c >= 0xF8) need = 1;
        return need > back ? back : 0;
    }
    return 0;
}

/* Releases pend[0..n) to out and drops it from pend. */
static void release(lc_stop *s, size_t n, lc_str *out) {
    if (n && !lc_str_append(out, s->pend.buf, n)) s->failed = true;
    memmove(s->pend.buf, s->pend.buf + n, s->pend.len - n);
    s->pend.len -= n;
    s->pend.buf[s->pend.len] = 0;
}

bool lc_stop_feed(lc_stop *s, const char *text, size_t len, lc_str *out) {
    if (s->hit >= 0) return true;
    if (!lc_str_append(&s->pend, text, len)) {
        s->failed = true;
        return false;
    }
    /* The earliest stop string wins; among stops starting at the same byte any one gives the
     * same released text. */
    size_t best = SIZE_MAX;
    int which = -1;
    for (int i = 0; i < s->n; i++) {
        const char *m = memmem(s->pend.buf, s->pend.len, s->stops[i], s->lens[i]);
        if (m && (size_t)(m - s->pend.buf) < best) {
            best = (size_t)(m - s->pend.buf);
            which = i;
        }
    }
    if (which >= 0) {
        release(s, best, out);
        s->hit = s->orig[which];
        lc_str_clear(&s->pend);
        return true;
    }
    size_t keep = partial_len(s, s->pend.buf, s->pend.len);
    size_t rel = s->pend.len - keep;
    rel -= utf8_tail(s->pend.buf, rel);
    release(s, rel, out);
    return false;
}

void lc_stop_finish(lc_stop *s, lc_str *out) {
    if (s->hit < 0 && s->pend.len) release(s, s->pend.len, out);
}

int lc_stop_hit(const lc_stop *s) { return s->hit; }

bool lc_stop_failed(const lc_stop *s) { return s->failed; }

void lc_stop_reset(lc_stop *s) {
    lc_str_clear(&s->pend);
    s->hit = -1;
    s->failed = false;
}
