"""The commands around import: quiet TensorFlow, convert -> run of a saved normalized network,
the convert output suffix, export commands given a Keras file (converted on the fly), whole
layer names."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from workbench.analysis.layer_stats import LayerStats, format_table
from workbench.cli.main import main
from workbench.models.loading import DEMO_CALIBRATION, DEMO_KERAS, DEMO_TEST
from workbench.models.network import Network

REPO = Path(__file__).resolve().parent.parent


def run_cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    """The demo Keras model converted and normalized, saved under a name without suffix."""
    folder = tmp_path_factory.mktemp("convert")
    code = main(["convert", str(DEMO_KERAS), str(folder / "net"), "--calibration", str(DEMO_CALIBRATION)])
    assert code == 0
    return folder / "net.npz"


def test_convert_adds_the_suffix_and_refuses_another(converted, capsys, tmp_path):
    assert converted.is_file() and not converted.with_suffix("").exists()
    assert Network.load(converted).scales  # saved normalized
    code, _, err = run_cli(capsys, "convert", str(DEMO_KERAS), str(tmp_path / "net.keras"))
    assert code == 2 and "net.keras" in err and "an .npz file" in err
    assert not (tmp_path / "net.keras").exists()


def test_a_saved_normalized_network_runs_as_saved(converted, capsys):
    saved = Network.load(converted)
    code, out, err = run_cli(capsys, "run", str(converted), "--data", str(DEMO_TEST), "--steps", "5",
                             "--samples", "8", "--no-progress")
    assert code == 0, err
    assert "runs as saved" in out and "percentile 99.9 on" in out
    assert Network.load(converted).fingerprint() == saved.fingerprint()


def test_export_given_a_keras_file_converts_it_on_the_fly(capsys, tmp_path):
    code, out, err = run_cli(capsys, "export-params", str(DEMO_KERAS), str(tmp_path / "params.npz"))
    assert code == 0, err
    assert (tmp_path / "params.npz").is_file() and "wrote" in out


def test_layer_table_shows_whole_names():
    name = "global_average_pooling2d_with_a_long_name"
    table = format_table([LayerStats(name, 10, 0.1, 0.5, 0.0, 0.0, 0.9), LayerStats("fc", 4, 0.2, 0.4, 0.0, 0.0, 0.8)])
    lines = table.splitlines()
    assert lines[2].startswith(name + " ") and lines[3].startswith("fc" + " " * (len(name) - 1))
    assert len({len(line) for line in lines}) == 1


def test_tensorflow_start_up_noise_is_quiet():
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    env["PYTHONPATH"] = str(REPO)
    proc = subprocess.run([sys.executable, "-m", "workbench", "verify", str(DEMO_KERAS), "--samples", "2"],
                          capture_output=True, text=True, timeout=300, env=env, cwd=REPO, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == "" and "OK:" in proc.stdout
