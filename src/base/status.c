/* status.c — the thread-local last-error message behind lc_fail and lc_last_error.
 *
 * One fixed buffer per thread; no allocation, so reporting an out-of-memory error cannot fail.
 */
#include "base.h"

#include <stdio.h>
#include <string.h>

static _Thread_local char last_error[1024];

const char *lc_last_error(void) { return last_error; }

void lc_clear_error(void) { last_error[0] = 0; }

lc_status lc_fail(lc_status st, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    return st;
}

lc_status lc_fail_wrap(lc_status st, const char *fmt, ...) {
    char prefix[512], old[sizeof last_error];
    memcpy(old, last_error, sizeof old);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    size_t np = strlen(prefix), no = strlen(old);
    if (np > sizeof last_error - 1) np = sizeof last_error - 1;
    if (no > sizeof last_error - 1 - np) no = sizeof last_error - 1 - np;
    memcpy(last_error, prefix, np);
    memcpy(last_error + np, old, no);
    last_error[np + no] = 0;
    return st;
}

const char *lc_status_name(lc_status st) {
    static const char *const names[] = {
        [LC_OK] = "ok",
        [LC_ERR_IO] = "i/o error",
        [LC_ERR_FORMAT] = "format error",
        [LC_ERR_OOM] = "out of memory",
        [LC_ERR_DEVICE] = "device error",
        [LC_ERR_UNSUPPORTED] = "unsupported",
        [LC_ERR_INVALID] = "invalid argument",
        [LC_ERR_RANGE] = "out of range",
        [LC_ERR_CANCELLED] = "cancelled",
    };
    if ((unsigned)st < LC_ARRAY_LEN(names) && names[st]) return names[st];
    return "unknown error";
}
