/* rope.c — the rotation angles of RoPE, computed one way for every backend: the CPU backend's
 * rotation and the CUDA backend's (which uploads them for short batches) take the same floats. */
#include "backend/backend.h"

#include <math.h>

void lc_rope_angles(const lc_rope *r, int32_t pos, float *cs, float *sn) {
    const float theta_scale = powf(r->freq_base, -2.0f / (float)r->n_dims);
    float theta = (float)pos; /* the same float steps as ggml's rope cache */
    for (int i = 0; i < r->n_dims / 2; i++) {
        const float th = r->freq_scale * (theta / (r->freq_factors ? r->freq_factors[i] : 1.0f));
        cs[i] = cosf(th);
        sn[i] = sinf(th);
        theta *= theta_scale;
    }
}
