"""Measure the issue-16 conversion cases (tests/conversion_nets.py): ANN vs SNN accuracy and the
per-layer r at 100 and 500 steps, for IF and the other neuron models, as in docs/conversion.md.

    PYTHONPATH=$PWD python scripts/measure_conversion.py [--neurons if,lif] [--steps 100,500]

Runs against whatever ``workbench`` is on the path (so the same script measured "before" on the
code before the change). Normalization: percentile 99.9 on separate calibration samples.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from conversion_nets import CASES, case  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cases", default=",".join(CASES))
    ap.add_argument("--neurons", default="if")
    ap.add_argument("--steps", default="100,500")
    ap.add_argument("--param", action="append", default=[], help="NEURON:key=value")
    args = ap.parse_args()
    from workbench.analysis.evaluate import evaluate
    from workbench.engine.config import SimConfig
    from workbench.engine.neurons import make_neuron, parse_params
    from workbench.models.normalize import normalize

    for name in args.cases.split(","):
        net, x, y = case(name)
        cal = np.random.default_rng(7).uniform(0, 1, (128, *net.input_shape)).astype(np.float32)
        norm = normalize(net, cal, 99.9)
        for neuron in args.neurons.split(","):
            params = parse_params(neuron, [p.split(":", 1)[1] for p in args.param if p.startswith(neuron + ":")])
            model = make_neuron(neuron, **params)
            for steps in map(int, args.steps.split(",")):
                cfg = SimConfig(neuron=model, steps=steps, batch=len(x), record=(), record_membrane=False)
                res = evaluate(norm, cfg, x, y)
                rs = " / ".join(f"{s.r:.3f}" for s in res.stats)
                print(f"| {name} | {neuron} | {steps} | {100 * res.ann_accuracy:.1f} | "
                      f"{100 * res.snn_accuracy[-1]:.1f} | {rs} |", flush=True)
        print(f"<!-- {name} layers: {' / '.join(s.name for s in res.stats)} -->", flush=True)


if __name__ == "__main__":
    main()
