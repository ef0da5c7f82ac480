"""Kernels over flat (1-D, C-order) float32 arrays, for a range of samples [b0, b1): the fused
program's layer steps, also called by the generic path's serial kernels (``synapses``,
``pool_kernels``) on flat views of their 4-D arrays, so both paths run the same code.

Every kernel keeps, for each output element, the sequence of float32 operations of the plain
scatter loop (inputs in row-major order, zero inputs skipped, bias first; pooling windows in
row-major order): reorganised loops, not different sums. tests/test_fused.py and
tests/test_engine_if.py compare them with the numpy reference and with the block-parallel
kernels, bit for bit.
"""

from __future__ import annotations

import numba
import numpy as np

from workbench.engine.neurons.if_neuron import if_burst_update, if_update


@numba.njit(nogil=True, cache=True)
def dense(x, w, b, b0, b1, nin, nout, out, idx, o0, o1):
    """Bias, then the weight rows of the non-zero inputs in input order, for outputs
    ``o0:o1``. The non-zero inputs are listed first without branches (a branch per input
    mispredicts on random spikes)."""
    for bi in range(b0, b1):
        ob = bi * nout
        orow = out[ob + o0:ob + o1]
        for o in range(o1 - o0):
            orow[o] = b[o0 + o]
        xr = x[bi * nin:(bi + 1) * nin]
        m = 0
        for i in range(nin):
            idx[m] = i
            m += xr[i] != 0.0
        axpy_list(orow, xr, idx, m, w, nout, o0)


@numba.njit(nogil=True, cache=True)
def conv(x, w, b, b0, b1, ih, iw, cin, oh, ow, cout, kh, kw, sh, sw, pt, pl, out, c0, c1):
    """The plain scatter, any strides: bias, then every non-zero input (row-major) adds
    ``v * w[ky, kx, ci, c0:c1]`` to each output whose receptive field holds it. Output channels
    ``c0:c1`` only, so blocks of channels can run on different threads (``synapses``)."""
    nc = c1 - c0
    for bi in range(b0, b1):
        ob = bi * oh * ow * cout
        for p in range(oh * ow):
            for co in range(c0, c1):
                out[ob + p * cout + co] = b[co]
        xb = bi * ih * iw * cin
        for iy in range(ih):
            for ix in range(iw):
                for ci in range(cin):
                    v = x[xb + (iy * iw + ix) * cin + ci]
                    if v == 0.0:
                        continue
                    for ky in range(kh):
                        ty = iy + pt - ky
                        if ty < 0:
                            break  # ty only decreases with ky
                        if sh == 1:  # no integer division for the common stride 1
                            oy = ty
                        elif ty % sh != 0:
                            continue
                        else:
                            oy = ty // sh
                        if oy >= oh:
                            continue
                        for kx in range(kw):
                            tx = ix + pl - kx
                            if tx < 0:
                                break
                            if sw == 1:
                                ox = tx
                            elif tx % sw != 0:
                                continue
                            else:
                                ox = tx // sw
                            if ox >= ow:
                                continue
                            o0 = ob + (oy * ow + ox) * cout + c0
                            w0 = ((ky * kw + kx) * cin + ci) * cout + c0
                            # 1-D views indexed from 0: numba then knows the index is >= 0 and
                            # drops its negative-index wraparound, so the loop vectorizes
                            orow = out[o0:o0 + nc]
                            wrow = w[w0:w0 + nc]
                            for k in range(nc):
                                orow[k] += v * wrow[k]


def stride1_weights(w: np.ndarray) -> np.ndarray:
    """Conv weights (kh, kw, cin, cout) re-laid as (cin, kh, kw reversed, cout), flat: for a
    stride-1 conv, one input spike's contribution to one output row is then ONE contiguous
    run of weights onto one contiguous run of outputs (``conv_s1``)."""
    return np.ascontiguousarray(w[:, ::-1].transpose(2, 0, 1, 3), dtype=np.float32).reshape(-1)


