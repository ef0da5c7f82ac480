"""Session: intents in, snapshots out, the Simulator only ever touched by the worker thread.

Each test compares what the session emits with a Simulator run directly in the test on the same
network, config and input: the window shows exactly what the engine holds.
"""

from __future__ import annotations

import threading
from dataclasses import astuple

import numpy as np
import pytest

from workbench.analysis.layer_stats import simulator_stats
from workbench.engine.neurons import make_neuron
from workbench.engine.simulator import Simulator
from workbench.models import network as nw
from workbench.models.forward import forward
from workbench.views.session import Session

LONG = 60_000  # ms; the first demo open may compile numba kernels


@pytest.fixture
def session(qtbot):
    s = Session(window=100)
    yield s
    assert s.shutdown()


def open_demo(qtbot, s):
    with qtbot.waitSignal(s.network_changed, timeout=LONG):
        s.open_demo()
    qtbot.waitUntil(lambda: s.snapshot is not None and s.snapshot.t == 0, timeout=LONG)


def wait_t(qtbot, s, t, cursor=0):
    qtbot.waitUntil(lambda: s.snapshot is not None and s.snapshot.t == t and s.snapshot.cursor == cursor
                    and not s.running, timeout=LONG)


def reference(s, steps):
    """The same run, made here with the engine directly."""
    x = s.samples.x[s.batch_start:s.batch_start + s.config.batch]
    y = None if s.samples.y is None else s.samples.y[s.batch_start:s.batch_start + s.config.batch]
    sim = Simulator(s.network, s.config, x, y)
    sim.run(steps)
    return sim, forward(s.network, x)


def tiny_network() -> nw.Network:
    rng = np.random.default_rng(0)
    return nw.Network("tiny", [
        nw.Layer("in", nw.INPUT, (4,)),
        nw.Layer("hidden", nw.DENSE, (6,), ("in",), rng.normal(size=(4, 6)), np.zeros(6), "relu"),
        nw.Layer("out", nw.DENSE, (3,), ("hidden",), rng.normal(size=(6, 3)), np.zeros(3), "softmax"),
    ])


def test_open_demo_normalizes_on_calibration_set(qtbot, session):
    open_demo(qtbot, session)
    assert session.network.normalization["percentile"] == pytest.approx(99.9)
    assert session.network.normalization["n_samples"] == 300
    assert len(session.samples) == 360 and session.samples.y is not None
    assert session.selected_layer == session.network.neuron_layers[0].name


def test_step_snapshot_equals_engine_state(qtbot, session):
    open_demo(qtbot, session)
    for _ in range(7):
        session.step()
    wait_t(qtbot, session, 7)
    sim, ann = reference(session, 7)
    snap = session.snapshot
    for ls in sim.layers:
        if ls.is_neuron:
            np.testing.assert_array_equal(snap.layer(ls.layer.name).counts, ls.counts)
            np.testing.assert_array_equal(snap.layer(ls.layer.name).membrane, ls.membrane())
    np.testing.assert_equal([astuple(x) for x in snap.stats], [astuple(x) for x in simulator_stats(sim, ann)])
    np.testing.assert_array_equal(snap.predictions, sim.prediction())


def test_step_layer_moves_the_cursor_through_the_timestep(qtbot, session):
    open_demo(qtbot, session)
    names = [layer.name for layer in session.network.layers]
    session.step_layer()
    wait_t(qtbot, session, 0, cursor=1)
    assert session.snapshot.cursor_layer == names[1]
    for _ in range(len(names) - 1):
        session.step_layer()
    wait_t(qtbot, session, 1)
    assert session.snapshot.cursor_layer is None


def test_play_and_pause(qtbot, session):
    open_demo(qtbot, session)
    session.set_play_steps(10**9)  # a play that only a pause ends
    with qtbot.waitSignal(session.running_changed, timeout=LONG):
        session.play()
    qtbot.waitUntil(lambda: session.snapshot.t > 20, timeout=LONG)
    with qtbot.waitSignal(session.running_changed, timeout=LONG) as blocker:
        session.pause()
    assert blocker.args == [False]
    qtbot.waitUntil(lambda: not session.snapshot.running, timeout=LONG)
    t = session.snapshot.t
    session.step()
    wait_t(qtbot, session, t + 1)


