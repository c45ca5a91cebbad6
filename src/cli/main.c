/* main.c — the `locara` program: dispatches to one subcommand per file through one table.
 *
 * Exit codes: 0 success, 1 runtime failure (message on stderr), 2 usage error.
 */
#include "cli.h"

#include "locara.h"

#include <stdio.h>
#include <string.h>

typedef struct command {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *summary;
} command;

static const command commands[] = {
    {"run", cmd_run, "generate text from a prompt"},
    {"serve", cmd_serve, "serve the OpenAI API over HTTP (chat, completions, streaming, tools)"},
    {"info", cmd_info, "print a GGUF file's metadata and tensors"},
    {"template", cmd_template, "render a chat conversation through a chat template"},
    {"tokenize", cmd_tokenize, "print the token ids of stdin's text (--ids: ids to text)"},
    {"fit", cmd_fit, "predict a model's memory (weights, KV, compute) and whether it fits"},
    {"ps", cmd_ps, "show the models a running server holds (memory, idle time, unload time)"},
    {"bench", cmd_bench, "measure prompt and generation speed (bench http: an HTTP endpoint)"},
    {"quantize", cmd_quantize, "quantize a GGUF model (Q4_K_M, Q8_0, ...) like llama-quantize"},
};

static void usage(FILE *f) {
    fprintf(f, "locara %s — a local LLM runtime\n\nusage: locara <command> [options]\n\ncommands:\n",
            LOCARA_VERSION);
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "  %-10s %s\n", "help", "show this list");
    fprintf(f, "\n`locara <command> --help` shows a command's options.\n");
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *name = argv[1];
    if (!strcmp(name, "--version") || !strcmp(name, "version")) {
        printf("locara %s\n", LOCARA_VERSION);
        return 0;
    }
    if (!strcmp(name, "help") || !strcmp(name, "--help") || !strcmp(name, "-h")) {
        usage(stdout);
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(commands[i].name, name)) return commands[i].fn(argc - 2, argv + 2);
    fprintf(stderr, "locara: unknown command '%s'\n\n", name);
    usage(stderr);
    return 2;
}
