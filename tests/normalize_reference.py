"""The all-at-once normalization as it was before ``forward_stream`` (every layer's activations
over all samples held, as float32 copies, then the lambdas): the slow reference the streamed
``normalize`` must match bit for bit. Test helper only; the formulas are kept verbatim."""

from __future__ import annotations

import numpy as np

from workbench.models import network as nw
from workbench.models.forward import _check_input, activation_fn, preactivation
from workbench.models.normalize import (
    CHANNEL_METHOD,
    METHOD,
    SCALED_INPUT_KINDS,
    SNNTOOLBOX_METHOD,
    _channel_sinks,
    _Groups,
    apply_channel_scales,
)


def apply_scales(network: nw.Network, scales: dict) -> None:
    for layer in network.layers:
        lam = scales[layer.name]
        if layer.kind in nw.WEIGHTED_KINDS:
            lam_prev = scales[layer.inbound[0]]
            layer.weights = (layer.weights.astype(np.float64) * (lam_prev / lam)).astype(np.float32)
            layer.bias = (layer.bias.astype(np.float64) / lam).astype(np.float32)
        elif layer.kind in SCALED_INPUT_KINDS:
            layer.config["input_scales"] = [scales[s] / lam for s in layer.inbound]
        if "max_value" in layer.activation_params:
            layer.activation_params["max_value"] = float(layer.activation_params["max_value"]) / lam


def forward_all(network: nw.Network, x) -> dict[str, np.ndarray]:
    acts = {}
    for layer in network.layers:
        if layer.kind == nw.INPUT:
            acts[layer.name] = _check_input(network, x)
        else:
            z = preactivation(layer, [acts[s] for s in layer.inbound])
            acts[layer.name] = activation_fn(layer.activation, layer.activation_params)(z)
    return {name: a.astype(np.float32) for name, a in acts.items()}


def _layer_lambda(layer, acts, percentile, warnings) -> float:
    values = acts[layer.name]
    if layer.activation == "softmax":
        values = preactivation(layer, [acts[s].astype(np.float64) for s in layer.inbound])
    elif layer.activation in ("tanh", "sigmoid"):
        return 1.0
    positive = values[values > 0]
    lam = float(np.percentile(positive, percentile)) if positive.size else 0.0
    if not lam > 0:
        warnings.append(f"{layer.name}: no positive activation on the sample; lambda set to 1")
        lam = 1.0
    cap = layer.activation_params.get("max_value") if layer.activation == "relu" else None
    if cap is not None and float(cap) > 0:
        lam = min(lam, float(cap))
    return lam


def compute_scales(network, acts, percentile, warnings) -> dict:
    raw, groups, input_name = {}, _Groups(), network.input_layer.name
    for layer in network.layers:
        if layer.kind == nw.INPUT:
            raw[layer.name] = 1.0
        elif layer.is_neuron_layer:
            raw[layer.name] = _layer_lambda(layer, acts, percentile, warnings)
        else:
            for src in layer.inbound:
                groups.union(src, layer.name)
    members: dict[str, list[str]] = {}
    for name in raw:
        members.setdefault(groups.find(name), []).append(name)
    shared = {}
    for root, names in members.items():
        if input_name in names:
            if len(names) > 1:
                warnings.append(f"{', '.join(n for n in names if n != input_name)}: concatenated "
                                "with the input, so left unnormalized (lambda 1)")
            shared[root] = 1.0
        else:
            shared[root] = max(raw[n] for n in names)
    return {layer.name: shared[groups.find(layer.name)] for layer in network.layers}


def snntoolbox_scales(network, acts, percentile, warnings) -> dict:
    scales: dict[str, float] = {}
    for layer in network.layers:
        if layer.kind == nw.INPUT:
            lam = 1.0
        elif layer.kind in nw.WEIGHTED_KINDS:
            if layer.activation == "softmax":
                lam = 1.0
            else:
                values = acts[layer.name]
                nonzero = values[values != 0]
                lam = float(np.percentile(nonzero, percentile)) if nonzero.size else 0.0
                if not lam > 0:
                    warnings.append(f"{layer.name}: no positive factor from the sample; factor set to 1")
                    lam = 1.0
        else:
            inbound = [scales[s] for s in layer.inbound]
            lam = max(inbound)
            assert min(inbound) == lam or layer.kind in SCALED_INPUT_KINDS
        scales[layer.name] = lam
    return scales


def channel_scales(network, acts, scales, percentile) -> dict:
    tied = {src for layer in network.layers if layer.kind == nw.CONCATENATE for src in layer.inbound}
    out = {}
    for layer in network.layers:
        if (layer.kind not in (nw.DENSE, nw.CONV2D) or layer is network.output_layer or layer.name in tied
                or layer.activation != "relu" or "max_value" in layer.activation_params):
            continue
        if _channel_sinks(network, layer.name) is None:
            continue
        channels = layer.output_shape[-1]
        values = acts[layer.name].reshape(-1, channels)
        lam = scales[layer.name]
        per = np.empty(channels, np.float64)
        for c in range(channels):
            positive = values[:, c][values[:, c] > 0]
            per[c] = float(np.percentile(positive, percentile)) if positive.size else lam
        out[layer.name] = per / lam
    return out


def normalize(network, x, percentile=99.9, rule="workbench", channelwise=False) -> nw.Network:
    acts = forward_all(network, np.asarray(x))
    warnings: list[str] = []
    if rule == "snntoolbox":
        scales = snntoolbox_scales(network, acts, percentile, warnings)
    else:
        scales = compute_scales(network, acts, percentile, warnings)
    out = network.copy()
    apply_scales(out, scales)
    out.scales = scales
    out.normalization = {"percentile": float(percentile), "n_samples": int(len(x)),
                         "method": SNNTOOLBOX_METHOD if rule == "snntoolbox" else METHOD, "warnings": warnings}
    if channelwise:
        factors = channel_scales(network, acts, scales, percentile)
        apply_channel_scales(out, factors)
        out.normalization = {**out.normalization, "method": f"{METHOD}+{CHANNEL_METHOD}",
                             "channel_scales": {k: [float(v) for v in f] for k, f in factors.items()}}
    return out
