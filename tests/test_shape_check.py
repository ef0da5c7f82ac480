"""A saved network whose settings or weights do not fit the shapes around them is refused at
load time with the layer and the field named (it used to load and then fail inside the engine)."""

import json
import zipfile

import numpy as np
import pytest

from test_engine_if import random_conv_net, random_dense_net
from test_fused import random_geometry_net, random_join_net
from workbench.errors import NetworkFileError
from workbench.models import network as nw
from workbench.models.loading import DEMO_NETWORK
from workbench.models.shape_check import shape_problems


@pytest.mark.parametrize("builder", [random_conv_net, random_dense_net, random_join_net, random_geometry_net])
def test_valid_networks_have_no_problems(builder):
    assert shape_problems(builder(np.random.default_rng(0))) == []


def test_demo_loads():
    assert shape_problems(nw.Network.load(DEMO_NETWORK)) == []


def _edit(src, dst, edit):
    """Copy a saved network, changing its JSON header (and arrays) with ``edit(header, arrays)``."""
    with np.load(src, allow_pickle=False) as data:
        header = json.loads(bytes(data["header"]).decode())
        arrays = {k: data[k] for k in data.files if k != "header"}
    edit(header, arrays)
    arrays["header"] = np.frombuffer(json.dumps(header).encode(), np.uint8)
    with open(dst, "wb") as fh:
        np.savez(fh, **arrays)
    return dst


def _layer(header, name):
    return next(i for i, rec in enumerate(header["layers"]) if rec["name"] == name)


def _set(name, field, value):
    def edit(header, arrays):
        header["layers"][_layer(header, name)]["config"][field] = value
    return edit


def _shape(name, value):
    def edit(header, arrays):
        header["layers"][_layer(header, name)]["output_shape"] = value
    return edit


def _weights(name, fn):
    def edit(header, arrays):
        i = _layer(header, name)
        arrays[f"w{i}"] = fn(arrays[f"w{i}"])
    return edit


def _bias(name, fn):
    def edit(header, arrays):
        i = _layer(header, name)
        arrays[f"b{i}"] = fn(arrays[f"b{i}"])
    return edit


@pytest.mark.parametrize("edit,words", [
    (_set("c1", "strides", [0, 1]), ["'c1'", "strides", ">= 1"]),
    (_set("c1", "strides", [1]), ["'c1'", "strides", "2 whole numbers"]),
    (_set("c1", "padding", "full"), ["'c1'", "padding", "'full'"]),
    (_set("c2", "strides", [1, 1]), ["'c2'", "output_shape", "(5, 5, 6)", "(9, 9, 6)"]),
    (_weights("c2", lambda w: w[:, :, :3]), ["'c2'", "weights", "3 input channels", "has 4"]),
    (_weights("out", lambda w: w[:7]), ["'out'", "weights", "(7, 5)", "12 values"]),
    (_weights("out", lambda w: w.reshape(-1)), ["'out'", "weights", "2 dimensions"]),
    (_bias("c1", lambda b: b[:3]), ["'c1'", "bias", "(3,)", "(4,)"]),
    (_set("mp", "pool_size", [2, "2"]), ["'mp'", "pool_size"]),
    (_set("ap", "pool_size", [4, 4]), ["'ap'", "pool height 4", "larger than the input"]),
    (_set("pad", "padding", [[1, 1]]), ["'pad'", "padding"]),
    (_shape("fl", [13]), ["'fl'", "output_shape", "(13,)", "(12,)"]),
    (_shape("c1", [9, 9, 0]), ["'c1'"]),
])
def test_bad_files_are_refused_naming_layer_and_field(tmp_path, edit, words):
    good = tmp_path / "good.network.npz"
    random_conv_net(np.random.default_rng(1)).save(good)
    nw.Network.load(good)  # the unedited file loads
    bad = _edit(good, tmp_path / "bad.network.npz", edit)
    with pytest.raises(NetworkFileError) as err:
        nw.Network.load(bad)
    msg = str(err.value)
    assert msg.startswith(str(bad)), msg
    for w in words:
        assert w in msg, (w, msg)


def test_join_problems(tmp_path):
    good = tmp_path / "join.network.npz"
    random_join_net(np.random.default_rng(2)).save(good)
    cases = [
        (_set("cat", "axis", 3), ["'cat'", "axis must be 0..2"]),
        (_shape("add", [8, 8, 5]), ["'add'", "output_shape"]),
        (_set("add", "input_scales", [1.0]), ["'add'", "input_scales"]),
    ]
    for edit, words in cases:
        bad = _edit(good, tmp_path / "bad.network.npz", edit)
        with pytest.raises(NetworkFileError) as err:
            nw.Network.load(bad)
        for w in words:
            assert w in str(err.value), (w, str(err.value))


def test_every_problem_is_counted(tmp_path):
    good = tmp_path / "good.network.npz"
    random_conv_net(np.random.default_rng(1)).save(good)

    def two(header, arrays):
        _set("c1", "strides", [0, 0])(header, arrays)
        _shape("fl", [13])(header, arrays)
    bad = _edit(good, tmp_path / "bad.network.npz", two)
    with pytest.raises(NetworkFileError, match=r"'c1'.*\(and \d+ more\)"):
        nw.Network.load(bad)
    assert zipfile.is_zipfile(bad)
