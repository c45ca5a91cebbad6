/* graph.cu — decode steps (<= 8 tokens) run from CUDA graphs, a few launches per step instead of
 * ~16-27 per layer. A step of a size whose graphs exist is replayed: its ops only fold their
 * launches into a signature (cu_k) and stage their host arrays (positions, slots, block tables,
 * token ids) in pinned memory at the places the graphs copy them from; equal signatures
 * relaunch the graphs. Otherwise, or when a signature differs (new buffers, another attention
 * split), the step is captured from the stream and the graphs of its size updated in place
 * (cudaGraphExecUpdate), or instantiated anew when the update is refused. A step is cut into
 * segments of about LOCARA_CUDA_GRAPH_SEG items, a graph each, launched as soon as the host is
 * through with it: the device runs the first layers while the host checks the rest.
 * Not here: what an op does. Ops that cannot be recorded (a buffer that grows, a download, a
 * synchronisation) call lc_cu_graph_break; the step is dropped and the caller runs the forward
 * again (step_end's *redo), then with direct launches: a failure costs time, never a result.
 */
#include "backend/cuda/cuda_impl.h"

#include <stdlib.h>
#include <string.h>

#define STAGE_MIN (64u << 10)
#define MAX_FAILS 4  /* consecutive failed recordings of one size before giving up on it */
#define MAX_REINST 8 /* consecutive refused updates of one size before giving up on it */
#define MAX_MISSES 4 /* consecutive replays that differed before capturing every step of a size */

/* Gives up on graphs for steps of T tokens, saying why once. */
static void give_up(lc_cuda *c, int T, const char *why) {
    cu_graph *g = &c->graph;
    if (g->off[T]) return;
    g->off[T] = true;
    lc_log(LC_LOG_WARN, "CUDA graphs off for steps of %d token(s): %s (LOCARA_CUDA_GRAPH=0 turns them off)", T, why);
}

lc_status lc_cu_graph_break(lc_cuda *c, bool never, const char *why) {
    cu_graph *g = &c->graph;
    if (!g->broken) lc_log(LC_LOG_DEBUG, "CUDA graph: step of %d token(s) not recordable: %s", g->T, why);
    g->broken = true;
    g->never |= never;
    return lc_fail(LC_ERR_DEVICE, "CUDA graph: %s while recording a step", why);
}

lc_status lc_cu_copy_in(lc_cuda *c, void *dev, const void *host, size_t n) {
    cu_graph *g = &c->graph;
    if (!n) return LC_OK;
    lc_cu_flush(c);
    if (cu_left_out(c)) {
        /* left out (an earlier pass ran it): its staging bytes are kept free all the same, so the
         * copies after it are staged where a whole pass stages them (the graphs' signatures hold
         * those places) */
        if (g->mode != CU_DIRECT) g->stage_used = (g->stage_used + 15) / 16 * 16 + n;
        return LC_OK;
    }
    if (g->mode == CU_DIRECT) return CU(c, cudaMemcpyAsync(dev, host, n, cudaMemcpyHostToDevice, c->stream));
    /* each copy gets its own bytes: the recording reads them when the graph runs, after the
     * whole step has been recorded; a replayed step puts its arrays at the same places */
    size_t at = (g->stage_used + 15) / 16 * 16;
    if (at + n > g->stage_cap) {
        g->stage_want = LC_MAX(g->stage_want, 2 * (at + n));
        return lc_cu_graph_break(c, false, "the staging area is full");
    }
    memcpy(g->stage + at, host, n);
    g->stage_used = at + n;
    const void *src = g->stage + at;
    cu_sig_mix(g, &dev, sizeof dev);
    cu_sig_mix(g, &src, sizeof src);
    cu_sig_mix(g, &n, sizeof n);
    if (g->mode == CU_REPLAY) return LC_OK;
    return CU(c, cudaMemcpyAsync(dev, src, n, cudaMemcpyHostToDevice, c->stream));
}

/* Forgets what the upload slots believe the device holds (a dropped recording never ran its
 * copies; a recorded step must copy every array it uses at least once). */
static void forget_uploads(lc_cuda *c) {
    for (int s = 0; s < SLOT_COUNT; s++) c->slot[s].n = 0;
}

