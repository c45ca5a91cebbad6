/* cli.h — the subcommands of the `locara` program and the flag-table parser they share.
 *
 * Each subcommand lives in its own file (run.c, info.c, ...) and is one row of the table in
 * main.c. Flags are declared as tables of cli_opt and parsed by cli_parse, which validates
 * every value and names the flag in its error message.
 */
#ifndef LC_CLI_H
#define LC_CLI_H

#include <stdbool.h>

typedef enum cli_kind {
    CLI_INT,    /* int, dst is int* */
    CLI_INT64,  /* long long, dst is long long* */
    CLI_FLOAT,  /* dst is float* */
    CLI_STR,    /* dst is const char** (points into argv) */
    CLI_BOOL,   /* presence sets *(bool*)dst = true; takes no value */
} cli_kind;

typedef struct cli_opt {
    const char *name;  /* "--ctx" */
    const char *alias; /* "-c" or NULL */
    cli_kind kind;
    void *dst;
    const char *help;
} cli_opt;

/* Parses argv[0..argc) against opts. Non-flag arguments are stored in pos (at most max_pos)
 * and counted in *n_pos. Returns 0 on success; on error prints one line to stderr naming the
 * flag and returns 2 (the exit code for usage errors). "--help" prints usage and returns 1. */
int cli_parse(int argc, char **argv, const cli_opt *opts, int n_opts, const char **pos,
              int max_pos, int *n_pos, const char *usage);

/* Prints the option table (for --help). */
void cli_print_opts(const cli_opt *opts, int n_opts);

/* The default model's path in the XDG cache, or NULL (with a message) if not provisioned. */
const char *cli_default_model(void);

/* Parses "f16", "q8_0", "q4_0"; returns 0 (and an error line) on a bad name. */
int cli_kv_type(const char *name);

int cmd_run(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_template(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_fit(int argc, char **argv);
int cmd_ps(int argc, char **argv);
int cmd_bench_http(int argc, char **argv);
int cmd_quantize(int argc, char **argv);

#endif
