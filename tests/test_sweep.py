"""Sweeps: grid parsing, a small sweep on a local Dask cluster equals the serial run exactly."""

import csv
import json

import numpy as np
import pytest

import eval_nets as E
from workbench.cli.main import main
from workbench.analysis import sweep
from workbench.errors import ConfigError


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sweep")
    net = E.mlp()
    x, y = E.data(net, 64)
    net.save(folder / "mlp.npz")
    np.savez(folder / "data.npz", x=x, y=y)
    return str(folder / "mlp.npz"), str(folder / "data.npz"), folder


def test_grid_parsing_and_points():
    grid = sweep.parse_grid(["percentile=99,99.9,100", "threshold_scale=0.8,1,1.2", "steps=50,100",
                             "neuron=if,lif", "reset=subtract,zero"])
    assert grid["percentile"] == [99.0, 99.9, 100.0] and grid["steps"] == [50, 100]
    pts = sweep.points(grid)
    # IF: 3*3*2*2 resets; LIF has neither reset nor threshold: 3*2 points
    assert len(pts) == 3 * 3 * 2 * 2 + 3 * 2
    assert all(p["reset"] == sweep.NA and p["threshold_scale"] == sweep.NA for p in pts if p["neuron"] == "lif")
    for bad, field in (("steps=a", "steps"), ("percentile=101", "percentile"), ("reset=up", "reset"),
                       ("nothing", "grid"), ("threshold_scale=0", "threshold_scale")):
        with pytest.raises(ConfigError) as err:
            sweep.parse_grid([bad])
        assert err.value.field == field
    with pytest.raises(ConfigError) as err:
        sweep.points(sweep.parse_grid(["tau=1"]))
    assert err.value.field == "tau"


def test_pareto_front():
    rows = [{"snn_accuracy": a, "synops_per_sample": o, "chance": 0.1} for a, o in
            [(0.9, 100), (0.95, 200), (0.93, 300), (0.99, 1000), (0.05, 10)]]
    assert [(r["snn_accuracy"], r["synops_per_sample"]) for r in sweep.pareto(rows)] == [
        (0.9, 100), (0.95, 200), (0.99, 1000)]


def test_dask_local_cluster_equals_serial(files):
    model, data, _ = files
    pts = sweep.points(sweep.parse_grid(["percentile=99,100", "threshold_scale=1,1.5", "steps=10,20"]))
    base = {"batch": 32, "samples": 48}
    serial = sweep.run_serial(model, data, None, pts, base)
    seen = []
    dask = sweep.run_dask(model, data, None, pts, base, workers=2, on_result=lambda i, r: seen.append(i))
    assert sorted(seen) == list(range(len(pts)))
    strip = lambda r: {k: v for k, v in r.items() if k != "seconds"}  # noqa: E731
    assert [strip(r) for r in dask] == [strip(r) for r in serial]
    assert len({r["synops_per_sample"] for r in serial}) > 1  # the grid changes the cost
    # the files' bytes shipped to the workers give the same numbers
    shipped = sweep.run_dask(model, data, None, pts[:2], base, workers=1, ship_files=True)
    assert [strip(r) for r in shipped] == [strip(r) for r in serial[:2]]


def test_sweep_command_serial_writes_table_and_plot(files, capsys):
    model, data, folder = files
    out = folder / "result"
    code = main(["sweep", model, "--data", data, "--grid", "steps=5,10", "--grid", "threshold_scale=1,2",
                 "--samples", "32", "--serial", "--no-progress", "--out", str(out)])
    assert code == 0
    text = capsys.readouterr().out
    assert "trade-off curve" in text and "synops/sample" in text
    rows = list(csv.DictReader(open(out.with_suffix(".csv"))))
    assert len(rows) == 4 and {"steps", "threshold_scale", "snn_accuracy", "synops_per_sample"} <= set(rows[0])
    saved = json.loads(out.with_suffix(".json").read_text())
    assert len(saved["points"]) == 4 and saved["pareto"]
    assert out.with_suffix(".png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_sweep_command_errors(files, capsys):
    model, data, _ = files
    assert main(["sweep", model, "--data", data, "--serial"]) == 2
    assert "grid" in capsys.readouterr().err
    assert main(["sweep", model, "--data", data, "--grid", "neuron=nope", "--serial"]) == 2
    assert "nope" in capsys.readouterr().err


def test_shared_files_are_sent_as_absolute_paths(monkeypatch, tmp_path):
    # Workers run in another folder (another machine): a relative path must not reach them.
    import distributed

    sent = []

    class FakeFuture:
        key = "k"

        def result(self):
            return {"ok": True}

    class FakeClient:
        def __init__(self, *a, **k):
            pass

        def submit(self, fn, *args, **kw):
            sent.append(args[:3])
            return FakeFuture()

        def close(self):
            pass

    monkeypatch.setattr(distributed, "Client", FakeClient)
    monkeypatch.setattr(distributed, "as_completed", lambda futures: iter(futures))
    monkeypatch.chdir(tmp_path)
    rows = sweep.run_dask("m.npz", "sub/d.npz", None, [{}], {}, scheduler="tcp://x:1", ship_files=False)
    assert rows == [{"ok": True}]
    assert sent == [(str(tmp_path / "m.npz"), str(tmp_path / "sub" / "d.npz"), None)]
