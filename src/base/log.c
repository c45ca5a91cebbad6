/* log.c — leveled diagnostics on stderr (stdout belongs to command output).
 *
 * The level is process-wide (set from -v / LOCARA_LOG); messages are one line each.
 */
#include "base.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static lc_log_level log_level = LC_LOG_WARN;
static int log_level_read_env;

static void read_env_once(void) {
    if (log_level_read_env) return;
    log_level_read_env = 1;
    const char *e = getenv("LOCARA_LOG");
    if (!e) return;
    if (!strcmp(e, "error")) log_level = LC_LOG_ERROR;
    else if (!strcmp(e, "warn")) log_level = LC_LOG_WARN;
    else if (!strcmp(e, "info")) log_level = LC_LOG_INFO;
    else if (!strcmp(e, "debug")) log_level = LC_LOG_DEBUG;
}

void lc_log_set_level(lc_log_level lvl) {
    log_level_read_env = 1;
    log_level = lvl;
}

lc_log_level lc_log_get_level(void) {
    read_env_once();
    return log_level;
}

void lc_log(lc_log_level lvl, const char *fmt, ...) {
    read_env_once();
    if (lvl > log_level) return;
    static const char *const tags[] = {"error", "warn", "info", "debug"};
    char line[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    fprintf(stderr, "locara: %s: %s\n", tags[lvl], line);
}
