"""BatchNormalization (and input preprocessing) wherever a ReLU network puts it, converted
exactly: backward into the layer before, forward into the layers after where no window reaches
into zero padding, else an explicit per-channel affine layer. Each case checked against Keras."""

from __future__ import annotations

import numpy as np
import pytest

from workbench.models import network as nw
from workbench.models.keras.importer import network_from_keras
from workbench.models.verify import verify_against_keras


@pytest.fixture(scope="module")
def keras():
    return pytest.importorskip("keras")


def _stats(model, rng):
    """Non-trivial BN statistics: folding that ignores any of them shows in verify."""
    for layer in model.layers:
        if type(layer).__name__ == "BatchNormalization":
            shapes = [w.shape for w in layer.get_weights()]
            layer.set_weights([rng.uniform(0.5, 2.0, shapes[0]), rng.normal(0, 0.5, shapes[1]),
                               rng.normal(0, 0.5, shapes[2]), rng.uniform(0.3, 3.0, shapes[3])])


def _verified(model, shape, seed=0):
    net = network_from_keras(model, model.name)
    x = np.random.default_rng(seed).uniform(0, 1, (6, *shape)).astype(np.float32)
    checks = verify_against_keras(net, model, x)
    assert all(c.ok for c in checks), [(c.name, c.max_abs_diff, c.max_abs_ref) for c in checks if not c.ok]
    return net


@pytest.fixture(scope="module")
def placements(keras):
    """One model with every placement: BN after an activation feeding exact consumers (forward),
    BN feeding a 'same' 3x3 conv (affine layer), BN after Add and after Concatenate, BN on a
    vector before Dense, and Rescaling -> Normalization before a 'valid' stem."""
    L = keras.layers
    i = keras.Input((10, 10, 3), name="inp")
    x = L.Rescaling(1 / 127.5, offset=-1.0, name="rescale")(i)
    x = L.Normalization(mean=[0.1, -0.2, 0.3], variance=[0.5, 2.0, 1.5], name="norm")(x)
    x = L.Conv2D(6, 3, padding="valid", activation="relu", name="stem")(x)     # 8x8x6
    f = L.BatchNormalization(name="bn_fwd")(x)                                 # after an activation
    a = L.Conv2D(6, 3, padding="valid", name="c_valid")(f)                     # 6x6
    b = L.Conv2D(6, 1, padding="same", strides=2, name="c_1x1")(f)             # 4x4
    b = L.ZeroPadding2D(1, name="pad")(b)                                       # 6x6
    j = L.Add(name="join")([a, b])
    j = L.BatchNormalization(name="bn_join")(j)                                # pre-activation after Add
    j = L.Activation("relu", name="relu_join")(j)
    s = L.BatchNormalization(name="bn_same")(j)                                 # before a 'same' 3x3
    s = L.Conv2D(6, 3, padding="same", name="c_same")(s)
    c = L.Concatenate(name="cat")([j, s])
    c = L.BatchNormalization(name="bn_cat")(c)
    c = L.ReLU(name="relu_cat")(c)
    g = L.GlobalAveragePooling2D(name="gap")(c)
    g = L.BatchNormalization(name="bn_vec")(g)                                  # vector, before Dense
    out = L.Dense(4, activation="softmax", name="out")(g)
    model = keras.Model(i, out, name="placements")
    _stats(model, np.random.default_rng(1))
    return model


def test_every_placement_matches_keras(placements, tmp_path):
    net = _verified(placements, (10, 10, 3))
    net.save(tmp_path / "net.npz")  # the new config keys survive the file and its shape check
    again = nw.Network.load(tmp_path / "net.npz")
    assert again.fingerprint() == net.fingerprint() and again["bn_cat"].config["affine"] is True
    names = {layer.name for layer in net.layers}
    # forward into exact consumers (valid 3x3, 1x1 'same' with stride 2, Dense): no layer left
    assert "bn_fwd" not in names and "bn_vec" not in names
    assert net["c_valid"].config["folded_inputs"] == ["bn_fwd"] == net["c_1x1"].config["folded_inputs"]
    assert net["out"].config["folded_inputs"] == ["bn_vec"]
    # Rescaling and Normalization compose, then fold forward into the 'valid' stem
    assert "rescale" not in names and "norm" not in names
    assert net["stem"].inbound == ("inp",) and net["stem"].config["folded_inputs"] == ["rescale"]
    # after a join, or before a 'same' 3x3 convolution: an affine 1x1 depthwise layer
    for name, after in (("bn_join", "join"), ("bn_cat", "cat"), ("bn_same", "relu_join")):
        layer = net[name]
        assert layer.kind == nw.DEPTHWISE_CONV2D and layer.config["affine"], name
        assert layer.weights.shape[:2] == (1, 1) and layer.config["depth_multiplier"] == 1
    assert net["bn_join"].activation == "relu" and net["bn_join"].config["folded"] == ["relu_join"]
    assert net["bn_cat"].activation == "relu"
    bn = placements.get_layer("bn_same")
    gamma, beta, mean, var = (w.astype(np.float64) for w in bn.get_weights())
    scale = gamma / np.sqrt(var + bn.epsilon)
    np.testing.assert_allclose(net["bn_same"].weights.ravel(), scale, rtol=1e-6)
    np.testing.assert_allclose(net["bn_same"].bias, beta - mean * scale, rtol=1e-5, atol=1e-6)


