"""ImageNet-size layers in the window: a generated network of 3.2 M neurons opens, plays, steps by
layer and switches layers within the memory budget (the recorder's bytes are asserted, not
times), and the views handle layers larger than the screen in both directions."""

from __future__ import annotations

import numpy as np
import pytest
from PyQt6.QtCore import QSettings
from PyQt6.QtTest import QTest

from big_nets import big_cnn

from benchmarks.imagenet import smooth_images
from workbench.views.app import build_window

LONG = 240_000
BUDGET = 96 * 1024**2


@pytest.fixture(scope="module")
def big_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("big")
    net = big_cnn(224)  # conv1 224x224x32 = 1,605,632; conv2, conv3 112x112x64 = 802,816 each
    net.save(d / "big.npz")
    np.savez(d / "big_data.npz", x=smooth_images(2, 224), y=np.array([1, 7]))
    return d / "big.npz", d / "big_data.npz"


@pytest.fixture(scope="module")
def big_window(big_files, tmp_path_factory):
    from PyQt6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication([])
    settings = QSettings(str(tmp_path_factory.mktemp("s") / "w.ini"), QSettings.Format.IniFormat)
    settings.setValue("memory_budget", BUDGET)
    errors = []
    session, win = build_window(model=big_files[0], data=big_files[1], demo=False, settings=settings,
                                error_handler=lambda m, d: errors.append(m))
    win.resize(1200, 800)
    win.show()
    yield app, session, win, errors
    win.close()
    session.shutdown()


def wait(app, cond, timeout=LONG):
    import time

    end = time.monotonic() + timeout / 1000
    while not cond():
        assert time.monotonic() < end, "timed out"
        QTest.qWait(10)  # processes events while it waits for the worker's next message


def recorded_bytes(session):
    loop = session._loop
    return loop.sim.recorder.nbytes + loop._cache.nbytes


def test_big_network_opens_plays_steps_and_switches_within_the_budget(big_window):
    app, session, win, errors = big_window
    wait(app, lambda: session.samples is not None and session.snapshot is not None and session.recording is not None
         and session.snapshot.t == 0)
    assert errors == []
    plan = session.recording
    assert session.memory_budget == BUDGET and plan.budget == BUDGET
    assert not plan.everything and plan.layers == ("conv1", "output") and plan.membranes == ()
    # conv1: 1 byte (int8 ring) + 2.5 x 1 (int8 history: 1.25 windows and a spare) per neuron and step,
    # + 10 output
    per_step = 1_605_632 * 3.5 + 10 * 3.5 + 16
    assert plan.steps == BUDGET // per_step == 17 and plan.bytes == int(17 * per_step) <= BUDGET
    assert session._loop.sim.recorder.nbytes == 17 * (1_605_632 * 1 + 10 * 1 + 8 + 2)
    assert session._loop.sim.recorder.arrays("conv1")["spikes"].dtype == np.int8
    # play a few steps, then pause
    session.run_to(3)
    wait(app, lambda: session.snapshot.t == 3 and not session.running)
    snap = session.snapshot
    assert snap.history.layers["conv1"].spikes.dtype == np.int8
    assert snap.history.n_steps == 3 and recorded_bytes(session) <= BUDGET
    assert snap.layer("conv2").counts is None and snap.layer("conv1").counts is not None  # only what is shown
    # ... and of the shown layer what the views read: no output, no whole membrane, no spikes
    # outside a step in progress
    assert snap.layer("conv1").output is snap.layer("conv1").membrane is snap.layer("conv1").spikes is None
    assert [s.name for s in snap.stats] == ["conv1", "conv2", "conv3", "gap", "output"]  # the table has them all
    assert win.statusBar().memory_label.text().startswith("history 17 steps")
    # step by layer: one layer advanced, the step not finished
    session.step_layer()
    session.step_layer()
    wait(app, lambda: session.snapshot.cursor == 2)
    assert session.snapshot.t == 3 and session.snapshot.cursor_layer == "conv2"
    assert session.snapshot.layer("conv1").spikes.shape == (1, 224, 224, 32)  # the raster's column in progress
    session.step()
    wait(app, lambda: session.snapshot.cursor == 0 and session.snapshot.t == 4)
    # another layer: recorded from now on, its history as long as the budget allows
    session.select_layer("conv3")
    wait(app, lambda: session.recording.layers == ("conv3", "output"))
    plan = session.recording
    assert plan.steps == BUDGET // (802_816 * 3.5 + 10 * 3.5 + 16) == 35 and plan.bytes <= BUDGET
    session.run_to(6)
    wait(app, lambda: session.snapshot.t == 6 and "conv3" in session.snapshot.history.layers and not session.running)
    assert session.snapshot.history.n_steps == 2 and recorded_bytes(session) <= BUDGET
    # a watched neuron: its layer's membranes in the ring, the neuron's alone in the snapshot
    session.set_watched([("conv2", 123_456)])
    wait(app, lambda: session.recording.membranes == ("conv2",))
    plan = session.recording
    assert plan.layers == ("conv2", "conv3", "output")
    assert plan.steps == BUDGET // (802_816 * (3.5 + 4) + 802_816 * 3.5 + 10 * 3.5 + 16) == 11
    session.step()
    wait(app, lambda: session.snapshot.t == 7 and ("conv2", 123_456) in session.snapshot.neuron_membranes)
    assert session.snapshot.neuron_membranes[("conv2", 123_456)].shape == (1, 1)
    assert recorded_bytes(session) <= BUDGET
    assert errors == []


