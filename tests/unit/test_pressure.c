/* test_pressure.c — the memory-pressure monitor (runtime/pressure.c): PSI and memory.events
 * parsing and levels, then the live monitor driven through injected files: a regular PSI file
 * rewritten (WARNING, then CRITICAL, unchanged content is no new reading), a memory.events file
 * (baseline, then high and oom_kill rises), a FIFO fed line by line, missing injected paths.
 */
#include "runtime/pressure.h"
#include "testutil.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

typedef struct counts {
    atomic_int warn, crit;
} counts;

static void on_level(void *ud, lc_pressure_level lvl, const char *why) {
    counts *c = ud;
    if (lvl == LC_PRESSURE_WARNING) atomic_fetch_add(&c->warn, 1);
    if (lvl == LC_PRESSURE_CRITICAL) atomic_fetch_add(&c->crit, 1);
}

static void write_file(const char *path, const char *text) {
    char tmp[300];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f) return;
    fputs(text, f);
    fclose(f);
    rename(tmp, path);
}

/* Waits up to 2 s for *v to reach want. */
static bool wait_for(atomic_int *v, int want) {
    for (int i = 0; i < 200; i++) {
        if (atomic_load(v) >= want) return true;
        nanosleep(&(struct timespec){0, 10 * 1000 * 1000}, NULL);
    }
    return false;
}

static void sleep_ms(int ms) { nanosleep(&(struct timespec){0, ms * 1000 * 1000L}, NULL); }

static void test_parsers(void) {
    const char *calm = "some avg10=0.00 avg60=0.00 avg300=0.00 total=0\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n";
    const char *warn = "some avg10=25.50 avg60=3.00 avg300=1.00 total=123\nfull avg10=1.00 avg60=0.00 avg300=0.00 total=5\n";
    const char *crit = "some avg10=60.00 avg60=3.00 avg300=1.00 total=123\nfull avg10=40.00 avg60=0.00 avg300=0.00 total=5\n";
    CHECK(lc_psi_level(calm, 10, 5) == LC_PRESSURE_NONE);
    CHECK(lc_psi_level(warn, 10, 5) == LC_PRESSURE_WARNING);
    CHECK(lc_psi_level(crit, 10, 5) == LC_PRESSURE_CRITICAL);
    CHECK(lc_psi_level("full avg10=9.0 total=1", 10, 5) == LC_PRESSURE_CRITICAL);
    CHECK(lc_psi_level("some avg10=9.9 total=1", 10, 5) == LC_PRESSURE_NONE);
    CHECK(lc_psi_level("something avg10=99", 10, 5) == LC_PRESSURE_NONE);
    CHECK(lc_psi_level("", 10, 5) == LC_PRESSURE_NONE);

    lc_memevents a = {0}, b = {0};
    CHECK(lc_memevents_parse("low 0\nhigh 2\nmax 0\noom 0\noom_kill 0\noom_group_kill 0\n", &a) == 4);
    CHECK(a.high == 2 && a.max == 0);
    b = a;
    CHECK(lc_memevents_level(&a, &b) == LC_PRESSURE_NONE);
    CHECK(lc_memevents_parse("high 3", &b) == 1 && b.high == 3);
    CHECK(lc_memevents_level(&a, &b) == LC_PRESSURE_WARNING);
    b.oom_kill = 1;
    CHECK(lc_memevents_level(&a, &b) == LC_PRESSURE_CRITICAL);
    b = a;
    b.max = 1;
    CHECK(lc_memevents_level(&a, &b) == LC_PRESSURE_CRITICAL);
    CHECK(lc_memevents_parse("garbage", &b) == 0);
}

