"""Does every layer's settings and weights agree with the shapes around it?

A saved network is a JSON header plus arrays; a hand-edited or generated file can hold a conv
whose kernel expects 3 input channels behind a layer that makes 8, or strides of 0, and would
then load and fail deep in the simulator with an index error. ``shape_problems`` recomputes each
layer's output shape from its inbound shapes, its config and its weights (the same rules the
Keras importer and the engine use: channels-last, Keras 'same'/'valid' padding) and says, per
layer and field, what does not fit. ``Network.load`` refuses a file with any.
"""

from __future__ import annotations

import math

import numpy as np

from workbench.models import layer as nw


class _Bad(Exception):
    """One problem of one layer (the message names the field)."""


def _ints(value, n: int, field: str, minimum: int) -> list[int]:
    if not isinstance(value, (list, tuple)) or len(value) != n:
        raise _Bad(f"{field} must be {n} whole numbers, got {value!r}")
    out = []
    for v in value:
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < minimum:
            raise _Bad(f"{field} must be whole numbers >= {minimum}, got {value!r}")
        out.append(int(v))
    return out


def _spatial(in_shape, field: str = "input") -> tuple[int, int, int]:
    if len(in_shape) != 3:
        raise _Bad(f"{field} shape {tuple(in_shape)} is not (height, width, channels)")
    return in_shape


def _window_out(size: int, k: int, s: int, padding: str, what: str) -> int:
    if padding == "same":
        return math.ceil(size / s)
    if padding == "valid":
        if size < k:
            raise _Bad(f"{what} {k} is larger than the input ({size}) with 'valid' padding")
        return (size - k) // s + 1
    raise _Bad(f"padding must be 'same' or 'valid', got {padding!r}")


def _weights(layer: nw.Layer, rank: int) -> np.ndarray:
    w = layer.weights
    if w is None:
        raise _Bad("weights are missing")
    if w.ndim != rank:
        raise _Bad(f"weights have shape {w.shape}, expected {rank} dimensions")
    return w


def _bias(layer: nw.Layer, n: int) -> None:
    if layer.bias is not None and layer.bias.shape != (n,):
        raise _Bad(f"bias has shape {layer.bias.shape}, expected ({n},)")


def expected_shape(layer: nw.Layer, ins: list[tuple[int, ...]]) -> tuple[int, ...]:
    """The output shape ``layer`` computes from inbound shapes ``ins`` (raises _Bad)."""
    kind, cfg = layer.kind, layer.config
    if not isinstance(cfg, dict):
        raise _Bad(f"config must be an object, got {cfg!r}")
    if kind == nw.INPUT:
        if ins:
            raise _Bad("an input layer has no inbound layers")
        return layer.output_shape
    if not ins:
        raise _Bad("no inbound layer")
    x = ins[0]
    if kind not in (nw.ADD, nw.ACTIVATION, nw.CONCATENATE) and len(ins) != 1:
        raise _Bad(f"{len(ins)} inbound layers, expected 1")
    if kind == nw.DENSE:
        w = _weights(layer, 2)
        if w.shape[0] != math.prod(x):
            raise _Bad(f"weights have shape {w.shape}, but the input has {math.prod(x)} values")
        _bias(layer, w.shape[1])
        return (w.shape[1],)
    if kind in (nw.CONV2D, nw.DEPTHWISE_CONV2D):
        h, wd, c = _spatial(x)
        w = _weights(layer, 4)
        kh, kw, cin, cout = w.shape
        if cin != c:
            raise _Bad(f"weights have shape {w.shape} for {cin} input channels, but the input has {c}")
        sh, sw = _ints(cfg.get("strides"), 2, "strides", 1)
        pad = cfg.get("padding")
        out_c = c * cout if kind == nw.DEPTHWISE_CONV2D else cout
        _bias(layer, out_c)
        return (_window_out(h, kh, sh, pad, "kernel height"), _window_out(wd, kw, sw, pad, "kernel width"), out_c)
    if kind in (nw.AVG_POOL2D, nw.MAX_POOL2D):
        h, wd, c = _spatial(x)
        ph, pw = _ints(cfg.get("pool_size"), 2, "pool_size", 1)
        sh, sw = _ints(cfg.get("strides") or [ph, pw], 2, "strides", 1)
        pad = cfg.get("padding", "valid")
        return (_window_out(h, ph, sh, pad, "pool height"), _window_out(wd, pw, sw, pad, "pool width"), c)
    if kind == nw.GLOBAL_AVG_POOL2D:
        return (_spatial(x)[2],)
    if kind == nw.FLATTEN:
        return (math.prod(x),)
    if kind == nw.RESHAPE:
        if math.prod(layer.output_shape) != math.prod(x):
            raise _Bad(f"reshapes {math.prod(x)} values into {layer.output_shape}")
        return layer.output_shape
    if kind == nw.ZERO_PAD2D:
        h, wd, c = _spatial(x)
        pad = cfg.get("padding")
        if not isinstance(pad, (list, tuple)) or len(pad) != 2:
            raise _Bad(f"padding must be [[top, bottom], [left, right]], got {pad!r}")
        (t, b), (lf, r) = _ints(pad[0], 2, "padding", 0), _ints(pad[1], 2, "padding", 0)
        return (h + t + b, wd + lf + r, c)
    if kind in (nw.ADD, nw.ACTIVATION):
        for i, s in enumerate(ins[1:], 1):
            if s != x:
                raise _Bad(f"inbound {i} has shape {s}, inbound 0 has {x}")
        scales = cfg.get("input_scales")
        if scales is not None and (not isinstance(scales, list) or len(scales) < len(ins)):
            raise _Bad(f"input_scales must list one number per inbound layer, got {scales!r}")
        return x
    if kind == nw.CONCATENATE:
        axis = cfg.get("axis")
        if isinstance(axis, bool) or not isinstance(axis, int) or not 0 <= axis < len(x):
            raise _Bad(f"axis must be 0..{len(x) - 1} (per sample, no batch axis), got {axis!r}")
        for i, s in enumerate(ins[1:], 1):
            if len(s) != len(x) or any(a != b for j, (a, b) in enumerate(zip(s, x)) if j != axis):
                raise _Bad(f"inbound {i} has shape {s}, which does not join {x} along axis {axis}")
        return tuple(sum(s[axis] for s in ins) if j == axis else d for j, d in enumerate(x))
    raise _Bad(f"unknown kind {kind!r}")  # pragma: no cover - Layer refuses unknown kinds


def shape_problems(network) -> list[str]:
    """One line per layer that does not fit: "layer 'c2': weights have shape ... ", in order."""
    shapes: dict[str, tuple[int, ...]] = {}
    problems = []
    for layer in network.layers:
        try:
            ins = [shapes[n] for n in layer.inbound]
            got = tuple(expected_shape(layer, ins))
            if any(d < 1 for d in layer.output_shape):
                raise _Bad(f"output_shape {layer.output_shape} has a dimension below 1")
            if got != layer.output_shape:
                raise _Bad(f"output_shape is {layer.output_shape}, but its input and settings give {got}")
        except _Bad as exc:
            problems.append(f"layer '{layer.name}' ({layer.kind}): {exc}")
            got = layer.output_shape
        except (TypeError, ValueError, AttributeError, KeyError, IndexError) as exc:  # wrong JSON types
            problems.append(f"layer '{layer.name}' ({layer.kind}): malformed settings ({exc})")
            got = layer.output_shape
        shapes[layer.name] = got
    return problems
