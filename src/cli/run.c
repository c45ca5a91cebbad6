/* run.c — `locara run`: generate text from a prompt (work in progress: engine not yet wired). */
#include "cli.h"

#include <stdio.h>

int cmd_run(int argc, char **argv) {
    (void)argc;
    (void)argv;
    fprintf(stderr, "locara: run is not implemented yet\n");
    return 1;
}
