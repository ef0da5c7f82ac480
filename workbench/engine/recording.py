"""Recorder: copies the chosen layers' state into preallocated buffers after each timestep.

With ``capacity`` set, buffers are rings holding the newest ``capacity`` steps, so a run left
going for hours keeps flat memory (the window uses this); ``estimate_bytes`` tells beforehand
what a recording will cost so a caller can refuse or stream to disk instead.
"""

from __future__ import annotations

import numpy as np

from workbench.engine.trace import LayerTrace, Trace


NO_LAYER_CAPACITY = 10_000  # steps of step numbers and predictions kept when no layer is recorded
MIN_HISTORY = 2  # the shortest history the window keeps (a tiny budget: fewer steps, not more memory)
BUDGET_SHARE = 1 / 32  # of the machine's memory, the window's default recording budget
BUDGET_RANGE = (256 * 1024**2, 512 * 1024**2)  # ... clipped to this: with ResNet50's 16 M neurons
# running beside it (0.4 GB of state) the window stays within weights + 1.5 GB (docs/benchmarks.md)


def estimate_bytes(layer_sizes: dict[str, int], steps: int, batch: int, membrane: bool, current: bool) -> int:
    """Bytes a recording of ``steps`` steps will hold: int16 spikes + float32 per extra field."""
    per_neuron_step = 2 + 4 * int(membrane) + 4 * int(current)
    return int(sum(layer_sizes.values())) * steps * batch * per_neuron_step + steps * batch * 8


def machine_memory() -> int | None:
    """Physical memory of this machine in bytes (None when the system does not say)."""
    try:
        import os

        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return None


def default_budget(total: int | None = None) -> int:
    """The window's default memory budget for what it records: a 32nd of the machine's
    memory, at least 256 MB and at most 512 MB (512 MB when the machine does not say)."""
    total = machine_memory() if total is None else total
    if not total:
        return BUDGET_RANGE[1]
    lo, hi = BUDGET_RANGE
    return int(min(max(total * BUDGET_SHARE, lo), hi))


def format_bytes(n: float) -> str:
    """``n`` bytes for people: '812 kB', '46.1 MB', '2.0 GB'."""
    for unit, size in (("GB", 1024**3), ("MB", 1024**2), ("kB", 1024)):
        if abs(n) >= size:
            return f"{n / size:.1f} {unit}" if unit != "kB" else f"{n / size:.0f} {unit}"
    return f"{int(n)} bytes"


def spike_dtype(max_per_step: float) -> np.dtype:
    """The smallest signed integer type that holds a step's spike count (int8 up to 127)."""
    return np.dtype(np.int8) if abs(max_per_step) <= 127 else np.dtype(np.int16)


