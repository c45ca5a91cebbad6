/* str.c — growable NUL-terminated byte strings (lc_str) on the counting allocator. */
#include "base.h"

#include <stdio.h>
#include <string.h>

bool lc_str_append(lc_str *s, const char *data, size_t n) {
    if (!lc_grow((void **)&s->buf, 1, &s->cap, s->len + n + 1)) return false;
    if (n) memcpy(s->buf + s->len, data, n);
    s->len += n;
    s->buf[s->len] = 0;
    return true;
}

bool lc_str_puts(lc_str *s, const char *z) { return lc_str_append(s, z, strlen(z)); }

bool lc_str_putc(lc_str *s, char c) { return lc_str_append(s, &c, 1); }

bool lc_str_printf(lc_str *s, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) return false;
    if (!lc_grow((void **)&s->buf, 1, &s->cap, s->len + (size_t)n + 1)) return false;
    va_start(ap, fmt);
    vsnprintf(s->buf + s->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    s->len += (size_t)n;
    return true;
}

void lc_str_clear(lc_str *s) {
    s->len = 0;
    if (s->buf) s->buf[0] = 0;
}

void lc_str_free(lc_str *s) {
    lc_free(s->buf);
    s->buf = NULL;
    s->len = s->cap = 0;
}

char *lc_str_take(lc_str *s) {
    if (!s->buf && !lc_str_append(s, "", 0)) return NULL;
    char *b = s->buf;
    s->buf = NULL;
    s->len = s->cap = 0;
    return b;
}
