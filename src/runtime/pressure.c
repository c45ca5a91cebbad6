/* pressure.c — the memory-pressure monitor: one thread that polls PSI triggers and FIFOs, re-reads
 * regular files (the PSI file, memory.events) every interval, and calls back with WARNING or
 * CRITICAL (semantics in pressure.h). It knows nothing about models: the manager decides what a
 * level means. Entry points: lc_pressure_start, lc_pressure_stop, lc_psi_level,
 * lc_memevents_parse, lc_memevents_level.
 */
#include "runtime/pressure.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ==== Parsers ==== */

/* The avg10 value of a PSI line that starts with kind ("some" or "full"), or -1. */
static double psi_avg10(const char *line, const char *kind) {
    size_t n = strlen(kind);
    if (strncmp(line, kind, n) || (line[n] != ' ' && line[n] != '\t')) return -1;
    const char *p = strstr(line, "avg10=");
    if (!p) return -1;
    char *end;
    double v = strtod(p + 6, &end);
    return end == p + 6 ? -1 : v;
}

lc_pressure_level lc_psi_level(const char *text, double warn_some, double crit_full) {
    lc_pressure_level lvl = LC_PRESSURE_NONE;
    for (const char *line = text; line && *line;) {
        while (*line == ' ' || *line == '\t') line++;
        if (psi_avg10(line, "full") >= crit_full) lvl = LC_PRESSURE_CRITICAL;
        else if (lvl == LC_PRESSURE_NONE && psi_avg10(line, "some") >= warn_some) lvl = LC_PRESSURE_WARNING;
        line = strchr(line, '\n');
        if (line) line++;
    }
    return lvl;
}

int lc_memevents_parse(const char *text, lc_memevents *ev) {
    int n = 0;
    for (const char *line = text; line && *line;) {
        char key[32];
        long long v;
        if (sscanf(line, "%31s %lld", key, &v) == 2) {
            if (!strcmp(key, "high")) ev->high = v, n++;
            else if (!strcmp(key, "max")) ev->max = v, n++;
            else if (!strcmp(key, "oom")) ev->oom = v, n++;
            else if (!strcmp(key, "oom_kill")) ev->oom_kill = v, n++;
        }
        line = strchr(line, '\n');
        if (line) line++;
    }
    return n;
}

lc_pressure_level lc_memevents_level(const lc_memevents *prev, const lc_memevents *now) {
    if (now->max > prev->max || now->oom > prev->oom || now->oom_kill > prev->oom_kill) return LC_PRESSURE_CRITICAL;
    if (now->high > prev->high) return LC_PRESSURE_WARNING;
    return LC_PRESSURE_NONE;
}

/* ==== Sources ==== */

typedef struct source {
    const char *name; /* "PSI" or "memory.events" */
    bool events;      /* memory.events counters (else PSI text) */
    char *path;       /* NULL: not monitored */
    bool fifo;
    int fd;           /* FIFO only */
    lc_str partial;   /* FIFO: an incomplete line */
    char *last;       /* regular file: the content last judged */
    bool have_base;
    lc_memevents ev;
} source;

struct lc_pressure {
    lc_pressure_params p;
    source src[2];
    int trig[2];      /* PSI kernel triggers: some, full (-1: none) */
    int stop_fd[2];
    pthread_t thread;
    bool started;
};

static void fire(lc_pressure *pm, lc_pressure_level lvl, const char *fmt, const char *detail) {
    if (lvl == LC_PRESSURE_NONE) return;
    char why[256];
    snprintf(why, sizeof why, fmt, detail);
    lc_log(LC_LOG_INFO, "memory pressure %s: %s", lvl == LC_PRESSURE_CRITICAL ? "critical" : "warning", why);
    pm->p.fn(pm->p.ud, lvl, why);
}

/* Judges one reading (a FIFO line or a changed file) of source s. */
static void judge(lc_pressure *pm, source *s, const char *text) {
    if (!s->events) {
        lc_pressure_level lvl = lc_psi_level(text, pm->p.warn_some, pm->p.crit_full);
        fire(pm, lvl, "PSI %.200s", text);
        return;
    }
    lc_memevents now = s->ev;
    if (!lc_memevents_parse(text, &now)) return;
    lc_memevents prev = s->ev;
    s->ev = now;
    if (!s->have_base) {
        s->have_base = true;
        return;
    }
    fire(pm, lc_memevents_level(&prev, &now), "memory.events %.200s", text);
}

