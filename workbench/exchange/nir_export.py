"""Export a converted SNN to NIR (the Neuromorphic Intermediate Representation, ``nir`` package).

What maps, and how (NIR tensors are channels-first (C, H, W), without the batch axis):
- input            -> ``nir.Input`` of shape (C, H, W) or (N,). Under the constant encoder the
                      input carries the pixel VALUE every step (a current), not spikes.
- dense            -> ``nir.Affine`` (weight (out, in) = W.T * s, bias b) + ``nir.IF``
- conv2d           -> ``nir.Conv2d`` (weight (out, in, kh, kw) = transposed kernel * s, integer
                      padding (top, left)) + ``nir.IF``; asymmetric TF 'same' padding is refused
- depthwise_conv2d -> ``nir.Conv2d`` with groups = in channels, then ``nir.IF``
- avg_pool2d       -> ``nir.AvgPool2d`` (valid padding only) + ``nir.IF`` with r = scale * s
- flatten          -> ``nir.Flatten`` (start_dim 0). The following dense layer's input columns
                      are permuted from our channels-last order to NIR's channels-first order.
where s is the value one spike of the previous layer carries (threshold/dt for IF; 1 for the
input) and ``nir.IF`` gets r = 1 (or the pooling scale), v_threshold = threshold, v_reset = 0,
so that with the same dt, ``v += dt * r * I`` is our ``v += dt * J``.

Approximations (exported with a warning):
- NIR's IF fires when v > v_threshold (strict); ours when v >= threshold.
- (refused with ``strict=True``) NIR's IF resets to v_reset; our default reset by subtraction (and modulo) cannot be expressed.
  The node's metadata keeps ``{"reset": "subtract"}`` for readers that honour it.
Refused (``NIRExportError`` naming the layer): max pooling (INIsim's spiking max pooling by
cumulative counts has no NIR node), global average pooling, add, concatenate, reshape, zero
padding, standalone activations, neuron models other than IF.
"""

from __future__ import annotations

import warnings

import numpy as np

from workbench.engine.config import SimConfig
from workbench.exchange.export_params import ExportError
from workbench.engine.synapses import same_padding
from workbench.models import network as nw


class NIRExportError(ExportError):
    """The network holds something NIR cannot express; the message names the layer."""


class NIRApproximationWarning(UserWarning):
    """Exported, but the NIR graph does not reproduce our semantics exactly."""


def _chw(shape) -> np.ndarray:
    return np.array([shape[2], shape[0], shape[1]] if len(shape) == 3 else list(shape))


def _padding(layer: nw.Layer, in_shape, kernel, strides) -> tuple[int, int]:
    if layer.config.get("padding", "valid") != "same":
        return 0, 0
    pads = [same_padding(in_shape[k], kernel[k], strides[k]) for k in range(2)]
    if any(a != b for a, b in pads):
        raise NIRExportError(f"layer '{layer.name}': TF 'same' padding is asymmetric here {pads} "
                             "(extra row/column at the bottom/right); NIR padding is symmetric")
    return pads[0][0], pads[1][0]


