"""Data-based weight normalization (Rueckauer et al. 2017, as SNN Toolbox does it).

Each neuron layer gets a scale lambda: a high percentile of its positive ANN activations on
sample data. Rescaling ``W *= lambda_prev / lambda``, ``b /= lambda`` makes every ReLU layer's
output ``original / lambda``, i.e. mostly within [0, 1], the range an integrate-and-fire neuron
with threshold 1 can represent by its rate. Weight-less neuron layers (average pools, Add,
standalone activations) get the same effect through ``config['input_scales']``.

Two choices worth knowing:
- Softmax layers take lambda from their *pre-activation* (linear) outputs clipped at 0: an IF
  neuron's rate tracks the linear input, not the softmax probability. (This is our rule; SNN
  Toolbox instead gives a softmax layer the factor 1.0, see ``rule='snntoolbox'``.)
- All inputs of a Concatenate must share one lambda (the spikes are merged without rescaling),
  so the producers feeding a Concatenate are unified to the largest of their lambdas.
- A ReLU with ``max_value`` (ReLU6) takes ``lambda = min(percentile, cap)``. When the sample
  reaches the cap (the usual case for a trained ReLU6 network) lambda is the cap, the normalized
  ``max_value`` is exactly 1 and the ANN's clip falls where an IF neuron saturates (one spike per
  step): the engine has no clip of its own and needs none. When the sample stays below the cap,
  lambda is the percentile as for any ReLU and the SNN clips there (docs/models.md, 'ReLU6').
ReLU and linear layers satisfy ``forward(normalized)[l] == forward(original)[l] / lambda_l``
exactly; tanh and sigmoid are bounded already and not scale-equivariant, so they keep lambda 1
(their output is the original's exactly).

``rule='snntoolbox'`` follows SNN Toolbox 0.6 (``snntoolbox/conversion/utils.py``,
``normalize_parameters``) instead: only layers with weights get a factor of their own (the
percentile of their *non-zero* activations); every layer without weights (average pooling,
Add, Activation, flatten, ...) passes its inbound layer's factor on (an average pool then
outputs ``mean(inputs)`` of already scaled inputs); a softmax layer's factor is 1.0 whatever the
data say. An Add of inputs with different factors takes the largest and rescales the others
through ``input_scales`` (SNN Toolbox has no spiking Add); a Concatenate of inputs with different
factors is refused (SNN Toolbox rescales the next layer's weights per input slice, which a
shared factor cannot express). ``factors=`` (or ``load_factors``) takes the factors from SNN Toolbox's normalization
file (``<percentile>.json`` in its ``log_dir_of_current_run/normalization`` folder: layer name ->
factor) instead of computing them.

Memory: ``normalize`` runs one streamed forward pass (``forward_stream``) and takes each layer's
lambda as soon as its activation is complete; an activation is dropped once its last reader is
computed, so the peak is a few layers' activations, not the network's (docs/benchmarks.md).
``compute_scales``, ``snntoolbox_scales`` and ``channel_scales`` still take every layer's
activations at once (``forward``'s dict) for callers that have them.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from workbench.errors import ConfigError, DataFileError
from workbench.models import network as nw
from workbench.models.forward import forward_stream, preactivation

METHOD = "rueckauer2017"
RULES = ("workbench", "snntoolbox")
SNNTOOLBOX_METHOD = "snntoolbox-0.6"
PASS_THROUGH = frozenset({nw.MAX_POOL2D, nw.FLATTEN, nw.RESHAPE, nw.ZERO_PAD2D})
SCALED_INPUT_KINDS = frozenset({nw.AVG_POOL2D, nw.GLOBAL_AVG_POOL2D, nw.ACTIVATION, nw.ADD})


def _f32(a) -> np.ndarray:
    """``a`` as ``forward`` returns it (float32), without copying what already is."""
    return np.asarray(a).astype(np.float32, copy=False)


def _percentile(values: np.ndarray, percentile: float) -> float:
    """The percentile of ``values`` (a temporary selection: partitioned in place, no copy)."""
    return float(np.percentile(values, percentile, overwrite_input=True))


def _layer_lambda(layer, act, inputs, percentile, warnings) -> float:
    """Neuron layer ``layer``'s lambda from its activation ``act`` and (softmax) its inbound
    activations ``inputs``, read as ``forward`` returns them (float32)."""
    if layer.activation == "softmax":
        values = preactivation(layer, [_f32(a).astype(np.float64) for a in inputs])
    elif layer.activation in ("tanh", "sigmoid"):
        # bounded already (|tanh| < 1, sigmoid in (0, 1)) and not scale-equivariant: lambda 1
        # keeps the function exact (its input weights still take the previous layer's lambda)
        return 1.0
    else:
        values = _f32(act)
    positive = values[values > 0]
    del values
    lam = _percentile(positive, percentile) if positive.size else 0.0
    if not lam > 0:
        warnings.append(f"{layer.name}: no positive activation on the sample; lambda set to 1")
        lam = 1.0
    cap = layer.activation_params.get("max_value") if layer.activation == "relu" else None
    if cap is not None and float(cap) > 0:
        lam = min(lam, float(cap))  # the cap then lands at <= 1: where an IF neuron saturates
    return lam


class _Groups:
    """Union-find over layers that must share one lambda (pass-through chains, Concatenate)."""

    def __init__(self):
        self.parent: dict[str, str] = {}

    def find(self, name: str) -> str:
        while self.parent.get(name, name) != name:
            name = self.parent[name]
        return name

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[rb] = ra


def _groups(network: nw.Network) -> _Groups:
    groups = _Groups()
    for layer in network.layers:
        if layer.kind != nw.INPUT and not layer.is_neuron_layer:  # pass-through or concatenate
            for src in layer.inbound:
                groups.union(src, layer.name)
    return groups


def _share(network: nw.Network, raw: dict, warnings: list) -> dict:
    """Each layer's lambda from the neuron layers' own (``raw``): the largest of its tied group."""
    groups, input_name = _groups(network), network.input_layer.name
    members: dict[str, list[str]] = {}
    for name in raw:
        members.setdefault(groups.find(name), []).append(name)
    shared = {}
    for root, names in members.items():
        if input_name in names:  # the input cannot be rescaled: its whole group keeps lambda 1
            if len(names) > 1:
                warnings.append(f"{', '.join(n for n in names if n != input_name)}: concatenated "
                                "with the input, so left unnormalized (lambda 1)")
            shared[root] = 1.0
        else:
            shared[root] = max(raw[n] for n in names)
    return {layer.name: shared[groups.find(layer.name)] for layer in network.layers}


def compute_scales(network: nw.Network, acts: dict, percentile: float, warnings: list, on_layer=None) -> dict:
    """lambda per layer name: percentiles for neuron layers, shared across tied groups, from
    every layer's activations ``acts`` (``forward``; ``normalize`` streams them instead).
    ``on_layer(name)`` after each neuron layer's percentile (as ``forward``'s)."""
    raw = {}
    for layer in network.layers:
        if layer.kind == nw.INPUT:
            raw[layer.name] = 1.0
        elif layer.is_neuron_layer:
            raw[layer.name] = _layer_lambda(layer, acts[layer.name], [acts[s] for s in layer.inbound],
                                            percentile, warnings)
            if on_layer is not None:
                on_layer(layer.name)
    return _share(network, raw, warnings)


_CHUNK = 2**20


def _in_float64(a: np.ndarray, op, value: float) -> np.ndarray:
    """``op(a.astype(float64), value).astype(float32)``, a chunk at a time (VGG16's first dense layer
    would take 0.8 GB in float64 at once)."""
    flat = np.ascontiguousarray(a).reshape(-1)
    out = np.empty(a.shape, np.float32)
    out_flat = out.reshape(-1)
    for i in range(0, flat.size, _CHUNK):
        out_flat[i : i + _CHUNK] = op(flat[i : i + _CHUNK].astype(np.float64), value)
    return out


def apply_scales(network: nw.Network, scales: dict) -> None:
    """Rescale ``network`` in place so each layer outputs its original activation / lambda."""
    for layer in network.layers:
        lam = scales[layer.name]
        if layer.kind in nw.WEIGHTED_KINDS:
            ratio = scales[layer.inbound[0]] / lam
            layer.weights = _in_float64(layer.weights, np.multiply, ratio)
            layer.bias = _in_float64(layer.bias, np.divide, lam)
        elif layer.kind in SCALED_INPUT_KINDS:
            layer.config["input_scales"] = [scales[s] / lam for s in layer.inbound]
        if "max_value" in layer.activation_params:
            layer.activation_params["max_value"] = float(layer.activation_params["max_value"]) / lam


def normalize(network: nw.Network, x_sample, percentile: float = 99.9, on_progress=None,
              rule: str = "workbench", factors: dict | None = None) -> nw.Network:
    """A new, normalized copy of ``network``; lambdas taken from its activations on ``x_sample``.

    ``rule``: 'workbench' (the default, above) or 'snntoolbox' (SNN Toolbox 0.6's rule).
    ``factors``: SNN Toolbox factors by layer name (``load_factors``); implies the 'snntoolbox'
    rule and needs no ``x_sample``.

    ``on_progress(done, total)`` is called after each layer of the forward pass and after each
    neuron layer's percentile, which follows its layer's forward step (``total``: layers + neuron
    layers; the percentiles of a big layer take as long as its forward pass). It may raise to
    cancel: ``network`` is never changed, the copy is made at the end."""
    _check_arguments(network, rule, percentile)
    if factors is not None:
        return _normalize_from_factors(network, factors, percentile)
    return _normalize(network, x_sample, percentile, on_progress, rule)[0]


def _check_arguments(network: nw.Network, rule: str, percentile: float) -> None:
    if network.scales or network.normalization:
        raise ConfigError("normalize", "the network is already normalized; normalize the original "
                          "(un-normalized) network instead of re-scaling stale scales")
    if rule not in RULES:
        raise ConfigError("normalize rule", f"must be one of {', '.join(RULES)}, got '{rule}'")
    if not 0 < percentile <= 100:
        raise ConfigError("percentile", f"must be in (0, 100], got {percentile}")


def _normalize(network: nw.Network, x_sample, percentile: float, on_progress, rule: str,
               channel_layers=()) -> tuple[nw.Network, dict]:
    """``normalize`` in one streamed forward pass (``forward_stream``): each layer's lambda is
    taken as soon as its activation is complete, and no activation outlives its last reader.
    Also returns ``_channel_percentiles`` of the ``channel_layers``."""
    x_sample = np.asarray(x_sample)
    if x_sample.ndim == 0 or len(x_sample) == 0:
        raise DataFileError("the sample data for normalization holds no samples")
    total = len(network.layers) + sum(layer.is_neuron_layer for layer in network.layers)
    done = 0

    def tick(_name):
        nonlocal done
        done += 1
        if on_progress is not None:
            on_progress(done, total)

    warnings: list[str] = []
    raw, scales, per_channel, channel_layers = {}, {}, {}, set(channel_layers)
    for layer, act, inputs in forward_stream(network, x_sample, on_layer=tick):
        if layer.activation != "softmax" or rule == "snntoolbox":
            inputs = ()  # only the workbench rule's softmax lambda reads them
        if rule == "snntoolbox":
            reads = _snntoolbox_reads(layer, None)
            scales[layer.name] = _snntoolbox_factor(layer, act if reads else None, scales, percentile, warnings, None)
        elif layer.kind == nw.INPUT:
            raw[layer.name] = 1.0
        elif layer.is_neuron_layer:
            raw[layer.name] = _layer_lambda(layer, act, inputs, percentile, warnings)
        if layer.is_neuron_layer:
            tick(layer.name)
        if layer.name in channel_layers:
            per_channel[layer.name] = _channel_percentiles(act, layer.output_shape[-1], percentile)
        del act, inputs  # the stream drops them once no later layer reads them
    if rule != "snntoolbox":
        scales = _share(network, raw, warnings)
    out = network.copy(arrays=False)  # apply_scales replaces the weighted layers' arrays
    for layer in out.layers:
        if layer.kind not in nw.WEIGHTED_KINDS:
            layer.weights = None if layer.weights is None else layer.weights.copy()
            layer.bias = None if layer.bias is None else layer.bias.copy()
    apply_scales(out, scales)
    out.scales = scales
    out.normalization = {"percentile": float(percentile), "n_samples": int(len(x_sample)),
                         "method": SNNTOOLBOX_METHOD if rule == "snntoolbox" else METHOD, "warnings": warnings}
    return out, per_channel


# ---- SNN Toolbox's rule and its normalization file -------------------------------------------
def snntoolbox_scales(network: nw.Network, acts: dict | None, percentile: float, warnings: list,
                      factors: dict | None = None, on_layer=None) -> dict:
    """Factors as SNN Toolbox 0.6 assigns them (see the module docstring); from ``factors`` (by
    layer name) when given, else the percentile of each weighted layer's non-zero activations
    (``acts``: ``forward``'s; ``normalize`` streams them instead)."""
    scales: dict[str, float] = {}
    for layer in network.layers:
        act = acts[layer.name] if acts is not None and _snntoolbox_reads(layer, factors) else None
        scales[layer.name] = _snntoolbox_factor(layer, act, scales, percentile, warnings, factors)
        if on_layer is not None and layer.is_neuron_layer:
            on_layer(layer.name)
    return scales


def _snntoolbox_reads(layer: nw.Layer, factors: dict | None) -> bool:
    """Whether SNN Toolbox's factor of ``layer`` is read off its own activation."""
    return factors is None and layer.kind in nw.WEIGHTED_KINDS and layer.activation != "softmax"


def _snntoolbox_factor(layer, act, scales, percentile, warnings, factors) -> float:
    """``layer``'s SNN Toolbox factor, given the factors of the layers before it (``scales``)."""
    if layer.kind == nw.INPUT:
        return 1.0
    if layer.kind in nw.WEIGHTED_KINDS:
        if layer.activation == "softmax":
            return 1.0  # SNN Toolbox: "Using scale factor 1.00 for softmax layer", file or not
        if factors is not None:
            if layer.name not in factors:
                raise DataFileError(f"normalization factors: no factor for layer '{layer.name}' "
                                    f"(the file names {', '.join(sorted(factors)) or 'no layers'})")
            return float(factors[layer.name])
        values = _f32(act)
        nonzero = values[values != 0]
        del values
        lam = _percentile(nonzero, percentile) if nonzero.size else 0.0
        if not lam > 0:
            warnings.append(f"{layer.name}: no positive factor from the sample; factor set to 1")
            lam = 1.0
        return lam
    # no weights: the inbound layer's factor passes through
    inbound = [scales[s] for s in layer.inbound]
    lam = max(inbound)
    if min(inbound) != lam and layer.kind not in SCALED_INPUT_KINDS:
        raise ConfigError("normalize rule", f"layer '{layer.name}' ({layer.kind}) joins inputs with "
                          f"different factors {sorted(set(inbound))}; SNN Toolbox rescales the next "
                          "layer's weights per input there, which the workbench cannot: use the "
                          "'workbench' rule")
    return lam


def load_factors(path) -> dict[str, float]:
    """SNN Toolbox's normalization file (``<percentile>.json``: layer name -> factor)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataFileError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise DataFileError(f"{path}: not a readable JSON file ({exc})") from None
    if not isinstance(data, dict):
        raise DataFileError(f"{path}: expected a JSON object of layer name -> factor")
    out = {}
    for name, value in data.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
            raise DataFileError(f"{path}: factor of layer '{name}' must be a positive number, got {value!r}")
        out[str(name)] = float(value)
    return out


def _normalize_from_factors(network: nw.Network, factors: dict, percentile: float) -> nw.Network:
    warnings: list[str] = []
    scales = snntoolbox_scales(network, None, percentile, warnings, factors=factors)
    unused = sorted(set(factors) - set(scales))
    if unused:
        warnings.append(f"factors for unknown layers ignored: {', '.join(unused)}")
    out = network.copy()
    apply_scales(out, scales)
    out.scales = scales
    out.normalization = {"percentile": float(percentile), "n_samples": 0, "method": SNNTOOLBOX_METHOD,
                         "factors": "file", "warnings": warnings}
    return out


# ---- channel-wise normalization (a low-latency remedy) ---------------------------------------
CHANNEL_METHOD = "channel-wise"
_CHANNEL_PASS = frozenset({nw.MAX_POOL2D, nw.ZERO_PAD2D, nw.FLATTEN})
_CHANNEL_SINKS = frozenset({nw.DENSE, nw.CONV2D, nw.DEPTHWISE_CONV2D})


def _channel_sinks(network: nw.Network, name: str):
    """The weighted layers that read ``name``'s channels (through max pooling, zero padding and
    a flatten), or None when a consumer cannot take one scale per channel (a join, an average
    pool, a reshape, nothing: the network output)."""
    sinks, todo = [], [(name, False)]
    while todo:
        src, flat = todo.pop()
        users = network.consumers(src)
        if not users:
            return None
        for user in users:
            if len(user.inbound) != 1:
                return None
            if user.kind in _CHANNEL_PASS and not flat:
                todo.append((user.name, user.kind == nw.FLATTEN))
            elif user.kind in _CHANNEL_SINKS and (user.kind == nw.DENSE or not flat):
                sinks.append(user)
            else:
                return None
    return sinks


def _channel_layers(network: nw.Network) -> list[str]:
    """The layers that take one scale per channel (``channel_scales``), in layer order."""
    tied = {src for layer in network.layers if layer.kind == nw.CONCATENATE for src in layer.inbound}
    return [layer.name for layer in network.layers
            if not (layer.kind not in (nw.DENSE, nw.CONV2D) or layer is network.output_layer or layer.name in tied
                    or layer.activation != "relu" or "max_value" in layer.activation_params)
            and _channel_sinks(network, layer.name) is not None]


def _channel_percentiles(act, channels: int, percentile: float) -> tuple[np.ndarray, np.ndarray]:
    """(percentile of each channel's positive activations, channels that never fire)."""
    values = _f32(act).reshape(-1, channels)
    per, empty = np.zeros(channels, np.float64), np.zeros(channels, bool)
    for c in range(channels):
        column = values[:, c]
        positive = column[column > 0]
        if positive.size:
            per[c] = _percentile(positive, percentile)
        else:
            empty[c] = True
    return per, empty


def _channel_factors(per: np.ndarray, empty: np.ndarray, lam: float) -> np.ndarray:
    """Per-channel scales relative to the layer's lambda (lambda itself for a silent channel)."""
    per = per.copy()
    per[empty] = lam
    return per / lam


def channel_scales(network: nw.Network, acts: dict, scales: dict, percentile: float) -> dict:
    """One scale per output channel for every layer that can take it: the ``percentile`` of the
    channel's positive ANN activations (the layer's lambda for a channel that never fires), as
    factors relative to the layer's lambda. Layers left out keep one lambda: the output layer
    (its argmax needs one scale), layers with a ReLU cap, producers of a Concatenate, and layers
    read by a join, an average pool or a reshape. (``acts``: ``forward``'s; ``normalize_channelwise``
    streams them instead.)"""
    out = {}
    for name in _channel_layers(network):
        channels = network.layers[network.index(name)].output_shape[-1]
        out[name] = _channel_factors(*_channel_percentiles(acts[name], channels, percentile), scales[name])
    return out


def apply_channel_scales(network: nw.Network, factors: dict) -> None:
    """Divide each listed layer's output channel c by ``factors[name][c]`` (its weights' and
    bias' column c) and multiply the reading weights of that channel by it: the network computes
    the same function, each channel now spanning [0, 1] on its own percentile."""
    for name, f in factors.items():
        layer = next(la for la in network.layers if la.name == name)
        layer.weights = (layer.weights.astype(np.float64) / f).astype(np.float32)
        layer.bias = (layer.bias.astype(np.float64) / f).astype(np.float32)
        for sink in _channel_sinks(network, name):
            w = sink.weights.astype(np.float64)
            if sink.kind == nw.DENSE:  # its input flattened NHWC: channel = index % C
                w = w * np.resize(f, w.shape[0])[:, None]
            else:  # conv2d (kh, kw, in, out), depthwise (kh, kw, in, mult)
                w = w * f[None, None, :, None]
            sink.weights = w.astype(np.float32)


def normalize_channelwise(network: nw.Network, x_sample, percentile: float = 99.9, on_progress=None) -> nw.Network:
    """``normalize``, then one scale per output channel where the graph allows it (Kim et al.
    2020, Spiking-YOLO's channel-wise normalization): a channel whose activations stay far
    below its layer's lambda fires at a useful rate instead of a trickle. One streamed forward
    pass gives both the layers' lambdas and the channels' percentiles."""
    _check_arguments(network, "workbench", percentile)
    out, per_channel = _normalize(network, x_sample, percentile, on_progress, "workbench",
                                  channel_layers=_channel_layers(network))
    factors = {name: _channel_factors(per, empty, out.scales[name]) for name, (per, empty) in per_channel.items()}
    apply_channel_scales(out, factors)
    out.normalization = {**out.normalization, "method": f"{METHOD}+{CHANNEL_METHOD}",
                         "channel_scales": {k: [float(v) for v in f] for k, f in factors.items()}}
    return out
