"""models.spill: a big network's weights mapped from an unlinked file (the window's kept original)."""

from __future__ import annotations

import numpy as np

from workbench.models import network as nw
from workbench.models import spill
from workbench.models.forward import forward
from workbench.models.layer import Layer


def big_dense(n_in=512, n_hidden=2048, seed=0):
    rng = np.random.default_rng(seed)
    return nw.Network("big", [
        Layer("input", nw.INPUT, (n_in,)),
        Layer("h", nw.DENSE, (n_hidden,), ("input",), rng.normal(0, 0.05, (n_in, n_hidden)).astype(np.float32),
              rng.normal(0, 0.1, n_hidden).astype(np.float32), "relu"),
        Layer("out", nw.DENSE, (10,), ("h",), rng.normal(0, 0.05, (n_hidden, 10)).astype(np.float32),
              np.zeros(10, np.float32), "softmax"),
    ])


def rss_file_kb() -> int:
    for line in open("/proc/self/status"):
        if line.startswith("RssFile:"):
            return int(line.split()[1])
    return 0


def test_spilled_weights_read_the_same_from_an_unlinked_read_only_map(tmp_path):
    net = big_dense()
    out = spill.spill_weights(net, tmp_path, min_bytes=1)
    assert list(tmp_path.iterdir()) == []  # unlinked at once: nothing left behind
    for a, b in zip(net.layers, out.layers):
        for field in ("weights", "bias"):
            x, y = getattr(a, field), getattr(b, field)
            if x is None:
                assert y is None
                continue
            assert y.dtype == x.dtype and y.shape == x.shape and np.array_equal(x, y)
            assert not y.flags.writeable and not np.shares_memory(x, y)
        assert (a.name, a.kind, a.activation, a.config) == (b.name, b.kind, b.activation, b.config)
    x = np.random.default_rng(1).uniform(0, 1, (3, 512)).astype(np.float32)
    for name, value in forward(net, x).items():
        assert np.array_equal(value, forward(out, x)[name]), name


def test_small_networks_and_unwritable_folders_stay_in_memory(tmp_path):
    net = big_dense(8, 16)
    assert spill.spill_weights(net, tmp_path) is net  # under SPILL_MIN_BYTES
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    for folder in (blocked, blocked / "sub"):  # a file where the folder should be: OSError
        other = big_dense()
        assert spill.spill_weights(other, folder, min_bytes=1) is other  # kept in memory, as it was


def test_release_pages_hands_back_what_a_read_paged_in(tmp_path):
    net = spill.spill_weights(big_dense(2048, 4096), tmp_path, min_bytes=1)  # 32 MB of weights
    before = rss_file_kb()
    total = float(net.layers[1].weights.sum())  # every page read
    paged = rss_file_kb() - before
    assert paged > 24 * 1024
    spill.release_pages(net)
    assert rss_file_kb() - before < paged / 4
    assert float(net.layers[1].weights.sum()) == total  # read again from the file, the same
