"""The fused kernel: ``run_fused`` advances K whole timesteps of a layer program in one nogil call.

``fused.FusedProgram`` builds the program (an int64 row of opcode, geometry and array indices
per layer, float32 and float64 parameter rows) over numba typed lists of the simulator's own
arrays; this module holds the program's column layout, which both sides read, and the loop that
executes it: per timestep, the input encoder, then each layer's synapses, neuron step and
recording, then the prediction. See ``fused.py`` for what is eligible and why the result is
bit-identical to the generic path.
"""

from __future__ import annotations


import numba
import numpy as np

from workbench.engine import synapses
from workbench.engine import flat_kernels as K
from workbench.engine.atomics import atomic_load, barrier
from workbench.engine.neurons.current import Current, SignedIF, current_emit, signed_if_step
from workbench.engine.neurons.if_neuron import IF
from workbench.engine.neurons.lif import LIF, lif_step, rate_invert
from workbench.engine.neurons.loihi_cuba import LoihiCUBA, cuba_step
from workbench.engine.neurons.loihi import LoihiLIF, LoihiReLU, loihi_relu_step
from workbench.engine.neurons.spiking import RegularSpiking, StochasticSpiking, regular_step, stochastic_step
from workbench.models import network as nw

# Largest chunk one call advances: Simulator.run checks should_stop / on_progress in between.
CHUNK = 256
# Below this many neuron updates (batch x neurons x steps) a call runs serially: handing blocks
# to the pool costs tens of microseconds (a single step() of a small net at batch 2).
PARALLEL_MIN_WORK = 200_000
# At batch 1, networks with at least this many neurons split each step over two threads (each
# layer's outputs divided, a barrier between layers, ~0.3 us each): the VGG-style benchmark
# net (~100,000), not LeNet-5 (~8,500) or the demo (~4,000), whose layers are too small.
SPLIT_MIN_WORK = 50_000
RAND_ELEMENTS = 1 << 20  # Poisson randoms drawn for one call at most (4 MB): Simulator.run splits
_NO_SYNC = np.zeros(2, np.int64)  # barrier counters for one-part calls (the barrier is a no-op)
_NO_STOP = np.zeros(1, np.int64)  # a stop flag nobody changes (token 0): calls that must run whole

OP_INPUT, OP_DENSE, OP_CONV, OP_DW, OP_AVG, OP_GAP, OP_MAX, OP_COPY, OP_PAD, OP_ADD, OP_CAT = range(11)
_OPS = {nw.INPUT: OP_INPUT, nw.DENSE: OP_DENSE, nw.CONV2D: OP_CONV, nw.DEPTHWISE_CONV2D: OP_DW,
        nw.AVG_POOL2D: OP_AVG, nw.GLOBAL_AVG_POOL2D: OP_GAP, nw.MAX_POOL2D: OP_MAX, nw.FLATTEN: OP_COPY,
        nw.RESHAPE: OP_COPY, nw.ZERO_PAD2D: OP_PAD, nw.ADD: OP_ADD, nw.ACTIVATION: OP_ADD,
        nw.CONCATENATE: OP_CAT}

# int64 program columns
(C_OP, C_Y, C_IN0, C_NIN, C_NEURON, C_J, C_S, C_V, C_CNT, C_W, C_B, C_CONST, C_CACHE, C_VALID, C_RESET,
 C_IH, C_IW, C_IC, C_OH, C_OW, C_OC, C_KH, C_KW, C_SH, C_SW, C_PT, C_PL, C_RS, C_RM, C_RJ, C_PC,
 C_OUTER, C_SIZE, C_WT, C_MODEL, C_V2, C_SPLIT, C_ROFF,
 C_U, C_RF, C_LB, C_DU, C_DV, C_VTH, C_MBIAS, C_REFRAC, C_UNIT) = range(47)
