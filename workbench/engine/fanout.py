"""Fan-out: how many synapses each neuron drives, for counting synaptic operations.

A spike of a neuron costs one synaptic operation (one accumulate) per synapse it drives in the
next neuron layer(s). ``fan_out(network)`` gives, once per network, that number for every neuron
of every *event source*: the neuron layers, the input layer (whose events count only under the
Poisson encoder) and the max-pooling layers. Layers that only move values (flatten, reshape,
zero padding, concatenate) are looked through; max pooling is a source of its own because only
the window's winner passes on, so its events are counted at its output.

Per consumer kind, one input element drives:
    dense                 units                              (every output)
    conv2d                rows(y) * cols(x) * filters        (the output positions that see it)
    depthwise_conv2d      rows(y) * cols(x) * multiplier
    avg_pool2d            rows(y) * cols(x)                  (the windows that hold it)
    global_avg_pool2d, add, activation   1
where rows(y) counts the kernel/window rows that cover input row y under the layer's padding and
strides (fewer at the borders), and cols(x) likewise.
"""

from __future__ import annotations

import numpy as np

from workbench.engine.synapses import padding_for
from workbench.models import network as nw

LOOK_THROUGH = frozenset({nw.FLATTEN, nw.RESHAPE, nw.ZERO_PAD2D, nw.CONCATENATE})


def _cover(n_in: int, n_out: int, k: int, s: int, pad: int) -> np.ndarray:
    """For each input index: how many (kernel offset, output index) pairs reach it."""
    out = np.zeros(n_in, dtype=np.int64)
    for i in range(n_in):
        for ky in range(k):
            t = i + pad - ky
            if t >= 0 and t % s == 0 and t // s < n_out:
                out[i] += 1
    return out


def _windowed(layer: nw.Layer, in_shape, kernel, strides) -> np.ndarray:
    """rows(y) * cols(x) as an (H, W, 1) array for a conv or pooling layer."""
    h, w = in_shape[:2]
    pt, pl = padding_for(layer.config.get("padding", "valid"), (h, w), kernel, strides)
    oh, ow = layer.output_shape[:2]
    rows = _cover(h, oh, kernel[0], strides[0], pt)
    cols = _cover(w, ow, kernel[1], strides[1], pl)
    return (rows[:, None] * cols[None, :])[:, :, None]


def _per_input(layer: nw.Layer, slot: int, in_shape) -> np.ndarray:
    """Synapses one element of inbound ``slot`` drives in neuron layer ``layer`` (in_shape)."""
    kind = layer.kind
    ones = np.ones(in_shape, dtype=np.int64)
    if kind == nw.DENSE:
        return ones * layer.output_shape[-1]
    if kind in (nw.CONV2D, nw.DEPTHWISE_CONV2D):
        kernel = layer.weights.shape[:2]
        per = layer.weights.shape[3]  # filters, or the depth multiplier
        return ones * _windowed(layer, in_shape, kernel, layer.config["strides"]) * per
    if kind == nw.AVG_POOL2D:
        size = layer.config["pool_size"]
        strides = layer.config.get("strides") or size
        return ones * _windowed(layer, in_shape, size, strides)
    return ones  # global average pooling, add, activation: one synapse each


def _slice_back(consumer: nw.Layer, slot: int, network: nw.Network, down: np.ndarray) -> np.ndarray:
    """The part of a look-through layer's downstream map that belongs to inbound ``slot``."""
    shape = network[consumer.inbound[slot]].output_shape
    kind = consumer.kind
    if kind in (nw.FLATTEN, nw.RESHAPE):
        return down.reshape(shape)
    if kind == nw.ZERO_PAD2D:
        (t, _b), (left, _r) = consumer.config["padding"]
        return down[t : t + shape[0], left : left + shape[1]]
    # concatenate along config['axis'], the per-sample axis (the batched arrays use axis + 1)
    axis = consumer.config["axis"] % len(consumer.output_shape)
    start = sum(network[name].output_shape[axis] for name in consumer.inbound[:slot])
    index = [slice(None)] * len(shape)
    index[axis] = slice(start, start + shape[axis])
    return down[tuple(index)]


def fan_out(network: nw.Network) -> dict[str, np.ndarray]:
    """{source layer name: int64 array of its output shape}: synapses each element drives."""
    memo: dict[str, np.ndarray] = {}

    def downstream(name: str) -> np.ndarray:
        if name in memo:
            return memo[name]
        shape = network[name].output_shape
        total = np.zeros(shape, dtype=np.int64)
        for consumer in network.consumers(name):
            for slot, src in enumerate(consumer.inbound):
                if src != name:
                    continue
                if consumer.is_neuron_layer:
                    total += _per_input(consumer, slot, shape)
                elif consumer.kind in LOOK_THROUGH:
                    total += _slice_back(consumer, slot, network, downstream(consumer.name))
                # max pooling: its own source, counted at its output
        memo[name] = total
        return total

    return {layer.name: downstream(layer.name) for layer in network.layers
            if layer.is_neuron_layer or layer.kind in (nw.INPUT, nw.MAX_POOL2D)}


def event_source(network: nw.Network, name: str) -> str:
    """The neuron layer (or the input) whose spikes reach max-pool layer ``name`` through
    look-through layers: one pooled event carries that layer's spike value."""
    layer = network[name]
    while not layer.is_neuron_layer and layer.kind != nw.INPUT:
        layer = network[layer.inbound[0]]
    return layer.name
