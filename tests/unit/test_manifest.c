/* test_manifest.c — the model manifest (runtime/manifest.c): durations, sizes, a full valid
 * manifest, each kind of error naming its key path (wrong type, unknown key, mlock/no_mmap,
 * missing id, duplicate names, bad draft), directories of GGUF files and single files, and no
 * leaks through the counting allocator.
 */
#include "runtime/manifest.h"
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Parses text expecting failure; checks the message contains want. */
static void expect_error(const char *text, const char *want) {
    lc_manifest m;
    lc_status st = lc_manifest_parse(text, strlen(text), "/base", &m);
    CHECKF(st != LC_OK, "accepted: %s", text);
    CHECKF(strstr(lc_last_error(), want) != NULL, "error '%s' lacks '%s'", lc_last_error(), want);
    CHECK(m.n_models == 0 && m.models == NULL);
}

static void test_durations(void) {
    static const struct { const char *s; double want; } ok[] = {
        {"5m", 300}, {"1s", 1}, {"0", 0}, {"-1", LC_KEEP_FOREVER}, {"10", 10}, {"1h30m", 5400},
        {"250ms", 0.25}, {"1.5s", 1.5}, {"-5m", LC_KEEP_FOREVER}, {"2h", 7200}, {"0s", 0},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        double d = -99;
        CHECKF(lc_duration_parse(ok[i].s, &d) == LC_OK && d == ok[i].want, "%s -> %g", ok[i].s, d);
    }
    const char *bad[] = {"", "5x", "m", "5 m", "abc", "1m-3s", "nan"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        double d;
        CHECKF(lc_duration_parse(bad[i], &d) != LC_OK, "'%s' accepted", bad[i]);
    }
}

static void test_sizes(void) {
    static const struct { const char *s; size_t want; } ok[] = {
        {"1048576", 1048576}, {"512MiB", 512ull << 20}, {"1.5GiB", 3ull << 29}, {"2G", 2ull << 30},
        {"1GB", 1000000000ull}, {"64K", 65536}, {"100 MiB", 100ull << 20}, {"7B", 7},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        size_t v = 0;
        CHECKF(lc_size_parse(ok[i].s, &v) == LC_OK && v == ok[i].want, "%s -> %zu", ok[i].s, v);
    }
    const char *bad[] = {"", "-5", "5XB", "lots", "1e30GiB"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        size_t v;
        CHECKF(lc_size_parse(bad[i], &v) != LC_OK, "'%s' accepted", bad[i]);
    }
}

static void test_valid(void) {
    const char *text =
        "{\"models\": [{\"id\": \"qwen\", \"aliases\": [\"q\", \"qwen-latest\"], \"file\": \"qwen.gguf\","
        " \"context\": 4096, \"kv_type\": \"q8_0\", \"parallel\": 2, \"keep_alive\": \"5m\","
        " \"requires\": {\"memoryGB\": 1.5}, \"draft\": \"small\"},"
        " {\"id\": \"small\", \"file\": \"/abs/small.gguf\", \"keep_alive\": -1},"
        " {\"id\": \"third\", \"file\": \"t.gguf\", \"keep_alive\": 0}],"
        " \"memory_budget\": \"2GiB\", \"keep_alive\": \"1m\"}";
    lc_manifest m;
    size_t before = lc_mem_in_use();
    lc_status st = lc_manifest_parse(text, strlen(text), "/models", &m);
    CHECKF(st == LC_OK, "%s", lc_last_error());
    if (st) return;
    CHECK(m.n_models == 3);
    CHECK(m.memory_budget == (2ull << 30));
    CHECK(m.keep_alive == 60);
    const lc_model_spec *a = &m.models[0];
    CHECK(!strcmp(a->id, "qwen") && a->n_aliases == 2 && !strcmp(a->aliases[1], "qwen-latest"));
    CHECK(!strcmp(a->file, "/models/qwen.gguf"));
    CHECK(a->n_ctx == 4096 && a->kv_type == LC_KV_Q8_0 && a->parallel == 2 && a->keep_alive == 300);
    CHECK(a->requires_bytes == (size_t)(1.5 * 1073741824.0));
    CHECK(a->draft && !strcmp(a->draft, "small"));
    CHECK(!strcmp(m.models[1].file, "/abs/small.gguf") && m.models[1].keep_alive == LC_KEEP_FOREVER);
    CHECK(m.models[2].keep_alive == 0 && m.models[2].kv_type == 0 && m.models[2].n_ctx == 0);
    CHECK(lc_manifest_check(&m) == LC_OK);
    lc_manifest_free(&m);
    CHECK(lc_mem_in_use() == before);
}