def test_forward_fold_under_same_padding_would_be_wrong(placements):
    """The reason 'bn_same' stays a layer: folded forward anyway, the border pixels differ."""
    from workbench.models.forward import forward
    from workbench.models.graph import fold as F

    net = network_from_keras(placements, "placements")
    conv = net["c_same"]
    bn = net["bn_same"]
    moved = net.copy()
    F._fold_into_consumer(moved["c_same"], bn.weights.ravel().astype(np.float64), bn.bias.astype(np.float64))
    moved["c_same"].inbound = bn.inbound
    x = np.random.default_rng(2).uniform(0, 1, (3, 10, 10, 3)).astype(np.float32)
    good, bad = forward(net, x)["c_same"], forward(moved, x)["c_same"]
    interior = np.abs(good - bad)[:, 1:-1, 1:-1].max()
    border = np.abs(good - bad).max()
    assert interior < 1e-5 * np.abs(good).max() < border
    assert conv.kind == nw.CONV2D


def test_separable_conv_and_global_pooling(keras):
    L = keras.layers
    i = keras.Input((9, 9, 3), name="inp")
    x = L.SeparableConv2D(5, 3, padding="same", depth_multiplier=2, strides=2, name="sep")(i)
    x = L.BatchNormalization(name="sep_bn")(x)
    x = L.ReLU(6.0, name="sep_relu")(x)
    m = L.GlobalMaxPooling2D(keepdims=True, name="gmax_keep")(x)
    m = L.Conv2D(3, 1, name="after_gmax")(m)
    a = L.GlobalAveragePooling2D(keepdims=True, name="gap_keep")(x)
    a = L.Conv2D(3, 1, name="after_gap")(a)
    v = L.Add(name="add")([m, a])
    v = L.Flatten(name="flat")(v)
    g = L.GlobalMaxPooling2D(name="gmax")(x)
    v = L.Concatenate(name="cat")([v, g])
    model = keras.Model(i, L.Dense(2, name="out")(v), name="sep")
    _stats(model, np.random.default_rng(4))
    net = _verified(model, (9, 9, 3))
    dw, pw = net["sep/depthwise"], net["sep"]
    assert dw.kind == nw.DEPTHWISE_CONV2D and dw.config["strides"] == [2, 2] and dw.output_shape == (5, 5, 6)
    assert not dw.bias.any() and dw.activation == "linear"
    assert pw.kind == nw.CONV2D and pw.inbound == ("sep/depthwise",) and pw.weights.shape == (1, 1, 6, 5)
    assert pw.config["folded"] == ["sep_bn", "sep_relu"] and pw.activation_params == {"max_value": 6.0}
    assert net["gap_keep"].kind == nw.AVG_POOL2D and net["gap_keep"].config["pool_size"] == [5, 5]
    assert net["gmax_keep"].kind == nw.MAX_POOL2D and net["gmax_keep"].output_shape == (1, 1, 5)
    assert net["gmax/pool"].kind == nw.MAX_POOL2D and net["gmax"].kind == nw.FLATTEN


def test_cropping_is_an_exact_shift(keras):
    L = keras.layers
    i = keras.Input((7, 6, 2), name="inp")
    x = L.Conv2D(3, 1, activation="relu", name="c")(i)
    x = L.ZeroPadding2D(((0, 1), (0, 1)), name="pad")(x)
    x = L.Cropping2D(((1, 0), (2, 1)), name="crop")(x)
    model = keras.Model(i, L.Conv2D(2, 1, name="out")(x), name="crop")
    net = _verified(model, (7, 6, 2))
    crop = net["crop"]
    assert crop.kind == nw.DEPTHWISE_CONV2D and crop.weights.shape == (2, 4, 3, 1)
    assert crop.weights[1, 2].all() and crop.weights.sum() == 3 and crop.output_shape == (7, 4, 3)


def test_inception_resnet_residual_scale_folds_into_the_branch_conv(keras):
    from keras.src.applications.inception_resnet_v2 import CustomScaleLayer

    L = keras.layers
    i = keras.Input((6, 6, 4), name="inp")
    x = L.Conv2D(4, 3, padding="same", activation="relu", name="trunk")(i)
    up = L.Conv2D(4, 1, name="branch")(x)
    x = CustomScaleLayer(0.17, name="scaled_sum")([x, up])
    x = L.Activation("relu", name="after")(x)
    model = keras.Model(i, L.Conv2D(2, 1, name="out")(x), name="irv")
    net = _verified(model, (6, 6, 4))
    assert net["scaled_sum"].kind == nw.ADD and net["scaled_sum"].inbound == ("trunk", "branch")
    assert net["scaled_sum"].activation == "relu"
    kernel, bias = model.get_layer("branch").get_weights()
    np.testing.assert_allclose(net["branch"].weights, kernel * 0.17, rtol=1e-6)
    np.testing.assert_allclose(net["branch"].bias, bias * 0.17, rtol=1e-6)


def test_a_batchnorm_that_does_not_fit_its_channels_is_refused_by_name():
    from workbench.models.graph.fold import fold
    from workbench.models.graph.pending import Pending

    items = [nw.Layer("inp", nw.INPUT, (4, 4, 3)),
             nw.Layer("pool", nw.MAX_POOL2D, (2, 2, 3), ("inp",),
                      config={"pool_size": [2, 2], "strides": [2, 2], "padding": "valid"}),
             Pending("bn", "batchnorm", ("pool",), "BatchNormalization", np.ones(16), np.zeros(16))]
    _, unsupported = fold(items)
    assert unsupported == [("bn", "BatchNormalization (16 values for 3 channels)")]
