"""Integer CUBA LIF compartments as on Loihi (level 2 of 2): bit-accurate with Lava.

Definition followed: Lava 0.10 (lava-nc/lava), ``src/lava/proc/lif/models.py``:
``AbstractPyLifModelFixed.subthr_dynamics`` and ``PyLifModelBitAcc`` (no refractory period);
the optional refractory delay follows ``PyLifRefractoryModelFloat`` of the same file. Per step,
integers throughout (u, v int32 holding 24-bit values):

    decay(x, d) = sign(x) * ((|x| * (4096 - d)) >> 12)          sign-magnitude, truncates to 0
    u = decay(u, du + 1) + (a << 6)                              current; ds_offset = 1
    u wraps once to 24 bits: u > 2^23 -> u - 2^24;  u <= -2^23 -> u + 2^24
    v = clip(decay(v, dv) + u + bias, -(2^23 - 1), 2^23 - 1)    voltage; dm_offset = 0
    spike if v > vth << 6  (strict);  spiked: v = 0
    bias = bias_mant << bias_exp.  Refractory (refractory_delay = R > 0): after a spike at step t
    the voltage is held (not decayed, not integrated) for steps t+1 .. t+R; u keeps integrating.

How the engine's float network maps onto it (float threshold 1.0 <-> integer vth << 6):
- Weights (dense, conv, depthwise; ``prepare_layer``): per layer, w*vth is written as an 8-bit
  signed mantissa (-128..127, ``weight_bits``) times 2**weight_exp with one exponent shared by the
  layer, the smallest exponent in -6..7 for which max|w*vth| fits: mant = round(w*vth / 2**exp).
  The layer's weights become mant * 2**exp (floats holding exact multiples of 2^-6), so a spike
  (value 1, ``output_scale`` = 1) of input i adds mant_i * 2**exp to J and the neuron integrates
  ``a << 6 = J * 64`` (exact: J is a sum of such multiples; the float32 sum stays exact while
  |J| < 2^18, i.e. within the 24-bit range of u). Lava's Dense applies the exponent
  to integer weights; the chip applies it after the 6-bit alignment, which is what we do.
- ``weight_rounding='lava'`` quantizes as Lava 0.10's bit-accurate Dense instead
  (``src/lava/proc/dense/models.py``, ``PyDenseModelBitAcc.run_spk``, with
  ``src/lava/utils/weightutils.py``: ``determine_sign_mode``, ``clip_weights``,
  ``truncate_weights``): the layer's weights are the integers W = round(w*vth / 2**E) a Lava user
  hands to Dense, E (``weight_exp``) the smallest exponent in -6..7 for which they fit Dense's
  range (-256..255 when the matrix has both signs, 0..255 all >= 0, -255..0 all <= 0); Dense
  then clips to that range and, for a mixed-sign matrix, drops the lowest bit of every weight
  (``(W >> 1) << 1``: -153 -> -154, 109 -> 108, -25 -> -26), and shifts the accumulated sum:
  a = (sum W*s) << E, or >> -E (a floor) when E < 0. With this rule the weighted layer's J is
  that integer sum times 2**E and the neuron integrates ``a << 6 = floor(J) * 64``
  (a float current of the first layer is floored the same way). Runs the generic path only.
- The layer's float bias b becomes a per-neuron integer bias round(b * vth * 64) written as a
  13-bit mantissa (-4096..4095) << a shared exponent 0..7 per layer, added to ``bias`` above.
- The first weighted layer under the constant encoder gets a float J (pixel values times the
  quantized weights): its input is rounded to whole u units, a << 6 = round(J * 64).
- Layers without weights (average pooling, add, activation) receive float currents: they are converted by a = round(J * vth) (half to
  even, then << 6 as above), i.e. the current is QUANTIZED to whole chip units before it enters u.
- ``rate(J)`` takes the float current J of the ANN side in the same units (a = round(J*vth)).
Quantization error per layer (``ls.quantization`` / ``quantization_report``): max and RMS of
|w - mant*2**exp/vth| relative to max|w|, likewise for the bias, plus the exponents and how many
values were clipped. Deviation: Lava's a_in port is 16-bit; we do not saturate the input a.
"""

from __future__ import annotations

import dataclasses
import math
from typing import ClassVar

import numba
import numpy as np

from workbench.engine.neurons.base import NeuronModel

