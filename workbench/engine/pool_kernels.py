"""Pooling kernels (numba): Keras average pooling and INIsim's spiking max pooling by count,
serial over the batch and as per-block variants for the thread pool (``block_pool``)."""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(nogil=True, cache=True)
def _avg_pool_one(x, ph, pw, sh, sw, pt, pl, scale, out, bi):
    """One sample; the channel loop is innermost (contiguous rows, vectorized), sums in float64."""
    _, ih, iw, c = x.shape
    oh, ow = out.shape[1], out.shape[2]
    acc = np.empty(c, np.float64)
    for oy in range(oh):
        y0 = oy * sh - pt
        for ox in range(ow):
            x0 = ox * sw - pl
            acc[:] = 0.0
            n = 0
            for ky in range(ph):
                iy = y0 + ky
                if iy < 0 or iy >= ih:
                    continue
                for kx in range(pw):
                    ix = x0 + kx
                    if ix < 0 or ix >= iw:
                        continue
                    row = x[bi, iy, ix]
                    for ci in range(c):
                        acc[ci] += row[ci]
                    n += 1
            orow = out[bi, oy, ox]
            for ci in range(c):
                orow[ci] = scale * acc[ci] / max(n, 1)


@numba.njit(nogil=True, cache=True)
def avg_pool(x, ph, pw, sh, sw, pt, pl, scale, out):
    """Keras AveragePooling2D: the mean over the window's elements inside the input (padding
    excluded from the count), times ``scale`` (the normalization factor of this join)."""
    for bi in range(x.shape[0]):
        _avg_pool_one(x, ph, pw, sh, sw, pt, pl, scale, out, bi)


@numba.njit(nogil=True, cache=True)
def avg_pool_block(x, ph, pw, sh, sw, pt, pl, scale, out, b0, b1, c0, c1):
    """``avg_pool`` for samples ``b0:b1`` (all channels: ``c0, c1`` are ignored)."""
    for bi in range(b0, b1):
        _avg_pool_one(x, ph, pw, sh, sw, pt, pl, scale, out, bi)


@numba.njit(nogil=True, cache=True)
def _max_pool_one(x, counts, ph, pw, sh, sw, pt, pl, out, bi):
    _, ih, iw, c = x.shape
    oh, ow = out.shape[1], out.shape[2]
    for iy in range(ih):
        for ix in range(iw):
            for ci in range(c):
                counts[bi, iy, ix, ci] += x[bi, iy, ix, ci]
    for oy in range(oh):
        y0 = oy * sh - pt
        for ox in range(ow):
            x0 = ox * sw - pl
            for ci in range(c):
                best = -np.inf
                val = 0.0
                for ky in range(ph):
                    iy = y0 + ky
                    if iy < 0 or iy >= ih:
                        continue
                    for kx in range(pw):
                        ix = x0 + kx
                        if ix < 0 or ix >= iw:
                            continue
                        cnt = counts[bi, iy, ix, ci]
                        if cnt > best:
                            best = cnt
                            val = x[bi, iy, ix, ci]
                out[bi, oy, ox, ci] = val


@numba.njit(nogil=True, cache=True)
def max_pool_by_count(x, counts, ph, pw, sh, sw, pt, pl, out):
    """INIsim-style spiking max pooling: add this step's input to the running ``counts``, then
    each output passes this step's value of the window's input with the highest count so far
    (ties: the first in row-major window order). Padding never wins."""
    for bi in range(x.shape[0]):
        _max_pool_one(x, counts, ph, pw, sh, sw, pt, pl, out, bi)


@numba.njit(nogil=True, cache=True)
def max_pool_block(x, counts, ph, pw, sh, sw, pt, pl, out, b0, b1, c0, c1):
    """``max_pool_by_count`` for samples ``b0:b1`` (all channels: ``c0, c1`` are ignored)."""
    for bi in range(b0, b1):
        _max_pool_one(x, counts, ph, pw, sh, sw, pt, pl, out, bi)
