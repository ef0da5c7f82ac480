"""Reference activations from onnxruntime, per layer, for ``verify model.onnx``.

The model is read and lowered again (the same path as the import) to learn which ONNX tensor
each layer's output equals (for a layer that absorbed BatchNorm or an activation, the last node
folded in: the "fused point"). Those tensors are added to the graph's outputs, onnxruntime runs
the batch once, and each array is brought into our channels-last layout (the flatten order too).
The comparison itself is ``models.verify.checks_against_reference``, as for Keras.
"""

from __future__ import annotations

import os

import numpy as np

from workbench.errors import ModelImportError
from workbench.models import network as nw
from workbench.models.onnx.importer import lowered_network
from workbench.models.onnx.reader import read_model
from workbench.models.verify import DEFAULT_TOL, checks_against_reference, fused_point, report_checks


def reference_activations(path: str | os.PathLike, x) -> tuple[nw.Network, dict]:
    """``(network, {layer name: (onnx tensor, activations or None)})`` for the batch ``x``
    (channels-last, as our forward pass takes it)."""
    import onnxruntime as ort
    from onnx import TensorProto, helper

    parsed = read_model(path)
    network, lowered = lowered_network(parsed)
    wanted = {}
    for layer in network.layers:
        point = lowered.points.get(fused_point(layer))
        if point is not None:
            wanted[layer.name] = point
    graph = parsed.model.graph
    have = {o.name for o in graph.output}
    for tensor, _ in {p[0]: p for p in wanted.values()}.values():
        if tensor not in have:
            graph.output.append(helper.make_tensor_value_info(tensor, TensorProto.FLOAT, None))
            have.add(tensor)
    names = sorted({p[0] for p in wanted.values()})
    try:
        session = ort.InferenceSession(parsed.model.SerializeToString(), providers=["CPUExecutionProvider"])
    except Exception as exc:  # boundary to onnxruntime
        raise ModelImportError(f"{parsed.label}: onnxruntime cannot load the model: {str(exc).splitlines()[0]}") from None
    x = np.asarray(x, np.float32)
    inv = np.argsort(lowered.input_tensor.axes)
    x_onnx = np.ascontiguousarray(np.transpose(x, inv))  # back to the file's own input layout
    step = parsed.batch or len(x)
    try:
        parts = [session.run(names, {parsed.input_name: x_onnx[i : i + step]}) for i in range(0, len(x), step)]
    except Exception as exc:  # boundary to onnxruntime
        raise ModelImportError(f"{parsed.label}: onnxruntime cannot run the model: {str(exc).splitlines()[0]}") from None
    outs = {n: np.concatenate([p[k] for p in parts]) for k, n in enumerate(names)}
    reference = {}
    for layer in network.layers:
        tensor, t = wanted.get(layer.name, (fused_point(layer), None))
        reference[layer.name] = (tensor, None if t is None else t.to_ours(outs[tensor]))
    return network, reference


def verify_onnx(path: str | os.PathLike, x, tol: float = DEFAULT_TOL) -> list:
    """Per-layer checks of our import of ``path`` against onnxruntime on ``x`` (channels-last)."""
    network, reference = reference_activations(path, x)
    return checks_against_reference(network, x, reference, tol, "ONNX")


def verify_onnx_report(path: str | os.PathLike, x, tol: float = DEFAULT_TOL) -> tuple[bool, str]:
    """``(all layers within tol, table + summary)`` for ``snn-workbench verify model.onnx``."""
    return report_checks(verify_onnx(path, x, tol), len(x), tol, "ONNX")
