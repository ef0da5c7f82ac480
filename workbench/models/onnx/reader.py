"""Parse an ``.onnx`` file and check it before anything is lowered or run.

Every refusal is one ``ModelImportError`` line naming the file and the node or tensor: not a
protobuf or truncated, opset below 11, not exactly one input, an input whose sizes other than the
batch are not fixed, a cycle, a tensor declaring more than ``MAX_TENSOR_ELEMENTS`` values, and
external data whose path leaves the model's folder (it is read by us, never by onnx, so a
``../`` or absolute path is refused before any file is opened).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from workbench.errors import ModelImportError

MIN_OPSET = 11
MAX_FILE_BYTES = 2**31 - 1  # protobuf's own limit for one message
MAX_TENSOR_ELEMENTS = 2**28  # 1 GiB of float32 in one tensor
FLOAT_TYPES = {1: "float32", 10: "float16", 11: "float64", 16: "bfloat16"}


@dataclass
class Parsed:
    """A checked model: ``nodes`` in topological order, constants as numpy arrays."""

    model: object  # onnx.ModelProto with external data read in
    label: str
    nodes: list
    consts: dict
    input_name: str
    input_shape: tuple  # with the batch axis (given as 1)
    batch: int | None  # a fixed batch size in the file, or None when it is symbolic
    output_name: str
    opset: int


def node_label(node, index: int) -> str:
    """How messages name a node: its name, else its first output, else its position."""
    name = node.name or (node.output[0] if len(node.output) and node.output[0] else f"#{index}")
    return name.decode("utf-8", "replace") if isinstance(name, bytes) else name


def _load_external(tensor, folder: Path, label: str) -> None:
    """Read ``tensor``'s external data from inside ``folder`` into ``raw_data``."""
    info = {e.key: e.value for e in tensor.external_data}
    where = f"{label}: initializer '{tensor.name}'"
    location = info.get("location", "")
    if not location:
        raise ModelImportError(f"{where}: external data without a location")
    root = folder.resolve()
    target = (root / location).resolve()
    if os.path.isabs(location) or not target.is_relative_to(root):
        raise ModelImportError(f"{where}: external data path '{location}' leaves the model's folder; refused")
    if not target.is_file():
        raise ModelImportError(f"{where}: external data file '{location}' not found next to the model")
    try:
        offset = int(info.get("offset", 0))
        length = int(info["length"]) if "length" in info else None
    except ValueError:
        raise ModelImportError(f"{where}: external data offset/length are not numbers") from None
    size = target.stat().st_size
    if length is None:
        length = size - offset
    if offset < 0 or length < 0 or offset + length > size:
        raise ModelImportError(f"{where}: external data range {offset}+{length} is outside '{location}' ({size} bytes)")
    if length > MAX_TENSOR_ELEMENTS * 8:
        raise ModelImportError(f"{where}: external data of {length} bytes is too large")
    with open(target, "rb") as fh:
        fh.seek(offset)
        tensor.raw_data = fh.read(length)
    del tensor.external_data[:]
    tensor.data_location = 0  # DEFAULT


def _check_size(tensor, where: str) -> None:
    dims = list(tensor.dims)
    if any(d < 0 for d in dims):
        raise ModelImportError(f"{where}: negative dimension in {dims}")
    if math.prod(dims) > MAX_TENSOR_ELEMENTS:
        raise ModelImportError(f"{where}: declares {math.prod(dims)} values ({dims}), more than the "
                               f"{MAX_TENSOR_ELEMENTS} allowed")


def to_array(tensor, where: str) -> np.ndarray:
    """A TensorProto as a numpy array; any inconsistency is the file's error."""
    from onnx import numpy_helper

    _check_size(tensor, where)
    try:
        arr = numpy_helper.to_array(tensor)
    except Exception as exc:  # boundary to onnx: a malformed tensor, whatever the exception
        raise ModelImportError(f"{where}: unreadable tensor ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})") from None
    if arr.dtype.kind == "f":
        arr = arr.astype(np.float64)
    return arr


def _tensors_in(model):
    """Every TensorProto that may hold data: initializers and Constant nodes' values."""
    for t in model.graph.initializer:
        yield t, f"initializer '{t.name}'"
    for i, node in enumerate(model.graph.node):
        for attr in node.attribute:
            if attr.HasField("t"):
                yield attr.t, f"node '{node_label(node, i)}' ({node.op_type})"


