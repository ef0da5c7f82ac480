"""Which neuron each layer runs: the conversion plan of a network under a SimConfig.

Rules, per neuron layer, in this order (``plan``); ``SimConfig.overrides`` always win and are
only checked (a warning when they cannot represent the layer's activation):

1. **Readout.** The output layer with ``readout='membrane'`` (the default ``'auto'`` picks it for
   a linear or softmax output) runs ``Current``: no spikes, the class scores are its accumulated
   membrane (the integral of the current, i.e. the ANN's logits times T), as in Rueckauer et al.
   2017. ``readout='spikes'`` keeps spiking output neurons and counts their spikes.
2. **Linear layers are synapses.** A layer with a linear (identity) activation whose consumers
   are all linear in their input (dense, conv, depthwise, average pooling, Add, a standalone
   activation; through flatten, reshape, zero padding and Concatenate, themselves followed by
   such layers) runs ``Current``: its weights apply to the spikes coming in and its result flows
   into the consumers' current, exactly as the ANN computes. A Conv+BN branch into Add, a
   BatchNorm lowered to a per-channel affine layer and a linear bottleneck are such layers.
3. **Activation-matched neurons** (with ``auto_neurons``): a tanh or sigmoid layer runs the
   spiking wrapper of its activation (``regular_spiking`` unless the chosen neuron is another
   wrapper), fitted to the network's rate units (see ``fit``); a linear layer that must spike
   (feeding max pooling, or a spiking output) runs ``signed_if`` (IF, or the chosen wrapper with
   ``rate_fn=linear``; the IF's ``v_init`` and ``burst`` remedies carry over); relu layers run
   the chosen neuron, fitted when its parameters are
   the model's defaults (LIF, Loihi LIF and the wrappers: ``fit``). A fitted LIF layer whose
   input is not constant (fed by spikes) filters its input current with a synaptic low-pass
   (``synapses.lowpass``, ``SimConfig.synapse``, default ``LIF_SYNAPSE`` = 5 ms); one under a
   constant current (the first layer, constant encoder) is **rate-inverted** instead: its current
   J becomes the J' whose long-run rate is J spikes a step (``neurons.lif.rate_invert``, the
   inverse of its rate curve as the issue asks and as Hunsberger & Eliasmith fit LIF rates;
   ``SimConfig.rate_inversion``).
Without ``auto_neurons`` ("uniform") every layer runs the chosen neuron as given (rule 1 still
applies with ``readout='membrane'``): the behaviour before this plan existed, for comparisons.

Every choice is a ``LayerPlan`` (model, its extra current gain and offset, synapse, the role, why); ``warnings``
says what cannot be represented (a tanh layer on a rectifying neuron, a wrapper whose rate
function is not the layer's activation, negative values on hardware-like neurons). The
simulator, the reports and the window read the same plan.
"""

from __future__ import annotations

import dataclasses
import math

from workbench.engine.neurons import IF, LIF, Current, LoihiCUBA, LoihiLIF, LoihiReLU, NeuronModel, SignedIF
from workbench.engine.neurons.loihi import discretize_tau_rc
from workbench.engine.neurons.spiking import _RateSpiking
from workbench.models import network as nw

READOUTS = ("auto", "membrane", "spikes")
# kinds whose current is a linear function of their inputs' outputs
_LINEAR_CONSUMERS = frozenset(nw.NEURON_KINDS)
_LOOK_THROUGH = frozenset({nw.FLATTEN, nw.RESHAPE, nw.ZERO_PAD2D, nw.CONCATENATE})
_BOUNDED = ("tanh", "sigmoid")


@dataclasses.dataclass(frozen=True)
class LayerPlan:
    model: NeuronModel
    role: str  # "spiking", "current" (a linear layer carrying current) or "readout" (membrane readout)
    gain: float = 1.0  # extra current gain on top of SimConfig.rate_scale (fitted LIF)

    why: str = ""
    offset: float = 0.0  # added to the current after the gain (a fitted LIF's rheobase shift)
    synapse: float = 0.0  # time constant (s) of the low-pass filter on the input current; 0: none
    # a fitted LIF under a constant current: J -> the J' whose rate is J (``neurons.lif.rate_invert``)
    rate_inverted: bool = False

    def note(self) -> str:
        """The role and what the plan adds to the model: 'spiking, current x20.5042, synapse 5 ms, rate-inverted'."""
        gain = f", current x{self.gain:g}" if self.gain != 1.0 else ""
        syn = f", synapse {synapse_text(self.synapse)}" if self.synapse else ""
        return f"{self.role}{gain}{syn}" + (", rate-inverted" if self.rate_inverted else "")


