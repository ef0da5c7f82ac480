"""The network's own ANN forward pass in numpy: the reference every spiking run is compared to.

It reproduces Keras' inference arithmetic (TF's 'same' padding, average pooling that divides
by the number of non-padding cells) and honours ``config['input_scales']`` of weight-less neuron
layers, so a normalized network computes exactly ``original_output / lambda`` for ReLU layers.
Sums are accumulated in float64 and the outputs returned as float32.

``forward_stream`` is the same pass one layer at a time: it holds a layer's activation only
until the last layer reading it has been computed, so a caller that reduces each activation as
it comes (``normalize``: one percentile per layer) needs memory for a few layers, not all.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from workbench.errors import DataFileError
from workbench.models import network as nw

_WINDOW_BUDGET = 32 * 2**20  # elements per im2col chunk; bounds memory for large batches
_DENSE_WHOLE = 32 * 2**20  # weights of a dense layer taken to float64 at once (256 MB); more go by blocks


def activation_fn(name: str, params: dict | None = None):
    """The ANN activation ``name`` as a numpy function (``params``: relu's ``max_value``)."""
    params = params or {}
    if name == "linear":
        return lambda z: z
    if name == "relu":
        top = params.get("max_value")
        return (lambda z: np.maximum(z, 0)) if top is None else (lambda z: np.clip(z, 0, top))
    if name == "softmax":
        def softmax(z):
            e = np.exp(z - z.max(axis=-1, keepdims=True))
            return e / e.sum(axis=-1, keepdims=True)
        return softmax
    if name == "tanh":
        return np.tanh
    if name == "sigmoid":
        return lambda z: 1.0 / (1.0 + np.exp(-z))
    raise ValueError(f"unknown activation '{name}'")


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TF's 'same' padding for one axis: the odd cell goes to the bottom/right."""
    total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def _pad_hw(x, kernel, strides, padding, value=0.0):
    if padding == "valid":
        return x
    pads = [same_padding(x.shape[i + 1], kernel[i], strides[i]) for i in range(2)]
    return np.pad(x, ((0, 0), pads[0], pads[1], (0, 0)), constant_values=value)


def _windows(x, kernel, strides):
    """(B, Ho, Wo, C, kh, kw) strided view over an already padded (B, H, W, C) batch."""
    win = sliding_window_view(x, tuple(kernel), axis=(1, 2))
    return win[:, :: strides[0], :: strides[1]]


def _chunked(x, per_sample: int, fn):
    """``fn`` over chunks of the batch, written into one output array (no list of chunks and
    concatenated copy alive at once)."""
    step = max(1, _WINDOW_BUDGET // max(per_sample, 1))
    if len(x) <= step:
        return fn(x)
    first = fn(x[:step])
    out = np.empty((len(x),) + first.shape[1:], first.dtype)
    out[:step] = first
    del first
    for i in range(step, len(x), step):
        out[i : i + step] = fn(x[i : i + step])
    return out


def _conv(layer: nw.Layer, x):
    w = layer.weights.astype(np.float64)
    kh, kw = w.shape[:2]
    strides, padding = layer.config["strides"], layer.config["padding"]
    out_hw = int(np.prod(layer.output_shape[:2]))

    def run(xb):
        win = _windows(_pad_hw(xb, (kh, kw), strides, padding), (kh, kw), strides)
        if layer.kind == nw.CONV2D:
            return np.tensordot(win, w, axes=([3, 4, 5], [2, 0, 1]))
        out = np.einsum("bhwcij,ijcm->bhwcm", win, w, optimize=True)
        return out.reshape(out.shape[:3] + (-1,))

    out = _chunked(x, out_hw * w.size // w.shape[-1], run)
    out += layer.bias  # in place: the same sums as ``out + bias`` without a second array
    return out


def _dense(layer: nw.Layer, x):
    """x @ W + b in float64. A layer of more than _DENSE_WHOLE weights takes them to float64 a
    block of columns at a time: VGG16's fc1 (25088 x 4096) whole in float64 was a 0.8 GB
    temporary at every forward pass (the window's ANN reference, normalization)."""
    w = layer.weights
    n_in, n_out = w.shape
    if w.size <= _DENSE_WHOLE:  # the whole product at once (BLAS sums a block in its own order)
        return np.tensordot(x, w.astype(np.float64), axes=([-1], [0])) + layer.bias
    step = max(1, _WINDOW_BUDGET // (8 * n_in))  # 4 M weights (32 MB in float64) a block
    out = np.empty(x.shape[:-1] + (n_out,), np.float64)
    for j in range(0, n_out, step):
        out[..., j:j + step] = np.tensordot(x, w[:, j:j + step].astype(np.float64), axes=([-1], [0]))
    out += layer.bias
    return out


def _pool(layer: nw.Layer, x):
    size, strides, padding = (layer.config[k] for k in ("pool_size", "strides", "padding"))
    if layer.kind == nw.MAX_POOL2D:
        return _windows(_pad_hw(x, size, strides, padding, -np.inf), size, strides).max(axis=(4, 5))
    total = _windows(_pad_hw(x, size, strides, padding), size, strides).sum(axis=(4, 5))
    ones = np.ones((1,) + x.shape[1:3] + (1,))
    count = _windows(_pad_hw(ones, size, strides, padding), size, strides).sum(axis=(4, 5))
    return total / count


def _scaled(layer: nw.Layer, inputs):
    scales = layer.config.get("input_scales") or [1.0] * len(inputs)
    return [x if s == 1.0 else x * s for x, s in zip(inputs, scales)]


def preactivation(layer: nw.Layer, inputs: list[np.ndarray]) -> np.ndarray:
    """Layer ``layer``'s output before its activation, from its inbound outputs (float64)."""
    kind, x = layer.kind, inputs[0] if inputs else None
    batch = len(x)
    if kind == nw.DENSE:
        return _dense(layer, x)
    if kind in (nw.CONV2D, nw.DEPTHWISE_CONV2D):
        return _conv(layer, x)
    if kind == nw.MAX_POOL2D:
        return _pool(layer, x)
    if kind == nw.AVG_POOL2D:
        return _pool(layer, _scaled(layer, inputs)[0])
    if kind == nw.GLOBAL_AVG_POOL2D:
        return _scaled(layer, inputs)[0].mean(axis=(1, 2))
    if kind in (nw.FLATTEN, nw.RESHAPE):
        return x.reshape((batch,) + layer.output_shape)
    if kind == nw.ZERO_PAD2D:
        (t, b), (left, r) = layer.config["padding"]
        return np.pad(x, ((0, 0), (t, b), (left, r), (0, 0)))
    if kind == nw.ADD:
        return np.sum(_scaled(layer, inputs), axis=0)
    if kind == nw.CONCATENATE:
        return np.concatenate(inputs, axis=layer.config["axis"] + 1)
    if kind == nw.ACTIVATION:
        return _scaled(layer, inputs)[0]
    raise ValueError(f"layer '{layer.name}': no forward rule for kind '{kind}'")


def _check_input(network: nw.Network, x) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim != len(network.input_shape) + 1 or x.shape[1:] != network.input_shape:
        raise DataFileError(
            f"data of shape {x.shape} does not fit the model input (batch, {', '.join(map(str, network.input_shape))})"
        )
    return x.astype(np.float64)


def _activate(layer: nw.Layer, z: np.ndarray, inputs: list[np.ndarray]) -> np.ndarray:
    """``layer``'s activation of its pre-activation ``z``; a ReLU in place when ``z`` is a fresh
    array (not a view of an input: flatten, reshape, an unscaled standalone activation)."""
    if layer.activation == "relu" and not any(np.may_share_memory(z, a) for a in inputs):
        top = layer.activation_params.get("max_value")
        return np.maximum(z, 0, out=z) if top is None else np.clip(z, 0, top, out=z)
    return activation_fn(layer.activation, layer.activation_params)(z)


def forward_stream(network: nw.Network, x, upto: str | None = None, on_layer=None, stats: dict | None = None):
    """The forward pass one layer at a time: yields ``(layer, activation, inputs)`` in layer
    order, ``activation`` the layer's post-activation output in float64 (the exact values
    ``forward`` rounds to float32) and ``inputs`` its inbound layers' activations.

    An activation is dropped as soon as the last layer reading it has been computed; the caller
    keeps what it needs (and should drop ``activation``/``inputs`` before asking for the next
    layer). ``upto`` and ``on_layer`` as in ``forward``. ``stats`` (a dict), when given, holds
    ``live`` (activations the pass holds between layers) and ``peak_live`` (the most alive at
    once, counting a layer's output next to the inputs it was computed from).
    """
    if upto is not None:
        network.index(upto)  # KeyError early for a wrong name
    last_read = {src: i for i, layer in enumerate(network.layers) for src in layer.inbound}
    held: dict[str, np.ndarray] = {}
    if stats is not None:
        stats.update(live=0, peak_live=0)
    for i, layer in enumerate(network.layers):
        if layer.kind == nw.INPUT:
            act, inputs = _check_input(network, x), []
        else:
            inputs = [held[s] for s in layer.inbound]
            act = _activate(layer, preactivation(layer, inputs), inputs)
        if stats is not None:  # the moment of most: the inputs still held, the output made
            stats["peak_live"] = max(stats["peak_live"], len(held) + 1)
        for src in set(layer.inbound):
            if last_read[src] == i:
                del held[src]
        if last_read.get(layer.name, -1) > i:
            held[layer.name] = act
        if stats is not None:
            stats["live"] = len(held)
        if on_layer is not None:
            on_layer(layer.name)
        box = [(layer, act, inputs)]
        del act, inputs
        yield box.pop()  # the pass keeps no reference of its own while the caller works
        if layer.name == upto:
            break


def forward(network: nw.Network, x, upto: str | None = None, on_layer=None) -> dict[str, np.ndarray]:
    """Every layer's post-activation output for the batch ``x`` (B, *input_shape), as float32.

    With ``upto`` the pass stops after that layer (the returned dict ends there).
    ``on_layer(name)`` is called after each layer (progress of a long pass; it may raise to
    abandon the pass).
    """
    acts = {}
    for layer, act, inputs in forward_stream(network, x, upto=upto, on_layer=on_layer):
        del inputs  # so the stream can drop them while computing the next layer
        acts[layer.name] = act.astype(np.float32)
        del act
    return acts


def predict(network: nw.Network, x, batch_size: int = 512) -> np.ndarray:
    """The output layer's activation for ``x``, in batches so memory stays bounded."""
    x = _check_input(network, x)
    out = network.output_layer.name
    parts = []
    for i in range(0, len(x), batch_size):
        for layer, act, inputs in forward_stream(network, x[i : i + batch_size], upto=out):
            del inputs
            if layer.name == out:
                parts.append(act.astype(np.float32))
            del act
    return np.concatenate(parts) if parts else np.zeros((0,) + network.output_layer.output_shape, np.float32)
