"""Parameter export: NPZ / raw / C header hold the simulator's arrays; Loihi mantissas too."""

import json
import shutil
import subprocess

import numpy as np
import pytest
from trace_nets import conv_net

from workbench.cli.trace_commands import main as cli
from workbench.engine.config import SimConfig
from workbench.exchange.export_params import export_params
from workbench.engine.neurons import make_neuron


def test_npz_and_raw_hold_the_same_arrays(tmp_path):
    net = conv_net()
    export_params(net, SimConfig(), tmp_path / "p.npz", "npz")
    export_params(net, SimConfig(), tmp_path / "raw", "raw")
    with np.load(tmp_path / "p.npz", allow_pickle=False) as data:
        manifest = json.loads(bytes(data["manifest"]))
        np.testing.assert_array_equal(data["L1.weights"], net["conv1"].weights)
        raw = np.fromfile(tmp_path / "raw" / "L6.weights.bin", "<f4").reshape(24, 12)
        np.testing.assert_array_equal(raw, data["L6.weights"])
    assert manifest == json.loads((tmp_path / "raw" / "manifest.json").read_text())
    assert [rec["kind"] for rec in manifest["layers"]][:3] == ["input", "conv2d", "max_pool2d"]
    assert "layer index=4 kind=conv2d name=conv2 in=3 shape=2,2,6" in (tmp_path / "raw" / "manifest.txt").read_text()


def test_loihi_mantissas_and_exponents(tmp_path):
    export_params(conv_net(), SimConfig(neuron=make_neuron("loihi_cuba")), tmp_path / "q.npz")
    with np.load(tmp_path / "q.npz", allow_pickle=False) as data:
        mant, exp = data["L6.weight_mant"], int(data["L6.weight_exp"][0])
        assert mant.dtype == np.int32 and np.abs(mant).max() <= 128
        np.testing.assert_array_equal(mant * 2.0**exp, data["L6.weights"])
        assert data["L6.bias_int"].shape == (12,)


@pytest.mark.skipif(shutil.which("cc") is None, reason="no C compiler (cc) on PATH")
def test_c_header_compiles(tmp_path):
    export_params(conv_net(), None, tmp_path / "net.h", "c")
    (tmp_path / "m.c").write_text('#include "net.h"\nint main(void) { return !(snn_layers[4].shape[2] == 6 && '
                                  'snn_L6_weights[0] == %sf); }\n' % repr(float(conv_net()["fc1"].weights[0, 0])))
    subprocess.run(["cc", "-std=c99", "-Wall", "-Werror", "-Wno-unused-variable", "-o", str(tmp_path / "m"),
                    str(tmp_path / "m.c")], check=True)
    assert subprocess.run([str(tmp_path / "m")]).returncode == 0


def test_cli_export_commands(tmp_path, capsys):
    net = conv_net()
    net.save(tmp_path / "net.npz")
    assert cli(["export-params", str(tmp_path / "net.npz"), str(tmp_path / "out"), "--format", "raw"]) == 0
    assert (tmp_path / "out" / "manifest.txt").exists()
    assert cli(["export-nir", str(tmp_path / "net.npz"), str(tmp_path / "n.nir")]) == 2
    assert "'pool1'" in capsys.readouterr().err
