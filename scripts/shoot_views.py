"""Render every plot view with a real run of the demo network to PNG (for looking at them).

    QT_QPA_PLATFORM=offscreen .venv/bin/python scripts/shoot_views.py [out_dir] [--small]

Runs the normalized demo CNN (digits) for 120 steps on 32 test samples, the way the session
would: snapshot after each step, r per layer accumulated; then grabs each view at dock size.
``--small`` uses the hand-built test network instead (no TensorFlow import).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from PyQt6.QtWidgets import QApplication  # noqa: E402


def demo_run(steps=120, batch=32):
    from workbench.engine.config import SimConfig
    from workbench.engine.simulator import Simulator
    from workbench.models.forward import forward
    from workbench.models.prepare import prepare

    prep = prepare(None, demo=True)
    x, y = prep.samples.x[:batch], prep.samples.y[:batch]
    sim = Simulator(prep.network, SimConfig(batch=batch, steps=steps), x, y)
    ann = forward(prep.network, x)
    ann_acc = float(np.mean(ann[prep.network.output_layer.name].argmax(axis=1) == y))
    return sim, ann, ann_acc, steps


def small_run(steps=60, batch=4):
    sys.path.insert(0, str(ROOT / "tests"))
    from view_data import make_run

    sim, ann = make_run(0, batch, labels=True)
    return sim, ann, 0.75, steps


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    out = Path(args[0]) if args else ROOT / "docs" / "screenshots"
    out.mkdir(parents=True, exist_ok=True)
    app = QApplication.instance() or QApplication([])
    from workbench.analysis.layer_stats import pearson
    from workbench.analysis.snapshot import make_snapshot
    from workbench.views.qt_accuracy import QtAccuracyView
    from workbench.views.qt_ann_vs_snn import QtAnnSnnView
    from workbench.views.qt_heatmap import QtHeatmapView
    from workbench.views.qt_membrane import QtMembraneView
    from workbench.views.qt_raster import QtRasterView
    from workbench.views.qt_rates import QtRatesView

    sim, ann, ann_acc, steps = small_run() if "--small" in sys.argv else demo_run()
    r_history = {}
    for _ in range(steps):
        sim.step()
        for ls in sim.layers:
            if ls.is_neuron and ls.layer.name in ann:
                r_history.setdefault(ls.layer.name, []).append((sim.t, pearson(ann[ls.layer.name], ls.counts)))
    snap = make_snapshot(sim, ann, r_history={k: tuple(v) for k, v in r_history.items()})
    neuron = [ls.name for ls in snap.layers if ls.is_neuron]
    chosen = neuron[1] if len(neuron) > 1 else neuron[0]

    views = {
        "raster": QtRasterView(), "raster_stacked": QtRasterView(), "membrane": QtMembraneView(),
        "heatmap": QtHeatmapView(), "heatmap_dense": QtHeatmapView(), "rates": QtRatesView(),
        "ann_vs_snn": QtAnnSnnView(), "accuracy": QtAccuracyView(),
    }
    views["raster_stacked"].set_stacked(True)
    views["heatmap_dense"].set_selected_layer(neuron[-2] if len(neuron) > 2 else neuron[-1])
    views["accuracy"].set_ann_accuracy(ann_acc)
    rates = snap.layer(chosen).counts[0].reshape(-1)
    for i in list(np.argsort(rates)[-3:][::-1]) + [int(np.argmin(np.abs(rates - 0.3)))]:
        views["membrane"].add_neuron(chosen, int(i))
    for name, view in views.items():
        if name not in ("heatmap_dense",):
            view.set_selected_layer(chosen)
        view.resize(450, 300)
        view.show()
        view.set_snapshot(snap)
        app.processEvents()
        view.refresh()
        app.processEvents()
        view.refresh()  # a second paint after autorange settled (pooling factors)
        app.processEvents()
        path = out / f"{name}.png"
        view.grab().save(str(path))
        print(path)


if __name__ == "__main__":
    main()
