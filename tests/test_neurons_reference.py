"""Published reference values, step for step (dt = 0.001 unless said, initial state 0)."""

import numpy as np
import pytest

from workbench.engine.neurons import make_neuron


def run_single(model, J, steps, dt):
    state = model.init_state(1)
    spikes = np.zeros(1, dtype=np.float32)
    rng = np.random.default_rng(0)
    out, membrane = [], []
    for _ in range(steps):
        model.step(np.array([J], dtype=np.float32), dt, state, spikes, rng)
        out.append(float(spikes[0]))
        membrane.append(state[model.membrane_var][0].item())
    return np.array(out), membrane


def spike_steps(out):
    return [int(i) for i in np.flatnonzero(out)]


def test_nengo_lif_j10():
    out, v = run_single(make_neuron("lif"), 10.0, 20, 0.001)
    assert spike_steps(out) == [2, 6, 10, 14, 18]
    assert v[0] == 0.4877057549928599
    assert set(out[out != 0]) == {1.0}
    assert make_neuron("lif").output_scale(0.001) == 1000.0


def test_regular_spiking_tanh():
    model = make_neuron("regular_spiking", rate_fn="tanh")
    out, _ = run_single(model, 0.5, 20, 0.001)
    assert spike_steps(out) == [5, 10, 16] and set(out[out != 0]) == {1.0}
    out, _ = run_single(model, -0.5, 20, 0.001)
    assert spike_steps(out) == [0, 5, 10, 16] and set(out[out != 0]) == {-1.0}
    assert model.signed


def test_loihi_lif_j10():
    out, _ = run_single(make_neuron("loihi_lif"), 10.0, 20, 0.001)
    assert spike_steps(out) == [2, 7, 12, 17]


def test_lava_bit_accurate_bias_only():
    model = make_neuron("loihi_cuba", du=4095, dv=205, bias_mant=40, bias_exp=6, vth=100)
    out, v = run_single(model, 0.0, 9, 1.0)
    assert v == [2560, 4991, 0] * 3
    assert spike_steps(out) == [2, 5, 8]


def test_lava_decay_is_sign_magnitude_and_current_offset():
    # u decays with du + 1 (ds_offset); negative values truncate toward zero like positive ones.
    model = make_neuron("loihi_cuba", du=2047, dv=1024, vth=1000)
    state = model.init_state(2)
    state["u"][:] = [1001, -1001]
    state["v"][:] = [999, -999]
    spikes = np.zeros(2, np.float32)
    model.step(np.zeros(2, np.float32), 1.0, state, spikes, None)
    # u: 1001*2048 >> 12 = 500 (-500); v: 999*3072 >> 12 = 749 (-749), plus u
    assert state["u"].tolist() == [500, -500]
    assert state["v"].tolist() == [749 + 500, -749 - 500]


def test_lava_refractory_delay_holds_voltage():
    model = make_neuron("loihi_cuba", dv=0, vth=1, bias_mant=100, refractory_delay=2)
    out, v = run_single(model, 0.0, 8, 1.0)
    # v: 100, then spike at 64 < 200 -> step 1 spikes (v=200 > 64), held 2 steps, ...
    assert spike_steps(out) == [0, 3, 6]
    assert v[:4] == [0, 0, 0, 0]


def test_loihi_relu_step_vs_rate_formula_at_j100():
    """nengo-loihi's rate formula says every 10 steps; its step function fires every 11."""
    model = make_neuron("loihi_relu")
    out, _ = run_single(model, 100.0, 40, 0.001)
    assert spike_steps(out) == [10, 21, 32]
    assert model.reference_rate(100.0, 0.001) == pytest.approx(100.0)
    assert model.rate(100.0, 0.001) == pytest.approx(1000 / 11)


@pytest.mark.parametrize("threshold,J,expected_v", [(1.0, 2.5, 0.5), (0.3, 1.0, 0.1), (2.0, 7.0, 1.0)])
def test_if_reset_by_modulo(threshold, J, expected_v):
    model = make_neuron("if", threshold=threshold, reset="modulo")
    out, v = run_single(model, J, 1, 1.0)
    assert v[0] == pytest.approx(expected_v, abs=1e-6)
    assert out[0] == 1.0  # one spike per step, however many thresholds were dropped


def test_if_modulo_vs_subtract():
    mod, vm = run_single(make_neuron("if", reset="modulo"), 2.5, 3, 1.0)
    sub, vs = run_single(make_neuron("if", reset="subtract"), 2.5, 3, 1.0)
    assert vm == pytest.approx([0.5, 0.0, 0.5])  # 2.5 -> .5, 3.0 -> 0, 2.5 -> .5
    assert vs == pytest.approx([1.5, 3.0, 4.5])  # subtraction loses the surplus only slowly
    assert mod.tolist() == sub.tolist() == [1.0, 1.0, 1.0]
