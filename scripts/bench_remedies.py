"""Benchmark (not a test): accuracy at T = 4, 8, 16, 32, 64 and synaptic operations per sample
for the baseline, each low-latency remedy and combinations, as Markdown rows for
docs/conversion.md ("Remedies").

    PYTHONPATH=. .venv/bin/python scripts/bench_remedies.py [--model M --data D --calibration C]
        [--variant half --variant half+burst2 ...] [--samples N]

Default: the bundled demo and the variants of the docs' table.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from workbench.analysis.evaluate import evaluate
from workbench.analysis.remedies import Remedies, convert
from workbench.engine.config import SimConfig
from workbench.models import loading
from workbench.models.data import load_samples
from workbench.models.prepare import prepare

STEPS = (4, 8, 16, 32, 64)
VARIANTS = ("baseline", "half", "channel", "burst2", "calib16", "balance", "lateral", "half+calib8",
            "half+channel", "half+channel+calib8", "half+burst2+channel+calib8")


def main(argv=None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--model", default=str(loading.DEMO_NETWORK))
    p.add_argument("--data", default=str(loading.DEMO_TEST))
    p.add_argument("--calibration", default=str(loading.DEMO_CALIBRATION))
    p.add_argument("--variant", action="append", default=[])
    p.add_argument("--samples", type=int)
    p.add_argument("--steps", default=",".join(map(str, STEPS)))
    args = p.parse_args(argv)
    steps = [int(s) for s in args.steps.split(",")]
    prep = prepare(args.model, args.data, args.calibration, 99.9)
    cal = load_samples(args.calibration, prep.original.input_shape).x[:1000]
    x, y = prep.samples.x, prep.samples.y
    if args.samples:
        x, y = x[: args.samples], y[: args.samples]
    base = SimConfig(batch=min(len(x), 128), record=(), record_membrane=False)
    print(f"{prep.original.name}: {len(x)} samples", file=sys.stderr)
    print("| variant | " + " | ".join(f"T={t}" for t in steps) + " | synops/sample at " +
          ", ".join(f"T={t}" for t in steps) + " |")
    print("|---|" + "---|" * len(steps) + "---|")
    ann = None
    for text in args.variant or VARIANTS:
        t0 = time.time()
        spec = Remedies.parse(text)
        net, cfg = convert(prep.original, prep.network, cal, spec, base)
        accs, ops = [], []
        for t in steps:
            r = evaluate(net, cfg.replace(steps=t), x, y)
            accs.append(100 * float(r.snn_accuracy[-1]))
            ops.append(r.synops_per_sample)
            ann = 100 * r.ann_accuracy
        print(f"| {spec} | " + " | ".join(f"{a:.1f}" for a in accs) + " | " +
              " / ".join(f"{o / 1e6:.2f}M" for o in ops) + " |", flush=True)
        print(f"  ({time.time() - t0:.0f} s; ANN of this variant {ann:.2f} %)", file=sys.stderr)
    from workbench.models.forward import predict

    ann = 100 * float(np.mean(np.argmax(predict(prep.network, x).reshape(len(x), -1), axis=1) == y))
    print(f"\nANN (before any remedy): {ann:.2f} %")
    return 0


if __name__ == "__main__":
    sys.exit(main())
