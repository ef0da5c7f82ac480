"""The benchmark networks and inputs: the bundled demo, a LeNet-5-sized CNN (28x28x1) and a small
VGG-style CNN (32x32x3), the last two built with Keras (seeded random weights), saved to a temp
folder and imported the normal way (``load_keras``), then normalized (Rueckauer 2017) so that the
spike rates are those of a converted network.

Weights, biases, input scales and inputs are then rounded to a dyadic grid (1/256, inputs 1/16):
every float32 sum of them is exact in any order, so our engine (event, BLAS or parallel paths)
and the numpy baseline produce the same spikes -- the comparison is between equal work.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from pathlib import Path

import numpy as np

from workbench.models import network as nw
from workbench.models.loading import DEMO_CALIBRATION, DEMO_KERAS, DEMO_NETWORK, DEMO_TEST
from workbench.models.normalize import normalize

NAMES = ("demo", "lenet5", "vgg_small")


@dataclasses.dataclass
class BenchNet:
    name: str
    network: nw.Network  # normalized, dyadic
    keras_path: Path  # the Keras model for the dense bound
    x_pool: np.ndarray  # inputs to draw batches from (dyadic)


def _dyadic(a, grid: float):
    return (np.round(np.asarray(a, np.float64) / grid) * grid).astype(np.float32)


def dyadic_network(net: nw.Network) -> nw.Network:
    out = net.copy()
    for layer in out.layers:
        if layer.weights is not None:
            layer.weights = _dyadic(layer.weights, 2.0 ** -8)
        if layer.bias is not None:
            layer.bias = _dyadic(layer.bias, 2.0 ** -8)
        if "input_scales" in layer.config:
            layer.config["input_scales"] = [float(_dyadic(s, 2.0 ** -6)) for s in layer.config["input_scales"]]
    return out


def _keras_lenet5():
    import keras
    from keras import layers as L

    return keras.Sequential([
        keras.Input((28, 28, 1)),
        L.Conv2D(6, 5, padding="same", activation="relu", name="c1"),
        L.AveragePooling2D(2, name="s2"),
        L.Conv2D(16, 5, activation="relu", name="c3"),
        L.AveragePooling2D(2, name="s4"),
        L.Flatten(name="flat"),
        L.Dense(120, activation="relu", name="f5"),
        L.Dense(84, activation="relu", name="f6"),
        L.Dense(10, activation="softmax", name="out"),
    ], name="lenet5")


def _keras_vgg_small():
    import keras
    from keras import layers as L

    return keras.Sequential([
        keras.Input((32, 32, 3)),
        L.Conv2D(32, 3, padding="same", activation="relu", name="c1a"),
        L.Conv2D(32, 3, padding="same", activation="relu", name="c1b"),
        L.MaxPooling2D(2, name="p1"),
        L.Conv2D(64, 3, padding="same", activation="relu", name="c2a"),
        L.Conv2D(64, 3, padding="same", activation="relu", name="c2b"),
        L.MaxPooling2D(2, name="p2"),
        L.Conv2D(128, 3, padding="same", activation="relu", name="c3"),
        L.MaxPooling2D(2, name="p3"),
        L.Flatten(name="flat"),
        L.Dense(128, activation="relu", name="f1"),
        L.Dense(10, activation="softmax", name="out"),
    ], name="vgg_small")


def _images(rng, n, shape):
    """Smooth random images in [0, 1] (low-pass noise), closer to real data than white noise."""
    h, w, c = shape
    coarse = rng.uniform(0, 1, (n, (h + 3) // 4, (w + 3) // 4, c))
    img = coarse.repeat(4, axis=1).repeat(4, axis=2)[:, :h, :w, :]
    img = np.clip(img + rng.normal(0, 0.1, img.shape), 0, 1)
    return _dyadic(img, 1 / 16)


def build(name: str, workdir: Path, seed: int = 0) -> BenchNet:
    """One benchmark network by name (Keras and TensorFlow imported only for lenet5/vgg_small)."""
    rng = np.random.default_rng(seed)
    if name == "demo":
        from workbench.models.data import load_samples

        net = nw.Network.load(DEMO_NETWORK)
        cal = load_samples(DEMO_CALIBRATION, net.input_shape).x
        x = _dyadic(load_samples(DEMO_TEST, net.input_shape, 10).x, 1 / 16)
        return BenchNet(name, dyadic_network(normalize(net, cal, 99.9)), DEMO_KERAS, x)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    from workbench.models.keras.importer import load_keras

    keras.utils.set_random_seed(seed)
    model = {"lenet5": _keras_lenet5, "vgg_small": _keras_vgg_small}[name]()
    path = Path(workdir) / f"{name}.keras"
    model.save(path)
    net = load_keras(path)
    shape = net.input_shape
    cal = _images(rng, 200, shape)
    x = _images(rng, 128, shape)
    return BenchNet(name, dyadic_network(normalize(net, cal, 99.9)), path, x)


def workdir() -> Path:
    return Path(tempfile.mkdtemp(prefix="snn-bench-"))
