"""Evaluation: top-k curves, synaptic operations from fan-out, cancel keeps finished batches."""

import numpy as np
import pytest

import eval_nets as E
from trace_nets import conv_net
from workbench.engine.config import SimConfig
from workbench.analysis.evaluate import evaluate
from workbench.engine.fanout import fan_out
from workbench.engine.simulator import Simulator
from workbench.models import network as nw
from workbench.models.forward import _pad_hw, _windows, preactivation


def _linear_copy(net: nw.Network) -> nw.Network:
    """Same graph, every weight 1, bias 0, no activation: outputs count connections."""
    out = net.copy()
    for layer in out.layers:
        layer.activation = "linear"
        if layer.weights is not None:
            layer.weights = np.ones_like(layer.weights)
            layer.bias = np.zeros_like(layer.bias)
    return out


@pytest.mark.parametrize("make", [conv_net, E.mlp])
def test_fan_out_counts_every_synapse(make):
    """fan_out[src][i] equals d(sum of the next neuron layer's pre-activations)/d(src_i) with unit
    weights: the number of synapses element i drives. Checked by probing each element."""
    net = _linear_copy(make())
    fo = fan_out(net)
    for src, expected in fo.items():
        consumers = [c for c in net.consumers(src)]
        shape = net[src].output_shape
        size = int(np.prod(shape))
        probe = np.eye(size).reshape((size, *shape))
        got = np.zeros(size)
        # walk look-through layers down to the neuron layers, feeding the probe
        vals = {src: probe}
        for layer in net.layers[net.index(src) + 1:]:
            if not set(layer.inbound) & set(vals):
                continue
            if layer.kind == nw.MAX_POOL2D:
                continue  # counted at the pool's own output
            ins = [vals.get(s, np.zeros((size, *net[s].output_shape))) for s in layer.inbound]
            if layer.kind == nw.AVG_POOL2D:  # a sum over the window, not the mean
                cfg = layer.config
                z = _windows(_pad_hw(ins[0], cfg["pool_size"], cfg["strides"], cfg["padding"]),
                             cfg["pool_size"], cfg["strides"]).sum(axis=(4, 5))
            else:
                z = preactivation(layer, ins)
            if layer.is_neuron_layer:
                got += z.reshape(size, -1).sum(axis=1)
            else:
                vals[layer.name] = z
        assert np.array_equal(expected.reshape(-1), got.astype(np.int64)), src
        assert consumers or expected.sum() == 0


def test_synops_are_spikes_times_fan_out():
    net, x, y = E.normalized()
    r = evaluate(net, SimConfig(batch=40, readout="spikes"), x[:80], y[:80], steps=30)
    sim = Simulator(net, SimConfig(batch=80, steps=30, record=(), readout="spikes"), x[:80])
    sim.run(30)
    fo = fan_out(net)
    for name in ("fc1", "fc2", "fc3", "out"):
        counts = sim.layer(name).counts
        le = r.layer(name)
        assert le.spikes_per_sample == pytest.approx(counts.sum() / 80)
        assert le.synops_per_sample == pytest.approx((counts * fo[name]).sum() / 80)
    assert r.synops_per_sample == pytest.approx(sum(r.layer(n).synops_per_sample for n in ("fc1", "fc2", "fc3")))
    assert r.layer("out").synops_per_sample == 0


def test_top_k_curves_are_monotone_in_k_and_match_top_1():
    net, x, y = E.normalized()
    r = evaluate(net, SimConfig(batch=32), x, y, steps=20, top_k=(2, 3))
    assert r.top_k == (1, 2, 3)
    assert np.array_equal(r.snn_topk[1], r.snn_accuracy)
    assert np.all(r.snn_topk[1] <= r.snn_topk[2]) and np.all(r.snn_topk[2] <= r.snn_topk[3])
    assert r.ann_topk[1] == r.ann_accuracy == 1.0  # labels are the ANN's own
    assert r.snn_topk[3][-1] >= r.snn_topk[1][-1]
    # top-1 over time agrees with the simulator's own predictions, batch by batch
    sim = Simulator(net, SimConfig(batch=32, steps=20), x[:32], y[:32])
    sim.run(20)
    preds = sim.recorder.trace(layers=()).predictions
    part = evaluate(net, SimConfig(batch=32), x[:32], y[:32], steps=20)
    assert np.array_equal(part.snn_accuracy, (preds == y[:32]).mean(axis=1))