def test_play_runs_each_sample_to_t_then_the_next_and_stops_at_t_without_play_through(qtbot, session):
    open_demo(qtbot, session)
    session.set_play_steps(37)
    session.set_play_through(False)
    session.play()
    qtbot.waitUntil(lambda: session.snapshot.t == 37 and not session.running and not session._playing, timeout=LONG)
    assert session.batch_start == 0
    qtbot.wait(100)
    assert session.snapshot.t == 37  # it stays at T
    with qtbot.waitSignal(session.status, timeout=LONG) as blocker:
        session.play()  # already at T: says so, does nothing
    assert "already at T = 37" in blocker.args[0] and session.snapshot.t == 37
    session.set_play_through(True)
    session.play()  # at T: goes on with the next sample, from t = 0 to T
    qtbot.waitUntil(lambda: session.batch_start >= 2, timeout=LONG)
    session.pause()
    qtbot.waitUntil(lambda: not session.running, timeout=LONG)
    assert session.snapshot.t <= 37


def test_run_to_behind_t_runs_again_from_zero_and_says_so(qtbot, session):
    open_demo(qtbot, session)
    session.run_to(30)
    wait_t(qtbot, session, 30)
    with qtbot.waitSignal(session.status, timeout=LONG) as blocker:
        session.run_to(10)
    assert "reset to t = 0 and ran to 10" in blocker.args[0]
    wait_t(qtbot, session, 10)


def test_a_slowed_play_keeps_to_its_speed():
    loop, clock, snapshots = playing_loop(interval=0.0)
    loop.speed = 10.0  # steps per second
    loop._set_running(loop._pause_gen)  # the play starts its allowance now
    t0 = loop.sim.t
    for _ in range(5):
        loop._advance()
    assert loop.sim.t == t0 + 1  # no time has passed on the fake clock: one step
    clock.now += 0.5
    for _ in range(20):
        loop._advance()
    assert loop.sim.t == t0 + 6  # 0.5 s at 10 steps/s: five more


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def playing_loop(interval=0.1):
    """A SimLoop driven by hand in this thread (no QThread), with a fake clock, playing."""
    from tests.view_data import small_network
    from workbench.engine.config import SimConfig
    from workbench.views.sim_loop import SimLoop

    sent, clock = [], FakeClock()
    loop = SimLoop(lambda kind, payload: sent.append((kind, payload)), window=50, frame_interval=interval,
                   clock=clock)
    x = np.random.default_rng(1).uniform(0, 1, (1, 4, 4, 1)).astype(np.float32)
    loop._execute(("setup", small_network(), SimConfig(), x, None))
    loop._send_snapshot()  # what run() does after a command changed the state
    loop.frame_done()
    loop._execute(("play", loop._pause_gen, None))
    snapshots = lambda: [p for k, p in sent if k == "snapshot"]  # noqa: E731
    return loop, clock, snapshots


def test_no_new_snapshot_until_the_gui_took_the_last_one():
    loop, clock, snapshots = playing_loop()
    before = len(snapshots())
    clock.now += 1.0
    loop._advance()  # the GUI wants a frame and one is due
    assert len(snapshots()) == before + 1
    for _ in range(20):  # GUI busy: steps go on, no snapshot however long it takes
        clock.now += 1.0
        loop._advance()
    assert len(snapshots()) == before + 1 and loop.sim.t == 21
    loop.frame_done()
    loop._advance()
    assert len(snapshots()) == before + 2 and snapshots()[-1].t == 22


def test_snapshots_at_most_once_per_frame_interval_by_the_clock():
    loop, clock, snapshots = playing_loop(interval=0.1)
    first = len(snapshots())
    times = []
    for i in range(100):  # 100 steps, 10 ms of "time" each: 1 s -> 10 frames
        clock.now += 0.01
        n = len(snapshots())
        loop._advance()
        if len(snapshots()) > n:
            times.append(clock.now)
            loop.frame_done()  # the GUI takes each one at once
    assert len(snapshots()) - first == len(times) == 10
    assert np.all(np.diff(times) >= 0.1 - 1e-9)
    assert loop.sim.t == 100


def stepping_clock(loop, per_step: float):
    """A clock for ``playing_loop`` on which each timestep takes ``per_step`` seconds."""
    base = 100.0
    t0 = loop.sim.t
    extra = [0.0]  # time that passes outside the steps (the test adds to it)
    loop._clock = lambda: base + (loop.sim.t - t0) * per_step + extra[0]
    return extra


