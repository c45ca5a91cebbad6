/* info.c — `locara info FILE`: prints a GGUF file's header, metadata and tensor table.
 *
 * Long arrays (vocabularies) are summarised by their first elements; strings are printed with
 * control characters escaped. A corrupt file gives the reader's one-line error and exit 1.
 */
#include "cli.h"

#include "gguf/gguf.h"

#include <inttypes.h>
#include <stdio.h>

static void print_str(const char *p, uint64_t n, uint64_t max) {
    putchar('"');
    for (uint64_t i = 0; i < n && i < max; i++) {
        unsigned char ch = (unsigned char)p[i];
        if (ch == '\n') fputs("\\n", stdout);
        else if (ch == '\t') fputs("\\t", stdout);
        else if (ch == '"' || ch == '\\') printf("\\%c", ch);
        else if (ch < 0x20) printf("\\x%02x", ch);
        else putchar(ch);
    }
    if (n > max) fputs("...", stdout);
    putchar('"');
}

static void print_value(const lc_gguf_value *v) {
    switch (v->type) {
    case LC_GGUF_STRING: print_str(v->str.p, v->str.n, 200); break;
    case LC_GGUF_F32: case LC_GGUF_F64: printf("%g", v->f); break;
    case LC_GGUF_BOOL: fputs(v->u ? "true" : "false", stdout); break;
    case LC_GGUF_I8: case LC_GGUF_I16: case LC_GGUF_I32: case LC_GGUF_I64: printf("%" PRId64, v->i); break;
    case LC_GGUF_ARRAY: {
        printf("[%s x %" PRIu64 "] [", lc_gguf_type_name(v->arr.elem), v->arr.n);
        uint64_t show = v->arr.n < 6 ? v->arr.n : 6;
        for (uint64_t i = 0; i < show; i++) {
            if (i) fputs(", ", stdout);
            if (v->arr.elem == LC_GGUF_STRING) {
                lc_gguf_str s = lc_gguf_arr_str(v, i);
                print_str(s.p, s.n, 40);
            } else if (v->arr.elem == LC_GGUF_ARRAY) {
                print_value(&v->arr.items[i]);
            } else if (v->arr.elem == LC_GGUF_F32 || v->arr.elem == LC_GGUF_F64) {
                printf("%g", lc_gguf_arr_f64(v, i));
            } else {
                printf("%" PRId64, lc_gguf_arr_i64(v, i));
            }
        }
        fputs(v->arr.n > show ? ", ...]" : "]", stdout);
        break;
    }
    default: printf("%" PRIu64, v->u); break;
    }
}

int cmd_info(int argc, char **argv) {
    bool no_tensors = false;
    const cli_opt opts[] = {
        {"--no-tensors", NULL, CLI_BOOL, &no_tensors, "print only the metadata"},
    };
    const char *pos[1];
    int npos;
    int rc = cli_parse(argc, argv, opts, 1, pos, 1, &npos, "locara info FILE [--no-tensors]");
    if (rc) return rc == 1 ? 0 : rc;
    if (npos != 1) {
        fprintf(stderr, "locara: info needs one GGUF file\n");
        return 2;
    }
    lc_gguf *g;
    if (lc_gguf_open(pos[0], &g) != LC_OK) {
        fprintf(stderr, "locara: %s\n", lc_last_error());
        return 1;
    }
    printf("file: %s\nversion: %u\nalignment: %u\nmetadata: %" PRIu64 "\ntensors: %" PRIu64 "\n\n",
           pos[0], g->version, g->alignment, g->n_kv, g->n_tensors);
    for (uint64_t i = 0; i < g->n_kv; i++) {
        const lc_gguf_kv *kv = &g->kv[i];
        printf("%.*s (%s) = ", (int)kv->key.n, kv->key.p, lc_gguf_type_name(kv->val.type));
        print_value(&kv->val);
        putchar('\n');
    }
    if (!no_tensors) {
        uint64_t total = 0;
        printf("\n%-40s %-8s %-28s %12s\n", "tensor", "type", "shape", "bytes");
        for (uint64_t i = 0; i < g->n_tensors; i++) {
            const lc_gguf_tensor *t = &g->tensors[i];
            char shape[64];
            int n = snprintf(shape, sizeof shape, "%" PRId64, t->ne[0]);
            for (int d = 1; d < t->n_dims && n < (int)sizeof shape; d++)
                n += snprintf(shape + n, sizeof shape - (size_t)n, " x %" PRId64, t->ne[d]);
            printf("%-40s %-8s %-28s %12zu\n", t->name, lc_type_name(t->type), shape, t->size);
            total += t->size;
        }
        printf("\ntotal tensor bytes: %" PRIu64 "\n", total);
    }
    lc_gguf_close(g);
    return 0;
}
