"""What a run tells about each layer: firing rates, silence, saturation, ANN-vs-SNN correlation,
and accuracy over time. Plain functions over arrays, shared by the CLI, the window and reports.

Rates are in spikes per step (a neuron firing every step has rate 1 for models that fire at most
once a step). The SNN "value" compared with the ANN is the mean output over the run,
``counts * output_scale / T``; Pearson r is scale-free, so it compares across neuron models.
"""

from __future__ import annotations

import dataclasses

import numba
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


_MOMENTS: dict = {}  # id(array) -> (array, its mean, its sum of squared deviations)
_MOMENTS_MAX = 256  # arrays kept: every neuron layer of a big network (ResNet50 71, InceptionV3 105)
# Only two floats per array: a float64 centred copy of every ANN activation (the cache before)
# held 128 MB for ResNet50 and doubled what each snapshot's full stats pass read.


def _centered_moments(a) -> tuple[np.ndarray | None, float, float]:
    """(``a`` flat in float64 minus its mean, or None when its moments were kept; the mean;
    the sum of squared deviations). Read-only arrays (the ANN activations a run compares with,
    every snapshot) are measured once and their two moments kept."""
    hit = _MOMENTS.get(id(a))
    if hit is not None and hit[0] is a:
        return None, hit[1], hit[2]
    c = np.asarray(a, dtype=np.float64).ravel()
    mean = float(c.mean()) if c.size else 0.0
    c = c - mean
    ss = float(np.dot(c, c))
    if isinstance(a, np.ndarray) and not a.flags.writeable:
        while len(_MOMENTS) >= _MOMENTS_MAX:  # the oldest first (a network's layers, in order)
            del _MOMENTS[next(iter(_MOMENTS))]
        _MOMENTS[id(a)] = (a, mean, ss)  # holding ``a`` keeps its id from being reused
    return c, mean, ss


def _moments(a) -> tuple[float, float]:
    """(mean, sum of squared deviations) of ``a`` in float64."""
    return _centered_moments(a)[1:]


