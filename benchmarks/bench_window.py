"""Engine throughput with the whole window attached, against the same engine headless.

    QT_QPA_PLATFORM=offscreen .venv/bin/python benchmarks/bench_window.py [--steps 200000] [--batch 1]
    xvfb-run -a .venv/bin/python benchmarks/bench_window.py          # a real X server

Same process, same network (the bundled demo, normalized on its calibration set), same sample(s)
and settings as the window uses (the recorder keeps the window's 500 steps):

1. headless: a ``Simulator`` built and stepped here, ``--steps`` timesteps, no Qt involved;
2. window: ``build_window`` (the real main window with every view shown, 1600x1000), then
   ``Session.run_to(--steps)``; timed from the intent to the snapshot that says t == steps.
   Frames per second = paints of the plot views that are on screen, per second.

Reported: both steps per second, their ratio (the issue asks >= 0.8), snapshots per second and
paints per second per view on screen (over the run's wall time, and "steady": between a view's
first and last paint of the run, which leaves out the start and the last frame painted after
the run ended), and the CPU time the worker and the GUI thread got per second of wall time
(what a thread did not get went to waiting for the GIL or for a core), the share of wall time
the worker waited in the run queue for a core (other processes on the machine: a ratio is
only comparable between runs where this is near zero), the CPU time per step
headless and in the window's worker (snapshots included), and the GUI thread's CPU time per
snapshot shown (everything it did: views, table, status bar). ``--profile FILE`` writes a cProfile of the worker thread (the SimLoop) for
the window run. The machine's other load moves the figures; compare the ratio, run it twice.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from PyQt6.QtCore import QEventLoop, QSettings, QTimer  # noqa: E402
from PyQt6.QtWidgets import QApplication  # noqa: E402

from workbench.engine.simulator import Simulator  # noqa: E402
from workbench.views import loaders  # noqa: E402

WINDOW = 500  # steps the window's recorder keeps (Session's default)


def headless(network, config, x, y, steps: int) -> float:
    sim = Simulator(network, config, x, y, record_capacity=WINDOW)
    sim.run(20)  # numba kernels compiled / loaded from the cache
    sim.reset()
    start, cpu = time.perf_counter(), time.thread_time()
    sim.run(steps)
    return steps / (time.perf_counter() - start), (time.thread_time() - cpu) / steps


def wait(app, condition, timeout: float = 600.0) -> None:
    """Run Qt's event loop (as ``app.exec()`` would: idle waits hold no GIL) until
    ``condition()``, checked every 5 ms; polling ``processEvents`` in Python would itself take
    the GIL a thousand times a second and slow the worker down."""
    if condition():
        return
    loop = QEventLoop()
    end = time.perf_counter() + timeout

    def check():
        if condition() or time.perf_counter() > end:
            loop.quit()

    timer = QTimer()
    timer.timeout.connect(check)
    timer.start(5)
    loop.exec()
    timer.stop()
    if not condition():
        raise TimeoutError("the window did not get there in time")


def in_window(app, steps: int, batch: int, profile: str | None):
    """(steps/s, snapshots/s, paints/s of the visible views, the window's headless inputs)."""
    from workbench.views.app import build_window

    settings = QSettings(tempfile.mktemp(suffix=".ini"), QSettings.Format.IniFormat)
    session, win = build_window(settings=settings, error_handler=lambda m, d: print("error:", m, file=sys.stderr))
    win.resize(1600, 1000)
    win.show()
    wait(app, lambda: session.network is not None and session.snapshot is not None)
    if batch != session.config.batch:
        session.select_batch(0, batch)
        wait(app, lambda: session.snapshot is not None and session.snapshot.batch == batch)
    membrane = win.views.get("membrane")
    session.select_layer("conv2")
    if membrane is not None:
        membrane.add_neuron("conv2", 37)
        membrane.add_neuron("fc1", 5)
    session.run_to(20)  # warm up: compile, first paints
    wait(app, lambda: session.snapshot.t == 20 and not session.running)
    session.reset()
    wait(app, lambda: session.snapshot.t == 0 and not session.running)
    pause = time.perf_counter() + 0.3
    wait(app, lambda: time.perf_counter() > pause)

    loop = session._loop
    cpu = {"worker": 0.0}
    stepping = loop._advance

    cpu["queued"] = 0.0

    def timed():  # the worker's CPU time (not wall time: waits for the GIL or a core don't count)
        t0, q0 = time.thread_time(), run_delay()
        try:
            stepping()
        finally:
            cpu["worker"] += time.thread_time() - t0
            cpu["queued"] += run_delay() - q0

    loop._advance = timed
    profiler = None
    if profile:
        import cProfile

        profiler = cProfile.Profile()
        original = timed

        def profiled():
            profiler.enable()
            try:
                original()
            finally:
                profiler.disable()

        loop._advance = profiled
    visible = [v for v in win.views.values() if not v.plot_widget.viewport().visibleRegion().isEmpty()]  # on screen
    paints0 = sum(v.repaint_count for v in visible)
    painted = {id(v): [] for v in visible}  # when each visible view painted during the run
    for v in visible:
        v.refresh = _stamped(v.refresh, painted[id(v)])
    frames = []  # counted, not kept: holding every snapshot would keep every history buffer alive

    def count(_snapshot):
        frames.append(None)

    session.snapshot_ready.connect(count)
    start, main_cpu = time.perf_counter(), time.thread_time()
    session.run_to(steps)
    wait(app, lambda: session.snapshot.t >= steps and not session.running)
    elapsed = time.perf_counter() - start
    cpu["main"] = time.thread_time() - main_cpu
    loop._advance = stepping
    paints = sum(v.repaint_count for v in visible) - paints0
    for v in visible:
        del v.refresh
    rates = [(len(t) - 1) / (t[-1] - t[0]) for t in painted.values() if len(t) > 2 and t[-1] > t[0]]
    steady = sum(rates) / max(len(rates), 1)  # paints/s between a view's first and last paint of the run
    session.snapshot_ready.disconnect(count)
    if profiler is not None:
        profiler.dump_stats(profile)
    inputs = (session.network, session.config, *session._batch())
    win.close()
    share = {k: v / elapsed for k, v in cpu.items()}
    share["worker_per_step"] = cpu["worker"] / steps
    share["gui_per_frame"] = cpu["main"] / max(len(frames), 1)
    share["steady_fps"] = steady
    return steps / elapsed, len(frames) / elapsed, paints / elapsed / max(len(visible), 1), share, inputs


def _stamped(refresh, times: list):
    def stamped():
        times.append(time.perf_counter())
        refresh()
    return stamped


def run_delay() -> float:
    """Seconds this thread has waited for a core in the run queue (Linux; 0 elsewhere): what
    other processes took from the worker, as against waits for the GIL (the thread sleeps)."""
    try:
        with open(f"/proc/self/task/{threading.get_native_id()}/schedstat") as f:
            return int(f.read().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200_000,
                        help="timesteps per run (the default, ~4 s on the demo, measures a play's steady "
                             "state; a short run also weighs its start and its last frame)")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=1, help="alternate headless and window runs this often")
    parser.add_argument("--profile", help="write a cProfile of the worker's stepping to this file")
    args = parser.parse_args()
    app = QApplication.instance() or QApplication([])
    print(f"demo network, batch {args.batch}, {args.steps} steps, platform {app.platformName()}")
    print(f"{'headless steps/s':>17} {'window steps/s':>15} {'ratio':>6} {'snapshots/s':>12} {'fps/view':>9}"
          f" {'steady fps':>11} {'CPU worker':>11} {'CPU GUI':>8} {'worker queued':>14} {'CPU us/step h|w':>16}"
          f" {'GUI CPU ms/frame':>17}")
    inputs = None
    for _ in range(args.repeat):
        w_rate, snaps, fps, share, inputs = in_window(app, args.steps, args.batch, args.profile)
        h_rate, h_cpu = headless(*inputs, args.steps)
        per_step = f"{1e6 * h_cpu:.0f} | {1e6 * share['worker_per_step']:.0f}"
        print(f"{h_rate:>17,.0f} {w_rate:>15,.0f} {w_rate / h_rate:>6.2f} {snaps:>12.1f} {fps:>9.1f}"
              f" {share['steady_fps']:>11.1f} {share['worker']:>11.0%} {share['main']:>8.0%} {share['queued']:>14.0%}"
              f" {per_step:>16} {1e3 * share['gui_per_frame']:>17.1f}")


if __name__ == "__main__":
    main()
