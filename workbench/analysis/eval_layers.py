"""Per-layer figures an evaluation streams over a data set, for the report and the diagnosis.

``LayerEval`` is what one layer looked like over every finished sample: spikes and synaptic
operations per sample, the ANN activations it had to represent (how many were zero, above the
highest rate, below one spike per run), the correlation of ANN and SNN, negative spikes, the
max-pooling error and the Loihi quantization error. ``LayerAccumulator`` builds it batch by
batch in the memory of one batch.

Units: ANN values are those of the normalized network; the SNN can output at most
``max_output = output_scale * max_rate`` per step, and its smallest non-zero mean output over T
steps is ``output_scale / T`` (one spike in the run): the rate resolution.
"""

from __future__ import annotations

import dataclasses

import numpy as np

NEAR_MAX = 0.95  # a neuron at >= 95% of the maximum rate counts as saturated: deeper layers
# start late (their first input spike comes after a few steps), so "every step" is never reached
# Histogram of positive ANN activations in units of max_output: log-spaced, 1e-4 .. 1e3.
HIST_EDGES = np.concatenate([[0.0], np.logspace(-4, 3, 141), [np.inf]])


@dataclasses.dataclass(frozen=True)
class LayerEval:
    name: str
    kind: str
    neurons: int
    scale: float  # normalization lambda in use (nan: not normalized)
    max_output: float  # highest SNN output per step, in the ANN's units
    resolution: float  # output of one spike per run, output_scale / T
    spikes_per_sample: float  # events per sample (max pooling: values passed on)
    synops_per_sample: float  # spikes x fan-out, per sample
    r: float  # Pearson r, ANN value vs SNN mean output (softmax: its pre-activation)
    silent: float  # fraction of neuron-samples with no spike
    saturated: float  # fraction at >= NEAR_MAX of the model's maximum rate
    ann_zero: float  # fraction of ANN values <= 0
    ann_over: float  # fraction of ANN values above max_output (clipped by the SNN)
    ann_under: float  # fraction of the positive ANN values below ``resolution``
    missed: float  # fraction of positive ANN values whose neuron never spiked
    negative: float  # fraction of spikes that were negative
    hist: tuple[int, ...] = ()  # positive ANN values / max_output over HIST_EDGES
    pool_error: float = float("nan")  # max pooling: mean |SNN out - max of SNN inputs| / mean
    pool_r: float = float("nan")
    quantization: dict = dataclasses.field(default_factory=dict)
    model: str = ""  # the neuron model's name ("" for max pooling and the input)
    model_params: dict = dataclasses.field(default_factory=dict)
    role: str = "spiking"  # "current" / "readout": a non-spiking layer (engine.conversion)
    ann_negative: float = 0.0  # fraction of ANN values < 0 (lost by a rectifying neuron)

    def ann_quantile(self, q: float) -> float:
        """Approximate q-quantile (0..1) of the positive ANN values, in units of max_output."""
        h = np.asarray(self.hist, dtype=np.float64)
        if not h.size or h.sum() == 0:
            return float("nan")
        i = int(np.searchsorted(np.cumsum(h) / h.sum(), q))
        i = min(i, len(h) - 1)
        return float(HIST_EDGES[min(i + 1, len(HIST_EDGES) - 2)])

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["hist"] = list(self.hist)
        return d


class _Pearson:
    def __init__(self):
        self.n = 0
        self.sa = self.sb = self.saa = self.sbb = self.sab = 0.0

    def add(self, a, b):
        a = np.asarray(a, np.float64).ravel()
        b = np.asarray(b, np.float64).ravel()
        self.n += a.size
        self.sa += a.sum(); self.sb += b.sum()
        self.saa += (a * a).sum(); self.sbb += (b * b).sum(); self.sab += (a * b).sum()

    def r(self) -> float:
        n = max(self.n, 1)
        var = (self.saa - self.sa ** 2 / n) * (self.sbb - self.sb ** 2 / n)
        return float((self.sab - self.sa * self.sb / n) / np.sqrt(var)) if var > 1e-300 else float("nan")


