/* pressure.h — memory-pressure signals from Linux: PSI (/proc/pressure/memory) and the cgroup v2
 * memory.events counters, turned into two levels for the model manager.
 *
 * Trigger semantics (documented in `locara serve --help` too):
 *  - PSI text ("some avg10=A ...", "full avg10=B ..."): WARNING when some avg10 >= warn_some
 *    (default 10 %), CRITICAL when full avg10 >= crit_full (default 5 %). On the real
 *    /proc/pressure/memory the monitor also registers kernel triggers (poll POLLPRI): a "some"
 *    trigger wake-up is WARNING, a "full" one CRITICAL.
 *  - memory.events ("high N", "max N", "oom N", "oom_kill N"): the first reading is the
 *    baseline; later, a rise of high is WARNING, a rise of max, oom or oom_kill is CRITICAL.
 *  - A regular file is re-read every interval and judged when its content changed; a FIFO is
 *    read as it arrives, each line a reading (PSI lines judged alone, memory.events lines update
 *    the counters). Every reading at or above a level calls the callback once.
 * Entry points: lc_pressure_start, lc_pressure_stop, and the pure parsers for tests.
 */
#ifndef LC_RUNTIME_PRESSURE_H
#define LC_RUNTIME_PRESSURE_H

#include "base/base.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum lc_pressure_level {
    LC_PRESSURE_NONE = 0,
    LC_PRESSURE_WARNING,  /* reclaim is stalling some tasks: drop caches */
    LC_PRESSURE_CRITICAL, /* all tasks stall or the cgroup hit its limit: unload what is idle */
} lc_pressure_level;

typedef void (*lc_pressure_fn)(void *ud, lc_pressure_level level, const char *why);

typedef struct lc_pressure_params {
    const char *psi_path;    /* NULL: /proc/pressure/memory; "off": none */
    const char *events_path; /* NULL: this process's cgroup memory.events; "off": none */
    double warn_some;        /* PSI some avg10 threshold, percent (0: 10) */
    double crit_full;        /* PSI full avg10 threshold, percent (0: 5) */
    int interval_ms;         /* re-read period for regular files (0: 1000) */
    lc_pressure_fn fn;       /* called on the monitor thread */
    void *ud;
} lc_pressure_params;

typedef struct lc_pressure lc_pressure;

/* Starts the monitor thread. Sources that do not exist are skipped with a debug log (a machine
 * without PSI still serves); an injected path that cannot be opened is an error. */
lc_status lc_pressure_start(const lc_pressure_params *p, lc_pressure **out);
void lc_pressure_stop(lc_pressure *pm);

/* The level one PSI text implies (any number of "some"/"full" lines). */
lc_pressure_level lc_psi_level(const char *text, double warn_some, double crit_full);

typedef struct lc_memevents {
    long long high, max, oom, oom_kill;
} lc_memevents;

/* Updates ev with the counters named in text ("high 3\nmax 0\n..."); returns how many it read. */
int lc_memevents_parse(const char *text, lc_memevents *ev);
/* The level implied by the counters moving from prev to now. */
lc_pressure_level lc_memevents_level(const lc_memevents *prev, const lc_memevents *now);

#ifdef __cplusplus
}
#endif

#endif
