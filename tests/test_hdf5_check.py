"""Truncated HDF5 files are refused before libhdf5 sees them (it can hang on some)."""

import h5py
import numpy as np
import pytest

from trace_nets import dense_net, run_trace
from workbench.exchange.trace_io import load_trace, save_trace
from workbench.errors import ModelImportError, TraceFileError
from workbench.hdf5_check import check_hdf5


@pytest.mark.parametrize("libver", ["earliest", "latest"])  # superblock versions 0 and 2/3
def test_whole_files_pass_and_every_truncation_is_named(tmp_path, libver):
    path = tmp_path / "f.h5"
    with h5py.File(path, "w", libver=libver) as f:
        f.create_dataset("x", data=np.arange(5000.0))
    assert check_hdf5(path) is None
    data = path.read_bytes()
    for cut in sorted({9, 20, 40, 60, 100, 500, len(data) // 3, len(data) - 1}):
        short = tmp_path / f"cut{cut}.h5"
        short.write_bytes(data[:cut])
        assert "truncated" in check_hdf5(short)


def test_a_user_block_before_the_superblock_is_found(tmp_path):
    path = tmp_path / "ub.h5"
    with h5py.File(path, "w", userblock_size=512) as f:
        f.create_dataset("x", data=np.ones(10))
    assert check_hdf5(path) is None
    path.write_bytes(path.read_bytes()[:700])
    assert "truncated" in check_hdf5(path)


@pytest.mark.timeout(120)
def test_truncated_trace_files_raise_trace_file_error(tmp_path):
    path = tmp_path / "t.h5"
    save_trace(run_trace(dense_net(), steps=8), path)
    data = path.read_bytes()
    for k in range(1, 40):
        short = tmp_path / "short.h5"
        short.write_bytes(data[: len(data) * k // 40])
        with pytest.raises(TraceFileError) as err:
            load_trace(short)
        assert "short.h5" in str(err.value)


@pytest.mark.timeout(120)
def test_truncated_legacy_keras_h5_is_refused_by_name(tmp_path):
    import keras

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, name="d")])
    path = tmp_path / "m.h5"
    model.save(path)
    short = tmp_path / "short.h5"
    short.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    from workbench.models.keras.importer import load_keras

    with pytest.raises(ModelImportError) as err:
        load_keras(short)
    assert "short.h5" in str(err.value) and "truncated" in str(err.value)


def test_probe_passes_good_files_and_times_out_on_a_hanging_read(tmp_path, monkeypatch):
    from workbench import hdf5_check

    path = tmp_path / "t.h5"
    save_trace(run_trace(dense_net(), steps=3), path)
    assert hdf5_check.probe_hdf5(path) is None
    assert load_trace(path).n_steps == 3
    # Stand in for libhdf5 looping forever: a probe that never finishes.
    monkeypatch.setattr(hdf5_check, "_PROBE", "while True: pass")
    assert "did not finish within 1 s" in hdf5_check.probe_hdf5(path, timeout=1)
    monkeypatch.setattr(hdf5_check, "PROBE_TIMEOUT", 1.0)
    with pytest.raises(TraceFileError) as err:
        load_trace(path)
    assert "t.h5" in str(err.value) and "did not finish" in str(err.value)
