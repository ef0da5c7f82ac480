"""NIR export: read back with nir.read; weights transposed to NIR's layout; refusals name the layer."""

import warnings

import nir
import numpy as np
import pytest
from trace_nets import conv_net, dense_net, inputs

from workbench.engine.config import SimConfig
from workbench.engine.neurons import IF
from workbench.exchange.nir_export import NIRApproximationWarning, NIRExportError, export_nir
from workbench.engine.simulator import Simulator
from workbench.models import network as nw


def cnn_without_maxpool():
    rng = np.random.default_rng(5)
    layers = [
        nw.Layer("input", nw.INPUT, (6, 6, 2)),
        nw.Layer("conv", nw.CONV2D, (6, 6, 3), ("input",), rng.normal(0, 0.5, (3, 3, 2, 3)), rng.normal(0, .1, 3),
                 "relu", config={"strides": [1, 1], "padding": "same"}),
        nw.Layer("pool", nw.AVG_POOL2D, (3, 3, 3), ("conv",), config={"pool_size": [2, 2], "strides": [2, 2],
                                                                       "padding": "valid"}),
        nw.Layer("flat", nw.FLATTEN, (27,), ("pool",)),
        nw.Layer("fc", nw.DENSE, (4,), ("flat",), rng.normal(0, 0.5, (27, 4)), np.zeros(4), "linear"),
    ]
    return nw.Network("nir_cnn", layers)


def nir_forward(graph, x, steps, dt=1.0):
    """A small NIR interpreter for this graph shape (Affine/Conv2d/AvgPool2d/Flatten/IF with
    reset to v_reset and v > threshold replaced by >= to match ours): spike counts per IF node."""
    order = ["input"]
    while order[-1] != "output":
        order.append(next(b for a, b in graph.edges if a == order[-1]))
    v, counts = {}, {}
    for _ in range(steps):
        y = x.transpose(2, 0, 1) if x.ndim == 3 else x
        for name in order[1:-1]:
            node = graph.nodes[name]
            if isinstance(node, nir.Affine):
                y = node.weight @ y.reshape(-1) + node.bias
            elif isinstance(node, nir.Conv2d):
                pt, pl = node.padding
                xp = np.pad(y, ((0, 0), (pt, pt), (pl, pl)))
                co, ci, kh, kw = node.weight.shape
                oh, ow = node.output_type["output"][1:]
                out = np.zeros((co, oh, ow))
                for i in range(oh):
                    for j in range(ow):
                        patch = xp[:, i * node.stride[0]: i * node.stride[0] + kh, j * node.stride[1]: j * node.stride[1] + kw]
                        out[:, i, j] = np.tensordot(node.weight, patch, axes=([1, 2, 3], [0, 1, 2]))
                y = out + node.bias[:, None, None]
            elif isinstance(node, nir.AvgPool2d):
                k = node.kernel_size
                c, h, w = y.shape
                y = y[:, : h // k[0] * k[0], : w // k[1] * k[1]].reshape(c, h // k[0], k[0], w // k[1], k[1]).mean((2, 4))
            elif isinstance(node, nir.Flatten):
                y = y.reshape(-1)
            elif isinstance(node, nir.IF):
                vv = v.setdefault(name, np.zeros(node.r.shape)) + dt * node.r * y
                spk = vv >= node.v_threshold
                v[name] = np.where(spk, node.v_reset, vv)
                counts[name] = counts.get(name, 0) + spk
                y = spk.astype(np.float64)
    return counts


def test_read_back_dense(tmp_path):
    net = dense_net()
    path = tmp_path / "dense.nir"
    with pytest.warns(NIRApproximationWarning, match="reset 'subtract'"):
        export_nir(net, SimConfig(auto_neurons=False, readout="spikes", neuron=IF(threshold=0.5)), path)
    g = nir.read(path)
    assert set(g.nodes) == {"input", "fc1", "fc1.if", "out", "out.if", "output"}
    assert ("fc1.if", "out") in g.edges and ("out.if", "output") in g.edges
    assert isinstance(g.nodes["fc1"], nir.Affine) and isinstance(g.nodes["fc1.if"], nir.IF)
    np.testing.assert_array_equal(g.nodes["fc1"].weight, net["fc1"].weights.T)
    # a spike of fc1 carries threshold/dt = 0.5 in our engine: folded into the next weights
    np.testing.assert_allclose(g.nodes["out"].weight, net["out"].weights.T * 0.5)
    np.testing.assert_array_equal(g.nodes["out.if"].v_threshold, np.full(3, 0.5))


def test_conv_graph_reproduces_our_spikes(tmp_path):
    net = cnn_without_maxpool()
    cfg = SimConfig(auto_neurons=False, readout="spikes", neuron=IF(reset="zero"), steps=25, batch=1)
    path = tmp_path / "cnn.nir"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NIRApproximationWarning)
        export_nir(net, cfg, path, strict=True)
    g = nir.read(path)
    assert g.nodes["conv"].weight.shape == (3, 2, 3, 3)
    np.testing.assert_array_equal(g.nodes["conv"].weight[1, 0], net["conv"].weights[:, :, 0, 1])
    x = inputs(net, 1)
    sim = Simulator(net, cfg, x)
    sim.run(25)
    counts = nir_forward(g, x[0], 25)
    tr = sim.trace()
    np.testing.assert_array_equal(counts["conv.if"], tr["conv"].spikes.sum(0)[0].transpose(2, 0, 1))
    np.testing.assert_array_equal(counts["pool.if"], tr["pool"].spikes.sum(0)[0].transpose(2, 0, 1))
    np.testing.assert_array_equal(counts["fc.if"], tr["fc"].spikes.sum(0)[0])
    assert tr["fc"].spikes.sum() > 0


def test_refusals_name_the_layer(tmp_path):
    with pytest.raises(NIRExportError, match="'pool1'.*max pooling"):
        export_nir(conv_net(), None, tmp_path / "x.nir")
    with pytest.raises(NIRExportError, match="'fc1'.*reset 'subtract'"):
        export_nir(dense_net(), None, tmp_path / "x.nir", strict=True)
    assert not list(tmp_path.iterdir())


def test_demo_network_exports_and_reads_back(tmp_path):
    """The demo's last layer is itself named 'output': the NIR output node must not clash."""
    from workbench.models.loading import DEMO_NETWORK

    net = nw.Network.load(DEMO_NETWORK)
    path = tmp_path / "demo.nir"
    with pytest.warns(Warning):
        export_nir(net, SimConfig(auto_neurons=False, readout="spikes"), path)
    g = nir.read(path)
    assert isinstance(g.nodes["output"], nir.Affine)
    assert isinstance(g.nodes["_output"], nir.Output)
    assert ("output.if", "_output") in [tuple(e) for e in g.edges]
    assert g.nodes["conv1"].weight.shape == (16, 1, 3, 3)


def test_remedies_nir_cannot_express_are_refused(tmp_path):
    for neuron in (IF(v_init=0.5, reset="zero"), IF(burst=2, reset="zero")):
        with pytest.raises(NIRExportError, match="'fc1'.*initial membrane or burst"):
            export_nir(dense_net(), SimConfig(neuron=neuron), tmp_path / "x.nir")
    assert not list(tmp_path.iterdir())