UV_MAX = 1 << 23  # u and v are 24-bit signed
WEIGHT_EXP_RANGE = (-6, 7)
BIAS_MANT_RANGE = (-4096, 4095)
WEIGHT_ROUNDINGS = ("nearest", "lava")  # ours (8-bit mantissa, nearest) or Lava's Dense


@numba.njit(nogil=True, cache=True)
def _decay(x, keep):
    p = x * keep
    if p >= 0:
        return p >> 12
    return -((-p) >> 12)


@numba.njit(nogil=True, cache=True)
def cuba_step(J, in_scale, unit, du, dv, vth_eff, model_bias, layer_bias, refractory, u, v, ref, spikes):
    keep_u = np.int64(4096 - (du + 1))
    keep_v = np.int64(4096 - dv)
    for i in range(u.size):
        a = np.int64(np.rint(np.float64(J[i]) * in_scale)) * unit  # the input << 6
        ui = _decay(np.int64(u[i]), keep_u) + a
        if ui > UV_MAX:
            ui -= 2 * UV_MAX
        elif ui <= -UV_MAX:
            ui += 2 * UV_MAX
        u[i] = ui
        if ref[i] > 0:
            ref[i] -= 1
            vi = np.int64(v[i])
        else:
            vi = _decay(np.int64(v[i]), keep_v) + ui + model_bias + layer_bias[i]
            if vi > UV_MAX - 1:
                vi = UV_MAX - 1
            elif vi < -(UV_MAX - 1):
                vi = -(UV_MAX - 1)
        if vi > vth_eff:
            spikes[i] = 1.0
            vi = 0
            ref[i] = refractory
        else:
            spikes[i] = 0.0
        v[i] = vi


@numba.njit(nogil=True, cache=True)
def cuba_rates(a_in, du, dv, vth_eff, bias, refractory, max_steps, out):
    """Steady-state spikes per step for constant integer input a: u settles to its fixed point
    (the update is monotone, so iterating from 0 reaches it), then v counts up from 0."""
    keep_u = np.int64(4096 - (du + 1))
    keep_v = np.int64(4096 - dv)
    for i in range(a_in.size):
        a = np.int64(a_in[i]) << 6
        u = np.int64(0)
        for _ in range(max_steps):
            un = _decay(u, keep_u) + a
            if un == u:
                break
            u = un
        v = np.int64(0)
        n = 0
        out[i] = 0.0
        for k in range(1, max_steps + 1):
            vn = min(max(_decay(v, keep_v) + u + bias, -(UV_MAX - 1)), UV_MAX - 1)
            if vn > vth_eff:
                n = k
                break
            if vn == v:
                break
            v = vn
        if n > 0:
            out[i] = 1.0 / (n + refractory)


def quantize_weights(w: np.ndarray, scale: float, bits: int = 8):
    """(mantissas int32, exponent): w*scale ~= mant * 2**exp, one exponent for the array."""
    lim = (1 << (bits - 1)) - 1
    target = np.asarray(w, dtype=np.float64) * scale
    peak = float(np.max(np.abs(target))) if target.size else 0.0
    exp = WEIGHT_EXP_RANGE[0] if peak == 0 else math.ceil(math.log2(peak / lim))
    exp = min(max(exp, WEIGHT_EXP_RANGE[0]), WEIGHT_EXP_RANGE[1])
    while exp < WEIGHT_EXP_RANGE[1] and np.max(np.abs(np.round(target / 2.0**exp)), initial=0) > lim:
        exp += 1
    mant = np.clip(np.round(target / 2.0**exp), -lim - 1, lim).astype(np.int32)
    return mant, exp


def lava_sign_mode(w: np.ndarray) -> str:
    """Lava's ``determine_sign_mode``: 'excitatory' (min >= 0), 'inhibitory' (max <= 0), 'mixed'."""
    if w.size == 0 or np.min(w) >= 0:
        return "excitatory"
    if np.max(w) <= 0:
        return "inhibitory"
    return "mixed"


_LAVA_RANGE = {"mixed": (-256, 255), "excitatory": (0, 255), "inhibitory": (-255, 0)}


