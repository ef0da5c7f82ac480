"""Play a recorded Trace back as Snapshots, and mark where two traces diverge, for the views.

``TracePlayback(trace)`` turns a loaded trace file into the same ``Snapshot`` objects a live run
produces, at any *position* 0..T (position p = after the trace's p-th recorded row; position 0
is before the first row, t = ``steps[0] - 1``, which is 0 for a whole run). What a snapshot
holds at position p:

- ``history``: the newest ``window`` rows up to p, every recorded layer;
- per layer ``spikes`` / ``membrane`` of row p, ``counts`` = spikes summed over rows 1..p, the
  ANN activation from ``trace.ann``, stats via ``analysis.layer_stats`` over the rows covered;
- ``predictions`` from the file (else the argmax rule of ``Simulator.prediction``), accuracy
  over the history rows when the file has labels, ``r_history`` (ANN-vs-SNN r over time, thinned
  to at most ``R_POINTS`` points) for layers the file has ANN activations for.

Only recorded layers appear (a trace has no weights); their kind comes from a matching
``network`` when one is given, else from ``metadata['kinds']``, else 'unknown'. A file whose
rows start after step 1 (a ring buffer) gives counts and rates over its own rows only. There
are no layer-by-layer positions: a trace records whole timesteps.

``divergence_overlay(comparison, a, b)`` gives, per compared layer, the first step at which each
(sample, neuron) differs (same rule and tolerances as ``compare_traces``), so views can mark
divergent neurons over the whole run or up to the shown timestep, and B's membrane for drawing
it next to A's.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from types import MappingProxyType

import numpy as np

from workbench.analysis.layer_stats import accuracy_over_time, ann_reference, layer_stats, pearson
from workbench.analysis.compare import Comparison, Divergence
from workbench.analysis.snapshot import LayerSnapshot, Snapshot
from workbench.engine.trace import Trace

R_POINTS = 500
NEVER = np.iinfo(np.int64).max  # first-divergence step of a neuron that never differs
_CHUNK_CELLS = 1 << 22


def _model_info(meta: Mapping, name: str, dt: float) -> dict:
    """Description, threshold, max rate, signed, output scale of a layer's neuron model, from
    trace metadata (the model rebuilt by name when we know it)."""
    models = meta.get("models") if isinstance(meta.get("models"), Mapping) else {}
    rec = models.get(name) or meta.get("neuron") or {}
    rate_scale = meta.get("rate_scale", 1.0)
    rate_scale = float(rate_scale) if isinstance(rate_scale, (int, float)) and rate_scale > 0 else 1.0
    info = {"model": "", "threshold": 1.0, "max_rate": 1.0, "signed": False, "output_scale": 1.0}
    if not isinstance(rec, Mapping) or not rec.get("name"):
        return info
    params = rec.get("params") if isinstance(rec.get("params"), Mapping) else {}
    info["signed"] = bool(rec.get("signed", False))
    info["model"] = f"{rec['name']}({', '.join(f'{k}={v}' for k, v in params.items())})"
    if isinstance(params.get("threshold"), (int, float)):
        info["threshold"] = float(params["threshold"])
    try:
        from workbench.engine.neurons import make_neuron

        model = make_neuron(str(rec["name"]), **params)
        info.update(model=model.describe(), threshold=model.membrane_threshold,
                    max_rate=float(model.max_rate(dt)), signed=bool(model.signed),
                    output_scale=float(np.float32(model.output_scale(dt) / rate_scale)))
    except Exception:  # an external implementation's model we do not know: shown as written
        pass
    return info


def _kinds(trace: Trace, network) -> dict[str, str]:
    kinds = trace.metadata.get("kinds") if isinstance(trace.metadata.get("kinds"), Mapping) else {}
    out = {name: str(kinds.get(name, "unknown")) for name in trace.layers}
    if network is not None:
        by_name = {layer.name: layer.kind for layer in network.layers}
        out.update({name: by_name[name] for name in trace.layers if name in by_name})
    return out


class TracePlayback:
    def __init__(self, trace: Trace, network=None, window: int = 500):
        if not trace.layers:
            raise ValueError("the trace holds no layer")
        self.trace = trace
        self.window = max(1, int(window))
        meta = trace.metadata
        dt = meta.get("dt", 1.0)
        self.dt = float(dt) if isinstance(dt, (int, float)) and dt > 0 else 1.0
        self.names = tuple(trace.layers)
        self.output = self.names[-1]
        self._kinds = _kinds(trace, network)
        self._info = {n: _model_info(meta, n, self.dt) for n in self.names}
        self._pos = 0
        self._counts = {n: np.zeros((trace.batch, *trace[n].shape), dtype=np.int64) for n in self.names}
        # layers that carried current (engine.conversion): no spikes; their counts are the
        # accumulated charge, which is their recorded membrane (float32 in the trace)
        models = meta.get("models") if isinstance(meta.get("models"), dict) else {}
        self._charge = {n for n in self.names if isinstance(models.get(n), dict)
                        and models[n].get("role") in ("current", "readout") and trace[n].membrane is not None}
        self._refs = self._references(network)
        self._r = self._r_over_time()

    def _references(self, network) -> dict:
        """What each layer's r compares with (``layer_stats.ann_reference``, the definition of
        ``run``, ``diagnose`` and the live window): a softmax layer's pre-activation, when the
        network and its inputs' activations are known; else the recorded ANN activation."""
        from types import SimpleNamespace

        tr, refs = self.trace, {}
        names = {layer.name: layer for layer in network.layers} if network is not None else {}
        for n in self.names:
            ann = tr.ann.get(n)
            layer = names.get(n)
            if ann is not None and layer is not None and layer.activation == "softmax":
                model = SimpleNamespace(spiking=n not in self._charge, signed=False)
                ann = ann_reference(layer, tr.ann, model)
            refs[n] = ann
        return refs

    # ---- positions -------------------------------------------------------------------------
    @property
    def n_positions(self) -> int:
        """Positions 0..T."""
        return self.trace.n_steps + 1

    @property
    def first_step(self) -> int:
        return int(self.trace.steps[0]) if self.trace.n_steps else 1

    def t_at(self, pos: int) -> int:
        pos = self.clamp(pos)
        return int(self.trace.steps[pos - 1]) if pos > 0 else self.first_step - 1

    def position_of(self, t: int) -> int:
        """The position showing timestep ``t`` (the last row with step <= t)."""
        return int(np.searchsorted(self.trace.steps, int(t), side="right"))

    def clamp(self, pos: int) -> int:
        return max(0, min(int(pos), self.trace.n_steps))

    # ---- snapshots -------------------------------------------------------------------------
    def counts_at(self, pos: int) -> dict[str, np.ndarray]:
        """Cumulative spike counts over rows [0, pos), kept incrementally between calls."""
        pos = self.clamp(pos)
        lo, hi, sign = (self._pos, pos, 1) if pos >= self._pos else (pos, self._pos, -1)
        if hi > lo:
            for n in self.names:
                if hi - lo > pos and sign < 0:  # going far back: recount from the start
                    self._counts[n][...] = self.trace[n].spikes[:pos].sum(axis=0, dtype=np.int64)
                else:
                    self._counts[n] += sign * self.trace[n].spikes[lo:hi].sum(axis=0, dtype=np.int64)
        self._pos = pos
        if not self._charge:
            return self._counts
        out = dict(self._counts)
        for n in self._charge:
            m = self.trace[n].membrane
            out[n] = m[pos - 1].astype(np.float64) if pos > 0 else np.zeros(m.shape[1:], np.float64)
        return out

    def snapshot(self, pos: int, running: bool = False, steps_per_second: float = 0.0) -> Snapshot:
        tr = self.trace
        pos = self.clamp(pos)
        t = self.t_at(pos)
        counts = self.counts_at(pos)
        row = pos - 1
        layers, stats = [], []
        for i, name in enumerate(self.names):
            lt, info = tr[name], self._info[name]
            zeros = np.zeros((tr.batch, *lt.shape), dtype=np.float32)
            spikes = lt.spikes[row] if row >= 0 else zeros.astype(np.int16)
            membrane = None if lt.membrane is None else (lt.membrane[row] if row >= 0 else zeros)
            ann = tr.ann.get(name)
            if ann is not None and ann.shape != zeros.shape:
                ann = None
            output = spikes * np.float32(info["output_scale"])
            if name in self._charge and row >= 0:  # carried current: the charge of this step
                prev = lt.membrane[row - 1] if row >= 1 else np.float32(0)
                output = (lt.membrane[row] - prev) * np.float32(info["output_scale"])
            layers.append(LayerSnapshot(
                name=name, kind=self._kinds[name], index=i, shape=lt.shape, is_neuron=True,
                output=_ro(output), spikes=_ro(spikes), membrane=_ro(membrane),
                counts=_ro(counts[name]), ann=_ro(ann), model=info["model"], threshold=info["threshold"],
                max_rate=info["max_rate"], signed=info["signed"], path="trace", **self._extra(info)))
            ref = self._refs.get(name)
            if ref is not None and ref.shape != zeros.shape:
                ref = None
            stats.append(layer_stats(name, counts[name], pos, info["max_rate"], ref))
        lo = max(0, pos - self.window)
        history = Trace({n: _rows(tr[n], lo, pos) for n in self.names}, tr.steps[lo:pos],
                        None if tr.predictions is None else tr.predictions[lo:pos], tr.labels, {}, tr.metadata)
        out_counts = counts[self.output].reshape(tr.batch, -1)
        if tr.predictions is not None and row >= 0:
            pred = np.asarray(tr.predictions[row], dtype=np.int64)
        else:
            pred = out_counts.argmax(axis=1)
            pred[~np.any(out_counts != 0, axis=1)] = -1
        acc = np.zeros(0)
        if tr.labels is not None and history.predictions is not None and pos > lo:
            acc = accuracy_over_time(history.predictions, tr.labels)
        r_hist = {n: tuple(p for p in pts if p[0] <= t) for n, pts in self._r.items()}
        return Snapshot(
            t=t, cursor=0, cursor_layer=None, batch=tr.batch, dt=self.dt, layers=tuple(layers), history=history,
            stats=tuple(stats), predictions=_ro(pred), labels=_ro(tr.labels), output_counts=_ro(out_counts),
            accuracy=_ro(acc), r_history=MappingProxyType(r_hist), steps_per_second=float(steps_per_second),
            running=running,
        )

    @staticmethod
    def _extra(info) -> dict:
        fields = getattr(LayerSnapshot, "__dataclass_fields__", {})
        return {"output_scale": info["output_scale"]} if "output_scale" in fields else {}

    def _r_over_time(self) -> dict[str, list]:
        """{layer: [(t, r)]}: Pearson r of the ANN activation and the counts, at most R_POINTS."""
        tr, out = self.trace, {}
        stride = max(1, -(-tr.n_steps // R_POINTS))
        for name in self.names:
            ann = self._refs.get(name)
            if ann is None or tr.n_steps == 0 or ann.size != tr[name].spikes[0].size:
                continue
            if name in self._charge:  # accumulated charge = the recorded membrane
                cum = tr[name].flat("membrane").astype(np.float64)
            else:
                cum = np.cumsum(tr[name].flat("spikes"), axis=0, dtype=np.int64)
            rows = list(range(stride - 1, tr.n_steps, stride))
            if rows and rows[-1] != tr.n_steps - 1:
                rows.append(tr.n_steps - 1)
            out[name] = [(int(tr.steps[k]), pearson(ann, cum[k])) for k in rows]
        return out


def _ro(arr):
    if arr is None:
        return None
    arr = np.asarray(arr)
    if arr.flags.writeable:
        arr = arr.copy()
        arr.flags.writeable = False
    return arr


def _rows(lt, lo: int, hi: int):
    from workbench.engine.trace import LayerTrace

    cut = (lambda a: None if a is None else a[lo:hi])
    return LayerTrace(lt.name, lt.shape, cut(lt.spikes), cut(lt.membrane), cut(lt.current))


# ---- divergence ---------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class DivergenceOverlay:
    """Where B differs from A, per A layer: ``first_step[layer]`` [B, N] int64, the first compared
    step at which that (sample, neuron) differs (``NEVER`` when it does not)."""

    comparison: Comparison
    first_step: Mapping[str, np.ndarray]
    layer_b: Mapping[str, str]  # A name -> B name
    b: Trace

    @property
    def first(self) -> Divergence | None:
        return self.comparison.first

    def mask(self, layer: str, sample: int = 0, upto: int | None = None) -> np.ndarray | None:
        """[N] bool: neurons of ``layer`` (flat index) that differ in ``sample`` at any compared
        step (``upto`` None) or at a step <= ``upto``; None for a layer not compared."""
        first = self.first_step.get(layer)
        if first is None:
            return None
        row = first[min(max(int(sample), 0), first.shape[0] - 1)]
        return row != NEVER if upto is None else row <= int(upto)

    def divergent_count(self, layer: str) -> int:
        first = self.first_step.get(layer)
        return 0 if first is None else int(np.sum(first != NEVER))

    def reference(self, layer: str, sample: int, index: int, lo: int, hi: int):
        """(steps, membrane) of B's neuron aligned with A's ``layer``[index], steps in [lo, hi];
        empty arrays when B did not record a membrane for it."""
        name = self.layer_b.get(layer)
        lt = None if name is None else self.b.layers.get(name)
        empty = (np.zeros(0), np.zeros(0))
        if lt is None or lt.membrane is None or not 0 <= index < int(np.prod(lt.shape)):
            return empty
        keep = (self.b.steps >= lo) & (self.b.steps <= hi)
        sample = min(max(int(sample), 0), lt.membrane.shape[1] - 1)
        return self.b.steps[keep], lt.flat("membrane")[keep, sample, index]


def divergence_overlay(comparison: Comparison, a: Trace, b: Trace) -> DivergenceOverlay:
    """Per-neuron first divergent step for every layer pair of ``comparison`` (from
    ``compare_traces(a, b)``), with the same cell rule and tolerances."""
    common, ia, ib = np.intersect1d(a.steps, b.steps, return_indices=True)
    atol, rtol = comparison.membrane_atol, comparison.membrane_rtol
    firsts, names = {}, {}
    for lc in comparison.layers:
        ta, tb = a[lc.layer], b[lc.layer_b]
        names[lc.layer] = lc.layer_b
        first = np.full(ta.flat("spikes").shape[1:], NEVER, dtype=np.int64)
        if not lc.equal:
            _scan(ta, tb, ia, ib, common, atol, rtol, first, lc.membrane_compared)
        first.flags.writeable = False
        firsts[lc.layer] = first
    return DivergenceOverlay(comparison, MappingProxyType(firsts), MappingProxyType(names), b)


def _scan(ta, tb, ia, ib, common, atol, rtol, first, use_mem) -> None:
    sa, sb = ta.flat("spikes"), tb.flat("spikes")
    ma = ta.flat("membrane") if use_mem else None
    mb = tb.flat("membrane") if use_mem else None
    per_step = max(1, sa.shape[1] * sa.shape[2])
    block = max(1, _CHUNK_CELLS // per_step)
    for t0 in range(0, common.size, block):
        t1 = min(common.size, t0 + block)
        bad = sa[ia[t0:t1]] != sb[ib[t0:t1]]
        if use_mem:
            va = ma[ia[t0:t1]].astype(np.float64)
            vb = mb[ib[t0:t1]].astype(np.float64)
            with np.errstate(invalid="ignore"):
                bad |= (np.abs(va - vb) > atol + rtol * np.abs(vb)) | (np.isnan(va) != np.isnan(vb))
        hit = bad.any(axis=0)
        fresh = hit & (first == NEVER)
        if fresh.any():
            k = np.argmax(bad, axis=0)  # first True along time within the block
            first[fresh] = common[t0 + k[fresh]]
