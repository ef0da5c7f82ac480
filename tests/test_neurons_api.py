"""Registry, parse_params, validation, per-layer overrides, metadata, quantization report."""

import numpy as np
import pytest

from workbench.engine.config import SimConfig
from workbench.engine.neurons import MODELS, make_neuron, parse_params
from workbench.engine.simulator import Simulator
from workbench.errors import ConfigError
from workbench.models import network as nw

NAMES = ["if", "lif", "loihi_lif", "loihi_relu", "loihi_cuba", "regular_spiking", "stochastic_spiking", "poisson_spiking"]


def conv_net():
    rng = np.random.default_rng(0)
    layers = [
        nw.Layer("in", nw.INPUT, (6, 6, 2)),
        nw.Layer("c1", nw.CONV2D, (6, 6, 3), ("in",), weights=rng.normal(0.1, 0.5, (3, 3, 2, 3)),
                 bias=rng.normal(0.05, 0.1, 3), config={"strides": (1, 1), "padding": "same"}),
        nw.Layer("p1", nw.AVG_POOL2D, (3, 3, 3), ("c1",), config={"pool_size": (2, 2), "strides": (2, 2), "padding": "valid"}),
        nw.Layer("f", nw.FLATTEN, (27,), ("p1",)),
        nw.Layer("d1", nw.DENSE, (4,), ("f",), weights=rng.normal(0.05, 0.3, (27, 4)), bias=np.zeros(4)),
    ]
    return nw.Network("conv", layers)


def test_registered_names_and_descriptions():
    assert set(NAMES) <= set(MODELS)
    for name in NAMES:
        cls = MODELS[name]
        assert cls.description and cls.reference and cls.name == name
        make_neuron(name)  # defaults are valid


@pytest.mark.parametrize("name", NAMES)
def test_every_model_runs_a_conv_network_and_records_metadata(name):
    model = make_neuron(name)
    x = np.random.default_rng(1).random((2, 6, 6, 2)).astype(np.float32) * 3
    sim = Simulator(conv_net(), SimConfig(auto_neurons=False, readout="spikes", neuron=model, steps=20, batch=2), x=x)
    sim.run(20)
    tr = sim.trace()
    meta = tr.metadata
    assert meta["neuron"] == {"name": name, "params": model.params()}
    assert meta["models"]["d1"]["name"] == name
    assert tr["c1"].spikes.shape == (20, 2, 6, 6, 3)
    sim.reset()
    sim.run(20)
    np.testing.assert_array_equal(sim.trace()["c1"].spikes, tr["c1"].spikes)  # reset + seed: same trace


def test_overrides_per_layer():
    cfg = SimConfig(auto_neurons=False, readout="spikes", neuron=make_neuron("lif"), overrides={"d1": make_neuron("regular_spiking", rate_fn="tanh")}, dt=0.001)
    sim = Simulator(conv_net(), cfg, x=np.ones((1, 6, 6, 2), np.float32))
    assert sim.layer("c1").model.name == "lif" and sim.layer("d1").model.name == "regular_spiking"
    sim.run(5)
    meta = sim.metadata()
    assert meta["overrides"]["d1"]["params"]["rate_fn"] == "tanh"
    assert meta["models"]["d1"]["signed"] is True and meta["models"]["c1"]["signed"] is False
    with pytest.raises(ConfigError) as err:
        Simulator(conv_net(), SimConfig(auto_neurons=False, readout="spikes", overrides={"nope": make_neuron("lif")}))
    assert err.value.field == "overrides"
    with pytest.raises(ConfigError) as err:  # an override's dt check applies too
        SimConfig(auto_neurons=False, readout="spikes", neuron=make_neuron("regular_spiking"), overrides={"d1": make_neuron("lif", tau_rc=0.01)}, dt=0.02)
    assert err.value.field == "dt"