def test_cancel_keeps_finished_batches_and_reports_them():
    net, x, y = E.normalized()
    seen = []
    calls = {"n": 0}

    def stop():
        calls["n"] += 1
        return calls["n"] > 2 * 10 + 3  # during the third batch of 10 steps

    r = evaluate(net, SimConfig(batch=16), x, y, steps=10, should_stop=stop, on_batch=seen.append)
    assert not r.completed and r.samples == 32 and r.total == len(x)
    assert [p.samples for p in seen] == [16, 32] and not seen[-1].completed
    full = evaluate(net, SimConfig(batch=16), x[:32], y[:32], steps=10)
    assert np.array_equal(full.snn_accuracy, r.snn_accuracy)
    assert full.synops_per_sample == r.synops_per_sample


def test_unlabelled_and_json():
    import json

    net, x, _ = E.normalized()
    r = evaluate(net, SimConfig(batch=50), x, None, steps=5, top_k=(2,))
    assert not r.labelled and np.isnan(r.ann_accuracy) and len(r.predictions) == len(x)
    d = json.loads(json.dumps(r.to_dict()))
    assert d["samples"] == len(x) and d["chance"] == pytest.approx(0.25)


# ---- the command line --------------------------------------------------------------------------
@pytest.fixture()
def mlp_files(tmp_path):
    net = E.mlp()
    x, y = E.data(net, 64)
    net.save(tmp_path / "mlp.npz")
    np.savez(tmp_path / "data.npz", x=x, y=y)
    return str(tmp_path / "mlp.npz"), str(tmp_path / "data.npz"), tmp_path


def test_evaluate_command_writes_json_csv_png(mlp_files, capsys):
    import json

    from workbench.cli.main import main

    model, data, folder = mlp_files
    out = folder / "ev"
    assert main(["evaluate", model, "--data", data, "--steps", "20", "--batch", "16", "--top-k", "2",
                 "--no-progress", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "top-1" in text and "top-2" in text and "synaptic operations per sample" in text
    saved = json.loads(out.with_suffix(".json").read_text())
    assert saved["completed"] and saved["samples"] == 64 and len(saved["snn_topk"]["2"]) == 20
    lines = out.with_suffix(".csv").read_text().splitlines()
    assert lines[0] == "step,top1,top2" and len(lines) == 21
    assert out.with_suffix(".png").read_bytes()[:4] == b"\x89PNG"


def test_evaluate_command_ctrl_c_keeps_finished_batches(mlp_files, capsys, monkeypatch):
    """The first Ctrl-C (here raised by the progress callback during the second batch) stops after
    the running batch is dropped; the finished batch is written."""
    import json
    import signal

    from workbench.cli import eval_commands as cli_eval
    from workbench.cli.main import main

    model, data, folder = mlp_files
    real = cli_eval.progress_bar

    def progress(total, unit, enabled):
        def update(done, _total=None):
            if done == 30:  # steps 21..40 are the second batch of 20
                signal.raise_signal(signal.SIGINT)
        return update, (lambda: None)

    monkeypatch.setattr(cli_eval, "progress_bar", progress)
    before = signal.getsignal(signal.SIGINT)  # SIG_IGN where the runner was started in the background
    out = folder / "part"
    assert main(["evaluate", model, "--data", data, "--steps", "20", "--batch", "32", "--no-plot",
                 "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert "32 of 64 samples finished" in captured.out and "stopping" in captured.err
    saved = json.loads(out.with_suffix(".json").read_text())
    assert saved["samples"] == 32 and saved["completed"] is False
    assert signal.getsignal(signal.SIGINT) is before  # handler restored
    assert real is not progress


def test_diagnose_command_names_the_planted_layer(tmp_path, capsys):
    import json

    from workbench.cli.main import main

    net, x, y = E.over_scaled("fc2", 5.0)
    net.save(tmp_path / "bad.npz")
    np.savez(tmp_path / "data.npz", x=x, y=y)
    assert main(["diagnose", str(tmp_path / "bad.npz"), "--data", str(tmp_path / "data.npz"), "--normalize", "0",
                 "--json", str(tmp_path / "d.json"), "--no-progress"]) == 0
    text = capsys.readouterr().out
    first = next(line for line in text.splitlines() if line.strip().startswith("1."))
    assert "saturated" in first and "fc2" in first
    saved = json.loads((tmp_path / "d.json").read_text())
    assert saved["findings"][0]["layer"] == "fc2"
