/* manifest.h — the list of models a server may serve: ids, aliases, files and per-model settings,
 * read from a JSON manifest, a directory of GGUF files, or `-m FILE`, plus the duration and size
 * strings those settings use ("5m", "1.5GiB").
 *
 * Manifest format (strict: unknown keys and wrong types are errors that name the key path):
 *   {"models": [{"id": "qwen", "aliases": ["q"], "file": "qwen.gguf", "context": 4096,
 *                "kv_type": "f16", "parallel": 1, "keep_alive": "3m",
 *                "requires": {"memoryGB": 1.5}, "draft": "other-id"}],
 *    "memory_budget": "8GiB", "keep_alive": "3m"}
 * Relative files resolve against the manifest's directory. `mlock` and `no_mmap` are refused:
 * weights must stay file-backed, evictable pages. Entry points: lc_manifest_load,
 * lc_manifest_parse, lc_manifest_add_dir, lc_manifest_add_file, lc_manifest_free.
 */
#ifndef LC_RUNTIME_MANIFEST_H
#define LC_RUNTIME_MANIFEST_H

#include "base/base.h"

#ifdef __cplusplus
extern "C" {
#endif

#define LC_KEEP_FOREVER (-1.0) /* keep_alive: never unload on idle */
#define LC_KEEP_UNSET (-2.0)   /* keep_alive: not given; the server default applies */

typedef struct lc_model_spec {
    char *id;
    char **aliases;
    int n_aliases;
    char *file;
    int n_ctx;             /* 0: min(training context, 8192) */
    int kv_type;           /* an lc_kv_type; 0: f16 */
    int parallel;          /* 0: the server's --parallel */
    double keep_alive;     /* seconds, LC_KEEP_FOREVER or LC_KEEP_UNSET */
    size_t requires_bytes; /* declared memory (requires.memoryGB); 0: predict only */
    char *draft;           /* id of a draft model (kept for speculative decoding); NULL: none */
} lc_model_spec;

typedef struct lc_manifest {
    lc_model_spec *models;
    int n_models;
    size_t memory_budget; /* 0: not set */
    double keep_alive;    /* default for its models; LC_KEEP_UNSET when not set */
} lc_manifest;

/* Parses an Ollama-style duration: "5m", "1h30m", "250ms", "1.5s", a bare number of seconds
 * ("10"), "0" (unload after the request) or any negative value (keep forever, -1). */
lc_status lc_duration_parse(const char *s, double *out_s);

/* Parses a size: bytes ("1048576"), binary units (K, KiB, M, MiB, G, GiB, T, TiB) or decimal
 * ones (KB, MB, GB, TB); fractions allowed ("1.5GiB"). */
lc_status lc_size_parse(const char *s, size_t *out);

/* Parses manifest text; relative "file" paths are joined to base_dir (NULL: kept as given).
 * On failure out is empty and the message names the key path. */
lc_status lc_manifest_parse(const char *text, size_t len, const char *base_dir, lc_manifest *out);

/* Reads and parses the manifest file at path. */
lc_status lc_manifest_load(const char *path, lc_manifest *out);

/* Appends every *.gguf file of dir (sorted by name) as a model whose id is the file name
 * without ".gguf" and whose alias is the file name; ids already present are skipped. */
lc_status lc_manifest_add_dir(lc_manifest *m, const char *dir);

/* Appends one model file with id (NULL: the file name without ".gguf"), aliases the file name
 * with and without ".gguf" where they differ from the id, and keep_alive. */
lc_status lc_manifest_add_file(lc_manifest *m, const char *path, const char *id, double keep_alive);

/* Checks the whole list: at least one model, ids and aliases unique, drafts name other models. */
lc_status lc_manifest_check(const lc_manifest *m);

void lc_manifest_free(lc_manifest *m);

#ifdef __cplusplus
}
#endif

#endif
