"""Per-layer run state and the one function that advances a layer by one timestep.

A layer's step has two halves. Synapses: the outputs ``y`` (rate units) of its inbound layers,
already computed this timestep, become its input current ``J`` (neuron layers) or directly its
own output (layers without neurons: flatten, reshape, zero padding, concatenate, max pooling).
Neurons: the layer's neuron model turns ``J`` into spikes and ``y = spikes * output_scale``.
All layers advance within the same timestep in topological order (no synaptic delay), as INIsim.
"""

from __future__ import annotations

import numpy as np

from workbench.engine import flat_kernels, pool_kernels, synapses
from workbench.engine.encoders import ENCODE
from workbench.engine.neurons import NeuronModel
from workbench.engine.neurons.current import current_emit
from workbench.engine.neurons.lif import rate_invert
from workbench.models import network as nw


class LayerState:
    """Arrays of one layer for a batch. ``y``, ``spikes``, ``J`` and the model state are
    (batch, *shape) float32; ``counts`` is the cumulative spike count (float64)."""

    def __init__(self, layer: nw.Layer, index: int, inbound: list[int], batch: int,
                 model: NeuronModel | None, dt: float, rate_scale: float = 1.0, float64: bool = False,
                 offset: float = 0.0, synapse: float = 0.0, rate_inverted: bool = False):
        self.layer = layer
        self.index = index
        self.inbound = inbound
        self.shape = (batch, *layer.output_shape)
        ftype = np.float64 if float64 else np.float32  # SimConfig.float64: Nengo's precision
        self.y = np.zeros(self.shape, dtype=ftype)
        self.model = model
        self.dt = dt
        self.path = ""  # which kernel path ran last ('event', 'blas', ...), for benchmarks/UI
        self.const_current = None  # cached J when the inputs are constant (constant encoder)
        # Parameters the synapses use; a neuron model may substitute quantized copies.
        self.weights = layer.weights
        if layer.weights is not None:
            self.bias = layer.bias if layer.bias is not None else np.zeros(layer.output_shape[-1], np.float32)
        if model is not None:
            n = int(np.prod(self.shape))
            self.state = model.init_state(n)
            if float64:
                self.state = {k: v.astype(np.float64) if v.dtype == np.float32 else v for k, v in self.state.items()}
            self.spikes = np.zeros(self.shape, dtype=np.float32)
            self.J = np.zeros(self.shape, dtype=ftype)
            self.counts = np.zeros(self.shape, dtype=np.float64)
            # NengoDL's scale_firing_rates: currents x rate_scale, each spike worth 1/rate_scale.
            self.gain = ftype(rate_scale)
            self.offset = ftype(offset)  # added to the current after the gain
            # the synaptic low-pass on the input current (synapses.lowpass), before the gain:
            # its state ``syn``, or None without a filter
            self.synapse = float(synapse)
            self.syn = np.zeros(self.shape, dtype=ftype) if synapse > 0 else None
            a = np.exp(-dt / synapse) if synapse > 0 else 0.0
            self.syn_a, self.syn_b = ftype(a), ftype(1.0 - a)
            # a fitted LIF under a constant current: its inverse rate table (neurons.lif.rate_invert
            # maps each J to the J' whose rate is J, before the gain), or None
            self.rate_inv = model.rate_inverse(dt, self.gain, self.offset) if rate_inverted else None
            self.out_scale = ftype(model.output_scale(dt) / rate_scale)
            # Flat views made once (the arrays are never reallocated): the step loop is hot.
            self.J_flat = self.J.reshape(-1)
            self.spikes_flat = self.spikes.reshape(-1)
            self.y_flat = self.y.reshape(-1)
            self.counts_flat = self.counts.reshape(-1)
        if layer.kind == nw.MAX_POOL2D:
            self.pool_counts = None  # allocated on first step, shaped like the input

    @property
    def is_neuron(self) -> bool:
        return self.model is not None

    def membrane(self) -> np.ndarray:
        return self.state[self.model.membrane_var].reshape(self.shape)

    def reset(self) -> None:
        self.y.fill(0.0)
        self.const_current = None
        if self.model is not None:
            # Only the model's own state: other keys hold per-layer constants that a model's
            # ``prepare_layer`` stored (e.g. an integer bias) and survive a reset.
            for key in self.model.state_vars:
                self.state[key].fill(0)
            fresh = self.model.init_state(self.spikes.size)
            for key, arr in fresh.items():
                self.state[key][...] = arr
            self.spikes.fill(0.0)
            self.J.fill(0.0)
            self.counts.fill(0.0)
            if self.syn is not None:
                self.syn.fill(0.0)
        if self.layer.kind == nw.MAX_POOL2D:
            self.pool_counts = None


def _pool_geometry(layer: nw.Layer, in_shape):
    cfg = layer.config
    ph, pw = cfg["pool_size"]
    sh, sw = cfg.get("strides") or cfg["pool_size"]
    pt, pl = synapses.padding_for(cfg.get("padding", "valid"), in_shape[1:3], (ph, pw), (sh, sw))
    return ph, pw, sh, sw, pt, pl


def _conv_geometry(ls: LayerState, in_shape):
    """(sh, sw, pt, pl) of a conv layer, computed once per input shape."""
    geom = getattr(ls, "_conv_geom", None)
    if geom is None or geom[0] != in_shape:
        cfg = ls.layer.config
        sh, sw = cfg["strides"]
        kh, kw = ls.weights.shape[:2]
        pt, pl = synapses.padding_for(cfg["padding"], in_shape[1:3], (kh, kw), (sh, sw))
        geom = ls._conv_geom = (in_shape, (sh, sw, pt, pl))
    return geom[1]


