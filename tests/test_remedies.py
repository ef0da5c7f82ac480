"""Conversion remedies on the network side (analysis/remedies.py, models/normalize.py):
channel-wise normalization against a numpy reference, the light SNN calibration lowering the
per-layer mean-rate error on a planted case, threshold balancing, and the spec's parsing."""

import numpy as np
import pytest

from test_engine_if import dyadic
from workbench.analysis import remedies as R
from workbench.engine.config import SimConfig
from workbench.engine.neurons import IF, LIF
from workbench.errors import ConfigError
from workbench.models.forward import forward
from workbench.models.network import Layer, Network
from workbench.models.normalize import normalize, normalize_channelwise


def cnn(rng):
    """conv -> max pool -> conv -> flatten -> dense -> avg-pool-free output: conv1, conv2 and d1
    can take channel scales; the output cannot."""
    same = {"strides": [1, 1], "padding": "same"}
    return Network("cw", [
        Layer("in", "input", (6, 6, 2)),
        Layer("c1", "conv2d", (6, 6, 4), ("in",), dyadic(rng, (3, 3, 2, 4), 0.5) * np.float32([1, 4, 0.25, 1]),
              dyadic(rng, (4,), 0.05), "relu", config=same),
        Layer("mp", "max_pool2d", (3, 3, 4), ("c1",), config={"pool_size": [2, 2], "strides": [2, 2],
                                                               "padding": "valid"}),
        Layer("c2", "conv2d", (3, 3, 3), ("mp",), dyadic(rng, (3, 3, 4, 3), 0.4), dyadic(rng, (3,), 0.05), "relu",
              config=same),
        Layer("fl", "flatten", (27,), ("c2",)),
        Layer("d1", "dense", (8,), ("fl",), dyadic(rng, (27, 8), 0.4), dyadic(rng, (8,), 0.05), "relu"),
        Layer("out", "dense", (3,), ("d1",), dyadic(rng, (8, 3), 0.6), dyadic(rng, (3,), 0.05), "softmax"),
    ])


@pytest.fixture(scope="module")
def setup():
    rng = np.random.default_rng(21)
    net = cnn(rng)
    x = rng.uniform(0, 1, (64, 6, 6, 2)).astype(np.float32)
    return net, x


def test_channelwise_normalization_equals_numpy_reference(setup):
    net, x = setup
    layerwise, chan = normalize(net, x), normalize_channelwise(net, x)
    acts = forward(net, x)
    scales = chan.normalization["channel_scales"]
    assert set(scales) == {"c1", "c2", "d1"}  # not the output
    for name in ("c1", "c2", "d1"):
        a = acts[name]
        pos = [a[..., c][a[..., c] > 0] for c in range(a.shape[-1])]
        lam_c = np.array([np.percentile(p, 99.9) if p.size else layerwise.scales[name] for p in pos])
        assert np.allclose(np.array(scales[name]) * layerwise.scales[name], lam_c, rtol=1e-9), name
        # every channel of the channel-wise network spans [0, 1] on its own percentile
        got = forward(chan, x)[name]
        assert np.allclose(got, a / lam_c.astype(np.float32), rtol=1e-5, atol=1e-6), name
    # the output is untouched: same function as the layer-wise network
    out = "out"
    assert np.allclose(forward(chan, x)[out], forward(layerwise, x)[out], atol=1e-6)
    assert np.ptp(scales["c1"]) > 0.5  # the planted per-channel spread is found (not vacuous)


def test_channelwise_skips_layers_a_join_reads():
    rng = np.random.default_rng(2)
    from test_engine_if import random_dense_net
    net = random_dense_net(rng)
    x = rng.uniform(0, 1, (16, 40)).astype(np.float32)
    chan = normalize_channelwise(net, x)
    assert list(chan.normalization["channel_scales"]) == ["d1"]  # d1 feeds two dense layers; d2, d3 a join
    assert chan.normalization["method"] == "rueckauer2017+channel-wise"


def test_spec_parse_and_print():
    spec = R.Remedies.parse("half+channel+burst3+calib8+balance+lateral")
    assert spec == R.Remedies(half=True, channel=True, burst=3, balance=True, calibrate=8, lateral=True)
    assert str(spec) == "half+channel+burst3+balance+calib8+lateral"
    assert R.Remedies.parse("burst") .burst == 2 and R.Remedies.parse("calib").calibrate == 16
    assert str(R.Remedies.parse("baseline")) == str(R.Remedies.parse("")) == "baseline"
    with pytest.raises(ConfigError, match="unknown remedy 'quick'"):
        R.Remedies.parse("half+quick")


def test_neuron_remedies_need_if():
    cfg = R.neuron_config(SimConfig(), R.Remedies(half=True, burst=2))
    assert (cfg.neuron.v_init, cfg.neuron.burst) == (0.5, 2)
    with pytest.raises(ConfigError, match="IF options"):
        R.neuron_config(SimConfig(neuron=LIF(), dt=0.001), R.Remedies(half=True))
    from workbench.engine.neurons import Current, SignedIF
    cfg = R.neuron_config(SimConfig(overrides={"a": SignedIF(), "b": Current()}), R.Remedies(half=True, burst=3))
    assert cfg.overrides == {"a": SignedIF(v_init=0.5, burst=3), "b": Current()}  # current: nothing to start


