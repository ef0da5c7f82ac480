"""Trace: what a run recorded, per layer, read-only.

Per recorded layer: ``spikes`` [T, B, *shape] int16 (spike counts per step; negative for signed
models), ``membrane`` [T, B, *shape] float32 (the neuron model's membrane variable AFTER the
step's reset, or None), ``current`` [T, B, *shape] float32 (the input current J, or None).
Layout is channels-last (NHWC) like Keras; flattening a layer's neurons is row-major over
``shape``. ``steps`` holds the 1-based timestep of each recorded row (a ring buffer keeps only
the newest rows, so it need not start at 1). ``predictions`` [T, B] is the argmax of the
cumulative output spike counts after each step (-1 while the output layer has not spiked).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from types import MappingProxyType

import numpy as np


def _frozen(arr):
    if arr is None:
        return None
    arr = np.asarray(arr)
    arr.flags.writeable = False
    return arr


@dataclasses.dataclass(frozen=True)
class LayerTrace:
    name: str
    shape: tuple[int, ...]
    spikes: np.ndarray
    membrane: np.ndarray | None = None
    current: np.ndarray | None = None

    def __post_init__(self):
        for f in ("spikes", "membrane", "current"):
            object.__setattr__(self, f, _frozen(getattr(self, f)))

    def flat(self, what: str = "spikes") -> np.ndarray:
        """[T, B, N]: neurons flattened row-major (channels-last)."""
        arr = getattr(self, what)
        return arr.reshape(arr.shape[0], arr.shape[1], -1)


@dataclasses.dataclass(frozen=True)
class Trace:
    layers: Mapping[str, LayerTrace]
    steps: np.ndarray  # [T] 1-based timestep numbers of the rows
    predictions: np.ndarray | None = None  # [T, B]
    labels: np.ndarray | None = None  # [B]
    ann: Mapping[str, np.ndarray] = dataclasses.field(default_factory=dict)  # [B, *shape]
    metadata: Mapping = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        object.__setattr__(self, "layers", MappingProxyType(dict(self.layers)))
        object.__setattr__(self, "ann", MappingProxyType({k: _frozen(v) for k, v in self.ann.items()}))
        object.__setattr__(self, "metadata", MappingProxyType(dict(self.metadata)))
        object.__setattr__(self, "steps", _frozen(np.asarray(self.steps, dtype=np.int64)))
        object.__setattr__(self, "predictions", _frozen(self.predictions))
        object.__setattr__(self, "labels", _frozen(self.labels))

    @property
    def n_steps(self) -> int:
        return int(self.steps.shape[0])

    @property
    def batch(self) -> int:
        first = next(iter(self.layers.values()), None)
        return 0 if first is None else int(first.spikes.shape[1])

    def __getitem__(self, name: str) -> LayerTrace:
        return self.layers[name]
