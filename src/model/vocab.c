/* vocab.c — the text calls of the public API (lc_tokenize, lc_token_to_piece,
 * lc_token_is_eog), delegating to the model's tokenizer (text/tokenizer.h). */
#include "model.h"

#include "text/tokenizer.h"

int lc_tokenize(const lc_model *model, const char *text, size_t len, lc_token *out, int cap,
                int add_special, int parse_special) {
    return lc_tok_encode_into(model->tok, text, len, add_special != 0, parse_special != 0, out, cap);
}

int lc_token_to_piece(const lc_model *model, lc_token tok, char *buf, int cap) {
    return lc_tok_piece(model->tok, tok, buf, cap);
}

int lc_token_is_eog(const lc_model *model, lc_token tok) { return lc_tok_is_eog(model->tok, tok); }

const lc_tok *lc_model_tokenizer(const lc_model *model) { return model->tok; }
