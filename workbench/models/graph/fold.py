"""Turn the layers an importer translated into a clean ``Layer`` graph: drop no-ops, fold BN and activations.

Three passes, in this order, each rewiring consumers of a vanished layer to its producer:
1. inference no-ops (Dropout, GaussianNoise, ...) disappear;
2. BatchNormalization is folded exactly into the weighted layer before it
   (``W' = W * s``, ``b' = b * s + shift`` with ``s = gamma / sqrt(var + eps)``,
   ``shift = beta - mean * s``); a BN that cannot be folded becomes an unsupported layer;
3. a standalone activation is folded into its producer when that is a weighted layer or Add
   with linear activation and the activation is its only consumer; otherwise it stays a layer.
The surviving layer records the Keras layers merged into it in ``config['folded']`` (BN and
activations; verification compares against the last of them, the "fused point") and the no-ops
dropped after it in ``config['removed']``.
"""

from __future__ import annotations

import numpy as np

from workbench.models import network as nw
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
    """Note on ``producer`` which Keras layers it absorbed, including what ``item`` had absorbed."""
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


def _fold_batchnorm(item, producer, sole) -> bool:
    if not (isinstance(item, Pending) and item.role == "batchnorm"):
        return False
    ok = (isinstance(producer, nw.Layer) and producer.kind in nw.WEIGHTED_KINDS
          and producer.activation == "linear" and sole)
    if not ok:
        why = "not after a linear Dense/Conv2D/DepthwiseConv2D it alone consumes"
        item.role, item.type_name = "unsupported", f"{item.type_name} ({why})"
        return False
    w = producer.weights.astype(np.float64)
    if producer.kind == nw.DEPTHWISE_CONV2D:  # output channel c * multiplier + m
        w = w * item.scale.reshape(w.shape[2], w.shape[3])
    else:
        w = w * item.scale
    producer.weights = w.astype(np.float32)
    producer.bias = (producer.bias.astype(np.float64) * item.scale + item.shift).astype(np.float32)
    return True


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
    for absorb in (_drop_noop, _fold_batchnorm, _fold_activation):
        items = _run_pass(items, absorb)
    unsupported = [(i.name, i.type_name) for i in items if isinstance(i, Pending)]
    return items, unsupported
