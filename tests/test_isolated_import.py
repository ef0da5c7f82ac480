"""A Keras file imported in a child process (``models.isolated_import``, as the window opens it)
is the in-process import exactly; errors, stages, cancelling and a dying child are handled.

TensorFlow runs in each child (a few seconds each), so the tests share their models and keep
the number of children small.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess

import numpy as np
import pytest

from workbench.errors import ModelImportError, UnsupportedLayerError
from workbench.models import isolated_import, loading
from workbench.models.keras.importer import load_keras

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
LONG = 120_000


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """A small conv net with BatchNorm folding, pooling, Add and Dense (random weights), and one
    the importer refuses by name (Dense on a rank-3 tensor)."""
    keras = pytest.importorskip("keras")
    folder = tmp_path_factory.mktemp("isolated")
    L = keras.layers
    rng = np.random.default_rng(3)
    i = keras.Input((12, 12, 2), name="inp")
    a = L.Conv2D(4, 3, padding="same", name="c1")(i)
    a = L.BatchNormalization(name="bn1")(a)
    a = L.Activation("relu", name="r1")(a)
    b = L.Conv2D(4, 1, name="c2", activation="relu")(i)
    s = L.Add(name="add")([a, b])
    p = L.AveragePooling2D(2, name="ap")(s)
    x = L.Flatten(name="flat")(p)
    x = L.Dropout(0.5, name="drop")(x)
    x = L.Dense(5, activation="softmax", name="out")(x)
    model = keras.Model(i, x)
    for layer in model.layers:
        layer.set_weights([rng.normal(0, 1, w.shape).astype("float32") if k != 3 else
                           rng.uniform(0.5, 2, w.shape).astype("float32")
                           for k, w in enumerate(layer.get_weights())])
    good = folder / "small.keras"
    model.save(good)
    r = keras.Input((4, 3), name="seq")
    bad = folder / "rank3.keras"
    keras.Model(r, L.Dense(2, name="per_row")(r)).save(bad)
    return good, bad


@pytest.fixture
def children(monkeypatch):
    """Every child process the isolated import starts (its Popen), in order."""
    started = []

    class Recording(subprocess.Popen):
        def __init__(self, args, *rest, **kw):
            super().__init__(args, *rest, **kw)
            if "_child_main" in " ".join(map(str, args)):
                started.append(self)

    monkeypatch.setattr(subprocess, "Popen", Recording)
    return started


def _same(x, y, where):
    if isinstance(x, np.ndarray) or isinstance(y, np.ndarray):
        assert type(x) is type(y) and x.dtype == y.dtype and x.shape == y.shape, where
        np.testing.assert_array_equal(x, y, err_msg=where)
    elif isinstance(x, dict):
        assert type(y) is dict and list(x) == list(y), where
        for k in x:
            _same(x[k], y[k], f"{where}[{k!r}]")
    elif isinstance(x, (list, tuple)):
        assert type(x) is type(y) and len(x) == len(y), where
        for k, (a, b) in enumerate(zip(x, y)):
            _same(a, b, f"{where}[{k}]")
    else:
        assert type(x) is type(y) and x == y, where


def assert_same_network(got, want):
    for name in ("name", "scales", "normalization", "source"):
        _same(getattr(got, name), getattr(want, name), name)
    assert [layer.name for layer in got.layers] == [layer.name for layer in want.layers]
    for a, b in zip(got.layers, want.layers):
        for f in dataclasses.fields(a):
            _same(getattr(a, f.name), getattr(b, f.name), f"{a.name}.{f.name}")


def _gone(proc) -> bool:
    """The child has ended and was reaped: no process with its id is left."""
    if proc.returncode is None:
        return False
    try:
        os.kill(proc.pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_the_isolated_import_equals_the_in_process_one_stage_by_stage(models, children, monkeypatch):
    """... with a path relative to the (shared) working folder and no PYTHONPATH: the child finds
    the parent's ``workbench`` from the package's own folder (an installed wheel:
    tests/test_packaging.py)."""
    good, _ = models
    want_stages, got_stages, beats = [], [], []
    want = load_keras(good, want_stages.append)
    monkeypatch.delenv("PYTHONPATH", raising=False)
    monkeypatch.chdir(good.parent)
    got = loading.open_model(good.name, got_stages.append, isolated=True, on_progress=lambda *a: beats.append(a))
    assert_same_network(got, want)
    assert got.layers[1].config["folded"] == want.layers[1].config["folded"] != []  # BatchNorm folded
    assert got_stages == want_stages == ["Starting TensorFlow…", "Reading small.keras (0 MB)…",
                                         "Importing 10 Keras layers of small.keras…"]
    assert beats and set(beats) == {(0, None)}  # busy while TensorFlow starts: checks only
    assert len(children) == 1 and _gone(children[0])


def test_errors_in_the_child_arrive_as_the_same_exception(models, tmp_path, children):
    _, refused = models
    with pytest.raises(UnsupportedLayerError) as here:
        load_keras(refused)
    with pytest.raises(UnsupportedLayerError) as there:
        loading.open_model(refused, isolated=True)
    assert str(there.value) == str(here.value) and "'per_row' (Dense with Dense on a rank-3" in str(there.value)
    assert (there.value.path, there.value.layers, there.value.reasons) == (here.value.path, here.value.layers,
                                                                           here.value.reasons)
    assert "Traceback" in str(there.value.__cause__)  # the child's traceback, for the details
    truncated = tmp_path / "cut.keras"
    truncated.write_bytes(models[0].read_bytes()[:1000])
    with pytest.raises(ModelImportError) as here:
        load_keras(truncated)
    with pytest.raises(ModelImportError) as there:
        loading.open_model(truncated, isolated=True)
    assert type(there.value) is type(here.value) and str(there.value) == str(here.value)
    assert str(there.value).startswith("cut.keras: ")
    assert len(children) == 2 and all(_gone(c) for c in children)


def test_cancelling_kills_the_child_at_once(models, children):
    """``on_progress`` raising while the child starts TensorFlow (or ``on_stage`` raising at a
    stage) stops the open and kills the child then: it never gets to finish by itself."""
    good, _ = models

    class Stop(Exception):
        pass

    stages = []

    def stop(done, total):  # the first check once TensorFlow is starting
        if stages:
            raise Stop

    with pytest.raises(Stop):
        loading.open_model(good, stages.append, isolated=True, on_progress=stop)
    assert stages == ["Starting TensorFlow…"]
    assert _gone(children[0]) and children[0].returncode == -signal.SIGKILL

    def stop_at_reading(label):
        if label.startswith("Reading"):
            raise Stop

    with pytest.raises(Stop):
        loading.open_model(good, stop_at_reading, isolated=True)
    assert _gone(children[1]) and children[1].returncode == -signal.SIGKILL


def test_a_child_that_dies_is_a_model_import_error_naming_the_file(models, children):
    good, _ = models

    def kill_it(label):  # as the out-of-memory killer would, while TensorFlow starts
        os.kill(children[0].pid, signal.SIGKILL)

    with pytest.raises(ModelImportError) as err:
        loading.open_model(good, kill_it, isolated=True)
    assert str(err.value) == "small.keras: the import process was stopped by SIGKILL (out of memory?) before the model was read"
    assert _gone(children[0])


# ---- the window ----------------------------------------------------------------------------------
def test_the_window_opens_a_keras_model_in_a_child_and_cancel_kills_it(qtbot, tmp_path, monkeypatch, children):
    """The window's process never runs the Keras importer (it is made to fail here); the stages
    reach the status bar in order; Cancel while TensorFlow starts kills the child."""
    from PyQt6.QtCore import QSettings

    from workbench.views.app import build_window

    want = load_keras(loading.DEMO_KERAS)

    def not_here(*args, **kw):
        raise AssertionError("the window's process ran the Keras importer")

    monkeypatch.setattr("workbench.models.keras.importer.load_keras", not_here)
    settings = QSettings(str(tmp_path / "workbench.ini"), QSettings.Format.IniFormat)
    errors, said = [], []
    session, win = build_window(demo=False, settings=settings, error_handler=lambda m, d: errors.append(m))
    session.status.connect(said.append)
    qtbot.addWidget(win)
    win.show()
    with qtbot.waitSignal(session.network_changed, timeout=LONG):
        win.open_model(loading.DEMO_KERAS)
    assert errors == []
    assert_same_network(session.original, want)
    stages = [m for m in said if m.startswith(("Starting", "Reading", "Importing"))]
    assert stages == ["Starting TensorFlow…", "Reading digits_cnn.keras (0 MB)…",
                      "Importing 8 Keras layers of digits_cnn.keras…"]
    assert len(children) == 1 and _gone(children[0])

    network = session.network
    said.clear()
    win.open_model(loading.DEMO_KERAS)
    qtbot.waitUntil(lambda: "Starting TensorFlow…" in said, timeout=LONG)
    session.cancel_jobs()
    qtbot.waitUntil(lambda: any(m.startswith("Cancelled: Opening digits_cnn.keras") for m in said), timeout=LONG)
    assert len(children) == 2 and _gone(children[1]) and children[1].returncode == -signal.SIGKILL
    assert session.network is network and errors == []
    win.close()