def test_views_handle_layers_larger_than_the_screen(big_window):
    app, session, win, errors = big_window
    wait(app, lambda: session.snapshot is not None and session.recording is not None)
    session.set_watched([])
    session.select_layer("conv1")
    session.run_to(session.snapshot.t + 2)
    wait(app, lambda: "conv1" in session.snapshot.history.layers and session.snapshot.history.n_steps >= 2
         and not session.running)
    heat, raster = win.views["heatmap"], win.views["raster"]
    heat.refresh()
    # 32 channels of 224 x 224: one channel at a time (the channel box), not 32 tiles
    assert not heat.channel.isHidden() and heat.shown_channel() == 0
    assert heat.grid().shape == (224, 224)
    counts = session.snapshot.layer("conv1").counts[0]
    rates = counts / session.snapshot.t
    np.testing.assert_array_equal(heat.grid(), np.abs(rates[:, :, 0]).astype(np.float32))
    heat.channel.setValue(31)
    heat.refresh()
    np.testing.assert_array_equal(heat.grid(), np.abs(rates[:, :, 31]).astype(np.float32))
    assert heat.neuron_at(5.5, 7.5) == ((7 * 224 + 5) * 32 + 31, (7, 5, 31))
    heat.channel.setValue(-1)  # all 32 tiled
    heat.refresh()
    assert heat.grid().shape == (6 * 225 - 1, 6 * 225 - 1)
    # the raster: 1.6 M rows pooled to the pixels (rows per cell on a steady ladder)
    raster.refresh()
    assert raster.blocks == [("conv1", 0, 1_605_632)]
    img = raster.image.image
    py = raster._pool[0]
    assert py > 1000 and img.shape == (-(-1_605_632 // py), session.snapshot.history.n_steps)
    assert errors == []


def test_the_plan_records_everything_when_it_fits_else_what_is_shown():
    from view_data import small_network

    from workbench.engine.config import SimConfig
    from workbench.views.sim_loop import SimLoop

    sent = []
    net = small_network()
    x = np.full((1, 4, 4, 1), 0.5, np.float32)
    loop = SimLoop(lambda kind, payload: sent.append((kind, payload)), window=500, budget=10**9)
    loop._history_layers = ("fc1", "output")
    loop._setup(net, SimConfig(), x, None)
    plan = loop.plan
    assert plan.everything and plan.layers == plan.membranes == ("conv1", "fc1", "output")
    assert plan.steps == 500 and loop.sim.recorder.capacity == 500
    assert set(loop.sim.recorder.arrays("conv1")) == {"spikes", "membrane"}
    # 48 + 12 + 5 neurons: int16 spikes + float32 membranes in the ring; 16 int16 copies in the
    # history of the layers shown (fc1, output)
    per_step = (48 + 12 + 5) * (2 + 4) + (12 + 5) * 16 * 2 + 16
    assert plan.bytes == 500 * per_step
    recorder = loop.sim.recorder
    loop.sim.run(3)
    loop._history_layers = ("conv1", "output")  # another layer shown: everything is still recorded
    loop._replan()
    assert loop.plan.everything and loop.sim.recorder is recorder and recorder.count == 3
    assert loop.plan.bytes == 500 * ((48 + 12 + 5) * (2 + 4) + (48 + 5) * 16 * 2 + 16)
    loop._history_layers = ("fc1", "output")
    loop._replan()
    loop.budget = 100 * per_step  # only 100 steps of everything fit: record what is shown
    loop._replan()
    assert not loop.plan.everything and loop.plan.layers == ("fc1", "output") and loop.plan.membranes == ()
    assert loop.plan.steps == 500 and loop.sim.recorder.arrays("fc1").keys() == {"spikes"}
    # int8 ring (1 byte) + int8 history of 1.25 windows and a spare (2.5 bytes) per neuron and step
    assert loop.plan.bytes == 500 * ((12 + 5) * (1 + 2.5 * 1) + 16)
    assert loop.sim.recorder.arrays("fc1")["spikes"].dtype == np.int8
    assert sent[-1] == ("memory", loop.plan)


def test_a_run_that_records_nothing_just_runs():
    from view_data import small_network

    from workbench.engine.config import SimConfig
    from workbench.engine.recording import NO_LAYER_CAPACITY
    from workbench.engine.simulator import Simulator

    sim = Simulator(small_network(), SimConfig(steps=100_000_000, batch=32, record=(), record_membrane=False))
    assert sim.recorder.capacity == NO_LAYER_CAPACITY and sim.recorder.nbytes == NO_LAYER_CAPACITY * (8 + 32 * 2)


def test_opening_a_keras_model_reports_each_stage_and_stops_between_them():
    from workbench.models import loading
    from workbench.views import loaders

    stages = []
    loaded = loaders.open_model(loading.DEMO_KERAS, loading.DEMO_TEST, 99.9, on_stage=stages.append)
    n = len(loaded.original.layers)
    assert stages[:2] == ["Starting TensorFlow…", "Reading digits_cnn.keras (0 MB)…"]
    assert stages[2].startswith("Importing ") and stages[2].endswith(" Keras layers of digits_cnn.keras…")
    assert stages[3:] == [f"Normalizing on {len(loaded.samples)} samples ({n} layers)…"]

    class Stop(Exception):
        pass

    def stop_at_reading(label):
        if label.startswith("Reading"):
            raise Stop

    with pytest.raises(Stop):
        loaders.open_model(loading.DEMO_KERAS, None, 99.9, on_stage=stop_at_reading)


def test_find_neuron_and_all_layers_at_scale(big_window, qtbot):
    app, session, win, errors = big_window
    wait(app, lambda: session.snapshot is not None and session.recording is not None)
    session.set_watched([])
    session.select_layer("conv1")
    session.run_to(session.snapshot.t + 1)
    wait(app, lambda: "conv1" in session.snapshot.history.layers and not session.running)
    raster = win.views["raster"]
    raster.refresh()
    with qtbot.waitSignal(raster.neuron_clicked) as hit:
        assert raster.find_neuron("100, 200, 5") == ("conv1", (100 * 224 + 200) * 32 + 5)
    assert hit.args == ["conv1", (100 * 224 + 200) * 32 + 5]
    top, bottom = raster.plot.vb.viewRange()[1]
    assert top <= (100 * 224 + 200) * 32 + 5 <= bottom and bottom - top < 100  # zoomed to its row
    assert raster.find_neuron("300 1 1") is None and raster._status.text() == "h = 300 is outside the layer's 224"
    assert raster.find_neuron("1605632") is None and "outside the layer (0 to 1605631)" in raster._status.text()
    assert raster.find_neuron("77") == ("conv1", 77)
    # all 5 neuron layers (3.2 M neurons) stacked: one band of at most 256 pooled rows each
    raster.set_stacked(True)
    wait(app, lambda: session.recording.layers == ("conv1", "conv2", "conv3", "gap", "output"))
    session.step()
    wait(app, lambda: len(session.snapshot.history.layers) == 5 and session.snapshot.history.n_steps >= 1)
    raster.refresh()
    assert [(name, n) for name, _, n in raster.blocks] == [("conv1", 256), ("conv2", 256), ("conv3", 256),
                                                           ("gap", 64), ("output", 10)]
    assert raster.row_to_neuron(257 + 3) == ("conv2", 3 * -(-802_816 // 256))
    assert session._loop.sim.recorder.nbytes + session._loop._cache.nbytes <= BUDGET
    raster.set_stacked(False)
    assert errors == []