def test_calibration_lowers_the_mean_rate_error_on_a_planted_case(setup):
    """At T=8 an IF layer fires floor-quantized rates (about half a spike short per neuron);
    the bias correction moves each channel's mean rate back toward the ANN's, layer by layer."""
    net, x = setup
    norm = normalize(net, x)
    cfg = SimConfig(neuron=IF())
    before = R.rate_errors(norm, cfg, x, 8)
    calibrated, report = R.calibrate_bias(norm, cfg, x, 8)
    after = R.rate_errors(calibrated, cfg, x, 8, reference=norm)
    assert set(report) == {"c1", "c2", "d1", "out"}
    for name in ("c1", "c2", "d1", "out"):
        assert after[name] < 0.6 * before[name], (name, before[name], after[name])
    assert np.array_equal(norm.layers[1].weights, calibrated.layers[1].weights)  # only biases move
    # the first layer's correction is exactly ANN mean - SNN mean per channel
    from workbench.engine.simulator import Simulator
    sim = Simulator(norm, cfg.replace(batch=len(x), steps=8), x=x)
    sim.run(8)
    ann = np.clip(forward(norm, x)["c1"].astype(np.float64), 0, 1).reshape(-1, 4).mean(axis=0)
    snn = (sim.layer("c1").counts / 8).reshape(-1, 4).mean(axis=0)
    want = (norm.layers[1].bias.astype(np.float64) + ann - snn).astype(np.float32)
    assert np.array_equal(calibrated.layers[1].bias, want)


def test_threshold_balancing_grows_saturated_channels(setup):
    """A channel whose neurons integrate more than one threshold a step gets its threshold (the
    equivalent weight scale) grown to that level; the network function is unchanged."""
    net, x = setup
    norm = normalize(net, x, percentile=50)  # a low percentile: many neurons saturate
    cfg = SimConfig(neuron=IF())
    balanced, report = R.balance_thresholds(norm, cfg, x, 16)
    assert report and all(f >= 1.0 for fs in report.values() for f in fs)
    assert max(max(fs) for fs in report.values()) > 1.5
    assert np.allclose(forward(balanced, x)["out"], forward(norm, x)["out"], rtol=1e-4, atol=1e-5)
    sat = lambda n: R.rate_errors(n, cfg, x, 16)  # noqa: E731
    assert sum(sat(balanced).values()) < sum(sat(norm).values())


def test_convert_records_the_remedies(setup):
    net, x = setup
    conv, cfg = R.convert(net, None, x, R.Remedies.parse("half+channel+calib4+lateral"), SimConfig())
    assert conv.normalization["remedies"] == "half+channel+calib4+lateral"
    assert conv.normalization["bias_calibration"]["steps"] == 4
    assert cfg.neuron.v_init == 0.5
    assert next(la for la in conv.layers if la.name == "mp").config["max_pool"] == "lateral"
    assert R.saved_remedies(conv) == R.Remedies.parse("half+channel+calib4+lateral")
    with pytest.raises(ConfigError, match="calibration data"):
        R.convert(net, normalize(net, x), None, R.Remedies.parse("calib"), SimConfig())


def test_diagnose_names_channel_spread_and_channelwise_removes_it(setup):
    """A layer whose channels span very different ranges is a channel_spread finding whose remedy
    is channel-wise normalization; after it, the finding is gone."""
    from workbench.analysis.diagnosis import channel_spread

    net, x = setup
    net = net.copy()
    net.layers[1].weights = net.layers[1].weights * np.float32([1, 1, 0.1, 0.1])  # two weak channels in c1
    found = channel_spread(normalize(net, x), x)
    c1 = [f for f in found if f.layer == "c1"]
    assert c1 and c1[0].remedy == "channel" and c1[0].evidence["weak_channels"] >= 0.5
    assert not [f for f in channel_spread(normalize_channelwise(net, x), x) if f.layer == "c1"]


def test_calibration_keeps_a_layer_carrying_current_exact(setup):
    """Under the default conversion plan a linear layer feeding a linear layer carries current
    (negative values pass on exactly) and the softmax output is read from its membrane (the
    logits): calibration moves their biases by the ANN's unclipped mean minus the SNN's mean,
    not toward a rectified target (which would push every negative channel up)."""
    from workbench.engine.simulator import Simulator

    net, x = setup
    lin = net.copy()
    next(la for la in lin.layers if la.name == "d1").activation = "linear"
    norm = normalize(lin, x)
    cfg = SimConfig(neuron=IF())
    plan = Simulator(norm, cfg, x=x[:1]).plan
    assert (plan.layers["d1"].role, plan.layers["out"].role) == ("current", "readout")
    calibrated, report = R.calibrate_bias(norm, cfg, x, 8)
    assert set(report) == {"c1", "c2", "d1", "out"}
    # d1's correction: exactly ANN mean - SNN mean current per unit, on the network calibrated before it
    upto = norm.copy()
    for name in ("c1", "c2"):
        next(la for la in upto.layers if la.name == name).bias = next(
            la for la in calibrated.layers if la.name == name).bias
    sim = Simulator(upto, cfg.replace(batch=len(x), steps=8), x=x)
    sim.run(8)
    d1 = sim.layer("d1")
    ann = np.asarray(forward(norm, x)["d1"], np.float64).reshape(-1, 8).mean(axis=0)
    snn = (d1.counts * d1.out_scale / 8).reshape(-1, 8).mean(axis=0)
    assert ann.min() < -0.01  # not vacuous: a rectified target would differ
    want = (next(la for la in norm.layers if la.name == "d1").bias.astype(np.float64) + ann - snn).astype(np.float32)
    assert np.array_equal(next(la for la in calibrated.layers if la.name == "d1").bias, want)
    before = R.rate_errors(norm, cfg, x, 8)
    after = R.rate_errors(calibrated, cfg, x, 8, reference=norm)
    for name in ("d1", "out"):
        assert after[name] < 0.6 * before[name], (name, before[name], after[name])
