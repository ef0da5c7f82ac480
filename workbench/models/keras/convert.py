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
    """Raised inside a translator: the message describes the unsupported setting; ``why`` keys
    ``WHY`` when the whole family cannot convert."""

    def __init__(self, what: str, why: str | None = None):
        super().__init__(what)
        self.why = why


# Why a family of layers has no rate-coded spiking equivalent, in a few words (one line each in
# the refusal, after the list of layers). Keyed by what ``_Refuse(..., why=KEY)`` names.
WHY = {
    "activation": "a neuron's firing rate is a rectified, rising function of its input: it stands for "
                  "ReLU, not for curves that dip below zero or bend back (silu, hard_silu, gelu, elu, ...)",
    "multiply": "spike trains can be summed by synapses but not multiplied by each other "
                "(squeeze-and-excitation and other gates)",
    "layernorm": "it divides by each sample's own mean and variance at run time, which no fixed synapse "
                 "weight can do",
    "groups": "grouped convolution: only depthwise grouping (one group per channel) is simulated",
}


def map_activation(spec) -> tuple[str, dict]:
    """A Keras activation spec (string, None or serialized dict) as (name, params)."""
    if isinstance(spec, dict):
        spec = spec.get("config", {}).get("name", spec.get("class_name"))
    if spec == "relu6":
        return "relu", {"max_value": 6.0}
    if spec in ACTIVATION_ALIASES:
        return ACTIVATION_ALIASES[spec], {}
    raise _Refuse(f"activation '{spec}'", why="activation")


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
    if cfg.get("groups", 1) != 1:
        raise _Refuse(f"groups={cfg.get('groups')}", why="groups")
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


def _separable(node: RawNode) -> list:
    """SeparableConv2D as a depthwise convolution ('<name>/depthwise', no bias, linear) followed
    by a pointwise 1x1 convolution that keeps the Keras name, bias and activation: BatchNorm and
    activations after it fold into the pointwise part."""
    cfg = node.config
    config = _conv_config(cfg)
    multiplier = int(cfg.get("depth_multiplier", 1))
    depthwise, pointwise = node.weights[0], node.weights[1]
    bias = node.weights[2] if cfg.get("use_bias", True) else np.zeros(node.output_shape[-1], np.float32)
    h, w = node.output_shape[:2]
    channels = depthwise.shape[2] * multiplier
    dw_name = f"{node.name}/depthwise"
    dw = nw.Layer(dw_name, nw.DEPTHWISE_CONV2D, (h, w, channels), node.inbound, depthwise,
                  np.zeros(channels, np.float32), config=config | {"depth_multiplier": multiplier})
    activation, params = map_activation(cfg.get("activation"))
    pw = nw.Layer(node.name, nw.CONV2D, node.output_shape, (dw_name,), pointwise, bias, activation, params,
                  {"strides": [1, 1], "padding": "valid"})
    return [dw, pw]


def _in_hw(node: RawNode) -> tuple[int, int]:
    shape = node.extra["input_shapes"][0]
    _check(len(shape) == 3, f"input of rank {len(shape) + 1}")
    return int(shape[0]), int(shape[1])


def _global_pool(node: RawNode, kind: str):
    """Global pooling as a pool over the whole image (output (1, 1, C)); without keepdims a
    Flatten after it, which keeps the Keras name ('<name>/pool' is the pool)."""
    cfg = node.config
    _channels_last(cfg)
    size = list(_in_hw(node))
    config = {"pool_size": size, "strides": size, "padding": "valid"}
    channels = node.output_shape[-1]
    if cfg.get("keepdims", False):
        return nw.Layer(node.name, kind, node.output_shape, node.inbound, config=config)
    pool = nw.Layer(f"{node.name}/pool", kind, (1, 1, channels), node.inbound, config=config)
    return [pool, nw.Layer(node.name, nw.FLATTEN, node.output_shape, (pool.name,))]


def _cropping(node: RawNode) -> nw.Layer:
    """Cropping2D as an exact depthwise 'valid' convolution whose kernel is one 1 at the crop's
    top-left offset (out[i, j] = x[i + top, j + left]); no layer kind of its own."""
    _channels_last(node.config)
    (top, bottom), (left, right) = [_pair(p) for p in node.config["cropping"]]
    channels = node.output_shape[-1]
    kernel = np.zeros((top + bottom + 1, left + right + 1, channels, 1), np.float32)
    kernel[top, left] = 1.0
    return nw.Layer(node.name, nw.DEPTHWISE_CONV2D, node.output_shape, node.inbound, kernel,
                    np.zeros(channels, np.float32),
                    config={"strides": [1, 1], "padding": "valid", "depth_multiplier": 1})


