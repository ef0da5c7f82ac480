"""Turn the layers an importer translated into a clean ``Layer`` graph: drop no-ops, fold BN and activations.

Interface (shared by every importer, framework-free): ``fold(items)`` takes ``Layer`` records and
``Pending`` markers in topological order and returns ``(layers, unsupported)``.

Passes, in this order, each rewiring consumers of a vanished layer to its producer:
1. inference no-ops (Dropout, GaussianNoise, ...) disappear;
2. a per-channel affine marker (role ``batchnorm``: BatchNormalization, and the input
   preprocessing Rescaling / Normalization, all ``y = x * scale + shift`` along the last axis)
   is folded exactly into the weighted layer before it when that layer is linear and the marker
   is its only consumer (``W' = W * s``, ``b' = b * s + shift``), or composed into an affine
   marker before it that it alone consumes;
3. otherwise it is folded *forward* into the layers after it when every consumer is a weighted
   layer for which that is exact: ``W·(a⊙x + c) = (W·diag(a))·x + W·c``. The ``W·c`` term is a
   constant bias only where no window reaches into zero padding, so this is done for Dense,
   and for Conv2D/DepthwiseConv2D with ``padding='valid'`` or a 1x1 kernel; never under
   ``'same'`` padding with a larger kernel (the borders would differ from Keras);
4. an affine marker left over (pre-activation BN after Add/Concatenate/pooling, BN after an
   activation, preprocessing before a 'same' convolution) becomes an explicit per-channel affine
   layer: a 1x1 DepthwiseConv2D with multiplier 1 (weights ``scale``, bias ``shift``) on images,
   a diagonal Dense on vectors. It keeps the BN's name, so ``verify`` compares it with Keras,
   and an activation after it merges into it (pass 5). Exact in the ANN; in the SNN it is one
   more neuron layer (exact there once linear layers carry current instead of spikes);
5. a standalone activation is folded into its producer when that is a weighted layer or Add
   with linear activation and the activation is its only consumer; otherwise it stays a layer.
The surviving layer records the source layers merged into it in ``config['folded']`` (BN and
activations; verification compares against the last of them, the "fused point"), the no-ops
dropped after it in ``config['removed']``, and affine markers folded forward into it in
``config['folded_inputs']``.
"""

from __future__ import annotations

import numpy as np

from workbench.models import layer as nw
from workbench.models.graph.pending import Pending


def _resolve(alias: dict, name: str) -> str:
    while name in alias:
        name = alias[name]
    return name


def _consumer_counts(items: list) -> dict:
    counts: dict[str, int] = {}
    for item in items:
        for src in item.inbound:
            counts[src] = counts.get(src, 0) + 1
    return counts


def _record_merge(producer, item) -> None:
    """Note on ``producer`` which source layers it absorbed, including what ``item`` had absorbed."""
    key = "removed" if isinstance(item, Pending) and item.role == "noop" else "folded"
    producer.config.setdefault(key, []).append(item.name)
    for k in ("folded", "removed"):
        if item.config.get(k):
            producer.config.setdefault(k, []).extend(item.config[k])


def _run_pass(items: list, absorb) -> list:
    """Rewire every item's inbound through the aliases made by ``absorb(item, producer)``."""
    alias, by_name = {}, {}
    counts = _consumer_counts(items)
    kept = []
    for item in items:
        item.inbound = tuple(_resolve(alias, s) for s in item.inbound)
        by_name[item.name] = item
        producer = by_name[item.inbound[0]] if len(item.inbound) == 1 else None
        sole = producer is not None and counts.get(producer.name) == 1
        if absorb(item, producer, sole):
            alias[item.name] = producer.name
            counts[producer.name] = counts.get(item.name, 0)
            _record_merge(producer, item)
        else:
            kept.append(item)
    return kept


def _drop_noop(item, producer, sole) -> bool:
    return isinstance(item, Pending) and item.role == "noop" and producer is not None


def _is_affine(item) -> bool:
    return isinstance(item, Pending) and item.role == "batchnorm"


def _fits(item, channels: int) -> bool:
    """Does the marker hold one value, or one per channel?"""
    return all(np.size(v) in (1, channels) for v in (item.scale, item.shift))


def _composable(a, b) -> bool:
    """Can two affine markers in a row become one (their values broadcast together)?"""
    sizes = {np.size(v) for v in (a.scale, a.shift, b.scale, b.shift)} - {1}
    return len(sizes) <= 1


def _refuse_misfit(item, channels: int) -> None:
    item.role = "unsupported"
    item.type_name = f"{item.type_name} ({np.size(item.scale)} values for {channels} channels)"


def _fold_batchnorm(item, producer, sole) -> bool:
    if not _is_affine(item):
        return False
    if isinstance(producer, nw.Layer) and not _fits(item, producer.output_shape[-1]):
        return False  # refused when lowered
    if _is_affine(producer) and sole and _composable(producer, item):
        # two affines in a row (Rescaling -> Normalization): compose
        scale = np.asarray(producer.scale, np.float64) * item.scale
        shift = np.asarray(producer.shift, np.float64) * item.scale + item.shift
        producer.scale, producer.shift = scale, shift
        return True
    ok = (isinstance(producer, nw.Layer) and producer.kind in nw.WEIGHTED_KINDS
          and producer.activation == "linear" and sole)
    if not ok:
        return False
    scale, shift = _per_channel(item, producer.output_shape[-1])
    w = producer.weights.astype(np.float64)
    if producer.kind == nw.DEPTHWISE_CONV2D:  # output channel c * multiplier + m
        w = w * scale.reshape(w.shape[2], w.shape[3])
    else:
        w = w * scale
    producer.weights = w.astype(np.float32)
    producer.bias = (producer.bias.astype(np.float64) * scale + shift).astype(np.float32)
    return True


