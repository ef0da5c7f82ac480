"""IF engine: analytic single neurons, and the numba kernels against the numpy reference."""

import numpy as np
import pytest

from workbench.engine.config import SimConfig
from workbench.engine.neurons import IF, make_neuron
from workbench.engine.reference import run_reference
from workbench.engine.simulator import Simulator
from workbench.errors import ConfigError
from workbench.models.network import Layer, Network


def one_neuron(weight=1.0, bias=0.0):
    return Network("one", [
        Layer("in", "input", (1,)),
        Layer("n", "dense", (1,), ("in",), weights=np.full((1, 1), weight), bias=np.full(1, bias), activation="relu"),
    ])


def spike_steps(sim, steps):
    sim.run(steps)
    tr = sim.trace()
    return [int(t) for t in tr.steps[np.nonzero(tr["n"].spikes[:, 0, 0])[0]]]


def test_constant_input_spikes_at_analytic_steps():
    sim = Simulator(one_neuron(), SimConfig(steps=30), x=np.full((1, 1), 0.3, np.float32))
    assert spike_steps(sim, 30) == [4, 7, 10, 14, 17, 20, 24, 27, 30]
    # membrane is recorded after the reset: 0.3, 0.6, 0.9, then 1.2 - 1 = 0.2
    np.testing.assert_allclose(sim.trace()["n"].membrane[:4, 0, 0], [0.3, 0.6, 0.9, 0.2], atol=1e-6)


def test_reset_to_zero_loses_the_overshoot():
    cfg = SimConfig(neuron=IF(reset="zero"), steps=12)
    sim = Simulator(one_neuron(), cfg, x=np.full((1, 1), 0.3, np.float32))
    # 0.3 0.6 0.9 1.2->0 | 0.3 0.6 0.9 1.2->0 ...: every 4th step, fewer spikes than subtraction
    assert spike_steps(sim, 12) == [4, 8, 12]


def test_reset_modulo_keeps_the_remainder_of_large_overshoots():
    cfg = SimConfig(neuron=IF(reset="modulo"), steps=3)
    sim = Simulator(one_neuron(weight=2.5), cfg, x=np.ones((1, 1), np.float32))
    sim.run(3)
    # v: 2.5 -> spike, 2.5 mod 1 = 0.5; 3.0 -> spike, 0; 2.5 -> spike, 0.5 (one spike per step)
    np.testing.assert_allclose(sim.trace()["n"].membrane[:, 0, 0], [0.5, 0.0, 0.5], atol=1e-6)
    assert sim.trace()["n"].spikes[:, 0, 0].tolist() == [1, 1, 1]


def test_bias_is_integrated_each_step_and_threshold_scales_output():
    cfg = SimConfig(neuron=IF(threshold=0.5), steps=4)
    sim = Simulator(one_neuron(weight=0.0, bias=0.25), cfg, x=np.zeros((1, 1), np.float32))
    assert spike_steps(sim, 4) == [2, 4]
    assert sim.layer("n").out_scale == pytest.approx(0.5)  # a spike carries the threshold


def test_prediction_is_argmax_of_cumulative_counts_and_minus_one_before_any_spike():
    net = Network("two", [
        Layer("in", "input", (1,)),
        Layer("out", "dense", (2,), ("in",), weights=np.array([[0.3, 0.5]]), bias=np.zeros(2), activation="softmax"),
    ])
    sim = Simulator(net, SimConfig(steps=5, readout="spikes"), x=np.ones((1, 1), np.float32))
    sim.step()
    assert sim.prediction().tolist() == [-1]
    sim.step()
    assert sim.prediction().tolist() == [1]


def test_step_layer_moves_a_visible_cursor_through_one_timestep():
    net = one_neuron()
    sim = Simulator(net, SimConfig(steps=5), x=np.full((1, 1), 0.6, np.float32))
    assert (sim.t, sim.cursor) == (0, 0)
    assert sim.step_layer().layer.name == "in"
    assert (sim.t, sim.cursor) == (0, 1)
    assert sim.step_layer().layer.name == "n"
    assert (sim.t, sim.cursor) == (1, 0)
    sim.step_layer()
    sim.step()  # finishes the started timestep only
    assert (sim.t, sim.cursor) == (2, 0)
    assert sim.layer("n").counts[0, 0] == 1


