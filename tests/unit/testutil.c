/* testutil.c — counters and helpers behind testutil.h. */
#include "testutil.h"

#include "base/base.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int test_passed, test_failed;

int test_done(void) {
    printf("%d passed, %d failed\n", test_passed, test_failed);
    return test_failed ? 1 : 0;
}

int test_skip(const char *why) {
    printf("SKIP: %s\n", why);
    return 77;
}

const char *test_shared_path(const char *rel) {
    static char buf[4096];
    const char *dir = getenv("LC_SHARED_DIR");
    if (!dir) dir = "../shared";
    snprintf(buf, sizeof buf, "%s/%s", dir, rel);
    if (access(buf, R_OK) != 0) {
        fprintf(stderr, "shared reference data missing: %s (LC_SHARED_DIR=%s)\n", buf, dir);
        return NULL;
    }
    return buf;
}

const char *test_default_model(void) {
    static char buf[4096];
    const char *m = getenv("LOCARA_MODEL");
    if (m && access(m, R_OK) == 0) return m;
    lc_default_model_path(buf, sizeof buf);
    if (access(buf, R_OK) == 0) return buf;
    fprintf(stderr, "default model not provisioned (%s); run scripts/fetch-model.sh\n", buf);
    return NULL;
}
