/* quant_mix.c — per-tensor type choice of llama.cpp's quantization mixes (see quant_mix.h).
 *
 * Follows llama.cpp's llama_tensor_get_type for the K and legacy file types without an
 * importance matrix: output.weight (or a tied token_embd) gets Q6_K (Q8_0 for Q8_0 files or odd
 * rows), attn_v / ffn_down get more bits on the "use_more_bits" layers for Q4_K_M/Q5_K_M, and so
 * on. Not modelled: the 70B-only attn_v bump (needs the model size class) and the IQ types;
 * llama.cpp's IQ4_NL fallback for Q2_K/Q3_K rows not divisible by 256 becomes Q4_0 here (IQ4_NL
 * is not implemented), which is the one place our choice can differ.
 */
#include "quant_mix.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

static const lc_ftype ftypes[] = {
    {"F16", 1, LC_TYPE_F16},     {"BF16", 32, LC_TYPE_BF16},  {"Q4_0", 2, LC_TYPE_Q4_0},
    {"Q4_1", 3, LC_TYPE_Q4_1},   {"Q5_0", 8, LC_TYPE_Q5_0},   {"Q5_1", 9, LC_TYPE_Q5_1},
    {"Q8_0", 7, LC_TYPE_Q8_0},   {"Q2_K", 10, LC_TYPE_Q2_K},  {"Q3_K_M", 12, LC_TYPE_Q3_K},
    {"Q4_K_S", 14, LC_TYPE_Q4_K}, {"Q4_K_M", 15, LC_TYPE_Q4_K}, {"Q5_K_S", 16, LC_TYPE_Q5_K},
    {"Q5_K_M", 17, LC_TYPE_Q5_K}, {"Q6_K", 18, LC_TYPE_Q6_K},
};

enum { FT_Q4_0 = 2, FT_Q8_0 = 7, FT_Q2_K = 10, FT_Q3_K_M = 12, FT_Q4_K_S = 14, FT_Q4_K_M = 15,
       FT_Q5_K_M = 17 };

const lc_ftype *lc_ftype_from_name(const char *name) {
    for (size_t i = 0; i < sizeof ftypes / sizeof ftypes[0]; i++)
        if (!strcasecmp(ftypes[i].name, name)) return &ftypes[i];
    return NULL;
}

const lc_ftype *lc_ftype_list(int *n) {
    *n = (int)(sizeof ftypes / sizeof ftypes[0]);
    return ftypes;
}

static bool ends_with(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcmp(s + a - b, suf);
}

bool lc_quant_mix_wants(const char *name, int n_dims) {
    if (n_dims < 2 || !ends_with(name, "weight")) return false;
    static const char *const never[] = {"_norm.weight", "ffn_gate_inp.weight", "pos_embd",
                                        "token_types", "ssm_conv1d.weight", "attn_rel_b.weight"};
    for (size_t i = 0; i < sizeof never / sizeof never[0]; i++)
        if (strstr(name, never[i])) return false;
    return true;
}

/* llama.cpp's layer pattern for extra bits: the first and last eighth, and every third layer
 * in between. */
static bool use_more_bits(int i, int n) { return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2; }

/* The layer of an ffn tensor: its blk.N number for MoE models, else the running counter. */
static int layer_of(const lc_quant_mix *m, const char *name, int counter) {
    int l;
    if (m->n_expert > 1 && sscanf(name, "blk.%d.", &l) == 1) return l;
    return counter;
}

