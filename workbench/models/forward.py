"""The network's own ANN forward pass in numpy: the reference every spiking run is compared to.

It reproduces Keras' inference arithmetic (TF's 'same' padding, average pooling that divides
by the number of non-padding cells) and honours ``config['input_scales']`` of weight-less neuron
layers, so a normalized network computes exactly ``original_output / lambda`` for ReLU layers.
Sums are accumulated in float64 and the outputs returned as float32.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from workbench.errors import DataFileError
from workbench.models import network as nw

_WINDOW_BUDGET = 32 * 2**20  # elements per im2col chunk; bounds memory for large batches


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
    step = max(1, _WINDOW_BUDGET // max(per_sample, 1))
    return np.concatenate([fn(x[i : i + step]) for i in range(0, len(x), step)]) if len(x) else fn(x)


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

    return _chunked(x, out_hw * w.size // w.shape[-1], run) + layer.bias


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
        return np.tensordot(x, layer.weights.astype(np.float64), axes=([-1], [0])) + layer.bias
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


def forward(network: nw.Network, x, upto: str | None = None, on_layer=None) -> dict[str, np.ndarray]:
    """Every layer's post-activation output for the batch ``x`` (B, *input_shape), as float32.

    With ``upto`` the pass stops after that layer (the returned dict ends there).
    ``on_layer(name)`` is called after each layer (progress of a long pass; it may raise to
    abandon the pass).
    """
    if upto is not None:
        network.index(upto)  # KeyError early for a wrong name
    acts = {}
    for layer in network.layers:
        if layer.kind == nw.INPUT:
            acts[layer.name] = _check_input(network, x)
        else:
            z = preactivation(layer, [acts[s] for s in layer.inbound])
            acts[layer.name] = activation_fn(layer.activation, layer.activation_params)(z)
        if on_layer is not None:
            on_layer(layer.name)
        if layer.name == upto:
            break
    return {name: a.astype(np.float32) for name, a in acts.items()}


def predict(network: nw.Network, x, batch_size: int = 512) -> np.ndarray:
    """The output layer's activation for ``x``, in batches so memory stays bounded."""
    x = _check_input(network, x)
    out = network.output_layer.name
    parts = [forward(network, x[i : i + batch_size])[out] for i in range(0, len(x), batch_size)]
    return np.concatenate(parts) if parts else np.zeros((0,) + network.output_layer.output_shape, np.float32)
