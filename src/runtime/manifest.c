/* manifest.c — reading the model list: the strict JSON manifest (jansson), a directory of GGUF
 * files, single files, and the duration and size strings of their settings.
 *
 * Validation is strict on purpose: a typo in a key ("contxt") or a wrong type silently ignored
 * would serve a model with settings nobody asked for, so each is an error naming its key path
 * ("models[2].context: expected an integer, got \"big\""). Deliberately not here: loading
 * models or checking that files exist (the manager reports that when a model is first used).
 */
#include "runtime/manifest.h"

#include <dirent.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ==== Durations and sizes ==== */

lc_status lc_duration_parse(const char *s, double *out_s) {
    if (!s || !*s) return lc_fail(LC_ERR_INVALID, "an empty duration");
    char *end;
    double v = strtod(s, &end);
    if (end != s && !*end) { /* a bare number: seconds */
        if (!isfinite(v)) return lc_fail(LC_ERR_INVALID, "duration '%s' is not finite", s);
        *out_s = v < 0 ? LC_KEEP_FOREVER : v;
        return LC_OK;
    }
    static const struct { const char *unit; double sec; } units[] = {
        {"ns", 1e-9}, {"us", 1e-6}, {"µs", 1e-6}, {"ms", 1e-3}, {"s", 1}, {"m", 60}, {"h", 3600},
    };
    const char *p = s;
    bool neg = *p == '-';
    if (*p == '-' || *p == '+') p++;
    double total = 0;
    int parts = 0;
    while (*p) {
        v = strtod(p, &end);
        if (end == p || v < 0 || !isfinite(v)) goto bad;
        p = end;
        size_t best = 0;
        double mul = 0;
        for (size_t i = 0; i < LC_ARRAY_LEN(units); i++) {
            size_t n = strlen(units[i].unit);
            if (!strncmp(p, units[i].unit, n) && n > best) {
                /* "m" must not swallow the "m" of "ms" */
                best = n;
                mul = units[i].sec;
            }
        }
        if (!best) goto bad;
        p += best;
        total += v * mul;
        parts++;
    }
    if (!parts) goto bad;
    *out_s = neg ? (total > 0 ? LC_KEEP_FOREVER : 0) : total;
    return LC_OK;
bad:
    return lc_fail(LC_ERR_INVALID, "'%.60s' is not a duration (use e.g. \"5m\", \"30s\", \"1h30m\", 0 or -1)", s);
}

lc_status lc_size_parse(const char *s, size_t *out) {
    if (!s || !*s) return lc_fail(LC_ERR_INVALID, "an empty size");
    char *end;
    double v = strtod(s, &end);
    if (end == s || v < 0 || !isfinite(v)) goto bad;
    while (*end == ' ') end++;
    static const struct { const char *unit; double mul; } units[] = {
        {"", 1}, {"B", 1}, {"K", 1024.0}, {"KiB", 1024.0}, {"KB", 1e3}, {"M", 1048576.0}, {"MiB", 1048576.0},
        {"MB", 1e6}, {"G", 1073741824.0}, {"GiB", 1073741824.0}, {"GB", 1e9}, {"T", 1099511627776.0},
        {"TiB", 1099511627776.0}, {"TB", 1e12},
    };
    for (size_t i = 0; i < LC_ARRAY_LEN(units); i++) {
        if (strcmp(end, units[i].unit)) continue;
        double b = v * units[i].mul;
        if (b >= 1.8e19) goto bad;
        *out = (size_t)b;
        return LC_OK;
    }
bad:
    return lc_fail(LC_ERR_INVALID, "'%.60s' is not a size (use bytes or e.g. \"512MiB\", \"1.5GiB\")", s);
}

/* ==== JSON helpers ==== */

/* A short description of a JSON value for error messages: "big" (quoted), 12, true, an array. */
static void describe(const json_t *v, char *buf, size_t cap) {
    switch (json_typeof(v)) {
    case JSON_STRING: snprintf(buf, cap, "\"%.40s\"", json_string_value(v)); break;
    case JSON_INTEGER: snprintf(buf, cap, "%lld", (long long)json_integer_value(v)); break;
    case JSON_REAL: snprintf(buf, cap, "%g", json_real_value(v)); break;
    case JSON_TRUE: snprintf(buf, cap, "true"); break;
    case JSON_FALSE: snprintf(buf, cap, "false"); break;
    case JSON_NULL: snprintf(buf, cap, "null"); break;
    case JSON_ARRAY: snprintf(buf, cap, "an array"); break;
    case JSON_OBJECT: snprintf(buf, cap, "an object"); break;
    }
}

static lc_status type_err(const char *path, const char *want, const json_t *v) {
    char got[64];
    describe(v, got, sizeof got);
    return lc_fail(LC_ERR_FORMAT, "%s: expected %s, got %s", path, want, got);
}

