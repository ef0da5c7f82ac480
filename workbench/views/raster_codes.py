"""The raster's colour codes and the pooling that shades a zoomed-out raster by spike density.

Plain numpy (no Qt), so the pooling can be checked on its own: a code array (rows = neurons,
columns = timesteps, ``uint8``) with 0 nothing, 1 cursor-layer background, 2 divergent-neuron
background, 3 step-in-progress background, 4 separator, then ``DENSITY_LEVELS`` shades of
positive spikes ending at ``POSITIVE`` and as many of negative spikes ending at ``NEGATIVE``.
``pool_codes`` / ``pool_spikes`` reduce it to the pixel grid: a cell's shade is the fraction of
its neuron-steps that spiked (one spike is still the dimmest shade, never dropped); backgrounds
pool by priority and separators stay visible. ``LUT`` and ``LEVELS`` map codes to colours exactly.
"""

from __future__ import annotations

import numpy as np

EMPTY, CURSOR, DIVERGENT, NOW, SEPARATOR = range(5)  # backgrounds, by priority when pooled
DENSITY_LEVELS = 12  # shades per spike colour for pooled cells
POSITIVE_RAMP = SEPARATOR + 1  # first (dimmest) positive shade; POSITIVE is the last (a spike)
NEGATIVE_RAMP = POSITIVE_RAMP + DENSITY_LEVELS
POSITIVE = NEGATIVE_RAMP - 1
NEGATIVE = NEGATIVE_RAMP + DENSITY_LEVELS - 1


def _ramp(dim, full, n=DENSITY_LEVELS):
    t = (np.arange(1, n + 1) / n) ** 0.8
    return np.round(np.asarray(dim) + (np.asarray(full) - np.asarray(dim)) * t[:, None])


LUT = np.vstack([
    [[10, 10, 14], [34, 34, 80], [120, 24, 30], [24, 70, 52], [110, 110, 110]],
    _ramp([80, 62, 20], [255, 225, 60]),  # positive: dim amber .. yellow
    _ramp([0, 60, 84], [0, 215, 255]),  # negative: dim teal .. cyan
]).astype(np.uint8)
LEVELS = (0, len(LUT))  # with N colours and levels (0, N), code k maps to colour k exactly


