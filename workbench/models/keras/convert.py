"""Translate each Keras layer record into a ``Layer``, or into a marker the fold pass resolves.

Only settings we can simulate exactly are accepted; anything else becomes an ``unsupported``
marker whose text says what is wrong ("Conv2D with dilation_rate (2, 2)"), so the user sees every
offending layer in one error. Framework-free: it reads ``RawNode`` records, never Keras objects.
"""

from __future__ import annotations


import numpy as np

from workbench.models import network as nw
from workbench.models.graph.pending import Pending
from workbench.models.keras.graph import RawNode

NOOP_TYPES = frozenset({
    "Dropout", "GaussianNoise", "GaussianDropout", "AlphaDropout", "SpatialDropout1D",
    "SpatialDropout2D", "SpatialDropout3D", "ActivityRegularization", "Identity",
})
ACTIVATION_ALIASES = {None: "linear", "linear": "linear", "relu": "relu", "softmax": "softmax",
                      "tanh": "tanh", "sigmoid": "sigmoid"}
NEEDS_INPUT_SCALES = frozenset({nw.AVG_POOL2D, nw.GLOBAL_AVG_POOL2D, nw.ACTIVATION, nw.ADD})


class _Refuse(Exception):
    """Raised inside a translator: the message describes the unsupported setting."""


def map_activation(spec) -> tuple[str, dict]:
    """A Keras activation spec (string, None or serialized dict) as (name, params)."""
    if isinstance(spec, dict):
        spec = spec.get("config", {}).get("name", spec.get("class_name"))
    if spec == "relu6":
        return "relu", {"max_value": 6.0}
    if spec in ACTIVATION_ALIASES:
        return ACTIVATION_ALIASES[spec], {}
    raise _Refuse(f"activation '{spec}'")


def _pair(value) -> list[int]:
    value = [value, value] if isinstance(value, int) else list(value)
    return [int(v) for v in value]


def _check(cond: bool, what: str) -> None:
    if not cond:
        raise _Refuse(what)


def _channels_last(cfg: dict) -> None:
    _check(cfg.get("data_format", "channels_last") in (None, "channels_last"), "data_format channels_first")


def _conv_config(cfg: dict) -> dict:
    _channels_last(cfg)
    dilation = _pair(cfg.get("dilation_rate", 1))
    _check(dilation == [1, 1], f"dilation_rate {tuple(dilation)}")
    _check(cfg.get("groups", 1) == 1, f"groups={cfg.get('groups')}")
    _check(cfg["padding"] in ("same", "valid"), f"padding '{cfg['padding']}'")
    return {"strides": _pair(cfg["strides"]), "padding": cfg["padding"]}


def _weighted(node: RawNode, kind: str, config: dict) -> nw.Layer:
    activation, params = map_activation(node.config.get("activation"))
    kernel = node.weights[0]
    bias = node.weights[1] if node.config.get("use_bias", True) else None
    if bias is None:  # always carry a bias: batchnorm folding and the engine both want one
        bias = np.zeros(node.output_shape[-1], dtype=np.float32)
    return nw.Layer(node.name, kind, node.output_shape, node.inbound, kernel, bias,
                    activation, params, config)


def _pool_config(cfg: dict) -> dict:
    _channels_last(cfg)
    _check(cfg["padding"] in ("same", "valid"), f"padding '{cfg['padding']}'")
    size = _pair(cfg["pool_size"])
    strides = size if cfg.get("strides") is None else _pair(cfg["strides"])
    return {"pool_size": size, "strides": strides, "padding": cfg["padding"]}


def _batchnorm(node: RawNode) -> Pending:
    cfg = node.config
    axis = cfg.get("axis", -1)
    axis = axis[0] if isinstance(axis, (list, tuple)) and len(axis) == 1 else axis
    rank = len(node.output_shape) + 1
    _check(isinstance(axis, int) and axis % rank == rank - 1, f"axis {axis} (only the last axis folds)")
    weights = list(node.weights)
    gamma = weights.pop(0) if cfg.get("scale", True) else 1.0
    beta = weights.pop(0) if cfg.get("center", True) else 0.0
    mean, var = weights[0].astype(np.float64), weights[1].astype(np.float64)
    scale = np.asarray(gamma, np.float64) / np.sqrt(var + float(cfg.get("epsilon", 1e-3)))
    shift = np.asarray(beta, np.float64) - mean * scale
    return Pending(node.name, "batchnorm", tuple(node.inbound), node.type_name, scale, shift)


