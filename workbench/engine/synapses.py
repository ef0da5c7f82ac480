"""Synaptic propagation kernels: from the previous layers' outputs to this layer's input current.

All arrays are channels-last with a leading batch axis, float32. Every event kernel skips zero
inputs, so its cost follows the number of spikes. Per call, by the input's density and the work
it implies, ``dense_current`` and ``conv_current`` pick one path and return its name:

- ``event``     serial scatter of the non-zero inputs (small layers: no thread start-up cost);
- ``event-par`` the same serial kernel on blocks of (samples x output channels) run by a small
                thread pool; kernels release the GIL (``nogil``), each block owns disjoint
                outputs (no races) and sums in the serial order, so results are identical;
- ``blas``      dense: one matmul; conv: im2col (numba) + one matmul, for inputs where most
                values are non-zero (constant-current input, high rates). BLAS threads itself
                and sums in its own order: on general float32 weights the last bit may differ
                from the event path (on dyadic weights, as in the tests, they are equal).

Why a thread pool and not ``numba.prange``: numba's parallel gufuncs compiled these scatter loops
2-3x slower per element than the serial kernel (the per-sample views lose their contiguous
layout, so the inner channel loop is not vectorized), which ate the gain of the second core.
``set_threads(1)`` (or SNN_WORKBENCH_THREADS=1) makes every path serial. The thread pool is in
``block_pool``, the pooling kernels in ``pool_kernels`` (both re-exported here).

Padding follows TensorFlow: for 'same', ``pad_total = max((ceil(n/s) - 1)*s + k - n, 0)`` with the
extra row/column at the bottom/right.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from workbench.engine import flat_kernels as K
from workbench.engine.block_pool import run_blocks, set_threads, threads  # noqa: F401 - re-exported
from workbench.engine.pool_kernels import (  # noqa: F401 - re-exported
    avg_pool,
    avg_pool_block,
    max_pool_block,
    max_pool_by_count,
)

# Above this fraction of non-zero inputs the dense layer uses BLAS instead of the event loop.
DENSE_BLAS_DENSITY = 0.30
# The same for convolutions (im2col + BLAS); higher because im2col copies kh*kw times the input.
CONV_BLAS_DENSITY = 0.30
# BLAS only for products of at least this many multiply-adds: below, its call and thread
# hand-off cost more than the numba loop (which is dense anyway when the density is high).
BLAS_MIN_WORK = 2**20
# Below this many estimated multiply-adds a call runs serially: handing work to another thread
# costs tens of microseconds, more on a busy machine.
PARALLEL_MIN_WORK = 300_000
# im2col rows are made in chunks of at most this many float32 values (bounds the buffer).
IM2COL_BUDGET = 4 * 2**20


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
    """out[b] = bias + sum over non-zero y[b, i] of y[b, i] * w[i, :] (``flat_kernels.dense``:
    the non-zero inputs listed first, four rows per pass, the same sums)."""
    nb, nin = y.shape
    idx = np.empty(max(nin, 1), np.int64)
    K.dense(y.reshape(-1), w.reshape(-1), b, 0, nb, nin, w.shape[1], out.reshape(-1), idx, 0, w.shape[1])


@numba.njit(nogil=True, cache=True)
def dense_event_block(y, w, b, out, b0, b1, o0, o1):
    """``dense_event`` for samples ``b0:b1`` and outputs ``o0:o1`` only."""
    nin = y.shape[1]
    n = o1 - o0
    for bi in range(b0, b1):
        orow = out[bi, o0:o1]  # views indexed from 0 vectorize (see flat_kernels.conv)
        for o in range(o0, o1):
            out[bi, o] = b[o]
        for i in range(nin):
            yi = y[bi, i]
            if yi != 0.0:
                wrow = w[i, o0:o1]
                for k in range(n):
                    orow[k] += yi * wrow[k]


def dense_current(y, w, b, out, nnz: int | None = None) -> str:
    """Fill ``out`` with ``y @ w + b``; returns which path ran ('event', 'event-par', 'blas').
    ``nnz``: the number of non-zero inputs when the caller knows it (else counted here)."""
    if nnz is None:
        nnz = np.count_nonzero(y)
    if nnz > DENSE_BLAS_DENSITY * y.size and y.size * w.shape[1] >= BLAS_MIN_WORK:
        np.matmul(y, w, out=out)
        out += b
        return "blas"
    if threads() > 1 and nnz * w.shape[1] >= PARALLEL_MIN_WORK:
        run_blocks(dense_event_block, (y, w, b, out), y.shape[0], w.shape[1])
        return "event-par"
    dense_event(y, w, b, out)
    return "event"


@numba.njit(nogil=True, cache=True)
def conv2d_event(x, w, b, sh, sw, pt, pl, out):
    """Scatter each non-zero input into the outputs whose receptive field holds it
    (``flat_kernels.conv``, any strides)."""
    nb, ih, iw, cin = x.shape
    kh, kw, _, cout = w.shape
    K.conv(x.reshape(-1), w.reshape(-1), b, 0, nb, ih, iw, cin, out.shape[1], out.shape[2], cout, kh, kw, sh, sw,
           pt, pl, out.reshape(-1), 0, cout)


@numba.njit(nogil=True, cache=True)
def conv2d_event_s1(x, wt, b, kh, kw, pt, pl, out):
    """``conv2d_event`` for strides (1, 1) on re-laid weights ``wt`` (``flat_kernels.conv_s1``:
    one contiguous run per kernel row, several spikes per pass)."""
    nb, ih, iw, cin = x.shape
    oh, ow, cout = out.shape[1], out.shape[2], out.shape[3]
    idx = np.empty(max(cin, 1), np.int64)
    K.conv_s1(x.reshape(-1), wt, b, 0, nb, ih, iw, cin, oh, ow, cout, kh, kw, pt, pl, out.reshape(-1), idx, 0, oh)


@numba.njit(nogil=True, cache=True)
def conv2d_event_block(x, w, b, sh, sw, pt, pl, out, b0, b1, c0, c1):
    """``conv2d_event`` for samples ``b0:b1`` and output channels ``c0:c1`` only."""
    _, ih, iw, cin = x.shape
    kh, kw, _, cout = w.shape
    K.conv(x.reshape(-1), w.reshape(-1), b, b0, b1, ih, iw, cin, out.shape[1], out.shape[2], cout, kh, kw, sh, sw,
           pt, pl, out.reshape(-1), c0, c1)


@numba.njit(nogil=True, cache=True)
def im2col(x, kh, kw, sh, sw, pt, pl, oh, ow, b0, cols):
    """Rows (b, oy, ox) of samples ``b0 ..`` and columns (ky, kx, ci): the receptive fields, with
    zeros for padding; ``cols`` holds as many samples as fit (its rows // (oh*ow))."""
    _, ih, iw, cin = x.shape
    nb = min(cols.shape[0] // (oh * ow), x.shape[0] - b0)
    for r in range(nb * oh):
        bi = r // oh
        oy = r % oh
        for ox in range(ow):
            row = (bi * oh + oy) * ow + ox
            col = 0
            for ky in range(kh):
                iy = oy * sh - pt + ky
                for kx in range(kw):
                    ix = ox * sw - pl + kx
                    inside = 0 <= iy < ih and 0 <= ix < iw
                    for ci in range(cin):
                        cols[row, col] = x[b0 + bi, iy, ix, ci] if inside else 0.0
                        col += 1
    return nb


def conv2d_blas(x, w, b, sh, sw, pt, pl, out) -> None:
    """Dense convolution: im2col in chunks of samples, then one BLAS matmul per chunk."""
    kh, kw, cin, cout = w.shape
    nb, oh, ow = out.shape[:3]
    per_sample = oh * ow * kh * kw * cin
    chunk = max(1, min(nb, IM2COL_BUDGET // max(per_sample, 1)))
    cols = np.empty((chunk * oh * ow, kh * kw * cin), np.float32)
    w2 = w.reshape(kh * kw * cin, cout)
    flat = out.reshape(nb * oh * ow, cout)
    b0 = 0
    while b0 < nb:
        n = im2col(x, kh, kw, sh, sw, pt, pl, oh, ow, b0, cols)
        rows = n * oh * ow
        np.matmul(cols[:rows], w2, out=flat[b0 * oh * ow : b0 * oh * ow + rows])
        b0 += n
    out += b


def conv_current(x, w, b, sh, sw, pt, pl, out, nnz: int | None = None, wt: np.ndarray | None = None) -> str:
    """Fill ``out`` with the convolution of ``x``; returns the path that ran ('event',
    'event-par' or 'blas'). ``nnz``: non-zero inputs, when the caller knows it; ``wt``: the
    weights re-laid for stride 1 (``flat_kernels.stride1_weights``), used by the serial path."""
    if nnz is None:
        nnz = np.count_nonzero(x)
    if nnz > CONV_BLAS_DENSITY * x.size and x.size * w.shape[3] >= BLAS_MIN_WORK:
        conv2d_blas(x, w, b, sh, sw, pt, pl, out)
        return "blas"
    kh, kw, _, cout = w.shape
    if threads() > 1 and nnz * kh * kw * cout >= PARALLEL_MIN_WORK * sh * sw:
        run_blocks(conv2d_event_block, (x, w, b, sh, sw, pt, pl, out), x.shape[0], cout)
        return "event-par"
    if wt is not None and sh == 1 and sw == 1:
        conv2d_event_s1(x, wt, b, kh, kw, pt, pl, out)
    else:
        conv2d_event(x, w, b, sh, sw, pt, pl, out)
    return "event"


@numba.njit(nogil=True, cache=True)
def emit(spikes, scale, y, counts):
    """After the neurons: ``y = spikes * scale``, ``counts += spikes``; returns the number of
    non-zero spikes (flat arrays). One pass instead of three numpy calls."""
    nnz = 0
    for i in range(spikes.size):
        s = spikes[i]
        y[i] = s * scale
        counts[i] += s
        if s != 0.0:
            nnz += 1
    return nnz


@numba.njit(nogil=True, cache=True)
def lowpass(J, x, a, b):
    """The synaptic filter of a layer's input current (``engine.conversion``: fitted LIF layers
    fed by spikes): Nengo's ``Lowpass(tau)`` discretized by zero-order hold, as its
    ``LinearFilter.OneX`` step runs it (nengo/synapses.py, Nengo 3.0-4.1: no delay):
    ``x[t] = a x[t-1] + b J[t]``, ``a = exp(-dt/tau)``, ``b = 1 - a``; J is replaced by x in
    place. ``a`` and ``b`` have J's dtype, so the generic and the fused path (both call this)
    compute the same float32 values."""
    for i in range(J.size):
        xi = a * x[i] + b * J[i]
        x[i] = xi
        J[i] = xi


@numba.njit(nogil=True, cache=True)
def depthwise_event(x, w, b, sh, sw, pt, pl, out):
    """Depthwise conv: input channel ci feeds outputs ci*mult .. ci*mult+mult-1 (Keras order)."""
    nb, ih, iw, cin = x.shape
    kh, kw, _, mult = w.shape
    K.depthwise(x.reshape(-1), w.reshape(-1), b, 0, nb, ih, iw, cin, out.shape[1], out.shape[2], out.shape[3],
                kh, kw, sh, sw, pt, pl, mult, out.reshape(-1))


def pool(kernel, block_kernel, x, args: tuple) -> str:
    """Run a pooling kernel serially, or on sample blocks when the input is large enough that
    another thread pays (the work is a few operations per input value)."""
    if threads() > 1 and x.shape[0] >= threads() and x.size >= 4 * PARALLEL_MIN_WORK:
        run_blocks(block_kernel, (x, *args), x.shape[0], 1)
        return "par"
    kernel(x, *args)
    return "serial"


def zero_pad(x, padding, out) -> None:
    (t, _b), (l, _r) = padding
    out.fill(0.0)
    out[:, t : t + x.shape[1], l : l + x.shape[2], :] = x
