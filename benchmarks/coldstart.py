"""Cold start: a fresh Python process opens the saved demo network and runs its first step.

Measured with numba's on-disk cache warm (a previous process compiled and cached every kernel)
and empty (a new NUMBA_CACHE_DIR: everything compiles), in subprocesses, wall clock from the
parent. The child reports its own breakdown and whether TensorFlow got imported.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
from workbench.models.loading import DEMO_NETWORK, open_model
from workbench.engine.config import SimConfig
from workbench.engine.simulator import Simulator
import numpy as np
t1 = time.perf_counter()
net = open_model(DEMO_NETWORK)
sim = Simulator(net, SimConfig(), x=np.full((1, *net.input_shape), 0.5, np.float32))
t2 = time.perf_counter()
sim.step()
t3 = time.perf_counter()
print(json.dumps({"import": t1 - t0, "open": t2 - t1, "first_step": t3 - t2,
                  "tensorflow": "tensorflow" in sys.modules, "keras": "keras" in sys.modules}))
"""

ROOT = Path(__file__).resolve().parent.parent


def run_child(cache_dir: str) -> dict:
    env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir)
    t = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", CHILD], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    wall = time.perf_counter() - t
    return {"wall": wall, **json.loads(out.stdout.strip().splitlines()[-1])}


def measure(repeats: int = 3) -> dict:
    """Best of ``repeats`` for a warm cache; every miss gets its own empty cache folder."""
    with tempfile.TemporaryDirectory(prefix="snn-bench-cache-") as warm:
        run_child(warm)  # fills the cache
        hits = [run_child(warm) for _ in range(repeats)]
        misses = []
        for _ in range(max(1, repeats - 1)):
            with tempfile.TemporaryDirectory(prefix="snn-bench-cold-") as cold:
                misses.append(run_child(cold))
    return {"hit": min(hits, key=lambda r: r["wall"]), "miss": min(misses, key=lambda r: r["wall"])}
