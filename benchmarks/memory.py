"""Peak memory of one engine run, each in its own subprocess (so peaks do not mix):
the process's peak resident set (``ru_maxrss``) and, for ours and numpy, the peak of Python/numpy
allocations during set-up and run (``tracemalloc``; numpy reports its buffers to it).

Child usage: ``python -m benchmarks.memory ENGINE NETWORK.npz|MODEL.keras BATCH STEPS``.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def _hwm_mb() -> float:
    """Peak resident set of this process (VmHWM; unlike ru_maxrss it starts afresh at exec)."""
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _child(engine: str, path: str, batch: int, steps: int) -> dict:
    import tracemalloc

    rng = np.random.default_rng(0)
    if engine == "keras":
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        from workbench.models.keras.importer import load_model_safely

        model = load_model_safely(path)
        x = rng.uniform(0, 1, (batch, *model.input_shape[1:])).astype(np.float32)
        base = _hwm_mb()
        for _ in range(steps):
            np.asarray(model(x, training=False))
        return {"rss_mb": _hwm_mb(), "rss_base_mb": base}
    from workbench.models.network import Network

    net = Network.load(path)
    x = (np.round(rng.uniform(0, 1, (batch, *net.input_shape)) * 16) / 16).astype(np.float32)
    if engine == "numpy":
        from benchmarks.numpy_if import NumpyIF as make
    else:
        from workbench.engine.config import SimConfig
        from workbench.engine.simulator import Simulator

        def make(net, x):
            return Simulator(net, SimConfig(batch=x.shape[0], record=(), record_membrane=False), x=x)
    make(net, x[:1]).run(2)  # warm-up: numba loads its cached kernels (not the run's memory)
    base = _hwm_mb()
    tracemalloc.start()
    make(net, x).run(steps)
    peak = tracemalloc.get_traced_memory()[1]
    return {"rss_mb": _hwm_mb(), "rss_base_mb": base, "traced_mb": peak / 2**20}


def measure(engine: str, path, batch: int, steps: int) -> dict:
    out = subprocess.run([sys.executable, "-m", "benchmarks.memory", engine, str(path), str(batch), str(steps)],
                         cwd=ROOT, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"memory child {engine} {path} failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    print(json.dumps(_child(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))))
