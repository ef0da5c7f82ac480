"""The streamed normalization (``forward_stream``): the same lambdas, bit for bit, as the
all-at-once computation it replaced (``tests/normalize_reference.py``), while holding only the
activations a later layer still reads."""

from __future__ import annotations

import numpy as np
import pytest

from tests import normalize_reference as ref
from tests.test_normalize import graph_network
from workbench.models import forward as fw
from workbench.models import loading
from workbench.models import network as nw
from workbench.models import normalize as nm
from workbench.models.data import load_samples

RNG = np.random.default_rng(11)


def _w(*shape, scale=0.5):
    return RNG.normal(0, scale, shape).astype(np.float32)


def residual_network() -> nw.Network:
    """A residual block (c1 read by c2 and by the Add), an average pool, a max pool and a
    dense head: every kind the SNN Toolbox rule accepts, and layers that take channel scales."""
    L, same = nw.Layer, {"strides": [1, 1], "padding": "same"}
    return nw.Network("residual", [
        L("in", nw.INPUT, (8, 8, 2)),
        L("c1", nw.CONV2D, (8, 8, 4), ("in",), _w(3, 3, 2, 4), _w(4, scale=0.1), "relu", config=dict(same)),
        L("c2", nw.CONV2D, (8, 8, 4), ("c1",), _w(3, 3, 4, 4), _w(4, scale=0.1), "relu", config=dict(same)),
        L("c3", nw.CONV2D, (8, 8, 4), ("c2",), _w(1, 1, 4, 4), _w(4, scale=0.1), "linear", config=dict(same)),
        L("add", nw.ADD, (8, 8, 4), ("c1", "c3"), activation="relu", config={"input_scales": [1.0, 1.0]}),
        L("ap", nw.AVG_POOL2D, (4, 4, 4), ("add",),
          config={"pool_size": [2, 2], "strides": [2, 2], "padding": "valid", "input_scales": [1.0]}),
        L("c4", nw.CONV2D, (4, 4, 6), ("ap",), _w(3, 3, 4, 6), _w(6, scale=0.1), "relu", config=dict(same)),
        L("mp", nw.MAX_POOL2D, (2, 2, 6), ("c4",),
          config={"pool_size": [2, 2], "strides": [2, 2], "padding": "valid"}),
        L("flat", nw.FLATTEN, (24,), ("mp",)),
        L("d1", nw.DENSE, (10,), ("flat",), _w(24, 10), _w(10, scale=0.1), "relu"),
        L("out", nw.DENSE, (3,), ("d1",), _w(10, 3), _w(3, scale=0.1), "softmax"),
    ])


@pytest.fixture(scope="module")
def demo():
    net = loading.open_model(loading.DEMO_NETWORK)
    return net, load_samples(loading.DEMO_CALIBRATION, net.input_shape, calibration=True).x[:200]


def _same(a: nw.Network, b: nw.Network) -> None:
    """Identical scales (bit for bit), metadata, weights and configs."""
    assert list(a.scales) == list(b.scales)
    assert [float(v).hex() for v in a.scales.values()] == [float(v).hex() for v in b.scales.values()]
    assert a.normalization == b.normalization
    for la, lb in zip(a.layers, b.layers):
        assert la.config == lb.config and la.activation_params == lb.activation_params
        for x, y in ((la.weights, lb.weights), (la.bias, lb.bias)):
            assert (x is None and y is None) or (x.dtype == y.dtype and np.array_equal(x, y))


@pytest.mark.parametrize("rule", ["workbench", "snntoolbox"])
def test_demo_scales_equal_the_all_at_once_computation(demo, rule):
    net, x = demo
    _same(nm.normalize(net, x, 99.9, rule=rule), ref.normalize(net, x, 99.9, rule=rule))


def test_demo_channelwise_equals_the_all_at_once_computation(demo):
    net, x = demo
    got, want = nm.normalize_channelwise(net, x, 99.0), ref.normalize(net, x, 99.0, channelwise=True)
    assert list(got.normalization["channel_scales"]) == ["conv1", "conv3", "fc1"]
    _same(got, want)


@pytest.mark.parametrize("rule", ["workbench", "snntoolbox"])
def test_residual_net_equals_the_all_at_once_computation(rule):
    net = residual_network()
    x = RNG.random((40, 8, 8, 2)).astype(np.float32)
    _same(nm.normalize(net, x, 99.0, rule=rule), ref.normalize(net, x, 99.0, rule=rule))
    got = nm.normalize(net, x, 99.0, rule=rule).scales
    if rule == "snntoolbox":  # the pools pass their inbound factor on
        assert got["ap"] == got["add"] == max(got["c1"], got["c3"]) and got["mp"] == got["c4"]
    else:  # the pools have their own percentile
        assert got["ap"] != got["add"]


def test_residual_net_channelwise_equals_the_all_at_once_computation():
    net = residual_network()
    x = RNG.random((40, 8, 8, 2)).astype(np.float32)
    got, want = nm.normalize_channelwise(net, x, 99.5), ref.normalize(net, x, 99.5, channelwise=True)
    assert list(got.normalization["channel_scales"]) == ["c2", "c4", "d1"]
    _same(got, want)


