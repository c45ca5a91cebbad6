/* fuzz_jinja.c — libFuzzer target for the Jinja engine: the input bytes are a template,
 * parsed and (when it parses) rendered with a fixed small chat context under tight bounds.
 * Any crash, sanitizer report, leak or hang is a bug; template errors are expected.
 * Build: CC=clang cmake -S . -B build-fuzz-jinja -DLOCARA_FUZZ=ON -DLOCARA_WERROR=OFF
 */
#include "text/jinja.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const context_json =
    "{\"messages\": [{\"role\": \"system\", \"content\": \"Be brief.\"},"
    " {\"role\": \"user\", \"content\": [{\"type\": \"text\", \"text\": \"Hi \\u00e9\"}]},"
    " {\"role\": \"assistant\", \"content\": null, \"reasoning_content\": \"hm\", \"tool_calls\": [{\"id\": \"c1\","
    " \"type\": \"function\", \"function\": {\"name\": \"f\", \"arguments\": {\"a\": 1, \"b\": [1.5, true, null]}}}]},"
    " {\"role\": \"tool\", \"tool_call_id\": \"c1\", \"content\": \"42\"}],"
    " \"tools\": [{\"type\": \"function\", \"function\": {\"name\": \"f\", \"parameters\": {\"type\": \"object\"}}}],"
    " \"add_generation_prompt\": true, \"bos_token\": \"<s>\", \"eos_token\": \"</s>\", \"n\": 3, \"x\": 0.5}";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static json_t *vars; /* the fuzzer's fixed context, built once */
    if (!vars) vars = json_loads(context_json, 0, NULL);
    lc_jinja_tmpl *t;
    if (lc_jinja_parse((const char *)data, size, &t) != LC_OK) return 0;
    lc_jinja_opts o = {
        .max_output = 1 << 20,
        .max_memory = 32u << 20,
        .max_iterations = 20000,
        .max_depth = 64,
        .fixed_time = 1736937000,
    };
    char *out = NULL;
    if (lc_jinja_render(t, vars, &o, &out, NULL) == LC_OK) lc_free(out);
    lc_jinja_free(t);
    return 0;
}
