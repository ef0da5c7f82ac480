"""Leaky integrate-and-fire neurons as Nengo defines them.

Definition followed: Nengo 4.1 (nengo/nengo), ``nengo/neurons.py``: ``LIF.step`` and
``LIFRate.step`` (unchanged since Nengo 3.0). Per step, for each neuron:

    refractory_time -= dt
    delta_t = clip(dt - refractory_time, 0, dt)        # part of the step out of refractoriness
    v      -= (J - v) * expm1(-delta_t / tau_rc)       # exact zero-order hold of tau_rc dv/dt = J - v
    spike   if v > 1                                    # strict
    t_spike = dt + tau_rc * log1p(-(v - 1) / (J - 1))   # crossing time within the step
    v       = max(v, min_voltage); spiked: v = 0, refractory_time = tau_ref + t_spike

A spike carries ``amplitude / dt`` (``output_scale``). The rate function (LIFRate) is
``amplitude / (tau_ref + tau_rc * log1p(1 / (J - 1)))`` for J > 1, else 0.

Fitted variant (``reset_mode="subtract"``, chosen by the conversion plan, engine/conversion.py; the
default ``reset_mode="zero"`` is Nengo's LIF above, unchanged): the same exact voltage update, then

    spike   if v > 1;  spiked: v = v - 1, refractory_time = tau_ref + dt   (no interpolation)

The overshoot stays in v (as an IF neuron with reset by subtraction keeps it), so under a
constant J the count after T steps is T*(1 - exp(-dt/tau_rc))*(J - mean v) - (v_T - v_0): no
staircase of 1/n spikes a step. Not Nengo's (nor Loihi 1's) reset.

State is float64 as in Nengo (``rc.float_dtype``); J arrives from the engine as float32.
Deviation: Nengo draws the initial voltage from Uniform(0, 1); we start at 0 (Nengo with
``initial_state={"voltage": Choice([0])}``), so that a trace is reproducible step for step.
"""

from __future__ import annotations

import dataclasses
import math
from typing import ClassVar

import numba
import numpy as np

from workbench.engine.neurons.base import NeuronModel


@numba.njit(nogil=True, cache=True)
def lif_step(J, dt, tau_rc, tau_ref, min_voltage, interpolate, v, ref, spikes, subtract=False):
    """Nengo's LIF step (``interpolate=True``) or nengo-loihi's LoihiLIF step (``False``:
    refractory time ``tau_ref + dt``, i.e. whole steps, no spike-time interpolation).
    ``subtract``: the fitted variant's reset by subtraction (v -= 1 on a spike, the overshoot
    kept in v, so no spike-time interpolation: refractory time ``tau_ref + dt``) instead of
    Nengo's reset to zero."""
    for i in range(v.size):
        r = ref[i] - dt
        delta = dt - r
        if delta < 0.0:
            delta = 0.0
        elif delta > dt:
            delta = dt
        j = np.float64(J[i])
        vi = v[i] - (j - v[i]) * math.expm1(-delta / tau_rc)
        if vi > 1.0:
            spikes[i] = 1.0
            if interpolate and not subtract:
                t_spike = dt + tau_rc * math.log1p(-(vi - 1.0) / (j - 1.0))
                r = tau_ref + t_spike
            else:
                r = tau_ref + dt
            vi = vi - 1.0 if subtract else 0.0
        else:
            spikes[i] = 0.0
            if vi < min_voltage:
                vi = min_voltage
        v[i] = vi
        ref[i] = r


def lif_rate(J, tau_rc: float, tau_ref: float, amplitude: float = 1.0) -> np.ndarray:
    """Nengo's LIFRate: ``amplitude / (tau_ref + tau_rc*log1p(1/(J-1)))`` where J > 1, else 0."""
    j = np.asarray(J, dtype=np.float64) - 1.0
    out = np.zeros_like(j)
    pos = j > 0
    out[pos] = amplitude / (tau_ref + tau_rc * np.log1p(1.0 / j[pos]))
    return out


@dataclasses.dataclass(frozen=True)
class LIF(NeuronModel):
    """Nengo 4.1 ``nengo.LIF`` (file nengo/neurons.py), step for step; see the module docstring."""

    name: ClassVar[str] = "lif"
    description: ClassVar[str] = (
        "Leaky integrate-and-fire as in Nengo 4.1: exact exponential voltage update, spike when "
        "v > 1, refractory period with sub-step spike-time interpolation, spikes carry amplitude/dt."
    )
    reference: ClassVar[str] = "Nengo 4.1, nengo/neurons.py (LIF.step, LIFRate.step)"
    state_vars: ClassVar[tuple[str, ...]] = ("v", "refractory_time")
    default_dt: ClassVar[float] = 0.001

    tau_rc: float = 0.02
    tau_ref: float = 0.002
    min_voltage: float = 0.0
    amplitude: float = 1.0
    reset_mode: str = "zero"  # "zero": Nengo's LIF; "subtract": the conversion plan's fitted variant

    def __post_init__(self):
        self._require("reset_mode", self.reset_mode in ("zero", "subtract"), "must be 'zero' or 'subtract'")
        self._require("tau_rc", self._finite("tau_rc") > 0, "must be > 0 (seconds)")
        self._require("tau_ref", self._finite("tau_ref") >= 0, "must be >= 0 (seconds)")
        self._require("min_voltage", self._finite("min_voltage") <= 0, "must be <= 0")
        self._require("amplitude", self._finite("amplitude") > 0, "must be > 0")

    def validate_dt(self, dt: float) -> None:
        self._require("dt", 0 < dt < self.tau_rc, f"must be > 0 and smaller than tau_rc ({self.tau_rc} s)")

    def init_state(self, n: int) -> dict[str, np.ndarray]:
        return {name: np.zeros(n, dtype=np.float64) for name in self.state_vars}

    def step(self, J, dt, state, spikes, rng) -> None:
        lif_step(J, dt, self.tau_rc, self.tau_ref, self.min_voltage, True,
                 state["v"], state["refractory_time"], spikes, self.reset_mode == "subtract")

    def output_scale(self, dt: float) -> float:
        return self.amplitude / dt

    def rate(self, J, dt: float) -> np.ndarray:
        return lif_rate(J, self.tau_rc, self.tau_ref, self.amplitude)

    def max_rate(self, dt: float) -> float:
        return 1.0 if self.tau_ref <= dt else dt / self.tau_ref