static lc_status get_int(const char *path, const json_t *v, int lo, int hi, int *out) {
    if (!json_is_integer(v)) return type_err(path, "an integer", v);
    json_int_t x = json_integer_value(v);
    if (x < lo || x > hi) return lc_fail(LC_ERR_FORMAT, "%s: %lld is out of range [%d, %d]", path, (long long)x, lo, hi);
    *out = (int)x;
    return LC_OK;
}

static lc_status get_str(const char *path, const json_t *v, char **out) {
    if (!json_is_string(v) || !json_string_length(v)) return type_err(path, "a non-empty string", v);
    *out = lc_strdup(json_string_value(v));
    return *out ? LC_OK : LC_ERR_OOM;
}

/* keep_alive: a duration string or a number of seconds. */
static lc_status get_keep(const char *path, const json_t *v, double *out) {
    if (json_is_number(v)) {
        double d = json_number_value(v);
        *out = d < 0 ? LC_KEEP_FOREVER : d;
        return LC_OK;
    }
    if (!json_is_string(v)) return type_err(path, "a duration (\"5m\") or a number of seconds", v);
    if (lc_duration_parse(json_string_value(v), out)) return lc_fail_wrap(LC_ERR_FORMAT, "%s: ", path);
    return LC_OK;
}

/* Keys that would pin weights in anonymous or locked memory, refused with the reason. */
static lc_status refuse_pinning(const char *path, const char *key) {
    return lc_fail(LC_ERR_UNSUPPORTED,
                   "%s.%s is not supported: Locara keeps weights in file-backed, read-only mappings so the kernel can "
                   "evict them under pressure and the memory budget stays true; %s would pin them (remove the key)",
                   path, key, key);
}

/* ==== Models ==== */

static void spec_free(lc_model_spec *s) {
    lc_free(s->id);
    for (int i = 0; i < s->n_aliases; i++) lc_free(s->aliases[i]);
    lc_free(s->aliases);
    lc_free(s->file);
    lc_free(s->draft);
    memset(s, 0, sizeof *s);
}

static lc_model_spec *spec_push(lc_manifest *m) {
    lc_model_spec *n = lc_realloc(m->models, (size_t)(m->n_models + 1) * sizeof *n);
    if (!n) return NULL;
    m->models = n;
    lc_model_spec *s = &m->models[m->n_models++];
    memset(s, 0, sizeof *s);
    s->keep_alive = LC_KEEP_UNSET;
    return s;
}

static char *join_path(const char *dir, const char *file) {
    if (!dir || !*dir || file[0] == '/') return lc_strdup(file);
    lc_str s = {0};
    if (!lc_str_printf(&s, "%s/%s", dir, file)) return NULL;
    return lc_str_take(&s);
}

/* Parses models[i] (object o) into s. */
static lc_status parse_model(const json_t *o, int i, const char *base_dir, lc_model_spec *s) {
    char path[64], kp[160];
    snprintf(path, sizeof path, "models[%d]", i);
    if (!json_is_object(o)) return type_err(path, "an object", o);
    const char *key;
    json_t *v;
    lc_status st;
    json_object_foreach((json_t *)o, key, v) {
        snprintf(kp, sizeof kp, "%s.%.60s", path, key);
        if (!strcmp(key, "id")) {
            if ((st = get_str(kp, v, &s->id))) return st;
        } else if (!strcmp(key, "file")) {
            if (!json_is_string(v) || !json_string_length(v)) return type_err(kp, "a non-empty string", v);
            if (!(s->file = join_path(base_dir, json_string_value(v)))) return LC_ERR_OOM;
        } else if (!strcmp(key, "aliases")) {
            if (!json_is_array(v)) return type_err(kp, "an array of strings", v);
            s->aliases = lc_calloc(json_array_size(v) + 1, sizeof *s->aliases);
            if (!s->aliases) return LC_ERR_OOM;
            for (size_t k = 0; k < json_array_size(v); k++) {
                char ap[192];
                snprintf(ap, sizeof ap, "%s[%zu]", kp, k);
                if ((st = get_str(ap, json_array_get(v, k), &s->aliases[s->n_aliases]))) return st;
                s->n_aliases++;
            }
        } else if (!strcmp(key, "context")) {
            if ((st = get_int(kp, v, 16, 1 << 24, &s->n_ctx))) return st;
        } else if (!strcmp(key, "kv_type")) {
            const char *t = json_is_string(v) ? json_string_value(v) : NULL;
            if (t && !strcmp(t, "f16")) s->kv_type = LC_KV_F16;
            else if (t && !strcmp(t, "q8_0")) s->kv_type = LC_KV_Q8_0;
            else if (t && !strcmp(t, "q4_0")) s->kv_type = LC_KV_Q4_0;
            else return type_err(kp, "one of \"f16\", \"q8_0\", \"q4_0\"", v);
        } else if (!strcmp(key, "parallel")) {
            if ((st = get_int(kp, v, 1, 256, &s->parallel))) return st;
        } else if (!strcmp(key, "keep_alive")) {
            if ((st = get_keep(kp, v, &s->keep_alive))) return st;
        } else if (!strcmp(key, "requires")) {
            if (!json_is_object(v)) return type_err(kp, "an object like {\"memoryGB\": 1.5}", v);
            const char *rk;
            json_t *rv;
            json_object_foreach(v, rk, rv) {
                char rp[224];
                snprintf(rp, sizeof rp, "%s.%.40s", kp, rk);
                if (strcmp(rk, "memoryGB")) return lc_fail(LC_ERR_FORMAT, "%s: unknown key (known: memoryGB)", rp);
                if (!json_is_number(rv) || json_number_value(rv) <= 0 || json_number_value(rv) > 1e6)
                    return type_err(rp, "a positive number of GiB", rv);
                s->requires_bytes = (size_t)(json_number_value(rv) * 1073741824.0);
            }
        } else if (!strcmp(key, "draft")) {
            if ((st = get_str(kp, v, &s->draft))) return st;
        } else if (!strcmp(key, "mlock") || !strcmp(key, "no_mmap") || !strcmp(key, "use_mlock")) {
            return refuse_pinning(path, key);
        } else {
            return lc_fail(LC_ERR_FORMAT,
                           "%s: unknown key (known: id, aliases, file, context, kv_type, parallel, keep_alive, "
                           "requires, draft)", kp);
        }
    }
    if (!s->id) return lc_fail(LC_ERR_FORMAT, "%s.id: missing (every model needs an id)", path);
    if (!s->file) return lc_fail(LC_ERR_FORMAT, "%s.file: missing (the GGUF file of '%s')", path, s->id);
    return LC_OK;
}

