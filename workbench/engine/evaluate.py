"""Run a network over a data set in batches: SNN accuracy after every timestep, the ANN accuracy,
and per-layer statistics accumulated over all samples in bounded memory.

Per-layer statistics stream: sums for the mean rate, running max, silent/saturated counts and
the five sums of Pearson's r, so a data set of any size costs the memory of one batch.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np

from workbench.engine.analysis import SATURATION, LayerStats
from workbench.engine.config import SimConfig
from workbench.engine.simulator import Simulator
from workbench.models.forward import forward
from workbench.models.network import Network


class _StreamStats:
    def __init__(self, name: str, neurons: int, max_rate: float):
        self.name, self.neurons, self.max_rate = name, neurons, max_rate
        self.n = 0  # neuron-samples seen
        self.rate_sum = 0.0
        self.rate_max = 0.0
        self.silent = 0
        self.saturated = 0
        self.sa = self.sb = self.saa = self.sbb = self.sab = 0.0
        self.neg = 0.0
        self.total = 0.0

    def add(self, counts: np.ndarray, steps: int, ann: np.ndarray | None, negative: np.ndarray | None = None):
        c = counts.astype(np.float64).ravel()
        rates = np.abs(c) / steps
        self.n += c.size
        self.rate_sum += rates.sum()
        self.rate_max = max(self.rate_max, float(rates.max(initial=0.0)))
        self.silent += int(np.count_nonzero(c == 0))
        self.saturated += int(np.count_nonzero(rates >= SATURATION * self.max_rate))
        if ann is not None:
            a = ann.astype(np.float64).ravel()
            self.sa += a.sum(); self.sb += c.sum()
            self.saa += (a * a).sum(); self.sbb += (c * c).sum(); self.sab += (a * c).sum()
        if negative is not None:
            self.neg += float(np.abs(negative).sum())
        self.total += float(np.abs(c).sum())

    def result(self) -> LayerStats:
        n = max(self.n, 1)
        cov = self.sab - self.sa * self.sb / n
        var = (self.saa - self.sa ** 2 / n) * (self.sbb - self.sb ** 2 / n)
        r = float(cov / np.sqrt(var)) if var > 0 else float("nan")
        return LayerStats(self.name, self.neurons, self.rate_sum / n, self.rate_max, self.silent / n,
                          self.saturated / n, r, self.neg / self.total if self.total else 0.0)


@dataclasses.dataclass(frozen=True)
class EvalResult:
    samples: int
    steps: int
    snn_accuracy: np.ndarray  # [T] top-1 after each step
    ann_accuracy: float
    stats: tuple[LayerStats, ...]
    completed: bool  # False when stopped early; the figures cover the finished batches
    predictions: np.ndarray  # [N] final SNN prediction per finished sample (-1: no spike)


def evaluate(network: Network, config: SimConfig, x: np.ndarray, y: np.ndarray | None,
             steps: int | None = None, on_progress: Callable[[int, int], None] | None = None,
             should_stop: Callable[[], bool] | None = None) -> EvalResult:
    """Simulate every sample of ``x`` for ``steps`` (default config.steps) in batches of
    ``config.batch``; ``on_progress(done_steps, total_steps)`` counts batch-steps."""
    steps = steps or config.steps
    n = int(x.shape[0])
    batch = min(config.batch, n)
    cfg = config.replace(batch=batch, steps=steps, record=(), record_membrane=False, record_current=False)
    hits = np.zeros(steps, dtype=np.int64)
    preds = []
    stream: dict[str, _StreamStats] = {}
    ann_hits = 0
    done = 0
    total = -(-n // batch) * steps
    sim = None
    completed = True
    for start in range(0, n, batch):
        xb = x[start : start + batch]
        yb = None if y is None else y[start : start + batch]
        if sim is None or xb.shape[0] != sim.batch:
            sim = Simulator(network, cfg.replace(batch=xb.shape[0]), x=xb, labels=yb)
        else:
            sim.set_input(xb, yb)
        ann = forward(network, xb)
        ran = sim.run(steps, should_stop=should_stop,
                      on_progress=None if on_progress is None else (lambda i, _n, base=done: on_progress(base + i, total)))
        if ran < steps:
            completed = False
            break
        done += steps
        tr = sim.recorder
        pred_rows = tr.trace(layers=()).predictions  # [T, b]
        if yb is not None:
            hits += (pred_rows == yb[None, :]).sum(axis=1)[-steps:]
            ann_hits += int((ann[network.output_layer.name].reshape(len(yb), -1).argmax(1) == yb).sum())
        preds.append(pred_rows[-1])
        for ls in sim.layers:
            if ls.is_neuron:
                st = stream.setdefault(ls.layer.name, _StreamStats(ls.layer.name, ls.layer.size, ls.model.max_rate(sim.dt)))
                st.add(ls.counts, steps, ann.get(ls.layer.name))
    finished = sum(len(p) for p in preds)
    return EvalResult(
        samples=finished,
        steps=steps,
        snn_accuracy=hits / max(finished, 1),
        ann_accuracy=ann_hits / max(finished, 1) if y is not None else float("nan"),
        stats=tuple(s.result() for s in stream.values()),
        completed=completed,
        predictions=np.concatenate(preds) if preds else np.zeros(0, np.int64),
    )
