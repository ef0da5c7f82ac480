"""Compile (or load from numba's cache) the kernels a first timestep needs, before anyone waits.

On a machine where the engine's cache folder is empty (a fresh install, or an engine source
changed) the fused kernel takes ~20 s to compile. Without warning that was the first Step of the
window doing nothing for 20 s, or a command line run sitting at 0 %. The window's worker calls
``warm_up`` when a network arrives and shows ``message()`` meanwhile; the commands print it;
``scripts/setup.sh`` runs ``python -m workbench.analysis.warmup`` so that the first ``make run``
opens on warm kernels. With the cache filled ``warm_up`` takes ~0.4 s, once per process.

The kernels' types do not depend on the network (every layer program is the same int64 and
float32 tables over typed lists of flat arrays), so a tiny network compiles everything a big
one runs: the fused kernel with every layer kind and neuron model in it, and the helpers around it.
"""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

import numpy as np

COMPILE_SECONDS = 25  # what a compile takes on a 2-core VM (said in the message)
_LOCK = threading.Lock()
_WARM = [False]


def kernels_cached() -> bool:
    """Whether numba's cache folder holds the fused kernel (then a warm-up only loads it)."""
    folder = os.environ.get("NUMBA_CACHE_DIR")
    if not folder or not Path(folder).is_dir():
        return False
    return any(Path(folder).rglob("fused_kernel.run_fused-*.nbi"))


def is_warm() -> bool:
    return _WARM[0]


def message() -> str:
    """What to tell a person while ``warm_up`` runs."""
    if kernels_cached():
        return "Loading the engine's compiled kernels…"
    return (f"Compiling the engine's kernels: about {COMPILE_SECONDS} s, once per machine and "
            "version (numba's cache keeps them)…")


def _tiny_network():
    from workbench.models import network as nw

    rng = np.random.default_rng(0)
    same = {"strides": [1, 1], "padding": "same"}
    return nw.Network("warmup", [
        nw.Layer("in", nw.INPUT, (4, 4, 2)),
        nw.Layer("conv", nw.CONV2D, (4, 4, 3), ("in",), rng.uniform(0, 0.5, (3, 3, 2, 3)).astype(np.float32),
                 np.zeros(3, np.float32), "relu", config=same),
        nw.Layer("pool", nw.MAX_POOL2D, (2, 2, 3), ("conv",),
                 config={"pool_size": [2, 2], "strides": [2, 2], "padding": "valid"}),
        nw.Layer("flat", nw.FLATTEN, (12,), ("pool",)),
        nw.Layer("out", nw.DENSE, (3,), ("flat",), rng.uniform(0, 0.5, (12, 3)).astype(np.float32),
                 np.zeros(3, np.float32), "softmax"),
    ])


def warm_up() -> None:
    """Run two timesteps of a tiny network on the fused path (compiling or loading its kernels)
    and its statistics; once per process (later calls return at once)."""
    with _LOCK:
        if _WARM[0]:
            return
        from workbench.analysis.layer_stats import simulator_stats
        from workbench.engine.config import SimConfig
        from workbench.engine.simulator import Simulator
        from workbench.models.forward import forward

        net = _tiny_network()
        x = np.full((1, 4, 4, 2), 0.5, np.float32)
        sim = Simulator(net, SimConfig(steps=2), x, np.zeros(1, np.int64))
        sim.run(2)
        simulator_stats(sim, forward(net, x))
        _WARM[0] = True


def announce(stream=None) -> None:
    """Tell the terminal that the next run will compile first (nothing when the cache is filled)."""
    if not _WARM[0] and not kernels_cached():
        print(f"snn-workbench: {message()}", file=stream or sys.stderr, flush=True)


def main() -> int:
    """``python -m workbench.analysis.warmup``: fill the cache (quiet when it is already filled)."""
    announce()
    warm_up()
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