/* The signature a segment starts from. */
static uint64_t seg_seed(int T, int seg) { return 0x6C6F63617261ull ^ (uint64_t)T ^ ((uint64_t)seg << 32); }

/* Picks how a pass over a step of n_tokens runs: replayed (checked against the graphs of its size),
 * captured, or direct (graphs off, too many tokens, given up, or a step asked again after its
 * recording failed). A pass asked again after some segments ran leaves their items out (skip) and
 * begins with the next segment. The stream is drained first: the staging area is rewritten below,
 * and the previous step's graphs may still be reading it (a step with no logits never
 * synchronises). */
void lc_cu_step_begin(lc_backend *be, int n_tokens) {
    lc_cuda *c = cu_of(be);
    cu_graph *g = &c->graph;
    lc_cu_flush(c); /* a launch held back before the step belongs to no recording */
    cu_mode forced = g->forced;
    g->forced = CU_DIRECT;
    g->mode = CU_DIRECT;
    g->broken = g->never = g->stop = g->capturing = false;
    if (!g->skip) g->captured = g->inst_new = g->inst_upd = false, g->skip_seg = 0;
    else g->stats.resumed++;
    g->T = n_tokens;
    g->item = 0;
    g->seg = g->skip_seg;
    g->seg_start = g->skip;
    g->sig = seg_seed(n_tokens, g->seg);
    g->stage_used = 0;
    if (!g->on || n_tokens < 1 || n_tokens > CU_GRAPH_MAX_TOK || g->off[n_tokens] || c->err || g->redo_direct) {
        g->redo_direct = false;
        g->stats.direct++;
        return;
    }
    if (CU(c, cudaStreamSynchronize(c->stream))) return;
    if (g->stage_cap < LC_MAX(g->stage_want, (size_t)STAGE_MIN)) {
        size_t cap = LC_MAX(g->stage_want, (size_t)STAGE_MIN);
        void *p = NULL;
        if (cudaMallocHost(&p, cap) != cudaSuccess) {
            cudaGetLastError();
            give_up(c, n_tokens, "no pinned host memory for the staging area");
            g->stats.direct++;
            return;
        }
        if (g->stage) cudaFreeHost(g->stage);
        g->stage = (uint8_t *)p;
        g->stage_cap = cap;
    }
    forget_uploads(c);
    g->t_begin = lc_time_us();
    if (g->t_launch) g->stats.after_us += g->t_begin - g->t_launch;
    g->t_launch = 0;
    if (forced != CU_CAPTURE && g->on == 1 && g->n_seg[n_tokens] && !g->capture_only[n_tokens]) {
        g->mode = CU_REPLAY;
        return;
    }
    g->mode = CU_CAPTURE; /* the capture begins at the pass's first item (lc_cu_graph_item) */
    g->captured = true;
}

/* Drops a failed recording: the error it left in c->err was the recording's, not the step's. */
static void drop(lc_cuda *c, cudaGraph_t gr) {
    if (gr) cudaGraphDestroy(gr);
    cudaGetLastError(); /* an invalidated capture leaves its error behind */
    c->err = LC_OK;
    forget_uploads(c);
}

/* Instantiates or updates the graph of segment k of size T from gr. false: no graph. */
static bool instantiate(lc_cuda *c, int T, int k, cudaGraph_t gr) {
    cu_graph *g = &c->graph;
    cudaGraphExec_t *x = &g->exec[T][k];
    if (*x) {
        cudaGraphExecUpdateResultInfo info;
        if (cudaGraphExecUpdate(*x, gr, &info) == cudaSuccess) {
            g->inst_upd = true;
            g->reinst[T] = 0;
            return true;
        }
        cudaGetLastError();
        cudaGraphExecDestroy(*x);
        *x = NULL;
        if (++g->reinst[T] >= MAX_REINST) give_up(c, T, "every step's graph had to be instantiated again");
    }
    cudaError_t e = cudaGraphInstantiate(x, gr, 0);
    if (e != cudaSuccess) {
        cudaGetLastError();
        *x = NULL;
        lc_log(LC_LOG_DEBUG, "CUDA graph: instantiation failed: %s", cudaGetErrorString(e));
        return false;
    }
    g->inst_new = true;
    return true;
}

