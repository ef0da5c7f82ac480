"""Integrate-and-fire neurons with SNN Toolbox INIsim semantics.

Definition followed: SNN Toolbox (NeuromorphicProcessorProject/snn_toolbox), module
``snntoolbox/simulation/backends/inisim/temporal_mean_rate_tensorflow.py`` (SpikeLayer:
``get_new_mem``, ``linear_activation``, ``set_reset_mem``), version 0.6:

    v[t] = v[t-1] + dt * J[t]           J = W @ y_prev + b   (so  v += W @ s*thr + b*dt)
    spike  if v[t] >= threshold         at most one per step, carrying ``threshold``
    reset: subtract  v -= threshold     (INIsim's default, "Reset by subtraction")
           zero      v  = 0             ("Reset to zero")
           modulo    v  = v mod threshold ("Reset by modulo")

State is float32, as INIsim's Keras float32 variables (this matters: with input 0.3 the third
spike falls on step 10 in float32, on step 11 in float64). The output value of a spike is
``threshold / dt`` in rate units, so the next layer integrates ``dt * W @ y = W @ s * threshold``.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import numba
import numpy as np

from workbench.engine.neurons.base import NeuronModel

RESET_MODES = ("subtract", "zero", "modulo")
_RESET_CODE = {name: i for i, name in enumerate(RESET_MODES)}


@numba.njit(nogil=True, cache=True, inline="always")
def if_update(v, j, dt32, thr, reset_code):
    """One neuron's IF step in float32: (new v, spike 0/1). Shared by ``if_step`` and the fused
    kernel (``flat_kernels.if_emit``)."""
    vi = v + dt32 * j
    if vi >= thr:
        if reset_code == 0:
            vi = vi - thr
        elif reset_code == 1:
            vi = np.float32(0.0)
        else:
            vi = vi - thr * np.floor(vi / thr)
        return vi, np.float32(1.0)
    return vi, np.float32(0.0)


@numba.njit(nogil=True, cache=True, inline="always")
def if_burst_update(v, j, dt32, thr, reset_code, burst):
    """Burst spikes (Li & Zeng 2022): s = clamp(floor(v/thr), 0, burst) spikes this step, then
    reset (subtract: v -= s*thr; zero: v = 0; modulo: v mod thr) when s > 0. Only called with
    burst >= 2 (burst 1 is ``if_update`` itself, so IF is untouched)."""
    vi = v + dt32 * j
    if vi >= thr:
        s = np.floor(vi / thr)
        if s > burst:
            s = np.float32(burst)
        s = np.float32(max(s, 1.0))
        if reset_code == 0:
            vi = vi - s * thr
        elif reset_code == 1:
            vi = np.float32(0.0)
        else:
            vi = vi - thr * np.floor(vi / thr)
        return vi, s
    return vi, np.float32(0.0)


@numba.njit(nogil=True, cache=True)
def if_burst_step(J, dt, threshold, reset_code, burst, v, spikes):
    dt32 = np.float32(dt)
    thr = np.float32(threshold)
    for i in range(v.size):
        vi, s = if_burst_update(v[i], J[i], dt32, thr, reset_code, burst)
        spikes[i] = s
        v[i] = vi


@numba.njit(nogil=True, cache=True)
def if_step(J, dt, threshold, reset_code, v, spikes):
    dt32 = np.float32(dt)
    thr = np.float32(threshold)
    for i in range(v.size):
        vi, s = if_update(v[i], J[i], dt32, thr, reset_code)
        spikes[i] = s
        v[i] = vi


@dataclasses.dataclass(frozen=True)
class IF(NeuronModel):
    """Non-leaky integrate-and-fire (SNN Toolbox INIsim), threshold crossing with ``>=``."""

    name: ClassVar[str] = "if"
    description: ClassVar[str] = (
        "Integrate-and-fire as in SNN Toolbox INIsim: v += dt*J, spike when v >= threshold, "
        "reset by subtraction (default), to zero, or modulo."
    )
    reference: ClassVar[str] = (
        "SNN Toolbox 0.6, snntoolbox/simulation/backends/inisim/temporal_mean_rate_tensorflow.py"
    )
    default_dt: ClassVar[float] = 1.0

    threshold: float = 1.0
    reset: str = "subtract"
    # Low-latency remedies (docs/conversion.md, "Remedies"): the membrane starts at
    # v_init * threshold (0.5: the half-threshold start), and up to ``burst`` spikes per step.
    v_init: float = 0.0
    burst: int = 1

    def __post_init__(self):
        self._require("threshold", self._finite("threshold") > 0, "must be > 0")
        self._require("reset", self.reset in RESET_MODES, f"must be one of {', '.join(RESET_MODES)}")
        self._require("v_init", 0.0 <= self._finite("v_init") < 1.0, "must be in [0, 1) (a fraction of the threshold)")
        self._require("burst", not isinstance(self.burst, bool) and isinstance(self.burst, int) and 1 <= self.burst <= 1000,
                      f"must be a whole number from 1 to 1000, got {self.burst!r}")

    def params(self) -> dict:
        """Every parameter; the remedy options only when set (a plain IF's metadata, exported
        parameters and description stay as they were)."""
        out = super().params()
        for key, default in (("v_init", 0.0), ("burst", 1)):
            if out[key] == default:
                del out[key]
        return out

    def init_state(self, n: int) -> dict[str, np.ndarray]:
        return {"v": np.full(n, np.float32(self.v_init * self.threshold), dtype=np.float32)}

    def step(self, J, dt, state, spikes, rng) -> None:
        if self.burst == 1:
            if_step(J, dt, self.threshold, _RESET_CODE[self.reset], state["v"], spikes)
        else:
            if_burst_step(J, dt, self.threshold, _RESET_CODE[self.reset], self.burst, state["v"], spikes)

    def output_scale(self, dt: float) -> float:
        return self.threshold / dt

    def max_rate(self, dt: float) -> float:
        return float(self.burst)

    def rate(self, J: np.ndarray, dt: float) -> np.ndarray:
        """Steady-state output in rate units: J clipped to [0, burst*threshold/dt] (``burst``
        spikes a step at most)."""
        return np.clip(np.asarray(J, dtype=np.float32), 0.0, self.burst * self.threshold / dt)