@numba.njit(nogil=True, cache=True, inline="always")
def axpy_list(orow, xr, idx, m, w, stride, off):
    """``orow += xr[i] * w[i * stride + off:][:n]`` for i = idx[0..m), one after another, four
    (then two) at a time: ``orow[k] = (((orow[k] + a*wa[k]) + b*wb[k]) + c*wc[k]) + d*wd[k]`` rounds exactly
    as four separate passes (no fused multiply-add) but loads and stores ``orow`` once, not four
    times, and sets up one vector loop instead of four."""
    n = orow.size
    j = 0
    while j + 4 <= m:
        i0, i1, i2, i3 = idx[j], idx[j + 1], idx[j + 2], idx[j + 3]
        a, b, c, d = xr[i0], xr[i1], xr[i2], xr[i3]
        wa = w[i0 * stride + off:i0 * stride + off + n]
        wb = w[i1 * stride + off:i1 * stride + off + n]
        wc = w[i2 * stride + off:i2 * stride + off + n]
        wd = w[i3 * stride + off:i3 * stride + off + n]
        for k in range(n):
            orow[k] = (((orow[k] + a * wa[k]) + b * wb[k]) + c * wc[k]) + d * wd[k]
        j += 4
    if j + 2 <= m:
        i0, i1 = idx[j], idx[j + 1]
        a, b = xr[i0], xr[i1]
        wa = w[i0 * stride + off:i0 * stride + off + n]
        wb = w[i1 * stride + off:i1 * stride + off + n]
        for k in range(n):
            orow[k] = (orow[k] + a * wa[k]) + b * wb[k]
        j += 2
    for j in range(j, m):
        i0 = idx[j]
        a = xr[i0]
        wa = w[i0 * stride + off:i0 * stride + off + n]
        for k in range(n):
            orow[k] += a * wa[k]


@numba.njit(nogil=True, cache=True)
def conv_s1(x, wt, b, b0, b1, ih, iw, cin, oh, ow, cout, kh, kw, pt, pl, out, idx, oy0, oy1):
    """``conv`` for stride 1 with ``stride1_weights``, output rows ``oy0:oy1``. An input spike at
    (iy, ix, ci) adds, for each kernel row ky, ``v * wt[ci, ky, kx1..kx0]`` to outputs
    (iy + pt - ky, ix + pl - kx1 ..) in ONE contiguous axpy of (kx1 - kx0 + 1) * cout floats
    instead of kw axpys of cout (2-2.5x faster for small cout). The non-zero channels of a pixel
    are listed first (without branches) and each kernel row's output run gets their products
    several at a time (``axpy_list``; 1.2-1.5x on 32-64 channels). Per output element the
    products still come one per spike in row-major (pixel, channel) order: the same sums."""
    for bi in range(b0, b1):
        ob = bi * oh * ow * cout
        for p in range(oy0 * ow, oy1 * ow):
            for co in range(cout):
                out[ob + p * cout + co] = b[co]
        xb = bi * ih * iw * cin
        for iy in range(max(0, oy0 - pt), min(ih, oy1 - pt + kh - 1)):
            ky0 = max(0, iy + pt - oy1 + 1)  # output rows oy0..oy1-1 only
            ky1 = min(kh - 1, iy + pt - oy0)
            for ix in range(iw):
                kx0 = max(0, ix + pl - ow + 1)
                kx1 = min(kw - 1, ix + pl)
                if kx1 < kx0 or ky1 < ky0:
                    continue
                x0 = xb + (iy * iw + ix) * cin
                xr = x[x0:x0 + cin]
                m = 0
                for ci in range(cin):
                    idx[m] = ci
                    m += xr[ci] != 0.0
                if m == 0:
                    continue
                n = (kx1 - kx0 + 1) * cout
                ox0 = ix + pl - kx1
                for ky in range(ky0, ky1 + 1):
                    o0 = ob + ((iy + pt - ky) * ow + ox0) * cout
                    wk = (ky * kw + (kw - 1 - kx1)) * cout
                    axpy_list(out[o0:o0 + n], xr, idx, m, wt, kh * kw * cout, wk)


