"""Neurons that pass values on without rectifying them: the non-spiking current carrier and
the signed integrate-and-fire neuron.

``Current`` is not a spiking neuron: a layer that runs it hands its input current on unchanged,
``y = J`` every step, and integrates it (``v += dt * J``, never reset). It is what a layer with a
linear (identity) activation is in the converted network when its consumers are linear (weighted
layers, pooling averages, Add, Concatenate): its weights apply to the spikes coming in and the
result flows into the next neuron layer's current, exactly as the ANN computes (a synapse, not a
neuron). On the output layer it is the membrane readout: the class scores are the accumulated
membrane ``v`` (= the cumulative ``counts``), the argmax of which is the prediction. It sends no
spikes (its ``spikes`` stay 0, so rasters, recordings and spike counts show none); its
``counts`` hold the accumulated charge ``sum(dt * J)``, so ``counts * output_scale / T`` is the
mean current, compared with the ANN as any layer's output (``current_emit``).

``SignedIF`` is INIsim's IF neuron with a second, negative threshold: ``v += dt * J``; a spike of
+1 (worth +threshold/dt) when ``v >= threshold``, of -1 when ``v <= -threshold``; reset by
subtraction (adding threshold back) or to zero. ``negative='after_positive'`` is the variant
published for conversion (Rueckauer et al. 2017, "Conversion of continuous-valued deep networks
to efficient event-driven networks", section 2.3 for the signed case; the same rule appears in
Kim et al. 2020, Spiking-YOLO): a negative spike only while the neuron has sent more positive than
negative spikes, so its cumulative output never goes below zero.
IF's low-latency remedies apply as to IF: ``v_init`` (the membrane starts at v_init * threshold)
and ``burst`` (up to ``burst`` spikes of either sign a step, ``signed_if_step``).
"""

from __future__ import annotations

import dataclasses
import math
from typing import ClassVar

import numba
import numpy as np

from workbench.engine.neurons.base import NeuronModel

NEGATIVE_MODES = ("always", "after_positive")
SIGNED_RESETS = ("subtract", "zero")


@numba.njit(nogil=True, cache=True)
def current_step(J, dt, v, spikes):
    """No spikes; ``v`` += the charge dt*J of this step (float32, no reset)."""
    for i in range(v.size):
        q = np.float32(dt * np.float64(J[i]))
        spikes[i] = 0.0
        v[i] += q


@numba.njit(nogil=True, cache=True)
def current_emit(J, dt, scale, v, spikes, y, counts):
    """``current_step`` and the emit of a non-spiking layer in one pass: ``y = q * scale`` (the
    current itself, ``scale`` = 1/(dt*gain)), ``counts = v`` (the accumulated charge, float32 as
    the recorded membrane, so a trace's membrane gives the counts back exactly: the readout and
    the layer's mean value for r), ``spikes`` 0. Returns 0 (no spikes)."""
    for i in range(v.size):
        q = np.float32(dt * np.float64(J[i]))
        spikes[i] = 0.0
        vi = v[i] + q
        v[i] = vi
        y[i] = q * scale
        counts[i] = np.float64(vi)
    return 0


@numba.njit(nogil=True, cache=True)
def signed_if_step(J, dt, threshold, zero_reset, after_positive, burst, v, net, spikes):
    """One step of ``SignedIF``: up to ``burst`` spikes of either sign (burst 1: one; IF's burst
    spikes, ``if_burst_update``, mirrored below zero; with ``after_positive`` never more negative
    spikes than the positive surplus ``net``)."""
    dt32 = np.float32(dt)
    thr = np.float32(threshold)
    for i in range(v.size):
        vi = v[i] + dt32 * J[i]
        s = np.float32(0.0)
        if vi >= thr:
            s = np.float32(1.0)
            if burst > 1:
                s = np.float32(min(max(np.floor(vi / thr), 1.0), burst))
            vi = np.float32(0.0) if zero_reset else vi - s * thr
        elif vi <= -thr and (not after_positive or net[i] > 0.0):
            n = np.float32(1.0)
            if burst > 1:
                n = np.float32(min(max(np.floor(-vi / thr), 1.0), burst))
                if after_positive and n > net[i]:
                    n = np.float32(net[i])
            s = -n
            vi = np.float32(0.0) if zero_reset else vi + n * thr
        net[i] += s
        spikes[i] = s
        v[i] = vi