@dataclasses.dataclass(frozen=True)
class Plan:
    layers: dict  # layer name -> LayerPlan (neuron layers only)
    warnings: tuple[str, ...] = ()

    def model(self, name: str) -> NeuronModel:
        return self.layers[name].model

    def describe(self) -> list[str]:
        """One line per neuron layer: name, model, role."""
        out = []
        for name, lp in self.layers.items():
            out.append(f"{name}: {lp.model.describe()} [{lp.note()}]" + (f" ({lp.why})" if lp.why else ""))
        return out


def carries_current(network: nw.Network, layer: nw.Layer) -> bool:
    """A linear layer whose every consumer is linear in its input (rule 2 of the module docstring)."""
    if layer.activation != "linear" or not layer.is_neuron_layer:
        return False
    todo, seen = [layer.name], set()
    consumers_found = False
    while todo:
        name = todo.pop()
        for c in network.consumers(name):
            consumers_found = True
            if c.kind in _LOOK_THROUGH:
                if c.name not in seen:
                    seen.add(c.name)
                    todo.append(c.name)
            elif c.kind not in _LINEAR_CONSUMERS:
                return False
            elif c.kind == nw.ACTIVATION and c.activation in ("softmax",):
                return False
    return consumers_found


def readout_for(network: nw.Network, readout: str, softmax_output: str = "if") -> str:
    """'membrane' or 'spikes' for ``readout`` ('auto': membrane for a linear or softmax output,
    unless a sampled softmax was asked for: ``SimConfig.softmax_output='sampled'``)."""
    if readout != "auto":
        return readout
    out = network.output_layer.activation
    if out == "softmax" and softmax_output == "sampled":
        return "spikes"
    return "membrane" if out in ("linear", "softmax") else "spikes"


def current_layers(network: nw.Network, readout: str = "auto") -> set[str]:
    """The layers that carry current instead of spiking (rules 1 and 2), without overrides."""
    out = {layer.name for layer in network.neuron_layers if carries_current(network, layer)}
    if readout_for(network, readout) == "membrane":
        out.add(network.output_layer.name)
    return out


def signed_layers(network: nw.Network, readout: str = "auto") -> set[str]:
    """The layers an IF conversion runs on ``signed_if`` (rule 3: linear layers that must
    spike), without overrides."""
    out_name = network.output_layer.name
    membrane = readout_for(network, readout) == "membrane"
    return {layer.name for layer in network.neuron_layers
            if layer.activation not in ("relu", "softmax", *_BOUNDED) and not carries_current(network, layer)
            and not (membrane and layer.name == out_name)}


def _is_default(model: NeuronModel, *fields: str) -> bool:
    defaults = {f.name: f.default for f in dataclasses.fields(model)}
    return all(getattr(model, f) == defaults[f] for f in fields)


