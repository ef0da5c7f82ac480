"""Read a loaded Keras model's graph into plain records, and run Keras to get per-layer outputs.

This is the only place that walks Keras' internal graph (``KerasTensor._keras_history``). It walks
backwards from the single output tensor, so a Sequential model (whose layers Keras rebuilds with
several inbound nodes on load) and a functional model look the same, and layers that do not feed
the output are ignored. Keras is imported lazily: this module is cheap to import.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from workbench.errors import ModelImportError


@dataclass
class RawNode:
    """One Keras layer as plain data: what the converter needs, nothing framework-specific."""

    name: str
    type_name: str
    config: dict
    weights: list[np.ndarray]
    inbound: list[str]
    output_shape: tuple
    is_layer: bool = True  # False for bare keras.ops operations and nested models
    extra: dict = field(default_factory=dict)


def _single(tensors, what: str, label: str):
    tensors = list(tensors) if isinstance(tensors, (list, tuple)) else [tensors]
    if len(tensors) != 1:
        raise ModelImportError(f"{label}: the model has {len(tensors)} {what}s; exactly one is supported")
    return tensors[0]


def _walk(model, label: str):
    """Yield ``(operation, node, tensor)`` in topological order (post-order from the output)."""
    _single(model.inputs, "input", label)
    out = _single(model.outputs, "output", label)
    order, node_of = [], {}
    stack = [(out, False)]
    while stack:  # iterative post-order DFS: deep models must not hit the recursion limit
        tensor, expanded = stack.pop()
        op, node_index, _ = tensor._keras_history
        if expanded:
            order.append((op, op._inbound_nodes[node_index], tensor))
            continue
        if id(op) in node_of:
            if node_of[id(op)] != node_index:
                raise ModelImportError(
                    f"{label}: layer '{op.name}' is called more than once (shared weights); "
                    "give each use its own layer"
                )
            continue
        node_of[id(op)] = node_index
        node = op._inbound_nodes[node_index]
        if len(node.outputs) != 1:
            raise ModelImportError(f"{label}: layer '{op.name}' has several outputs; not supported")
        stack.append((tensor, True))
        for parent in reversed(node.arguments.keras_tensors):
            stack.append((parent, False))
    return order


def _per_sample_shape(tensor, name: str, label: str) -> tuple:
    shape = tuple(tensor.shape[1:])
    if any(d is None for d in shape):
        raise ModelImportError(
            f"{label}: layer '{name}' has an undefined dimension in its output shape {shape}; "
            "give the model a fixed input shape"
        )
    return tuple(int(d) for d in shape)


def extract(model, label: str) -> list[RawNode]:
    """The model's layers that feed its output, as ``RawNode`` records in topological order."""
    from workbench.models.keras import import_keras

    keras = import_keras()
    nodes = []
    for op, node, tensor in _walk(model, label):
        is_layer = isinstance(op, keras.layers.Layer) and not isinstance(op, keras.Model)
        type_name = type(op).__name__
        if isinstance(op, keras.Model):
            type_name = f"{type_name} (nested model; build the model flat)"
        elif not isinstance(op, keras.layers.Layer):
            type_name = f"{type_name} (keras.ops operation)"
        nodes.append(
            RawNode(
                name=op.name,
                type_name=type_name,
                config=op.get_config() if is_layer else {},
                weights=[np.asarray(w) for w in op.get_weights()] if is_layer else [],
                inbound=[t._keras_history[0].name for t in node.arguments.keras_tensors],
                output_shape=_per_sample_shape(tensor, op.name, label),
                is_layer=is_layer,
                extra={"input_shapes": [tuple(t.shape[1:]) for t in node.arguments.keras_tensors]},
            )
        )
    return nodes


def layer_names(model) -> list[str]:
    """Names of the layers that feed the model's output, in topological order."""
    return [op.name for op, _, _ in _walk(model, model.name)]


def layer_outputs(model, names: list[str], x: np.ndarray, batch_size: int = 256) -> dict:
    """Keras' own inference outputs of the named layers for the batch ``x``."""
    from workbench.models.keras import import_keras

    keras = import_keras()
    tensors = {op.name: tensor for op, _, tensor in _walk(model, model.name)}
    missing = [n for n in names if n not in tensors]
    if missing:
        raise KeyError(f"not layers of the Keras model: {missing}")
    probe = keras.Model(model.inputs, [tensors[n] for n in names])
    outs = probe.predict(np.asarray(x, dtype=np.float32), batch_size=batch_size, verbose=0)
    if len(names) == 1:
        outs = [outs]
    return {n: np.asarray(o) for n, o in zip(names, outs)}
