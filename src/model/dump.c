/* dump.c — the LOCARA_DUMP debug writer (see dump.h for the record format).
 *
 * Owns the file handle and a host staging buffer for one context; does not decide what is
 * dumped (blocks.c calls lc_dump_tensor at its op boundaries).
 */
#include "model/dump.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct lc_dump {
    FILE *f;
    float *buf;
    size_t cap; /* floats in buf */
};

lc_dump *lc_dump_begin(void) {
    const char *path = getenv("LOCARA_DUMP");
    if (!path || !*path) return NULL;
    lc_dump *d = lc_malloc(sizeof *d);
    if (!d) return NULL;
    memset(d, 0, sizeof *d);
    d->f = fopen(path, "ab");
    if (!d->f) {
        lc_log(LC_LOG_WARN, "LOCARA_DUMP: cannot open %s", path);
        lc_free(d);
        return NULL;
    }
    return d;
}

/* Stages x on the host (the backend may hold it on a device) and appends one record. Write
 * errors are ignored: this is a debugging aid and must never fail a forward. */
void lc_dump_tensor(lc_dump *d, lc_backend *be, const char *name, int il, const float *x, int rows, int cols) {
    if (!d || rows <= 0 || cols <= 0) return;
    size_t n = (size_t)rows * (size_t)cols;
    if (!lc_grow((void **)&d->buf, sizeof(float), &d->cap, n)) return;
    be->ops->to_host(be, d->buf, x, n);
    char full[96];
    if (il >= 0) snprintf(full, sizeof full, "%s-%d", name, il);
    else snprintf(full, sizeof full, "%s", name);
    uint32_t len = (uint32_t)strlen(full);
    int32_t shape[2] = {rows, cols};
    fwrite(&len, 4, 1, d->f);
    fwrite(full, 1, len, d->f);
    fwrite(shape, 4, 2, d->f);
    fwrite(d->buf, sizeof(float), n, d->f);
}

void lc_dump_end(lc_dump *d) {
    if (!d) return;
    fclose(d->f);
    lc_free(d->buf);
    lc_free(d);
}
