"""Pooling kernels (numba): Keras average pooling and INIsim's spiking max pooling by count,
over the batch and as per-block variants for the thread pool (``block_pool``). They run the
fused program's kernels (``flat_kernels``) on flat views of the 4-D arrays (which are always
C-contiguous: layer states, counts and outputs are allocated so)."""

from __future__ import annotations

import numba
import numpy as np

from workbench.engine import flat_kernels as K


@numba.njit(nogil=True, cache=True)
def _avg_pool_range(x, ph, pw, sh, sw, pt, pl, scale, out, b0, b1):
    """Samples ``b0:b1``; float64 sums of each window in row-major order (the tiled kernel when
    the windows tile the input, as the fused program does)."""
    _, ih, iw, c = x.shape
    oh, ow = out.shape[1], out.shape[2]
    acc = np.empty(max(ow * c, 1), np.float64)
    xf, of = x.reshape(-1), out.reshape(-1)
    if K.windows_tile(ih, iw, oh, ow, ph, pw, sh, sw, pt, pl):
        K.avg_pool_tiled(xf, b0, b1, ih, iw, c, oh, ow, ph, pw, scale, of, acc, 0, oh)
    else:
        K.avg_pool(xf, b0, b1, ih, iw, c, oh, ow, ph, pw, sh, sw, pt, pl, scale, of, acc[:c])


@numba.njit(nogil=True, cache=True)
def avg_pool(x, ph, pw, sh, sw, pt, pl, scale, out):
    """Keras AveragePooling2D: the mean over the window's elements inside the input (padding
    excluded from the count), times ``scale`` (the normalization factor of this join)."""
    _avg_pool_range(x, ph, pw, sh, sw, pt, pl, scale, out, 0, x.shape[0])


@numba.njit(nogil=True, cache=True)
def avg_pool_block(x, ph, pw, sh, sw, pt, pl, scale, out, b0, b1, c0, c1):
    """``avg_pool`` for samples ``b0:b1`` (all channels: ``c0, c1`` are ignored)."""
    _avg_pool_range(x, ph, pw, sh, sw, pt, pl, scale, out, b0, b1)


@numba.njit(nogil=True, cache=True)
def _max_pool_range(x, counts, ph, pw, sh, sw, pt, pl, out, b0, b1):
    _, ih, iw, c = x.shape
    K.max_pool(x.reshape(-1), counts.reshape(-1), b0, b1, ih, iw, c, out.shape[1], out.shape[2], ph, pw, sh, sw,
               pt, pl, out.reshape(-1), 0, out.shape[1])


@numba.njit(nogil=True, cache=True)
def max_pool_by_count(x, counts, ph, pw, sh, sw, pt, pl, out):
    """INIsim-style spiking max pooling: add this step's input to the running ``counts``, then
    each output passes this step's value of the window's input with the highest count so far
    (ties: the first in row-major window order). Padding never wins."""
    _max_pool_range(x, counts, ph, pw, sh, sw, pt, pl, out, 0, x.shape[0])


@numba.njit(nogil=True, cache=True)
def max_pool_block(x, counts, ph, pw, sh, sw, pt, pl, out, b0, b1, c0, c1):
    """``max_pool_by_count`` for samples ``b0:b1`` (all channels: ``c0, c1`` are ignored)."""
    _max_pool_range(x, counts, ph, pw, sh, sw, pt, pl, out, b0, b1)


@numba.njit(nogil=True, cache=True)
def max_pool_lateral(x, counts, ph, pw, sh, sw, pt, pl, out):
    """Max pooling by lateral inhibition (``flat_kernels.max_pool_li``): the output's running
    sum equals the window's largest running input sum."""
    _, ih, iw, c = x.shape
    K.max_pool_li(x.reshape(-1), counts.reshape(-1), 0, x.shape[0], ih, iw, c, out.shape[1], out.shape[2],
                  ph, pw, sh, sw, pt, pl, out.reshape(-1))