def build_graph(network: nw.Network, config: SimConfig | None = None, strict: bool = False):
    """(nir.NIRGraph, [approximation messages]) for ``network`` under ``config``."""
    import nir

    config = config or SimConfig()
    dt = config.effective_dt
    nodes, edges, notes = {}, [], []
    out_node = {}  # layer name -> NIR node producing its output
    spike_value = {}  # layer name -> value one unit of its output carries in our engine
    channels_last_flat = {}  # layer name -> shape (H, W, C) it flattened, for the next dense layer
    for layer in network.layers:
        name, kind = layer.name, layer.kind
        src = layer.inbound[0] if layer.inbound else None
        in_shape = network[src].output_shape if src else None
        if kind == nw.INPUT:
            nodes[name] = nir.Input(input_type={"input": _chw(layer.output_shape)})
            out_node[name], spike_value[name] = name, 1.0
            continue
        if len(layer.inbound) != 1 or kind not in (nw.DENSE, nw.CONV2D, nw.DEPTHWISE_CONV2D, nw.AVG_POOL2D,
                                                   nw.FLATTEN):
            what = "max pooling by cumulative spike counts (INIsim) has no NIR node" if kind == nw.MAX_POOL2D \
                else f"'{kind}' layers are not exported to NIR"
            raise NIRExportError(f"layer '{name}' ({layer.source_type or kind}): {what}")
        s = spike_value[src]
        if kind == nw.FLATTEN:
            if len(in_shape) == 3:
                channels_last_flat[name] = in_shape
            nodes[name] = nir.Flatten(input_type={"input": _chw(in_shape)}, start_dim=0)
            edges.append((out_node[src], name))
            out_node[name], spike_value[name] = name, s
            continue
        r = 1.0
        if kind == nw.DENSE:
            w = layer.weights.T * np.float32(s)  # (out, in), our input order
            if src in channels_last_flat:
                h, wd, c = channels_last_flat[src]
                # NIR flat index (c, y, x) <- our flat index (y, x, c)
                order = np.arange(h * wd * c).reshape(h, wd, c).transpose(2, 0, 1).reshape(-1)
                w = w[:, order]
            nodes[name] = nir.Affine(weight=np.ascontiguousarray(w, np.float32), bias=layer.bias.copy())
        elif kind in (nw.CONV2D, nw.DEPTHWISE_CONV2D):
            kh, kw = layer.weights.shape[:2]
            strides = tuple(layer.config["strides"])
            pad = _padding(layer, in_shape, (kh, kw), strides)
            if kind == nw.CONV2D:
                w = layer.weights.transpose(3, 2, 0, 1)
                groups = 1
            else:
                cin, mult = layer.weights.shape[2:]
                w = layer.weights.transpose(2, 3, 0, 1).reshape(cin * mult, 1, kh, kw)
                groups = cin
            nodes[name] = nir.Conv2d(input_shape=tuple(in_shape[:2]), weight=np.ascontiguousarray(w * np.float32(s)),
                                     stride=strides, padding=pad, dilation=1, groups=groups, bias=layer.bias.copy())
        else:  # average pooling
            cfg = layer.config
            pool = tuple(cfg["pool_size"])
            strides = tuple(cfg.get("strides") or pool)
            if cfg.get("padding", "valid") == "same" and any(
                    same_padding(in_shape[k], pool[k], strides[k]) != (0, 0) for k in range(2)):
                raise NIRExportError(f"layer '{name}': average pooling with padding excludes the padding from "
                                     "the mean (Keras); NIR's AvgPool2d does not say how it counts padding")
            nodes[name] = nir.AvgPool2d(kernel_size=np.array(pool), stride=np.array(strides), padding=np.array([0, 0]))
            r = float((cfg.get("input_scales") or [1.0])[0]) * s
        model = config.model_for(name)
        if model.name != "if":
            raise NIRExportError(f"layer '{name}': neuron model '{model.name}' is not exported to NIR (only 'if')")
        shape = _chw(layer.output_shape)
        neuron = f"{name}.if"
        if getattr(model, "v_init", 0.0) or getattr(model, "burst", 1) != 1:
            raise NIRExportError(f"layer '{name}': NIR's IF has no initial membrane or burst spikes "
                                 "(the 'half' and 'burstN' remedies); export without them")
        meta = {"reset": model.reset, "threshold_comparison": ">=", "dt": dt}
        nodes[neuron] = nir.IF(r=np.full(shape, r, np.float32), v_threshold=np.full(shape, model.threshold, np.float32),
                               v_reset=np.zeros(shape, np.float32), metadata=meta)
        notes.append(f"layer '{name}': NIR IF fires on v > threshold, ours on v >= threshold")
        if model.reset != "zero":
            notes.append(f"layer '{name}': reset '{model.reset}' exported as reset to zero (v_reset = 0)")
        edges += [(out_node[src], name), (name, neuron)]
        out_node[name], spike_value[name] = neuron, float(model.output_scale(dt))
    last = network.output_layer.name
    output = "output"
    while output in nodes:  # a layer may itself be called 'output' (the demo's is)
        output = "_" + output
    nodes[output] = nir.Output(output_type={"output": _chw(network.output_layer.output_shape)})
    edges.append((out_node[last], output))
    try:
        graph = nir.NIRGraph(nodes=nodes, edges=edges, metadata={
            "source": "snn-workbench", "network": network.name, "network_sha256": network.fingerprint(), "dt": dt,
            "encoder": config.encoder, "layout": "channels_first (NIR)"})
    except ValueError as exc:  # nir's own type check: a bug of ours, but say it in one line
        raise NIRExportError(f"network '{network.name}': the NIR graph does not type-check ({exc})") from None
    resets = [n for n in notes if "reset" in n]
    if strict and resets:
        raise NIRExportError("; ".join(resets[:3]) + " (strict export refuses this approximation; "
                             "use reset='zero')")
    return graph, notes


def export_nir(network: nw.Network, config: SimConfig | None, path, strict: bool = False) -> list[str]:
    """Write ``network`` as a NIR file (HDF5) at ``path`` atomically; returns the approximation
    notes (also issued as ``NIRApproximationWarning``, one summary warning)."""
    import nir

    from workbench.atomic import atomic_path

    graph, notes = build_graph(network, config, strict)
    with atomic_path(path) as tmp:
        nir.write(str(tmp), graph)
    if notes:
        warnings.warn(f"NIR export of '{network.name}' is approximate: " + "; ".join(sorted(set(
            n.split(": ", 1)[1] for n in notes))), NIRApproximationWarning, stacklevel=2)
    return notes
