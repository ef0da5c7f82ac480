"""Fused fast path: K whole timesteps in ONE numba call (``nogil``), for the common case.

The generic step (``layer_state.advance``) costs a few microseconds of Python per layer; for a
small network at batch 1 that is most of a timestep. Here the network is compiled once into a
*layer program* (an int64 row of opcode and geometry per layer, a float32 row of parameters)
over numba typed lists of the simulator's own flat arrays — every layer's ``y``, ``J``,
``spikes``, membrane and ``counts``, the weights, and the Recorder's ring buffers — and
``run_fused`` advances K timesteps without returning to Python, recording each step into the
rings and writing the prediction. Nothing is copied back: the LayerState arrays are the
program's arrays, so after a fused chunk they hold exactly what the generic path would hold and
``step_layer()``, snapshots and statistics go on from there.

Eligible (``reason(sim)`` is None): every neuron layer runs the IF model (any threshold, reset
mode, ``rate_scale``), Nengo's LIF or nengo-loihi's LoihiLIF (``lif_step`` on their float64
state), LoihiReLU (``loihi_relu_step``), RegularSpiking (``regular_step``) or StochasticSpiking
(``stochastic_step``) or Lava's integer LoihiCUBA (``cuba_step`` on its int32 u, v and
refractory counters, with the quantized weights ``prepare_layer`` put in the LayerState): each
the same numba step the generic path calls, on the same arrays;
the encoder is constant or poisson, and every layer is one of input,
dense, conv2d, depthwise_conv2d, avg_pool2d, global_avg_pool2d (more than one channel),
max_pool2d, flatten, reshape, zero_pad2d, add, concatenate, activation. Anything else runs the
generic path. Bit-identity with the generic serial event path: the layer kernels are
``flat_kernels``, which the generic serial path runs too (dense, stride-1 conv, pooling), with
the summation order of the plain scatter (inputs in row-major order, zero inputs skipped, bias
first; IF and emit as ``if_step`` and ``synapses.emit``); the generic block-parallel kernels are
the plain scatter itself and are compared with them bit for bit. The generic path may pick BLAS
for dense inputs, whose sums can differ in the last bit on non-dyadic weights; the fused path
is always event-driven.
Poisson input and StochasticSpiking: the uniform randoms of a chunk are drawn in numpy from the
simulator's generator before the call, in the generic path's order (per step: the input's
float32 values, then each stochastic layer's float64 values in layer order; one (K, ...) draw
when only one kind is drawn, which is the same stream), so the streams are identical.

Parallel: ``run_fused`` advances a sample range [b0, b1); at batch >= 2 ``FusedProgram.run``
hands sample blocks to ``block_pool.run_blocks`` (the event-par pool and its back-off: serial
when ``threads()`` is 1) when the call is large enough (``PARALLEL_MIN_WORK``). Blocks write
disjoint slices (states, recorder rings, predictions); the step ring is written by the block
holding sample 0 and the constant-current flags by the caller after the call, so the result is
bit-identical to one serial call.
"""

from __future__ import annotations

import os

import numba
import numpy as np
from numba.typed import List

