"""Loihi-quantized rate neurons as nengo-loihi emulates them on a CPU (level 1 of 2).

Definition followed: nengo-loihi 1.1 (nengo/nengo-loihi), ``nengo_loihi/neurons.py``:
``LoihiLIF``, ``LoihiSpikingRectifiedLinear``, ``discretize_tau_rc``, ``discretize_tau_ref``,
``loihi_lif_rates``, ``loihi_spikingrectifiedlinear_rates``.

LoihiLIF is Nengo's LIF with the chip's quantization:
    decay    = round(-expm1(-dt/tau_rc) * 4095) / 4095      (12-bit voltage decay)
    tau_rc'  = -dt / log1p(-decay)                           (used in the voltage update)
    tau_ref' = dt * round(tau_ref / dt)                      (whole steps)
    no spike-time interpolation: a spike sets refractory_time = tau_ref' + dt, so the voltage is
    held at 0 for exactly tau_ref'/dt steps; the overshoot above 1 is discarded (v = 0).
LoihiSpikingRectifiedLinear:  v += J*dt; spike if v > 1; v = max(v, 0); spiked: v = 0.

Rate functions. nengo-loihi gives ``amplitude / (dt * ceil(period / dt))`` with
period = tau_ref' + tau_rc' log1p(1/(J-1)) (LIF) or 1/J (ReLU). Its step functions fire after
``n = floor(x) + 1`` integrating steps, x = (period - tau_ref')/dt, because the threshold is strict
and the overshoot is discarded; ``ceil(x)`` and ``floor(x) + 1`` differ when x is a whole number,
e.g. LoihiSpikingRectifiedLinear at J = 100, dt = 0.001: the rate formula says 100 Hz (every 10
steps), the step function spikes every 11 steps (v reaches exactly 1, which is not > 1), 90.9 Hz.
We follow the step function: ``rate = amplitude / (dt * (tau_ref'/dt + floor(x) + 1))``, and
where x is within 1e-6 of a whole number we run one inter-spike period of the step function
itself (every spike leaves the same state), because there float rounding decides: at dt = 0.0005,
J = 100, twenty additions of 0.05 give 1.0000000000000002 > 1, a spike every 20 steps.
"""

from __future__ import annotations

import dataclasses
import math
from typing import ClassVar

import numba
import numpy as np

from workbench.engine.neurons.base import NeuronModel
from workbench.engine.neurons.lif import LIF, lif_step


def discretize_tau_rc(tau_rc: float, dt: float) -> float:
    """The membrane time constant the chip's 12-bit decay actually realizes."""
    decay = round(-math.expm1(-dt / tau_rc) * 4095) / 4095
    return -dt / math.log1p(-decay)


def discretize_tau_ref(tau_ref: float, dt: float) -> float:
    """The refractory period in whole steps (round to nearest, ties to even as numpy does)."""
    return dt * float(np.round(tau_ref / dt))


@dataclasses.dataclass(frozen=True)
class LoihiLIF(LIF):
    """nengo-loihi 1.1 ``LoihiLIF``: see the module docstring."""

    name: ClassVar[str] = "loihi_lif"
    description: ClassVar[str] = (
        "LIF as nengo-loihi emulates Loihi: tau_rc quantized to a 12-bit decay, tau_ref to whole "
        "steps, no spike-time interpolation (overshoot discarded): only rates amplitude/(n*dt)."
    )
    reference: ClassVar[str] = "nengo-loihi 1.1, nengo_loihi/neurons.py (LoihiLIF, loihi_lif_rates)"

    def validate_dt(self, dt: float) -> None:
        self._require("dt", dt > 0, "must be > 0")
        code = round(-math.expm1(-dt / self.tau_rc) * 4095)
        self._require("dt", 1 <= code <= 4094,
                      f"dt/tau_rc gives a 12-bit decay of {code}; it must be 1..4094 (no leak or no memory)")

    def step(self, J, dt, state, spikes, rng) -> None:
        lif_step(J, dt, discretize_tau_rc(self.tau_rc, dt), discretize_tau_ref(self.tau_ref, dt),
                 self.min_voltage, False, state["v"], state["refractory_time"], spikes, self.reset_mode == "subtract")

    def step_taus(self, dt: float) -> tuple[float, float]:
        return discretize_tau_rc(self.tau_rc, dt), discretize_tau_ref(self.tau_ref, dt)

    def rate(self, J, dt: float) -> np.ndarray:
        """Steady-state rate of the step function (see the module docstring on ceil vs floor+1)."""
        tau_rc = discretize_tau_rc(self.tau_rc, dt)
        ref_steps = round(discretize_tau_ref(self.tau_ref, dt) / dt)
        j = np.asarray(J, dtype=np.float64) - 1.0
        out = np.zeros_like(j)
        pos = j > 0
        x = tau_rc * np.log1p(1.0 / j[pos]) / dt
        steps = ref_steps + np.floor(x) + 1
        # Where x is (nearly) whole, rounding in the step function decides: run one period of it.
        edge = np.flatnonzero(np.abs(x - np.round(x)) < 1e-6 * np.maximum(x, 1.0))
        if edge.size:
            tau_ref = discretize_tau_ref(self.tau_ref, dt)
            js = (j[pos][edge] + 1.0)
            steps[edge] = [_lif_period(float(v), dt, tau_rc, tau_ref) for v in js]
        out[pos] = self.amplitude / (dt * steps)
        return out

    def reference_rate(self, J, dt: float) -> np.ndarray:
        """nengo-loihi's own formula ``amplitude / (dt * ceil(period/dt))``, for comparison."""
        tau_rc = discretize_tau_rc(self.tau_rc, dt)
        tau_ref = discretize_tau_ref(self.tau_ref, dt)
        j = np.asarray(J, dtype=np.float64) - 1.0
        out = np.zeros_like(j)
        pos = j > 0
        out[pos] = self.amplitude / dt / np.ceil((tau_ref + tau_rc * np.log1p(1.0 / j[pos])) / dt)
        return out

    def max_rate(self, dt: float) -> float:
        return 1.0 / (1 + round(discretize_tau_ref(self.tau_ref, dt) / dt))