lc_status lc_manifest_parse(const char *text, size_t len, const char *base_dir, lc_manifest *out) {
    memset(out, 0, sizeof *out);
    out->keep_alive = LC_KEEP_UNSET;
    json_error_t je;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    if (!root) return lc_fail(LC_ERR_FORMAT, "not valid JSON: %s (line %d, column %d)", je.text, je.line, je.column);
    lc_status st = LC_OK;
    if (!json_is_object(root)) {
        st = type_err("(top level)", "an object {\"models\": [...]}", root);
        goto done;
    }
    const char *key;
    json_t *v;
    json_object_foreach(root, key, v) {
        if (!strcmp(key, "models")) {
            if (!json_is_array(v)) {
                st = type_err("models", "an array of objects", v);
                goto done;
            }
            for (size_t i = 0; i < json_array_size(v); i++) {
                lc_model_spec *s = spec_push(out);
                if (!s) {
                    st = LC_ERR_OOM;
                    goto done;
                }
                if ((st = parse_model(json_array_get(v, i), (int)i, base_dir, s))) goto done;
            }
        } else if (!strcmp(key, "memory_budget")) {
            if (json_is_integer(v) && json_integer_value(v) > 0) {
                out->memory_budget = (size_t)json_integer_value(v);
            } else if (json_is_string(v)) {
                if ((st = lc_size_parse(json_string_value(v), &out->memory_budget))) {
                    st = lc_fail_wrap(LC_ERR_FORMAT, "memory_budget: ");
                    goto done;
                }
            } else {
                st = type_err("memory_budget", "a positive integer of bytes or a size string (\"8GiB\")", v);
                goto done;
            }
        } else if (!strcmp(key, "keep_alive")) {
            if ((st = get_keep("keep_alive", v, &out->keep_alive))) goto done;
        } else if (!strcmp(key, "mlock") || !strcmp(key, "no_mmap") || !strcmp(key, "use_mlock")) {
            st = refuse_pinning("(top level)", key);
            goto done;
        } else {
            st = lc_fail(LC_ERR_FORMAT, "%.60s: unknown key (known: models, memory_budget, keep_alive)", key);
            goto done;
        }
    }
    if (!json_object_get(root, "models")) st = lc_fail(LC_ERR_FORMAT, "models: missing (the list of models)");
done:
    json_decref(root);
    if (st) lc_manifest_free(out);
    return st;
}

lc_status lc_manifest_load(const char *path, lc_manifest *out) {
    memset(out, 0, sizeof *out);
    char *text = NULL;
    size_t len = 0;
    lc_status st = lc_read_file(path, &text, &len);
    if (st) return lc_fail_wrap(st, "manifest %s: ", path);
    char *dir = lc_strdup(path);
    if (!dir) {
        lc_free(text);
        return LC_ERR_OOM;
    }
    char *slash = strrchr(dir, '/');
    if (slash) *slash = 0;
    st = lc_manifest_parse(text, len, slash ? dir : NULL, out);
    lc_free(text);
    lc_free(dir);
    if (st) return lc_fail_wrap(st, "manifest %s: ", path);
    return LC_OK;
}

