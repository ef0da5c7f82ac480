"""Diagnosis: planted faults are named with their layer and cause; a healthy network is quiet."""

import json

import numpy as np
import pytest

import eval_nets as E
from workbench.engine.config import SimConfig
from workbench.analysis.diagnosis import HIGH, diagnose, diagnose_result, format_report
from workbench.analysis.evaluate import evaluate
from workbench.engine.neurons import IF, make_neuron
from workbench.models import network as nw


def run(net, x, y, steps=100, **cfg):
    return diagnose(net, SimConfig(batch=48, **cfg), x, y, steps=steps)


def test_healthy_network_has_no_serious_finding():
    d = run(*E.normalized())
    assert not [f for f in d.findings if f.severity >= 2], format_report(d)


def test_over_scaled_layer_is_named_saturated_first():
    d = run(*E.over_scaled("fc2", 5.0))
    top = d.findings[0]
    assert (top.layer, top.cause, top.severity) == ("fc2", "saturated", HIGH), format_report(d)
    assert top.evidence["ann_over"] > 0.3
    assert 3.0 < top.evidence["threshold_factor"] < 6.0  # the planted factor, read back from the data
    assert "fc2" in top.message and "threshold" in top.suggestion
    # the correlation drop is placed at fc2, not upstream, and points to the saturation
    low_r = [f for f in d.findings if f.cause == "low_correlation"]
    assert [f.layer for f in low_r] == ["fc2"]
    assert "saturated" in low_r[0].suggestion
    # downstream saturation is a consequence, ranked below the cause
    for f in d.findings:
        if f.cause == "saturated" and f.layer != "fc2":
            assert f.severity < HIGH and "fc2" in f.message


def test_dead_layer_is_named_silent_before_conversion():
    d = run(*E.dead("fc2", -50.0))
    top = d.findings[0]
    assert (top.layer, top.cause, top.severity) == ("fc2", "silent", HIGH), format_report(d)
    assert "dead before conversion" in top.message and "-50" in top.message
    assert "fc1" not in {f.layer for f in d.findings if f.severity >= 2}


def test_few_steps_is_a_resolution_or_convergence_problem():
    net, x, y = E.normalized()
    d = run(net, x, y, steps=8)
    causes = {f.cause for f in d.findings}
    assert causes & {"resolution", "not_converged", "silent"}, format_report(d)
    res = [f for f in d.findings if f.cause == "resolution"]
    assert all("k/8" in f.message for f in res)


def test_max_pool_error_is_measured():
    rng = np.random.default_rng(0)
    layers = [
        nw.Layer("input", nw.INPUT, (4, 4, 1)),
        nw.Layer("conv", nw.CONV2D, (4, 4, 2), ("input",), rng.uniform(0.1, 0.4, (3, 3, 1, 2)), np.zeros(2),
                 "relu", config={"strides": [1, 1], "padding": "same"}),
        nw.Layer("pool", nw.MAX_POOL2D, (2, 2, 2), ("conv",), config={"pool_size": [2, 2], "strides": [2, 2],
                                                                       "padding": "valid"}),
        nw.Layer("flat", nw.FLATTEN, (8,), ("pool",)),
        nw.Layer("out", nw.DENSE, (3,), ("flat",), rng.normal(0, 0.5, (8, 3)), np.zeros(3), "linear"),
    ]
    net = nw.Network("pooled", layers)
    x = rng.uniform(0, 1, (32, 4, 4, 1)).astype(np.float32)
    # Poisson input makes the winner change over time: the spiking max falls short of the rate max
    d = diagnose(net, SimConfig(batch=32, encoder="poisson"), x, None, steps=40)
    pool = d.result.layer("pool")
    assert np.isfinite(pool.pool_error) and pool.pool_error > 0
    assert pool.spikes_per_sample > 0 and pool.synops_per_sample == pytest.approx(3 * pool.spikes_per_sample)


def test_negative_spikes_and_quantization_are_reported():
    net, x, y = E.normalized()
    d = run(net, x, y, steps=40, dt=1.0, neuron=make_neuron("regular_spiking", rate_fn="linear"))
    neg = [f for f in d.findings if f.cause == "negative_spikes"]
    assert neg and all(d.result.layer(f.layer).negative > 0 for f in neg), format_report(d)
    q = run(net, x, y, steps=40, neuron=make_neuron("loihi_cuba", weight_bits=3))
    found = [f for f in q.findings if f.cause == "quantization"]
    assert found and all("3-bit" in f.message for f in found), format_report(q)


def test_diagnosis_from_an_existing_run_and_json():
    net, x, y = E.over_scaled()
    result = evaluate(net, SimConfig(batch=48), x, y, steps=60)
    d = diagnose_result(net, result)
    text = json.dumps(d.to_dict())
    assert '"saturated"' in text and d.for_layer("fc2")
    assert "fc2" in format_report(d)


def test_threshold_suggestion_helps():
    net, x, y = E.over_scaled("fc2", 5.0)
    before = evaluate(net, SimConfig(batch=48, readout="spikes"), x, y, steps=100)
    factor = diagnose_result(net, before).findings[0].evidence["threshold_factor"]
    scaled = {n: IF(threshold=factor) for n in ("fc2", "fc3", "out")}
    after = evaluate(net, SimConfig(batch=48, overrides=scaled, readout="spikes"), x, y, steps=100)
    assert after.snn_accuracy[-1] > before.snn_accuracy[-1]
