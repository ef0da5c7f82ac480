"""The baseline a user would write: the same IF network, vectorized with plain numpy.

Convolutions are im2col (``sliding_window_view`` + one ``matmul`` per layer, BLAS), dense layers
one ``matmul``; pooling by reshaping; IF neurons with the INIsim equations of our engine
(``v += dt*J``; spike when ``v >= threshold``; reset by subtraction; a spike carries
``threshold/dt``), float32 throughout. Like ours, it computes the first layer's current once
when the input is constant. Only what the benchmark networks use is implemented (valid pooling
with stride == pool size and divisible sizes); anything else raises.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from workbench.engine.synapses import padding_for
from workbench.models import network as nw


class NumpyIF:
    def __init__(self, network: nw.Network, x: np.ndarray, threshold: float = 1.0, dt: float = 1.0):
        self.net = network
        self.x = np.asarray(x, np.float32)
        self.thr = np.float32(threshold)
        self.dt = np.float32(dt)
        self.batch = self.x.shape[0]
        self.v = {l.name: np.zeros((self.batch, *l.output_shape), np.float32) for l in network.neuron_layers}
        self.counts = {name: np.zeros(v.shape, np.float32) for name, v in self.v.items()}
        self.pool_counts = {}
        self.const = {}
        self.wmat = {}
        for l in network.layers:
            if l.kind == nw.CONV2D:  # (kh, kw, cin, cout) -> rows ordered (cin, kh, kw) as the windows
                self.wmat[l.name] = np.ascontiguousarray(l.weights.transpose(2, 0, 1, 3).reshape(-1, l.weights.shape[3]))
            elif l.kind not in (nw.INPUT, nw.DENSE, nw.AVG_POOL2D, nw.MAX_POOL2D, nw.FLATTEN):
                raise NotImplementedError(f"numpy baseline: layer kind {l.kind}")

    def _conv(self, layer, x):
        kh, kw = layer.weights.shape[:2]
        sh, sw = layer.config["strides"]
        if layer.config["padding"] == "same":
            oh, ow = layer.output_shape[:2]
            pt, pl = padding_for("same", x.shape[1:3], (kh, kw), (sh, sw))
            pb = max((oh - 1) * sh + kh - x.shape[1] - pt, 0)
            pr = max((ow - 1) * sw + kw - x.shape[2] - pl, 0)
            x = np.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)))
        win = sliding_window_view(x, (kh, kw), axis=(1, 2))[:, ::sh, ::sw]  # (B, OH, OW, C, kh, kw)
        b, oh, ow = win.shape[:3]
        cols = win.reshape(b * oh * ow, -1)  # the im2col copy
        return (cols @ self.wmat[layer.name] + layer.bias).reshape(b, oh, ow, -1)

    @staticmethod
    def _blocks(layer, x):
        ph, pw = layer.config["pool_size"]
        if (layer.config.get("strides") or [ph, pw]) != [ph, pw] or layer.config.get("padding", "valid") != "valid":
            raise NotImplementedError("numpy baseline: pooling with stride != size or padding")
        b, h, w, c = x.shape
        x = x[:, : h // ph * ph, : w // pw * pw]
        return x.reshape(b, h // ph, ph, w // pw, pw, c).transpose(0, 1, 3, 5, 2, 4).reshape(b, h // ph, w // pw, c, ph * pw)

    def step(self) -> None:
        y = {}
        for layer in self.net.layers:
            ins = [y[n] for n in layer.inbound]
            kind = layer.kind
            if kind == nw.INPUT:
                y[layer.name] = self.x
                continue
            if kind == nw.FLATTEN:
                y[layer.name] = ins[0].reshape(self.batch, -1)
                continue
            if kind == nw.MAX_POOL2D:  # INIsim: pass the input with the highest count so far
                cnt = self.pool_counts.setdefault(layer.name, np.zeros(ins[0].shape, np.float32))
                cnt += ins[0]
                best = self._blocks(layer, cnt).argmax(axis=-1)[..., None]
                y[layer.name] = np.take_along_axis(self._blocks(layer, ins[0]), best, axis=-1)[..., 0]
                continue
            if layer.name in self.const:
                J = self.const[layer.name]
            else:
                if kind == nw.CONV2D:
                    J = self._conv(layer, ins[0])
                elif kind == nw.DENSE:
                    J = ins[0].reshape(self.batch, -1) @ layer.weights + layer.bias
                else:  # AVG_POOL2D
                    J = self._blocks(layer, ins[0]).mean(axis=-1) * np.float32(layer.config["input_scales"][0])
                if layer.inbound == (self.net.layers[0].name,):
                    self.const[layer.name] = J
            v = self.v[layer.name]
            v += self.dt * J
            fired = v >= self.thr
            v -= fired * self.thr
            self.counts[layer.name] += fired
            y[layer.name] = fired.astype(np.float32) * (self.thr / self.dt)

    def run(self, n: int) -> None:
        for _ in range(n):
            self.step()