def fit(model: NeuronModel, activation: str, dt: float, rate_scale: float) -> tuple[NeuronModel, float, str]:
    """(model, extra gain, note): ``model`` adapted so that its mean output equals the layer's
    activation of its current in the network's (normalized) units, when its parameters are the
    defaults (explicit parameters are kept as given).

    - Wrappers (relu/linear): gain 1/dt, tau_ref dt/s, amplitude dt: one spike per step at 1.
      tanh/sigmoid: gain 1/s, tau_ref dt/s, amplitude dt: ``s * f(J)`` spikes per step, each
      worth 1/s, so the mean output is f(J) (s = ``rate_scale``).
    - LIF / Loihi LIF: the fitted variant (docs/neurons.md): reset by subtraction (v -= 1 on a
      spike, the overshoot kept instead of Nengo's reset to zero, whose rate is a staircase of
      1/n spikes a step), tau_ref 0, the membrane not clipped (``min_voltage`` -1e6), a current
      gain g = 1/(1 - exp(-dt/tau_rc)) (20.5 at the defaults; unless a rate scale was set) and
      ``LIF_OFFSET``: one step adds (g J + 0.5 - v)/g to v, so over many steps the spike count
      is T*J + (0.5 - mean v)*T/g; each spike is worth 1 (amplitude = g dt), as an IF neuron's.
    """
    s = float(rate_scale)
    if isinstance(model, _RateSpiking):
        rate_fn = model.rate_fn
        if not _is_default(model, "gain", "amplitude", "tau_ref"):
            return model, 1.0, ""
        if rate_fn in _BOUNDED:
            m = dataclasses.replace(model, rate_fn=rate_fn, gain=1.0 / s, tau_ref=dt / s, amplitude=dt)
        else:
            m = dataclasses.replace(model, rate_fn=rate_fn, gain=1.0 / dt, tau_ref=dt / s, amplitude=dt)
        return m, 1.0, f"fitted to rate units: {rate_fn}(J) spikes/step x{s:g}"
    if isinstance(model, LIF) and _is_default(model, "amplitude", "tau_ref", "min_voltage", "reset_mode"):
        tau_rc = discretize_tau_rc(model.tau_rc, dt) if isinstance(model, LoihiLIF) else model.tau_rc
        step_gain = -1.0 / math.expm1(-dt / tau_rc)  # 1 / (the fraction of J - v one step adds to v)
        g = step_gain if s == 1.0 else 1.0
        m = dataclasses.replace(model, amplitude=step_gain * dt, tau_ref=0.0, min_voltage=LIF_MIN_VOLTAGE,
                                reset_mode="subtract")
        return m, g, (f"fitted: reset by subtraction, tau_ref 0, current x{g * s:.4g} + {LIF_OFFSET:g} "
                      f"(one spike a step at J = 1, each worth 1)")
    return model, 1.0, ""


LIF_OFFSET = 0.5  # the mean membrane between spikes: g*J + 0.5 - v averages g*J
LIF_MIN_VOLTAGE = -1e6
# The synaptic filter of fitted LIF layers fed by spikes (SimConfig.synapse None): a Lowpass of
# 5 ms, Nengo's default connection synapse (nengo.Connection(synapse=Lowpass(0.005))); filtering
# the spikes between layers is how Hunsberger & Eliasmith 2015 run converted LIF networks.
# Measured in docs/conversion.md (1, 2, 5, 10, 20 ms).
LIF_SYNAPSE = 0.005


def synapse_text(tau: float) -> str:
    return f"{tau * 1000:g} ms"


def constant_input_layers(network: nw.Network, config) -> set[str]:
    """Neuron layers whose input is the same every step: fed only by the input layer (through
    flatten, reshape, zero padding, concatenate) under the constant encoder, without a synaptic
    delay (``Simulator`` computes their current once)."""
    if getattr(config, "encoder", "constant") != "constant" or getattr(config, "synaptic_delay", 0):
        return set()
    constant_out = {network.layers[0].name}
    out = set()
    for layer in network.layers[1:]:
        if all(i in constant_out for i in layer.inbound):
            if layer.is_neuron_layer:
                out.add(layer.name)
            elif layer.kind in _LOOK_THROUGH:
                constant_out.add(layer.name)
    return out


def synapse_for(config) -> float:
    """The synaptic time constant (s) for fitted LIF layers fed by spikes: ``config.synapse``,
    or ``LIF_SYNAPSE`` when it is None."""
    tau = getattr(config, "synapse", None)
    return LIF_SYNAPSE if tau is None else float(tau)


