"""The command line: the demo run, verification, conversion, and one-line errors."""

import subprocess
import sys

import numpy as np
import pytest

from workbench.cli.main import main
from workbench.models.loading import DEMO_KERAS
from workbench.models.network import Network


def run_cli(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_run_demo_prints_layer_table_and_accuracies(capsys):
    code, out, err = run_cli(capsys, "run", "--demo", "--samples", "40", "--steps", "60", "--no-progress")
    assert code == 0, err
    for layer in ("conv1", "conv2", "pool1", "conv3", "fc1", "output"):
        assert f"\n{layer} " in out
    assert "ANN accuracy" in out and "SNN accuracy" in out
    snn = float(out.split("SNN accuracy")[1].split("%")[0])
    assert snn >= 90.0
    assert "40 samples x 60 steps" in out


def test_unknown_neuron_is_one_line_and_exit_2(capsys):
    code, out, err = run_cli(capsys, "run", "--demo", "--neuron", "bogus")
    assert code == 2
    assert err.strip().count("\n") == 0 and "unknown neuron type 'bogus'" in err
    assert "Traceback" not in err


def test_bad_parameter_names_the_field(capsys):
    code, _, err = run_cli(capsys, "run", "--demo", "--param", "threshold=-1")
    assert code == 2 and err.startswith("snn-workbench: error: threshold:")


def test_missing_model_file_names_it(capsys, tmp_path):
    code, _, err = run_cli(capsys, "run", str(tmp_path / "nope.keras"), "--data", str(tmp_path / "d.npz"))
    assert code == 2 and "nope.keras" in err


def test_debug_shows_the_traceback(capsys):
    code, _, err = run_cli(capsys, "--debug", "run", "--demo", "--neuron", "bogus")
    assert code == 2 and "Traceback" in err


def test_bad_data_shape_names_the_file(capsys, tmp_path):
    bad = tmp_path / "bad.npz"
    np.savez(bad, x=np.zeros((5, 3, 3), np.float32))
    code, _, err = run_cli(capsys, "run", "--demo", "--data", str(bad))
    assert code == 2 and "bad.npz" in err


def test_convert_and_verify_the_demo_keras_model(capsys, tmp_path):
    out_path = tmp_path / "demo.npz"
    code, out, err = run_cli(capsys, "convert", str(DEMO_KERAS), str(out_path))
    assert code == 0, err
    net = Network.load(out_path)
    assert [l.name for l in net.layers][-1] == "output"
    code, out, err = run_cli(capsys, "verify", str(DEMO_KERAS), "--samples", "8")
    assert code == 0, out + err
    assert "OK:" in out


def test_python_m_workbench_runs_the_same_cli():
    proc = subprocess.run([sys.executable, "-m", "workbench", "neurons"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "if " in proc.stdout and "lif " in proc.stdout


def test_evaluate_checks_the_output_folder_before_running(capsys, tmp_path, monkeypatch):
    import workbench.analysis.evaluate as evaluate_module

    (tmp_path / "file").write_text("not a folder")
    monkeypatch.setattr(evaluate_module, "evaluate", lambda *a, **k: pytest.fail("ran before checking --out"))
    code, _, err = run_cli(capsys, "evaluate", "--demo", "--out", str(tmp_path / "file" / "sub" / "res"))
    assert code == 2 and "out: cannot create the folder" in err and "sub" in err


def test_evaluate_creates_the_output_folder(capsys, tmp_path):
    code, out, err = run_cli(capsys, "evaluate", "--demo", "--samples", "8", "--steps", "5", "--no-plot",
                             "--no-progress", "--out", str(tmp_path / "results" / "demo"))
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "results").iterdir()) == ["demo.csv", "demo.json"]


def test_debug_after_the_sub_command_shows_the_traceback(capsys):
    code, _, err = run_cli(capsys, "run", "--demo", "--neuron", "bogus", "--debug")
    assert code == 2 and "Traceback" in err
    code, _, err = run_cli(capsys, "run", "--demo", "--neuron", "bogus")
    assert code == 2 and "Traceback" not in err


def test_prepare_reports_the_normalization_layer_by_layer():
    """What the commands' "normalizing" bar follows (on a terminal)."""
    from workbench.models.prepare import prepare

    seen = []
    prep = prepare(None, demo=True, on_progress=lambda done, total: seen.append((done, total)))
    total = len(prep.original.layers) + len(prep.original.neuron_layers)
    assert seen == [(i, total) for i in range(1, total + 1)] and prep.network.scales



def test_a_first_run_says_it_compiles_before_the_bar_moves(capsys, monkeypatch):
    from workbench.analysis import warmup

    monkeypatch.setattr(warmup, "_WARM", [False])
    monkeypatch.setattr(warmup, "kernels_cached", lambda: False)
    code, _, err = run_cli(capsys, "run", "--demo", "--steps", "5", "--samples", "2", "--no-progress")
    assert code == 0 and "Compiling the engine's kernels" in err
    monkeypatch.setattr(warmup, "kernels_cached", lambda: True)  # filled: nothing said
    code, _, err = run_cli(capsys, "run", "--demo", "--steps", "5", "--samples", "2", "--no-progress")
    assert code == 0 and "Compiling" not in err


def test_help_texts_match_what_the_commands_do(capsys):
    from workbench.cli.main import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, __import__("argparse")._SubParsersAction))
    nir_help = sub.choices["export-nir"].format_help()
    assert "--format" not in nir_help and "NIR file" in nir_help
    assert "--format raw" in sub.choices["export-params"].format_help()
    code, out, _ = run_cli(capsys, "neurons")
    cuba = out.split("loihi_cuba", 1)[1].split("\n", 1)[0]
    assert code == 0 and "first weighted layer under constant input to a << 6 = round(J*64)" in cuba


