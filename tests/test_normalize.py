"""Normalization and the numpy forward pass, on hand-built networks (no TensorFlow needed).

The key invariant: after normalization every ReLU/linear layer outputs exactly its original
activation divided by its lambda, whatever the graph (joins, pools, standalone activations).
"""

from __future__ import annotations

import numpy as np
import pytest

from workbench.errors import ConfigError, DataFileError
from workbench.models import network as nw
from workbench.models.forward import activation_fn, forward, predict, same_padding
from workbench.models.normalize import normalize

RNG = np.random.default_rng(3)


def _w(*shape, scale=0.5):
    return RNG.normal(0, scale, shape).astype(np.float32)


def _ones(n):
    return {"input_scales": [1.0] * n}


def graph_network() -> nw.Network:
    """Every kind, with Add and Concatenate joins, relu6, a standalone activation and softmax."""
    L = nw.Layer
    conv = {"strides": [1, 1], "padding": "same"}
    layers = [
        L("in", nw.INPUT, (6, 6, 2)),
        L("c1", nw.CONV2D, (6, 6, 3), ("in",), _w(3, 3, 2, 3), _w(3), "relu", config=dict(conv)),
        L("dw", nw.DEPTHWISE_CONV2D, (3, 3, 4), ("in",), _w(3, 3, 2, 2), _w(4), "relu",
          {"max_value": 1.5}, config={"strides": [2, 2], "padding": "same", "depth_multiplier": 2}),
        L("c2", nw.CONV2D, (6, 6, 3), ("c1",), _w(1, 1, 3, 3), _w(3), "linear", config=dict(conv)),
        L("add", nw.ADD, (6, 6, 3), ("c1", "c2"), activation="relu", config=_ones(2)),
        L("mp", nw.MAX_POOL2D, (3, 3, 3), ("add",),
          config={"pool_size": [2, 2], "strides": [2, 2], "padding": "valid"}),
        L("cat", nw.CONCATENATE, (3, 3, 7), ("mp", "dw"), config={"axis": 2}),
        L("zp", nw.ZERO_PAD2D, (4, 4, 7), ("cat",), config={"padding": [[1, 0], [0, 1]]}),
        L("ap", nw.AVG_POOL2D, (2, 2, 7), ("zp",),
          config={"pool_size": [3, 3], "strides": [2, 2], "padding": "same", **_ones(1)}),
        L("act", nw.ACTIVATION, (2, 2, 7), ("ap",), activation="relu",
          activation_params={"max_value": 2.0}, config=_ones(1)),
        L("gap", nw.GLOBAL_AVG_POOL2D, (7,), ("act",), config=_ones(1)),
        L("flat", nw.FLATTEN, (28,), ("act",)),
        L("d1", nw.DENSE, (5,), ("flat",), _w(28, 5), _w(5), "relu"),
        L("cat2", nw.CONCATENATE, (12,), ("gap", "d1"), config={"axis": 0}),
        L("rs", nw.RESHAPE, (12,), ("cat2",), config={"target_shape": [12]}),
        L("out", nw.DENSE, (3,), ("rs",), _w(12, 3), _w(3), "softmax"),
    ]
    return nw.Network("graph", layers)


@pytest.fixture(scope="module")
def net():
    return graph_network()


@pytest.fixture(scope="module")
def x():
    return RNG.random((64, 6, 6, 2)).astype(np.float32)


@pytest.fixture(scope="module")
def normalized(net, x):
    return normalize(net, x, percentile=99.0)


def test_relu_and_linear_layers_are_divided_by_lambda(net, normalized, x):
    before, after = forward(net, x), forward(normalized, x)
    for layer in net.layers:
        if layer.activation in ("relu", "linear"):
            lam = normalized.scales[layer.name]
            np.testing.assert_allclose(after[layer.name], before[layer.name] / lam,
                                       rtol=1e-5, atol=1e-6, err_msg=layer.name)


def test_lambdas_are_percentiles_of_positive_activations(net, normalized, x):
    acts = forward(net, x)
    for name in ("c1", "add", "ap"):
        a = acts[name]
        assert normalized.scales[name] == pytest.approx(np.percentile(a[a > 0], 99.0), rel=1e-6)
    assert normalized.scales["in"] == 1.0
    assert normalized.scales["mp"] == normalized.scales["add"]  # pass-through
    assert normalized.scales["zp"] == normalized.scales["cat"]


def test_weights_biases_and_input_scales(net, normalized):
    s = normalized.scales
    np.testing.assert_allclose(normalized["c2"].weights, net["c2"].weights * s["c1"] / s["c2"], rtol=1e-6)
    np.testing.assert_allclose(normalized["c2"].bias, net["c2"].bias / s["c2"], rtol=1e-6)
    assert normalized["add"].config["input_scales"] == pytest.approx([s["c1"] / s["add"], s["c2"] / s["add"]])
    assert normalized["ap"].config["input_scales"] == pytest.approx([s["zp"] / s["ap"]])
    assert normalized["dw"].activation_params["max_value"] == pytest.approx(1.5 / s["dw"])
    assert normalized["act"].activation_params["max_value"] == pytest.approx(2.0 / s["act"])


def test_concatenated_inputs_share_the_largest_lambda(net, x):
    acts = forward(net, x)
    raw = {n: np.percentile(acts[n][acts[n] > 0], 99.0) for n in ("add", "dw")}
    scales = normalize(net, x, percentile=99.0).scales
    assert scales["add"] == scales["dw"] == scales["cat"] == pytest.approx(max(raw.values()))
    assert scales["gap"] == scales["d1"] == scales["cat2"]