/* Launches the graph of segment k of size T. false: it did not run (and is forgotten). */
static bool launch(lc_cuda *c, int T, int k) {
    cu_graph *g = &c->graph;
    cudaError_t e = cudaGraphLaunch(g->exec[T][k], c->stream);
    if (e != cudaSuccess) {
        cudaGetLastError();
        cudaGraphExecDestroy(g->exec[T][k]);
        g->exec[T][k] = NULL;
        g->n_seg[T] = 0;
        lc_log(LC_LOG_DEBUG, "CUDA graph: launch failed: %s", cudaGetErrorString(e));
        return false;
    }
    return true;
}

/* Ends the current segment of this pass: a replayed one is launched when it is the recorded
 * segment (last: the step's last), a captured one instantiated (or updated) and launched. false:
 * it could not run (g->stop set: the step is asked again from this segment). */
static bool seg_end(lc_cuda *c, bool last) {
    cu_graph *g = &c->graph;
    const int T = g->T, k = g->seg;
    if (g->mode == CU_REPLAY) {
        const bool same = g->exec[T][k] && g->sig == g->exec_sig[T][k] && (last ? k + 1 == g->n_seg[T] : k + 1 < g->n_seg[T]);
        if (!same || !launch(c, T, k)) {
            g->stop = true;
            return false;
        }
        return true;
    }
    cudaGraph_t gr = NULL;
    cudaError_t e = g->capturing ? cudaStreamEndCapture(c->stream, &gr) : cudaSuccess;
    g->capturing = false;
    if (e != cudaSuccess || !gr || g->broken || c->err) {
        drop(c, gr);
        g->stop = true;
        return false;
    }
    const bool ok = instantiate(c, T, k, gr);
    cudaGraphDestroy(gr);
    if (ok) g->exec_sig[T][k] = g->sig;
    if (!ok || !launch(c, T, k)) {
        drop(c, NULL);
        g->stop = true;
        return false;
    }
    if (last) g->n_seg[T] = k + 1;
    return true;
}

/* Begins capturing the current segment (a capture pass). false: the capture could not begin. */
static bool seg_capture(lc_cuda *c) {
    cu_graph *g = &c->graph;
    cudaError_t e = cudaStreamBeginCapture(c->stream, cudaStreamCaptureModeThreadLocal);
    if (e != cudaSuccess) {
        cudaGetLastError();
        give_up(c, g->T, cudaGetErrorString(e));
        g->stop = true;
        return false;
    }
    g->capturing = true;
    return true;
}

/* Items are counted alike in every mode (kernel launches, and host copies whether staged or direct):
 * a pass asked again after segments ran skips exactly the items they held. */
bool lc_cu_graph_item(lc_cuda *c) {
    cu_graph *g = &c->graph;
    const int i = g->item++;
    if (i < g->skip) return false; /* an earlier pass of this step ran it */
    if (g->mode == CU_DIRECT) return true;
    if (g->stop || g->broken) return false;
    if (g->mode == CU_CAPTURE && !g->capturing) {
        g->seg_start = i;
        return seg_capture(c);
    }
    const int len = g->seg == 0 && g->seg_first ? LC_MIN(g->seg_first, g->seg_items) : g->seg_items;
    if (g->seg_items && g->seg + 1 < CU_GRAPH_MAX_SEG && i - g->seg_start >= len) {
        if (!seg_end(c, false)) return false;
        g->seg++;
        g->seg_start = i;
        g->sig = seg_seed(g->T, g->seg);
        if (g->mode == CU_CAPTURE && !seg_capture(c)) return false;
    }
    return true;
}

/* The pass could not run the step from graphs: it must run again, recorded (forced) or directly,
 * from the segment that stopped (the segments before it ran). */
static lc_status ask_again(lc_cuda *c, bool capture, bool *redo) {
    cu_graph *g = &c->graph;
    int T = g->T;
    g->skip = g->seg_start;
    g->skip_seg = g->seg;
    g->item = 0;
    if (capture) {
        g->forced = CU_CAPTURE;
    } else {
        g->redo_direct = true;
        g->stats.redone++;
        if (g->never) give_up(c, T, "a step of this size needs an op that cannot be recorded");
        else if (++g->fails[T] >= MAX_FAILS) give_up(c, T, "its recording failed too often");
    }
    *redo = true;
    return LC_OK;
}

