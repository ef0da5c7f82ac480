"""Spiking wrappers around rate functions, as Nengo defines them.

Definition followed: Nengo 4.1 (nengo/nengo), ``nengo/neurons.py``: ``RegularSpiking``,
``StochasticSpiking``, ``PoissonSpiking`` (``RatesToSpikesNeuronType``) around the rate types
``RectifiedLinear``, ``Tanh``, ``Sigmoid``, ``LIFRate``. With ``r = f(gain * J)`` in Hz:

    RegularSpiking:    v += dt * r;  n = floor(v);  v -= n            (several spikes a step allowed)
    StochasticSpiking: n = floor(dt*|r|) + (U < frac(dt*|r|)), U ~ Uniform[0, 1), times sign(r)
    PoissonSpiking:    n = Poisson(dt*|r|), times sign(r)
    each spike carries amplitude/dt (``output_scale``).

Rate functions (Nengo's, with the base type's amplitude fixed at 1):
    relu      max(0, x)                         (Nengo RectifiedLinear)
    linear    x                                 (ours: Nengo has no linear rate type; signed)
    tanh      (1 / tau_ref) * tanh(x)           (Nengo Tanh, tau_ref = 0.0025: 400 Hz; signed;
                                                 Nengo's order of operations, bit for bit)
    sigmoid   1 / (tau_ref * (1 + exp(-x)))     (Nengo Sigmoid, tau_ref = 0.0025: 400 Hz)
    lif_rate  1 / (tau_ref + tau_rc log1p(1/(x-1))) for x > 1   (Nengo LIFRate, tau_ref 0.002)
``tau_ref = None`` takes those defaults; for relu/linear it means no maximum, a value clips |r| to
1/tau_ref (our extension). ``gain`` scales the current before the rate function (Nengo applies
gain when it builds J). Negative rates (tanh, linear) give negative spikes: ``signed`` is True,
something most neuromorphic hardware cannot do. RegularSpiking with negative rates follows
Nengo's ``floor`` exactly, so J = -0.5 under tanh spikes (-1) already on the first step.

``SpikingRectifiedLinear`` is Nengo's own name for ``RegularSpiking`` around ``relu``
(``voltage += max(J, 0) * dt; n = floor(voltage); voltage -= n``): the same model under the name
users search for (it runs the generic path, not the fused one).

Deviations: Nengo draws RegularSpiking's initial voltage from Uniform(0, 1); we start at 0.
Random numbers come from the simulator's seeded ``numpy.random.Generator`` (one uniform per
neuron and step for StochasticSpiking, ``Generator.poisson`` for PoissonSpiking): same seed, same
trace. Spike counts are recorded as int16, so at most 32767 spikes per neuron and step.
"""

from __future__ import annotations

import dataclasses
import math
from typing import ClassVar

import numba
import numpy as np

from workbench.engine.neurons.base import NeuronModel

RATE_FUNCTIONS = ("relu", "linear", "tanh", "sigmoid", "lif_rate")
_CODE = {name: i for i, name in enumerate(RATE_FUNCTIONS)}
_SIGNED = frozenset({"linear", "tanh"})
_DEFAULT_TAU_REF = {"relu": 0.0, "linear": 0.0, "tanh": 0.0025, "sigmoid": 0.0025, "lif_rate": 0.002}


@numba.njit(nogil=True, cache=True)
def rate_value(code, x, tau_ref, tau_rc):
    """One rate in Hz (before amplitude). ``tau_ref == 0`` means no maximum for relu/linear."""
    if code == 0 or code == 1:
        r = x if code == 1 or x > 0.0 else 0.0
        if tau_ref > 0.0:
            lim = 1.0 / tau_ref
            r = min(max(r, -lim), lim)
        return r
    if code == 2:
        return (1.0 / tau_ref) * math.tanh(x)  # Nengo's order: differs from tanh(x)/tau_ref in the last bit
    if code == 3:
        return (1.0 / tau_ref) / (1.0 + math.exp(-x))
    j = x - 1.0
    if j > 0.0:
        return 1.0 / (tau_ref + tau_rc * math.log1p(1.0 / j))
    return 0.0