def test_poisson_input_is_seeded():
    net = one_neuron()
    cfg = SimConfig(encoder="poisson", seed=7, steps=50)
    a = Simulator(net, cfg, x=np.full((1, 1), 0.5, np.float32))
    b = Simulator(net, cfg, x=np.full((1, 1), 0.5, np.float32))
    c = Simulator(net, cfg.replace(seed=8), x=np.full((1, 1), 0.5, np.float32))
    for s in (a, b, c):
        s.run(50)
    assert np.array_equal(a.trace()["n"].spikes, b.trace()["n"].spikes)
    assert not np.array_equal(a.trace()["n"].spikes, c.trace()["n"].spikes)
    assert 10 < a.layer("n").counts[0, 0] < 40


def test_ring_buffer_keeps_only_the_newest_steps():
    sim = Simulator(one_neuron(), SimConfig(steps=5), x=np.full((1, 1), 0.3, np.float32), record_capacity=5)
    sim.run(12)
    tr = sim.trace()
    assert tr.steps.tolist() == [8, 9, 10, 11, 12]
    assert tr["n"].spikes[:, 0, 0].tolist() == [0, 0, 1, 0, 0]


@pytest.mark.parametrize("field,kwargs", [("threshold", {"threshold": 0}), ("reset", {"reset": "sideways"})])
def test_bad_parameters_name_the_field(field, kwargs):
    with pytest.raises(ConfigError) as err:
        make_neuron("if", **kwargs)
    assert err.value.field == field


@pytest.mark.parametrize("field,kwargs", [("steps", {"steps": 0}), ("dt", {"dt": -1.0}),
                                          ("encoder", {"encoder": "morse"}), ("seed", {"seed": -3})])
def test_bad_config_names_the_field(field, kwargs):
    with pytest.raises(ConfigError) as err:
        SimConfig(**kwargs)
    assert err.value.field == field


# ---- kernels against the numpy reference ---------------------------------------------------
def dyadic(rng, shape, scale):
    """Random values on a 1/256 grid: every float32 sum of them is exact, in any order, so the
    event-driven, BLAS and reference paths must agree to the last spike."""
    return (np.round(rng.normal(0, scale, shape) * 256) / 256).astype(np.float32)


def random_conv_net(rng):
    return Network("rand_conv", [
        Layer("in", "input", (9, 9, 2)),
        Layer("c1", "conv2d", (9, 9, 4), ("in",), dyadic(rng, (3, 3, 2, 4), 0.4), dyadic(rng, (4,), 0.05),
              "relu", config={"strides": [1, 1], "padding": "same"}),
        Layer("pad", "zero_pad2d", (11, 11, 4), ("c1",), config={"padding": [[1, 1], [1, 1]]}),
        Layer("c2", "conv2d", (5, 5, 6), ("pad",), dyadic(rng, (3, 3, 4, 6), 0.3), dyadic(rng, (6,), 0.05),
              "relu", config={"strides": [2, 2], "padding": "valid"}),
        Layer("dw", "depthwise_conv2d", (5, 5, 12), ("c2",), dyadic(rng, (3, 3, 6, 2), 0.5), dyadic(rng, (12,), 0.05),
              "relu", config={"strides": [1, 1], "padding": "same"}),
        Layer("mp", "max_pool2d", (3, 3, 12), ("dw",), config={"pool_size": [2, 2], "strides": [2, 2], "padding": "same"}),
        Layer("ap", "avg_pool2d", (1, 1, 12), ("mp",), config={"pool_size": [2, 2], "strides": [2, 2], "padding": "valid",
                                                                "input_scales": [1.0]}),
        Layer("fl", "flatten", (12,), ("ap",)),
        Layer("out", "dense", (5,), ("fl",), dyadic(rng, (12, 5), 0.5), dyadic(rng, (5,), 0.05), "softmax"),
    ])


