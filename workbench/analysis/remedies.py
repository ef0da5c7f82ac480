"""Low-latency conversion remedies: from a diagnosis to a fix, applied and measured.

A ``Remedies`` spec names which of these a conversion uses (combinable; docs/conversion.md,
"Remedies", has the equations and the papers):

- ``half``      half-threshold start: every IF membrane starts at theta/2 (IF ``v_init=0.5``).
- ``channel``   channel-wise normalization: one scale per output channel (``normalize_channelwise``).
- ``burstN``    burst spikes: up to N spikes per step (IF ``burst=N``; ``burst`` alone is 2).
- ``balance``   per-channel threshold balancing: a channel whose SNN input per step overshoots its
                threshold on the calibration data gets its threshold grown to that level
                (implemented as the equivalent weight rescaling, so every path runs it).
- ``calibN``    SNN calibration, "light" (bias correction, Li et al. 2021): layer by layer, each
                channel's bias moves by (ANN mean activation - SNN mean rate) measured on the
                calibration data over N steps (``calib`` alone: 16).
- ``lateral``   max pooling by lateral inhibition: the output's running sum is the window's
                largest running input sum (``config['max_pool'] = 'lateral'``).

``baseline`` is none of them. A spec is written ``half+channel+burst2`` and saved with the
converted network (``network.normalization['remedies']``), so reports say what ran.
"""

from __future__ import annotations

import dataclasses
import re

import numpy as np

from workbench.engine.config import SimConfig
from workbench.engine.conversion import plan as conversion_plan
from workbench.engine.neurons import IF, SignedIF
from workbench.engine.simulator import Simulator
from workbench.errors import ConfigError
from workbench.models import network as nw
from workbench.models.forward import forward, preactivation
from workbench.models.normalize import _channel_sinks, apply_channel_scales, normalize, normalize_channelwise

DEFAULT_CALIB_STEPS = 16
DEFAULT_BURST = 2
MAX_CALIBRATION_SAMPLES = 256  # calibration runs the SNN once per layer on these
_TOKEN = re.compile(r"^(half|channel|balance|lateral|baseline|burst(\d+)?|calib(\d+)?)$")


@dataclasses.dataclass(frozen=True)
class Remedies:
    half: bool = False
    channel: bool = False
    burst: int = 1
    balance: bool = False
    calibrate: int = 0  # calibration steps; 0: off
    lateral: bool = False

    @classmethod
    def parse(cls, text: str | None) -> "Remedies":
        """``'half+burst2+calib8'`` -> Remedies; '' / 'baseline' / None -> none. Unknown words
        raise ConfigError naming them."""
        fields: dict = {}
        for word in [w.strip().lower() for w in re.split(r"[+,]", text or "") if w.strip()]:
            m = _TOKEN.match(word)
            if not m:
                raise ConfigError("remedies", f"unknown remedy '{word}' (use half, channel, burstN, balance, "
                                  "calibN, lateral or baseline, joined by '+')")
            if word.startswith("burst"):
                fields["burst"] = int(m.group(2) or DEFAULT_BURST)
                if not 1 <= fields["burst"] <= 1000:
                    raise ConfigError("remedies", f"burst{fields['burst']}: spikes per step must be 1..1000")
            elif word.startswith("calib"):
                fields["calibrate"] = int(m.group(3) or DEFAULT_CALIB_STEPS)
                if fields["calibrate"] < 1:
                    raise ConfigError("remedies", "calib0: the calibration needs at least one step")
            elif word != "baseline":
                fields[word] = True
        return cls(**fields)

    def __str__(self) -> str:
        words = [w for w, on in (("half", self.half), ("channel", self.channel)) if on]
        if self.burst > 1:
            words.append(f"burst{self.burst}")
        if self.balance:
            words.append("balance")
        if self.calibrate:
            words.append(f"calib{self.calibrate}")
        if self.lateral:
            words.append("lateral")
        return "+".join(words) or "baseline"

    @property
    def changes_network(self) -> bool:
        return self.channel or self.balance or bool(self.calibrate) or self.lateral


