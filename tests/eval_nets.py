"""Hand-built networks for the evaluation, diagnosis and sweep tests, with faults planted on request."""

from __future__ import annotations

import numpy as np

from workbench.models import network as nw
from workbench.models.forward import forward
from workbench.models.normalize import normalize


def mlp(seed: int = 0, classes: int = 4) -> nw.Network:
    """input 12 -> fc1 24 -> fc2 24 -> fc3 16 -> out (classes), ReLU, positive-leaning weights."""
    rng = np.random.default_rng(seed)

    def dense(name, src, n_in, n_out, act="relu"):
        w = rng.normal(0.08, 0.35, (n_in, n_out)) / np.sqrt(n_in) * 2
        return nw.Layer(name, nw.DENSE, (n_out,), (src,), w, rng.uniform(0.0, 0.1, n_out), act)

    layers = [nw.Layer("input", nw.INPUT, (12,)), dense("fc1", "input", 12, 24), dense("fc2", "fc1", 24, 24),
              dense("fc3", "fc2", 24, 16), dense("out", "fc3", 16, classes, "softmax")]
    return nw.Network("mlp", layers)


def data(network: nw.Network, n: int = 96, seed: int = 1):
    """Inputs in [0, 1] and the ANN's own labels (so the ANN is 100% right)."""
    x = np.random.default_rng(seed).uniform(0, 1, (n, *network.input_shape)).astype(np.float32)
    y = forward(network, x)[network.output_layer.name].argmax(1)
    return x, y.astype(np.int64)


def normalized(seed: int = 0):
    net = mlp(seed)
    x, y = data(net)
    return normalize(net, x, 100.0), x, y


def over_scaled(layer: str = "fc2", factor: float = 5.0):
    """Normalized, then ``layer``'s weights and bias x factor: its activations far above 1."""
    net, x, y = normalized()
    net[layer].weights = net[layer].weights * factor
    net[layer].bias = net[layer].bias * factor
    return net, x, y


def dead(layer: str = "fc2", bias: float = -50.0):
    """Normalized, then ``layer`` gets a large negative bias: it never fires, ANN or SNN."""
    net, x, y = normalized()
    net[layer].bias = np.full_like(net[layer].bias, bias)
    return net, x, y