static void test_errors(void) {
    expect_error("{\"models\": [{\"id\": \"a\", \"file\": \"a.gguf\"}, {\"id\": \"b\", \"file\": \"b.gguf\"},"
                 " {\"id\": \"c\", \"file\": \"c.gguf\", \"context\": \"big\"}]}",
                 "models[2].context: expected an integer, got \"big\"");
    expect_error("{\"models\": [{\"id\": \"a\", \"file\": \"a.gguf\", \"contxt\": 5}]}", "models[0].contxt: unknown key");
    expect_error("{\"models\": [{\"id\": \"a\", \"file\": \"a.gguf\", \"mlock\": true}]}", "models[0].mlock is not supported");
    expect_error("{\"models\": [{\"id\": \"a\", \"file\": \"a.gguf\", \"no_mmap\": true}]}", "file-backed");
    expect_error("{\"mlock\": true, \"models\": []}", "mlock is not supported");
    expect_error("{\"models\": [{\"file\": \"a.gguf\"}]}", "models[0].id: missing");
    expect_error("{\"models\": [{\"id\": \"a\"}]}", "models[0].file: missing");
    expect_error("{\"models\": [{\"id\": \"a\", \"file\": \"a.gguf\", \"parallel\": 0}]}", "models[0].parallel: 0 is out of range");
    expect_error("{\"models\": [{\"id\": \"a\", \"file\": \"a.gguf\", \"kv_type\": \"f32\"}]}", "models[0].kv_type: expected one of");
    expect_error("{\"models\": [{\"id\": \"a\", \"file\": \"a.gguf\", \"keep_alive\": \"soon\"}]}", "models[0].keep_alive: 'soon' is not a duration");
    expect_error("{\"models\": [{\"id\": \"a\", \"file\": \"a.gguf\", \"aliases\": [\"x\", 3]}]}", "models[0].aliases[1]: expected a non-empty string, got 3");
    expect_error("{\"models\": [{\"id\": \"a\", \"file\": \"a.gguf\", \"requires\": {\"memoryGB\": \"1\"}}]}", "models[0].requires.memoryGB: expected a positive number");
    expect_error("{\"models\": [{\"id\": \"a\", \"file\": \"a.gguf\", \"requires\": {\"gpus\": 1}}]}", "models[0].requires.gpus: unknown key");
    expect_error("{\"models\": {}}", "models: expected an array");
    expect_error("{\"model\": []}", "model: unknown key");
    expect_error("{}", "models: missing");
    expect_error("{\"models\": [], \"memory_budget\": true}", "memory_budget: expected");
    expect_error("{\"models\": [], \"memory_budget\": \"lots\"}", "memory_budget: 'lots' is not a size");
    expect_error("[1]", "expected an object");
    expect_error("{\"models\": [", "not valid JSON");
    expect_error("{\"models\": [{\"id\": \"a\", \"id\": \"b\", \"file\": \"x\"}]}", "not valid JSON");

    /* whole-list checks */
    const char *dup = "{\"models\": [{\"id\": \"a\", \"file\": \"a.gguf\"}, {\"id\": \"b\", \"aliases\": [\"a\"], \"file\": \"b.gguf\"}]}";
    const char *draft = "{\"models\": [{\"id\": \"a\", \"file\": \"a.gguf\", \"draft\": \"zz\"}]}";
    const char *self = "{\"models\": [{\"id\": \"a\", \"file\": \"a.gguf\", \"draft\": \"a\"}]}";
    const char *want[] = {"the name 'a' is already used by models[0]", "models[0].draft: no model has the id 'zz'",
                          "cannot be its own draft"};
    const char *texts[] = {dup, draft, self};
    for (int i = 0; i < 3; i++) {
        lc_manifest m;
        CHECK(lc_manifest_parse(texts[i], strlen(texts[i]), NULL, &m) == LC_OK);
        CHECK(lc_manifest_check(&m) != LC_OK);
        CHECKF(strstr(lc_last_error(), want[i]) != NULL, "%s", lc_last_error());
        lc_manifest_free(&m);
    }
    lc_manifest empty = {0};
    CHECK(lc_manifest_check(&empty) != LC_OK);
}