def test_graph_net_with_joins_relu6_and_softmax_equals_the_all_at_once_computation():
    """Add, Concatenate (tied lambdas), average pools, a capped ReLU, a softmax read off its
    inputs, the groups' warnings."""
    net = graph_network()
    x = RNG.random((50, 6, 6, 2)).astype(np.float32)
    for pct in (50.0, 99.0, 100.0):
        _same(nm.normalize(net, x, pct), ref.normalize(net, x, pct))


def test_forward_returns_what_it_did(demo):
    net = graph_network()
    x = RNG.random((9, 6, 6, 2)).astype(np.float32)
    got, want = fw.forward(net, x), ref.forward_all(net, x)
    assert list(got) == list(want)
    for name in want:
        assert got[name].dtype == np.float32 and np.array_equal(got[name], want[name]), name
    demo_net, dx = demo
    np.testing.assert_array_equal(fw.predict(demo_net, dx, batch_size=64),
                                  ref.forward_all(demo_net, dx)[demo_net.output_layer.name])


def _chain(n: int) -> nw.Network:
    layers = [nw.Layer("in", nw.INPUT, (6,))]
    for i in range(n):
        layers.append(nw.Layer(f"d{i}", nw.DENSE, (6,), (layers[-1].name,), _w(6, 6), _w(6, scale=0.1), "relu"))
    return nw.Network("chain", layers)


def test_the_stream_holds_a_bounded_number_of_activations(monkeypatch):
    seen = {}

    def counted(*args, **kwargs):
        seen["stats"] = kwargs["stats"] = {}
        return fw.forward_stream(*args, **kwargs)

    monkeypatch.setattr(nm, "forward_stream", counted)
    x = RNG.random((20, 6)).astype(np.float32)
    for n in (5, 60):
        nm.normalize(_chain(n), x, 99.0)
        assert seen["stats"]["peak_live"] == 2  # a layer's input and its output, whatever the depth
        assert seen["stats"]["live"] == 0  # the output has no reader: nothing held at the end
    # a residual branch holds its shortcut until the Add: one more, still independent of depth
    nm.normalize(residual_network(), RNG.random((4, 8, 8, 2)).astype(np.float32), 99.0)
    assert seen["stats"]["peak_live"] == 3


def test_the_stream_keeps_no_reference_of_its_own():
    """While the caller works on a layer, the pass holds only the activations a later layer
    reads: the inputs it hands over and the last layer's output are the caller's alone."""
    import sys

    net, x = _chain(4), RNG.random((3, 6))
    for layer, act, inputs in fw.forward_stream(net, x):
        for a in inputs:
            assert sys.getrefcount(a) == 3  # the list, the loop variable, the argument
        assert sys.getrefcount(act) == (2 if layer.name == "d3" else 3)  # act, the argument (+ the pass, for a reader)
        del act, inputs


def test_progress_may_cancel_in_the_middle_of_the_stream(demo):
    net, x = demo
    seen = []

    class Cancel(Exception):
        pass

    def report(done, total):
        seen.append(done)
        if done == 5:
            raise Cancel

    with pytest.raises(Cancel):
        nm.normalize(net, x, 99.0, on_progress=report)
    assert seen == [1, 2, 3, 4, 5] and not net.scales


def test_chunked_rescaling_and_convolution_change_no_value(monkeypatch):
    """``apply_scales`` rescales in chunks and the convolutions write chunks of the batch into
    one array: tiny chunks give the values of one piece."""
    net = residual_network()
    x = RNG.random((12, 8, 8, 2)).astype(np.float32)
    whole = fw.forward(net, x)
    monkeypatch.setattr(nm, "_CHUNK", 7)
    monkeypatch.setattr(fw, "_WINDOW_BUDGET", 300)  # a few samples per convolution chunk
    pieces = fw.forward(net, x)
    assert all(np.array_equal(whole[k], pieces[k]) for k in whole)
    _same(nm.normalize(net, x, 99.0), ref.normalize(net, x, 99.0))
    _same(nm.normalize_channelwise(net, x, 99.0), ref.normalize(net, x, 99.0, channelwise=True))


def test_a_big_dense_layer_is_taken_to_float64_a_block_at_a_time(monkeypatch):
    """A dense layer of more than ``_DENSE_WHOLE`` weights (VGG16's fc1: 103 M, 0.8 GB in
    float64) is multiplied a block of columns at a time: the same values as the whole product
    (BLAS may sum a block in another order: within 1e-12), and never a float64 copy of the
    whole matrix."""
    rng = np.random.default_rng(5)
    w = rng.normal(0, 0.1, (300, 70)).astype(np.float32)
    layer = nw.Layer("fc", nw.DENSE, (70,), ("in",), w, rng.normal(0, 0.1, 70).astype(np.float32), "relu")
    x = rng.normal(size=(3, 300))
    whole = fw._dense(layer, x)
    shapes, tensordot = [], np.tensordot
    monkeypatch.setattr(np, "tensordot", lambda a, b, axes: (shapes.append(b.shape), tensordot(a, b, axes))[1])
    monkeypatch.setattr(fw, "_DENSE_WHOLE", 1000)
    monkeypatch.setattr(fw, "_WINDOW_BUDGET", 8 * 300 * 16)  # 16 columns a block
    blocks = fw._dense(layer, x)
    assert shapes == [(300, 16)] * 4 + [(300, 6)]
    assert blocks.shape == whole.shape == (3, 70)
    np.testing.assert_allclose(blocks, whole, rtol=1e-12, atol=1e-12)