/* Reads what a FIFO has and judges every complete line. */
static void read_fifo(lc_pressure *pm, source *s) {
    char buf[4096];
    for (;;) {
        ssize_t n = read(s->fd, buf, sizeof buf);
        if (n <= 0) break;
        lc_str_append(&s->partial, buf, (size_t)n);
    }
    char *start = s->partial.buf;
    char *nl;
    while (start && (nl = strchr(start, '\n'))) {
        *nl = 0;
        if (*start) judge(pm, s, start);
        start = nl + 1;
    }
    if (start && start != s->partial.buf) {
        size_t rest = s->partial.len - (size_t)(start - s->partial.buf);
        memmove(s->partial.buf, start, rest + 1);
        s->partial.len = rest;
    }
}

/* Re-reads a regular file and judges it when its content changed. */
static void read_file(lc_pressure *pm, source *s) {
    char *text = NULL;
    size_t len = 0;
    if (lc_read_file(s->path, &text, &len)) {
        lc_clear_error();
        return;
    }
    if (s->last && !strcmp(s->last, text)) {
        lc_free(text);
        return;
    }
    lc_free(s->last);
    s->last = text;
    judge(pm, s, text);
}

/* Opens source s at path; a missing default path is skipped, a missing injected one fails. */
static lc_status source_open(source *s, const char *path, bool injected) {
    s->fd = -1;
    struct stat stt;
    if (stat(path, &stt)) {
        if (injected) return lc_fail(LC_ERR_IO, "%s file %s: %s", s->name, path, strerror(errno));
        lc_log(LC_LOG_DEBUG, "no %s at %s: not monitored", s->name, path);
        return LC_OK;
    }
    s->fifo = S_ISFIFO(stt.st_mode);
    if (s->fifo) { /* O_RDWR keeps a writer open, so a closing test writer is no hang-up */
        s->fd = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
        if (s->fd < 0) return lc_fail(LC_ERR_IO, "%s FIFO %s: %s", s->name, path, strerror(errno));
    }
    s->path = lc_strdup(path);
    return s->path ? LC_OK : LC_ERR_OOM;
}

/* This process's cgroup v2 memory.events path, or "" when it has none. */
static void default_events_path(char *out, size_t cap) {
    out[0] = 0;
    char *text = NULL;
    size_t len;
    if (lc_read_file("/proc/self/cgroup", &text, &len)) {
        lc_clear_error();
        return;
    }
    for (char *line = text; line && *line;) {
        char *nl = strchr(line, '\n');
        if (nl) *nl = 0;
        if (!strncmp(line, "0::", 3)) snprintf(out, cap, "/sys/fs/cgroup%s/memory.events", strcmp(line + 3, "/") ? line + 3 : "");
        line = nl ? nl + 1 : NULL;
    }
    lc_free(text);
}

/* Registers a PSI trigger ("some 200000 2000000": 200 ms of stall in a 2 s window; windows are
 * multiples of 2 s so unprivileged processes may register). -1 when the kernel refuses. */
