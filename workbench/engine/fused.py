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
mode, ``rate_scale``, initial membrane ``v_init``, ``burst`` spikes: ``C_BURST``), Nengo's LIF or nengo-loihi's LoihiLIF (``lif_step`` on their float64
state), LoihiReLU (``loihi_relu_step``), RegularSpiking (``regular_step``) or StochasticSpiking
(``stochastic_step``) or Lava's integer LoihiCUBA (``cuba_step`` on its int32 u, v and
refractory counters, with the quantized weights ``prepare_layer`` put in the LayerState): each
the same numba step the generic path calls, on the same arrays;
the encoder is constant or poisson, and every layer is one of input,
dense, conv2d, depthwise_conv2d, avg_pool2d, global_avg_pool2d (more than one channel),
max_pool2d (by spike count, or by lateral inhibition: ``C_POOL``), flatten, reshape, zero_pad2d, add, concatenate, activation. Anything else runs the
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
import time

import numba
import numpy as np
from numba.typed import List

from workbench.engine import block_pool, synapses
from workbench.engine import flat_kernels as K
from workbench.engine.layer_state import _pool_geometry
from workbench.engine.neurons.current import Current, SignedIF
from workbench.engine.neurons.if_neuron import _RESET_CODE, IF
from workbench.engine.neurons.lif import LIF
from workbench.engine.neurons.loihi_cuba import LoihiCUBA
from workbench.engine.neurons.loihi import LoihiLIF, LoihiReLU, discretize_tau_rc, discretize_tau_ref
from workbench.engine.neurons.spiking import RegularSpiking, StochasticSpiking
from workbench.engine.fused_kernel import (  # the program's column layout, and the kernel
    CHUNK,  # noqa: F401  (re-exported: Simulator.run reads fused.CHUNK)
    C_B, C_BURST, C_CACHE, C_CNT, C_CONST, C_DU, C_DV, C_IC, C_IH, C_IN0, C_IW, C_J, C_KH, C_KW, C_LB,
    C_MBIAS, C_MODEL, C_NEURON, C_NIN, C_OC, C_OH, C_OP, C_OUTER, C_OW, C_PC, C_PL, C_POOL, C_PT, C_REFRAC,
    C_RESET, C_RF, C_RJ, C_RM, C_ROFF, C_RS, C_RS8, C_S, C_SH, C_SIZE, C_SPLIT, C_SW, C_U, C_UNIT, C_V,
    C_INV, C_SYN, C_V2, C_VALID, C_VTH, C_W, C_WT, C_Y, F_DT, F_GAIN, F_OFFSET, F_OUT, F_SCALE, F_SYN_A, F_SYN_B, F_THR,
    MODEL_CUBA,
    MODEL_CURRENT, MODEL_SIGNED_IF, MODEL_IF, MODEL_LIF, MODEL_LOIHI_LIF, MODEL_LOIHI_RELU, MODEL_REGULAR, MODEL_STOCHASTIC, NCOL,
    NFCOL, OP_ADD, OP_AVG, OP_CONV, OP_COPY, OP_DENSE, OP_INPUT, OP_MAX, PARALLEL_MIN_WORK, P_DT,
    P_GAIN, P_IN_SCALE, P_MINV, P_TAU_RC, P_TAU_REF, RAND_ELEMENTS, SPLIT_FLAT, SPLIT_MIN_WORK,
    SPLIT_ROWS, SPLIT_WHOLE, _MODELS, _NO_STOP, _NO_SYNC, _OPS, _fused_block, run_fused,
)
from workbench.models import network as nw


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
    for option in ("float64", "synaptic_delay"):  # options of the generic path only
        if getattr(sim.config, option):
            return f"option {option}"
    for ls in sim.layers:
        layer = ls.layer
        if layer.kind not in _OPS:
            return f"layer {layer.name}: kind {layer.kind}"
        if ls.index == 0 and layer.kind != nw.INPUT:
            return "the first layer is not the input"
        if ls.model is not None and type(ls.model) not in _MODELS:
            return f"layer {layer.name}: neuron model {ls.model.name}"
        if getattr(ls.model, "weight_rounding", "nearest") != "nearest":
            return f"layer {layer.name}: weight_rounding {ls.model.weight_rounding}"
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
                fp[ls.index, F_OFFSET] = ls.offset
                if ls.syn is not None:  # the synaptic filter: its state and coefficients
                    row[C_SYN] = add(f32, ls.syn)
                    fp[ls.index, F_SYN_A], fp[ls.index, F_SYN_B] = ls.syn_a, ls.syn_b
                if ls.rate_inv is not None:  # the inverse rate table (a copy: typed lists hold writable arrays)
                    row[C_INV] = add(f32, ls.rate_inv)
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
                    i16.append(sim.recorder.spike_words(name))
                    row[C_RS8] = int(arrs["spikes"].dtype == np.int8)
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
                row[C_POOL] = int(layer.config.get("max_pool") == "lateral")
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
        self.chooser = block_pool.Chooser()  # one thread or several: whichever measured faster
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
        blocks = self.batch >= 2 and k * self.work >= PARALLEL_MIN_WORK
        split = self.batch == 1 and sim.split_steps and self.work >= SPLIT_MIN_WORK
        parallel = (blocks or split) and self.chooser.parallel()  # measured, not guessed (block_pool.Chooser)
        start = time.perf_counter()
        if parallel and blocks:
            self.blocks = block_pool.run_blocks(_fused_block, (*args, _NO_STOP, 0), self.batch, 1)
        elif parallel:
            self.parts = block_pool.run_parts(run_fused, (*args, _NO_STOP, 0, 0, 1), 2, self.sync)
            self.blocks = 1
        else:
            flag, token = (_NO_STOP, 0) if stop is None else (stop.flag, stop.token)
            ran = run_fused(*args, flag, token, 0, self.batch, 0, 1, _NO_SYNC)
            self.blocks = 1
        if blocks or split:
            self.chooser.record(parallel, time.perf_counter() - start, ran)
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
    if kind is not IF and kind is not LoihiCUBA and kind is not SignedIF and kind is not Current:
        row[C_V] = add("f64", ls.state[m.membrane_var])
    fp64[ls.index, P_DT] = ls.dt
    if kind is Current:
        row[C_MODEL] = MODEL_CURRENT
        row[C_V] = add("f32", ls.state["v"])
    elif kind is SignedIF:
        row[C_MODEL] = MODEL_SIGNED_IF
        row[C_V], row[C_V2] = add("f32", ls.state["v"]), add("f32", ls.state["net"])
        row[C_RESET], row[C_DU] = int(m.reset == "zero"), int(m.negative == "after_positive")
        row[C_BURST] = m.burst
        fp[ls.index, F_THR] = np.float32(m.threshold)
    elif kind is LoihiCUBA:  # prepare_layer's constants are in the state dict
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
        row[C_RESET] = int(m.reset_mode == "subtract")
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
        row[C_BURST] = ls.model.burst
    return sto_size


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
    if op == OP_MAX and tiled and row[C_KH] == 2 and row[C_KW] == 2 and row[C_POOL] != 1:
        return SPLIT_ROWS
    return SPLIT_WHOLE

