"""Finding where two traces diverge: planted differences at a known step, layer and neuron."""

import json

import numpy as np
import pytest
from trace_nets import run_trace

from workbench.cli.trace_commands import main as cli
from workbench.analysis.compare import compare_traces, format_comparison
from workbench.engine.trace import LayerTrace, Trace
from workbench.exchange.trace_io import save_trace
from workbench.errors import TraceFileError


@pytest.fixture(scope="module")
def trace():
    return run_trace(steps=20, batch=2, current=False)


def planted(trace, layer, step, sample, coords, spike=None, dv=None, rename=None):
    """A copy of ``trace`` with one cell changed (``step`` is 1-based)."""
    layers = {}
    for name, lt in trace.layers.items():
        spikes, mem = lt.spikes.copy(), lt.membrane.copy()
        if name == layer:
            if spike is not None:
                spikes[(step - 1, sample, *coords)] = spike
            if dv is not None:
                mem[(step - 1, sample, *coords)] += dv
        new = (rename or {}).get(name, name)
        layers[new] = LayerTrace(new, lt.shape, spikes, mem)
    return Trace(layers, trace.steps, trace.predictions, trace.labels, dict(trace.ann), dict(trace.metadata))


def test_equal(trace):
    c = compare_traces(trace, trace)
    assert c.equal and c.first is None
    assert "verdict: equal" in format_comparison(c)


def test_planted_spike_difference(trace):
    old = int(trace["conv2"].spikes[7 - 1, 1, 1, 0, 3])
    b = planted(trace, "conv2", 7, 1, (1, 0, 3), spike=1 - old)
    c = compare_traces(trace, b)
    assert not c.equal
    d = c.first
    assert (d.step, d.layer, d.sample, d.coords, d.field) == (7, "conv2", 1, (1, 0, 3), "spikes")
    assert d.neuron == (1 * 2 + 0) * 6 + 3
    assert (d.spike_a, d.spike_b) == (old, 1 - old)
    assert d.membrane_before_a == pytest.approx(float(trace["conv2"].membrane[5, 1, 1, 0, 3]))
    assert c.first_spike == d
    by = {lc.layer: lc for lc in c.layers}
    assert by["conv2"].spike_mismatches == 1 and by["conv2"].first_step == 7
    assert all(by[n].equal for n in by if n != "conv2")


def test_earliest_step_then_earliest_layer(trace):
    b = planted(trace, "out", 4, 0, (2,), dv=0.5)
    b = planted(b, "fc1", 9, 0, (0,), dv=0.5)
    c = compare_traces(trace, b)
    assert (c.first.step, c.first.layer, c.first.field) == (4, "out", "membrane")
    assert c.first_spike is None
    assert c.first.membrane_b - c.first.membrane_a == pytest.approx(0.5)
    b2 = planted(b, "conv1", 4, 1, (9, 9, 3), dv=1.0)
    assert compare_traces(trace, b2).first.layer == "conv1"  # same step, earlier layer wins


def test_membrane_tolerance(trace):
    b = planted(trace, "fc1", 3, 0, (5,), dv=1e-4)
    assert not compare_traces(trace, b).equal
    c = compare_traces(trace, b, membrane_atol=1e-3)
    assert c.equal
    lc = next(lc for lc in c.layers if lc.layer == "fc1")
    assert lc.membrane_max_abs_diff == pytest.approx(1e-4, rel=1e-2)
    assert lc.membrane_max_abs_diff_by_step[2] == pytest.approx(1e-4, rel=1e-2)
    assert lc.membrane_max_abs_diff_by_step[0] == 0


def test_mapping_and_bad_alignment(trace):
    b = planted(trace, "fc1", 2, 0, (1,), spike=5, rename={"fc1": "dense_a"})
    c = compare_traces(trace, b)
    assert "fc1" in c.only_a and "dense_a" in c.only_b and c.equal
    c = compare_traces(trace, b, mapping={"fc1": "dense_a"})
    assert not c.equal and c.first.layer_b == "dense_a" and [lc.layer for lc in c.layers] == ["fc1"]
    with pytest.raises(TraceFileError, match="no layer 'nope'"):
        compare_traces(trace, b, mapping={"fc1": "nope"})


def test_cli_exit_codes_and_json(trace, tmp_path, capsys):
    a, b, bad = tmp_path / "a.npz", tmp_path / "b.h5", tmp_path / "bad.npz"
    save_trace(trace, a)
    save_trace(planted(trace, "pool2", 11, 0, (0, 1, 2), dv=0.25), b)
    assert cli(["compare", str(a), str(a)]) == 0
    capsys.readouterr()
    assert cli(["compare", str(a), str(b), "--json"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["equal"] is False
    assert out["first"]["step"] == 11 and out["first"]["layer"] == "pool2" and out["first"]["coords"] == [0, 1, 2]
    assert cli(["compare", str(a), str(b), "--membrane-atol", "0.5"]) == 0
    bad.write_bytes(b"garbage")
    assert cli(["compare", str(a), str(bad)]) == 2
    assert "bad.npz" in capsys.readouterr().err
    assert cli(["compare", str(a), str(a), "--map", "x"]) == 2