def test_play_sends_one_frame_per_interval_though_frames_go_out_late():
    """Frames are due on a grid of the frame interval: chunks end when a frame is due (by the
    measured time per step), and a snapshot sent a little late (here up to 8 ms of a 100 ms
    frame, as when the OS or the GIL holds the worker up between chunks) does not push the next
    one back (that made ~28 frames a second of 30)."""
    from workbench.views import sim_loop

    loop, clock, snapshots = playing_loop(interval=0.1)
    extra = stepping_clock(loop, 0.001)  # 1000 steps a second
    chunks = []
    run = loop.sim.run

    def recording_run(k, **kw):
        chunks.append(k)
        return run(k, **kw)

    loop.sim.run = recording_run
    rng = np.random.default_rng(0)
    sent = []
    while loop.sim.t < 10_000:  # 10 s of steps
        extra[0] += rng.uniform(0, 0.008)  # held up between chunks
        n = len(snapshots())
        loop._advance()
        if len(snapshots()) > n:
            sent.append(loop._clock())
            loop.frame_done()
    seconds = loop._clock() - 100.0
    assert len(sent) >= int(seconds / 0.1) - 1  # 10 a second: lateness made up, not accumulated
    assert np.all(np.diff(sent) >= 0.09 - 1e-9)  # and never more than one frame per 0.9 interval
    assert max(chunks) <= sim_loop.CHUNK_SECONDS / 0.001  # chunks adapt to ~CHUNK_SECONDS


def test_chunks_grow_to_max_chunk_and_a_pause_stops_between_them():
    from workbench.views import sim_loop

    loop, clock, snapshots = playing_loop(interval=0.1)
    stepping_clock(loop, 1e-7)  # a very fast network
    for _ in range(20):
        loop._advance()
        loop.frame_done()
    assert loop._chunk == sim_loop.MAX_CHUNK
    t = loop.sim.t
    loop.pause()  # from the GUI thread: the generation changes before the next chunk
    loop._advance()
    assert loop.sim.t == t and snapshots()[-1].running is False


def test_a_pause_from_the_gui_thread_ends_a_chunk_inside_the_kernel():
    """Chunks last until the next frame (~33 ms): ``pause()`` must not wait for the chunk to end.
    It changes the loop's stop flag, which the fused kernel reads before every step."""
    loop, clock, snapshots = playing_loop(interval=0.1)
    loop._chunk, loop._step_seconds = 10**7, 0.0  # one nogil call of 10^7 steps (~10 s)
    ring = loop.sim.recorder.arrays()["steps"]
    worker = threading.Thread(target=loop._advance)
    worker.start()
    while ring.max() < 50:  # the kernel is inside the chunk
        pass
    loop.pause()
    worker.join()
    t = loop.sim.t
    assert 50 <= t < 10**7
    loop._advance()
    assert loop.sim.t == t and snapshots()[-1].running is False


def test_each_play_chunk_is_one_nogil_call():
    """The loop sizes its chunks by time and passes them whole to the fused kernel
    (``max_chunk``): after each nogil call the worker must win the GIL back from the GUI
    thread, so a chunk split into 256-step calls waited several times per frame."""
    from workbench.engine import fused
    from workbench.views import sim_loop

    loop, clock, snapshots = playing_loop(interval=0.1)
    stepping_clock(loop, 1e-7)
    prog = loop.sim._fused_program()
    calls, run = [], prog.run
    prog.run = lambda sim, k, stop: (calls.append(k), run(sim, k, stop))[1]
    for _ in range(20):
        loop._advance()
        loop.frame_done()
    assert loop._chunk == sim_loop.MAX_CHUNK > fused.CHUNK
    assert max(calls) == sim_loop.MAX_CHUNK
    # one thread or two for a batch-1 step is the fused path's measured choice (block_pool.Chooser),
    # in the window as headless: the GUI thread's painting is part of what it measures
    assert loop.sim.split_steps is True


def test_steps_per_second_comes_from_the_clock():
    loop, clock, snapshots = playing_loop(interval=0.0)
    for _ in range(50):
        clock.now += 0.01  # 100 steps per second of fake time
        loop._advance()
        loop.frame_done()
    assert snapshots()[-1].steps_per_second == pytest.approx(100.0)
    assert snapshots()[-1].running


def test_run_to_stops_at_t_and_ring_buffer_keeps_memory_flat(qtbot, session):
    open_demo(qtbot, session)
    session.run_to(250)
    wait_t(qtbot, session, 250)
    history = session.snapshot.history
    assert history.n_steps == 100 and history.steps[0] == 151 and history.steps[-1] == 250
    r = session.snapshot.r_history[session.selected_layer]
    assert r and r[-1][0] == 250 and all(a[0] < b[0] for a, b in zip(r, r[1:]))


