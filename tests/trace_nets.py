"""Small hand-built networks and traces for the trace I/O, compare, C reference and NIR tests."""

from __future__ import annotations

import numpy as np

from workbench.engine.config import SimConfig
from workbench.engine.simulator import Simulator
from workbench.models import network as nw


def conv_net(seed: int = 0) -> nw.Network:
    """input 10x10x1 -> conv 3x3 same (4) -> max pool 2x2 -> avg pool 2x2/2 'same' (asymmetric,
    padding excluded) -> conv 3x3 stride 2 same (6) -> flatten -> dense 12 -> dense 5."""
    rng = np.random.default_rng(seed)

    def w(*shape, scale):
        return (rng.standard_normal(shape) * scale).astype(np.float32)

    layers = [
        nw.Layer("input", nw.INPUT, (10, 10, 1)),
        nw.Layer("conv1", nw.CONV2D, (10, 10, 4), ("input",), w(3, 3, 1, 4, scale=0.6), w(4, scale=0.05) + 0.05,
                 "relu", config={"strides": [1, 1], "padding": "same"}),
        nw.Layer("pool1", nw.MAX_POOL2D, (5, 5, 4), ("conv1",), config={"pool_size": [2, 2], "strides": [2, 2],
                                                                         "padding": "valid"}),
        nw.Layer("pool2", nw.AVG_POOL2D, (3, 3, 4), ("pool1",), config={"pool_size": [2, 2], "strides": [2, 2],
                                                                         "padding": "same"}),
        nw.Layer("conv2", nw.CONV2D, (2, 2, 6), ("pool2",), w(3, 3, 4, 6, scale=0.5), w(6, scale=0.05) + 0.02,
                 "relu", config={"strides": [2, 2], "padding": "same"}),
        nw.Layer("flatten", nw.FLATTEN, (24,), ("conv2",)),
        nw.Layer("fc1", nw.DENSE, (12,), ("flatten",), w(24, 12, scale=0.5), w(12, scale=0.05) + 0.02, "relu"),
        nw.Layer("out", nw.DENSE, (5,), ("fc1",), w(12, 5, scale=0.6), w(5, scale=0.05), "linear"),
    ]
    return nw.Network("tiny_cnn", layers)


def dense_net(seed: int = 0) -> nw.Network:
    rng = np.random.default_rng(seed)
    layers = [
        nw.Layer("input", nw.INPUT, (6,)),
        nw.Layer("fc1", nw.DENSE, (8,), ("input",), rng.standard_normal((6, 8)).astype(np.float32) * 0.6,
                 np.full(8, 0.05, np.float32), "relu"),
        nw.Layer("out", nw.DENSE, (3,), ("fc1",), rng.standard_normal((8, 3)).astype(np.float32) * 0.6,
                 np.zeros(3, np.float32), "linear"),
    ]
    return nw.Network("tiny_dense", layers)


def inputs(network: nw.Network, batch: int = 2, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.random((batch, *network.input_shape)).astype(np.float32)


def run_trace(network=None, steps: int = 30, batch: int = 2, current: bool = True, **cfg):
    network = network or conv_net()
    config = SimConfig(steps=steps, batch=batch, record_current=current, **cfg)
    sim = Simulator(network, config, inputs(network, batch), labels=np.arange(batch))
    sim.run(steps)
    return sim.trace(ann={"out": np.ones((batch, 5), np.float32)} if network.output_layer.size == 5 else None)
