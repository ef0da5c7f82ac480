"""Zip members that zipfile cannot open (unknown compression, the 'encrypted' flag) are file
errors naming the file, for every .npz reader (found by fuzzing: they raised
NotImplementedError / RuntimeError)."""

import numpy as np
import pytest

from trace_nets import dense_net, run_trace
from workbench.exchange.trace_io import load_trace, save_trace
from workbench.errors import WorkbenchError
from workbench.models.data import load_samples
from workbench.models.loading import DEMO_NETWORK
from workbench.models.network import Network


def patched(data: bytes, flag: int | None = None, method: int | None = None) -> bytes:
    """Set every member's general-purpose flag / compression method, in the local headers and
    the central directory alike."""
    out = bytearray(data)
    for sig, flag_at, method_at in ((b"PK\x03\x04", 6, 8), (b"PK\x01\x02", 8, 10)):
        at = out.find(sig)
        while at >= 0:
            if flag is not None:
                out[at + flag_at:at + flag_at + 2] = flag.to_bytes(2, "little")
            if method is not None:
                out[at + method_at:at + method_at + 2] = method.to_bytes(2, "little")
            at = out.find(sig, at + 4)
    return bytes(out)


@pytest.fixture(params=[{"method": 99}, {"flag": 1}], ids=["compression", "encrypted"])
def damage(request):
    return request.param


def test_trace_npz(tmp_path, damage):
    path = tmp_path / "t.npz"
    save_trace(run_trace(dense_net(), steps=3), path)
    path.write_bytes(patched(path.read_bytes(), **damage))
    with pytest.raises(WorkbenchError) as err:
        load_trace(path)
    assert "t.npz" in str(err.value)


def test_sample_npz(tmp_path, damage):
    path = tmp_path / "d.npz"
    np.savez(path, x=np.zeros((2, 4), np.float32), y=np.zeros(2, np.int64))
    path.write_bytes(patched(path.read_bytes(), **damage))
    with pytest.raises(WorkbenchError) as err:
        load_samples(path, (4,))
    assert "d.npz" in str(err.value)


def test_network_npz(tmp_path, damage):
    path = tmp_path / "n.npz"
    path.write_bytes(patched(DEMO_NETWORK.read_bytes(), **damage))
    with pytest.raises(WorkbenchError) as err:
        Network.load(path)
    assert "n.npz" in str(err.value)
