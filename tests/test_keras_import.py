"""Keras import: real models of every supported layer type, parsed and checked against Keras.

The models are built once per module (TensorFlow start-up dominates), saved as ``.keras`` and as
legacy ``.h5``, and re-imported; the numpy forward pass must equal Keras' own output at every
layer (at the fused point for folded layers). Refusals are checked to name every bad layer.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from workbench.errors import ModelImportError, UnsupportedLayerError
from workbench.models import network as nw
from workbench.models.forward import forward, predict
from workbench.models.keras.importer import load_keras
from workbench.models.verify import fused_point, verify_report

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
REPO = Path(__file__).resolve().parent.parent
ATOL = 1e-4


@pytest.fixture(scope="module")
def keras():
    return pytest.importorskip("keras")


def _randomize_batchnorm(model, rng):
    """Non-trivial moving statistics, so folding is really exercised."""
    for layer in model.layers:
        if type(layer).__name__ == "BatchNormalization":
            shapes = [w.shape for w in layer.get_weights()]
            layer.set_weights([
                rng.uniform(0.5, 2.0, shapes[0]), rng.normal(0, 0.5, shapes[1]),
                rng.normal(0, 0.5, shapes[2]), rng.uniform(0.3, 3.0, shapes[3]),
            ])


def _functional(keras, rng):
    L = keras.layers
    i = keras.Input((9, 9, 2), name="inp")
    a = L.Conv2D(4, 3, padding="same", strides=2, name="c1")(i)
    a = L.BatchNormalization(name="bn1")(a)
    a = L.ReLU(max_value=6.0, name="r1")(a)
    b = L.DepthwiseConv2D(3, padding="same", strides=2, depth_multiplier=2, name="dw")(i)
    b = L.BatchNormalization(name="bn2")(b)
    b = L.Activation("relu", name="r2")(b)
    b = L.GaussianNoise(0.3, name="noise")(b)
    b = L.Conv2D(4, 1, use_bias=False, name="pw")(b)
    s = L.Add(name="add")([a, b])
    s = L.Activation("relu", name="r3")(s)
    c = L.Concatenate(name="cat")([s, a])
    p = L.AveragePooling2D(2, strides=1, padding="same", name="ap")(c)
    p = L.ZeroPadding2D(((1, 0), (0, 2)), name="zp")(p)
    p = L.MaxPooling2D(2, padding="same", name="mp")(p)
    p = L.Activation("tanh", name="act_tanh")(p)  # after a pool: stays a layer of its own
    p = L.SpatialDropout2D(0.2, name="sdrop")(p)
    g = L.GlobalAveragePooling2D(name="gap")(p)
    d = L.Dense(6, activation="relu6", name="d1")(g)
    d = L.AlphaDropout(0.1, name="adrop")(d)
    d = L.Reshape((3, 2), name="rs")(d)
    d = L.Concatenate(axis=1, name="cat_rows")([d, d])
    d = L.Flatten(name="fl")(d)
    d = L.ActivityRegularization(0.01, name="areg")(d)
    o = L.Dense(3, activation="softmax", name="out")(d)
    model = keras.Model(i, o, name="functional_all")
    _randomize_batchnorm(model, rng)
    return model


def _sequential(keras, rng):
    L = keras.layers
    model = keras.Sequential([
        keras.Input((10, 10, 1)),
        L.Conv2D(3, (3, 2), strides=(2, 1), padding="valid", name="c"),
        L.BatchNormalization(name="bn"),
        L.Activation("relu", name="relu"),
        L.GaussianDropout(0.1, name="gdrop"),
        L.MaxPooling2D((2, 2), strides=(1, 2), padding="valid", name="mp"),
        L.AveragePooling2D(2, padding="valid", name="ap"),
        L.ReLU(name="relu_after_pool"),
        L.Dropout(0.5, name="drop"),
        L.Flatten(name="fl"),
        L.Dense(8, name="d1"),
        L.BatchNormalization(name="bn_d"),
        L.Activation("sigmoid", name="sig"),
        L.Dense(4, activation="tanh", name="d2"),
        L.Dense(3, name="logits"),
        L.Softmax(name="sm"),
    ], name="sequential_all")
    _randomize_batchnorm(model, rng)
    return model


@pytest.fixture(scope="module")
def saved(keras, tmp_path_factory):
    """{(kind, fmt): (model, path)} for both models in both formats, plus sample inputs."""
    rng = np.random.default_rng(0)
    keras.utils.set_random_seed(0)  # Keras' own initializers too: the same models every run
    folder = tmp_path_factory.mktemp("models")
    out = {}
    for kind, build in (("functional", _functional), ("sequential", _sequential)):
        model = build(keras, rng)
        for fmt in ("keras", "h5"):
            path = folder / f"{kind}.{fmt}"
            model.save(path)
            out[kind, fmt] = (model, path)
    return out


def _sample(model, n=40, seed=1):
    shape = tuple(model.inputs[0].shape[1:])
    return np.random.default_rng(seed).normal(size=(n, *shape)).astype(np.float32)


CASES = [(k, f) for k in ("functional", "sequential") for f in ("keras", "h5")]


@pytest.mark.parametrize("kind,fmt", CASES)
def test_every_layer_matches_keras(saved, kind, fmt):
    from workbench.models.keras.graph import layer_outputs

    model, path = saved[kind, fmt]
    net = load_keras(path)
    x = _sample(model)
    ours = forward(net, x)
    names = [fused_point(layer) for layer in net.layers]
    ref = layer_outputs(model, names, x)
    for layer, keras_name in zip(net.layers, names):
        assert ours[layer.name].dtype == np.float32
        np.testing.assert_allclose(ours[layer.name], ref[keras_name], atol=ATOL, err_msg=layer.name)
    np.testing.assert_allclose(predict(net, x, batch_size=7), model.predict(x, verbose=0), atol=ATOL)
    assert net.layers[0].kind == nw.INPUT and net.output_layer.activation == "softmax"
    assert net.source["file"] == path.name and net.source["format"] == fmt
    assert net.source["sha256"] == nw.file_sha256(path)


def test_all_supported_kinds_are_covered(saved):
    kinds = {layer.kind for case in CASES for layer in load_keras(saved[case][1]).layers}
    assert kinds == nw.ALL_KINDS


def test_imported_shapes_pass_the_saved_file_check(saved):
    """The shape rules Network.load applies (shape_check) agree with Keras on every kind."""
    from workbench.models.shape_check import shape_problems

    for case in CASES:
        assert shape_problems(load_keras(saved[case][1])) == [], case


def test_folding_and_fields(saved):
    net = load_keras(saved["functional", "keras"][1])
    names = [layer.name for layer in net.layers]
    assert not {"bn1", "bn2", "r1", "r2", "r3", "noise", "sdrop", "adrop", "areg"} & set(names)
    assert net["c1"].config["folded"] == ["bn1", "r1"]
    assert net["c1"].activation == "relu" and net["c1"].activation_params == {"max_value": 6.0}
    assert net["c1"].config["strides"] == [2, 2] and net["c1"].config["padding"] == "same"
    assert net["dw"].config["folded"] == ["bn2", "r2"] and net["dw"].config["removed"] == ["noise"]
    assert net["dw"].kind == nw.DEPTHWISE_CONV2D and net["dw"].config["depth_multiplier"] == 2
    assert net["dw"].weights.shape == (3, 3, 2, 2)
    assert net["pw"].bias is not None and not net["pw"].bias.any()  # use_bias=False -> zeros
    assert net["add"].activation == "relu" and net["add"].inbound == ("c1", "pw")
    assert net["add"].config["input_scales"] == [1.0, 1.0]
    assert net["cat"].kind == nw.CONCATENATE and net["cat"].inbound == ("add", "c1")
    assert net["cat"].config["axis"] == 2 and net["cat_rows"].config["axis"] == 0
    assert net["act_tanh"].kind == nw.ACTIVATION and net["act_tanh"].config["input_scales"] == [1.0]
    assert net["ap"].config == {"pool_size": [2, 2], "strides": [1, 1], "padding": "same", "input_scales": [1.0]}
    assert net["zp"].config["padding"] == [[1, 0], [0, 2]]
    assert net["rs"].config["target_shape"] == [3, 2]
    assert net["d1"].activation_params == {"max_value": 6.0}
    assert net["c1"].source_type == "Conv2D" and net.name == "functional_all"
    seq = load_keras(saved["sequential", "h5"][1])
    assert seq["relu_after_pool"].kind == nw.ACTIVATION  # after a pool: not foldable
    assert seq["d1"].activation == "sigmoid" and seq["d1"].config["folded"] == ["bn_d", "sig"]
    assert seq["logits"].activation == "softmax" and seq.output_layer.name == "logits"


def test_batchnorm_folding_is_exact(saved):
    model, path = saved["sequential", "keras"]
    net = load_keras(path)
    kernel, bias = model.get_layer("c").get_weights()
    gamma, beta, mean, var = (w.astype(np.float64) for w in model.get_layer("bn").get_weights())
    s = gamma / np.sqrt(var + model.get_layer("bn").epsilon)
    np.testing.assert_allclose(net["c"].weights, kernel * s, rtol=1e-6)
    np.testing.assert_allclose(net["c"].bias, (bias - mean) * s + beta, rtol=1e-6, atol=1e-7)


def test_unsupported_layers_are_all_listed(keras, tmp_path):
    L = keras.layers
    i = keras.Input((8, 8, 2), name="inp")
    x = L.Conv2D(2, 3, dilation_rate=2, padding="same", name="dilated")(i)
    x = L.MaxPooling2D(name="pool")(x)
    x = L.BatchNormalization(name="bn_after_pool")(x)  # supported: a per-channel affine layer
    x = L.Activation("gelu", name="gelu")(x)
    x = L.Reshape((16, 2), name="seq")(x)
    x = L.Conv1D(4, 3, name="conv1d")(x)
    x = L.LSTM(3, name="lstm")(x)
    x = L.LeakyReLU(name="leaky")(x)
    x = L.Dense(2, activation="elu", name="elu_dense")(x)
    x = keras.Sequential([keras.Input((2,)), L.Dense(2)], name="inner")(x)
    path = tmp_path / "bad.keras"
    keras.Model(i, x).save(path)
    with pytest.raises(UnsupportedLayerError) as info:
        load_keras(path)
    listed = dict(info.value.layers)
    assert set(listed) == {"dilated", "gelu", "conv1d", "lstm", "leaky", "elu_dense", "inner"}
    assert "nested model" in listed["inner"]
    assert "dilation_rate (2, 2)" in listed["dilated"] and "elu" in listed["elu_dense"]
    assert "bad.keras" in str(info.value) and "'lstm' (LSTM)" in str(info.value)
    assert [r.split(":")[0] for r in info.value.reasons] == ["gelu, LeakyReLU, elu"]
    assert "no spiking equivalent: gelu, LeakyReLU, elu: a neuron's firing rate is a rectified" in str(info.value)


@pytest.mark.parametrize("fmt", ["keras", "h5"])
def test_lambda_is_refused_without_running_it(keras, tmp_path, fmt):
    marker = tmp_path / f"ran_{fmt}"
    code = eval(f"lambda t: (open({str(marker)!r}, 'w').close(), t)[1]")  # noqa: S307
    model = keras.Sequential([keras.Input((4,)), keras.layers.Lambda(code, name="evil"), keras.layers.Dense(2)])
    path = tmp_path / f"lambda.{fmt}"
    model.save(path)
    marker.unlink()  # building the model ran it once
    with pytest.raises(ModelImportError, match=rf"lambda.{fmt}.*Lambda layer \('evil'\)"):
        load_keras(path)
    assert not marker.exists()
    if fmt == "keras":  # the check is meaningful: unsafe loading would have run the code
        keras.models.load_model(path, compile=False, safe_mode=False)
        assert marker.exists()


def test_several_inputs_or_outputs_are_refused(keras, tmp_path):
    L = keras.layers
    a, b = keras.Input((3,)), keras.Input((3,))
    two_in = keras.Model([a, b], L.Add()([a, b]))
    two_out = keras.Model(a, [L.Dense(2)(a), L.Dense(2)(a)])
    shared = L.Dense(3, name="shared")
    reuse = keras.Model(a, shared(shared(a)))
    for name, model, words in (("in", two_in, "2 inputs"), ("out", two_out, "2 outputs"),
                               ("shared", reuse, "more than once")):
        path = tmp_path / f"{name}.keras"
        model.save(path)
        with pytest.raises(ModelImportError, match=f"{name}.keras.*{words}"):
            load_keras(path)


def test_bad_files_are_named(saved, tmp_path):
    good = saved["functional", "keras"][1].read_bytes()
    good_h5 = saved["functional", "h5"][1].read_bytes()
    cases = {
        "missing.keras": None,
        "truncated.keras": good[: len(good) // 2],
        "truncated.h5": good_h5[: len(good_h5) // 3],
        "garbage.h5": b"not hdf5 at all",
        "text.keras": b"hello",
        "model.txt": b"hello",
    }
    for name, content in cases.items():
        if content is not None:
            (tmp_path / name).write_bytes(content)
        with pytest.raises(ModelImportError, match=name.replace(".", r"\.")):
            load_keras(tmp_path / name)
    with pytest.raises(ModelImportError, match="not a file"):
        load_keras(tmp_path)


def test_verify_report(saved):
    model, path = saved["functional", "h5"]
    net = load_keras(path)
    x = _sample(model, n=10)
    ok, text = verify_report(net, path, x)
    assert ok and "OK:" in text and "c1" in text and "r1" in text
    broken = net.copy()
    broken["d1"].bias[:] += 0.5  # every unit: one unit could be off (ReLU) for all 10 samples
    ok, text = verify_report(broken, model, x)
    assert not ok and "FAILED" in text and "d1" in text.splitlines()[-1]


def test_saved_network_reloads_without_tensorflow(saved, tmp_path):
    net = load_keras(saved["functional", "keras"][1])
    x = _sample(saved["functional", "keras"][0], n=5)
    net.save(tmp_path / "net.npz")
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "expected.npy", predict(net, x))
    script = (
        "import sys, numpy as np\n"
        "from workbench.models.network import Network\n"
        "import workbench.models.keras.importer, workbench.models.verify, workbench.models.normalize\n"
        "from workbench.models.forward import predict\n"
        f"net = Network.load({str(tmp_path / 'net.npz')!r})\n"
        f"got = predict(net, np.load({str(tmp_path / 'x.npy')!r}))\n"
        f"assert np.array_equal(got, np.load({str(tmp_path / 'expected.npy')!r}))\n"
        f"assert net.fingerprint() == {net.fingerprint()!r}\n"
        "assert not {'tensorflow', 'keras'} & set(sys.modules), 'TF was imported'\n"
    )
    subprocess.run([sys.executable, "-c", script], cwd=REPO, check=True, timeout=120)


def test_dense_on_a_rank_3_tensor_is_refused_by_name(tmp_path):
    import keras

    inp = keras.Input((4, 3))
    out = keras.layers.Dense(2, name="per_row")(inp)
    path = tmp_path / "rank3.keras"
    keras.Model(inp, out).save(path)
    from workbench.errors import UnsupportedLayerError
    from workbench.models.keras.importer import load_keras

    with pytest.raises(UnsupportedLayerError) as err:
        load_keras(path)
    assert "per_row" in str(err.value)


def test_verify_relative_tolerance_catches_tiny_layers(keras):
    """Activations around 1e-12 pass any absolute tolerance; the relative one must catch them."""
    from workbench.models.keras.importer import network_from_keras

    L = keras.layers
    i = keras.Input((6,))
    x = L.Dense(5, name="tiny")(i)
    model = keras.Model(i, L.Dense(3, name="out")(x))
    kernel, bias = model.get_layer("tiny").get_weights()
    model.get_layer("tiny").set_weights([kernel * 1e-12, bias])
    net = network_from_keras(model, "tiny")
    x = np.random.default_rng(3).uniform(0, 1, (4, 6)).astype(np.float32)
    ok, text = verify_report(net, model, x)
    assert ok and "OK: 3 layers" in text
    broken = net.copy()
    broken["tiny"].bias[:] += 1e-11  # 10x the layer's values, far below the absolute 1e-4
    ok, text = verify_report(broken, model, x)
    assert not ok and text.splitlines()[-1].endswith(": tiny, out")  # out is as tiny
    assert "FAIL (tol 0.0001, rtol 0.001)" in text