def test_history_holds_selected_and_watched_layers(qtbot, session):
    open_demo(qtbot, session)
    session.select_layer("fc1")
    session.set_watched([("conv2", 5), ("output", 3)])
    session.run_to(30)
    wait_t(qtbot, session, 30)
    snap = session.snapshot
    assert set(snap.history.layers) == {"fc1", "conv2", "output"}
    # membranes only of the watched neurons (the membrane view plots nothing else), not of
    # their whole layers
    assert all(snap.history[name].membrane is None for name in snap.history.layers)
    assert set(snap.neuron_membranes) == {("conv2", 5), ("output", 3)}
    with qtbot.waitSignal(session.trace_ready, timeout=LONG) as blocker:
        session.request_trace()
    recorded = blocker.args[0]
    for (layer, index), v in snap.neuron_membranes.items():
        assert v.shape == (30, 1) and not v.flags.writeable
        np.testing.assert_array_equal(v, recorded[layer].flat("membrane")[:, :, index])


def test_neuron_type_change_and_bad_override(qtbot, session):
    open_demo(qtbot, session)
    with qtbot.waitSignal(session.config_changed):
        session.set_config(session.config.replace(neuron=make_neuron("lif")))
    qtbot.waitUntil(lambda: session.snapshot.layer("fc1").model.startswith("lif"), timeout=LONG)
    before = session.config
    with qtbot.waitSignal(session.error) as blocker:
        session.set_config(before.replace(overrides={"no_such_layer": make_neuron("if")}))
    assert "no_such_layer" in blocker.args[0]
    assert session.config is before


def test_engine_exception_reaches_window_and_session_stays_usable(qtbot, session, monkeypatch):
    open_demo(qtbot, session)

    def broken(self):
        raise RuntimeError("kernel exploded")

    monkeypatch.setattr(Simulator, "step", broken)
    with qtbot.waitSignal(session.error, timeout=LONG) as blocker:
        session.step()
    message, details = blocker.args
    assert "kernel exploded" in message and "Traceback" in details
    monkeypatch.undo()
    session.step()
    wait_t(qtbot, session, 1)


def test_percentile_renormalizes_off_the_gui_thread_with_progress(qtbot, session):
    open_demo(qtbot, session)
    seen = []
    session.job_progress.connect(seen.append)
    with qtbot.waitSignal(session.network_changed, timeout=LONG):
        session.set_percentile(99.0)
    assert session.network.normalization["percentile"] == 99.0
    assert seen and seen[-1] == 1.0 and seen == sorted(seen)


def test_cancelling_a_normalization_keeps_the_network_and_its_percentile(qtbot, session):
    open_demo(qtbot, session)
    network, messages, changes = session.network, [], []
    session.status.connect(messages.append)
    session.network_changed.connect(lambda: changes.append(1))
    session.set_percentile(95.0)
    assert session.percentile == 95.0  # what was asked, until the job answers
    session.cancel_jobs()  # the job was posted before: cancelled wherever it is by now
    qtbot.waitUntil(lambda: any(m.startswith("Cancelled: Normalizing") for m in messages), timeout=LONG)
    assert session.network is network and not changes and session.percentile == 99.9
    assert not session.busy
    with qtbot.waitSignal(session.network_changed, timeout=LONG):  # later jobs run
        session.set_percentile(95.0)
    assert session.network.normalization["percentile"] == 95.0


def test_a_job_cancelled_while_it_runs_stops_at_its_next_progress_report():
    from workbench.views.sim_loop import SimLoop

    sent = []
    loop = SimLoop(lambda kind, payload: sent.append((kind, payload)), window=10)
    reports = []

    def job(n, on_progress):
        for i in range(1, n + 1):
            on_progress(i, n)
            reports.append(i)
            if i == 3:
                loop.cancel_jobs()  # what the GUI thread does meanwhile
        return "done"

    loop._execute(("job", "work", "Working…", job, (10,), loop.job_token()))
    assert reports == [1, 2, 3]
    assert ("cancelled", ("work", "Working…")) in sent and "result" not in [k for k, _ in sent]
    assert [p for k, p in sent if k == "status"] == ["Working…", ""]
    assert [p for k, p in sent if k == "progress"][0] == 0.1

    def quiet(on_progress):  # no progress report: cancelled during it, its result is dropped
        loop.cancel_jobs()
        return "late"

    sent.clear()
    loop._execute(("job", "work", "Quiet…", quiet, (), loop.job_token()))
    assert sent[-1] == ("cancelled", ("work", "Quiet…"))
    loop._execute(("job", "work", "Again", lambda on_progress: 7, (), loop.job_token()))
    assert sent[-1] == ("result", ("work", 7))