def _topological(nodes, known: set, label: str) -> list:
    """Nodes ordered so that each comes after the producers of its inputs; a cycle is refused."""
    producer = {}
    for i, node in enumerate(nodes):
        for out in node.output:
            if out:
                producer[out] = i
    deps = []
    for node in nodes:
        deps.append({producer[x] for x in node.input if x and x not in known and x in producer})
    order, state = [], [0] * len(nodes)  # 0 new, 1 on the stack, 2 done
    for start in range(len(nodes)):
        if state[start]:
            continue
        stack = [(start, iter(sorted(deps[start])))]
        state[start] = 1
        while stack:
            i, it = stack[-1]
            nxt = next(it, None)
            if nxt is None:
                stack.pop()
                state[i] = 2
                order.append(nodes[i])
            elif state[nxt] == 1:
                bad = nodes[nxt]
                raise ModelImportError(f"{label}: the graph has a cycle through node '{node_label(bad, nxt)}' ({bad.op_type})")
            elif state[nxt] == 0:
                state[nxt] = 1
                stack.append((nxt, iter(sorted(deps[nxt]))))
    return order


def _dims(value_info) -> list:
    tt = value_info.type.tensor_type
    if not tt.HasField("shape"):
        return []
    return [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in tt.shape.dim]


def read_model(path: str | os.PathLike) -> Parsed:
    """Parse and check ``path``; constants are read (external data from its folder only)."""
    path = Path(path)
    label = path.name
    if not path.is_file():
        raise ModelImportError(f"{label}: no such file ({path})")
    if path.stat().st_size > MAX_FILE_BYTES:
        raise ModelImportError(f"{label}: larger than 2 GiB; keep the weights in external data files")
    data = path.read_bytes()
    import onnx

    try:
        model = onnx.load_model_from_string(data)
    except Exception as exc:  # boundary to protobuf: any decode failure is the file's
        raise ModelImportError(f"{label}: not an ONNX model (the protobuf does not parse: "
                               f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}; corrupt or truncated?)") from None
    graph = model.graph
    if not graph.node or not graph.output:
        raise ModelImportError(f"{label}: not an ONNX model (no graph nodes or outputs; corrupt or truncated?)")
    opset = max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=0)
    if opset < MIN_OPSET:
        raise ModelImportError(f"{label}: opset {opset or 'missing'}; opsets {MIN_OPSET} and up are read "
                               "(re-export with a newer opset_version)")
    for tensor, where in _tensors_in(model):
        _check_size(tensor, f"{label}: {where}")
        if tensor.data_location == 1:  # EXTERNAL
            _load_external(tensor, path.parent, label)
    consts = {t.name: to_array(t, f"{label}: initializer '{t.name}'") for t in graph.initializer}
    inputs = [i for i in graph.input if i.name not in consts]
    if len(inputs) != 1:
        names = ", ".join(f"'{i.name}'" for i in inputs) or "none"
        raise ModelImportError(f"{label}: the model has {len(inputs)} inputs ({names}); exactly one is simulated")
    if len(graph.output) != 1:
        names = ", ".join(f"'{o.name}'" for o in graph.output)
        raise ModelImportError(f"{label}: the model has {len(graph.output)} outputs ({names}); exactly one is simulated")
    inp = inputs[0]
    elem = inp.type.tensor_type.elem_type
    if elem not in FLOAT_TYPES:
        raise ModelImportError(f"{label}: input '{inp.name}' has element type {elem}; the workbench feeds "
                               "float values (token ids, strings and booleans are not simulated)")
    dims = _dims(inp)
    if len(dims) not in (2, 4):
        raise ModelImportError(f"{label}: input '{inp.name}' has shape {dims or 'unknown'}; only images "
                               "(N, C, H, W) and vectors (N, features) can be fed")
    unfixed = [f"{d!r} (axis {i})" for i, d in enumerate(dims[1:], 1) if not isinstance(d, int) or d < 1]
    if unfixed:
        raise ModelImportError(f"{label}: input '{inp.name}' has dynamic size {', '.join(unfixed)} in shape "
                               f"{dims} that cannot be fixed; export with a fixed input size")
    batch = dims[0] if isinstance(dims[0], int) and dims[0] > 0 else None
    known = set(consts) | {inp.name}
    nodes = _topological(list(graph.node), known, label)
    return Parsed(model, label, nodes, consts, inp.name, (1, *dims[1:]), batch, graph.output[0].name, opset)
