/* args.c — the table-driven flag parser shared by every subcommand, plus small helpers
 * (default model path, KV type names). Every value is validated: numbers must parse whole and
 * fit their type; errors name the flag and exit with code 2.
 */
#include "cli.h"

#include "base/base.h"
#include "locara.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const cli_opt *find_opt(const cli_opt *opts, int n, const char *arg, const char **inline_val) {
    *inline_val = NULL;
    const char *eq = strchr(arg, '=');
    size_t len = eq && arg[1] == '-' ? (size_t)(eq - arg) : strlen(arg);
    for (int i = 0; i < n; i++) {
        if ((strlen(opts[i].name) == len && !strncmp(opts[i].name, arg, len)) ||
            (opts[i].alias && !strcmp(opts[i].alias, arg))) {
            if (eq && len != strlen(arg)) *inline_val = eq + 1;
            return &opts[i];
        }
    }
    return NULL;
}

static int set_value(const cli_opt *o, const char *v) {
    char *end;
    errno = 0;
    switch (o->kind) {
    case CLI_INT: {
        long x = strtol(v, &end, 10);
        if (*v == 0 || *end || errno || x < INT_MIN || x > INT_MAX) {
            fprintf(stderr, "locara: %s expects an integer, got '%s'\n", o->name, v);
            return 2;
        }
        *(int *)o->dst = (int)x;
        return 0;
    }
    case CLI_INT64: {
        long long x = strtoll(v, &end, 10);
        if (*v == 0 || *end || errno) {
            fprintf(stderr, "locara: %s expects an integer, got '%s'\n", o->name, v);
            return 2;
        }
        *(long long *)o->dst = x;
        return 0;
    }
    case CLI_FLOAT: {
        float x = strtof(v, &end);
        if (*v == 0 || *end || errno || !isfinite(x)) {
            fprintf(stderr, "locara: %s expects a number, got '%s'\n", o->name, v);
            return 2;
        }
        *(float *)o->dst = x;
        return 0;
    }
    case CLI_STR:
        *(const char **)o->dst = v;
        return 0;
    case CLI_BOOL:
        *(bool *)o->dst = true;
        return 0;
    }
    return 2;
}

void cli_print_opts(const cli_opt *opts, int n_opts) {
    for (int i = 0; i < n_opts; i++) {
        char left[64];
        snprintf(left, sizeof left, "%s%s%s", opts[i].alias ? opts[i].alias : "",
                 opts[i].alias ? ", " : "", opts[i].name);
        fprintf(stderr, "  %-24s %s\n", left, opts[i].help ? opts[i].help : "");
    }
}

int cli_parse(int argc, char **argv, const cli_opt *opts, int n_opts, const char **pos,
              int max_pos, int *n_pos, const char *usage) {
    *n_pos = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fprintf(stderr, "usage: %s\n", usage);
            cli_print_opts(opts, n_opts);
            return 1;
        }
        if (a[0] == '-' && a[1] != 0 && strcmp(a, "-") != 0) {
            const char *inl;
            const cli_opt *o = find_opt(opts, n_opts, a, &inl);
            if (!o) {
                fprintf(stderr, "locara: unknown option '%s' (see --help)\n", a);
                return 2;
            }
            if (o->kind == CLI_BOOL) {
                if (inl) {
                    fprintf(stderr, "locara: %s takes no value\n", o->name);
                    return 2;
                }
                *(bool *)o->dst = true;
                continue;
            }
            const char *v = inl;
            if (!v) {
                if (i + 1 >= argc) {
                    fprintf(stderr, "locara: %s needs a value\n", o->name);
                    return 2;
                }
                v = argv[++i];
            }
            int rc = set_value(o, v);
            if (rc) return rc;
            continue;
        }
        if (*n_pos >= max_pos) {
            fprintf(stderr, "locara: unexpected argument '%s' (see --help)\n", a);
            return 2;
        }
        pos[(*n_pos)++] = a;
    }
    return 0;
}

const char *cli_default_model(void) {
    static char buf[4096];
    const char *env = getenv("LOCARA_MODEL");
    if (env && *env) return env;
    lc_default_model_path(buf, sizeof buf);
    if (access(buf, R_OK) != 0) {
        fprintf(stderr, "locara: no model given and the default model is not provisioned at %s\n"
                        "        run scripts/fetch-model.sh (or `make model`), or pass -m FILE\n", buf);
        return NULL;
    }
    return buf;
}

int cli_kv_type(const char *name) {
    if (!strcmp(name, "f16")) return LC_KV_F16;
    if (!strcmp(name, "q8_0")) return LC_KV_Q8_0;
    if (!strcmp(name, "q4_0")) return LC_KV_Q4_0;
    fprintf(stderr, "locara: --kv-type must be f16, q8_0 or q4_0, got '%s'\n", name);
    return 0;
}
