"""Recorder: copies the chosen layers' state into preallocated buffers after each timestep.

With ``capacity`` set, buffers are rings holding the newest ``capacity`` steps, so a run left
going for hours keeps flat memory (the window uses this); ``estimate_bytes`` tells beforehand
what a recording will cost so a caller can refuse or stream to disk instead.
"""

from __future__ import annotations

import numpy as np

from workbench.engine.trace import LayerTrace, Trace


def estimate_bytes(layer_sizes: dict[str, int], steps: int, batch: int, membrane: bool, current: bool) -> int:
    """Bytes a recording of ``steps`` steps will hold: int16 spikes + float32 per extra field."""
    per_neuron_step = 2 + 4 * int(membrane) + 4 * int(current)
    return int(sum(layer_sizes.values())) * steps * batch * per_neuron_step + steps * batch * 8


class Recorder:
    def __init__(self, layers, batch: int, capacity: int, membrane: bool = True, current: bool = False):
        """``layers``: LayerState objects to record (neuron layers)."""
        self.capacity = int(capacity)
        self.layers = list(layers)
        self.batch = batch
        self.count = 0  # steps appended since the last clear
        self._spikes = {}
        self._membrane = {}
        self._current = {}
        for ls in self.layers:
            shape = (self.capacity, *ls.shape)
            self._spikes[ls.layer.name] = np.zeros(shape, dtype=np.int16)
            if membrane:
                self._membrane[ls.layer.name] = np.zeros(shape, dtype=np.float32)
            if current:
                self._current[ls.layer.name] = np.zeros(shape, dtype=np.float32)
        self._steps = np.zeros(self.capacity, dtype=np.int64)
        self._pred = np.zeros((self.capacity, batch), dtype=np.int16)

    def clear(self) -> None:
        self.count = 0

    def append(self, step: int, predictions: np.ndarray) -> None:
        row = self.count % self.capacity
        for ls in self.layers:
            name = ls.layer.name
            np.copyto(self._spikes[name][row], ls.spikes, casting="unsafe")
            if name in self._membrane:
                self._membrane[name][row] = ls.membrane()
            if name in self._current:
                self._current[name][row] = ls.J
        self._steps[row] = step
        self._pred[row] = predictions
        self.count += 1

    def _ordered(self, arr: np.ndarray, last: int | None) -> np.ndarray:
        """The newest rows in time order (a copy: fancy indexing)."""
        n = min(self.count, self.capacity, self.count if last is None else last)
        return arr[np.arange(self.count - n, self.count) % self.capacity]

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
                self._ordered(self._spikes[name], last),
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