class LayerAccumulator:
    """Sums for one layer. ``add_batch`` after each finished batch."""

    def __init__(self, name: str, kind: str, neurons: int, scale: float, out_scale: float, max_rate: float):
        self.name, self.kind, self.neurons, self.scale = name, kind, neurons, scale
        self.out_scale, self.max_rate = out_scale, max_rate
        self.model, self.model_params = "", {}
        self.role = "spiking"
        self.negative_values = 0
        self.samples = 0
        self.steps = 0
        self.spikes = self.synops = self.neg = 0.0
        self.values = 0
        self.silent = self.saturated = self.zero = self.over = self.under = self.missed = self.positive = 0
        self.hist = np.zeros(len(HIST_EDGES) - 1, dtype=np.int64)
        self.pearson = _Pearson()
        self.pool_abs = self.pool_ref = 0.0
        self.pool_pearson = _Pearson()
        self.quantization: dict = {}

    def add_batch(self, counts: np.ndarray, steps: int, fanout: np.ndarray | None, ann: np.ndarray | None,
                  negative: float = 0.0, abs_counts: np.ndarray | None = None) -> None:
        """``counts``: (b, *shape) signed spike counts over the run (events for max pooling);
        ``abs_counts``: sum of |spikes| when signs may alternate; ``negative``: |negative| total."""
        b = counts.shape[0]
        self.samples += b
        self.steps = steps
        a_counts = np.abs(counts) if abs_counts is None else abs_counts
        self.spikes += float(a_counts.sum())
        if fanout is not None:
            self.synops += float((a_counts.reshape(b, -1) * fanout.reshape(1, -1)).sum())
        self.neg += negative
        flat = counts.reshape(-1)
        rates = np.abs(flat) / steps
        self.values += flat.size
        self.silent += int(np.count_nonzero(flat == 0))
        self.saturated += int(np.count_nonzero(rates >= NEAR_MAX * self.max_rate))
        if ann is None:
            return
        a = np.asarray(ann, np.float64).reshape(-1)
        self.pearson.add(a, flat)
        top = self.out_scale * self.max_rate
        res = self.out_scale / steps
        pos = a > 0
        self.negative_values += int(np.count_nonzero(a < 0))
        self.zero += int(a.size - np.count_nonzero(pos))
        self.positive += int(np.count_nonzero(pos))
        self.over += int(np.count_nonzero(a > top * (1 + 1e-6)))
        self.under += int(np.count_nonzero(pos & (a < res)))
        self.missed += int(np.count_nonzero(pos & (flat == 0)))
        self.hist += np.histogram(a[pos] / top, HIST_EDGES)[0]

    def add_pool(self, out_mean: np.ndarray, ref: np.ndarray) -> None:
        """Max pooling: the mean pooled output vs the max over each window of the mean inputs."""
        self.pool_abs += float(np.abs(out_mean - ref).sum())
        self.pool_ref += float(np.abs(ref).sum())
        self.pool_pearson.add(ref, out_mean)

    def result(self) -> LayerEval:
        n = max(self.samples, 1)
        v = max(self.values, 1)
        steps = max(self.steps, 1)
        return LayerEval(
            name=self.name, kind=self.kind, neurons=self.neurons, scale=self.scale,
            max_output=self.out_scale * self.max_rate, resolution=self.out_scale / steps,
            spikes_per_sample=self.spikes / n, synops_per_sample=self.synops / n,
            r=self.pearson.r(), silent=self.silent / v, saturated=self.saturated / v,
            ann_zero=self.zero / v, ann_over=self.over / v,
            ann_under=self.under / max(self.positive, 1), missed=self.missed / max(self.positive, 1),
            negative=self.neg / self.spikes if self.spikes else 0.0,
            hist=tuple(int(c) for c in self.hist),
            pool_error=self.pool_abs / self.pool_ref if self.pool_ref > 0 else float("nan"),
            pool_r=self.pool_pearson.r(), quantization=dict(self.quantization),
            model=self.model, model_params=dict(self.model_params), role=self.role,
            ann_negative=self.negative_values / v,
        )
