"""Frames per second of the raster and membrane views on a big synthetic history.

    QT_QPA_PLATFORM=offscreen .venv/bin/python benchmarks/bench_paint.py [--frames 60]

One layer of 10,000 neurons, 500 recorded steps (int16 spikes at ~10 % density, float32
membrane), batch 1. Each frame hands the shown view a NEW snapshot (two are alternated, so the
data really changes), pushes it into the plot items (``refresh``) and has Qt paint the widget
synchronously (``repaint`` + ``processEvents``), all in this process: what one live frame
costs the GUI thread. Reported per view and dock
size: frames per second, and the time split between ``refresh`` and the Qt paint.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
from PyQt6.QtWidgets import QApplication  # noqa: E402

from workbench.analysis.snapshot import LayerSnapshot, Snapshot  # noqa: E402
from workbench.engine.trace import LayerTrace, Trace  # noqa: E402

NEURONS, STEPS = 10_000, 500


def synthetic_snapshot(seed: int, neurons: int = NEURONS, steps: int = STEPS) -> Snapshot:
    rng = np.random.default_rng(seed)
    spikes = (rng.random((steps, 1, neurons)) < 0.1).astype(np.int16)
    membrane = rng.random((steps, 1, neurons), dtype=np.float32)
    counts = spikes.sum(axis=0).astype(np.float64)
    trace = Trace({"big": LayerTrace("big", (neurons,), spikes, membrane)}, np.arange(1, steps + 1),
                  np.zeros((steps, 1), np.int16))
    layers = (
        LayerSnapshot("input", "input", 0, (neurons,), False, np.zeros((1, neurons), np.float32)),
        LayerSnapshot("big", "dense", 1, (neurons,), True, spikes[-1].astype(np.float32), spikes[-1], membrane[-1],
                      counts, rng.random((1, neurons), dtype=np.float32)),
    )
    return Snapshot(steps, 0, None, 1, 1.0, layers, trace, (), np.zeros(1, np.int64), None, counts[:, :10],
                    np.zeros(0))


def measure(app, view, snaps, frames: int) -> tuple[float, float, float]:
    """(fps, ms in refresh, ms in the Qt paint) per frame."""
    view.set_snapshot(snaps[0])
    view.refresh()
    view.repaint()
    app.processEvents()
    t_refresh = t_paint = 0.0
    start = time.perf_counter()
    for i in range(frames):
        t0 = time.perf_counter()
        view.set_snapshot(snaps[i % len(snaps)])
        view.refresh()
        t1 = time.perf_counter()
        view.repaint()
        app.processEvents()
        t2 = time.perf_counter()
        t_refresh += t1 - t0
        t_paint += t2 - t1
    total = time.perf_counter() - start
    return frames / total, 1000 * t_refresh / frames, 1000 * t_paint / frames


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=60)
    args = parser.parse_args()
    app = QApplication.instance() or QApplication([])
    from workbench.views.qt_membrane import QtMembraneView
    from workbench.views.qt_raster import QtRasterView

    snaps = [synthetic_snapshot(0), synthetic_snapshot(1)]
    print(f"{NEURONS} neurons x {STEPS} steps, {args.frames} frames, each a new snapshot + refresh + repaint")
    print(f"{'view':<28} {'size':>9} {'fps':>7} {'refresh ms':>11} {'Qt paint ms':>12}")
    for size in ((450, 300), (1200, 800)):
        cases = []
        raster = QtRasterView()
        raster.set_selected_layer("big")
        cases.append(("raster (zoomed out)", raster))
        zoomed = QtRasterView()
        zoomed.set_selected_layer("big")
        cases.append(("raster (zoomed to 200 rows)", zoomed))
        membrane = QtMembraneView()
        for i in range(10):
            membrane.add_neuron("big", i * 997)
        cases.append(("membrane (10 neurons)", membrane))
        for name, view in cases:
            view.resize(*size)
            view.show()
            app.processEvents()
            if view is zoomed:
                view.set_snapshot(snaps[0])
                view.refresh()
                view.plot.vb.enableAutoRange(False)
                view.plot.vb.setRange(xRange=(0.5, STEPS + 0.5), yRange=(1000, 1200), padding=0)
                app.processEvents()
            fps, ms_refresh, ms_paint = measure(app, view, snaps, args.frames)
            print(f"{name:<28} {size[0]:>4}x{size[1]:<4} {fps:>7.1f} {ms_refresh:>11.1f} {ms_paint:>12.1f}")
            view.close()


if __name__ == "__main__":
    main()