@numba.njit(nogil=True, cache=True)
def depthwise(x, w, b, b0, b1, ih, iw, cin, oh, ow, cout, kh, kw, sh, sw, pt, pl, mult, out):
    for bi in range(b0, b1):
        ob = bi * oh * ow * cout
        for p in range(oh * ow):
            for co in range(cout):
                out[ob + p * cout + co] = b[co]
        xb = bi * ih * iw * cin
        for iy in range(ih):
            for ix in range(iw):
                for ci in range(cin):
                    v = x[xb + (iy * iw + ix) * cin + ci]
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
                            o0 = ob + (oy * ow + ox) * cout + ci * mult
                            w0 = ((ky * kw + kx) * cin + ci) * mult
                            for m in range(mult):
                                out[o0 + m] += v * w[w0 + m]


@numba.njit(nogil=True, cache=True)
def windows_tile(ih, iw, oh, ow, ph, pw, sh, sw, pt, pl):
    """Whether pooling windows tile the input exactly (stride = pool size, no padding, nothing
    left over): each input is in one window, which the tiled kernels rely on."""
    return sh == ph and sw == pw and pt == 0 and pl == 0 and oh * ph == ih and ow * pw == iw


@numba.njit(nogil=True, cache=True)
def avg_pool(x, b0, b1, ih, iw, c, oh, ow, ph, pw, sh, sw, pt, pl, scale, out, acc):
    for bi in range(b0, b1):
        xb = bi * ih * iw * c
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
                        r0 = xb + (iy * iw + ix) * c
                        row = x[r0:r0 + c]
                        for ci in range(c):
                            acc[ci] += row[ci]
                        n += 1
                o0 = ((bi * oh + oy) * ow + ox) * c
                orow = out[o0:o0 + c]
                for ci in range(c):
                    orow[ci] = scale * acc[ci] / max(n, 1)


@numba.njit(nogil=True, cache=True)
def _avg_pool_2x2(x, b0, b1, ih, iw, c, oh, ow, scale, out, oy0, oy1):
    """``avg_pool_tiled`` for 2x2 windows: per output and channel the four inputs summed in a
    float64 register in window order, then ``scale * sum / 4`` as there: the same values."""
    rs = iw * c
    for bi in range(b0, b1):
        xv = x[bi * ih * iw * c:(bi + 1) * ih * iw * c]
        ov = out[bi * oh * ow * c:(bi + 1) * oh * ow * c]
        for oy in range(oy0, oy1):
            for ox in range(ow):
                j0 = (2 * oy * iw + 2 * ox) * c
                x0, x1 = xv[j0:j0 + c], xv[j0 + c:j0 + 2 * c]
                x2, x3 = xv[j0 + rs:j0 + rs + c], xv[j0 + rs + c:j0 + rs + 2 * c]
                orow = ov[(oy * ow + ox) * c:(oy * ow + ox + 1) * c]
                for ci in range(c):
                    a = 0.0
                    a += x0[ci]
                    a += x1[ci]
                    a += x2[ci]
                    a += x3[ci]
                    orow[ci] = scale * a / 4


@numba.njit(nogil=True, cache=True)
def avg_pool_tiled(x, b0, b1, ih, iw, c, oh, ow, ph, pw, scale, out, acc, oy0, oy1):
    """``avg_pool`` when the windows tile the input (stride = pool size, no padding, the usual
    2x2): a whole output row is summed at once in ``acc`` (ow * c float64), window elements in
    the same (ky, kx) order, then scaled and divided as there: the same values, ~1.7x faster."""
    if ph == 2 and pw == 2:
        _avg_pool_2x2(x, b0, b1, ih, iw, c, oh, ow, scale, out, oy0, oy1)
        return
    n = ph * pw
    m = ow * c
    for bi in range(b0, b1):
        xv = x[bi * ih * iw * c:(bi + 1) * ih * iw * c]
        ov = out[bi * oh * m:(bi + 1) * oh * m]
        for oy in range(oy0, oy1):
            for j in range(m):
                acc[j] = 0.0
            for ky in range(ph):
                r = (oy * ph + ky) * iw * c
                for kx in range(pw):
                    for ox in range(ow):
                        s0 = r + (ox * pw + kx) * c
                        xs = xv[s0:s0 + c]
                        ar = acc[ox * c:(ox + 1) * c]
                        for ci in range(c):
                            ar[ci] += xs[ci]
            orow = ov[oy * m:(oy + 1) * m]
            for j in range(m):
                orow[j] = scale * acc[j] / n


