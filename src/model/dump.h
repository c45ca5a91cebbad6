/* dump.h — LOCARA_DUMP=FILE: append the forward pass's intermediates (norms, Q/K/V before and
 * after RoPE, attention output, FFN gate/up/swiglu/down, residuals, final norm, logits) to FILE,
 * for op-by-op comparison with llama.cpp (tools/compare_dump.py). Debugging aid only: the context
 * opens the file once (lc_exec.dump) and the forward writes to it; unset, nothing runs.
 * Record format (little-endian): u32 name_len, name bytes, i32 rows, i32 cols, f32 rows*cols.
 */
#ifndef LC_DUMP_H
#define LC_DUMP_H

#include "backend/backend.h"

typedef struct lc_dump lc_dump; /* also declared by model.h, for lc_exec */

/* Opens $LOCARA_DUMP for appending; NULL when unset or unopenable (a warning is logged). */
lc_dump *lc_dump_begin(void);

/* Appends x (rows, cols), copied to the host through be's to_host, as record "name-il"
 * ("name" alone when il < 0). No-op when d is NULL. */
void lc_dump_tensor(lc_dump *d, lc_backend *be, const char *name, int il, const float *x, int rows, int cols);

/* Closes the file and frees d (NULL is fine). */
void lc_dump_end(lc_dump *d);

#endif
