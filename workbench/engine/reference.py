"""A slow, obvious numpy simulator of the same IF equations, to check the numba kernels against.

Written for reading, not speed: every layer recomputes its current from scratch with plain numpy
(explicit padding, explicit windows), no event-driven tricks, no caching. If this and the
Simulator disagree on a single spike, one of them is wrong.
"""

from __future__ import annotations

import math

import numpy as np

from workbench.models import network as nw


def _pad_same(x, k, s):
    """TF 'same' padding of (B, H, W, C) for kernel k=(kh, kw), stride s=(sh, sw)."""
    pads = []
    for n, kk, ss in zip(x.shape[1:3], k, s):
        total = max((math.ceil(n / ss) - 1) * ss + kk - n, 0)
        pads.append((total // 2, total - total // 2))
    return pads


def _windows(x, k, s, padding, fill=0.0):
    """All (B, OH, OW, kh, kw, C) windows; padded cells hold ``fill``."""
    if padding == "same":
        (t, b), (l, r) = _pad_same(x, k, s)
        x = np.pad(x, ((0, 0), (t, b), (l, r), (0, 0)), constant_values=fill)
    B, H, W, C = x.shape
    oh = (H - k[0]) // s[0] + 1
    ow = (W - k[1]) // s[1] + 1
    out = np.empty((B, oh, ow, k[0], k[1], C), dtype=x.dtype)
    for i in range(oh):
        for j in range(ow):
            out[:, i, j] = x[:, i * s[0] : i * s[0] + k[0], j * s[1] : j * s[1] + k[1], :]
    return out


def synaptic(layer: nw.Layer, inputs: list[np.ndarray]) -> np.ndarray:
    x = inputs[0]
    kind = layer.kind
    if kind == nw.DENSE:
        b = layer.bias if layer.bias is not None else 0.0
        return (x.reshape(x.shape[0], -1).astype(np.float64) @ layer.weights + b).astype(np.float32)
    if kind in (nw.CONV2D, nw.DEPTHWISE_CONV2D):
        w = layer.weights
        win = _windows(x.astype(np.float64), w.shape[:2], layer.config["strides"], layer.config["padding"])
        if kind == nw.CONV2D:
            out = np.einsum("bijyxc,yxco->bijo", win, w)
        else:
            out = np.einsum("bijyxc,yxcm->bijcm", win, w).reshape(*win.shape[:3], -1)
        b = layer.bias if layer.bias is not None else 0.0
        return (out + b).astype(np.float32)
    scales = layer.config.get("input_scales") or [1.0] * len(inputs)
    if kind == nw.AVG_POOL2D:
        cfg = layer.config
        k, s = cfg["pool_size"], cfg.get("strides") or cfg["pool_size"]
        win = _windows(x.astype(np.float64), k, s, cfg.get("padding", "valid"), fill=np.nan)
        return (np.nanmean(win, axis=(3, 4)) * scales[0]).astype(np.float32)
    if kind == nw.GLOBAL_AVG_POOL2D:
        return (x.mean(axis=(1, 2)) * scales[0]).astype(np.float32)
    if kind in (nw.ADD, nw.ACTIVATION):
        return sum(np.float32(s) * a for s, a in zip(scales, inputs)).astype(np.float32)
    raise AssertionError(kind)


def run_reference(network: nw.Network, x: np.ndarray, steps: int, threshold: float = 1.0,
                  reset: str = "subtract", dt: float = 1.0, v_init: float = 0.0,
                  burst: int = 1, current: set[str] | None = None,
                  readout: str = "auto", signed: set[str] | None = None) -> dict[str, np.ndarray]:
    """Spike trains [T, B, *shape] of every neuron layer; constant input encoding, IF neurons
    (membrane starting at ``v_init * threshold``; up to ``burst`` spikes a step:
    s = clip(floor(v / threshold), 0, burst) where v >= threshold). Max pooling layers whose
    config says ``max_pool: lateral`` pass the increase of the window's largest running sum.
    ``current``: the layers that carry current (y = J, no spikes; default as the simulator's
    conversion plan decides for ``readout``: ``conversion.current_layers``). ``signed``: the
    layers that are signed IF neurons (also -1 spikes, up to ``burst``, where v <= -threshold;
    reset to zero or by subtraction; default: ``conversion.signed_layers``, the linear layers
    that must spike; pass ``set()`` with ``current=set(), readout='spikes'`` for uniform IF)."""
    from workbench.engine.conversion import current_layers, signed_layers

    current = current_layers(network, readout) if current is None else current
    signed = signed_layers(network, readout) if signed is None else signed
    names = [l.name for l in network.layers]
    v = {l.name: np.full((x.shape[0], *l.output_shape), np.float32(v_init * threshold), np.float32)
         for l in network.neuron_layers}
    pool_counts: dict[str, np.ndarray] = {}
    spikes = {l.name: [] for l in network.neuron_layers}
    for _ in range(steps):
        y = {}
        for layer in network.layers:
            ins = [y[n] for n in layer.inbound]
            if layer.kind == nw.INPUT:
                y[layer.name] = x.astype(np.float32)
            elif layer.is_neuron_layer:
                J = synaptic(layer, ins)
                if layer.name in current:  # a synapse, not a neuron: the current flows on
                    spikes[layer.name].append(np.zeros(J.shape, np.int16))
                    y[layer.name] = (np.float32(dt) * J).astype(np.float32) * np.float32(1.0 / dt)
                    continue
                vv = v[layer.name] + np.float32(dt) * J
                fired = vv >= np.float32(threshold)
                count = np.where(fired, np.clip(np.floor(vv / np.float32(threshold)), 1, burst), 0).astype(np.float32)
                if layer.name in signed:  # signed IF: the same, mirrored below -threshold
                    thr = np.float32(threshold)
                    neg = vv <= -thr
                    count -= np.where(neg, np.clip(np.floor(-vv / thr), 1, burst), 0).astype(np.float32)
                    if reset == "zero":
                        vv = np.where(fired | neg, np.float32(0), vv)
                    else:
                        vv = vv - count * thr
                    v[layer.name] = vv.astype(np.float32)
                    spikes[layer.name].append(count.astype(np.int16))
                    y[layer.name] = count * np.float32(threshold / dt)
                    continue
                if reset == "subtract":
                    vv = np.where(fired, vv - count * np.float32(threshold), vv)
                elif reset == "zero":
                    vv = np.where(fired, np.float32(0), vv)
                else:
                    vv = np.where(fired, vv - np.float32(threshold) * np.floor(vv / np.float32(threshold)), vv)
                v[layer.name] = vv.astype(np.float32)
                spikes[layer.name].append(count.astype(np.int16))
                y[layer.name] = count * np.float32(threshold / dt)
            elif layer.kind in (nw.FLATTEN, nw.RESHAPE):
                y[layer.name] = ins[0].reshape(ins[0].shape[0], *layer.output_shape)
            elif layer.kind == nw.ZERO_PAD2D:
                (t, b), (l, r) = layer.config["padding"]
                y[layer.name] = np.pad(ins[0], ((0, 0), (t, b), (l, r), (0, 0)))
            elif layer.kind == nw.CONCATENATE:
                y[layer.name] = np.concatenate(ins, axis=layer.config["axis"] + 1)
            elif layer.kind == nw.MAX_POOL2D:
                cfg = layer.config
                k, s = cfg["pool_size"], cfg.get("strides") or cfg["pool_size"]
                cnt = pool_counts.setdefault(layer.name, np.zeros(ins[0].shape))
                if cfg.get("max_pool") == "lateral":
                    before = _windows(cnt, k, s, cfg.get("padding", "valid"), fill=-np.inf).max(axis=(3, 4))
                    cnt += ins[0]
                    after = _windows(cnt, k, s, cfg.get("padding", "valid"), fill=-np.inf).max(axis=(3, 4))
                    y[layer.name] = (after - before).astype(np.float32)
                    continue
                cnt += ins[0]
                cw = _windows(cnt, k, s, cfg.get("padding", "valid"), fill=-np.inf)
                xw = _windows(ins[0], k, s, cfg.get("padding", "valid"))
                flat_c = cw.reshape(*cw.shape[:3], -1, cw.shape[-1])
                flat_x = xw.reshape(*xw.shape[:3], -1, xw.shape[-1])
                best = np.argmax(flat_c, axis=3)[:, :, :, None, :]
                y[layer.name] = np.take_along_axis(flat_x, best, axis=3)[:, :, :, 0, :]
            else:
                raise AssertionError(layer.kind)
    assert names
    return {k: np.stack(v_) for k, v_ in spikes.items()}
