"""Import an ``.onnx`` model file as a framework-free ``Network`` (channels-last, float32).

The path: ``reader.read_model`` (parse and check), ``lower.lower`` (nodes -> Layer / Pending),
``models.graph.fold`` (the clean-up shared with the Keras importer: no-ops dropped, BatchNorm
folded, activations merged) and the network's own shape check. Every unsupported node is named
in one ``UnsupportedLayerError``; every other failure is a one-line ``ModelImportError``.
Layers carry ``config['folded']`` / ``config['removed']`` as from Keras: the ONNX nodes merged in.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from workbench.errors import ModelImportError, UnsupportedLayerError
from workbench.models import network as nw
from workbench.models.graph.fold import fold
from workbench.models.onnx.lower import Lowered, lower
from workbench.models.onnx.reader import Parsed, read_model
from workbench.models.shape_check import shape_problems


def lowered_network(parsed: Parsed, source: dict | None = None) -> tuple[nw.Network, Lowered]:
    """The network and what lowering knew (which ONNX tensor each item matches, for verify)."""
    label = parsed.label
    lowered = lower(parsed)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        items, unsupported = fold(list(lowered.items))
    if unsupported:
        raise UnsupportedLayerError(label, unsupported)
    bad = [f"'{i.name}'" for i in items
           if any(a is not None and not np.isfinite(a).all() for a in (i.weights, i.bias))]
    if bad:
        raise ModelImportError(f"{label}: NaN or Inf weights (after folding) in layer(s) {', '.join(bad)} "
                               "(a BatchNormalization with a negative variance?)")
    folded_into = {m: layer.name for layer in items
                   for m in layer.config.get("folded", []) + layer.config.get("removed", [])}
    out = folded_into.get(lowered.output_item, lowered.output_item)
    layers = [i for i in items if i.name != out] + [i for i in items if i.name == out]
    name = Path(label).stem
    try:
        network = nw.Network(name, layers, source=dict(source or {}))
    except ValueError as exc:
        raise ModelImportError(f"{label}: cannot build the network: {exc}") from None
    problems = shape_problems(network)
    if problems:
        raise ModelImportError(f"{label}: {problems[0]}")
    return network, lowered


def load_onnx(path: str | os.PathLike) -> nw.Network:
    """Read an ``.onnx`` file as a ``Network``; ``source['input_layout']`` says how the file
    takes its input (NCHW images are fed to our channels-last input transposed)."""
    path = Path(path)
    parsed = read_model(path)
    source = {"file": path.name, "sha256": nw.file_sha256(path), "format": "onnx"}
    network, lowered = lowered_network(parsed, source)
    network.source["input_layout"] = {4: "NCHW" if lowered.input_tensor.axes != (0, 1, 2, 3) else "NHWC",
                                      2: "flat"}[len(parsed.input_shape)]
    return network