def neuron_config(config: SimConfig, spec: Remedies) -> SimConfig:
    """``config`` with the neuron-side remedies (half-threshold start, bursts) on every IF model
    (the conversion plan carries them to its signed IF layers; an override to ``signed_if``
    takes them too; a layer carrying current has no membrane to start or spikes to burst)."""
    if not (spec.half or spec.burst > 1):
        return config

    def fix(model, override=False):
        if override and not model.spiking:
            return model
        if not isinstance(model, (IF, SignedIF)):
            raise ConfigError("remedies", f"{spec}: the half-threshold start and burst spikes are IF options; "
                              f"the neuron model is {model.name}")
        return dataclasses.replace(model, v_init=0.5 if spec.half else model.v_init, burst=max(spec.burst, model.burst))

    return config.replace(neuron=fix(config.neuron), overrides={k: fix(m, True) for k, m in config.overrides.items()})


# ---- measuring the SNN on calibration data -----------------------------------------------------
def _snn_run(network: nw.Network, config: SimConfig, x: np.ndarray, steps: int) -> Simulator:
    cfg = config.replace(batch=len(x), steps=steps, record=(), record_membrane=False, record_current=False)
    sim = Simulator(network, cfg, x=x)
    sim.run(steps)
    return sim


def _ann_target(ls, acts: dict, dt: float) -> np.ndarray:
    """What layer ``ls``'s mean SNN output should be, in the ANN's normalized units: a layer
    carrying current (conversion plan: a linear layer, the membrane readout) passes its value
    on exactly, a softmax readout its pre-activation (the logits), unclipped; a spiking layer
    reaches at most its top rate, and below 0 only when its spikes are signed (signed IF)."""
    layer = ls.layer
    softmax = layer.activation == "softmax"
    value = (preactivation(layer, [acts[s].astype(np.float64) for s in layer.inbound]) if softmax
             else acts[layer.name])
    if not ls.model.spiking:
        return value
    top = ls.model.max_rate(dt) * float(ls.out_scale)
    return np.clip(value, -top if ls.model.signed and not softmax else 0.0, top)


def _channel_mean(a: np.ndarray, channels: int) -> np.ndarray:
    return np.asarray(a, np.float64).reshape(-1, channels).mean(axis=0)


def rate_errors(network: nw.Network, config: SimConfig, x: np.ndarray, steps: int,
                reference: nw.Network | None = None) -> dict[str, float]:
    """Per neuron layer: the mean over channels of |ANN mean activation - SNN mean rate| (both
    per channel, over the samples and positions; rates in the ANN's normalized units). The ANN
    is ``reference`` when given (a calibrated network's own biases moved: compare with the
    network before calibration), else ``network``."""
    acts = forward(reference or network, x)
    sim = _snn_run(network, config, x, steps)
    out = {}
    for ls in sim.layers:
        if ls.is_neuron:
            c = ls.layer.output_shape[-1]
            ann = _channel_mean(_ann_target(ls, acts, sim.dt), c)
            snn = _channel_mean(ls.counts * ls.out_scale / steps, c)
            out[ls.layer.name] = float(np.abs(ann - snn).mean())
    return out


def calibrate_bias(network: nw.Network, config: SimConfig, x: np.ndarray, steps: int,
                   on_layer=None) -> tuple[nw.Network, dict]:
    """SNN calibration, light (Li et al. 2021, bias correction): for each weighted neuron layer
    in order, run the SNN on ``x`` for ``steps`` and move each channel's bias by the ANN's mean
    activation (clipped to what the neuron can fire; a layer carrying current: its value, the
    membrane readout: the logits, unclipped) minus the SNN's mean output over those steps.
    The corrected layers stay corrected for the layers after them. Returns the new network and
    per layer the mean |bias change|."""
    net = network.copy()
    acts = forward(network, x)
    report = {}
    for layer in net.layers:
        if layer.kind not in nw.WEIGHTED_KINDS or not layer.is_neuron_layer:
            continue
        sim = _snn_run(net, config, x, steps)
        ls = sim.layer(layer.name)
        c = layer.output_shape[-1]
        ann = _channel_mean(_ann_target(ls, acts, sim.dt), c)
        snn = _channel_mean(ls.counts * ls.out_scale / steps, c)
        delta = (ann - snn) / float(ls.gain)  # J = gain * (W y + b): a rate moves by gain * db
        layer.bias = (layer.bias.astype(np.float64) + delta).astype(np.float32)
        report[layer.name] = float(np.abs(delta).mean())
        if on_layer is not None:
            on_layer(layer.name)
    return net, report