/* Counts a step that ran from graphs. */
static void step_done(cu_graph *g, int T) {
    g->stats.launched++;
    if (!g->captured) {
        g->stats.replayed++;
        g->t_launch = lc_time_us();
        g->stats.host_us += g->t_launch - g->t_begin;
    }
    if (g->inst_new) g->stats.instantiated++;
    else if (g->inst_upd) g->stats.updated++;
    g->fails[T] = 0;
    g->misses[T] = 0;
    g->skip = 0;
}

/* Ends a pass begun by lc_cu_step_begin. A replayed pass whose launches match the graphs of its
 * size has launched them; one that differs (new buffers, another attention split, longer block
 * tables) is asked again to be captured from the segment that differed. A captured pass updates
 * (or instantiates) the graphs of its size and has launched them. run false (the forward failed
 * elsewhere): nothing more runs. *redo: the step did not run whole and the forward must run again
 * (step_begin then picks the mode, and the segments that ran are left out). */
lc_status lc_cu_step_end(lc_backend *be, bool run, bool *redo) {
    lc_cuda *c = cu_of(be);
    cu_graph *g = &c->graph;
    lc_cu_flush(c); /* a held-back launch belongs to this step */
    cu_mode mode = g->mode;
    int T = g->T;
    *redo = false;
    if (mode == CU_DIRECT) {
        g->skip = 0;
        return c->err;
    }
    if (run && !g->stop && !g->broken && !c->err) seg_end(c, true); /* else a capture is dropped below */
    g->mode = CU_DIRECT;
    if (g->capturing) { /* a capture that stopped: its graph is dropped, and the pass did not run whole */
        cudaGraph_t gr = NULL;
        cudaStreamEndCapture(c->stream, &gr);
        g->capturing = false;
        g->stop = true;
        drop(c, gr);
    }
    if (!run) { /* the forward failed elsewhere: nothing more of the step may run */
        const bool broken = g->broken;
        drop(c, NULL);
        if (broken) return ask_again(c, false, redo); /* it failed because an op could not be recorded */
        g->skip = 0;
        return LC_OK;
    }
    if (g->stop || g->broken || c->err) {
        const bool broken = g->broken || c->err;
        drop(c, NULL);
        if (mode == CU_REPLAY && !broken) {
            g->stats.missed++;
            if (++g->misses[T] >= MAX_MISSES && !g->capture_only[T]) {
                /* something in the step changes every time: replaying only costs a pass */
                g->capture_only[T] = true;
                lc_log(LC_LOG_WARN, "CUDA graphs: steps of %d token(s) differ every time, captured from now on", T);
            }
        }
        return ask_again(c, mode == CU_REPLAY && !broken, redo);
    }
    step_done(g, T);
    return LC_OK;
}

void lc_cu_graph_free(lc_cuda *c) {
    cu_graph *g = &c->graph;
    const lc_cuda_graph_stats *st = &g->stats;
    if (st->launched || st->redone)
        lc_log(LC_LOG_INFO,
               "CUDA graphs: %lld steps from graphs (%lld replayed, %lld captured again), %lld instantiated, "
               "%lld updated, %lld steps redone, %lld direct; a replayed step: %.0f us on the host to its launch, "
               "%.0f us from there to the next step",
               (long long)st->launched, (long long)st->replayed, (long long)st->missed, (long long)st->instantiated,
               (long long)st->updated, (long long)st->redone, (long long)st->direct,
               st->replayed ? (double)st->host_us / (double)st->replayed : 0.0,
               st->replayed ? (double)st->after_us / (double)st->replayed : 0.0);
    if (g->capturing) {
        cudaGraph_t gr = NULL;
        if (cudaStreamEndCapture(c->stream, &gr) == cudaSuccess && gr) cudaGraphDestroy(gr);
        cudaGetLastError();
    }
    for (int t = 0; t <= CU_GRAPH_MAX_TOK; t++)
        for (int k = 0; k < CU_GRAPH_MAX_SEG; k++)
            if (g->exec[t][k]) cudaGraphExecDestroy(g->exec[t][k]);
    if (g->stage) cudaFreeHost(g->stage);
    memset(g, 0, sizeof *g);
}

extern "C" lc_status lc_backend_cuda_graph_stats(lc_backend *be, lc_cuda_graph_stats *out) {
    *out = cu_of(be)->graph.stats;
    return LC_OK;
}