static lc_type pick(lc_quant_mix *m, const char *name, int64_t ne0) {
    const int ft = m->ft->ftype;
    lc_type t = m->ft->base;
    const int nl = m->n_layer > 0 ? m->n_layer : 1;
    if (!strcmp(name, "output.weight") || (!m->has_output && !strcmp(name, "token_embd.weight"))) {
        if (m->falcon || ne0 % 256 != 0) return LC_TYPE_Q8_0;
        return t != LC_TYPE_Q8_0 ? LC_TYPE_Q6_K : t;
    }
    if (!strcmp(name, "token_embd.weight")) return t;
    if (strstr(name, "attn_v.weight")) {
        if (ft == FT_Q2_K) t = m->n_gqa >= 4 ? LC_TYPE_Q4_K : LC_TYPE_Q3_K;
        else if (ft == FT_Q3_K_M) t = m->i_attn_v < 2 ? LC_TYPE_Q5_K : LC_TYPE_Q4_K;
        else if ((ft == FT_Q4_K_M || ft == FT_Q5_K_M) && use_more_bits(m->i_attn_v, m->n_attn_v)) t = LC_TYPE_Q6_K;
        else if (ft == FT_Q4_K_S && m->i_attn_v < 4) t = LC_TYPE_Q5_K;
        if (m->n_expert == 8) t = LC_TYPE_Q8_0;
        m->i_attn_v++;
    } else if (strstr(name, "attn_k.weight")) {
        if (m->n_expert == 8) t = LC_TYPE_Q8_0;
    } else if (strstr(name, "ffn_down")) {
        int il = layer_of(m, name, m->i_ffn_down);
        if (ft == FT_Q2_K) t = LC_TYPE_Q3_K;
        else if (ft == FT_Q3_K_M)
            t = il < nl / 16 ? LC_TYPE_Q5_K
                : (!m->falcon || use_more_bits(il, nl)) ? LC_TYPE_Q4_K : LC_TYPE_Q3_K;
        else if (ft == FT_Q4_K_M) {
            if (m->falcon) t = il < nl / 16 ? LC_TYPE_Q6_K : use_more_bits(il, nl) ? LC_TYPE_Q5_K : LC_TYPE_Q4_K;
            else if (use_more_bits(il, nl)) t = LC_TYPE_Q6_K;
        } else if (ft == FT_Q5_K_M && use_more_bits(il, nl)) t = LC_TYPE_Q6_K;
        else if (ft == FT_Q4_K_S && !m->falcon && il < nl / 8) t = LC_TYPE_Q5_K;
        m->i_ffn_down++;
    } else if (strstr(name, "attn_output.weight")) {
        if (!m->falcon) {
            if (m->n_expert == 8) {
                if (ft == FT_Q2_K || ft == FT_Q3_K_M || ft == FT_Q4_K_S || ft == FT_Q4_K_M) t = LC_TYPE_Q5_K;
            } else {
                if (ft == FT_Q2_K) t = LC_TYPE_Q3_K;
                else if (ft == FT_Q3_K_M) t = LC_TYPE_Q4_K;
            }
        }
    } else if (strstr(name, "attn_qkv.weight")) {
        if (ft == FT_Q3_K_M) t = LC_TYPE_Q4_K;
        else if (ft == FT_Q4_K_M) t = LC_TYPE_Q5_K;
        else if (ft == FT_Q5_K_M) t = LC_TYPE_Q6_K;
    } else if (strstr(name, "ffn_gate")) {
        m->i_ffn_gate++;
    } else if (strstr(name, "ffn_up")) {
        m->i_ffn_up++;
    }
    return t;
}

lc_type lc_quant_mix_pick(lc_quant_mix *m, const char *name, int64_t ne0) {
    lc_type t = pick(m, name, ne0);
    const lc_type_info *ti = lc_type_get((int)t);
    if (ti && ne0 % ti->block_size != 0) {
        /* llama.cpp's convert_incompatible_tensor, with Q4_0 standing in for IQ4_NL */
        switch (t) {
        case LC_TYPE_Q2_K: case LC_TYPE_Q3_K: t = LC_TYPE_Q4_0; break;
        case LC_TYPE_Q4_K: t = LC_TYPE_Q5_0; break;
        case LC_TYPE_Q5_K: t = LC_TYPE_Q5_1; break;
        case LC_TYPE_Q6_K: t = LC_TYPE_Q8_0; break;
        default: break;
        }
        if (ne0 % lc_type_get((int)t)->block_size != 0) t = LC_TYPE_F16;
    }
    return t;
}