def _channels(item, shapes: dict) -> tuple:
    """The output shape of an affine marker: its producer's."""
    return shapes[item.inbound[0]]


def _forward_exact(consumer) -> bool:
    """Can a per-channel affine of this layer's input move into its weights and bias exactly?"""
    if not isinstance(consumer, nw.Layer) or consumer.kind not in nw.WEIGHTED_KINDS or len(consumer.inbound) != 1:
        return False
    if consumer.kind == nw.DENSE:
        return True
    kh, kw = consumer.weights.shape[:2]
    return consumer.config.get("padding") == "valid" or (kh, kw) == (1, 1)


def _fold_into_consumer(consumer, scale: np.ndarray, shift: np.ndarray) -> None:
    w = consumer.weights.astype(np.float64)
    if consumer.kind == nw.DENSE:  # flat input of len(scale) values (a vector affine)
        consumer.bias = (consumer.bias.astype(np.float64) + shift @ w).astype(np.float32)
        consumer.weights = (w * scale[:, None]).astype(np.float32)
        return
    if consumer.kind == nw.CONV2D:
        extra = np.einsum("hwio,i->o", w, shift)
    else:  # depthwise: output channel c * multiplier + m
        extra = np.einsum("hwcm,c->cm", w, shift).reshape(-1)
    consumer.bias = (consumer.bias.astype(np.float64) + extra).astype(np.float32)
    consumer.weights = (w * scale[None, None, :, None]).astype(np.float32)


def _forward_pass(items: list) -> list:
    """Pass 3: fold each affine marker into its consumers where that is exact (see module doc)."""
    consumers: dict[str, list] = {}
    for item in items:
        for src in item.inbound:
            consumers.setdefault(src, []).append(item)
    shapes: dict[str, tuple] = {}
    gone = set()
    for item in items:
        if isinstance(item, nw.Layer):
            shapes[item.name] = item.output_shape
            continue
        if not _is_affine(item) or item.inbound[0] not in shapes:
            continue
        shape = shapes[item.name] = _channels(item, shapes)
        if not _fits(item, shape[-1]):
            continue
        users = consumers.get(item.name, [])
        if not users or not all(_forward_exact(u) for u in users):
            continue
        if len(shape) != 1 and any(u.kind == nw.DENSE for u in users):
            continue
        if len({id(u) for u in users}) != len(users):
            continue
        scale, shift = _per_channel(item, shape[-1])
        for user in users:
            _fold_into_consumer(user, scale, shift)
            user.inbound = tuple(item.inbound[0] if s == item.name else s for s in user.inbound)
            user.config.setdefault("folded_inputs", []).append(item.name)
            consumers.setdefault(item.inbound[0], []).append(user)
        gone.add(item.name)
    return [i for i in items if i.name not in gone]


def _per_channel(item, channels: int) -> tuple[np.ndarray, np.ndarray]:
    scale = np.broadcast_to(np.asarray(item.scale, np.float64), (channels,)).copy()
    shift = np.broadcast_to(np.asarray(item.shift, np.float64), (channels,)).copy()
    return scale, shift


def _lower_affine(items: list) -> list:
    """Pass 4: every affine marker left becomes an explicit per-channel affine layer."""
    shapes: dict[str, tuple] = {}
    out = []
    for item in items:
        if _is_affine(item) and item.inbound and item.inbound[0] in shapes:
            shape = _channels(item, shapes)
            if not _fits(item, shape[-1]):
                _refuse_misfit(item, shape[-1])
            elif len(shape) in (1, 3):
                scale, shift = _per_channel(item, shape[-1])
                if len(shape) == 3:
                    layer = nw.Layer(item.name, nw.DEPTHWISE_CONV2D, shape, item.inbound,
                                     scale.reshape(1, 1, -1, 1), shift,
                                     config={"strides": [1, 1], "padding": "valid", "depth_multiplier": 1,
                                             "affine": True})
                else:
                    layer = nw.Layer(item.name, nw.DENSE, shape, item.inbound, np.diag(scale), shift,
                                     config={"affine": True})
                layer.source_type = item.type_name
                for k in ("folded", "removed"):
                    if item.config.get(k):
                        layer.config[k] = list(item.config[k])
                item = layer
            else:
                item.role = "unsupported"
                item.type_name = f"{item.type_name} (on a rank-{len(shape)} tensor; only images and vectors)"
        if isinstance(item, nw.Layer):
            shapes[item.name] = item.output_shape
        elif _is_affine(item) and item.inbound and item.inbound[0] in shapes:
            shapes[item.name] = shapes[item.inbound[0]]
        out.append(item)
    return out


def _fold_activation(item, producer, sole) -> bool:
    foldable_producer = (isinstance(producer, nw.Layer)
                         and producer.kind in nw.WEIGHTED_KINDS | {nw.ADD}
                         and producer.activation == "linear" and sole)
    if not (isinstance(item, nw.Layer) and item.kind == nw.ACTIVATION and foldable_producer):
        return False
    producer.activation = item.activation
    producer.activation_params = dict(item.activation_params)
    return True


def fold(items: list) -> tuple[list, list]:
    """``(layers, unsupported)``: the final layer list and ``[(name, description), ...]``."""
    items = _run_pass(items, _drop_noop)
    items = _run_pass(items, _fold_batchnorm)
    items = _forward_pass(items)
    items = _lower_affine(items)
    items = _run_pass(items, _fold_activation)
    unsupported = [(i.name, i.type_name) for i in items if isinstance(i, Pending)]
    return items, unsupported