def _stride1_weights(ls: LayerState):
    """The conv weights re-laid for the stride-1 kernel (made once per weights array), or None."""
    if list(ls.layer.config.get("strides", (0, 0))) != [1, 1]:
        return None
    cached = getattr(ls, "_wt", None)
    if cached is None or cached[0] is not ls.weights:
        cached = ls._wt = (ls.weights, flat_kernels.stride1_weights(ls.weights))
    return cached[1]


def compute_current(ls: LayerState, inputs: list[np.ndarray]) -> None:
    """Synapses of a neuron layer: fill ``ls.J`` from the inbound outputs."""
    layer = ls.layer
    kind = layer.kind
    x = inputs[0]
    if kind == nw.DENSE:
        ls.path = synapses.dense_current(x.reshape(x.shape[0], -1), ls.weights, ls.bias, ls.J)
    elif kind == nw.CONV2D:
        ls.path = synapses.conv_current(x, ls.weights, ls.bias, *_conv_geometry(ls, x.shape), ls.J,
                                        wt=_stride1_weights(ls))
    elif kind == nw.DEPTHWISE_CONV2D:
        synapses.depthwise_event(x, ls.weights, ls.bias, *_conv_geometry(ls, x.shape), ls.J)
        ls.path = "event"
    elif kind == nw.AVG_POOL2D:
        scale = layer.config.get("input_scales", [1.0])[0]
        ls.path = synapses.pool(synapses.avg_pool, synapses.avg_pool_block, x,
                                (*_pool_geometry(layer, x.shape), np.float32(scale), ls.J))
    elif kind == nw.GLOBAL_AVG_POOL2D:
        scale = layer.config.get("input_scales", [1.0])[0]
        np.multiply(x.mean(axis=(1, 2)), scale, out=ls.J.reshape(x.shape[0], -1), casting="unsafe")
    elif kind in (nw.ADD, nw.ACTIVATION):
        scales = layer.config.get("input_scales") or [1.0] * len(inputs)
        np.multiply(inputs[0], scales[0], out=ls.J)
        for arr, s in zip(inputs[1:], scales[1:]):
            ls.J += arr * np.float32(s)
    else:  # pragma: no cover - guarded by NEURON_KINDS
        raise AssertionError(kind)


def transform(ls: LayerState, inputs: list[np.ndarray]) -> None:
    """Layers without neurons: their output this step is a function of the inputs' outputs."""
    layer = ls.layer
    kind = layer.kind
    x = inputs[0]
    if kind in (nw.FLATTEN, nw.RESHAPE):
        ls.y[...] = x.reshape(ls.shape)
    elif kind == nw.ZERO_PAD2D:
        synapses.zero_pad(x, layer.config["padding"], ls.y)
    elif kind == nw.CONCATENATE:
        np.concatenate(inputs, axis=layer.config["axis"] + 1, out=ls.y)
    elif kind == nw.MAX_POOL2D:
        if ls.pool_counts is None:
            ls.pool_counts = np.zeros(x.shape, dtype=np.float64)
        if layer.config.get("max_pool") == "lateral":  # LIPooling (a conversion remedy)
            pool_kernels.max_pool_lateral(x, ls.pool_counts, *_pool_geometry(layer, x.shape), ls.y)
            ls.path = "serial"
            return
        ls.path = synapses.pool(synapses.max_pool_by_count, synapses.max_pool_block, x,
                                (ls.pool_counts, *_pool_geometry(layer, x.shape), ls.y))
    else:  # pragma: no cover
        raise AssertionError(kind)


def advance(ls: LayerState, outputs: list[np.ndarray], x_input: np.ndarray, encoder: str, rng,
            inputs_constant: bool) -> None:
    """Advance one layer by one timestep. ``outputs[i]`` is layer i's ``y`` (already this step
    for earlier layers). ``inputs_constant``: every inbound value is the same each step, so the
    current can be computed once and reused (the first layer under the constant encoder)."""
    if ls.model is None:
        if ls.index == 0:
            ENCODE[encoder](x_input, ls.y, rng)
        else:
            transform(ls, [outputs[i] for i in ls.inbound])
        return
    if inputs_constant and ls.const_current is not None:
        np.copyto(ls.J, ls.const_current)
        ls.path = "cached"
    else:
        inputs = [outputs[i] for i in ls.inbound]
        compute_current(ls, inputs)
        if ls.syn is not None:  # the synaptic filter (engine.conversion: fitted LIF fed by spikes)
            synapses.lowpass(ls.J_flat, ls.syn.reshape(-1), ls.syn_a, ls.syn_b)
        if ls.rate_inv is not None:  # a fitted LIF under constant current: J -> J' of rate J
            rate_invert(ls.J_flat, ls.rate_inv)
        if ls.gain != 1.0:
            ls.J *= ls.gain
        if ls.offset != 0.0:  # a fitted LIF's rheobase shift (engine.conversion.fit)
            ls.J += ls.offset
        if inputs_constant:
            ls.const_current = ls.J.copy()
    if not ls.model.spiking:  # carries current (neurons.current): y = J, counts += charge
        ls.nnz = current_emit(ls.J_flat, ls.dt, ls.out_scale, ls.state["v"], ls.spikes_flat, ls.y_flat,
                              ls.counts_flat)
        return
    ls.model.step(ls.J_flat, ls.dt, ls.state, ls.spikes_flat, rng)
    # y = spikes * out_scale and counts += spikes in one pass; nnz: this step's spiking neurons
    ls.nnz = synapses.emit(ls.spikes_flat, ls.out_scale, ls.y_flat, ls.counts_flat)
