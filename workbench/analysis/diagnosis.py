"""Why the SNN differs from the ANN, layer by layer, in plain words with the numbers and a change
to try. Computed from an evaluation run (``engine.evaluate``); Qt-free, shared by the CLI
(``snn-workbench diagnose``) and the window's report panel.

Causes (``Finding.cause``), each checked per layer:
- ``saturated``: neurons firing at the maximum rate; the ANN asks for more than the SNN can give
  (values above ``max_output``), so the SNN clips them. Fix: raise that layer's threshold by about
  the factor the ANN exceeds the maximum by (never beyond a ReLU cap), or normalize with a higher
  percentile. Neurons at the maximum where the ANN does not exceed it are no finding; at a ReLU6
  cap they are ``cap`` (info: the clip is intended).
- ``negative_lost``: a rectifying spiking neuron on a layer whose ANN output is negative (tanh,
  linear): the negative values become 0. Fix: a signed neuron, or the conversion plan's choice.
- ``reset_zero``: reset to zero drops the charge above threshold at every spike.
- ``silent``: neurons that never spike. When the ANN is zero there too the layer is dead before
  conversion; LIF layers below their rheobase (J <= 1) and Loihi layers whose quantized weights
  round to 0 are named with that cause; otherwise the inputs are too weak to reach threshold
  within T steps. Layers that carry current (no spikes) get none of the spike findings.
- ``resolution``: over T steps a rate can only be k/T; ANN values below one spike per run are
  rounded to 0 or 1 spike. Fix: more steps.
- ``low_correlation``: ANN vs SNN r is low, named at the layer where it drops (the first layer
  whose r falls clearly below that of its inputs); layers after it inherit the error.
- ``maxpool_error``: the spike-based max (the input with the most spikes so far passes its
  spikes) differs from the max of the input rates.
- ``quantization``: Loihi's 8-bit weight mantissas with one exponent per layer.
- ``negative_spikes``: signed neuron models send negative spikes, which most hardware cannot.
- ``not_converged`` (network): accuracy was still rising at the last step.
- ``unnormalized`` (network): no data-based normalization, so rates are not fitted to [0, 1].
- ``channel_spread`` (``diagnose`` with data): many channels of a layer use a small part of its
  range (their 99.9th percentile below half the largest channel's), so they fire a trickle.
- ``slow_onset`` (network): the output stays silent or wrong for the first steps while the
  membranes charge from 0.

Each finding also names the conversion remedy that fits it (``Finding.remedy``, a spec for
``--remedies``; ``analysis.remedies``): slow onset, not converged -> ``half`` (half-threshold
start); resolution -> ``half`` + ``calibT`` (bias calibration at this T); saturated -> ``burst2``;
silent but not dead, channel spread -> ``channel`` (channel-wise normalization); max pooling -> ``lateral``;
low correlation -> ``calibT``. ``diagnose --try`` applies them and reports before and after.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from workbench.analysis.eval_layers import LayerEval
from workbench.analysis.evaluate import EvalResult, evaluate
from workbench.models import network as nw

HIGH, MEDIUM, LOW, INFO = 3, 2, 1, 0
SEVERITY_NAMES = {HIGH: "high", MEDIUM: "medium", LOW: "low", INFO: "info"}
R_MEDIUM, R_HIGH = 0.9, 0.7  # r below: a finding
R_DROP = 0.05  # r this much below the inputs' r: the drop is here


@dataclasses.dataclass(frozen=True)
class Finding:
    layer: str  # "" for the whole network
    cause: str
    severity: int
    message: str  # plain words, with the evidence
    suggestion: str
    evidence: dict = dataclasses.field(default_factory=dict)
    remedy: str = ""  # the conversion remedy that fits (a --remedies spec), "" when none does

    @property
    def severity_name(self) -> str:
        return SEVERITY_NAMES[self.severity]

    def to_dict(self) -> dict:
        return {**dataclasses.asdict(self), "severity_name": self.severity_name}


@dataclasses.dataclass(frozen=True)
class Diagnosis:
    findings: tuple[Finding, ...]  # most severe first; equal severity in network order
    result: EvalResult
    percentile: float | None  # normalization percentile in use (None: not normalized)

    @property
    def layers(self) -> tuple[LayerEval, ...]:
        return self.result.layers

    def for_layer(self, name: str) -> list[Finding]:
        return [f for f in self.findings if f.layer == name]

    def causes(self, name: str) -> set[str]:
        return {f.cause for f in self.for_layer(name)}

    def to_dict(self) -> dict:
        return {"findings": [f.to_dict() for f in self.findings], "percentile": self.percentile,
                "evaluation": self.result.to_dict()}


def _pct(x: float) -> str:
    return f"{100 * x:.0f}%" if x >= 0.01 or x == 0 else f"{100 * x:.1g}%"


def _nice_steps(t: float) -> int:
    """A round number of steps >= t."""
    for step in (10, 50, 100, 500, 1000, 5000, 10000):
        if t <= 20 * step:
            return int(math.ceil(t / step) * step)
    return int(math.ceil(t))


def _upstream(network: nw.Network, name: str) -> list[str]:
    """The neuron layers (or the input) feeding ``name`` through look-through/max-pool layers."""
    out, todo = [], list(network[name].inbound)
    while todo:
        layer = network[todo.pop()]
        if layer.is_neuron_layer or layer.kind == nw.INPUT:
            out.append(layer.name)
        else:
            todo.extend(layer.inbound)
    return out


def _ancestors(network: nw.Network, name: str) -> set[str]:
    out, todo = set(), [name]
    while todo:
        for src in _upstream(network, todo.pop()):
            if src not in out:
                out.add(src)
                todo.append(src)
    return out


def _has_threshold(le: LayerEval) -> bool:
    """Whether the layer's neuron model has a threshold to turn (IF, Loihi...); LIF-type models
    fire at J > 1 by definition, so their knob is the rate scale (NengoDL's scale_firing_rates)."""
    return "threshold" in le.model_params or not le.model


LIF_RECIPE = {"rate_scale": 25.0, "tau_ref": 0.0005}


def lif_conversion_hint(le: LayerEval) -> str | None:
    """For Nengo's LIF on a network normalized for rates in [0, 1]. Well above its threshold
    LIF's rate grows as about (J - 1) / tau_rc and saturates towards 1 / tau_ref; nothing fires
    below J = 1. With ``amplitude = tau_rc`` its output has the ReLU's slope of 1, a rate scale s
    puts the firing threshold at 1/s of the normalized range, and a short refractory period keeps
    the saturation (amplitude / (tau_ref * s)) above 1. Measured on the demo (docs/neurons.md,
    360 test samples, 200 steps): Nengo's defaults 10-15 %; this recipe 97-98 % (ANN 98.06 %)."""
    p = le.model_params
    if le.model != "lif" or not {"tau_rc", "amplitude", "tau_ref"} <= set(p):
        return None
    tau_rc = float(p["tau_rc"])
    if math.isclose(float(p["amplitude"]), tau_rc, rel_tol=1e-6) and float(p["tau_ref"]) <= 2 * LIF_RECIPE["tau_ref"]:
        return None
    if p.get("reset_mode") == "subtract":  # the conversion plan's fitted LIF (engine.conversion.fit)
        return None
    return (f"for LIF converted from ReLU, try --param amplitude={tau_rc:g} (= tau_rc: the ReLU's slope) "
            f"--param tau_ref={LIF_RECIPE['tau_ref']:g} --rate-scale {LIF_RECIPE['rate_scale']:g} "
            "(docs/neurons.md, 'Converting to LIF')")


def _cap(network, name: str) -> float | None:
    """The layer's ReLU cap (ReLU6 ``max_value``) in normalized units, or None."""
    cap = network[name].activation_params.get("max_value") if name in {l.name for l in network.layers} else None
    return None if cap is None else float(cap)


def _capped_at_max_output(le: LayerEval, network) -> bool:
    """A ReLU with ``max_value`` (ReLU6) normalized so its cap is at most the SNN's maximum
    output clips exactly where the neurons saturate: firing at the maximum rate is then the
    ANN's own clip, not a threshold to raise (issue 14; docs/models.md, 'ReLU6')."""
    try:
        layer = network[le.name]
    except (KeyError, TypeError):
        return False
    cap = layer.activation_params.get("max_value") if layer.activation == "relu" else None
    return cap is not None and float(cap) <= le.max_output * (1 + 1e-6)


def _saturated(le: LayerEval, percentile, network, flagged: set[str]) -> Finding | None:
    """``flagged``: layers upstream already found saturated (their excess flows down). A layer
    whose neurons sit at the maximum rate where the ANN does not ask for more (``ann_over`` ~0)
    is not clipping anything: no change is recommended (a ReLU6 at its cap is an INFO finding).
    With a cap, the threshold factor never goes beyond the cap: past it the SNN would pass
    values the ANN clips."""
    if le.saturated < 0.02 and le.ann_over < 0.02:
        return None
    cap = _cap(network, le.name)
    evidence = {"saturated": le.saturated, "ann_over": le.ann_over, "scale": le.scale,
                "cap": cap, "max_output": le.max_output}
    if le.ann_over < 0.02:
        if cap is None or not _capped_at_max_output(le, network):
            return None  # at the maximum where the ANN is at (or just below) it: nothing clipped
        return Finding(le.name, "cap", INFO,
                       f"layer {le.name}: {_pct(le.saturated)} of neurons fire at the maximum rate where the "
                       f"ANN sits at its ReLU cap (max_value = {cap:.3g} in normalized units; the ANN exceeds "
                       f"the SNN's maximum {le.max_output:g} for {_pct(le.ann_over)} of its values): the clip "
                       "is intended", "nothing to change: raising the threshold would break the intended clip",
                       evidence)
    clipped = max(le.ann_over, le.saturated)
    severity = HIGH if clipped >= 0.2 else MEDIUM if clipped >= 0.05 else LOW
    q = le.ann_quantile(0.99)
    factor = max(1.1, q if math.isfinite(q) else 1.0)
    cap_note = ""
    if cap is not None and le.max_output > 0:
        limit = cap / le.max_output
        if factor > limit:
            factor = max(limit, 1.0)
        cap_note = (f"; the ANN clips at its ReLU cap {cap:.3g} ({limit:.2f}x the SNN's maximum): the SNN "
                    "should clip there too, not beyond")
    message = (f"layer {le.name}: {_pct(le.saturated)} of neurons fire at (nearly) the maximum rate "
               f"({le.max_output:g} per step); the ANN asks for more than that for {_pct(le.ann_over)} "
               f"of its values (99th percentile of the active values: {q:.2f}x the maximum){cap_note}")
    norm = (f"or normalize with a higher percentile (now {percentile:g}; 100 = the maximum activation)"
            if percentile is not None and percentile < 100 else
            "or normalize the network (--normalize 99.9)" if percentile is None else
            "or check this layer's weights: the calibration data never showed such activations")
    if factor <= 1.0 + 1e-9:
        knob = f"keep {le.name}'s threshold (the SNN's maximum already equals the ANN's cap)"
    elif _has_threshold(le):
        knob = f"raise {le.name}'s threshold by ~{factor:.1f}x"
    elif "tau_ref" in le.model_params:
        knob = (f"shorten the refractory period (--param tau_ref=..., the maximum rate is about 1/tau_ref) "
                f"or lower the rate scale (--rate-scale) by ~{factor:.1f}x")
    else:
        knob = f"lower the rate scale (--rate-scale) by ~{factor:.1f}x"
    suggestion = f"{knob} {norm}"
    hint = lif_conversion_hint(le)
    if hint:
        suggestion = f"{hint}; or {suggestion}"
    upstream = sorted(flagged & _ancestors(network, le.name), key=network.index)
    if upstream:
        severity = LOW
        message += f"; probably carried over from {upstream[0]}, which saturates upstream"
        suggestion = f"fix {upstream[0]} first, then look again; " + suggestion
    return Finding(le.name, "saturated", severity, message, suggestion,
                   {**evidence, "q99_over_max": q, "threshold_factor": factor})


def _negative_lost(le: LayerEval, network) -> Finding | None:
    """A rectifying spiking neuron on a layer whose ANN output is negative for some values."""
    if le.role != "spiking" or le.ann_negative < 0.01 or le.kind == nw.INPUT:
        return None
    signed = le.model in ("signed_if",) or le.model_params.get("rate_fn") in ("tanh", "linear")
    if signed or le.model_params.get("negative") == "after_positive":
        return None
    act = network[le.name].activation
    return Finding(le.name, "negative_lost", HIGH if le.ann_negative >= 0.1 else MEDIUM,
                   f"layer {le.name}: the ANN's {act} output is negative for {_pct(le.ann_negative)} of its "
                   f"values, and {le.model} neurons cannot represent them: every negative value becomes 0",
                   f"run {le.name} on a signed neuron (--layer {le.name}=signed_if, or "
                   f"regular_spiking:rate_fn={'tanh' if act == 'tanh' else 'linear'}), or leave the neuron "
                   "choice to the conversion plan (drop --uniform / the override)",
                   {"ann_negative": le.ann_negative, "activation": act})


def _reset_zero(le: LayerEval) -> Finding | None:
    """Reset to zero throws away the charge above threshold at every spike."""
    if le.model_params.get("reset") != "zero" or le.silent >= 0.99:
        return None
    return Finding(le.name, "reset_zero", MEDIUM if math.isfinite(le.r) and le.r < 0.99 else LOW,
                   f"layer {le.name}: reset to zero discards the charge above threshold at every spike, so "
                   f"the rate falls below the current (a neuron needing 1.5 steps per spike fires every 2); "
                   f"r = {le.r:.3f}" + ("" if le.silent < 0.5 else f"; {_pct(le.silent)} silent, the loss "
                                         "compounds layer by layer"),
                   "use reset by subtraction (--reset subtract, the default)",
                   {"r": le.r, "silent": le.silent})


def _silent(le: LayerEval, network, by_name, steps) -> Finding | None:
    dead_ann = le.ann_zero >= 0.9
    if le.silent < 0.9 and le.missed < 0.2:
        return None
    feeders = [n for n in _upstream(network, le.name) if n in by_name and by_name[n].silent >= 0.99]
    layer = network[le.name]
    evidence = {"silent": le.silent, "ann_zero": le.ann_zero, "missed": le.missed}
    if feeders:
        return Finding(le.name, "silent", LOW,
                       f"layer {le.name}: {_pct(le.silent)} of neurons never spike, because its input "
                       f"{', '.join(feeders)} is silent", f"fix {feeders[0]} first", evidence)
    if dead_ann and le.silent >= 0.9:
        bias = "" if layer.bias is None else f" (mean bias {float(np.mean(layer.bias)):.3g})"
        return Finding(le.name, "silent", HIGH,
                       f"layer {le.name}: {_pct(le.silent)} of neurons never spike in {steps} steps, and "
                       f"the ANN itself outputs 0 for {_pct(le.ann_zero)} of them{bias}: the layer is "
                       "dead before conversion",
                       f"fix the model: {le.name}'s ReLU is off for almost every sample (a large negative "
                       "bias or collapsed weights); retrain or check that layer — conversion cannot recover it",
                       evidence)
    cause = _silence_cause(le)
    if cause is not None:
        message, suggestion = cause
        return Finding(le.name, "silent", HIGH if le.missed >= 0.5 else MEDIUM,
                       f"layer {le.name}: {_pct(le.missed)} of the neurons the ANN activates never spike in "
                       f"{steps} steps ({_pct(le.silent)} silent in all): {message}", suggestion, evidence)
    q = le.ann_quantile(0.1)
    want = _nice_steps(1.0 / q) if math.isfinite(q) and q > 0 else steps * 10
    severity = HIGH if le.missed >= 0.5 else MEDIUM
    factor = min(10.0, max(1.5, 1.0 / max(q * steps, 1e-9)))
    knob = (f"lower {le.name}'s threshold by ~{factor:.1f}x" if _has_threshold(le) else
            f"lower vth (--param vth=...) by ~{factor:.1f}x" if le.model == "loihi_cuba" else
            f"raise the rate scale (--rate-scale) by ~{factor:.1f}x")
    suggestion = f"run longer (--steps {max(want, steps * 2)}) or {knob}"
    hint = lif_conversion_hint(le)
    return Finding(le.name, "silent", severity,
                   f"layer {le.name}: {_pct(le.missed)} of the neurons the ANN activates never spike in "
                   f"{steps} steps ({_pct(le.silent)} silent in all); {_pct(le.ann_under)} of its active ANN "
                   f"values are below one spike per run ({le.resolution:.3g})",
                   f"{hint}; or {suggestion}" if hint else suggestion, evidence)


def _silence_cause(le: LayerEval) -> tuple[str, str] | None:
    """(why, what to change) for silent LIF and Loihi layers, whose causes are not 'too few steps'."""
    p = le.model_params
    if le.model in ("lif", "loihi_lif"):
        amp, tau_rc = float(p.get("amplitude", 1.0)), float(p.get("tau_rc", 0.02))
        # the layer's gain is folded into amplitude/(dt*gain) = out_scale; the LIF fires for gain*J > 1
        return ("LIF neurons fire only when their current exceeds 1 (the rheobase); values of the "
                f"normalized network are mostly below 1, so they stay below it (amplitude {amp:g}, "
                f"tau_rc {tau_rc:g})",
                "leave LIF's amplitude, tau_ref and min_voltage at their defaults and drop --uniform (the "
                "conversion plan then fits them: reset by subtraction, current gain 1/(1-exp(-dt/tau_rc)), "
                "docs/conversion.md); or " + (lif_conversion_hint(le) or
                                              "raise the current with --rate-scale (~25) and --param amplitude=tau_rc"))
    if le.model == "loihi_cuba":
        q = le.quantization
        zeroed = float(q.get("weight_zeroed", 0.0))
        if zeroed >= 0.2:
            return (f"{_pct(zeroed)} of its non-zero weights round to 0 in Loihi's "
                    f"{q.get('weight_bits', 8)}-bit mantissas (one exponent {q.get('weight_exp')} per layer, "
                    "set by the largest weight)",
                    "narrow the weight range (clip outliers) so small weights keep a mantissa, or use IF")
        if "note" in q:
            return ("its input is a float current rounded to whole chip units: values below 1/vth round to 0",
                    "raise vth (--param vth=...) so small currents survive the rounding, or use IF")
    return None


def _resolution(le: LayerEval, steps) -> Finding | None:
    if le.ann_under < 0.1:
        return None
    q = le.ann_quantile(0.1)
    want = _nice_steps(1.0 / q) if math.isfinite(q) and q > 0 else steps * 10
    severity = MEDIUM if le.ann_under >= 0.3 else LOW
    return Finding(le.name, "resolution", severity,
                   f"layer {le.name}: in {steps} steps a rate can only be k/{steps}; {_pct(le.ann_under)} "
                   f"of its active ANN values are below one spike per run ({le.resolution:.3g}) and round "
                   "to 0 or 1 spike",
                   f"run longer: about {max(want, _nice_steps(1.5 * steps))} steps resolve 90% of them",
                   {"ann_under": le.ann_under, "steps": steps, "q10_over_max": q})


def _correlation(le: LayerEval, network, by_name) -> Finding | None:
    if not math.isfinite(le.r) or le.r >= R_MEDIUM:
        return None
    ups = [by_name[n].r for n in _upstream(network, le.name) if n in by_name and math.isfinite(by_name[n].r)]
    r_in = min(ups) if ups else 1.0
    if r_in - le.r < R_DROP:
        return None  # inherited: named where it drops
    after = [l for l in by_name.values() if network.index(l.name) > network.index(le.name)
             and math.isfinite(l.r) and l.r < R_MEDIUM]
    tail = f"; it carries on to {', '.join(f'{l.name} (r={l.r:.2f})' for l in after)}" if after else ""
    return Finding(le.name, "low_correlation", HIGH if le.r < R_HIGH else MEDIUM,
                   f"layer {le.name}: ANN vs SNN correlation drops here to r = {le.r:.3f} "
                   f"(its inputs: r = {r_in:.3f}){tail}",
                   "look at the other findings for this layer; without one, run longer or compare the "
                   "neuron model's rate function with the ANN activation",
                   {"r": le.r, "r_inputs": r_in})


def _maxpool(le: LayerEval) -> Finding | None:
    if le.kind != nw.MAX_POOL2D or not math.isfinite(le.pool_error) or le.pool_error < 0.05:
        return None
    return Finding(le.name, "maxpool_error", HIGH if le.pool_error >= 0.2 else MEDIUM,
                   f"layer {le.name}: the spiking max (the input with the most spikes so far passes its "
                   f"spikes) is off the max of the input rates by {_pct(le.pool_error)} on average "
                   f"(r = {le.pool_r:.3f})",
                   "replace max pooling by average pooling and retrain, or run longer so the winner settles",
                   {"pool_error": le.pool_error, "pool_r": le.pool_r})


def _quantization(le: LayerEval) -> Finding | None:
    q = le.quantization
    rms, top = q.get("weight_rms_rel_error"), q.get("weight_max_rel_error")
    clipped = int(q.get("weight_clipped", 0)) + int(q.get("bias_clipped", 0))
    if rms is None or (rms < 0.01 and clipped == 0):
        return None
    return Finding(le.name, "quantization", MEDIUM if clipped or rms >= 0.05 else LOW,
                   f"layer {le.name}: Loihi {q.get('weight_bits', 8)}-bit weights (exponent "
                   f"{q.get('weight_exp')}) are off by up to {_pct(top)} of the largest weight (rms "
                   f"{_pct(rms)}); {clipped} values clipped",
                   "narrow the weight range (weight decay, clip outliers) or use weight_bits=8",
                   {k: v for k, v in q.items() if isinstance(v, (int, float))})


def _negative(le: LayerEval) -> Finding | None:
    if le.negative < 0.001:
        return None
    return Finding(le.name, "negative_spikes", MEDIUM,
                   f"layer {le.name}: {_pct(le.negative)} of its spikes are negative; most neuromorphic "
                   "hardware cannot send them",
                   "use a non-negative rate function (relu, sigmoid) or IF neurons for this layer",
                   {"negative": le.negative})


def _network_findings(network, result: EvalResult, percentile) -> list[Finding]:
    out = []
    acc = result.snn_accuracy
    if result.labelled and result.samples and len(acc) >= 4:
        half = acc[len(acc) // 2 - 1]
        gain = float(acc[-1] - half)
        if gain >= 0.01:
            out.append(Finding("", "not_converged", MEDIUM,
                               f"accuracy was still rising at the last step: {100 * half:.1f}% at step "
                               f"{len(acc) // 2}, {100 * acc[-1]:.1f}% at step {len(acc)}",
                               f"run longer (--steps {len(acc) * 2})", {"gain": gain}))
    if result.labelled and result.samples and len(acc) >= 4 and acc[-1] > 0:
        onset = next((t for t, a in enumerate(acc) if a >= 0.5 * acc[-1]), len(acc))
        if onset >= 3:
            out.append(Finding("", "slow_onset", MEDIUM if onset + 1 >= len(acc) / 4 else LOW,
                               f"the output needs {onset + 1} steps to reach half its final accuracy "
                               f"({100 * acc[min(onset, len(acc) - 1)]:.1f}%): the membranes charge from 0 "
                               "before the first spikes pass through every layer",
                               "start every membrane at half the threshold (--remedies half)",
                               {"onset": onset + 1}, remedy="half"))
    if percentile is None:
        out.append(Finding("", "unnormalized", MEDIUM if any(l.saturated > 0.02 for l in result.layers) else INFO,
                           "the network runs un-normalized: layer activations are not fitted to the "
                           "[0, max rate] range of the neurons",
                           "normalize with calibration data (--normalize 99.9 --calibration FILE)", {}))
    return out


def diagnose_result(network: nw.Network, result: EvalResult) -> Diagnosis:
    """Findings from an evaluation of ``network`` that already ran."""
    norm = network.normalization or {}
    percentile = float(norm["percentile"]) if "percentile" in norm else None
    by_name = {le.name: le for le in result.layers if le.kind != nw.INPUT}
    findings = _network_findings(network, result, percentile)
    saturated: set[str] = set()
    for le in by_name.values():  # network order: upstream causes are known downstream
        if le.role != "spiking":  # carries current / membrane readout: no spikes to saturate or miss
            layer_findings = []
        else:
            layer_findings = [f for f in (
                _negative_lost(le, network), _saturated(le, percentile, network, saturated),
                _silent(le, network, by_name, result.steps), _resolution(le, result.steps), _maxpool(le),
                _quantization(le), _negative(le), _reset_zero(le)) if f is not None]
        if any(f.cause == "saturated" for f in layer_findings):
            saturated.add(le.name)
        low_r = _correlation(le, network, by_name)
        if low_r is not None and layer_findings:
            first = max(layer_findings, key=lambda f: f.severity)
            low_r = dataclasses.replace(low_r, suggestion=f"see the {first.cause} finding of {le.name}: "
                                        f"{first.suggestion}")
        findings += layer_findings + ([low_r] if low_r is not None else [])
    order = {name: i for i, name in enumerate(l.name for l in network.layers)}
    findings.sort(key=lambda f: (-f.severity, order.get(f.layer, -1)))
    findings = [f if f.remedy else dataclasses.replace(f, remedy=_remedy_for(f, result.steps, network)) for f in findings]
    return Diagnosis(tuple(findings), result, percentile)


def _remedy_for(f: Finding, steps: int, network) -> str:
    """The conversion remedy (``--remedies`` spec) that fits a finding, or ""."""
    if f.cause in ("slow_onset", "not_converged"):
        return "half"
    if f.cause == "resolution":
        return f"half+calib{steps}"
    if f.cause == "saturated":
        return "burst2"
    if f.cause == "silent" and "dead before conversion" not in f.message and "is silent" not in f.message:
        return "channel"
    if f.cause == "maxpool_error":
        return "lateral"
    if f.cause == "low_correlation":
        return f"calib{steps}"
    return ""


def suggested_remedies(d: Diagnosis) -> str:
    """Every remedy the findings name, joined into one ``--remedies`` spec ('' when none)."""
    words: list[str] = []
    for f in d.findings:
        for w in f.remedy.split("+") if f.remedy else ():
            if w not in words and not (w.startswith("calib") and any(x.startswith("calib") for x in words)):
                words.append(w)
    return "+".join(words)


SPREAD_BELOW = 0.5  # a channel whose 99.9th percentile is below this share of its layer's: weak
SPREAD_SHARE = 0.25  # this share of a layer's channels weak: a channel_spread finding


def channel_spread(network: nw.Network, x) -> list[Finding]:
    """``channel_spread``: layers (that can take one scale per channel) where many channels use
    a small part of the layer's range, measured on the ANN activations of ``x``: their neurons
    fire a trickle. The remedy is channel-wise normalization."""
    from workbench.models.forward import forward
    from workbench.models.normalize import _channel_sinks

    done = set((network.normalization or {}).get("channel_scales", {}))
    acts = forward(network, np.asarray(x[:256]))
    out = []
    for layer in network.layers:
        if (layer.kind not in (nw.DENSE, nw.CONV2D) or layer is network.output_layer or layer.name in done
                or layer.activation != "relu" or _channel_sinks(network, layer.name) is None):
            continue
        a = np.asarray(acts[layer.name], np.float64).reshape(-1, layer.output_shape[-1])
        top = [float(np.percentile(col[col > 0], 99.9)) for col in a.T if np.any(col > 0)]
        if len(top) < 2:
            continue
        ratio = np.asarray(top) / max(top)
        weak = float(np.mean(ratio < SPREAD_BELOW))
        if weak >= SPREAD_SHARE:
            out.append(Finding(layer.name, "channel_spread", LOW,  # a latency cost, not an error
                               f"layer {layer.name}: {_pct(weak)} of its channels reach less than half of the "
                               f"layer's range (99.9th percentiles from {min(ratio):.2f} to 1 of the largest); "
                               "their neurons fire a trickle", "normalize channel by channel (--remedies channel)",
                               {"weak_channels": weak, "min_ratio": float(min(ratio))}, remedy="channel"))
    return out


def diagnose(network: nw.Network, config, x, y=None, steps: int | None = None, **kw) -> Diagnosis:
    """Run ``network`` on ``x`` (``evaluate``'s keyword arguments pass through) and diagnose it;
    with the data at hand, also the spread of its channels (``channel_spread``)."""
    d = diagnose_result(network, evaluate(network, config, x, y, steps=steps, **kw))
    spread = channel_spread(network, x)
    if not spread:
        return d
    order = {name: i for i, name in enumerate(l.name for l in network.layers)}
    findings = sorted([*d.findings, *spread], key=lambda f: (-f.severity, order.get(f.layer, -1)))
    return dataclasses.replace(d, findings=tuple(findings))


def format_report(d: Diagnosis) -> str:
    """The text ``snn-workbench diagnose`` prints: the findings, then the per-layer evidence."""
    r = d.result
    lines = []
    if r.labelled and r.samples:
        lines.append(f"ANN accuracy {100 * r.ann_accuracy:.2f} %   SNN accuracy {100 * r.snn_accuracy[-1]:.2f} % "
                     f"after {r.steps} steps   ({r.samples} samples)")
    for w in r.warnings:
        lines.append(f"warning: {w}")
    lines.append(f"{len(d.findings)} finding(s)" + (":" if d.findings else ": nothing stands out"))
    for i, f in enumerate(d.findings, 1):
        lines += [f"{i:>2}. [{f.severity_name}] {f.cause}: {f.message}", f"    -> {f.suggestion}"]
        if f.remedy:
            lines.append(f"    remedy: --remedies {f.remedy}   (diagnose --try applies it)")
    lines.append("")
    head = (f"{'layer':<16} {'lambda':>8} {'r':>7} {'satur.%':>8} {'silent%':>8} {'ANN>max%':>9} "
            f"{'<1/T %':>7} {'spikes/sample':>14}  neuron")
    lines += [head, "-" * len(head)]
    for le in r.layers:
        if le.kind == nw.INPUT:
            continue
        lam = "-" if not math.isfinite(le.scale) else f"{le.scale:.3g}"
        rr = "n/a" if not math.isfinite(le.r) else f"{le.r:.3f}"
        lines.append(f"{le.name:<16.16} {lam:>8} {rr:>7} {100 * le.saturated:>8.1f} {100 * le.silent:>8.1f} "
                     f"{100 * le.ann_over:>9.1f} {100 * le.ann_under:>7.1f} {le.spikes_per_sample:>14.1f}  "
                     f"{le.model}{'' if le.role == 'spiking' else ' [' + le.role + ']'}")
    return "\n".join(lines)