def test_cuba_quantization_report_and_reset_keeps_layer_constants():
    model = make_neuron("loihi_cuba", vth=100)
    net = conv_net()
    sim = Simulator(net, SimConfig(auto_neurons=False, readout="spikes", neuron=model, steps=10), x=np.ones((1, 6, 6, 2), np.float32))
    q = model.quantization_report(sim.layer("c1"))
    w = net["c1"].weights
    assert q["weight_bits"] == 8 and -6 <= q["weight_exp"] <= 7
    mant = sim.layer("c1").weights / 2.0 ** q["weight_exp"]
    np.testing.assert_array_equal(mant, np.round(mant))
    assert np.abs(mant).max() <= 127
    assert 0 < q["weight_max_rel_error"] <= 2.0 ** q["weight_exp"] / 2 / 100 / np.abs(w).max() + 1e-7
    assert q["weight_rms_rel_error"] <= q["weight_max_rel_error"]
    assert "note" in model.quantization_report(sim.layer("p1"))  # no weights
    bias_before = sim.layer("c1").state["layer_bias"].copy()
    assert np.any(bias_before != 0)
    sim.run(10)
    sim.reset()
    np.testing.assert_array_equal(sim.layer("c1").state["layer_bias"], bias_before)
    assert not np.any(sim.layer("c1").state["v"])


def test_parse_params():
    assert parse_params("lif", ["tau_rc=0.01", "amplitude = 2"]) == {"tau_rc": 0.01, "amplitude": 2.0}
    assert parse_params("loihi_cuba", ["du=100", "vth=7"]) == {"du": 100, "vth": 7}
    assert parse_params("regular_spiking", ["rate_fn=tanh", "tau_ref=none"]) == {"rate_fn": "tanh", "tau_ref": None}
    assert parse_params("if", ["reset=modulo"]) == {"reset": "modulo"}
    model = make_neuron("loihi_cuba", **parse_params("loihi_cuba", ["dv=205", "bias_mant=-3"]))
    assert model.dv == 205 and model.bias_mant == -3


@pytest.mark.parametrize("name,items,field", [
    ("lif", ["tau_rc=abc"], "tau_rc"),
    ("lif", ["tau_rc=nan"], "tau_rc"),
    ("lif", ["bogus=1"], "bogus"),
    ("lif", ["tau_rc"], "param"),
    ("lif", ["tau_rc=1", "tau_rc=2"], "tau_rc"),
    ("loihi_cuba", ["du=1.5"], "du"),
    ("nope", [], "neuron"),
])
def test_parse_params_errors(name, items, field):
    with pytest.raises(ConfigError) as err:
        parse_params(name, items)
    assert err.value.field == field


@pytest.mark.parametrize("name,params,field", [
    ("lif", dict(tau_rc=0), "tau_rc"),
    ("lif", dict(tau_ref=-1), "tau_ref"),
    ("lif", dict(min_voltage=0.5), "min_voltage"),
    ("loihi_lif", dict(amplitude=0), "amplitude"),
    ("loihi_cuba", dict(du=4096), "du"),
    ("loihi_cuba", dict(vth=0), "vth"),
    ("loihi_cuba", dict(bias_exp=8), "bias_exp"),
    ("loihi_cuba", dict(weight_bits=9), "weight_bits"),
    ("regular_spiking", dict(rate_fn="softplus"), "rate_fn"),
    ("stochastic_spiking", dict(tau_ref=0), "tau_ref"),
    ("poisson_spiking", dict(gain=float("inf")), "gain"),
])
def test_validation_names_the_field(name, params, field):
    with pytest.raises(ConfigError) as err:
        make_neuron(name, **params)
    assert err.value.field == field


def test_dt_validation():
    with pytest.raises(ConfigError, match="dt"):
        make_neuron("lif").validate_dt(0.05)
    with pytest.raises(ConfigError, match="dt"):
        make_neuron("loihi_lif").validate_dt(1e-6)  # decay rounds to 0 of 4095
    make_neuron("loihi_lif").validate_dt(0.001)


def test_signed_flag_and_description():
    assert make_neuron("regular_spiking", rate_fn="linear").signed
    assert not make_neuron("poisson_spiking", rate_fn="sigmoid").signed
    assert "not possible on most hardware" in make_neuron("stochastic_spiking", rate_fn="tanh").describe()
    assert make_neuron("stochastic_spiking").stochastic and not make_neuron("regular_spiking").stochastic