def quantize_weights_lava(w: np.ndarray, scale: float):
    """(integer weights after Lava's Dense clipping and truncation, exponent E, sign mode):
    w*scale ~= W * 2**E as a Lava 0.10 bit-accurate Dense holds it (module docstring)."""
    target = np.asarray(w, dtype=np.float64) * scale
    mode = lava_sign_mode(target)
    lo, hi = _LAVA_RANGE[mode]
    exp = WEIGHT_EXP_RANGE[0]
    while exp < WEIGHT_EXP_RANGE[1] and target.size:
        ints = np.round(target / 2.0**exp)
        if ints.min() >= lo and ints.max() <= hi:
            break
        exp += 1
    ints = np.clip(np.round(target / 2.0**exp), lo, hi).astype(np.int64)  # clip_weights
    mode = lava_sign_mode(ints)  # Lava decides on the integers it is given
    if mode == "mixed":
        ints = (ints >> 1) << 1  # truncate_weights: one bit less for the sign, arithmetic shift
    return ints.astype(np.int32), exp, mode


def quantize_bias(b: np.ndarray, scale: float):
    """(integer bias, mantissas, exponent 0..7): b*scale ~= mant << exp, mant 13-bit signed."""
    target = np.asarray(b, dtype=np.float64) * scale
    exp = 0
    while exp < 7 and np.max(np.abs(np.round(target / 2.0**exp)), initial=0) > BIAS_MANT_RANGE[1]:
        exp += 1
    mant = np.clip(np.round(target / 2.0**exp), *BIAS_MANT_RANGE).astype(np.int64)
    return mant << exp, mant, exp


def _errors(x: np.ndarray, xq: np.ndarray) -> tuple[float, float]:
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    if peak == 0:
        return 0.0, 0.0
    err = np.abs(np.asarray(x, np.float64) - xq)
    return float(err.max() / peak), float(np.sqrt(np.mean(err**2)) / peak)


