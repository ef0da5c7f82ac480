"""Run a network over a data set in batches: SNN accuracy after every timestep (top-1 and top-k),
the ANN accuracy, spikes and synaptic operations per sample, and per-layer statistics
accumulated over all samples in bounded memory.

Per-layer statistics stream: sums for the mean rate, running max, silent/saturated counts and
the five sums of Pearson's r, so a data set of any size costs the memory of one batch.

Top-k after step t: the k classes with the highest cumulative output count (ties: the lower
class index first, as argmax), and a sample with no output spike yet is wrong. For k = 1 this
is the prediction the simulator reports. Synaptic operations: every event (a spike; under the
Poisson encoder also an input spike; a value passed on by max pooling) times the synapses it
drives (``engine.fanout``); under the constant encoder the analog input is not counted.

``should_stop()`` is asked before every step; a batch it interrupts is dropped, the finished
ones make the result (``completed`` False). ``on_batch(result)`` gets the partial result after
every finished batch, for a curve that fills in.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from types import MappingProxyType

import numpy as np

from workbench.analysis.layer_stats import SATURATION, LayerStats, ann_reference
from workbench.engine.config import SimConfig
from workbench.analysis.eval_layers import LayerAccumulator, LayerEval
from workbench.engine.fanout import event_source, fan_out
from workbench.engine.simulator import Simulator
from workbench.models import network as nw
from workbench.models.forward import forward, preactivation
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

    def add(self, counts: np.ndarray, steps: int, ann: np.ndarray | None, negative: float = 0.0):
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
        self.neg += float(negative)
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
    top_k: tuple[int, ...] = (1,)
    snn_topk: Mapping[int, np.ndarray] = dataclasses.field(default_factory=dict)  # k -> [T]
    ann_topk: Mapping[int, float] = dataclasses.field(default_factory=dict)
    layers: tuple[LayerEval, ...] = ()  # neuron and max-pooling layers, network order
    n_classes: int = 0
    total: int = 0  # samples asked for
    labelled: bool = True
    models: Mapping[str, str] = dataclasses.field(default_factory=dict)  # layer -> model it ran
    warnings: tuple[str, ...] = ()  # normalization's and the conversion plan's

    @property
    def spikes_per_sample(self) -> float:
        return float(sum(l.spikes_per_sample for l in self.layers if l.kind != nw.MAX_POOL2D))

    @property
    def synops_per_sample(self) -> float:
        return float(sum(l.synops_per_sample for l in self.layers))

    @property
    def chance(self) -> float:
        return 1.0 / self.n_classes if self.n_classes else float("nan")

    def layer(self, name: str) -> LayerEval:
        for l in self.layers:
            if l.name == name:
                return l
        raise KeyError(name)

    def to_dict(self) -> dict:
        """Everything as plain JSON types (NaN stays a float; json writes it as NaN)."""
        return {
            "samples": self.samples, "total": self.total, "steps": self.steps, "completed": self.completed,
            "n_classes": self.n_classes, "chance": self.chance, "labelled": self.labelled,
            "ann_accuracy": self.ann_accuracy, "ann_topk": {str(k): v for k, v in self.ann_topk.items()},
            "snn_accuracy": [float(v) for v in self.snn_accuracy],
            "snn_topk": {str(k): [float(v) for v in arr] for k, arr in self.snn_topk.items()},
            "spikes_per_sample": self.spikes_per_sample, "synops_per_sample": self.synops_per_sample,
            "layers": [l.to_dict() for l in self.layers],
            "models": dict(self.models), "warnings": list(self.warnings),
            "stats": [dataclasses.asdict(s) for s in self.stats],
        }


class _Run:
    """Everything accumulated over the finished batches."""

    def __init__(self, network: Network, steps: int, ks: tuple[int, ...], total: int, labelled: bool):
        self.network, self.steps, self.ks, self.total, self.labelled = network, steps, ks, total, labelled
        self.hits = {k: np.zeros(steps, dtype=np.int64) for k in ks}
        self.ann_hits = {k: 0 for k in ks}
        self.preds: list[np.ndarray] = []
        self.stream: dict[str, _StreamStats] = {}
        self.acc: dict[str, LayerAccumulator] = {}
        self.fanout = fan_out(network)
        self.completed = True
        self.models: dict[str, str] = {}  # layer -> the model it ran (conversion plan)
        self.warnings: dict[str, None] = {}  # the conversion plan's warnings, in order

    def result(self, completed: bool | None = None) -> EvalResult:
        finished = sum(len(p) for p in self.preds)
        n = max(finished, 1)
        nan = float("nan")
        return EvalResult(
            samples=finished, steps=self.steps, snn_accuracy=self.hits[1] / n,
            ann_accuracy=self.ann_hits[1] / n if self.labelled and finished else nan,
            stats=tuple(s.result() for s in self.stream.values()),
            completed=self.completed if completed is None else completed,
            predictions=np.concatenate(self.preds) if self.preds else np.zeros(0, np.int64),
            top_k=self.ks, snn_topk=MappingProxyType({k: h / n for k, h in self.hits.items()}),
            ann_topk=MappingProxyType({k: (h / n if self.labelled and finished else nan)
                                       for k, h in self.ann_hits.items()}),
            layers=tuple(a.result() for a in self.acc.values()),
            n_classes=self.network.output_layer.size, total=self.total, labelled=self.labelled,
            models=MappingProxyType(dict(self.models)),
            warnings=tuple(self.network.normalization.get("warnings", ())) + tuple(self.warnings),
        )


def _topk_hits(counts: np.ndarray, labels: np.ndarray, ks, need_spike: bool = True) -> dict[int, int]:
    """Samples whose label is among the k highest counts (stable: lower class first on ties);
    with ``need_spike`` rows without any non-zero count are wrong (no output spike yet)."""
    order = np.argsort(-counts, axis=1, kind="stable")[:, : max(ks)]
    found = order == labels[:, None]
    if need_spike:
        found &= np.any(counts != 0, axis=1)[:, None]
    return {k: int(found[:, :k].any(axis=1).sum()) for k in ks}


def _run_batch(run: _Run, sim: Simulator, xb, yb, config: SimConfig, on_step, should_stop) -> bool:
    """Simulate one batch; False when stopped before its end."""
    network, steps, b = run.network, run.steps, xb.shape[0]
    acts = forward(network, xb)
    pools = [ls for ls in sim.layers if ls.layer.kind == nw.MAX_POOL2D]
    signed = [ls for ls in sim.layers if ls.is_neuron and ls.model.signed]
    pool_in = {ls.index: np.zeros((b, *network[ls.layer.inbound[0]].output_shape)) for ls in pools}
    pool_out = {ls.index: np.zeros(ls.shape) for ls in pools}
    neg = {ls.index: 0.0 for ls in signed}
    abs_counts = {ls.index: np.zeros(ls.shape) for ls in signed}
    input_events = np.zeros(sim.layers[0].shape) if config.encoder == "poisson" else None
    hits = {k: np.zeros(steps, dtype=np.int64) for k in run.ks}
    for t in range(steps):
        if should_stop is not None and should_stop():
            return False
        sim.step()
        if yb is not None:
            for k, h in _topk_hits(sim.output_counts(), yb, run.ks).items():
                hits[k][t] = h
        for ls in pools:
            pool_in[ls.index] += sim.layers[ls.inbound[0]].y
            pool_out[ls.index] += ls.y
        for ls in signed:
            neg[ls.index] += float(-ls.spikes[ls.spikes < 0].sum())
            abs_counts[ls.index] += np.abs(ls.spikes)
        if input_events is not None:
            input_events += sim.layers[0].y
        if on_step is not None:
            on_step(t + 1)
    # the batch finished: fold it in
    for k in run.ks:
        run.hits[k] += hits[k]
    if yb is not None:
        out = acts[network.output_layer.name].reshape(b, -1)
        for k, h in _topk_hits(out, yb, run.ks, need_spike=False).items():
            run.ann_hits[k] += h
    run.preds.append(sim.prediction())
    out_scales = {ls.layer.name: float(ls.out_scale) for ls in sim.layers if ls.is_neuron}
    scales = network.scales
    for ls in sim.layers:
        layer, name = ls.layer, ls.layer.name
        lam = float(scales.get(name, float("nan"))) if scales else float("nan")
        if ls.is_neuron:
            max_rate = ls.model.max_rate(sim.dt)
            ref = ann_reference(layer, acts, ls.model)  # one definition of r: run, evaluate, diagnose
            run.stream.setdefault(name, _StreamStats(name, layer.size, max_rate)).add(
                ls.counts, steps, ref, neg.get(ls.index, 0.0))
            acc = run.acc.setdefault(name, LayerAccumulator(name, layer.kind, layer.size, lam,
                                                            out_scales[name], max_rate))
            # a layer carrying current sends no spikes: no events, no synaptic operations
            events = None if ls.model.spiking else np.zeros(ls.shape)
            acc.add_batch(ls.counts, steps, run.fanout.get(name), ref,
                          neg.get(ls.index, 0.0), events if events is not None else abs_counts.get(ls.index))
            acc.model, acc.model_params = ls.model.name, dict(ls.model.params())
            acc.role = sim.plan.layers[name].role
            run.models[name] = ls.model.describe() + ("" if acc.role == "spiking" else f" [{acc.role}]")
            run.warnings.update(dict.fromkeys(sim.plan.warnings))
            if hasattr(ls.model, "quantization_report"):
                acc.quantization = ls.model.quantization_report(ls)
        elif layer.kind == nw.MAX_POOL2D:
            src_ls = sim.layer(event_source(network, name))
            src = out_scales.get(src_ls.layer.name, 1.0)
            max_rate = src_ls.model.max_rate(sim.dt) if src_ls.is_neuron else 1.0
            acc = run.acc.setdefault(name, LayerAccumulator(name, layer.kind, layer.size, lam, src, max_rate))
            events = pool_out[ls.index] / src
            acc.add_batch(events, steps, run.fanout.get(name), acts[name])
            ref = preactivation(layer, [pool_in[ls.index] / steps])
            acc.add_pool(pool_out[ls.index] / steps, ref)
    if input_events is not None:
        name = network.input_layer.name
        acc = run.acc.setdefault(name, LayerAccumulator(name, nw.INPUT, network.input_layer.size,
                                                        float("nan"), 1.0, 1.0))
        acc.add_batch(input_events, steps, run.fanout.get(name), None)
    return True


def evaluate(network: Network, config: SimConfig, x: np.ndarray, y: np.ndarray | None,
             steps: int | None = None, on_progress: Callable[[int, int], None] | None = None,
             should_stop: Callable[[], bool] | None = None, top_k: tuple[int, ...] = (1,),
             on_batch: Callable[[EvalResult], None] | None = None, progress_every: int = 10) -> EvalResult:
    """Simulate every sample of ``x`` for ``steps`` (default config.steps) in batches of
    ``config.batch``; ``on_progress(done_steps, total_steps)`` counts batch-steps."""
    steps = steps or config.steps
    n = int(x.shape[0])
    batch = min(config.batch, n)
    ks = tuple(sorted({1, *(int(k) for k in top_k)}))
    if ks[0] < 1:
        from workbench.errors import ConfigError

        raise ConfigError("top_k", f"must be whole numbers >= 1, got {top_k}")
    ks = tuple(k for k in ks if k <= max(network.output_layer.size, 1)) or (1,)
    cfg = config.replace(batch=batch, steps=steps, record=(), record_membrane=False, record_current=False)
    run = _Run(network, steps, ks, n, y is not None)
    total = -(-n // batch) * steps
    done = 0
    sim = None
    for start in range(0, n, batch):
        xb = x[start : start + batch]
        yb = None if y is None else np.asarray(y[start : start + batch], dtype=np.int64)
        if sim is None or xb.shape[0] != sim.batch:
            sim = Simulator(network, cfg.replace(batch=xb.shape[0]), x=xb, labels=yb)
        else:
            sim.set_input(xb, yb)

        def on_step(i, base=done):
            if on_progress is not None and (i % progress_every == 0 or i == steps):
                on_progress(base + i, total)

        if not _run_batch(run, sim, xb, yb, cfg, on_step, should_stop):
            run.completed = False
            break
        done += steps
        if on_batch is not None:
            on_batch(run.result(completed=start + batch >= n))
    return run.result()
