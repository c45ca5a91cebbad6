/* file.c — read-only file mappings and whole-file reads, plus the monotonic clock.
 *
 * Mappings are private and read-only: model weights stay clean, file-backed pages the kernel
 * may evict and re-read, never counted as anonymous memory.
 */
#include "base.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

lc_status lc_map_open(const char *path, lc_map *out) {
    memset(out, 0, sizeof *out);
    out->fd = -1;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return lc_fail(LC_ERR_IO, "cannot open %s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        close(fd);
        return lc_fail(LC_ERR_IO, "cannot stat %s: %s", path, strerror(errno));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return lc_fail(LC_ERR_IO, "%s is not a regular file", path);
    }
    out->size = (size_t)st.st_size;
    out->fd = fd;
    if (out->size == 0) return LC_OK; /* nothing to map; readers see an empty file */
    void *p = mmap(NULL, out->size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
        close(fd);
        out->fd = -1;
        return lc_fail(LC_ERR_IO, "cannot map %s: %s", path, strerror(errno));
    }
    out->data = p;
    return LC_OK;
}

void lc_map_close(lc_map *m) {
    if (m->data) munmap((void *)m->data, m->size);
    if (m->fd >= 0) close(m->fd);
    m->data = NULL;
    m->size = 0;
    m->fd = -1;
}

lc_status lc_read_file(const char *path, char **out, size_t *len) {
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return lc_fail(LC_ERR_IO, "cannot open %s: %s", path, strerror(errno));
    lc_str s = {0};
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) {
        if (!lc_str_append(&s, buf, n)) {
            fclose(f);
            lc_str_free(&s);
            return LC_ERR_OOM;
        }
    }
    int err = ferror(f);
    fclose(f);
    if (err) {
        lc_str_free(&s);
        return lc_fail(LC_ERR_IO, "cannot read %s", path);
    }
    if (len) *len = s.len;
    *out = lc_str_take(&s);
    return *out ? LC_OK : LC_ERR_OOM;
}

void lc_xdg_path(const char *env, const char *home_rel, const char *rel, char *buf, size_t cap) {
    const char *xdg = getenv(env);
    const char *home = getenv("HOME");
    if (xdg && *xdg) snprintf(buf, cap, "%s/%s", xdg, rel);
    else snprintf(buf, cap, "%s/%s/%s", home ? home : ".", home_rel, rel);
}

void lc_default_model_path(char *buf, size_t cap) {
    lc_xdg_path("XDG_CACHE_HOME", ".cache", "locara/models/SmolLM2-135M-Instruct-Q4_1.gguf", buf, cap);
}

double lc_time_sec(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int64_t lc_time_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}