static int psi_trigger(const char *path, const char *spec) {
    int fd = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return -1;
    if (write(fd, spec, strlen(spec) + 1) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* ==== The thread ==== */

static void *monitor_main(void *arg) {
    lc_pressure *pm = arg;
    int64_t next_read = 0;
    for (;;) {
        struct pollfd fds[5];
        int who[5], n = 0;
        fds[n] = (struct pollfd){.fd = pm->stop_fd[0], .events = POLLIN};
        who[n++] = -1;
        for (int i = 0; i < 2; i++) {
            if (pm->src[i].fifo) {
                fds[n] = (struct pollfd){.fd = pm->src[i].fd, .events = POLLIN};
                who[n++] = i;
            }
            if (pm->trig[i] >= 0) {
                fds[n] = (struct pollfd){.fd = pm->trig[i], .events = POLLPRI};
                who[n++] = 2 + i;
            }
        }
        int64_t now = lc_time_us();
        int wait = next_read > now ? (int)((next_read - now) / 1000) + 1 : 0;
        int r = poll(fds, (nfds_t)n, wait);
        if (r > 0 && fds[0].revents) break;
        for (int k = 1; r > 0 && k < n; k++) {
            if (!fds[k].revents) continue;
            if (who[k] < 2) {
                read_fifo(pm, &pm->src[who[k]]);
            } else if (fds[k].revents & POLLERR) { /* the trigger is gone */
                close(pm->trig[who[k] - 2]);
                pm->trig[who[k] - 2] = -1;
            } else {
                fire(pm, who[k] == 2 ? LC_PRESSURE_WARNING : LC_PRESSURE_CRITICAL, "PSI trigger: %s",
                     who[k] == 2 ? "some tasks stalled 200 ms in 2 s" : "all tasks stalled 100 ms in 2 s");
            }
        }
        if (lc_time_us() >= next_read) {
            for (int i = 0; i < 2; i++)
                if (pm->src[i].path && !pm->src[i].fifo) read_file(pm, &pm->src[i]);
            next_read = lc_time_us() + (int64_t)pm->p.interval_ms * 1000;
        }
    }
    return NULL;
}

/* ==== Life cycle ==== */

lc_status lc_pressure_start(const lc_pressure_params *p, lc_pressure **out) {
    *out = NULL;
    lc_pressure *pm = lc_calloc(1, sizeof *pm);
    if (!pm) return LC_ERR_OOM;
    pm->p = *p;
    if (pm->p.warn_some <= 0) pm->p.warn_some = 10;
    if (pm->p.crit_full <= 0) pm->p.crit_full = 5;
    if (pm->p.interval_ms <= 0) pm->p.interval_ms = 1000;
    pm->trig[0] = pm->trig[1] = -1;
    pm->stop_fd[0] = pm->stop_fd[1] = -1;
    pm->src[0] = (source){.name = "PSI", .fd = -1};
    pm->src[1] = (source){.name = "memory.events", .events = true, .fd = -1};
    lc_status st = LC_OK;
    if (!p->psi_path) {
        const char *real = "/proc/pressure/memory";
        if ((st = source_open(&pm->src[0], real, false))) goto fail;
        if (pm->src[0].path) {
            pm->trig[0] = psi_trigger(real, "some 200000 2000000");
            pm->trig[1] = psi_trigger(real, "full 100000 2000000");
        }
    } else if (strcmp(p->psi_path, "off") && (st = source_open(&pm->src[0], p->psi_path, true))) {
        goto fail;
    }
    if (!p->events_path) {
        char path[512];
        default_events_path(path, sizeof path);
        if (path[0] && (st = source_open(&pm->src[1], path, false))) goto fail;
    } else if (strcmp(p->events_path, "off") && (st = source_open(&pm->src[1], p->events_path, true))) {
        goto fail;
    }
    /* the first reading of each regular file is the baseline, taken before start returns */
    for (int i = 0; i < 2; i++) {
        source *s = &pm->src[i];
        if (s->path && !s->fifo && !lc_read_file(s->path, &s->last, &(size_t){0})) {
            if (s->events) s->have_base = lc_memevents_parse(s->last, &s->ev) > 0;
        }
        lc_clear_error();
    }
    if (pipe(pm->stop_fd)) {
        st = lc_fail(LC_ERR_IO, "pressure monitor: cannot make a pipe");
        goto fail;
    }
    if (pthread_create(&pm->thread, NULL, monitor_main, pm)) {
        st = lc_fail(LC_ERR_OOM, "cannot start the pressure monitor thread");
        goto fail;
    }
    pm->started = true;
    *out = pm;
    return LC_OK;
fail:
    lc_pressure_stop(pm);
    return st;
}

void lc_pressure_stop(lc_pressure *pm) {
    if (!pm) return;
    if (pm->started) {
        ssize_t w = write(pm->stop_fd[1], "x", 1);
        (void)w;
        pthread_join(pm->thread, NULL);
    }
    for (int i = 0; i < 2; i++) {
        if (pm->src[i].fd >= 0) close(pm->src[i].fd);
        if (pm->trig[i] >= 0) close(pm->trig[i]);
        if (pm->stop_fd[i] >= 0) close(pm->stop_fd[i]);
        lc_free(pm->src[i].path);
        lc_free(pm->src[i].last);
        lc_str_free(&pm->src[i].partial);
    }
    lc_free(pm);
}