def _centered(a) -> tuple[np.ndarray, float]:
    """``a`` as a flat float64 array minus its mean, and that one's sum of squares (one
    conversion of ``a``: trace playback calls this for every recorded step)."""
    c, mean, ss = _centered_moments(a)
    if c is None:
        c = np.asarray(a, dtype=np.float64).ravel() - mean
    return c, ss


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson r of two equally sized arrays; nan when either is constant."""
    if np.size(a) < 2:
        return float("nan")
    a, aa = _centered(a)
    b, bb = _centered(b)
    den = np.sqrt(aa * bb)
    return float(np.dot(a, b) / den) if den > 0 else float("nan")


def layer_stats(name: str, counts: np.ndarray, steps: int, max_rate: float = 1.0,
                ann: np.ndarray | None = None, negative_counts: np.ndarray | None = None) -> LayerStats:
    """``counts``: (B, *shape) cumulative spike counts after ``steps`` steps (signed allowed)."""
    counts = np.asarray(counts, dtype=np.float64)
    n = int(np.prod(counts.shape[1:])) if counts.ndim > 1 else int(counts.size)
    if steps <= 0:
        return LayerStats(name, n, 0.0, 0.0, 1.0, 0.0, float("nan"))
    size = counts.size
    if size == 0:
        return LayerStats(name, n, float("nan"), 0.0, float("nan"), float("nan"), float("nan"))
    flat = np.ascontiguousarray(counts).reshape(-1)
    with_r = ann is not None and ann.size == size and size >= 2
    mean, aa = _moments(ann) if with_r else (0.0, 0.0)
    ann_flat = np.ascontiguousarray(ann).reshape(-1) if with_r else _NO_ANN
    total, top, zeros, saturated, ac, cc = _stats_kernel(flat, ann_flat, mean, float(steps), SATURATION * max_rate)
    den = np.sqrt(aa * cc)
    r = float(ac / den) if with_r and den > 0 else float("nan")
    neg = float(np.abs(negative_counts).sum() / total) if negative_counts is not None and total > 0 else 0.0
    return LayerStats(name, n, total / steps / size, top, zeros / size, saturated / size, r, neg)


_NO_ANN = np.zeros(0)


@numba.njit(cache=True, nogil=True)
def _stats_kernel(counts, ann, ann_mean, steps, limit):
    """Two passes over a layer's flat counts, no temporaries (the window's worker calls this
    for the layers on screen at every snapshot and for all 16 M neurons of a ResNet50 every
    few seconds; without the GIL, so the GUI thread paints meanwhile): (sum of |counts|, max
    rate, zeros, saturated neurons, sum of (ann - ann_mean) x centered counts, sum of squared
    centered counts); the last two only when ``ann`` is not empty. ``ann`` may be float32 or
    float64: each value is taken to float64 before its mean is subtracted."""
    n = counts.size
    total = 0.0
    plain = 0.0
    top = 0.0
    zeros = 0
    saturated = 0
    for i in range(n):
        v = counts[i]
        a = abs(v)
        total += a
        plain += v
        rate = a / steps
        if rate > top:
            top = rate
        if v == 0:
            zeros += 1
        if rate >= limit:
            saturated += 1
    ac = 0.0
    cc = 0.0
    if ann.size == n:
        mean = plain / n
        for i in range(n):
            d = counts[i] - mean
            ac += (np.float64(ann[i]) - ann_mean) * d
            cc += d * d
    return total, top, zeros, saturated, ac, cc


def ann_reference(layer, acts: dict, model=None) -> np.ndarray | None:
    """What a layer's SNN output is compared with, the one definition of r everywhere (``run``,
    ``evaluate``, ``diagnose``, the window's table, trace playback): the ANN activation; for a
    softmax layer its pre-activation z (the SNN computes z, not the probability): z itself when
    the layer carries current / is the membrane readout (``model.spiking`` False, or ``signed``),
    max(z, 0) when it spikes through a rectifying neuron. None when ``acts`` lacks the layer
    (or, for softmax, its inputs)."""
    a = acts.get(layer.name)
    if a is None or layer.activation != "softmax":
        return a
    if any(src not in acts for src in layer.inbound):
        return a
    from workbench.models.forward import preactivation

    z = preactivation(layer, [np.asarray(acts[s], np.float64) for s in layer.inbound])
    if model is not None and (not model.spiking or model.signed):
        return z
    return np.maximum(z, 0.0)


def simulator_stats(sim, ann: dict | None = None) -> list[LayerStats]:
    """LayerStats for every neuron layer of a Simulator at its current timestep; ``ann``: the
    ANN activations by layer name (``forward``), compared as ``ann_reference`` says."""
    out = []
    for ls in sim.layers:
        if not ls.is_neuron:
            continue
        # Mid-step (stepping by layer), layers before the cursor already hold step t + 1.
        steps = sim.t + (1 if ls.index < sim.cursor else 0)
        ref = None if ann is None else ann_reference(ls.layer, ann, ls.model)
        out.append(layer_stats(ls.layer.name, ls.counts, steps, ls.model.max_rate(sim.dt), ref))
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
    """The per-layer table the CLI prints; the name column fits the longest name (never cut)."""
    w = max([18] + [len(s.name) for s in stats])
    head = f"{'layer':<{w}} {'neurons':>8} {'mean rate':>10} {'max rate':>9} {'silent %':>9} {'satur. %':>9} {'r':>7}"
    lines = [head, "-" * len(head)]
    for s in stats:
        r = "   n/a" if np.isnan(s.r) else f"{s.r:7.3f}"
        lines.append(
            f"{s.name:<{w}} {s.neurons:>8d} {s.mean_rate:>10.4f} {s.max_rate:>9.4f} "
            f"{100 * s.silent:>9.1f} {100 * s.saturated:>9.1f} {r}"
        )
    return "\n".join(lines)