def _cell_sums(mask: np.ndarray, py: int, px: int, reduce=np.add) -> np.ndarray:
    """``reduce`` (add: uint16 sums, maximum) over (py x px) cells of a 2-D array whose width is
    a multiple of px; a last group of fewer than py rows is a cell of its own (as if padded with
    zeros). Whole rows and columns are combined at a time (fast), not axes of a 4-D reshape."""
    dtype = np.uint16 if reduce is np.add else mask.dtype
    rows, c = mask.shape
    full = rows // py * py

    def combine(groups):  # groups: (n, k, c) -> (n, c)
        acc = groups[:, 0, :].astype(dtype)
        for k in range(1, groups.shape[1]):
            reduce(acc, groups[:, k, :], out=acc)
        return acc

    parts = [combine(mask[:full].reshape(full // py, py, c))] if full else []
    if full < rows:
        parts.append(combine(mask[full:][None]))
    acc = parts[0] if len(parts) == 1 else np.concatenate(parts)
    if px > 1:
        cols = acc.reshape(acc.shape[0], c // px, px)
        acc = cols[:, :, 0].copy()
        for k in range(1, px):
            reduce(acc, cols[:, :, k], out=acc)
    return acc


def pool_codes(codes: np.ndarray, py: int, px: int) -> np.ndarray:
    """Pool a full-resolution code array by (py rows, px columns) per cell, padding before the
    oldest step and after the last row. A cell with spikes gets the shade of its density (the
    majority sign's colour); without spikes its highest-priority background; a separator row
    always shows."""
    rows, cols = codes.shape
    c = -(-cols // px) * px
    img = codes
    if c != cols:  # rows need no padding copy (see _cell_sums)
        img = np.zeros((rows, c), dtype=np.uint8)
        img[:, c - cols:] = codes
    highest = _cell_sums(img, py, px, np.maximum)  # a quiet cell's background (spike codes are above)
    pos = _cell_sums((img == POSITIVE).view(np.uint8), py, px)
    # NEGATIVE is the highest code: only cells whose highest code it is hold negative spikes
    neg = _cell_sums((img == NEGATIVE).view(np.uint8), py, px) if (highest == NEGATIVE).any() else np.zeros_like(pos)
    separator = np.zeros(pos.shape[0], dtype=np.bool_)  # separator rows are whole rows
    separator[np.flatnonzero(img[:, -1] == SEPARATOR) // py] = True
    n = py * px
    shade = np.clip(np.ceil(np.arange(n + 1) * (DENSITY_LEVELS / n)) - 1, 0, DENSITY_LEVELS - 1).astype(np.uint8)
    positive = POSITIVE_RAMP + shade
    positive[0] = EMPTY  # no spike: the background, below
    out = positive[pos]
    if neg.any():
        negative = NEGATIVE_RAMP + shade
        np.copyto(out, negative[neg], where=neg > pos)
    np.copyto(out, highest, where=out == EMPTY)
    out[separator] = SEPARATOR
    return out


def steady_pooling(rows_per_pixel: float) -> int:
    """Rows pooled per cell for ``rows_per_pixel``: itself up to 16, above that the nearest step
    of a ladder of quarter octaves (16, 19, 22, 26, 32, ...). A layer of 800,000 rows is ~3,700
    rows a pixel, and the plot's height moving by a pixel (axis labels) changed that every frame,
    so every frame pooled the whole history anew (0.2 s) instead of only its new steps."""
    r = max(1.0, float(rows_per_pixel))
    if r <= 16:
        return int(r)
    return int(round(2 ** (round(np.log2(r) * 4) / 4)))


def _group_sums(mask: np.ndarray, py: int) -> np.ndarray:
    """(T, ceil(n / py)) uint16 sums over groups of ``py`` columns of a (T, n) 0/1 array, a last
    group of fewer columns on its own (as ``_cell_sums`` does for rows)."""
    n = mask.shape[1]
    full = n // py * py
    if py > 64:  # many neurons a cell: one contiguous reduction (a loop over py strided adds is slow)
        acc = mask[:, :full].reshape(mask.shape[0], full // py, py).sum(axis=2, dtype=np.uint16)
    else:
        acc = mask[:, 0:full:py].astype(np.uint16)
        for k in range(1, py):
            acc += mask[:, k:full:py]
    if full < n:
        acc = np.concatenate([acc, mask[:, full:].sum(axis=1, dtype=np.uint16)[:, None]], axis=1)
    return acc


def pool_spikes(spikes: np.ndarray, py: int, signed: bool = False) -> np.ndarray:
    """``pool_codes(codes, py, 1)`` of the codes of (T, n) spikes (POSITIVE, NEGATIVE, EMPTY;
    no backgrounds, no separators), computed from the spikes as they are: neurons are summed
    in groups along the contiguous rows and only the pooled (T, n / py) counts are transposed,
    not the whole (n, T) code array (~1 against ~4 ms a frame for 2048 neurons x 500 steps)."""
    pos = _group_sums(np.greater(spikes, 0).view(np.uint8), py).T
    n = py  # a cell's neuron-steps (a last, smaller group is shaded as if padded, as pool_codes does)
    shade = np.clip(np.ceil(np.arange(n + 1) * (DENSITY_LEVELS / n)) - 1, 0, DENSITY_LEVELS - 1).astype(np.uint8)
    positive = POSITIVE_RAMP + shade
    positive[0] = EMPTY
    out = positive[pos]
    if signed:
        neg = _group_sums(np.less(spikes, 0).view(np.uint8), py).T
        if neg.any():
            np.copyto(out, (NEGATIVE_RAMP + shade)[neg], where=neg > pos)
    return out


def parse_neuron(text: str, shape: tuple[int, ...]) -> int:
    """The flat (channels-last, row-major) index of a neuron of a layer of ``shape`` given as
    ``text``: a flat index ('123456') or its coordinates ('h, w, c' / 'h w c', as many as the
    shape has). Raises ValueError saying what is wrong, in the layer's terms."""
    parts = [p for p in text.replace(",", " ").replace("(", " ").replace(")", " ").split() if p]
    n = int(np.prod(shape))
    try:
        values = [int(p) for p in parts]
    except ValueError:
        raise ValueError(f"'{text}': give a neuron number (0 to {n - 1}) or its coordinates "
                         f"({', '.join('hwc'[:len(shape)] if len(shape) <= 3 else 'index')})") from None
    if len(values) == 1:
        if not 0 <= values[0] < n:
            raise ValueError(f"neuron {values[0]} is outside the layer (0 to {n - 1})")
        return values[0]
    if len(values) != len(shape):
        raise ValueError(f"'{text}': the layer has shape {tuple(shape)}, give {len(shape)} coordinates or one number")
    for v, size, axis in zip(values, shape, "hwc" if len(shape) == 3 else range(len(shape))):
        if not 0 <= v < size:
            raise ValueError(f"{axis} = {v} is outside the layer's {size}")
    return int(np.ravel_multi_index(values, shape))