@numba.njit(nogil=True, cache=True)
def rates_kernel(code, J, gain, tau_ref, tau_rc, out):
    for i in range(J.size):
        out[i] = rate_value(code, gain * np.float64(J[i]), tau_ref, tau_rc)


@numba.njit(nogil=True, cache=True)
def regular_step(code, J, dt, gain, tau_ref, tau_rc, v, rate, spikes):
    for i in range(v.size):
        r = rate_value(code, gain * np.float64(J[i]), tau_ref, tau_rc)
        rate[i] = r
        vi = v[i] + dt * r
        n = math.floor(vi)
        spikes[i] = n
        v[i] = vi - n


@numba.njit(nogil=True, cache=True)
def stochastic_step(code, J, dt, gain, tau_ref, tau_rc, uniform, rate, spikes):
    for i in range(rate.size):
        r = rate_value(code, gain * np.float64(J[i]), tau_ref, tau_rc)
        rate[i] = r
        e = dt * abs(r)
        n = math.floor(e)
        if uniform[i] < e - n:
            n += 1.0
        spikes[i] = -n if r < 0.0 else n


@numba.njit(nogil=True, cache=True)
def poisson_lambda(code, J, dt, gain, tau_ref, tau_rc, rate, lam):
    for i in range(rate.size):
        r = rate_value(code, gain * np.float64(J[i]), tau_ref, tau_rc)
        rate[i] = r
        lam[i] = dt * abs(r)


@dataclasses.dataclass(frozen=True)
class _RateSpiking(NeuronModel):
    default_dt: ClassVar[float] = 0.001
    state_vars: ClassVar[tuple[str, ...]] = ("rate",)
    membrane_var: ClassVar[str] = "rate"

    rate_fn: str = "relu"
    tau_ref: float | None = None
    tau_rc: float = 0.02
    gain: float = 1.0
    amplitude: float = 1.0

    def __post_init__(self):
        self._require("rate_fn", self.rate_fn in RATE_FUNCTIONS, f"must be one of {', '.join(RATE_FUNCTIONS)}")
        if self.tau_ref is not None:
            ok = self._finite("tau_ref") >= 0 if self.rate_fn == "lif_rate" else self._finite("tau_ref") > 0
            self._require("tau_ref", ok, "must be > 0 (seconds; >= 0 for lif_rate), or none for the default")
        self._require("tau_rc", self._finite("tau_rc") > 0, "must be > 0 (seconds)")
        self._require("gain", self._finite("gain") != 0, "must be non-zero")
        self._require("amplitude", self._finite("amplitude") > 0, "must be > 0")

    @property
    def signed(self) -> bool:  # overrides the ClassVar: depends on the rate function
        return self.rate_fn in _SIGNED

    @property
    def membrane_threshold(self) -> float | None:
        """Stochastic and Poisson show the rate (Hz) as their membrane: no spike level.
        RegularSpiking's v spikes on each whole unit it passes."""
        return 1.0 if self.membrane_var == "v" else None

    @property
    def effective_tau_ref(self) -> float:
        return _DEFAULT_TAU_REF[self.rate_fn] if self.tau_ref is None else float(self.tau_ref)

    def _args(self):
        return _CODE[self.rate_fn], self.gain, self.effective_tau_ref, self.tau_rc

    def validate_dt(self, dt: float) -> None:
        self._require("dt", dt > 0, "must be > 0")

    def init_state(self, n: int) -> dict[str, np.ndarray]:
        return {name: np.zeros(n, dtype=np.float64) for name in self.state_vars}

    def output_scale(self, dt: float) -> float:
        return self.amplitude / dt

    def rate(self, J, dt: float) -> np.ndarray:
        """``amplitude * f(gain * J)``: the expected output in rate units."""
        J = np.asarray(J, dtype=np.float64)
        out = np.empty(J.size, dtype=np.float64)
        code, gain, tau_ref, tau_rc = self._args()
        rates_kernel(code, J.ravel(), gain, tau_ref, tau_rc, out)
        return self.amplitude * out.reshape(J.shape)

    def max_rate(self, dt: float) -> float:
        """Spikes per step at the rate function's maximum (inf when it has none)."""
        tau_ref = self.effective_tau_ref
        return dt / tau_ref if tau_ref > 0 else math.inf

    def describe(self) -> str:
        text = super().describe()
        return text + (" [signed spikes: not possible on most hardware]" if self.signed else "")