def test_hand_built_model_is_normalized_once_data_arrives(qtbot, session, tmp_path):
    tiny_network().save(tmp_path / "tiny.npz")
    x = np.random.default_rng(1).uniform(0, 1, size=(20, 4)).astype(np.float32)
    np.savez(tmp_path / "data.npz", x=x, y=np.arange(20) % 3)
    with qtbot.waitSignal(session.network_changed, timeout=LONG):
        session.open_model(tmp_path / "tiny.npz")
    assert session.network is session.original and session.samples is None
    with qtbot.waitSignal(session.data_changed, timeout=LONG):
        session.open_data(tmp_path / "data.npz")
    assert session.network.normalization["n_samples"] == 20
    session.select_batch(4, 3)
    session.run_to(30)
    wait_t(qtbot, session, 30)
    assert session.snapshot.batch == 3
    np.testing.assert_array_equal(session.snapshot.labels, [1, 2, 0])
    sim, _ = reference(session, 30)
    np.testing.assert_array_equal(session.snapshot.output_counts, sim.output_counts())


def test_open_errors_are_reported(qtbot, session, tmp_path):
    with qtbot.waitSignal(session.error) as blocker:
        session.open_data(tmp_path / "x.npz")
    assert "model first" in blocker.args[0]
    with qtbot.waitSignal(session.error, timeout=LONG) as blocker:
        session.open_model(tmp_path / "missing.keras")
    assert "missing.keras" in blocker.args[0]


def test_shutdown_while_running(qtbot, session):
    open_demo(qtbot, session)
    session.play()
    qtbot.waitUntil(lambda: session.running, timeout=LONG)
    assert session.shutdown(5000)
    assert not session._thread.isRunning()


def test_the_first_setup_says_it_compiles_the_kernels_and_cannot_be_cancelled(monkeypatch):
    """On a machine whose kernel cache is empty the first step compiled for ~20 s in silence;
    the worker now warms the kernels up when a network arrives, saying so in the status bar."""
    from tests.view_data import small_network
    from workbench.analysis import warmup
    from workbench.engine.config import SimConfig
    from workbench.views.sim_loop import SimLoop

    monkeypatch.setattr(warmup, "_WARM", [False])
    monkeypatch.setattr(warmup, "kernels_cached", lambda: False)
    sent = []
    loop = SimLoop(lambda kind, payload: sent.append((kind, payload)), window=10)
    x = np.random.default_rng(1).uniform(0, 1, (1, 4, 4, 1)).astype(np.float32)
    loop._execute(("setup", small_network(), SimConfig(), x, None))
    statuses = [p for k, p in sent if k == "status"]
    assert statuses[0].startswith("Compiling the engine's kernels") and statuses[-1] == ""
    assert warmup.is_warm() and "cancellable" not in [k for k, _ in sent]
    sent.clear()
    loop._execute(("setup", small_network(), SimConfig(), x, None))  # once per process
    assert [p for k, p in sent if k == "status"] == []


@pytest.mark.parametrize("gui_seconds, frames", [(0.0, 200), (0.024, 10)])
def test_a_big_networks_frames_are_spaced_by_what_the_gui_spends_on_them(monkeypatch, gui_seconds, frames):
    """On a network big enough for detail snapshots, frames are spaced so that the worker's
    snapshot and the GUI thread's CPU per frame (``frame_done(gui_seconds)``) take at most
    FRAME_SHARE (12 %) of a play: 24 ms of GUI work a frame at 10 ms a step -> a frame every 0.2 s
    (20 steps), not every step; with a GUI that costs nothing, every step is shown."""
    from workbench.views import sim_loop

    monkeypatch.setattr(sim_loop, "DETAIL_ALL_NEURONS", 0)  # 'big': snapshots copy the shown layers only
    loop, clock, snapshots = playing_loop(interval=0.001)
    stepping_clock(loop, 0.01)
    before = len(snapshots())
    while loop.sim.t < 200:
        n = len(snapshots())
        loop._advance()
        if len(snapshots()) > n:
            loop.frame_done(gui_seconds)
    assert gui_seconds / sim_loop.FRAME_SHARE == pytest.approx(0.2 if gui_seconds else 0.0)
    assert abs((len(snapshots()) - before) - frames) <= 1