def test_record_trace_layer_choice(capsys, tmp_path):
    from workbench.exchange.trace_io import load_trace

    base = ("run", "--demo", "--samples", "2", "--steps", "6", "--no-progress")
    code, _, err = run_cli(capsys, *base, "--record-trace", str(tmp_path / "all.csv"))
    assert code == 2 and "trace-layer: a CSV trace holds one layer: add --trace-layer NAME, one of conv1, conv2" in err
    code, _, err = run_cli(capsys, *base, "--record-trace", str(tmp_path / "x.npz"), "--trace-layer", "nope")
    assert code == 2 and "no neuron layer 'nope'" in err
    code, _, err = run_cli(capsys, *base, "--record-trace", str(tmp_path / "x.csv"), "--trace-layer", "fc1",
                           "--trace-layer", "conv1")
    assert code == 2 and "holds one layer, 2 were named" in err
    for name in ("fc1.csv", "fc1.npz"):
        code, _, err = run_cli(capsys, *base, "--record-trace", str(tmp_path / name), "--trace-layer", "fc1")
        assert code == 0, err
        trace = load_trace(tmp_path / name)
        assert list(trace.layers) == ["fc1"] and trace.layers["fc1"].spikes.shape[:2] == (6, 2)
    full = load_trace(tmp_path / "fc1.npz")
    code, _, err = run_cli(capsys, *base, "--record-trace", str(tmp_path / "every.npz"))
    assert code == 0, err
    every = load_trace(tmp_path / "every.npz")
    assert len(every.layers) == 6
    assert np.array_equal(every.layers["fc1"].spikes, full.layers["fc1"].spikes)


def test_a_network_saved_normalized_runs_as_saved_unless_normalize_is_given(capsys, tmp_path):
    from workbench.models.loading import DEMO_CALIBRATION, DEMO_NETWORK, DEMO_TEST

    net = tmp_path / "net.npz"
    code, out, err = run_cli(capsys, "convert", str(DEMO_NETWORK), str(net), "--calibration", str(DEMO_CALIBRATION))
    assert code == 0 and "saved normalized network" in out, err
    base = ("run", str(net), "--data", str(DEMO_TEST), "--samples", "8", "--steps", "20", "--no-progress")
    code, out, err = run_cli(capsys, *base)
    assert code == 0, err
    assert "note      net.npz was saved normalized (percentile 99.9 on 300 samples): it runs as saved" in out
    code, out_off, err = run_cli(capsys, *base, "--normalize", "0")
    assert code == 0, err
    assert out_off.split("\n\n", 1)[1] == out.split("\n\n", 1)[1]  # the same run, table and accuracy
    code, _, err = run_cli(capsys, *base, "--normalize", "99.9")  # typed: it cannot be normalized twice
    assert code == 2 and "normalize: the network is already normalized" in err


def test_bundled_names_the_shipped_folders(capsys):
    from workbench.bundled import C_REFERENCE_DIR, DEMO_DIR

    assert main(["bundled"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["demo", str(DEMO_DIR)]
    assert "  digits_cnn.network.npz" in out and "  snn_ref.c" in out
    assert f"c_reference   {C_REFERENCE_DIR}" in out