def test_softmax_lambda_comes_from_preactivation(net, normalized, x):
    acts = forward(net, x)
    z = acts["rs"].astype(np.float64) @ net["out"].weights + net["out"].bias
    assert normalized.scales["out"] == pytest.approx(np.percentile(z[z > 0], 99.0), rel=1e-5)


def test_percentile_100_bounds_relu_outputs_by_one(net, x):
    full = normalize(net, x, percentile=100)
    acts = forward(full, x)
    for layer in full.layers:
        if layer.is_neuron_layer and layer.activation == "relu":
            assert acts[layer.name].max() <= 1.0 + 1e-5, layer.name


def test_metadata_original_untouched_and_round_trip(net, normalized, x, tmp_path):
    assert set(normalized.scales) == {layer.name for layer in net.layers}
    meta = normalized.normalization
    assert meta["percentile"] == 99.0 and meta["n_samples"] == len(x) and meta["method"] == "rueckauer2017"
    assert not net.scales and not net.normalization
    assert net["add"].config["input_scales"] == [1.0, 1.0]
    assert normalized.fingerprint() != net.fingerprint()
    normalized.save(tmp_path / "n.npz")
    back = nw.Network.load(tmp_path / "n.npz")
    assert back.scales == pytest.approx(normalized.scales) and back.normalization == normalized.normalization
    assert back.fingerprint() == normalized.fingerprint()
    np.testing.assert_array_equal(predict(back, x), predict(normalized, x))


def test_renormalizing_is_refused(normalized, x):
    with pytest.raises(ConfigError) as info:
        normalize(normalized, x)
    assert info.value.field == "normalize"


def test_bad_arguments(net, x):
    with pytest.raises(ConfigError, match="percentile"):
        normalize(net, x, percentile=0)
    with pytest.raises(DataFileError):
        normalize(net, x[:0])
    with pytest.raises(DataFileError, match="does not fit"):
        normalize(net, x[:, :5])


def test_dead_layer_gets_lambda_one_with_warning():
    layers = [
        nw.Layer("in", nw.INPUT, (2,)),
        nw.Layer("dead", nw.DENSE, (2,), ("in",), -np.ones((2, 2)), -np.ones(2), "relu"),
        nw.Layer("out", nw.DENSE, (1,), ("dead",), np.ones((2, 1)), np.ones(1), "relu"),
    ]
    out = normalize(nw.Network("dead", layers), np.ones((4, 2), np.float32))
    assert out.scales["dead"] == 1.0
    assert any("dead" in w for w in out.normalization["warnings"])


def test_concatenate_with_the_input_stays_unnormalized():
    layers = [
        nw.Layer("in", nw.INPUT, (2,)),
        nw.Layer("d", nw.DENSE, (2,), ("in",), np.eye(2) * 5, np.zeros(2), "relu"),
        nw.Layer("cat", nw.CONCATENATE, (4,), ("in", "d"), config={"axis": 0}),
        nw.Layer("out", nw.DENSE, (1,), ("cat",), np.ones((4, 1)), np.zeros(1), "relu"),
    ]
    out = normalize(nw.Network("c", layers), np.ones((3, 2), np.float32))
    assert out.scales["d"] == out.scales["cat"] == 1.0 and out.scales["out"] == pytest.approx(12.0)
    assert any("input" in w for w in out.normalization["warnings"])


def test_same_padding_matches_tf_rule():
    assert same_padding(5, 3, 2) == (1, 1)
    assert same_padding(4, 3, 2) == (0, 1)
    assert same_padding(6, 1, 2) == (0, 0)
    assert same_padding(7, 2, 3) == (0, 1)


def test_forward_upto_and_shape_errors(net, x):
    part = forward(net, x[:3], upto="c2")
    assert list(part) == ["in", "c1", "dw", "c2"]
    assert list(forward(net, x[:3], upto="in")) == ["in"]
    with pytest.raises(KeyError):
        forward(net, x, upto="nope")
    with pytest.raises(DataFileError):
        forward(net, x[0])


def test_activation_functions():
    z = np.array([-2.0, 0.5, 3.0])
    np.testing.assert_allclose(activation_fn("relu", {"max_value": 1.0})(z), [0, 0.5, 1.0])
    np.testing.assert_allclose(activation_fn("softmax")(z).sum(), 1.0)
    np.testing.assert_allclose(activation_fn("sigmoid")(np.zeros(1)), [0.5])
    with pytest.raises(ValueError):
        activation_fn("elu")


def test_progress_counts_every_layer_and_then_every_percentile(net, x):
    seen = []
    normalize(net, x, 99.0, on_progress=lambda done, total: seen.append((done, total)))
    total = len(net.layers) + len(net.neuron_layers)
    assert seen == [(i, total) for i in range(1, total + 1)]


def test_a_progress_report_that_raises_cancels_and_changes_nothing(net, x):
    before = [(l.weights.copy() if l.weights is not None else None, dict(l.config)) for l in net.layers]

    class Cancel(Exception):
        pass

    def stop_at_the_percentiles(done, total):
        if done > len(net.layers):
            raise Cancel

    with pytest.raises(Cancel):
        normalize(net, x, 99.0, on_progress=stop_at_the_percentiles)
    assert not net.scales and not net.normalization
    for layer, (w, config) in zip(net.layers, before):
        assert (w is None and layer.weights is None) or np.array_equal(layer.weights, w)
        assert layer.config == config
