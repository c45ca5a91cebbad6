/* fuzz_request.c — libFuzzer target for the server's request parser (src/server/request.c) and
 * the JSON-mode automaton (src/server/json_mode.c).
 *
 * Input: byte 0 picks chat or completions, the rest is the request body. The parser must return
 * OK or a 4xx error with a message, never crash or leak (ASan/UBSan). The same bytes run through
 * the JSON automaton: whenever it accepts them as a complete object, jansson must parse them as
 * one (else trap), so JSON mode never emits invalid JSON (strict UTF-8, paired surrogates).
 */
#include "server/server.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    serve_kind kind = (data[0] & 1) ? SERVE_COMPLETION : SERVE_CHAT;
    const char *body = (const char *)data + 1;
    size_t len = size - 1;
    serve_req rq;
    serve_err e = {0};
    lc_status st = serve_req_parse(body, len, kind, &rq, &e);
    if (!st) st = serve_req_check_vocab(&rq, 49152, &e);
    if (st) {
        if (e.status < 400 || e.status > 599 || !e.message[0]) __builtin_trap();
    } else {
        if (kind == SERVE_CHAT && !json_is_array(rq.messages)) __builtin_trap();
        if (kind == SERVE_COMPLETION && !rq.prompt && rq.n_prompt_tokens <= 0) __builtin_trap();
        if (rq.gp.n_stops < 0 || rq.gp.n_stops > 16) __builtin_trap();
    }
    serve_req_free(&rq);
    bool complete = false;
    if (serve_json_check(body, len, &complete) && complete) {
        json_error_t je;
        json_t *j = json_loadb(body, len, JSON_ALLOW_NUL, &je); /* \u0000 is valid JSON */
        /* numbers beyond double range are valid JSON that jansson cannot hold: not a failure */
        bool range = !j && (strstr(je.text, "overflow") || strstr(je.text, "too big"));
        if ((!j && !range) || (j && !json_is_object(j))) __builtin_trap();
        json_decref(j);
    }
    return 0;
}