def _rescaling(node: RawNode) -> Pending:
    """Input preprocessing ``x * scale + offset``: an affine marker folded like a BatchNorm."""
    scale = np.asarray(node.config.get("scale", 1.0), np.float64).reshape(-1)
    offset = np.asarray(node.config.get("offset", 0.0), np.float64).reshape(-1)
    return Pending(node.name, "batchnorm", tuple(node.inbound), node.type_name, scale, offset)


def _normalization(node: RawNode) -> Pending:
    """``(x - mean) / max(sqrt(var), 1e-7)`` with the stored mean and variance, along the last axis."""
    cfg = node.config
    _check(not cfg.get("invert", False), "invert=True")
    axis = cfg.get("axis", -1)
    axis = tuple(axis) if isinstance(axis, (list, tuple)) else axis
    rank = len(node.output_shape) + 1
    _check(axis is None or axis in (-1, rank - 1, (-1,), (rank - 1,)), f"axis {axis} (only the last axis)")
    if cfg.get("mean") is not None:
        mean, var = cfg["mean"], cfg["variance"]
    else:
        _check(len(node.weights) >= 2, "no stored mean and variance (adapt it first)")
        mean, var = node.weights[0], node.weights[1]
    mean = np.asarray(mean, np.float64).reshape(-1)
    var = np.asarray(var, np.float64).reshape(-1)
    channels = node.output_shape[-1]
    _check(mean.size in (1, channels) and var.size in (1, channels), "mean/variance not per channel")
    scale = 1.0 / np.maximum(np.sqrt(var), 1e-7)
    return Pending(node.name, "batchnorm", tuple(node.inbound), node.type_name, scale, -mean * scale)


def _custom_scale(node: RawNode) -> list:
    """InceptionResNetV2's ``CustomScaleLayer``: ``inputs[0] + inputs[1] * scale``. The scale is
    an affine marker on the residual branch (it folds into the linear 1x1 conv before it), then
    an Add that keeps the Keras name."""
    scale = node.config.get("scale")
    _check(len(node.inbound) == 2 and isinstance(scale, (int, float)), "inputs other than [x, residual]")
    name = f"{node.name}/scale"
    marker = Pending(name, "batchnorm", (node.inbound[1],), f"{node.type_name} (residual scale)",
                     np.array([float(scale)]), np.array([0.0]))
    return [marker, nw.Layer(node.name, nw.ADD, node.output_shape, (node.inbound[0], name))]


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
        if cfg.get("keepdims", False):
            return _global_pool(node, nw.AVG_POOL2D)
        return _plain(node, nw.GLOBAL_AVG_POOL2D)
    if t == "GlobalMaxPooling2D":
        return _global_pool(node, nw.MAX_POOL2D)
    if t == "SeparableConv2D":
        return _separable(node)
    if t == "Cropping2D":
        return _cropping(node)
    if t == "Rescaling":
        return _rescaling(node)
    if t == "Normalization":
        return _normalization(node)
    if t == "CustomScaleLayer":
        return _custom_scale(node)
    if t == "Multiply":
        raise _Refuse("", why="multiply")
    if t in ("LeakyReLU", "ELU", "PReLU"):
        raise _Refuse("", why="activation")
    if t in ("LayerNormalization", "GroupNormalization", "UnitNormalization"):
        raise _Refuse("", why="layernorm")
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


def translate(node: RawNode) -> list:
    """The ``Layer``/``Pending`` items for one Keras layer (most make one; SeparableConv2D and
    GlobalMaxPooling2D two); unsupported settings become a marker whose ``config['why']`` says,
    for a family that cannot convert at all, why (``WHY``)."""
    try:
        if not node.is_layer:
            raise _Refuse("")
        items = _translate(node)
    except _Refuse as why:
        text = f"{node.type_name} with {why}" if str(why) else node.type_name
        marker = Pending(node.name, "unsupported", tuple(node.inbound), text)
        family = why.why or ("multiply" if node.type_name.split(" ")[0] in ("Multiply", "multiply") else None)
        if family:
            marker.config["why"] = family
        return [marker]
    items = items if isinstance(items, list) else [items]
    for item in items:
        if isinstance(item, nw.Layer):
            item.source_type = node.type_name
            if item.kind in NEEDS_INPUT_SCALES:
                item.config["input_scales"] = [1.0] * len(item.inbound)
    return items


def reasons(items: list) -> list[str]:
    """One line per family of refused layers that cannot convert at all ("Multiply: ...")."""
    seen: dict[str, list[str]] = {}
    for item in items:
        if isinstance(item, Pending) and item.role == "unsupported" and item.config.get("why"):
            seen.setdefault(item.config["why"], [])
            text = item.type_name
            kind = text.split("activation '")[1].split("'")[0] if "activation '" in text else text.split(" ")[0]
            if kind not in seen[item.config["why"]]:
                seen[item.config["why"]].append(kind)
    return [f"{', '.join(kinds)}: {WHY[key]}" for key, kinds in seen.items()]
