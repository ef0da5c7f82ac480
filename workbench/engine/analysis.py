"""What a run tells about each layer: firing rates, silence, saturation, ANN-vs-SNN correlation,
and accuracy over time. Plain functions over arrays, shared by the CLI, the window and reports.

Rates are in spikes per step (a neuron firing every step has rate 1 for models that fire at most
once a step). The SNN "value" compared with the ANN is the mean output over the run,
``counts * output_scale / T``; Pearson r is scale-free, so it compares across neuron models.
"""

from __future__ import annotations

import dataclasses

import numpy as np

SILENT = 0.0  # a neuron with no spike at all is silent
SATURATION = 0.999  # fraction of the model's max rate above which a neuron is saturated


@dataclasses.dataclass(frozen=True)
class LayerStats:
    name: str
    neurons: int
    mean_rate: float  # spikes per step, averaged over neurons and samples
    max_rate: float
    silent: float  # fraction of neurons (over the batch) with no spike
    saturated: float  # fraction firing at the model's maximum rate
    r: float  # Pearson r of ANN activation vs SNN output; nan when undefined
    negative: float = 0.0  # fraction of spikes that were negative (signed models)


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson r of two equally sized arrays; nan when either is constant."""
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    if a.size < 2:
        return float("nan")
    a = a - a.mean()
    b = b - b.mean()
    den = np.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / den) if den > 0 else float("nan")


def layer_stats(name: str, counts: np.ndarray, steps: int, max_rate: float = 1.0,
                ann: np.ndarray | None = None, negative_counts: np.ndarray | None = None) -> LayerStats:
    """``counts``: (B, *shape) cumulative spike counts after ``steps`` steps (signed allowed)."""
    counts = np.asarray(counts, dtype=np.float64)
    n = int(np.prod(counts.shape[1:])) if counts.ndim > 1 else int(counts.size)
    if steps <= 0:
        return LayerStats(name, n, 0.0, 0.0, 1.0, 0.0, float("nan"))
    rates = np.abs(counts) / steps
    r = pearson(ann, counts) if ann is not None and ann.size == counts.size else float("nan")
    total = np.abs(counts).sum()
    neg = float(np.abs(negative_counts).sum() / total) if negative_counts is not None and total > 0 else 0.0
    return LayerStats(
        name,
        n,
        float(rates.mean()),
        float(rates.max()) if rates.size else 0.0,
        float(np.mean(counts == 0)),
        float(np.mean(rates >= SATURATION * max_rate)),
        r,
        neg,
    )


def simulator_stats(sim, ann: dict | None = None) -> list[LayerStats]:
    """LayerStats for every neuron layer of a Simulator at its current timestep."""
    out = []
    for ls in sim.layers:
        if not ls.is_neuron:
            continue
        # Mid-step (stepping by layer), layers before the cursor already hold step t + 1.
        steps = sim.t + (1 if ls.index < sim.cursor else 0)
        out.append(layer_stats(ls.layer.name, ls.counts, steps, ls.model.max_rate(sim.dt),
                               None if ann is None else ann.get(ls.layer.name)))
    return out


def accuracy_over_time(predictions: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """[T] top-1 accuracy after each step from [T, B] predictions (-1 counts as wrong)."""
    predictions = np.asarray(predictions)
    labels = np.asarray(labels).reshape(1, -1)
    return (predictions == labels).mean(axis=1)


def correlation_over_time(spikes: np.ndarray, ann: np.ndarray) -> np.ndarray:
    """[T] Pearson r between the ANN activation and cumulative spike counts after each step,
    from one layer's recorded [T, B, *shape] spikes."""
    cum = np.cumsum(spikes.reshape(spikes.shape[0], -1).astype(np.float64), axis=0)
    flat_ann = np.asarray(ann, dtype=np.float64).ravel()
    return np.array([pearson(flat_ann, row) for row in cum])


def format_table(stats: list[LayerStats]) -> str:
    """The per-layer table the CLI prints."""
    head = f"{'layer':<18} {'neurons':>8} {'mean rate':>10} {'max rate':>9} {'silent %':>9} {'satur. %':>9} {'r':>7}"
    lines = [head, "-" * len(head)]
    for s in stats:
        r = "   n/a" if np.isnan(s.r) else f"{s.r:7.3f}"
        lines.append(
            f"{s.name:<18.18} {s.neurons:>8d} {s.mean_rate:>10.4f} {s.max_rate:>9.4f} "
            f"{100 * s.silent:>9.1f} {100 * s.saturated:>9.1f} {r}"
        )
    return "\n".join(lines)
