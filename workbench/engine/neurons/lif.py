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
import functools
import math
from typing import ClassVar

import numba
import numpy as np

from workbench.engine.neurons.base import NeuronModel
from workbench.errors import ConfigError


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


# The inverse rate table of the fitted variant under a constant current (``rate_inverse_table``):
# target rates k/RATE_TABLE_SIZE, each rate measured as the spikes of RATE_TABLE_STEPS steps after
# RATE_TABLE_BURN steps from v = 0 (a rate within 1/RATE_TABLE_STEPS), J' located to float32
# precision by bisection. Measured in docs/conversion.md (1024/2048: ~0.03 s once per process).
RATE_TABLE_SIZE = 1024
RATE_TABLE_STEPS = 2048
RATE_TABLE_BURN = 256
_BISECTIONS = 26  # J' in [0, 1] to 2^-26, below float32's spacing near 0.5


@numba.njit(nogil=True, cache=True)
def constant_counts(J, gain, offset, decay, burn, steps, out):
    """Spikes of the fitted variant (reset by subtraction, no refractory time) under the
    constant current ``u = float32(float32(J*gain) + offset)`` (the engine's float32 arithmetic)
    in ``steps`` steps after ``burn``, from v = 0: the voltage update of ``lif_step`` with
    ``decay = expm1(-dt/tau_rc)`` (its value when the whole step integrates). Time is the outer
    loop so that the neurons' independent updates vectorize."""
    n = J.size
    u = np.empty(n)
    v = np.zeros(n)
    for i in range(n):
        u[i] = np.float64(np.float32(np.float32(J[i]) * gain) + offset)
        out[i] = 0
    for t in range(burn + steps):
        w = 1 if t >= burn else 0
        for i in range(n):
            vi = v[i] - (u[i] - v[i]) * decay
            s = vi > 1.0
            v[i] = vi - 1.0 if s else vi
            out[i] += w if s else 0


@functools.lru_cache(maxsize=16)
def rate_inverse_table(dt: float, tau_rc: float, gain: float, offset: float) -> np.ndarray:
    """float32[K + 1], K = ``RATE_TABLE_SIZE``: entry k is the current J' (before ``gain`` and
    ``offset``) at which the fitted variant's long-run rate under a constant current is k/K
    spikes a step: the middle of the J' interval whose rate is k/K (its rate curve is a devil's
    staircase, monotone, flat on each rational p/q; where k/K is no plateau the interval is one
    point, the edge between two plateaus). Computed once per (dt, tau_rc, gain, offset)."""
    K, M = RATE_TABLE_SIZE, RATE_TABLE_STEPS
    decay = math.expm1(-dt / tau_rc)
    g, off = np.float32(gain), np.float32(offset)
    need = np.arange(K + 1, dtype=np.int64) * (M // K)  # k/K spikes a step: 2k in M steps
    cnt = np.empty(K + 1, np.int64)
    edges = []
    for c in (need, need + 1):  # the smallest J' with >= c spikes, then with > c
        lo, hi = np.zeros(K + 1), np.ones(K + 1)  # count(lo) < c <= count(hi), count(1) = M
        for _ in range(_BISECTIONS):
            mid = ((lo + hi) / 2).astype(np.float32)
            constant_counts(mid, g, off, decay, RATE_TABLE_BURN, M, cnt)
            ok = cnt >= c
            hi = np.where(ok, mid, hi)
            lo = np.where(ok, lo, mid)
        edges.append(hi)
    first, after = edges
    first[0] = 0.0  # rate 0: J' from 0 to the rheobase, its middle
    table = ((first + after) / 2).astype(np.float32)
    table.flags.writeable = False
    return table


@numba.njit(nogil=True, cache=True)
def rate_invert(J, table):
    """In place: each current J in (0, 1) becomes the J' whose long-run fitted-LIF rate is J
    spikes a step (linear between the entries of ``rate_inverse_table``, whose rates bracket J;
    the rate curve is monotone, so the rate of J' is between them too). J <= 0 (silent) and
    J >= 1 (one spike a step, as IF saturates) are kept."""
    K = table.size - 1
    for i in range(J.size):
        j = np.float64(J[i])
        if 0.0 < j < 1.0:
            p = j * K
            k = int(p)
            if k >= K:
                k = K - 1
            lo = np.float64(table[k])
            J[i] = lo + (p - k) * (np.float64(table[k + 1]) - lo)


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

    def step_taus(self, dt: float) -> tuple[float, float]:
        """(tau_rc, tau_ref) as the step uses them (LoihiLIF: quantized)."""
        return self.tau_rc, self.tau_ref

    def rate_inverse(self, dt: float, gain: float, offset: float) -> np.ndarray:
        """The fitted variant's inverse rate table under a constant current (``rate_inverse_table``,
        applied with ``rate_invert``); only for ``reset_mode='subtract'`` without refractory time,
        the variant the conversion plan fits (engine/conversion.py)."""
        tau_rc, tau_ref = self.step_taus(dt)
        if self.reset_mode != "subtract" or tau_ref != 0.0:
            raise ConfigError("reset_mode", "the rate inversion needs the fitted variant "
                              "(reset_mode='subtract', tau_ref=0)")
        return rate_inverse_table(float(dt), float(tau_rc), float(gain), float(offset))