@dataclasses.dataclass(frozen=True)
class Current(NeuronModel):
    """No spikes: the layer's input current passes on unchanged and is integrated (readout)."""

    name: ClassVar[str] = "current"
    description: ClassVar[str] = (
        "Not a spiking neuron: passes its input current on (y = J) and integrates it (v += dt*J, "
        "never reset). Linear layers feeding linear layers run it (a synapse, not a neuron); on the "
        "output layer it is the membrane readout."
    )
    reference: ClassVar[str] = ("Rueckauer et al. 2017 (membrane-potential readout of the output layer); "
                                "identity layers merged into the synapses as in SNN Toolbox's parser")
    state_vars: ClassVar[tuple[str, ...]] = ("v",)
    spiking: ClassVar[bool] = False
    default_dt: ClassVar[float] = 1.0

    def step(self, J, dt, state, spikes, rng) -> None:
        current_step(J, dt, state["v"], spikes)

    def output_scale(self, dt: float) -> float:
        return 1.0 / dt

    def rate(self, J, dt: float) -> np.ndarray:
        return np.asarray(J, dtype=np.float64)

    def max_rate(self, dt: float) -> float:
        return math.inf

    @property
    def membrane_threshold(self) -> float | None:
        return None


@dataclasses.dataclass(frozen=True)
class SignedIF(NeuronModel):
    """IF with a negative threshold too: signed spikes of +-threshold (see the module docstring)."""

    name: ClassVar[str] = "signed_if"
    description: ClassVar[str] = (
        "Signed integrate-and-fire: v += dt*J, +1 spike when v >= threshold, -1 when v <= -threshold "
        "(negative='after_positive': only after more positive than negative spikes); reset by "
        "subtraction or to zero. For layers whose ANN output can be negative."
    )
    reference: ClassVar[str] = ("Rueckauer et al. 2017, Front. Neurosci. 11:682, section 2.3; "
                                "SNN Toolbox INIsim IF for the positive side")
    state_vars: ClassVar[tuple[str, ...]] = ("v", "net")
    signed: ClassVar[bool] = True
    default_dt: ClassVar[float] = 1.0

    threshold: float = 1.0
    reset: str = "subtract"
    negative: str = "always"
    # IF's low-latency remedies (docs/conversion.md, "Remedies"): the membrane starts at
    # v_init * threshold, up to ``burst`` spikes (of either sign) per step.
    v_init: float = 0.0
    burst: int = 1

    def __post_init__(self):
        self._require("threshold", self._finite("threshold") > 0, "must be > 0")
        self._require("reset", self.reset in SIGNED_RESETS, f"must be one of {', '.join(SIGNED_RESETS)}")
        self._require("negative", self.negative in NEGATIVE_MODES, f"must be one of {', '.join(NEGATIVE_MODES)}")
        self._require("v_init", 0.0 <= self._finite("v_init") < 1.0, "must be in [0, 1) (a fraction of the threshold)")
        self._require("burst", not isinstance(self.burst, bool) and isinstance(self.burst, int) and 1 <= self.burst <= 1000,
                      f"must be a whole number from 1 to 1000, got {self.burst!r}")

    def params(self) -> dict:
        """Every parameter; the remedy options only when set (as IF's)."""
        out = super().params()
        for key, default in (("v_init", 0.0), ("burst", 1)):
            if out[key] == default:
                del out[key]
        return out

    def init_state(self, n: int) -> dict[str, np.ndarray]:
        return {"v": np.full(n, np.float32(self.v_init * self.threshold), dtype=np.float32),
                "net": np.zeros(n, dtype=np.float32)}

    def step(self, J, dt, state, spikes, rng) -> None:
        signed_if_step(J, dt, self.threshold, self.reset == "zero", self.negative == "after_positive", self.burst,
                       state["v"], state["net"], spikes)

    def max_rate(self, dt: float) -> float:
        return float(self.burst)

    def output_scale(self, dt: float) -> float:
        return self.threshold / dt

    def rate(self, J, dt: float) -> np.ndarray:
        top = self.burst * self.threshold / dt
        lo = 0.0 if self.negative == "after_positive" else -top
        return np.clip(np.asarray(J, dtype=np.float32), lo, top)