from workbench.engine import block_pool, synapses
from workbench.engine import flat_kernels as K
from workbench.engine.atomics import atomic_load, barrier
from workbench.engine.layer_state import _pool_geometry
from workbench.engine.neurons.if_neuron import _RESET_CODE, IF
from workbench.engine.neurons.lif import LIF, lif_step
from workbench.engine.neurons.loihi_cuba import LoihiCUBA, cuba_step
from workbench.engine.neurons.loihi import LoihiLIF, LoihiReLU, discretize_tau_rc, discretize_tau_ref, loihi_relu_step
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
NCOL = 47
# how a layer's work divides between the threads of a split batch-1 step (``run_fused`` nparts > 1)
SPLIT_WHOLE, SPLIT_ROWS, SPLIT_FLAT = 0, 1, 2
# C_MODEL. Every model but IF keeps float64 state: C_V its membrane variable (the voltage;
# StochasticSpiking's rate), C_V2 a second array (LIF's refractory time, RegularSpiking's rate);
# C_RESET holds IF's reset mode or the rate function; C_ROFF a stochastic layer's first column
# in the chunk's float64 randoms. LoihiCUBA keeps int32 state instead (in the i32 list: C_V its
# voltage, C_U its current, C_RF its refractory counters; C_LB its int64 neuron bias in the i64
# list) and its integer constants in C_DU .. C_UNIT.
MODEL_IF, MODEL_LIF, MODEL_LOIHI_LIF, MODEL_LOIHI_RELU, MODEL_REGULAR, MODEL_STOCHASTIC, MODEL_CUBA = range(7)
_MODELS = (IF, LIF, LoihiLIF, LoihiReLU, RegularSpiking, StochasticSpiking, LoihiCUBA)
# float32 parameter columns
F_DT, F_THR, F_GAIN, F_OUT, F_SCALE = range(5)
NFCOL = 5
# float64 parameter columns (the float64 models' steps take dt and their constants as Python floats)
P_DT, P_TAU_RC, P_TAU_REF, P_MINV, P_GAIN, P_IN_SCALE = range(6)


def enabled_by_env() -> bool:
    """SNN_WORKBENCH_FUSED=0 turns the fused path off for every new Simulator."""
    return os.environ.get("SNN_WORKBENCH_FUSED", "1").strip().lower() not in ("0", "false", "no", "off")


def _plain_scale(s) -> bool:
    # numpy treats Python numbers as 'weak' (the float32 arithmetic the kernels do); a float64
    # numpy scalar would make the generic path compute in float64
    return type(s) in (int, float, np.float32)


def reason(sim) -> str | None:
    """Why ``sim`` cannot use the fused path, or None when it can."""
    if sim.config.encoder not in ("constant", "poisson"):
        return f"encoder {sim.config.encoder}"
    for ls in sim.layers:
        layer = ls.layer
        if layer.kind not in _OPS:
            return f"layer {layer.name}: kind {layer.kind}"
        if ls.index == 0 and layer.kind != nw.INPUT:
            return "the first layer is not the input"
        if ls.model is not None and type(ls.model) not in _MODELS:
            return f"layer {layer.name}: neuron model {ls.model.name}"
        if layer.kind in (nw.ADD, nw.ACTIVATION, nw.GLOBAL_AVG_POOL2D):
            scales = layer.config.get("input_scales") or [1.0] * len(ls.inbound)
            if not all(_plain_scale(s) for s in scales) or len(scales) < len(ls.inbound):
                return f"layer {layer.name}: input scales"
        if layer.kind == nw.GLOBAL_AVG_POOL2D and sim.layers[ls.inbound[0]].shape[-1] < 2:
            return f"layer {layer.name}: one channel (numpy sums it pairwise)"
        if layer.kind == nw.CONCATENATE and int(layer.config["axis"]) < 0:
            return f"layer {layer.name}: negative axis"
        if ls.weights is not None and (ls.weights.dtype != np.float32 or ls.bias.dtype != np.float32):
            return f"layer {layer.name}: weights not float32"
    return None


@numba.njit(cache=True)
def _list_of(a):
    lst = List()
    lst.append(a)
    return lst


@numba.njit(cache=True)
def _list_append(lst, a):
    lst.append(a)


def _typed_list(arrays: list) -> List:
    """A numba typed list of ``arrays`` (one dtype, 1-D, C order), built by cached njit
    functions: ``List()`` and ``append`` called from Python compile numba's list methods in
    every new process (~0.4 s per element type, most of the cold start)."""
    lst = _list_of(arrays[0])
    for a in arrays[1:]:
        _list_append(lst, a)
    return lst