@dataclasses.dataclass(frozen=True)
class RegularSpiking(_RateSpiking):
    """Nengo 4.1 ``RegularSpiking``: see the module docstring."""

    name: ClassVar[str] = "regular_spiking"
    description: ClassVar[str] = (
        "Nengo RegularSpiking around a rate function (relu, linear, tanh, sigmoid, lif_rate): "
        "integrates rate*dt, emits the whole part (several spikes a step allowed), keeps the rest. "
        "tanh/linear emit negative spikes, which most hardware cannot."
    )
    reference: ClassVar[str] = "Nengo 4.1, nengo/neurons.py (RegularSpiking, RectifiedLinear, Tanh, Sigmoid, LIFRate)"
    state_vars: ClassVar[tuple[str, ...]] = ("v", "rate")
    membrane_var: ClassVar[str] = "v"

    def step(self, J, dt, state, spikes, rng) -> None:
        code, gain, tau_ref, tau_rc = self._args()
        regular_step(code, J, dt, gain, tau_ref, tau_rc, state["v"], state["rate"], spikes)


@dataclasses.dataclass(frozen=True)
class StochasticSpiking(_RateSpiking):
    """Nengo 4.1 ``StochasticSpiking``: see the module docstring."""

    name: ClassVar[str] = "stochastic_spiking"
    description: ClassVar[str] = (
        "Nengo StochasticSpiking around a rate function: the whole part of rate*dt plus one more "
        "spike with probability of its fraction (seeded). tanh/linear emit negative spikes."
    )
    reference: ClassVar[str] = "Nengo 4.1, nengo/neurons.py (StochasticSpiking)"
    stochastic: ClassVar[bool] = True

    def step(self, J, dt, state, spikes, rng) -> None:
        code, gain, tau_ref, tau_rc = self._args()
        uniform = rng.random(spikes.size)
        stochastic_step(code, J, dt, gain, tau_ref, tau_rc, uniform, state["rate"], spikes)


@dataclasses.dataclass(frozen=True)
class PoissonSpiking(_RateSpiking):
    """Nengo 4.1 ``PoissonSpiking``: see the module docstring."""

    name: ClassVar[str] = "poisson_spiking"
    description: ClassVar[str] = (
        "Nengo PoissonSpiking around a rate function: a Poisson number of spikes with mean "
        "rate*dt each step (seeded). tanh/linear emit negative spikes."
    )
    reference: ClassVar[str] = "Nengo 4.1, nengo/neurons.py (PoissonSpiking)"
    stochastic: ClassVar[bool] = True

    def step(self, J, dt, state, spikes, rng) -> None:
        code, gain, tau_ref, tau_rc = self._args()
        lam = np.empty(spikes.size, dtype=np.float64)
        poisson_lambda(code, J, dt, gain, tau_ref, tau_rc, state["rate"], lam)
        counts = rng.poisson(lam)
        np.copysign(counts, state["rate"], out=spikes, casting="unsafe")


@dataclasses.dataclass(frozen=True)
class SpikingRectifiedLinear(RegularSpiking):
    """Nengo 4.1 ``SpikingRectifiedLinear``: ``RegularSpiking`` with ``rate_fn='relu'``."""

    name: ClassVar[str] = "spiking_rectified_linear"
    description: ClassVar[str] = (
        "Nengo SpikingRectifiedLinear: v += max(gain*J, 0)*dt, emits floor(v) spikes of amplitude/dt, "
        "keeps the rest (the same as regular_spiking with rate_fn=relu)."
    )
    reference: ClassVar[str] = "Nengo 4.1, nengo/neurons.py (SpikingRectifiedLinear)"

    def __post_init__(self):
        self._require("rate_fn", self.rate_fn == "relu", "is always relu for spiking_rectified_linear")
        super().__post_init__()