def history_plan(sizes: dict[str, int], membranes: set[str] | frozenset, batch: int, budget: int,
                 longest: int, cache_factor: float = 4, cache_spike_bytes: int = 1, cached=None,
                 ring_spike_bytes: int = 2) -> tuple[int, int]:
    """(steps, bytes): how many steps of history the window can keep within ``budget`` bytes,
    at most ``longest`` and at least MIN_HISTORY, and what they take. Per recorded neuron and
    step: ``ring_spike_bytes`` of spikes in the simulator's ring (2: int16, 1: int8) (+ 4 of float32 membrane for the
    layers in ``membranes``) and ``cache_factor`` copies of ``cache_spike_bytes`` in the
    history the snapshots share (``analysis.snapshot.HistoryCache``: its buffers and spares) for
    the layers in ``cached`` (the history layers the views show; None: all of ``sizes``)."""
    per_step = batch * 16  # step numbers and predictions, ring and cache
    for name, n in sizes.items():
        copies = cache_factor * cache_spike_bytes if cached is None or name in cached else 0
        per_step += n * batch * (ring_spike_bytes + copies + (4 if name in membranes else 0))
    steps = int(max(MIN_HISTORY, min(longest, budget // max(per_step, 1))))
    return steps, int(steps * per_step)


class Recorder:
    def __init__(self, layers, batch: int, capacity: int, membrane=True, current: bool = False,
                 spike_dtype=np.int16):
        """``layers``: LayerState objects to record (neuron layers); ``membrane``: True (of
        every recorded layer), False, or the names of the layers whose membranes to record.
        ``spike_dtype``: int16, or int8 when no step's count can pass 127 (``spike_dtype()``:
        the window's ring of an ImageNet-size layer then takes half the memory); ``trace()``
        hands out int16 either way."""
        self.capacity = int(capacity)
        self.layers = list(layers)
        self.batch = batch
        self.count = 0  # steps appended since the last clear
        self.clears = 0  # how often cleared: tells a reader (HistoryCache) that rows were dropped
        self.spike_dtype = np.dtype(spike_dtype)
        if self.spike_dtype not in (np.dtype(np.int8), np.dtype(np.int16)):
            raise ValueError(f"spike_dtype must be int8 or int16, got {self.spike_dtype}")
        self._spikes = {}
        self._words = {}  # the spike rings' memory as int16, what the fused kernel's ring list holds
        self._membrane = {}
        self._current = {}
        for ls in self.layers:
            shape = (self.capacity, *ls.shape)
            size = int(np.prod(shape))
            if self.spike_dtype == np.int8:  # an even number of bytes, so the int16 view exists
                flat = np.zeros(size + size % 2, dtype=np.int8)
                self._spikes[ls.layer.name] = flat[:size].reshape(shape)
                self._words[ls.layer.name] = flat.view(np.int16)
            else:
                self._spikes[ls.layer.name] = np.zeros(shape, dtype=np.int16)
                self._words[ls.layer.name] = self._spikes[ls.layer.name].reshape(-1)
            if membrane is True or (membrane is not False and ls.layer.name in membrane):
                self._membrane[ls.layer.name] = np.zeros(shape, dtype=np.float32)
            if current:
                self._current[ls.layer.name] = np.zeros(shape, dtype=np.float32)
        self._steps = np.zeros(self.capacity, dtype=np.int64)
        self._pred = np.zeros((self.capacity, batch), dtype=np.int16)

    def spike_words(self, name: str) -> np.ndarray:
        """The spike ring of layer ``name`` as a flat int16 array over its memory (for the
        fused kernel, whose rings are int16 arrays; an int8 ring is written through a view)."""
        return self._words[name]

    @property
    def nbytes(self) -> int:
        """Bytes the ring buffers hold."""
        arrays = [*self._spikes.values(), *self._membrane.values(), *self._current.values(), self._steps, self._pred]
        return int(sum(a.nbytes for a in arrays))

    def clear(self) -> None:
        self.count = 0
        self.clears += 1

    def append(self, step: int, predictions: np.ndarray) -> None:
        row = self.count % self.capacity
        for ls in self.layers:
            name = ls.layer.name
            if ls.model.spiking:  # non-spiking layers (Current) record no spikes: the ring stays 0
                np.copyto(self._spikes[name][row], ls.spikes, casting="unsafe")
            if name in self._membrane:
                self._membrane[name][row] = ls.membrane()
            if name in self._current:
                self._current[name][row] = ls.J
        self._steps[row] = step
        self._pred[row] = predictions
        self.count += 1

    def arrays(self, name: str | None = None) -> dict[str, np.ndarray]:
        """The ring buffers (not copies; do not write) of one recorded layer ({'spikes',
        'membrane', 'current'} as recorded) or, with ``name`` None, {'steps', 'predictions'}."""
        if name is None:
            return {"steps": self._steps, "predictions": self._pred}
        found = {"spikes": self._spikes[name], "membrane": self._membrane.get(name),
                 "current": self._current.get(name)}
        return {k: v for k, v in found.items() if v is not None}

    def copy_rows(self, arr: np.ndarray, start: int, stop: int, out: np.ndarray, columns=None) -> None:
        """Copy the rows appended as number ``start`` .. ``stop - 1`` (counted since the last
        clear; all still in the ring) of one of ``arrays()`` into ``out``, in time order: at
        most two block copies, no temporaries. ``columns``: flat (channels-last) neuron indices
        to copy of each sample instead of whole rows; ``out`` is then (rows, B, len(columns))."""
        n = stop - start
        if n <= 0:
            return
        if start < self.count - self.capacity or stop > self.count:
            raise IndexError(f"rows {start}..{stop} are not in the ring (count {self.count})")
        first = start % self.capacity
        head = min(n, self.capacity - first)
        if columns is not None:
            flat = arr.reshape(arr.shape[0], arr.shape[1], -1)
            np.take(flat[first:first + head], columns, axis=2, out=out[:head])
            if head < n:
                np.take(flat[:n - head], columns, axis=2, out=out[head:n])
            return
        np.copyto(out[:head], arr[first:first + head])
        if head < n:
            np.copyto(out[head:n], arr[:n - head])

    def _ordered(self, arr: np.ndarray, last: int | None, dtype=None) -> np.ndarray:
        """The newest rows in time order (a copy, in ``dtype`` when given)."""
        n = min(self.count, self.capacity, self.count if last is None else last)
        out = np.empty((n, *arr.shape[1:]), dtype=arr.dtype)
        self.copy_rows(arr, self.count - n, self.count, out)
        return out if dtype is None else out.astype(dtype, copy=False)

    def trace(self, last: int | None = None, labels=None, ann=None, metadata=None, layers=None) -> Trace:
        """A Trace of the recorded steps (the newest ``last`` of them when given), as copies;
        ``layers``: names to include (default all recorded)."""
        layer_traces = {}
        for ls in self.layers:
            name = ls.layer.name
            if layers is not None and name not in layers:
                continue
            layer_traces[name] = LayerTrace(
                name,
                ls.layer.output_shape,
                self._ordered(self._spikes[name], last, np.int16),
                self._ordered(self._membrane[name], last) if name in self._membrane else None,
                self._ordered(self._current[name], last) if name in self._current else None,
            )
        return Trace(
            layer_traces,
            self._ordered(self._steps, last),
            self._ordered(self._pred, last),
            labels,
            ann or {},
            metadata or {},
        )