def plan(network: nw.Network, config) -> Plan:
    """The conversion plan of ``network`` under ``config`` (see the module docstring)."""
    dt = config.effective_dt
    s = float(config.rate_scale)
    auto = getattr(config, "auto_neurons", True)
    softmax_output = getattr(config, "softmax_output", "if")
    readout = readout_for(network, getattr(config, "readout", "auto"), softmax_output)
    base = config.neuron
    layers, warnings = {}, []
    out_name = network.output_layer.name
    constant = constant_input_layers(network, config)
    tau_syn = synapse_for(config)
    for layer in network.neuron_layers:
        name, act = layer.name, layer.activation
        if name in config.overrides:
            model = config.overrides[name]
            layers[name] = LayerPlan(model, "spiking" if model.spiking else "current", 1.0, "override")
            _check(layer, model, warnings)
            continue
        if act == "softmax" and softmax_output == "sampled":  # SNN Toolbox's sampled softmax
            from workbench.engine.neurons.softmax import SampledSoftmax

            model = SampledSoftmax(threshold=float(getattr(base, "threshold", 1.0)))
            layers[name] = LayerPlan(model, "spiking", 1.0, "softmax_output='sampled'")
            continue
        if name == out_name and readout == "membrane":
            layers[name] = LayerPlan(Current(), "readout", 1.0, "membrane readout")
            continue
        if not auto:
            layers[name] = LayerPlan(base, "spiking")
            _check(layer, base, warnings)
            continue
        if carries_current(network, layer):
            layers[name] = LayerPlan(Current(), "current", 1.0, "linear layer: carries current")
            continue
        model, gain, why = base, 1.0, ""
        if act in _BOUNDED:
            wrapper = base if isinstance(base, _RateSpiking) else _regular()
            if isinstance(base, _RateSpiking) and base.rate_fn != act and not _is_default(base, "rate_fn"):
                model = base
            else:
                model, gain, why = fit(dataclasses.replace(wrapper, rate_fn=act), act, dt, s)
                why = f"{act} layer: spiking {act} wrapper; {why}"
        elif act == "linear" or (act not in ("relu", "softmax")):
            if isinstance(base, _RateSpiking):
                model, gain, why = fit(dataclasses.replace(base, rate_fn="linear"), "linear", dt, s)
            else:
                thr = float(getattr(base, "threshold", 1.0))
                reset = getattr(base, "reset", "subtract")
                # the IF's remedies carry over (half-threshold start, burst spikes): the signed IF
                # is the same neuron with a negative threshold too
                model = SignedIF(threshold=thr, reset=reset if reset in ("subtract", "zero") else "subtract",
                                 v_init=float(getattr(base, "v_init", 0.0)), burst=int(getattr(base, "burst", 1)))
                why = "linear layer that must spike: signed IF"
                if not isinstance(base, IF):
                    warnings.append(f"{name}: linear activation (negative values) runs as signed_if: "
                                    f"{base.name} cannot emit negative spikes")
        else:  # relu (capped or not), softmax with a spiking readout
            model, gain, why = fit(base, "relu", dt, s)
        fitted_lif = isinstance(model, LIF) and gain != 1.0
        offset = LIF_OFFSET if fitted_lif else 0.0
        # a fitted LIF fed by spikes gets a synaptic filter: its leak turns the membrane's
        # swings under spiking input into a rate bias (docs/conversion.md); constant input has none
        synapse = tau_syn if fitted_lif and name not in constant else 0.0
        # under a constant current it gets the inverse of its rate curve instead: the current
        # becomes the one whose long-run rate is the ANN value (no dead zones at the ends)
        inverted = fitted_lif and name in constant and getattr(config, "rate_inversion", True)
        layers[name] = LayerPlan(model, "spiking", gain, why=why, offset=offset, synapse=synapse,
                                 rate_inverted=inverted)
        _check(layer, model, warnings)
    return Plan(layers, tuple(warnings))


def _regular():
    from workbench.engine.neurons import RegularSpiking

    return RegularSpiking()


def _check(layer: nw.Layer, model: NeuronModel, warnings: list) -> None:
    """Warn when ``model`` cannot represent ``layer``'s activation."""
    act, name = layer.activation, layer.name
    if not model.spiking:
        return
    if isinstance(model, _RateSpiking):
        want = {"softmax": "relu"}.get(act, act)
        if model.rate_fn != want and not (want == "linear" and model.rate_fn == "linear"):
            warnings.append(f"{name}: {act} activation but {model.name} uses rate_fn={model.rate_fn}: "
                            "the SNN computes a different function")
        return
    if act in ("tanh", "linear") and not model.signed:
        warnings.append(f"{name}: {act} activation (negative values) on {model.name}, which rectifies: "
                        "every negative value is lost (use signed_if or a spiking wrapper)")
    elif act == "sigmoid":
        warnings.append(f"{name}: sigmoid activation on {model.name}, whose rate function is not a "
                        "sigmoid (use regular_spiking with rate_fn=sigmoid)")
    if isinstance(model, (LoihiCUBA, LoihiReLU, LoihiLIF)) and act not in ("relu", "softmax"):
        warnings.append(f"{name}: {act} activation on hardware model {model.name}")