def _activation_layer(node: RawNode, activation: str, params: dict):
    if activation == "linear" and not params:
        return Pending(node.name, "noop", tuple(node.inbound), node.type_name)
    return nw.Layer(node.name, nw.ACTIVATION, node.output_shape, node.inbound,
                    activation=activation, activation_params=params)


def _relu(node: RawNode):
    cfg = node.config
    _check(not cfg.get("negative_slope"), f"negative_slope {cfg.get('negative_slope')}")
    _check(not cfg.get("threshold"), f"threshold {cfg.get('threshold')}")
    max_value = cfg.get("max_value")
    return _activation_layer(node, "relu", {} if max_value is None else {"max_value": float(max_value)})


def _softmax(node: RawNode):
    axis = node.config.get("axis", -1)
    rank = len(node.output_shape) + 1
    _check(isinstance(axis, int) and axis % rank == rank - 1, f"axis {axis}")
    return _activation_layer(node, "softmax", {})


def _concatenate(node: RawNode) -> nw.Layer:
    rank = len(node.output_shape) + 1
    axis = int(node.config.get("axis", -1)) % rank
    _check(axis != 0, "concatenation along the batch axis")
    return nw.Layer(node.name, nw.CONCATENATE, node.output_shape, node.inbound, config={"axis": axis - 1})


def _plain(node: RawNode, kind: str, config: dict | None = None) -> nw.Layer:
    return nw.Layer(node.name, kind, node.output_shape, node.inbound, config=config or {})


def _translate(node: RawNode):
    cfg, t = node.config, node.type_name
    if t in NOOP_TYPES:
        return Pending(node.name, "noop", tuple(node.inbound), t)
    if t == "InputLayer":
        return _plain(node, nw.INPUT)
    if t == "Dense":
        # The engine's dense synapses take a flat input; Keras would apply the kernel along
        # the last axis of a higher-rank tensor, which we do not simulate.
        _check(len(node.output_shape) == 1, f"Dense on a rank-{len(node.output_shape) + 1} tensor (flatten first)")
        return _weighted(node, nw.DENSE, {})
    if t == "Conv2D":
        return _weighted(node, nw.CONV2D, _conv_config(cfg))
    if t == "DepthwiseConv2D":
        config = _conv_config(cfg) | {"depth_multiplier": int(cfg.get("depth_multiplier", 1))}
        return _weighted(node, nw.DEPTHWISE_CONV2D, config)
    if t == "MaxPooling2D":
        return _plain(node, nw.MAX_POOL2D, _pool_config(cfg))
    if t == "AveragePooling2D":
        return _plain(node, nw.AVG_POOL2D, _pool_config(cfg))
    if t == "GlobalAveragePooling2D":
        _channels_last(cfg)
        _check(not cfg.get("keepdims", False), "keepdims=True")
        return _plain(node, nw.GLOBAL_AVG_POOL2D)
    if t == "Flatten":
        _channels_last(cfg)
        return _plain(node, nw.FLATTEN)
    if t == "Reshape":
        return _plain(node, nw.RESHAPE, {"target_shape": list(node.output_shape)})
    if t == "ZeroPadding2D":
        _channels_last(cfg)
        return _plain(node, nw.ZERO_PAD2D, {"padding": [_pair(p) for p in cfg["padding"]]})
    if t == "Add":
        return _plain(node, nw.ADD)
    if t == "Concatenate":
        return _concatenate(node)
    if t == "BatchNormalization":
        return _batchnorm(node)
    if t == "Activation":
        return _activation_layer(node, *map_activation(cfg.get("activation")))
    if t == "ReLU":
        return _relu(node)
    if t == "Softmax":
        return _softmax(node)
    raise _Refuse("")


def translate(node: RawNode):
    """A ``Layer`` or ``Pending`` for one Keras layer; unsupported settings become a marker."""
    try:
        if not node.is_layer:
            raise _Refuse("")
        item = _translate(node)
    except _Refuse as why:
        text = f"{node.type_name} with {why}" if str(why) else node.type_name
        return Pending(node.name, "unsupported", tuple(node.inbound), text)
    if isinstance(item, nw.Layer):
        item.source_type = node.type_name
        if item.kind in NEEDS_INPUT_SCALES:
            item.config["input_scales"] = [1.0] * len(item.inbound)
    return item