static void touch(const char *path) {
    FILE *f = fopen(path, "w");
    if (f) fclose(f);
}

static void test_dir_and_files(void) {
    char dir[] = "/tmp/lc_manifest_XXXXXX";
    if (!mkdtemp(dir)) {
        CHECK(0);
        return;
    }
    char p[256];
    const char *names[] = {"b.gguf", "a.gguf", "notes.txt", ".hidden.gguf"};
    for (int i = 0; i < 4; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, names[i]);
        touch(p);
    }
    lc_manifest m = {0};
    m.keep_alive = LC_KEEP_UNSET;
    size_t before = lc_mem_in_use();
    CHECK(lc_manifest_add_file(&m, "/x/pinned.gguf", NULL, LC_KEEP_FOREVER) == LC_OK);
    CHECK(lc_manifest_add_dir(&m, dir) == LC_OK);
    CHECK(m.n_models == 3);
    CHECK(!strcmp(m.models[0].id, "pinned") && m.models[0].n_aliases == 1 && !strcmp(m.models[0].aliases[0], "pinned.gguf"));
    CHECK(m.models[0].keep_alive == LC_KEEP_FOREVER);
    CHECK(m.n_models == 3 && !strcmp(m.models[1].id, "a") && !strcmp(m.models[2].id, "b"));
    snprintf(p, sizeof p, "%s/a.gguf", dir);
    CHECK(!strcmp(m.models[1].file, p) && m.models[1].keep_alive == LC_KEEP_UNSET);
    /* scanning again adds nothing: the ids exist */
    CHECK(lc_manifest_add_dir(&m, dir) == LC_OK && m.n_models == 3);
    CHECK(lc_manifest_add_file(&m, "/y/named.gguf", "custom", 5) == LC_OK);
    CHECK(!strcmp(m.models[3].id, "custom") && m.models[3].n_aliases == 2);
    CHECK(lc_manifest_check(&m) == LC_OK);
    lc_manifest_free(&m);
    CHECK(lc_mem_in_use() == before);
    CHECK(lc_manifest_add_dir(&m, "/nonexistent/dir") == LC_ERR_IO);
    for (int i = 0; i < 4; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, names[i]);
        unlink(p);
    }
    rmdir(dir);
}

/* A manifest file on disk: relative paths resolve against its directory. */
static void test_load_file(void) {
    char path[] = "/tmp/lc_manifest_file_XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0) {
        CHECK(0);
        return;
    }
    const char *text = "{\"models\": [{\"id\": \"m\", \"file\": \"m.gguf\"}]}";
    CHECK(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
    close(fd);
    lc_manifest m;
    CHECK(lc_manifest_load(path, &m) == LC_OK);
    CHECK(m.n_models == 1 && !strcmp(m.models[0].file, "/tmp/m.gguf"));
    lc_manifest_free(&m);
    unlink(path);
    CHECK(lc_manifest_load("/nonexistent.json", &m) != LC_OK);
    CHECK(strstr(lc_last_error(), "/nonexistent.json") != NULL);
}

int main(void) {
    test_durations();
    test_sizes();
    test_valid();
    test_errors();
    test_dir_and_files();
    test_load_file();
    return test_done();
}
