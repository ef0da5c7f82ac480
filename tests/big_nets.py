"""A generated network of a few million neurons (no Keras) for the window's scale tests."""

from __future__ import annotations

import numpy as np

from workbench.models import network as nw


def big_cnn(size: int = 160, seed: int = 0) -> nw.Network:
    """input size x size x 3 -> conv 3x3 (32) -> conv 3x3 stride 2 (64) -> conv 3x3 (64)
    -> global average pool -> dense 10: at 160 x 160, 819,200 + 409,600 + 409,600 + 10
    = 1.64 M neurons; the first layer is larger than any screen in both directions (as rows of
    a raster: 819,200; as a heat map: 32 tiles of 160 x 160)."""
    rng = np.random.default_rng(seed)
    half = size // 2

    def conv(name, inbound, shape, cin, cout, stride):
        w = rng.uniform(-0.05, 0.15, (3, 3, cin, cout)).astype(np.float32) / np.sqrt(cin)
        return nw.Layer(name, nw.CONV2D, shape, (inbound,), w, np.full(cout, 0.01, np.float32), "relu",
                        config={"strides": (stride, stride), "padding": "same"})

    layers = [
        nw.Layer("input", nw.INPUT, (size, size, 3)),
        conv("conv1", "input", (size, size, 32), 3, 32, 1),
        conv("conv2", "conv1", (half, half, 64), 32, 64, 2),
        conv("conv3", "conv2", (half, half, 64), 64, 64, 1),
        nw.Layer("gap", nw.GLOBAL_AVG_POOL2D, (64,), ("conv3",)),
        nw.Layer("output", nw.DENSE, (10,), ("gap",), rng.normal(0, 0.3, (64, 10)).astype(np.float32),
                 np.zeros(10, np.float32), "linear"),
    ]
    return nw.Network("big_cnn", layers)