def random_dense_net(rng):
    return Network("rand_dense", [
        Layer("in", "input", (40,)),
        Layer("d1", "dense", (64,), ("in",), dyadic(rng, (40, 64), 0.3), dyadic(rng, (64,), 0.05), "relu"),
        Layer("d2", "dense", (32,), ("d1",), dyadic(rng, (64, 32), 0.4), dyadic(rng, (32,), 0.05), "relu"),
        Layer("d3", "dense", (32,), ("d1",), dyadic(rng, (64, 32), 0.4), dyadic(rng, (32,), 0.05), "relu"),
        Layer("add", "add", (32,), ("d2", "d3"), config={"input_scales": [1.0, 0.5]}),
        Layer("cat", "concatenate", (64,), ("add", "d2"), config={"axis": 0}),
        Layer("gap_in", "reshape", (4, 4, 4), ("cat",), config={"target_shape": [4, 4, 4]}),
        Layer("ap", "avg_pool2d", (2, 2, 4), ("gap_in",), config={"pool_size": [2, 2], "strides": [2, 2],
                                                                   "padding": "valid", "input_scales": [0.75]}),
        Layer("gap", "global_avg_pool2d", (4,), ("ap",), config={"input_scales": [1.0]}),
        Layer("out", "dense", (3,), ("gap",), dyadic(rng, (4, 3), 0.8), dyadic(rng, (3,), 0.05), "softmax"),
    ])


@pytest.mark.parametrize("builder", [random_conv_net, random_dense_net])
@pytest.mark.parametrize("reset", ["subtract", "zero"])
def test_kernels_equal_numpy_reference(builder, reset):
    rng = np.random.default_rng(1234)
    net = builder(rng)
    x = (np.round(rng.uniform(0, 1, (3, *net.input_shape)) * 16) / 16).astype(np.float32)
    sim = Simulator(net, SimConfig(neuron=IF(reset=reset), steps=50), x=x)
    sim.run(50)
    tr = sim.trace()
    ref = run_reference(net, x, 50, reset=reset)
    total = 0
    for name, spikes in ref.items():
        assert np.array_equal(tr[name].spikes, spikes), f"layer {name} differs"
        total += int(spikes.sum())
    assert total > 500  # the networks are active, the comparison is not vacuous


def test_rate_scale_multiplies_currents_and_divides_spike_values():
    net = one_neuron()
    plain = Simulator(net, SimConfig(steps=10), x=np.full((1, 1), 0.3, np.float32))
    scaled = Simulator(net, SimConfig(steps=10, rate_scale=2.0), x=np.full((1, 1), 0.3, np.float32))
    plain.run(10)
    scaled.run(10)
    assert plain.layer("n").counts[0, 0] == 3 and scaled.layer("n").counts[0, 0] == 6
    assert scaled.layer("n").out_scale == pytest.approx(0.5)
    with pytest.raises(ConfigError) as err:
        SimConfig(rate_scale=0)
    assert err.value.field == "rate_scale"


def test_stats_mid_step_count_the_advanced_layers_steps():
    from workbench.analysis.layer_stats import simulator_stats

    sim = Simulator(one_neuron(), SimConfig(steps=5), x=np.ones((1, 1), np.float32))
    sim.step()
    sim.step_layer()
    sim.step_layer()  # completes step 2
    sim.step_layer()  # input of step 3 only: the neuron layer still holds 2 steps
    assert simulator_stats(sim)[0].max_rate == 1.0
    sim2 = Simulator(Network("two", [*one_neuron().layers[:2],
                                     Layer("m", "dense", (1,), ("n",), weights=np.ones((1, 1)), bias=np.zeros(1))]),
                     SimConfig(steps=5), x=np.ones((1, 1), np.float32))
    sim2.step()
    sim2.step_layer()
    sim2.step_layer()  # 'n' has 2 steps, 'm' still 1
    stats = {s.name: s for s in simulator_stats(sim2)}
    assert stats["n"].max_rate == 1.0 and stats["m"].max_rate == 1.0
