"""Engines side by side on one network and batch, in one process: our simulator (IF serial, IF on
all threads, LIF), the numpy IF baseline, and T forward passes of the Keras model (dense bound).

Rounds are interleaved (ours, numpy, keras, ours, ...) so that background load hits all engines
alike; each figure is the best round (the least disturbed), and ratios are taken between them.
"""

from __future__ import annotations

import os
import time

import numpy as np

from benchmarks.networks import BenchNet
from benchmarks.numpy_if import NumpyIF
from workbench.engine import synapses
from workbench.engine.config import SimConfig
from workbench.engine.fanout import fan_out
from workbench.engine.neurons import make_neuron
from workbench.engine.simulator import Simulator
from workbench.models import network as nw

LIF_RATE_SCALE = 10.0  # LIF's rate is 0 for J <= 1: scale the normalized currents (NengoDL-style)


def _sim(net: nw.Network, x, neuron: str = "if") -> Simulator:
    cfg = SimConfig(batch=x.shape[0], record=(), record_membrane=False)
    if neuron == "lif":
        cfg = cfg.replace(neuron=make_neuron("lif"), rate_scale=LIF_RATE_SCALE)
    return Simulator(net, cfg, x=x)


def synops_per_step(sim: Simulator, steps: int) -> tuple[float, dict]:
    """Synaptic operations per step (each spike x the synapses it drives), counted from the
    actual spikes of ``steps`` further steps; and each neuron layer's spike rate over them."""
    fan = fan_out(sim.network)
    sources = [sim.layer(n) for n in fan if sim.layer(n).layer.kind != nw.INPUT]
    before = {ls.layer.name: ls.counts.copy() for ls in sim.layers if ls.is_neuron}
    total = 0
    for _ in range(steps):
        sim.step()
        for ls in sources:
            total += int(((ls.y != 0) * fan[ls.layer.name]).sum())
    rates = {n: float((sim.layer(n).counts - c).mean() / steps) for n, c in before.items()}
    return total / steps, rates


class _Keras:
    """T forward passes of the Keras model: the faster of an eager call and a ``tf.function``."""

    def __init__(self, path, x):
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        import tensorflow as tf

        from workbench.models.keras.importer import load_model_safely

        self.model = load_model_safely(path)
        self.x = tf.constant(x)
        self.graph = tf.function(lambda t: self.model(t, training=False))
        self.graph(self.x)
        self.model(self.x, training=False)

    def run(self, n: int, mode: str) -> None:
        f = self.graph if mode == "graph" else (lambda t: self.model(t, training=False))
        out = None
        for _ in range(n):
            out = f(self.x)
        np.asarray(out)


MIN_SECONDS = 0.25  # each timing lasts at least this long: a 2 ms window is mostly noise
# Pause before each timing: TensorFlow's and OpenBLAS's worker threads spin for a while after
# their last op (OpenBLAS: up to ~0.1 s) and would take a core from whichever engine is timed
# next (ours followed Keras in every round and read 5-15 % slower than the same code timed
# later in the round).
SETTLE_SECONDS = 0.3


def _timed(fn, n: int) -> float:
    """Seconds per step of ``fn(n)`` called repeatedly for at least ``MIN_SECONDS`` (as timeit's
    autorange: a fast engine is not measured over a window that one context switch or another
    engine's spinning thread pool can double)."""
    done = 0
    t = time.perf_counter()
    while True:
        fn(n)
        done += n
        elapsed = time.perf_counter() - t
        if elapsed >= MIN_SECONDS:
            return elapsed / done


def measure(bn: BenchNet, batch: int, steps: int, rounds: int = 3, keras: bool = True) -> dict:
    """Seconds per timestep of each engine (best of ``rounds``) plus paths, synops, equal-work check."""
    x = bn.x_pool[:batch]
    if x.shape[0] < batch:
        x = np.resize(bn.x_pool, (batch, *bn.x_pool.shape[1:]))
    ours = _sim(bn.network, x)
    lif = _sim(bn.network, x, "lif")
    base = NumpyIF(bn.network, x)
    # equal work: the same spikes in every layer after `steps` steps
    ours.run(steps)
    base.run(steps)
    same = all(np.array_equal(ours.layer(n).counts, base.counts[n]) for n in base.counts)
    cores = os.cpu_count() or 1

    def ours_with(t):
        def run(n):
            synapses.set_threads(t)
            ours.run(n)
        return run

    def lif_run(n):
        synapses.set_threads(None)
        lif.run(n)

    # ours_if: the default (all cores, serial while the machine is oversubscribed);
    # ours_if_1t / ours_if_all: forced serial / forced onto every core
    engines = {"ours_if": ours_with(None), "ours_if_1t": ours_with(1), "ours_if_all": ours_with(cores),
               "ours_lif": lif_run, "numpy_if": base.run}
    kr = None
    if keras:
        kr = _Keras(bn.keras_path, x)
        engines["keras_eager"] = lambda n: kr.run(n, "eager")
        engines["keras_graph"] = lambda n: kr.run(n, "graph")
    for fn in engines.values():  # warm-up: compile, caches, first BLAS calls
        fn(2)
    best = {k: float("inf") for k in engines}
    for _ in range(rounds):
        for name, fn in engines.items():
            time.sleep(SETTLE_SECONDS)
            best[name] = min(best[name], _timed(fn, steps))
    synapses.set_threads(cores)
    ours.run(1)
    all_paths = {ls.layer.name: ls.path for ls in ours.layers if ls.path}
    synapses.set_threads(None)
    ours.run(1)
    auto_serial = synapses.threads() == 1 and cores > 1
    paths = {ls.layer.name: ls.path for ls in ours.layers if ls.path}
    lif_paths = {ls.layer.name: ls.path for ls in lif.layers if ls.path}
    synops, rates = synops_per_step(ours, 20)
    _, lif_rates = synops_per_step(lif, 20)
    if keras:
        best["keras"] = min(best["keras_eager"], best["keras_graph"])
    return {"net": bn.name, "batch": batch, "steps": steps, "threads": cores, "auto_serial": auto_serial,
            "all_paths": all_paths, "sec_per_step": best,
            "same_spikes": same, "paths": paths, "lif_paths": lif_paths, "synops_per_step": synops,
            "rates": rates, "lif_rates": lif_rates}