def _lif_period(J: float, dt: float, tau_rc: float, tau_ref: float) -> int:
    """Steps from one spike to the next of ``lif_step`` (no interpolation) under constant J:
    every spike leaves the same state (v = 0, refractory = tau_ref + dt), so this is exact."""
    v = np.zeros(1)
    ref = np.array([tau_ref + dt])
    spikes = np.zeros(1, dtype=np.float32)
    Jarr = np.array([J], dtype=np.float32)
    n = 0
    while True:
        n += 1
        lif_step(Jarr, dt, tau_rc, tau_ref, 0.0, False, v, ref, spikes)
        if spikes[0]:
            return n


def _relu_period(J: float, dt: float) -> int:
    v = np.zeros(1)
    spikes = np.zeros(1, dtype=np.float32)
    Jarr = np.array([J], dtype=np.float32)
    n = 0
    while True:
        n += 1
        loihi_relu_step(Jarr, dt, v, spikes)
        if spikes[0]:
            return n


@numba.njit(nogil=True, cache=True)
def loihi_relu_step(J, dt, v, spikes):
    for i in range(v.size):
        vi = v[i] + np.float64(J[i]) * dt
        if vi > 1.0:
            spikes[i] = 1.0
            vi = 0.0
        else:
            spikes[i] = 0.0
            if vi < 0.0:
                vi = 0.0
        v[i] = vi


@dataclasses.dataclass(frozen=True)
class LoihiReLU(NeuronModel):
    """nengo-loihi 1.1 ``LoihiSpikingRectifiedLinear``: see the module docstring."""

    name: ClassVar[str] = "loihi_relu"
    description: ClassVar[str] = (
        "Spiking ReLU as nengo-loihi emulates Loihi: v += J*dt, spike when v > 1, reset to 0 "
        "(overshoot discarded), v >= 0: rates amplitude/(n*dt) for whole n only."
    )
    reference: ClassVar[str] = (
        "nengo-loihi 1.1, nengo_loihi/neurons.py (LoihiSpikingRectifiedLinear, "
        "loihi_spikingrectifiedlinear_rates)"
    )
    default_dt: ClassVar[float] = 0.001

    amplitude: float = 1.0

    def __post_init__(self):
        self._require("amplitude", self._finite("amplitude") > 0, "must be > 0")

    def validate_dt(self, dt: float) -> None:
        self._require("dt", dt > 0, "must be > 0")

    def init_state(self, n: int) -> dict[str, np.ndarray]:
        return {"v": np.zeros(n, dtype=np.float64)}

    def step(self, J, dt, state, spikes, rng) -> None:
        loihi_relu_step(J, dt, state["v"], spikes)

    def output_scale(self, dt: float) -> float:
        return self.amplitude / dt

    def rate(self, J, dt: float) -> np.ndarray:
        """``amplitude / (dt * (floor(1/(J*dt)) + 1))`` for J > 0: the step function's period."""
        j = np.asarray(J, dtype=np.float64)
        out = np.zeros_like(j)
        pos = j > 0
        x = 1.0 / (j[pos] * dt)
        steps = np.floor(x) + 1
        # Where 1/(J dt) is (nearly) whole, float rounding of v += J*dt decides: run one period.
        edge = np.flatnonzero(np.abs(x - np.round(x)) < 1e-6 * np.maximum(x, 1.0))
        for k in edge:
            steps[k] = _relu_period(float(j[pos][k]), dt)
        out[pos] = self.amplitude / (dt * steps)
        return out

    def reference_rate(self, J, dt: float) -> np.ndarray:
        """nengo-loihi's own formula ``amplitude / (dt * ceil(1/(J*dt)))``, for comparison."""
        j = np.asarray(J, dtype=np.float64)
        out = np.zeros_like(j)
        pos = j > 0
        out[pos] = self.amplitude / dt / np.ceil(1.0 / (j[pos] * dt))
        return out
