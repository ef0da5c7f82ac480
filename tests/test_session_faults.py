"""Faults inside the window's worker: an exception in a kernel reaches the window as an error
with details to copy, the session stays usable, and closing mid-run, mid-normalization or
mid-export neither hangs nor loses a finished file."""

from __future__ import annotations

import time

import pytest

from test_session import LONG, open_demo, session  # noqa: F401 (session: the fixture)


def test_kernel_exception_reaches_the_window_and_the_session_recovers(qtbot, session, monkeypatch):
    open_demo(qtbot, session)
    from workbench.engine.simulator import Simulator

    calls = {"n": 0}
    original = Simulator.run  # the worker's play loop runs the kernels through it

    def failing_step(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] > 3:
            raise RuntimeError("injected kernel fault")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Simulator, "run", failing_step)
    with qtbot.waitSignal(session.error, timeout=LONG) as blocker:
        session.play()
    message, details = blocker.args
    assert "Internal error (RuntimeError): injected kernel fault" in message
    assert "Traceback" in details and "failing_step" in details  # what a person pastes into a bug report
    qtbot.waitUntil(lambda: not session.running, timeout=LONG)

    monkeypatch.setattr(Simulator, "run", original)
    session.reset()
    session.step()
    session.step()
    qtbot.waitUntil(lambda: session.snapshot is not None and session.snapshot.t == 2
                    and not session.running, timeout=LONG)


def test_user_error_in_a_job_is_reported_plainly(qtbot, session, tmp_path):
    bad = tmp_path / "bad.keras"
    bad.write_text("not a model")
    with qtbot.waitSignal(session.error, timeout=LONG) as blocker:
        session.open_model(bad)
    message, details = blocker.args
    assert message.startswith("bad.keras: not a Keras 3 model archive") and "Internal" not in message
    assert "ModelImportError" in details
    open_demo(qtbot, session)  # still usable


def test_closing_during_a_run_does_not_hang(qtbot, session):
    open_demo(qtbot, session)
    session.play()
    qtbot.waitUntil(lambda: session.running and session.snapshot.t > 5, timeout=LONG)
    start = time.monotonic()
    assert session.shutdown(10_000)
    assert time.monotonic() - start < 5


def test_closing_during_normalization_does_not_hang(qtbot, session):
    open_demo(qtbot, session)
    session.set_percentile(99.0)  # a job on the worker
    start = time.monotonic()
    assert session.shutdown(30_000)
    assert time.monotonic() - start < 30


def test_closing_during_an_export_keeps_the_finished_file(qtbot, session, tmp_path):
    """An export job that is running when the window closes completes (shutdown waits for the
    current job), and an export interrupted by a failure leaves the previous file in place."""
    from workbench.exchange.trace_io import load_trace, save_trace

    open_demo(qtbot, session)
    session.step()
    qtbot.waitUntil(lambda: session.snapshot.t == 1, timeout=LONG)
    target = tmp_path / "export.npz"

    def export(n, on_progress=None):
        sim = session._loop.sim
        sim.run(n)
        save_trace(sim.trace(), target)
        return n

    session._job("export", "Exporting…", export, 50)
    assert session.shutdown(60_000)
    assert load_trace(target).n_steps == 51

    before = target.read_bytes()

    class Broken:
        layers = property(lambda self: (_ for _ in ()).throw(RuntimeError("disk gone")))

    with pytest.raises(Exception):
        save_trace(Broken(), target)
    assert target.read_bytes() == before and not list(tmp_path.glob(".export.npz.*.part"))