C_BURST = 47  # IF's and SignedIF's spikes per step at most (1: plain IF; >= 2: ``if_burst_emit``)
C_POOL = 48  # max pooling: 0 by spike count, 1 lateral inhibition (``K.max_pool_li``)
C_SYN = 49  # the synaptic filter's state (f32 list; -1: no filter), ``synapses.lowpass`` with F_SYN_A/B
C_RS8 = 50  # 1: the spike ring at C_RS holds int8 counts (written through an int8 view of its int16 array)
C_INV = 51  # a fitted LIF's inverse rate table (f32 list; -1: none), ``lif.rate_invert``
NCOL = 52
# how a layer's work divides between the threads of a split batch-1 step (``run_fused`` nparts > 1)
SPLIT_WHOLE, SPLIT_ROWS, SPLIT_FLAT = 0, 1, 2
# C_MODEL. Every model but IF keeps float64 state: C_V its membrane variable (the voltage;
# StochasticSpiking's rate), C_V2 a second array (LIF's refractory time, RegularSpiking's rate);
# C_RESET holds IF's reset mode or the rate function; C_ROFF a stochastic layer's first column
# in the chunk's float64 randoms. LoihiCUBA keeps int32 state instead (in the i32 list: C_V its
# voltage, C_U its current, C_RF its refractory counters; C_LB its int64 neuron bias in the i64
# list) and its integer constants in C_DU .. C_UNIT.
# Current (non-spiking, float32 v in the f32 list: C_V; records no spikes) and SignedIF (float32 v and net in the f32
# list: C_V, C_V2; C_RESET 1 for reset to zero, C_DU 1 for negative='after_positive', C_BURST its burst).
(MODEL_IF, MODEL_LIF, MODEL_LOIHI_LIF, MODEL_LOIHI_RELU, MODEL_REGULAR, MODEL_STOCHASTIC, MODEL_CUBA,
 MODEL_CURRENT, MODEL_SIGNED_IF) = range(9)
_MODELS = (IF, LIF, LoihiLIF, LoihiReLU, RegularSpiking, StochasticSpiking, LoihiCUBA, Current, SignedIF)
# float32 parameter columns
F_DT, F_THR, F_GAIN, F_OUT, F_SCALE, F_OFFSET, F_SYN_A, F_SYN_B = range(8)
NFCOL = 8
# float64 parameter columns (the float64 models' steps take dt and their constants as Python floats)
P_DT, P_TAU_RC, P_TAU_REF, P_MINV, P_GAIN, P_IN_SCALE = range(6)


@numba.njit(nogil=True, cache=True, inline="always")
def _span(row, b0, b1, part, nparts):
    """(lo, hi, r0, r1): the flat range of a layer's outputs this part computes, and its output
    rows (r0, r1: all rows when the layer is not split by rows)."""
    size, oh = row[C_SIZE], row[C_OH]
    if nparts == 1:
        return b0 * size, b1 * size, 0, oh
    split = row[C_SPLIT]
    if split == SPLIT_ROWS:
        r0, r1 = oh * part // nparts, oh * (part + 1) // nparts
        per = size // oh
        return r0 * per, r1 * per, r0, r1
    if split == SPLIT_FLAT:
        return size * part // nparts, size * (part + 1) // nparts, 0, oh
    if part == 0:
        return 0, size, 0, oh
    return 0, 0, 0, 0