@numba.njit(nogil=True, cache=True)
def _max_pool_2x2(x, counts, b0, b1, ih, iw, c, oh, ow, out, oy0, oy1):
    """``max_pool`` for 2x2 windows tiling the input: per output, the four inputs' counts are
    updated and compared channel by channel in registers (no running-best arrays), in window
    order with the same strict comparisons from -inf: the same result, one pass."""
    n_in = ih * iw * c
    rs = iw * c
    for bi in range(b0, b1):
        xb = bi * n_in
        cb, xv = counts[xb:xb + n_in], x[xb:xb + n_in]
        for oy in range(oy0, oy1):
            for ox in range(ow):
                j0 = (2 * oy * iw + 2 * ox) * c
                c0, x0 = cb[j0:j0 + c], xv[j0:j0 + c]
                c1, x1 = cb[j0 + c:j0 + 2 * c], xv[j0 + c:j0 + 2 * c]
                c2, x2 = cb[j0 + rs:j0 + rs + c], xv[j0 + rs:j0 + rs + c]
                c3, x3 = cb[j0 + rs + c:j0 + rs + 2 * c], xv[j0 + rs + c:j0 + rs + 2 * c]
                o0 = ((bi * oh + oy) * ow + ox) * c
                orow = out[o0:o0 + c]
                for ci in range(c):
                    best = -np.inf
                    val = np.float32(0.0)
                    n = c0[ci] + x0[ci]
                    c0[ci] = n
                    if n > best:
                        best, val = n, x0[ci]
                    n = c1[ci] + x1[ci]
                    c1[ci] = n
                    if n > best:
                        best, val = n, x1[ci]
                    n = c2[ci] + x2[ci]
                    c2[ci] = n
                    if n > best:
                        best, val = n, x2[ci]
                    n = c3[ci] + x3[ci]
                    c3[ci] = n
                    if n > best:
                        val = x3[ci]
                    orow[ci] = val


@numba.njit(nogil=True, cache=True)
def max_pool(x, counts, b0, b1, ih, iw, c, oh, ow, ph, pw, sh, sw, pt, pl, out, oy0, oy1):
    """INIsim's spiking max pooling as ``pool_kernels``: counts += x, then per window and
    channel the input with the largest count (the first on ties, window in row-major order)
    passes its value. Channels innermost (contiguous, vectorized) with a running best per
    channel; when the windows tile the input exactly (the usual 2x2 stride 2) the counts are
    updated in the same pass. Same comparisons in the same order: the same result."""
    n_in = ih * iw * c
    tiled = windows_tile(ih, iw, oh, ow, ph, pw, sh, sw, pt, pl)
    if tiled and ph == 2 and pw == 2:
        _max_pool_2x2(x, counts, b0, b1, ih, iw, c, oh, ow, out, oy0, oy1)
        return
    if oy1 - oy0 < oh:  # other geometries: only whole (callers split 2x2 tiled pooling alone)
        raise ValueError("max_pool: output rows can be split only for 2x2 tiled pooling")
    best = np.empty(c, np.float64)
    val = np.empty(c, np.float32)
    for bi in range(b0, b1):
        xb = bi * n_in
        cb, xv = counts[xb:xb + n_in], x[xb:xb + n_in]
        if not tiled:
            for i in range(n_in):
                cb[i] += xv[i]
        for oy in range(oh):
            y0 = oy * sh - pt
            for ox in range(ow):
                x0 = ox * sw - pl
                for ci in range(c):
                    best[ci] = -np.inf
                    val[ci] = 0.0
                for ky in range(ph):
                    iy = y0 + ky
                    if iy < 0 or iy >= ih:
                        continue
                    for kx in range(pw):
                        ix = x0 + kx
                        if ix < 0 or ix >= iw:
                            continue
                        j = (iy * iw + ix) * c
                        cr, xr = cb[j:j + c], xv[j:j + c]
                        if tiled:
                            for ci in range(c):
                                cnt = cr[ci] + xr[ci]
                                cr[ci] = cnt
                                if cnt > best[ci]:
                                    best[ci] = cnt
                                    val[ci] = xr[ci]
                        else:
                            for ci in range(c):
                                cnt = cr[ci]
                                if cnt > best[ci]:
                                    best[ci] = cnt
                                    val[ci] = xr[ci]
                o0 = ((bi * oh + oy) * ow + ox) * c
                orow = out[o0:o0 + c]
                for ci in range(c):
                    orow[ci] = val[ci]