@dataclasses.dataclass(frozen=True)
class LoihiCUBA(NeuronModel):
    """Lava 0.10 ``PyLifModelBitAcc`` (bit-accurate Loihi CUBA LIF): see the module docstring."""

    name: ClassVar[str] = "loihi_cuba"
    description: ClassVar[str] = (
        "Loihi integer CUBA compartment, bit-accurate with Lava's PyLifModelBitAcc: int current u "
        "and voltage v with 12-bit decays du, dv, threshold vth<<6, reset to 0; weights as 8-bit "
        "mantissas with one exponent per layer. Float currents are QUANTIZED: the first weighted "
        "layer under constant input to a << 6 = round(J*64), layers without weights (pooling, add) "
        "to a = round(J*vth)."
    )
    reference: ClassVar[str] = "Lava 0.10, src/lava/proc/lif/models.py (AbstractPyLifModelFixed, PyLifModelBitAcc)"
    state_vars: ClassVar[tuple[str, ...]] = ("v", "u", "refractory")
    default_dt: ClassVar[float] = 1.0

    du: int = 4095
    dv: int = 0
    vth: int = 64
    bias_mant: int = 0
    bias_exp: int = 0
    refractory_delay: int = 0
    weight_bits: int = 8
    weight_rounding: str = "nearest"

    def __post_init__(self):
        self._require("weight_rounding", self.weight_rounding in WEIGHT_ROUNDINGS,
                      f"must be one of {', '.join(WEIGHT_ROUNDINGS)}, got {self.weight_rounding!r}")
        for field, lo, hi in (("du", 0, 4095), ("dv", 0, 4095), ("vth", 1, 131071),
                              ("bias_mant", -4096, 4095), ("bias_exp", 0, 7),
                              ("refractory_delay", 0, 1 << 20), ("weight_bits", 2, 8)):
            value = getattr(self, field)
            ok = isinstance(value, (int, np.integer)) and not isinstance(value, bool) and lo <= value <= hi
            self._require(field, ok, f"must be a whole number from {lo} to {hi}, got {value!r}")

    @property
    def vth_eff(self) -> int:
        return self.vth << 6

    @property
    def membrane_threshold(self) -> float:
        """v is an integer: a spike when it passes vth << 6."""
        return float(self.vth_eff)

    @property
    def bias_int(self) -> int:
        return self.bias_mant << self.bias_exp

    def validate_dt(self, dt: float) -> None:
        self._require("dt", dt > 0, "must be > 0 (it only labels time: one chip step)")

    def init_state(self, n: int) -> dict[str, np.ndarray]:
        return {name: np.zeros(n, dtype=np.int32) for name in self.state_vars}

    # ---- per-layer quantization ------------------------------------------------------------
    def prepare_layer(self, ls) -> None:
        """Substitute quantized weights, move the layer's bias into the integer neuron bias and
        record the quantization error in ``ls.quantization``."""
        n = int(np.prod(ls.shape))
        report = {"weight_bits": self.weight_bits}
        scaling = np.array([float(self.vth), 64.0])  # a << 6 = round(J * vth) * 64
        if ls.weights is not None and self.weight_rounding == "lava":
            w = ls.weights
            ints, exp, mode = quantize_weights_lava(w, self.vth)
            report.update(weight_rounding="lava", weight_exp=exp, sign_mode=mode)
            report["weight_max_rel_error"], report["weight_rms_rel_error"] = _errors(w, ints * 2.0**exp / self.vth)
            bias_int, bmant, bexp = quantize_bias(ls.bias, self.vth * 64)
            report["bias_exp"] = bexp
            report["bias_max_rel_error"], report["bias_rms_rel_error"] = _errors(ls.bias, bias_int / (self.vth * 64))
            ls.weights = (ints * 2.0**exp).astype(np.float32)  # J = sum(W*s) * 2**E, exact
            ls.bias = np.zeros_like(ls.bias)
            ls.state["layer_bias"] = np.broadcast_to(bias_int, ls.shape).reshape(-1).astype(np.int64)
            ls.state["in_scale"] = np.array([1.0, 64.0])
            ls.state["lava_floor"] = np.ones(1, dtype=np.int64)  # step() floors J: Dense's shift
            ls.quantization = report
            return
        if ls.weights is not None:
            w = ls.weights
            mant, exp = quantize_weights(w, self.vth, self.weight_bits)
            wq = (mant * 2.0**exp).astype(np.float32)
            lim = (1 << (self.weight_bits - 1)) - 1
            report.update(weight_exp=exp, weight_clipped=int(np.sum(np.abs(np.round(w * self.vth / 2.0**exp)) > lim)))
            report["weight_max_rel_error"], report["weight_rms_rel_error"] = _errors(w, wq / self.vth)
            report["weight_zeroed"] = float(np.mean((mant == 0) & (w != 0))) if w.size else 0.0
            bias_int, bmant, bexp = quantize_bias(ls.bias, self.vth * 64)
            report.update(bias_exp=bexp, bias_clipped=int(np.sum(np.abs(np.round(ls.bias * self.vth * 64 / 2.0**bexp)) > 4095)))
            report["bias_max_rel_error"], report["bias_rms_rel_error"] = _errors(ls.bias, bias_int / (self.vth * 64))
            ls.weights = wq
            ls.bias = np.zeros_like(ls.bias)
            layer_bias = np.broadcast_to(bias_int, ls.shape).reshape(-1).astype(np.int64)
            scaling = np.array([64.0, 1.0])  # exact: J is a multiple of 2^-6
        else:
            layer_bias = np.zeros(n, dtype=np.int64)
            report["note"] = "no weights: float input current rounded to whole chip units"
        # Per-layer constants live in the state dict (not in state_vars, so reset keeps them).
        ls.state["layer_bias"] = layer_bias
        ls.state["in_scale"] = scaling
        ls.quantization = report

    def quantization_report(self, ls) -> dict:
        return dict(getattr(ls, "quantization", {}))

    # ---- the interface ---------------------------------------------------------------------
    def step(self, J, dt, state, spikes, rng) -> None:
        if "layer_bias" not in state:  # not prepared by a simulator: plain neurons
            state["layer_bias"] = np.zeros(spikes.size, dtype=np.int64)
            state["in_scale"] = np.array([float(self.vth), 64.0])
        scaling = state["in_scale"]
        if "lava_floor" in state:  # Lava's Dense: a = floor(sum(W*s) * 2**E), an arithmetic shift
            J = np.floor(J)
        cuba_step(J, scaling[0], np.int64(scaling[1]), self.du, self.dv, self.vth_eff, self.bias_int,
                  state["layer_bias"], self.refractory_delay, state["u"], state["v"],
                  state["refractory"], spikes)

    def output_scale(self, dt: float) -> float:
        return 1.0

    def rate(self, J, dt: float) -> np.ndarray:
        """Steady-state spikes per step (= output per step) for a constant float current J."""
        J = np.asarray(J, dtype=np.float64)
        a = np.round(J.ravel() * self.vth).astype(np.int64)
        out = np.empty(a.size, dtype=np.float64)
        cuba_rates(a, self.du, self.dv, self.vth_eff, self.bias_int, self.refractory_delay, 1 << 20, out)
        return out.reshape(J.shape)

    def max_rate(self, dt: float) -> float:
        return 1.0 / (1 + self.refractory_delay)