class FusedProgram:
    """The layer program of one Simulator, over its arrays (built once; the arrays are never
    reallocated). ``run(sim, k)`` advances k timesteps from cursor 0."""

    def __init__(self, sim):
        self.recorder = sim.recorder
        B = sim.batch
        f32, f64, i16, i32, i64 = [], [], [], [], []  # typed lists at the end (``_typed_list``)
        lists = {"f32": f32, "f64": f64, "i32": i32, "i64": i64}

        def add(lst, arr):
            arr = np.ascontiguousarray(arr).reshape(-1)
            if not arr.flags.writeable:  # a typed list holds one array type: all writable
                arr = arr.copy()
            lst.append(arr)
            return len(lst) - 1

        prog = np.full((len(sim.layers), NCOL), -1, np.int64)
        fp = np.zeros((len(sim.layers), NFCOL), np.float32)
        fp64 = np.zeros((len(sim.layers), 6), np.float64)
        inb, insc = [], []
        sto_size = 0  # float64 randoms a step draws for StochasticSpiking layers
        self.const_cache = {}  # layer index -> (cache array)
        self.pool_counts = {}  # layer index -> array
        recorded = {ls.index for ls in sim.recorder.layers}
        self.x_buf = np.zeros(sim.x.size, np.float32)  # the input (copied in at every run)
        self.x_idx = add(f32, self.x_buf)
        self.p_buf = np.zeros(sim.x.size, np.float32)  # poisson: clip(x, 0, 1)
        self.p_idx = add(f32, self.p_buf)
        for ls in sim.layers:
            layer, row = ls.layer, prog[ls.index]
            row[C_OP] = _OPS[layer.kind]
            row[C_Y] = add(f32, ls.y)
            row[C_SIZE] = layer.size
            row[C_IN0] = len(inb)
            row[C_NIN] = len(ls.inbound)
            scales = layer.config.get("input_scales") or [1.0] * len(ls.inbound)
            for j, i in enumerate(ls.inbound):
                inb.append(i)
                insc.append(np.float32(scales[j]) if j < len(scales) else np.float32(1.0))
            in_shape = sim.layers[ls.inbound[0]].shape if ls.inbound else ls.shape
            if len(in_shape) == 4:
                row[C_IH], row[C_IW], row[C_IC] = in_shape[1:]
            if len(ls.shape) == 4:
                row[C_OH], row[C_OW], row[C_OC] = ls.shape[1:]
            row[C_NEURON] = int(ls.model is not None)
            if ls.model is not None:
                row[C_J] = add(f32, ls.J)
                row[C_S] = add(f32, ls.spikes)
                row[C_CNT] = add(f64, ls.counts)
                sto_size = _model_columns(ls, row, fp, fp64, lambda name, arr: add(lists[name], arr), sto_size, B)
                fp[ls.index, F_GAIN] = ls.gain
                fp[ls.index, F_OUT] = ls.out_scale
                row[C_CONST] = int(sim._constant_flags[ls.index])
                if row[C_CONST]:
                    cache = np.zeros(ls.shape, np.float32)
                    self.const_cache[ls.index] = cache
                    row[C_CACHE] = add(f32, cache)
                    row[C_VALID] = 0
                if ls.index in recorded:
                    name = layer.name
                    arrs = sim.recorder.arrays(name)
                    row[C_RS] = len(i16)
                    i16.append(arrs["spikes"].reshape(-1))
                    if "membrane" in arrs:
                        row[C_RM] = add(f32, arrs["membrane"])
                    if "current" in arrs:
                        row[C_RJ] = add(f32, arrs["current"])
            if ls.weights is not None:
                row[C_W] = add(f32, ls.weights)
                row[C_B] = add(f32, ls.bias)
                if layer.kind in (nw.CONV2D, nw.DEPTHWISE_CONV2D):
                    kh, kw = ls.weights.shape[:2]
                    sh, sw = layer.config["strides"]
                    pt, pl = synapses.padding_for(layer.config["padding"], in_shape[1:3], (kh, kw), (sh, sw))
                    row[C_KH], row[C_KW], row[C_SH], row[C_SW], row[C_PT], row[C_PL] = kh, kw, sh, sw, pt, pl
                    if layer.kind == nw.CONV2D and sh == 1 and sw == 1:
                        row[C_WT] = add(f32, K.stride1_weights(ls.weights))
                    if layer.kind == nw.DEPTHWISE_CONV2D:
                        row[C_OUTER] = ls.weights.shape[3]  # depth multiplier
                else:
                    row[C_IC] = ls.weights.shape[0]
                    row[C_OC] = ls.weights.shape[1]
            if layer.kind in (nw.AVG_POOL2D, nw.MAX_POOL2D):
                ph, pw, sh, sw, pt, pl = _pool_geometry(layer, in_shape)
                row[C_KH], row[C_KW], row[C_SH], row[C_SW], row[C_PT], row[C_PL] = ph, pw, sh, sw, pt, pl
            if layer.kind in (nw.AVG_POOL2D, nw.GLOBAL_AVG_POOL2D):
                fp[ls.index, F_SCALE] = np.float32(layer.config.get("input_scales", [1.0])[0])
            if layer.kind == nw.MAX_POOL2D:
                counts = np.zeros(in_shape, np.float64)
                self.pool_counts[ls.index] = counts
                row[C_PC] = add(f64, counts)
            if layer.kind == nw.ZERO_PAD2D:
                (t, _b), (l, _r) = layer.config["padding"]
                row[C_PT], row[C_PL] = t, l
            if layer.kind == nw.CONCATENATE:
                axis = int(layer.config["axis"])
                row[C_OUTER] = int(np.prod(layer.output_shape[:axis], dtype=np.int64))
        for row in prog:
            row[C_SPLIT] = _split_kind(row)
        if len(i16) == 0:
            i16.append(np.zeros(1, np.int16))  # typed lists need one element to have a type
        if len(f64) == 0:
            f64.append(np.zeros(1, np.float64))
        if len(i32) == 0:
            i32.append(np.zeros(1, np.int32))
        if len(i64) == 0:
            i64.append(np.zeros(1, np.int64))
        self.prog, self.fp, self.fp64 = prog, fp, fp64
        self.inb = np.asarray(inb + [0], np.int64)
        self.insc = np.asarray(insc + [1.0], np.float32)
        self.f32, self.f64, self.i16 = _typed_list(f32), _typed_list(f64), _typed_list(i16)
        self.i32, self.i64 = _typed_list(i32), _typed_list(i64)
        self.batch = B
        self.encoder = 0 if sim.config.encoder == "constant" else 1
        self.pred = np.empty(B, np.int64)
        self.no_rand = np.zeros((1, 1), np.float32)
        self.sto_size = sto_size
        self.no_sto = np.zeros((1, 1), np.float64)
        # One call's uniform randoms are (steps, batch x inputs) float32 and (steps, sto_size)
        # float64, at most RAND_ELEMENTS a call (a long chunk of a big input would allocate
        # hundreds of MB).
        per_step = (sim.x.size if self.encoder == 1 else 0) + sto_size
        self.max_steps = max(1, RAND_ELEMENTS // per_step) if per_step else 1 << 62
        self.sync = np.zeros(2, np.int64)  # the barrier's counters of a split step (back to 0 count after each)
        self.work = B * sum(ls.layer.size for ls in sim.layers)  # neuron updates a step, roughly
        self.blocks = 0  # sample blocks of the last run (1: serial)
        self.parts = 0  # threads that shared each step of the last run (batch 1; 1: serial)

    def _draw(self, sim, k: int):
        """(input float32 randoms, StochasticSpiking float64 randoms) of ``k`` steps, drawn from
        the simulator's generator in the generic path's order."""
        rng, shape = sim.rng, sim.x.shape
        if self.sto_size == 0:
            if self.encoder == 0:
                return self.no_rand, self.no_sto
            return rng.random((k, *shape), dtype=np.float32).reshape(k, sim.x.size), self.no_sto
        if self.encoder == 0:
            return self.no_rand, rng.random((k, self.sto_size))
        rand = np.empty((k, sim.x.size), np.float32)  # both kinds: interleaved step by step
        sto = np.empty((k, self.sto_size))
        for i in range(k):
            rand[i] = rng.random(shape, dtype=np.float32).reshape(-1)
            sto[i] = rng.random(self.sto_size)
        return rand, sto

    def run(self, sim, k: int, stop=None) -> int:
        """Advance ``k`` timesteps (cursor must be 0); returns how many ran: fewer when ``stop``
        (a ``stop_flag.StopWhenChanged``) changed during the call. Only a single serial call
        stops early; sample blocks and split parts, which must stay in step, run all ``k``."""
        x = sim.x.reshape(-1)
        if self.encoder == 0:
            np.copyto(self.x_buf, x)
        else:
            np.clip(x, 0.0, 1.0, out=self.p_buf)
        prog = self.prog
        for i, cache in self.const_cache.items():
            cur = sim.layers[i].const_current
            if cur is None:
                prog[i, C_VALID] = 0
            else:
                if cur is not cache:
                    np.copyto(cache, cur)
                prog[i, C_VALID] = 1
        for i, counts in self.pool_counts.items():
            ls = sim.layers[i]
            if ls.pool_counts is None:
                counts.fill(0.0)
            elif ls.pool_counts is not counts:
                np.copyto(counts, ls.pool_counts)
            ls.pool_counts = counts
        drawn_from = sim.rng.bit_generator.state if self.encoder == 1 or self.sto_size else None
        rand, rsto = self._draw(sim, k)
        rec = self.recorder
        arrays = rec.arrays()
        args = (prog, self.fp, self.fp64, self.inb, self.insc, self.f32, self.f64, self.i16, self.i32, self.i64,
                self.x_idx, self.p_idx,
                self.encoder, rand, rsto, self.batch, k, sim.t, rec.count, rec.capacity, arrays["steps"],
                arrays["predictions"], self.pred)
        self.parts = 1
        ran = k
        if self.batch >= 2 and k * self.work >= PARALLEL_MIN_WORK and block_pool.threads() > 1:
            self.blocks = block_pool.run_blocks(_fused_block, (*args, _NO_STOP, 0), self.batch, 1)
        elif (self.batch == 1 and sim.split_steps and self.work >= SPLIT_MIN_WORK
              and block_pool.threads() > 1):
            self.parts = block_pool.run_parts(run_fused, (*args, _NO_STOP, 0, 0, 1), 2, self.sync)
            self.blocks = 1
        else:
            flag, token = (_NO_STOP, 0) if stop is None else (stop.flag, stop.token)
            ran = run_fused(*args, flag, token, 0, self.batch, 0, 1, _NO_SYNC)
            self.blocks = 1
        if ran < k and (self.encoder == 1 or self.sto_size):  # as if only the steps that ran drew
            sim.rng.bit_generator.state = drawn_from
            self._draw(sim, ran)
        sim.t += ran
        rec.count += ran
        for i, cache in self.const_cache.items():
            if ran > 0 or prog[i, C_VALID]:  # the kernel computed the current in its first step
                prog[i, C_VALID] = 1
                sim.layers[i].const_current = cache
        for ls in sim.layers[1:]:
            if ls.is_neuron or ls.layer.kind == nw.MAX_POOL2D:
                ls.path = "fused" if self.parts == 1 else "fused-split"  # split: batch 1 on two threads
        return ran


def _model_columns(ls, row, fp, fp64, add, sto_size: int, B: int) -> int:
    """A neuron layer's model columns: which step, its state arrays (``add(list_name, array)``
    puts one in the named typed list and gives its index) and its constants. Returns the
    float64 randoms a step draws for StochasticSpiking layers so far (``sto_size`` + this one's)."""
    layer = ls.layer
    m, kind = ls.model, type(ls.model)
    if kind is not IF and kind is not LoihiCUBA:
        row[C_V] = add("f64", ls.state[m.membrane_var])
        fp64[ls.index, P_DT] = ls.dt
    if kind is LoihiCUBA:  # prepare_layer's constants are in the state dict
        row[C_MODEL] = MODEL_CUBA
        row[C_V], row[C_U], row[C_RF] = (add("i32", ls.state[key]) for key in ("v", "u", "refractory"))
        row[C_LB] = add("i64", ls.state["layer_bias"])
        in_scale, unit = ls.state["in_scale"]
        fp64[ls.index, P_IN_SCALE] = in_scale
        row[C_UNIT], row[C_DU], row[C_DV], row[C_VTH] = int(unit), m.du, m.dv, m.vth_eff
        row[C_MBIAS], row[C_REFRAC] = m.bias_int, m.refractory_delay
    elif kind is LIF or kind is LoihiLIF:  # LoihiLIF: the chip's quantized constants
        row[C_MODEL] = MODEL_LIF if kind is LIF else MODEL_LOIHI_LIF
        row[C_V2] = add("f64", ls.state["refractory_time"])
        tau_rc, tau_ref = m.tau_rc, m.tau_ref
        if kind is LoihiLIF:
            tau_rc, tau_ref = discretize_tau_rc(tau_rc, ls.dt), discretize_tau_ref(tau_ref, ls.dt)
        fp64[ls.index, P_TAU_RC:P_MINV + 1] = (tau_rc, tau_ref, m.min_voltage)
    elif kind is LoihiReLU:
        row[C_MODEL] = MODEL_LOIHI_RELU
    elif kind is RegularSpiking or kind is StochasticSpiking:
        if kind is RegularSpiking:
            row[C_MODEL] = MODEL_REGULAR
            row[C_V2] = add("f64", ls.state["rate"])
        else:
            row[C_MODEL] = MODEL_STOCHASTIC
            row[C_ROFF] = sto_size
            sto_size += B * layer.size
        code, gain, tau_ref, tau_rc = m._args()
        row[C_RESET] = code
        fp64[ls.index, P_TAU_RC], fp64[ls.index, P_TAU_REF], fp64[ls.index, P_GAIN] = tau_rc, tau_ref, gain
    else:
        row[C_MODEL] = MODEL_IF
        row[C_V] = add("f32", ls.state["v"])
        row[C_RESET] = _RESET_CODE[ls.model.reset]
        fp[ls.index, F_DT] = np.float32(ls.dt)
        fp[ls.index, F_THR] = np.float32(ls.model.threshold)
    return sto_size


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
                gain = fp[li, F_GAIN]
                if gain != 1.0:
                    Jb = J[lo:hi]
                    for i in range(hi - lo):
                        Jb[i] *= gain
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
            elif model != MODEL_IF:
                s, v, dt = f32[row[C_S]][lo:hi], f64[row[C_V]][lo:hi], fp64[li, P_DT]
                if model == MODEL_LIF or model == MODEL_LOIHI_LIF:
                    lif_step(J[lo:hi], dt, fp64[li, P_TAU_RC], fp64[li, P_TAU_REF], fp64[li, P_MINV],
                             model == MODEL_LIF, v, f64[row[C_V2]][lo:hi], s)
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
            rs = i16[row[C_RS]][r * n + lo:r * n + hi]  # views from 0: the copies vectorize
            for i in range(hi - lo):
                rs[i] = np.int16(s[i])
            if row[C_RM] >= 0 and row[C_MODEL] == MODEL_CUBA:  # int32 state into the float32 ring
                rm, vi = f32[row[C_RM]][r * n + lo:r * n + hi], i32[row[C_V]][lo:hi]
                for i in range(hi - lo):
                    rm[i] = np.float32(vi[i])
            elif row[C_RM] >= 0 and row[C_MODEL] != MODEL_IF:  # float64 state into the float32 ring
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


def _split_kind(row) -> int:
    """How the threads of a split batch-1 step divide this layer (``_span``)."""
    op = row[C_OP]
    tiled = K.windows_tile(row[C_IH], row[C_IW], row[C_OH], row[C_OW], row[C_KH], row[C_KW], row[C_SH], row[C_SW],
                           row[C_PT], row[C_PL])
    if op in (OP_INPUT, OP_COPY, OP_ADD, OP_DENSE):
        return SPLIT_FLAT
    if op == OP_CONV and row[C_WT] >= 0 and row[C_OH] > 0:
        return SPLIT_ROWS
    if op == OP_AVG and tiled:
        return SPLIT_ROWS
    if op == OP_MAX and tiled and row[C_KH] == 2 and row[C_KW] == 2:
        return SPLIT_ROWS
    return SPLIT_WHOLE