@numba.njit(nogil=True, cache=True)
def run_fused(prog, fp, fp64, inb, insc, f32, f64, i16, i32, i64, x_idx, p_idx, encoder, rand, rsto, B, nsteps, t0, count0,
              capacity, steps_ring, pred_ring, pred, stop, token, b0, b1, part, nparts, sync):
    """Advance samples [b0, b1) of the batch by ``nsteps`` timesteps. Every sample's arithmetic
    is independent of the others', so disjoint sample ranges may run at once on different
    threads: the kernel writes only its samples' slices (and the step ring when b0 == 0) and
    never writes ``prog`` (the constant-current flags are copied; the caller sets them).

    ``nparts`` > 1 (batch 1 only): ``nparts`` threads run this same call with ``part`` 0, 1, ..
    and share ``sync`` (two int64 zeros). Each layer's outputs are divided between them
    (``_span``: output rows of stride-1 convs and tiled pooling, output columns of dense
    layers, ranges of element-wise layers; other layers whole by part 0); they meet at a
    barrier before each layer and before the prediction, which part 0 makes. Every output
    element is still computed by one thread in the serial order: the same results.

    Returns the steps that ran: ``nsteps``, or fewer when a one-part call sees ``stop[0]`` (read
    atomically before each step) no longer equal to ``token`` (``stop_flag``: a pause asked for
    from another thread while this call holds no GIL)."""
    L = prog.shape[0]
    acc = np.empty(4096, np.float64)
    idx = np.empty(256, np.int64)
    valid = np.empty(L, np.int64)
    for li in range(L):
        valid[li] = prog[li, C_VALID]
    for k in range(nsteps):
        if nparts == 1 and atomic_load(stop, 0) != token:
            return k  # stop requested from another thread (a pause): k steps ran
        for li in range(L):
            row = prog[li]
            op = row[C_OP]
            y = f32[row[C_Y]]
            if li > 0:
                barrier(sync, nparts)  # every part's share of the layers before is done
            lo, hi, r0, r1 = _span(row, b0, b1, part, nparts)
            if nparts > 1 and hi <= lo:
                continue  # nothing of this layer for this part
            if op == OP_INPUT:
                x = f32[x_idx]
                if encoder == 0:
                    y[lo:hi] = x[lo:hi]
                else:
                    p = f32[p_idx]
                    u = rand[k]
                    yb, ub, pb = y[lo:hi], u[lo:hi], p[lo:hi]  # views from 0: see _if_emit
                    for i in range(hi - lo):
                        yb[i] = 1.0 if ub[i] < pb[i] else 0.0
                continue
            x = f32[prog[inb[row[C_IN0]], C_Y]]
            if row[C_NEURON] == 0:
                if op == OP_COPY:
                    y[lo:hi] = x[lo:hi]
                elif op == OP_PAD:
                    y[lo:hi] = 0.0
                    ih, iw, c = row[C_IH], row[C_IW], row[C_IC]
                    oh, ow = row[C_OH], row[C_OW]
                    t, l = row[C_PT], row[C_PL]
                    for bi in range(b0, b1):
                        for iy in range(ih):
                            s0 = ((bi * ih + iy) * iw) * c
                            d0 = ((bi * oh + iy + t) * ow + l) * c
                            for i in range(iw * c):
                                y[d0 + i] = x[s0 + i]
                elif op == OP_CAT:
                    outer = row[C_OUTER]
                    d = lo
                    for bi in range(b0, b1):
                        for o in range(outer):
                            for j in range(row[C_NIN]):
                                src = prog[inb[row[C_IN0] + j]]
                                xs = f32[src[C_Y]]
                                chunk = src[C_SIZE] // outer
                                s0 = bi * src[C_SIZE] + o * chunk
                                for i in range(chunk):
                                    y[d + i] = xs[s0 + i]
                                d += chunk
                elif row[C_POOL] == 1:  # OP_MAX by lateral inhibition (whole layer: SPLIT_WHOLE)
                    K.max_pool_li(x, f64[row[C_PC]], b0, b1, row[C_IH], row[C_IW], row[C_IC], row[C_OH],
                                  row[C_OW], row[C_KH], row[C_KW], row[C_SH], row[C_SW], row[C_PT], row[C_PL], y)
                else:  # OP_MAX
                    K.max_pool(x, f64[row[C_PC]], b0, b1, row[C_IH], row[C_IW], row[C_IC], row[C_OH], row[C_OW],
                               row[C_KH], row[C_KW], row[C_SH], row[C_SW], row[C_PT], row[C_PL], y, r0, r1)
                continue
            # ---- neuron layer: current, then IF and emit
            J = f32[row[C_J]]
            if idx.size < row[C_IC]:  # scratch for the kernels' lists of non-zero inputs
                idx = np.empty(row[C_IC], np.int64)
            if row[C_CONST] == 1 and valid[li] == 1:
                if k == 0:  # later steps of this call: J still holds the cached current
                    J[lo:hi] = f32[row[C_CACHE]][lo:hi]
            else:
                if op == OP_DENSE:
                    o0, o1 = (lo, hi) if nparts > 1 else (0, row[C_OC])
                    K.dense(x, f32[row[C_W]], f32[row[C_B]], b0, b1, row[C_IC], row[C_OC], J, idx, o0, o1)
                elif op == OP_CONV and row[C_WT] >= 0:
                    K.conv_s1(x, f32[row[C_WT]], f32[row[C_B]], b0, b1, row[C_IH], row[C_IW], row[C_IC], row[C_OH],
                              row[C_OW], row[C_OC], row[C_KH], row[C_KW], row[C_PT], row[C_PL], J, idx, r0, r1)
                elif op == OP_CONV:
                    K.conv(x, f32[row[C_W]], f32[row[C_B]], b0, b1, row[C_IH], row[C_IW], row[C_IC], row[C_OH],
                          row[C_OW], row[C_OC], row[C_KH], row[C_KW], row[C_SH], row[C_SW], row[C_PT], row[C_PL], J, 0, row[C_OC])
                elif op == OP_DW:
                    K.depthwise(x, f32[row[C_W]], f32[row[C_B]], b0, b1, row[C_IH], row[C_IW], row[C_IC], row[C_OH],
                               row[C_OW], row[C_OC], row[C_KH], row[C_KW], row[C_SH], row[C_SW], row[C_PT],
                               row[C_PL], row[C_OUTER], J)
                elif op == OP_AVG:
                    c = row[C_IC]
                    ph, pw, oh, ow = row[C_KH], row[C_KW], row[C_OH], row[C_OW]
                    if acc.size < ow * c:
                        acc = np.empty(ow * c, np.float64)
                    if K.windows_tile(row[C_IH], row[C_IW], oh, ow, ph, pw, row[C_SH], row[C_SW], row[C_PT],
                                      row[C_PL]):
                        K.avg_pool_tiled(x, b0, b1, row[C_IH], row[C_IW], c, oh, ow, ph, pw, fp[li, F_SCALE], J,
                                         acc[:ow * c], r0, r1)
                    else:
                        K.avg_pool(x, b0, b1, row[C_IH], row[C_IW], c, row[C_OH], row[C_OW], row[C_KH], row[C_KW],
                                  row[C_SH], row[C_SW], row[C_PT], row[C_PL], fp[li, F_SCALE], J, acc[:c])
                elif op == OP_GAP:
                    K.global_avg(x, b0, b1, row[C_IH] * row[C_IW], row[C_IC], fp[li, F_SCALE], J)
                else:  # OP_ADD: sum of scale_i * y_i in float32, in inbound order
                    s0 = insc[row[C_IN0]]
                    Jb, xb = J[lo:hi], x[lo:hi]
                    for i in range(hi - lo):
                        Jb[i] = xb[i] * s0
                    for j in range(1, row[C_NIN]):
                        xj = f32[prog[inb[row[C_IN0] + j], C_Y]][lo:hi]
                        sj = insc[row[C_IN0] + j]
                        for i in range(hi - lo):
                            Jb[i] += xj[i] * sj
                if row[C_SYN] >= 0:  # the synaptic low-pass, as layer_state.advance runs it
                    synapses.lowpass(J[lo:hi], f32[row[C_SYN]][lo:hi], fp[li, F_SYN_A], fp[li, F_SYN_B])
                if row[C_INV] >= 0:  # a fitted LIF under constant current, as layer_state.advance
                    rate_invert(J[lo:hi], f32[row[C_INV]])
                gain = fp[li, F_GAIN]
                if gain != 1.0:
                    Jb = J[lo:hi]
                    for i in range(hi - lo):
                        Jb[i] *= gain
                off = fp[li, F_OFFSET]
                if off != 0.0:
                    Jb = J[lo:hi]
                    for i in range(hi - lo):
                        Jb[i] += off
                if row[C_CONST] == 1:
                    f32[row[C_CACHE]][lo:hi] = J[lo:hi]
                    valid[li] = 1
            model = row[C_MODEL]
            if model == MODEL_CUBA:
                s = f32[row[C_S]][lo:hi]
                cuba_step(J[lo:hi], fp64[li, P_IN_SCALE], row[C_UNIT], row[C_DU], row[C_DV], row[C_VTH], row[C_MBIAS],
                          i64[row[C_LB]][lo:hi], row[C_REFRAC], i32[row[C_U]][lo:hi], i32[row[C_V]][lo:hi],
                          i32[row[C_RF]][lo:hi], s)
                synapses.emit(s, fp[li, F_OUT], y[lo:hi], f64[row[C_CNT]][lo:hi])
            elif model == MODEL_SIGNED_IF:
                s = f32[row[C_S]][lo:hi]
                signed_if_step(J[lo:hi], fp64[li, P_DT], fp[li, F_THR], row[C_RESET], row[C_DU], row[C_BURST],
                               f32[row[C_V]][lo:hi], f32[row[C_V2]][lo:hi], s)
                synapses.emit(s, fp[li, F_OUT], y[lo:hi], f64[row[C_CNT]][lo:hi])
            elif model == MODEL_CURRENT:
                current_emit(J[lo:hi], fp64[li, P_DT], fp[li, F_OUT], f32[row[C_V]][lo:hi], f32[row[C_S]][lo:hi],
                             y[lo:hi], f64[row[C_CNT]][lo:hi])
            elif model != MODEL_IF:
                s, v, dt = f32[row[C_S]][lo:hi], f64[row[C_V]][lo:hi], fp64[li, P_DT]
                if model == MODEL_LIF or model == MODEL_LOIHI_LIF:
                    lif_step(J[lo:hi], dt, fp64[li, P_TAU_RC], fp64[li, P_TAU_REF], fp64[li, P_MINV],
                             model == MODEL_LIF, v, f64[row[C_V2]][lo:hi], s, row[C_RESET] == 1)
                elif model == MODEL_LOIHI_RELU:
                    loihi_relu_step(J[lo:hi], dt, v, s)
                elif model == MODEL_STOCHASTIC:
                    off = row[C_ROFF]
                    stochastic_step(row[C_RESET], J[lo:hi], dt, fp64[li, P_GAIN], fp64[li, P_TAU_REF],
                                    fp64[li, P_TAU_RC], rsto[k, off + lo:off + hi], v, s)
                else:
                    regular_step(row[C_RESET], J[lo:hi], dt, fp64[li, P_GAIN], fp64[li, P_TAU_REF],
                                 fp64[li, P_TAU_RC], v, f64[row[C_V2]][lo:hi], s)
                synapses.emit(s, fp[li, F_OUT], y[lo:hi], f64[row[C_CNT]][lo:hi])
            elif row[C_BURST] > 1:
                K.if_burst_emit(J[lo:hi], fp[li, F_DT], fp[li, F_THR], row[C_RESET], row[C_BURST],
                                f32[row[C_V]][lo:hi], f32[row[C_S]][lo:hi], fp[li, F_OUT], y[lo:hi],
                                f64[row[C_CNT]][lo:hi])
            else:
                K.if_emit(J[lo:hi], fp[li, F_DT], fp[li, F_THR], row[C_RESET], f32[row[C_V]][lo:hi],
                         f32[row[C_S]][lo:hi], fp[li, F_OUT], y[lo:hi], f64[row[C_CNT]][lo:hi])
        # ---- end of the timestep: prediction, then the recorder's row
        barrier(sync, nparts)
        last = prog[L - 1]
        n_out = last[C_SIZE]
        for bi in range(b0, b1 if part == 0 else b0):
            best = 0
            nonzero = False
            for j in range(n_out):
                if last[C_NEURON] == 1:
                    cb = f64[last[C_CNT]][bi * n_out + best]
                    c = f64[last[C_CNT]][bi * n_out + j]
                else:
                    cb = np.float64(f32[last[C_Y]][bi * n_out + best])
                    c = np.float64(f32[last[C_Y]][bi * n_out + j])
                if c != 0:
                    nonzero = True
                if c > cb:
                    best = j
            pred[bi] = best if nonzero else -1
        r = (count0 + k) % capacity
        if b0 == 0 and part == 0:
            steps_ring[r] = t0 + k + 1
        for bi in range(b0, b1 if part == 0 else b0):
            pred_ring[r, bi] = pred[bi]
        for li in range(L):
            row = prog[li]
            if row[C_RS] < 0:
                continue
            n = f32[row[C_S]].size
            lo, hi, r0, r1 = _span(row, b0, b1, part, nparts)  # the share this part computed
            s = f32[row[C_S]][lo:hi]
            if row[C_MODEL] != MODEL_CURRENT and row[C_RS8]:  # a non-spiking layer records no spikes
                rs8 = i16[row[C_RS]].view(np.int8)[r * n + lo:r * n + hi]  # views from 0: the copies vectorize
                for i in range(hi - lo):
                    rs8[i] = np.int8(s[i])
            elif row[C_MODEL] != MODEL_CURRENT:
                rs = i16[row[C_RS]][r * n + lo:r * n + hi]
                for i in range(hi - lo):
                    rs[i] = np.int16(s[i])
            if row[C_RM] >= 0 and row[C_MODEL] == MODEL_CUBA:  # int32 state into the float32 ring
                rm, vi = f32[row[C_RM]][r * n + lo:r * n + hi], i32[row[C_V]][lo:hi]
                for i in range(hi - lo):
                    rm[i] = np.float32(vi[i])
            elif (row[C_RM] >= 0 and row[C_MODEL] != MODEL_IF and row[C_MODEL] != MODEL_SIGNED_IF
                  and row[C_MODEL] != MODEL_CURRENT):  # float64 state into the float32 ring
                rm, vm = f32[row[C_RM]][r * n + lo:r * n + hi], f64[row[C_V]][lo:hi]
                for i in range(hi - lo):
                    rm[i] = np.float32(vm[i])
            elif row[C_RM] >= 0:
                f32[row[C_RM]][r * n + lo:r * n + hi] = f32[row[C_V]][lo:hi]
            if row[C_RJ] >= 0:
                f32[row[C_RJ]][r * n + lo:r * n + hi] = f32[row[C_J]][lo:hi]
    return nsteps


def _fused_block(*args):
    """``run_fused`` on one block of ``block_pool.run_blocks``: (b0, b1) the samples; the
    channel range (c0, c1) it appends is dropped (blocks are over samples only)."""
    run_fused(*args[:-2], 0, 1, _NO_SYNC)