/* ==== Directories and single files ==== */

static bool has_id(const lc_manifest *m, const char *id) {
    for (int i = 0; i < m->n_models; i++) {
        if (!strcmp(m->models[i].id, id)) return true;
        for (int k = 0; k < m->models[i].n_aliases; k++)
            if (!strcmp(m->models[i].aliases[k], id)) return true;
    }
    return false;
}

lc_status lc_manifest_add_file(lc_manifest *m, const char *path, const char *id, double keep_alive) {
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    size_t n = strlen(base);
    bool ext = n > 5 && !strcmp(base + n - 5, ".gguf");
    lc_model_spec *s = spec_push(m);
    if (!s) return LC_ERR_OOM;
    s->keep_alive = keep_alive;
    s->file = lc_strdup(path);
    s->id = id ? lc_strdup(id) : lc_strndup(base, ext ? n - 5 : n);
    s->aliases = lc_calloc(2, sizeof *s->aliases);
    if (!s->file || !s->id || !s->aliases) goto oom;
    /* the file name with and without .gguf also name the model */
    const char *names[2] = {base, NULL};
    char stem[512];
    if (ext && n - 5 < sizeof stem) {
        memcpy(stem, base, n - 5);
        stem[n - 5] = 0;
        names[1] = stem;
    }
    for (int k = 0; k < 2; k++) {
        if (!names[k] || !strcmp(names[k], s->id) || has_id(m, names[k])) continue;
        if (!(s->aliases[s->n_aliases] = lc_strdup(names[k]))) goto oom;
        s->n_aliases++;
    }
    return LC_OK;
oom:
    spec_free(s);
    m->n_models--;
    return LC_ERR_OOM;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

lc_status lc_manifest_add_dir(lc_manifest *m, const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return lc_fail(LC_ERR_IO, "--models-dir %s: cannot open the directory", dir);
    char **names = NULL;
    size_t n = 0, cap = 0;
    lc_status st = LC_OK;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (len <= 5 || strcmp(e->d_name + len - 5, ".gguf") || e->d_name[0] == '.') continue;
        if (!lc_grow((void **)&names, sizeof *names, &cap, n + 1) || !(names[n] = lc_strdup(e->d_name))) {
            st = LC_ERR_OOM;
            break;
        }
        n++;
    }
    closedir(d);
    if (!st && n) qsort(names, n, sizeof *names, cmp_str);
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(names[i]);
        char id[512];
        snprintf(id, sizeof id, "%.*s", (int)(len - 5), names[i]);
        if (!st && !has_id(m, id)) {
            char *path = join_path(dir, names[i]);
            st = path ? lc_manifest_add_file(m, path, NULL, LC_KEEP_UNSET) : LC_ERR_OOM;
            lc_free(path);
        }
        lc_free(names[i]);
    }
    lc_free(names);
    return st;
}

/* ==== Checks ==== */

lc_status lc_manifest_check(const lc_manifest *m) {
    if (!m->n_models) return lc_fail(LC_ERR_INVALID, "no models to serve (give -m FILE, --models-dir DIR or --manifest FILE)");
    for (int i = 0; i < m->n_models; i++) {
        const lc_model_spec *s = &m->models[i];
        for (int k = -1; k < s->n_aliases; k++) {
            const char *name = k < 0 ? s->id : s->aliases[k];
            for (int j = 0; j <= i; j++) {
                const lc_model_spec *t = &m->models[j];
                for (int q = -1; q < t->n_aliases; q++) {
                    if (j == i && q >= k) break;
                    if (!strcmp(name, q < 0 ? t->id : t->aliases[q]))
                        return lc_fail(LC_ERR_FORMAT, "models[%d]: the name '%s' is already used by models[%d] ('%s')",
                                       i, name, j, t->id);
                }
            }
        }
        if (s->draft) {
            int found = -1;
            for (int j = 0; j < m->n_models; j++)
                if (!strcmp(m->models[j].id, s->draft)) found = j;
            if (found < 0) return lc_fail(LC_ERR_FORMAT, "models[%d].draft: no model has the id '%s'", i, s->draft);
            if (found == i) return lc_fail(LC_ERR_FORMAT, "models[%d].draft: a model cannot be its own draft", i);
        }
    }
    return LC_OK;
}

void lc_manifest_free(lc_manifest *m) {
    if (!m) return;
    for (int i = 0; i < m->n_models; i++) spec_free(&m->models[i]);
    lc_free(m->models);
    memset(m, 0, sizeof *m);
    m->keep_alive = LC_KEEP_UNSET;
}
