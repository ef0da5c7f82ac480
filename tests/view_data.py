"""Small hand-built networks run for a few steps, giving real Snapshots for the view tests."""

from __future__ import annotations

import numpy as np

from workbench.engine.config import SimConfig
from workbench.engine.simulator import Simulator
from workbench.analysis.snapshot import make_snapshot
from workbench.models import network as nw
from workbench.models.forward import forward


def small_network(seed: int = 0) -> nw.Network:
    """input (4, 4, 1) -> conv1 (4, 4, 3) -> flatten (48) -> fc1 (12) -> output (5)."""
    rng = np.random.default_rng(seed)
    layers = [
        nw.Layer("input", nw.INPUT, (4, 4, 1)),
        nw.Layer("conv1", nw.CONV2D, (4, 4, 3), ("input",), rng.uniform(0.0, 0.12, (3, 3, 1, 3)),
                 rng.uniform(0.0, 0.05, 3), "relu", config={"strides": (1, 1), "padding": "same"}),
        nw.Layer("flatten", nw.FLATTEN, (48,), ("conv1",)),
        nw.Layer("fc1", nw.DENSE, (12,), ("flatten",), rng.normal(0.0, 0.15, (48, 12)),
                 rng.uniform(0.0, 0.1, 12), "relu"),
        nw.Layer("output", nw.DENSE, (5,), ("fc1",), rng.normal(0.0, 0.4, (12, 5)),
                 np.zeros(5), "linear"),
    ]
    return nw.Network("small", layers)


def make_run(steps: int = 20, batch: int = 1, labels: bool = False, seed: int = 0, capacity: int = 500):
    """(simulator, ann activations) after ``steps`` steps; the recorder keeps ``capacity`` steps."""
    net = small_network(seed)
    x = np.random.default_rng(seed + 1).uniform(0.0, 1.0, (batch, 4, 4, 1)).astype(np.float32)
    y = np.arange(batch) % 5 if labels else None
    sim = Simulator(net, SimConfig(batch=batch, steps=max(steps, 1)), x, y, record_capacity=capacity)
    sim.run(steps)
    ann = forward(net, x)
    return sim, ann


def snapshot(steps: int = 20, batch: int = 1, labels: bool = False, seed: int = 0, **kw):
    sim, ann = make_run(steps, batch, labels, seed)
    return make_snapshot(sim, ann, **kw)