def balance_thresholds(network: nw.Network, config: SimConfig, x: np.ndarray, steps: int,
                       percentile: float = 99.9, on_layer=None) -> tuple[nw.Network, dict]:
    """Per-channel threshold balancing: for each layer that can take one scale per channel, run
    the SNN on ``x`` and take per channel the ``percentile`` of its neurons' input per step over
    the threshold (what they integrated, spikes and leftover membrane, / steps / theta); a channel
    above 1 was held back by the one-spike-a-step ceiling, and its threshold grows to that level:
    done as dividing its weights and bias by the factor and multiplying the weights that read it
    (the same dynamics as theta_c = factor * theta, up to rounding, on every engine path)."""
    net = network.copy()
    report = {}
    for layer in net.layers:
        if layer.kind not in (nw.DENSE, nw.CONV2D) or layer is net.output_layer:
            continue
        if _channel_sinks(net, layer.name) is None or not conversion_plan(net, config).model(layer.name).spiking:
            continue  # a layer carrying current has no threshold to balance
        sim = _snn_run(net, config, x, steps)
        ls = sim.layer(layer.name)
        m = ls.model
        theta = float(getattr(m, "threshold", 1.0))
        v0 = float(getattr(m, "v_init", 0.0)) * theta
        c = layer.output_shape[-1]
        integrated = (ls.counts * theta + ls.membrane().astype(np.float64) - v0) / (steps * theta * m.max_rate(sim.dt))
        per = np.percentile(integrated.reshape(-1, c), percentile, axis=0)
        factor = np.maximum(per, 1.0)
        if np.any(factor > 1.0):
            apply_channel_scales(net, {layer.name: factor})
            report[layer.name] = [float(f) for f in factor]
        if on_layer is not None:
            on_layer(layer.name)
    return net, report


def measured_layers(network: nw.Network, spec: Remedies) -> int:
    """How many SNN runs on the calibration data ``convert`` makes for ``spec`` (its progress total)."""
    calib = sum(1 for l in network.layers if l.kind in nw.WEIGHTED_KINDS and l.is_neuron_layer) if spec.calibrate else 0
    balance = sum(1 for l in network.layers if l.kind in (nw.DENSE, nw.CONV2D) and l is not network.output_layer
                  and _channel_sinks(network, l.name) is not None) if spec.balance else 0
    return calib + balance


# ---- the whole conversion -----------------------------------------------------------------
def convert(original: nw.Network | None, normalized: nw.Network | None, cal_x: np.ndarray | None, spec: Remedies,
            config: SimConfig, percentile: float = 99.9, on_progress=None) -> tuple[nw.Network, SimConfig]:
    """The network and config of one conversion variant. ``normalized``: the layer-wise
    normalized network when already made (else made here from ``cal_x``); ``cal_x``: the
    calibration data (needed by channel, balance and calib). ``on_progress(done, total)``
    after each SNN run of balancing and calibration (it may raise to cancel)."""
    config = neuron_config(config, spec)
    needs = spec.channel or spec.balance or spec.calibrate or normalized is None
    if needs and (cal_x is None or len(cal_x) == 0):
        raise ConfigError("remedies", f"{spec} needs calibration data (pass --calibration FILE)")
    if spec.channel and original is None:
        raise ConfigError("remedies", "channel-wise normalization starts from the original model: "
                          "open the .keras/.h5 file, or use 'snn-workbench evaluate --variant'")
    if spec.channel:
        net = normalize_channelwise(original, cal_x, percentile)
    else:
        net = normalized.copy() if normalized is not None else normalize(original, cal_x, percentile)
    notes: dict = {"remedies": str(spec)}
    if spec.lateral:
        for layer in net.layers:
            if layer.kind == nw.MAX_POOL2D:
                layer.config["max_pool"] = "lateral"
    sample = None if cal_x is None else np.asarray(cal_x[:MAX_CALIBRATION_SAMPLES], np.float32)
    total, done = measured_layers(net, spec), [0]

    def on_layer(_name):
        done[0] += 1
        if on_progress is not None:
            on_progress(done[0], total)

    if spec.balance:
        net, report = balance_thresholds(net, config, sample, spec.calibrate or DEFAULT_CALIB_STEPS, on_layer=on_layer)
        notes["threshold_balance"] = report
    if spec.calibrate:
        net, report = calibrate_bias(net, config, sample, spec.calibrate, on_layer=on_layer)
        notes["bias_calibration"] = {"steps": spec.calibrate, "samples": len(sample), "mean_abs_change": report}
    if spec.half or spec.burst > 1:
        notes["neuron"] = {"v_init": 0.5 if spec.half else 0.0, "burst": spec.burst}
    net.normalization = {**net.normalization, **notes}
    return net, config


