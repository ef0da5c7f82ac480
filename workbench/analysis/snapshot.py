"""Snapshot: an immutable picture of a running simulation, made for views.

The window's worker thread builds one between timesteps (``make_snapshot``) and hands it to the
GUI thread; views only ever read snapshots, so they never touch engine state and need no locks.
Every array in a snapshot is a copy and read-only.

What it holds:
- ``t`` (completed timesteps), ``cursor`` (index of the next layer to advance within the
  current timestep; 0 between timesteps), ``cursor_layer`` (its name, or None at 0);
- ``layers``: one ``LayerSnapshot`` per layer (all kinds) in network order, with this step's
  output and, for neuron layers, spikes, membrane (post-reset), cumulative counts, the ANN
  activation of the normalized network and the model's threshold/maximum rate;
- ``history``: a ``Trace`` of the newest ``window`` recorded steps for the layers asked for
  (the selected layer, the layers of watched neurons), for rasters and membrane plots; a
  ``HistoryCache`` lets a stream of snapshots share it, copying only the new rows each time;
- ``neuron_membranes``: {(layer, flat index): [T, B]} the recorded membrane of single neurons
  over the history's steps (the watched ones: the window copies these instead of the
  membranes of their whole layers);
- ``stats``: ``LayerStats`` per neuron layer (rates, silent, saturated, r);
- ``predictions``, ``labels``, ``output_counts``; ``accuracy``: [n] accuracy after each of the
  history's steps (empty without labels); ``r_history``: {layer: [(t, r), ...]} as given by the
  caller (the session accumulates it).
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import sys
from collections.abc import Mapping
from types import MappingProxyType

import numpy as np

from workbench.analysis.layer_stats import LayerStats, accuracy_over_time, layer_stats, simulator_stats
from workbench.engine.trace import LayerTrace, Trace

_EPOCHS = itertools.count(1)


def _ro(arr):
    if arr is None:
        return None
    if isinstance(arr, np.ndarray) and not arr.flags.writeable:
        return arr  # the caller's promise: read-only arrays are not changed later (ANN activations)
    arr = np.array(arr, copy=True)
    arr.flags.writeable = False
    return arr


@dataclasses.dataclass(frozen=True)
class LayerSnapshot:
    name: str
    kind: str
    index: int
    shape: tuple[int, ...]
    is_neuron: bool
    output: np.ndarray | None  # (B, *shape) this step's output in rate units (None: not copied,
    # as spikes, membrane, counts and ann: a big network's layers the views do not show)
    spikes: np.ndarray | None = None  # (B, *shape) this step's spike counts
    membrane: np.ndarray | None = None  # (B, *shape) post-reset membrane
    counts: np.ndarray | None = None  # (B, *shape) cumulative spike counts
    ann: np.ndarray | None = None  # (B, *shape) ANN activation (normalized network)
    model: str = ""  # neuron model description
    threshold: float | None = 1.0  # the membrane's spike level, for plots (None: a rate has none)
    max_rate: float = 1.0  # spikes per step at saturation
    signed: bool = False  # may emit negative spikes (flagged: not possible on most hardware)
    path: str = ""  # kernel path that ran last ('event', 'blas', 'cached')
    output_scale: float = 1.0  # the value one spike carries (LayerState.out_scale, incl. rate_scale)
    conversion: str = ""  # what the conversion plan made of the layer ('spiking, current x20.5042, synapse 5 ms')


@dataclasses.dataclass(frozen=True)
class Snapshot:
    t: int
    cursor: int
    cursor_layer: str | None
    batch: int
    dt: float
    layers: tuple[LayerSnapshot, ...]
    history: Trace
    stats: tuple[LayerStats, ...]
    predictions: np.ndarray
    labels: np.ndarray | None
    output_counts: np.ndarray
    accuracy: np.ndarray
    r_history: Mapping[str, tuple] = dataclasses.field(default_factory=dict)
    steps_per_second: float = 0.0
    running: bool = False
    history_epoch: int = 0  # equal and nonzero: the histories continue one recording (HistoryCache)
    neuron_membranes: Mapping[tuple[str, int], np.ndarray] = dataclasses.field(default_factory=dict)

    def layer(self, name: str) -> LayerSnapshot:
        for ls in self.layers:
            if ls.name == name:
                return ls
        raise KeyError(name)

    def stats_for(self, name: str) -> LayerStats | None:
        for s in self.stats:
            if s.name == name:
                return s
        return None


class HistoryCache:
    """The newest ``window`` recorded steps of some layers, for a stream of snapshots.

    A snapshot's history may not change once handed out, yet copying the whole window for every
    snapshot (6 MB for a 2048-neuron layer with membranes, 30 times a second) cost the worker
    more than the steps themselves. The cache copies only the rows recorded since its last call
    into append-only buffers with room for ``slack`` windows; a history is a read-only view of
    the newest rows. A full buffer is replaced by another that starts with the newest rows (the
    old one lives on while a snapshot holds it), so no row is written after a view of it was
    handed out. Anything else (a reset, other layers, another simulator) starts afresh.

    Replaced buffers are kept (``spare`` of each shape) and taken again once no view of them is
    left (their reference count says so): writing into freshly allocated memory faults every
    page in, which made the copies ~8x slower than the bytes they move (and up to ~50x while
    the kernel compacts memory for numpy's huge pages). So that a play does not start by
    faulting in new buffers, starting afresh (setup, reset, other layers: before a play, as a
    rule) also allocates ``warm`` spare buffers per shape and touches their pages; when the
    pool is full, buffers that views still hold are dropped before free ones.
    """

    def __init__(self, window: int = 500, slack: float = 4, spare: int = 3, warm: int = 2, spike_dtype=None):
        """``spike_dtype``: the type the history's spikes are kept in (None: as recorded, int16;
        int8 halves a big layer's history when a step's counts fit). ``slack`` may be a
        fraction above 1 (a buffer of 1.25 windows is copied anew every quarter window: more
        copying, less memory, as the window wants for an ImageNet-size layer)."""
        self.window = int(window)
        self.spike_dtype = None if spike_dtype is None else np.dtype(spike_dtype)
        self.slack = max(1.0, float(slack))
        self.spare = max(0, int(spare))
        self.warm = min(max(0, int(warm)), self.spare)
        self._key = None  # (recorder, clears, layers, membranes, window) the buffers hold
        self._count = 0  # recorder rows copied so far (its ``count`` at the last call)
        self._end = 0  # rows filled in the buffers
        self._bufs: dict[tuple[str | None, str], np.ndarray] = {}  # (layer, field); field "neurons":
        self._columns: dict[str, np.ndarray] = {}  # the membranes of these flat indices of a layer
        self.neurons: Mapping[tuple[str, int], np.ndarray] = MappingProxyType({})  # of the last trace()
        self._retired: dict[tuple, list[np.ndarray]] = {}  # (shape, dtype) -> replaced buffers
        self.epoch = 0  # changes whenever the history starts afresh (a view may reuse what it
        # derived from an earlier history of the same epoch for the steps both hold)

    def trace(self, sim, layers=None, membranes=None, neurons=()) -> Trace:
        """The history of ``layers`` (names; None = all recorded) of ``sim`` (a Simulator);
        ``membranes``: the layers whose membranes (and currents) to include (None = all of
        them; the others' are None); ``neurons``: (layer, flat index) pairs of those layers
        whose membranes to copy alone, handed out as ``self.neurons`` {(layer, index): [T, B]}
        (indices outside the layer, or layers not recorded with membranes, are left out).
        Call only from the thread that steps it."""
        rec = sim.recorder
        names = tuple(ls.layer.name for ls in rec.layers if layers is None or ls.layer.name in layers)
        full = names if membranes is None else tuple(n for n in names if n in membranes)
        columns = self._neuron_columns(sim, names, neurons)
        window = min(self.window, rec.capacity)
        key = (rec, rec.clears, names, full, tuple(columns.items()), window)
        if key != self._key or rec.count < self._count:
            self._columns = {name: np.array(idx, dtype=np.intp) for name, idx in columns.items()}
            self._start(rec, names, full, window)
            self._key = key
        new = rec.count - self._count
        if new > window:  # more than a window since the last call: only the newest rows matter
            self._count = rec.count - window
            new = window
        if self._end + new > self._rows():
            self._restart(window - new)
        for (name, field), buf in self._bufs.items():
            if field == "neurons":
                rec.copy_rows(rec.arrays(name)["membrane"], self._count, rec.count, buf[self._end:self._end + new],
                              columns=self._columns[name])
            else:
                rec.copy_rows(rec.arrays(name)[field], self._count, rec.count, buf[self._end:self._end + new])
        self._end += new
        self._count = rec.count
        n = min(rec.count, window)
        view = {key: buf[self._end - n:self._end] for key, buf in self._bufs.items()}
        single = {}
        for name, idx in self._columns.items():
            for j, i in enumerate(idx.tolist()):
                column = view[(name, "neurons")][:, :, j]
                column.flags.writeable = False
                single[(name, i)] = column
        self.neurons = MappingProxyType(single)
        layer_traces = {
            name: LayerTrace(name, sim.layer(name).layer.output_shape, view[(name, "spikes")],
                             view.get((name, "membrane")), view.get((name, "current")))
            for name in names
        }
        return Trace(layer_traces, view[(None, "steps")], view[(None, "predictions")], sim.labels)

    @staticmethod
    def _neuron_columns(sim, names, neurons) -> dict[str, tuple[int, ...]]:
        """{layer: sorted flat indices} of the ``neurons`` whose membranes can be copied."""
        rec = sim.recorder
        columns: dict[str, set[int]] = {}
        for layer, index in neurons or ():
            if layer in names and "membrane" in rec.arrays(layer) and 0 <= int(index) < sim.layer(layer).layer.size:
                columns.setdefault(layer, set()).add(int(index))
        return {name: tuple(sorted(idx)) for name, idx in sorted(columns.items())}

    @property
    def factor(self) -> int:
        """Windows of rows the cache may hold per recorded row (its buffers and spares)."""
        return self.slack * (1 + self.spare)

    @property
    def nbytes(self) -> int:
        """Bytes the cache's buffers and spares hold now."""
        pools = [b for pool in self._retired.values() for b in pool]
        return int(sum(b.nbytes for b in [*self._bufs.values(), *pools]))

    def _rows(self) -> int:
        return next(iter(self._bufs.values())).shape[0]

    @staticmethod
    def _free(pool: list, i: int) -> bool:
        """No view of ``pool[i]`` is left: only the pool's list and getrefcount's argument."""
        return sys.getrefcount(pool[i]) <= 2

    def _take(self, shape, dtype, touch: bool = False) -> np.ndarray:
        """A buffer of ``shape``: a replaced one nobody holds a view of any more, else new
        (its pages touched with ``touch``)."""
        pool = self._retired.get((shape, np.dtype(dtype)), [])
        for i in range(len(pool)):
            if self._free(pool, i):
                return pool.pop(i)
        return self._new(shape, dtype, touch)

    @staticmethod
    def _new(shape, dtype, touch: bool) -> np.ndarray:
        buf = np.empty(shape, dtype=dtype)
        if touch:
            buf.fill(0)  # fault every page in now, not while copying rows during a play
        return buf

    def _retire(self, buf: np.ndarray) -> None:
        pool = self._retired.setdefault((buf.shape, buf.dtype), [])
        pool.append(buf)
        while len(pool) > self.spare:  # drop a held one first (oldest first), else the oldest
            held = [i for i in range(len(pool)) if not self._free(pool, i)]
            del pool[held[0] if held else 0]

    def _warm_up(self) -> None:
        """``warm`` free buffers of each shape in use, their pages touched (see the class)."""
        for buf in self._bufs.values():
            pool = self._retired.setdefault((buf.shape, buf.dtype), [])
            free = sum(self._free(pool, i) for i in range(len(pool)))
            for _ in range(self.warm - free):
                self._retire(self._new(buf.shape, buf.dtype, touch=True))

    def _start(self, rec, names, membranes, window) -> None:
        self.epoch = next(_EPOCHS)
        rows = max(window + 1, math.ceil(self.slack * window))
        for buf in self._bufs.values():
            self._retire(buf)
        self._bufs = {}
        for name in (None, *names):
            for field, arr in rec.arrays(name).items():
                if name is not None and field != "spikes" and name not in membranes:
                    continue
                dtype = self.spike_dtype if field == "spikes" and self.spike_dtype is not None else arr.dtype
                self._bufs[(name, field)] = self._take((rows, *arr.shape[1:]), dtype, touch=True)
        for name, idx in self._columns.items():
            ring = rec.arrays(name)["membrane"]
            self._bufs[(name, "neurons")] = self._take((rows, ring.shape[1], len(idx)), ring.dtype, touch=True)
        self._warm_up()
        self._count = max(0, rec.count - window)
        self._end = 0

    def _restart(self, keep: int) -> None:
        """Other buffers holding the newest ``keep`` rows of the old ones at their start."""
        keep = min(keep, self._end)
        for key, buf in self._bufs.items():
            fresh = self._take(buf.shape, buf.dtype)
            fresh[:keep] = buf[self._end - keep:self._end]
            self._retire(buf)
            self._bufs[key] = fresh
        self._end = keep


def layer_stats_of(sim, ann, names, previous=()) -> tuple[LayerStats, ...]:
    """LayerStats of every neuron layer of ``sim``: computed now for ``names`` (and the layers
    ``previous`` lacks), the others taken from ``previous`` (the window refreshes a big
    network's other layers less often than every frame)."""
    old = {s.name: s for s in previous}
    out = []
    for ls in sim.layers:
        if not ls.is_neuron:
            continue
        name = ls.layer.name
        if name in names or name not in old:
            steps = sim.t + (1 if ls.index < sim.cursor else 0)
            out.append(layer_stats(name, ls.counts, steps, ls.model.max_rate(sim.dt), (ann or {}).get(name)))
        else:
            out.append(old[name])
    return tuple(out)


def _plan_note(sim, name: str) -> str:
    lp = sim.plan.layers.get(name)
    return "" if lp is None else lp.note()


def make_snapshot(sim, ann: Mapping[str, np.ndarray] | None = None, history_layers=None, window: int = 500,
                  r_history: Mapping | None = None, steps_per_second: float = 0.0, running: bool = False,
                  cache: HistoryCache | None = None, membrane_layers=None, membrane_neurons=(),
                  detail_layers=None, stats=None) -> Snapshot:
    """Copy what views need from ``sim`` (a Simulator). Call only from the thread that steps it.

    ``history_layers``: names of recorded layers whose newest ``window`` steps to include
    (None = all recorded layers). ``ann``: ANN activations by layer name, (B, *shape); arrays
    that are already read-only are taken as they are (not copied), the caller does not change
    them. ``cache``: a HistoryCache (of the same ``window``) kept between calls.
    ``membrane_layers``: names of the history layers whose membranes (and currents) to include
    (None = all). ``membrane_neurons``: (layer, flat index) pairs of history layers whose
    membranes to include one by one (``Snapshot.neuron_membranes``; the window asks for its
    watched neurons so, and for no layer's whole membranes).
    ``detail_layers``: names of the layers whose arrays (output, spikes, membrane, counts, ANN)
    to copy (None = all); the others' are None (an ImageNet-size network holds 16 M neurons:
    copying them all was 320 MB a snapshot). With ``detail_layers`` given, a neuron layer's
    output is not copied either (it is its spikes times ``output_scale``; no view reads it),
    nor its whole membrane (the watched neurons' come in ``neuron_membranes``), nor its spikes
    except while a step is in progress (the raster's column of the step by layer): VGG16's
    3.2 M-neuron block1_conv1 took 64 MB a snapshot, now its 26 MB of counts.
    ``stats``: LayerStats to hand out instead of computing them for every layer (see
    ``layer_stats_of``).
    """
    ann = ann or {}
    detail = None if detail_layers is None else set(detail_layers)
    layers = []
    for ls in sim.layers:
        kw = {}
        copy = detail is None or ls.layer.name in detail
        if ls.is_neuron:
            model = ls.model
            kw = dict(
                model=model.describe(), threshold=model.membrane_threshold, conversion=_plan_note(sim, ls.layer.name),
                max_rate=float(model.max_rate(sim.dt)), signed=bool(model.signed), path=ls.path,
                output_scale=float(ls.out_scale),
            )
            if copy and detail is None:
                kw.update(spikes=_ro(ls.spikes), membrane=_ro(ls.membrane()), counts=_ro(ls.counts))
            elif copy:  # a big network's shown layer: what the views read (the raster reads this step's
                # spikes only for a step in progress; membranes come as the watched neurons' alone)
                kw.update(spikes=_ro(ls.spikes) if sim.cursor else None, counts=_ro(ls.counts))
        layers.append(LayerSnapshot(ls.layer.name, ls.layer.kind, ls.index, ls.layer.output_shape,
                                    ls.is_neuron, _ro(ls.y) if copy and not (detail is not None and ls.is_neuron) else None,
                                    ann=_ro(ann.get(ls.layer.name)) if copy else None, **kw))
    rec = sim.recorder
    keep = None if history_layers is None else set(history_layers)
    membranes = None if membrane_layers is None else set(membrane_layers)
    if cache is not None:
        full = cache.trace(sim, keep, membranes, membrane_neurons)
        singles = cache.neurons
    else:
        full = rec.trace(window, sim.labels, layers=keep)
        columns = HistoryCache._neuron_columns(sim, tuple(full.layers), membrane_neurons)
        singles = MappingProxyType({(name, i): _ro(full[name].flat("membrane")[:, :, i])
                                    for name, idx in columns.items() for i in idx})
        if membranes is not None:
            full = dataclasses.replace(full, layers={
                name: lt if name in membranes else LayerTrace(lt.name, lt.shape, lt.spikes)
                for name, lt in full.layers.items()})
    acc = np.zeros(0)
    if sim.labels is not None and full.predictions is not None and len(full.steps):
        acc = accuracy_over_time(full.predictions, sim.labels)
    cursor_layer = sim.layers[sim.cursor].layer.name if sim.cursor else None
    return Snapshot(
        t=sim.t, cursor=sim.cursor, cursor_layer=cursor_layer, batch=sim.batch, dt=sim.dt,
        layers=tuple(layers), history=full, stats=tuple(simulator_stats(sim, ann) if stats is None else stats),
        predictions=_ro(sim.prediction()), labels=_ro(sim.labels), output_counts=_ro(sim.output_counts()),
        accuracy=_ro(acc), r_history=MappingProxyType(dict(r_history or {})),
        steps_per_second=float(steps_per_second), running=running,
        history_epoch=cache.epoch if cache is not None else 0, neuron_membranes=singles,
    )