@numba.njit(nogil=True, cache=True)
def global_avg(x, b0, b1, hw, c, scale, out):
    """numpy's float32 ``x.mean(axis=(1, 2))`` (sequential over H*W for c > 1) times scale."""
    nf = np.float32(hw)
    for bi in range(b0, b1):
        xb = bi * hw * c
        for ci in range(c):
            acc = x[xb + ci]
            for p in range(1, hw):
                acc += x[xb + p * c + ci]
            out[bi * c + ci] = (acc / nf) * scale


@numba.njit(nogil=True, cache=True)
def if_emit(J, dt32, thr, reset_code, v, spikes, scale, y, counts):
    """``if_step`` then ``synapses.emit``, in one pass (callers pass views of their samples:
    loops from 0 let LLVM drop numba's negative-index checks and vectorize)."""
    for i in range(v.size):
        vi, s = if_update(v[i], J[i], dt32, thr, reset_code)
        spikes[i] = s
        v[i] = vi
        y[i] = s * scale
        counts[i] += s


@numba.njit(nogil=True, cache=True)
def if_burst_emit(J, dt32, thr, reset_code, burst, v, spikes, scale, y, counts):
    """``if_emit`` with burst spikes (``if_burst_step`` then ``synapses.emit``)."""
    for i in range(v.size):
        vi, s = if_burst_update(v[i], J[i], dt32, thr, reset_code, burst)
        spikes[i] = s
        v[i] = vi
        y[i] = s * scale
        counts[i] += s


@numba.njit(nogil=True, cache=True)
def max_pool_li(x, counts, b0, b1, ih, iw, c, oh, ow, ph, pw, sh, sw, pt, pl, out):
    """Max pooling by lateral inhibition (LIPooling, Li & Zeng 2022): the output's cumulative
    value is the window's largest cumulative input, exactly. Per window and channel,
    out = max(counts + x) - max(counts) (the running maximum's increase this step), then
    counts += x. Padding never wins. Shared by the generic and the fused path."""
    n_in = ih * iw * c
    n_out = oh * ow * c
    for bi in range(b0, b1):
        xb = bi * n_in
        ob = bi * n_out
        for oy in range(oh):
            y0 = oy * sh - pt
            for ox in range(ow):
                x0 = ox * sw - pl
                for ci in range(c):
                    m0 = -np.inf
                    m1 = -np.inf
                    for ky in range(ph):
                        iy = y0 + ky
                        if iy < 0 or iy >= ih:
                            continue
                        for kx in range(pw):
                            ix = x0 + kx
                            if ix < 0 or ix >= iw:
                                continue
                            j = xb + (iy * iw + ix) * c + ci
                            cp = counts[j]
                            cn = cp + x[j]
                            if cp > m0:
                                m0 = cp
                            if cn > m1:
                                m1 = cn
                    out[ob + (oy * ow + ox) * c + ci] = np.float32(m1 - m0)
        for i in range(n_in):
            counts[xb + i] += x[xb + i]