def saved_remedies(network: nw.Network) -> Remedies:
    """The remedies a saved converted network was made with (baseline when it says none)."""
    return Remedies.parse(str(network.normalization.get("remedies", "")))


def apply(prep, config: SimConfig, text: str | None, on_progress=None) -> tuple[nw.Network, SimConfig]:
    """The network and config a command runs for remedies ``text`` on a ``models.prepare``
    result. Baseline on a saved converted network keeps the remedies it was saved with (their
    neuron-side options back on the config); anything else converts from the original."""
    spec = Remedies.parse(text)
    if spec == Remedies():
        return prep.network, neuron_config(config, saved_remedies(prep.network))
    if prep.original.scales or prep.original.normalization:
        raise ConfigError("remedies", f"{prep.original.name} is already a converted network; apply remedies "
                          "to the original model (.keras / .h5 / an unnormalized .npz)")
    percentile = float(prep.network.normalization.get("percentile", 99.9))
    normalized = prep.network if prep.network.scales else None
    return convert(prep.original, normalized, prep.calibration_x, spec, config, percentile, on_progress)


def with_remedies(prep, config: SimConfig, text: str | None, on_progress=None):
    """``apply`` on a ``models.prepare`` result: (the result with its network converted, config)."""
    network, config = apply(prep, config, text, on_progress)
    return dataclasses.replace(prep, network=network), config


def header(network: nw.Network) -> str:
    """One line for report headers: the remedies a network was converted with."""
    return str(saved_remedies(network))


def format_try(before, after, spec: str) -> str:
    """``diagnose --try``: accuracy and each layer's evidence before and after the remedies
    (two ``diagnosis.Diagnosis`` of the same data)."""
    rb, ra = before.result, after.result
    lines = [f"tried     --remedies {spec}"]
    if rb.labelled and rb.samples:
        marks = sorted({t for t in (4, 8, 16, 32, 64, rb.steps) if t <= rb.steps})
        for name, r in (("before", rb), ("after", ra)):
            lines.append(f"{name:<9} " + ", ".join(f"t={t}: {100 * r.snn_accuracy[t - 1]:.2f}%" for t in marks)
                         + f"   synops/sample {r.synops_per_sample:.4g}")
    head = f"{'layer':<16} {'r before':>9} {'r after':>8} {'silent% b/a':>12} {'satur.% b/a':>12} {'spikes/sample b/a':>20}"
    lines += ["", head, "-" * len(head)]
    after_by = {le.name: le for le in ra.layers}
    for le in rb.layers:
        if le.kind == nw.INPUT or le.name not in after_by:
            continue
        la = after_by[le.name]
        fmt = lambda v: "n/a" if not np.isfinite(v) else f"{v:.3f}"  # noqa: E731
        lines.append(f"{le.name:<16.16} {fmt(le.r):>9} {fmt(la.r):>8} "
                     f"{f'{100 * le.silent:.1f}/{100 * la.silent:.1f}':>12} "
                     f"{f'{100 * le.saturated:.1f}/{100 * la.saturated:.1f}':>12} "
                     f"{f'{le.spikes_per_sample:.1f}/{la.spikes_per_sample:.1f}':>20}")
    left = [f for f in after.findings if f.severity >= 2]
    lines.append("")
    lines.append(f"after: {len(after.findings)} finding(s), {len(left)} of medium or high severity"
                 + ("" if not left else ": " + "; ".join(f"{f.cause} {f.layer}".strip() for f in left[:5])))
    return "\n".join(lines)