static void test_files(void) {
    char dir[] = "/tmp/lc_pressure_XXXXXX";
    if (!mkdtemp(dir)) {
        CHECK(0);
        return;
    }
    char psi[256], ev[256];
    snprintf(psi, sizeof psi, "%s/memory", dir);
    snprintf(ev, sizeof ev, "%s/memory.events", dir);
    write_file(psi, "some avg10=50.00 avg60=0.00 avg300=0.00 total=0\n"); /* the baseline: not an event */
    write_file(ev, "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\n");
    counts c = {0};
    lc_pressure_params p = {.psi_path = psi, .events_path = ev, .interval_ms = 20, .fn = on_level, .ud = &c};
    lc_pressure *pm = NULL;
    size_t before = lc_mem_in_use();
    CHECKF(lc_pressure_start(&p, &pm) == LC_OK, "%s", lc_last_error());
    if (!pm) return;
    sleep_ms(80);
    CHECK(atomic_load(&c.warn) == 0 && atomic_load(&c.crit) == 0);
    write_file(psi, "some avg10=30.00 avg60=0.00 avg300=0.00 total=100\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n");
    CHECK(wait_for(&c.warn, 1));
    sleep_ms(80); /* unchanged content: no new reading */
    CHECK(atomic_load(&c.warn) == 1 && atomic_load(&c.crit) == 0);
    write_file(psi, "some avg10=90.00 avg60=0.00 avg300=0.00 total=900\nfull avg10=70.00 avg60=0.00 avg300=0.00 total=800\n");
    CHECK(wait_for(&c.crit, 1));
    write_file(ev, "low 0\nhigh 4\nmax 0\noom 0\noom_kill 0\n");
    CHECK(wait_for(&c.warn, 2));
    write_file(ev, "low 0\nhigh 4\nmax 0\noom 1\noom_kill 1\n");
    CHECK(wait_for(&c.crit, 2));
    write_file(psi, "some avg10=0.00 avg60=0.00 avg300=0.00 total=900\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=800\n");
    sleep_ms(80); /* calm again: a reading, but below both levels */
    CHECK(atomic_load(&c.warn) == 2 && atomic_load(&c.crit) == 2);
    lc_pressure_stop(pm);
    CHECK(lc_mem_in_use() == before);
    unlink(psi);
    unlink(ev);

    /* a FIFO: each line is a reading */
    if (mkfifo(psi, 0600) == 0) {
        counts f = {0};
        lc_pressure_params q = {.psi_path = psi, .events_path = "off", .interval_ms = 20, .fn = on_level, .ud = &f};
        CHECKF(lc_pressure_start(&q, &pm) == LC_OK, "%s", lc_last_error());
        FILE *w = fopen(psi, "w");
        CHECK(w != NULL);
        if (w && pm) {
            fputs("some avg10=20.00 avg60=0.00 avg300=0.00 total=1\n", w);
            fflush(w);
            CHECK(wait_for(&f.warn, 1));
            fputs("some avg10=20.00 avg60=0.00 avg300=0.00 total=2\nfull avg10=20.00 avg60=0.00 avg300=0.00 total=1\n", w);
            fflush(w);
            CHECK(wait_for(&f.crit, 1));
            CHECK(wait_for(&f.warn, 2));
            fclose(w); /* the writer leaves: no busy loop, no hang */
            sleep_ms(50);
        }
        lc_pressure_stop(pm);
        unlink(psi);
    }
    rmdir(dir);

    lc_pressure_params bad = {.psi_path = "/nonexistent/pressure", .events_path = "off", .fn = on_level, .ud = &c};
    CHECK(lc_pressure_start(&bad, &pm) == LC_ERR_IO && pm == NULL);
    CHECK(strstr(lc_last_error(), "/nonexistent/pressure") != NULL);
    /* the real sources: starts whether or not this machine has PSI and a cgroup */
    lc_pressure_params real = {.fn = on_level, .ud = &c};
    CHECKF(lc_pressure_start(&real, &pm) == LC_OK, "%s", lc_last_error());
    lc_pressure_stop(pm);
}

int main(void) {
    test_parsers();
    test_files();
    return test_done();
}
