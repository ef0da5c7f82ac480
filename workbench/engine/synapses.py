"""Synaptic propagation kernels: from the previous layers' outputs to this layer's input current.

All arrays are channels-last with a leading batch axis, float32. Every kernel skips zero inputs,
so its cost follows the number of spikes (event-driven); the dense layer also has a BLAS path for
when most inputs are non-zero (constant-current input, high rates), chosen per call by density.

Padding follows TensorFlow: for 'same', ``pad_total = max((ceil(n/s) - 1)*s + k - n, 0)`` with the
extra row/column at the bottom/right.
"""

from __future__ import annotations

import math

import numba
import numpy as np

# Above this fraction of non-zero inputs the dense layer uses BLAS instead of the event loop.
DENSE_BLAS_DENSITY = 0.15


def same_padding(n: int, k: int, s: int) -> tuple[int, int]:
    total = max((math.ceil(n / s) - 1) * s + k - n, 0)
    return total // 2, total - total // 2


def padding_for(padding: str, in_hw, kernel, strides) -> tuple[int, int]:
    """(top, left) offsets; the bottom/right part is implied by the output size."""
    if padding == "same":
        return same_padding(in_hw[0], kernel[0], strides[0])[0], same_padding(in_hw[1], kernel[1], strides[1])[0]
    return 0, 0


@numba.njit(nogil=True, cache=True)
def dense_event(y, w, b, out):
    """out[b] = bias + sum over non-zero y[b, i] of y[b, i] * w[i, :]."""
    nb, nin = y.shape
    nout = w.shape[1]
    for bi in range(nb):
        for o in range(nout):
            out[bi, o] = b[o]
        for i in range(nin):
            yi = y[bi, i]
            if yi != 0.0:
                for o in range(nout):
                    out[bi, o] += yi * w[i, o]


def dense_current(y, w, b, out) -> str:
    """Fill ``out`` with ``y @ w + b``; returns which path ran ('event' or 'blas')."""
    density = np.count_nonzero(y) / max(y.size, 1)
    if density > DENSE_BLAS_DENSITY:
        np.matmul(y, w, out=out)
        out += b
        return "blas"
    dense_event(y, w, b, out)
    return "event"


@numba.njit(nogil=True, cache=True)
def conv2d_event(x, w, b, sh, sw, pt, pl, out):
    """Scatter each non-zero input into the outputs whose receptive field holds it."""
    nb, ih, iw, cin = x.shape
    kh, kw, _, cout = w.shape
    oh, ow = out.shape[1], out.shape[2]
    for bi in range(nb):
        for oy in range(oh):
            for ox in range(ow):
                for co in range(cout):
                    out[bi, oy, ox, co] = b[co]
        for iy in range(ih):
            for ix in range(iw):
                for ci in range(cin):
                    v = x[bi, iy, ix, ci]
                    if v == 0.0:
                        continue
                    for ky in range(kh):
                        ty = iy + pt - ky
                        if ty < 0 or ty % sh != 0:
                            continue
                        oy = ty // sh
                        if oy >= oh:
                            continue
                        for kx in range(kw):
                            tx = ix + pl - kx
                            if tx < 0 or tx % sw != 0:
                                continue
                            ox = tx // sw
                            if ox >= ow:
                                continue
                            for co in range(cout):
                                out[bi, oy, ox, co] += v * w[ky, kx, ci, co]


@numba.njit(nogil=True, cache=True)
def depthwise_event(x, w, b, sh, sw, pt, pl, out):
    """Depthwise conv: input channel ci feeds outputs ci*mult .. ci*mult+mult-1 (Keras order)."""
    nb, ih, iw, cin = x.shape
    kh, kw, _, mult = w.shape
    oh, ow, cout = out.shape[1], out.shape[2], out.shape[3]
    for bi in range(nb):
        for oy in range(oh):
            for ox in range(ow):
                for co in range(cout):
                    out[bi, oy, ox, co] = b[co]
        for iy in range(ih):
            for ix in range(iw):
                for ci in range(cin):
                    v = x[bi, iy, ix, ci]
                    if v == 0.0:
                        continue
                    for ky in range(kh):
                        ty = iy + pt - ky
                        if ty < 0 or ty % sh != 0:
                            continue
                        oy = ty // sh
                        if oy >= oh:
                            continue
                        for kx in range(kw):
                            tx = ix + pl - kx
                            if tx < 0 or tx % sw != 0:
                                continue
                            ox = tx // sw
                            if ox >= ow:
                                continue
                            for m in range(mult):
                                out[bi, oy, ox, ci * mult + m] += v * w[ky, kx, ci, m]


@numba.njit(nogil=True, cache=True)
def avg_pool(x, ph, pw, sh, sw, pt, pl, scale, out):
    """Keras AveragePooling2D: the mean over the window's elements inside the input (padding
    excluded from the count), times ``scale`` (the normalization factor of this join)."""
    nb, ih, iw, c = x.shape
    oh, ow = out.shape[1], out.shape[2]
    for bi in range(nb):
        for oy in range(oh):
            y0 = oy * sh - pt
            for ox in range(ow):
                x0 = ox * sw - pl
                for ci in range(c):
                    acc = 0.0
                    n = 0
                    for ky in range(ph):
                        iy = y0 + ky
                        if iy < 0 or iy >= ih:
                            continue
                        for kx in range(pw):
                            ix = x0 + kx
                            if ix < 0 or ix >= iw:
                                continue
                            acc += x[bi, iy, ix, ci]
                            n += 1
                    out[bi, oy, ox, ci] = scale * acc / max(n, 1)


@numba.njit(nogil=True, cache=True)
def max_pool_by_count(x, counts, ph, pw, sh, sw, pt, pl, out):
    """INIsim-style spiking max pooling: add this step's input to the running ``counts``, then
    each output passes this step's value of the window's input with the highest count so far
    (ties: the first in row-major window order). Padding never wins."""
    nb, ih, iw, c = x.shape
    oh, ow = out.shape[1], out.shape[2]
    for i in range(x.size):
        counts.flat[i] += x.flat[i]
    for bi in range(nb):
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


def zero_pad(x, padding, out) -> None:
    (t, _b), (l, _r) = padding
    out.fill(0.0)
    out[:, t : t + x.shape[1], l : l + x.shape[2], :] = x
