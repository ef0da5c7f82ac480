"""The issue-16 conversion cases as small Keras models, seeded random weights (no training):
an MLP with a tanh hidden layer and a linear output, a residual net whose branch is a linear
Conv2D + BatchNorm into Add, a ReLU6 CNN, and a MobileNet-style deep net (depthwise separable
blocks with BatchNorm and ReLU6). ``case(name)`` imports one through the workbench's Keras
importer and returns (network, x, y) with the ANN's own labels (so the ANN is 100 % right).

Shared by tests/test_conversion.py and scripts/measure_conversion.py (docs/conversion.md).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

CASES = ("mlp_tanh", "residual_bn", "relu6", "mobilenet")
N_SAMPLES = 64


def _bn(keras, rng, x, name):
    layer = keras.layers.BatchNormalization(name=name)
    y = layer(x)
    c = layer.gamma.shape[0]
    layer.set_weights([rng.uniform(0.6, 1.4, c).astype(np.float32), rng.normal(0.0, 0.1, c).astype(np.float32),
                       rng.normal(0.0, 0.1, c).astype(np.float32), rng.uniform(0.5, 1.5, c).astype(np.float32)])
    return y


def build(name: str, seed: int = 0):
    """The Keras model of case ``name``."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras

    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    L = keras.layers
    if name == "mlp_tanh":
        inp = keras.Input((16,))
        h = L.Dense(32, activation="tanh", name="hidden")(inp)
        out = L.Dense(4, name="logits")(h)
    elif name == "residual_bn":
        inp = keras.Input((8, 8, 2))
        a = L.Conv2D(8, 3, padding="same", activation="relu", name="stem")(inp)
        b = L.Conv2D(8, 3, padding="same", name="branch")(a)
        b = _bn(keras, rng, b, "branch_bn")
        s = L.Add(name="add")([a, b])
        s = L.ReLU(name="add_relu")(s)
        g = L.GlobalAveragePooling2D(name="gap")(s)
        out = L.Dense(4, activation="softmax", name="out")(g)
    elif name == "relu6":
        inp = keras.Input((8, 8, 1))
        a = L.Conv2D(8, 3, activation="relu6", name="c1")(inp)
        a = L.Conv2D(8, 3, activation="relu6", name="c2")(a)
        f = L.Flatten(name="flat")(a)
        f = L.Dense(16, activation="relu6", name="fc")(f)
        out = L.Dense(4, activation="softmax", name="out")(f)
    elif name == "mobilenet":
        inp = keras.Input((16, 16, 3))
        x = L.Conv2D(8, 3, strides=2, padding="same", use_bias=False, name="stem")(inp)
        x = _bn(keras, rng, x, "stem_bn")
        x = L.ReLU(6.0, name="stem_relu")(x)
        for i, (c, s) in enumerate([(16, 1), (16, 2), (24, 1), (32, 2)]):
            x = L.DepthwiseConv2D(3, strides=s, padding="same", use_bias=False, name=f"dw{i}")(x)
            x = _bn(keras, rng, x, f"dw{i}_bn")
            x = L.ReLU(6.0, name=f"dw{i}_relu")(x)
            x = L.Conv2D(c, 1, use_bias=False, name=f"pw{i}")(x)
            x = _bn(keras, rng, x, f"pw{i}_bn")
            x = L.ReLU(6.0, name=f"pw{i}_relu")(x)
        x = L.GlobalAveragePooling2D(name="gap")(x)
        out = L.Dense(4, activation="softmax", name="out")(x)
    else:
        raise KeyError(name)
    return keras.Model(inp, out, name=name)


def case(name: str, seed: int = 0, n: int = N_SAMPLES, folder: str | Path | None = None):
    """(network, x, y): the case imported through the Keras importer (saved to a .keras file
    first, as a user would), inputs uniform in [0, 1], labels = the ANN's own predictions."""
    from workbench.models import loading
    from workbench.models.forward import forward

    model = build(name, seed)
    folder = Path(folder or tempfile.mkdtemp(prefix="conv-"))
    path = folder / f"{name}.keras"
    model.save(path)
    net = loading.open_model(path)
    x = np.random.default_rng(seed + 1).uniform(0, 1, (n, *net.input_shape)).astype(np.float32)
    y = forward(net, x)[net.output_layer.name].reshape(n, -1).argmax(1).astype(np.int64)
    return net, x, y
