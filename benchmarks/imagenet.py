"""ImageNet-size networks (ResNet50, VGG16 at 224x224, batch 1): headless, in the window, and
against Keras. Each measurement runs in its own subprocess, one after the other (peaks do not
mix; the machine is shared).

    .venv/bin/python -m benchmarks.imagenet [--nets resnet50,vgg16] [--steps 40]
    .venv/bin/python -m benchmarks.imagenet --child KIND MODEL.keras DATA.npz STEPS   (one cell)

The models are ``keras.applications.X(weights=None)`` (seeded random weights) saved as .keras
in a temporary folder; the data are smooth random images (sums of low-frequency sines) in
[0, 1], 8 of them, the calibration set of the normalization (99.9th percentile) and the input.

Cells (every time is wall time on this machine, with whatever else runs on it):
- ``headless``: import, read + import the .keras, normalize, build the Simulator, first step
  (compiling or loading the kernels), then ``STEPS`` steps at batch 1 recording nothing, one
  ``run(1)`` call each (so the fused path can measure one thread against two): steps/s; and
  the next ``STEPS`` (``steps_per_s_next``: a network's activity, so its cost per step, grows
  over the first steps, so each window figure is compared with the same steps headless).
- ``keras``: ``STEPS`` Keras forward passes at batch 1 (``model(x, training=False)``), the dense
  bound: passes/s.
- ``window``: ``build_window(model, data)`` offscreen at 1600x1000 with the default memory
  budget: the time from opening to the first snapshot with t >= 1 (File > Open to the first
  step), then a play from t = 1 to 1 + STEPS (steps/s from play() to the snapshot at the
  target; paints/s: the views' renders of new snapshots), then a play of the next STEPS while
  every view on screen re-renders every 1/30 s, as when the user pans or zooms the raster while
  it plays (``*_repainting``: what painting costs the engine, and how many paints the window
  sustains), then on until the history is full (every page of the recording written), so the
  peak memory is the steady state's.
Each cell reports the peak resident memory of its process (VmHWM) and the model's weight bytes.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def _hwm_mb() -> float:
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def smooth_images(n: int, size: int, seed: int = 1):
    import numpy as np

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    out = np.empty((n, size, size, 3), np.float32)
    for i in range(n):
        for c in range(3):
            a, b, p, q = rng.uniform(1, 4, 4)
            out[i, :, :, c] = 0.5 + 0.5 * np.sin(a * np.pi * xx + p) * np.cos(b * np.pi * yy + q)
    return out


def build(name: str, folder: Path) -> tuple[Path, Path]:
    """(model.keras, data.npz) for ``name`` (resnet50, vgg16)."""
    import numpy as np

    model_path, data_path = folder / f"{name}.keras", folder / f"{name}_data.npz"
    if not model_path.exists():
        import keras

        keras.utils.set_random_seed(0)
        cls = {"resnet50": keras.applications.ResNet50, "vgg16": keras.applications.VGG16}[name]
        cls(weights=None, input_shape=(224, 224, 3)).save(model_path)
    if not data_path.exists():
        np.savez(data_path, x=smooth_images(8, 224), y=np.arange(8) % 1000)
    return model_path, data_path


def _headless(model, data, steps: int) -> dict:
    t0 = time.perf_counter()
    import numpy as np

    from workbench.engine.config import SimConfig
    from workbench.engine.simulator import Simulator
    from workbench.models import loading
    from workbench.models.normalize import normalize

    net = loading.open_model(model)
    t_import = time.perf_counter()
    x = np.load(data)["x"]
    norm = normalize(net, x, 99.9)
    t_norm = time.perf_counter()
    sim = Simulator(norm, SimConfig(record=(), record_membrane=False), x[:1], record_capacity=1)
    sim.run(1)
    t_first = time.perf_counter()
    halves = []
    for _ in range(2):  # steps 2..1+STEPS (the window's plain play), then the next STEPS (its repainted play)
        start = time.perf_counter()
        for _ in range(steps):  # one call a step: the fused path measures serial against parallel (Chooser)
            sim.run(1)
        halves.append(time.perf_counter() - start)
    el = halves[0]
    weights = sum(l.weights.nbytes + (l.bias.nbytes if l.bias is not None else 0)
                  for l in norm.layers if l.weights is not None)
    return {"open_s": t_import - t0, "normalize_s": t_norm - t_import, "first_step_s": t_first - t0,
            "steps_per_s": steps / el, "steps_per_s_next": steps / halves[1], "neurons": sum(l.size for l in norm.neuron_layers),
            "neuron_layers": len(norm.neuron_layers), "weights_mb": weights / 1024**2,
            "chooser": {str(k): v for k, v in sim._fused_prog.chooser.seconds.items()}
            if sim._fused_prog is not None else None, "fused": sim.fused_reason}


def _keras(model, data, steps: int) -> dict:
    import numpy as np

    from workbench.models.keras.importer import load_model_safely

    m = load_model_safely(model)
    x = np.load(data)["x"][:1]
    m(x, training=False)
    start = time.perf_counter()
    for _ in range(steps):
        m(x, training=False)
    return {"passes_per_s": steps / (time.perf_counter() - start)}


def _wait(cond, timeout=1800.0) -> None:
    """Run the Qt event loop until ``cond()`` (checked every 5 ms) or the timeout."""
    from PyQt6.QtCore import QEventLoop, QTimer

    loop, end = QEventLoop(), time.monotonic() + timeout
    timer = QTimer()
    timer.timeout.connect(lambda: (cond() or time.monotonic() > end) and loop.quit())
    timer.start(5)
    loop.exec()
    timer.stop()


def _open_window(model, data):
    """(app, session, window): the window opening ``model`` with ``data`` offscreen at 1600x1000,
    its layout in a temporary settings file (a person's saved layout is neither used nor changed)."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PyQt6.QtCore import QSettings
    from PyQt6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication([])
    from workbench.views.app import build_window

    settings = QSettings(tempfile.mktemp(suffix=".ini"), QSettings.Format.IniFormat)
    session, win = build_window(model=model, data=data, demo=False, settings=settings,
                                error_handler=lambda m, d: print("error:", m, file=sys.stderr))
    win.resize(1600, 1000)
    win.show()
    return app, session, win


def _window(model, data, steps: int) -> dict:
    from PyQt6.QtCore import QTimer

    t0 = time.perf_counter()
    app, session, win = _open_window(model, data)  # noqa: F841 (app kept alive)
    _wait(lambda: session.samples is not None and session.snapshot is not None and session.recording is not None)
    t_ready = time.perf_counter() - t0
    session.step()
    _wait(lambda: session.snapshot is not None and session.snapshot.t >= 1)
    t_first = time.perf_counter() - t0
    views = {k: v for k, v in win.views.items() if v.on_screen()}
    session.set_play_through(False)  # one sample, to a target: the same steps as the headless cell

    def play_to(target, repaint=False):
        """Play to ``target``; (steps/s, {view: paints/s}) from play() to the snapshot at the target.
        ``repaint``: every view on screen also re-renders its snapshot every 1/30 s, as when the
        user pans or zooms while it plays (the most a view paints: MAX_FPS)."""
        t_start = session.snapshot.t
        paints0 = {k: v.repaint_count for k, v in views.items()}
        timer = QTimer()
        timer.timeout.connect(lambda: [v.refresh() for v in views.values()])
        session.set_play_steps(target)
        start = time.perf_counter()
        if repaint:
            timer.start(33)
        session.play()
        _wait(lambda: session.snapshot.t >= target and not session.running)
        el = time.perf_counter() - start
        timer.stop()
        return ((session.snapshot.t - t_start) / el,
                {k: (v.repaint_count - paints0[k]) / el for k, v in views.items()})

    rate, paints = play_to(1 + steps)
    rate_pan, paints_pan = play_to(1 + 2 * steps, repaint=True)
    plan = session.recording
    if session.snapshot.t < plan.steps + 10:  # every row of the history written once: its pages are resident
        play_to(plan.steps + 10)
    out = {"ready_s": t_ready, "first_step_s": t_first, "steps_per_s": rate, "paints_per_s": paints,
           "steps_per_s_repainting": rate_pan, "paints_per_s_repainting": paints_pan,
           "history_steps": plan.steps, "recording_mb": plan.bytes / 1024**2, "budget_mb": plan.budget / 1024**2,
           "recorded": list(plan.layers)}
    win.close()
    session.shutdown()
    return out


def _ratio(model, data, steps: int, rounds: int = 3) -> dict:
    """Window against headless in ONE process, interleaved (the machine is shared: its load
    drifts by minutes, so cells in separate processes compare badly): each round runs steps
    2..1+STEPS of sample 0 headless (a Simulator of the window's own network and config,
    recording nothing, one ``run(1)`` a step) and then in the window (reset, step, play to
    1+STEPS); the ratio is the window's steps/s over the headless ones of the same round."""
    import numpy as np

    from workbench.engine.simulator import Simulator

    app, session, win = _open_window(model, data)  # noqa: F841 (app kept alive)
    _wait(lambda: session.samples is not None and session.snapshot is not None and session.recording is not None)
    session.set_play_through(False)
    x = np.load(data)["x"][:1]
    rounds_out = []
    for _ in range(rounds):
        sim = Simulator(session.network, session.config.replace(record=(), record_membrane=False, batch=1,
                                                                  max_record_bytes=None), x, record_capacity=1)
        sim.run(1)
        start = time.perf_counter()
        for _ in range(steps):
            sim.run(1)
        headless = steps / (time.perf_counter() - start)
        del sim
        session.reset()
        _wait(lambda: session.snapshot is not None and session.snapshot.t == 0 and not session.running)
        session.step()
        _wait(lambda: session.snapshot.t >= 1)
        session.set_play_steps(1 + steps)
        start = time.perf_counter()
        session.play()
        _wait(lambda: session.snapshot.t >= 1 + steps and not session.running)
        window = steps / (time.perf_counter() - start)
        rounds_out.append({"headless": headless, "window": window, "ratio": window / headless})
    win.close()
    session.shutdown()
    ratios = sorted(r["ratio"] for r in rounds_out)
    return {"rounds": rounds_out, "median_ratio": ratios[len(ratios) // 2]}


def child(kind: str, model: str, data: str, steps: int) -> None:
    fn = {"headless": lambda: _headless(model, data, steps), "keras": lambda: _keras(model, data, steps),
          "window": lambda: _window(model, data, steps), "ratio": lambda: _ratio(model, data, steps)}[kind]
    result = fn()
    result["peak_mb"] = _hwm_mb()
    print("RESULT " + json.dumps(result))


def run_cell(kind, model, data, steps) -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    cmd = [sys.executable, "-m", "benchmarks.imagenet", "--child", kind, str(model), str(data), str(steps)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=ROOT)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    return {"error": (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]}


def main(argv=None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--nets", default="resnet50,vgg16")
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--cells", default="headless,keras,window")
    p.add_argument("--folder", default=str(Path(tempfile.gettempdir()) / "snn_imagenet_bench"))
    p.add_argument("--child", nargs=4, metavar=("KIND", "MODEL", "DATA", "STEPS"))
    args = p.parse_args(argv)
    if args.child:
        kind, model, data, steps = args.child
        child(kind, model, data, int(steps))
        return 0
    folder = Path(args.folder)
    folder.mkdir(parents=True, exist_ok=True)
    results = {}
    for name in args.nets.split(","):
        model, data = build(name, folder)
        for kind in args.cells.split(","):
            r = run_cell(kind, model, data, args.steps)
            results[(name, kind)] = r
            print(name, kind, json.dumps(r), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
