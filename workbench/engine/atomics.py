"""Atomic int64 operations on numpy arrays inside numba code, and a spin barrier built on them.

numba has no atomics; these are LLVM's ``atomicrmw`` / atomic loads (sequentially consistent)
emitted through ``@intrinsic``. They let the fused program split one timestep of a batch-1
simulation over two threads that meet after every layer (``fused.run_fused``, ``nparts`` 2).
"""

from __future__ import annotations

import numba
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic


def _pointer(context, builder, arr_t, arr, index):
    ary = context.make_array(arr_t)(context, builder, arr)
    return cgutils.get_item_pointer(context, builder, arr_t, ary, [index])


@intrinsic
def atomic_add(typingctx, arr, index, value):
    """``arr[index] += value`` atomically; returns the value before."""
    if not (isinstance(arr, types.Array) and arr.dtype == types.int64 and arr.ndim == 1):
        return None
    sig = types.int64(arr, types.intp, types.int64)

    def codegen(context, builder, signature, args):
        ptr = _pointer(context, builder, signature.args[0], args[0], args[1])
        return builder.atomic_rmw("add", ptr, args[2], "seq_cst")

    return sig, codegen


@intrinsic
def atomic_load(typingctx, arr, index):
    """``arr[index]``, read atomically (never a torn or stale-forever value)."""
    if not (isinstance(arr, types.Array) and arr.dtype == types.int64 and arr.ndim == 1):
        return None
    sig = types.int64(arr, types.intp)

    def codegen(context, builder, signature, args):
        ptr = _pointer(context, builder, signature.args[0], args[0], args[1])
        return builder.load_atomic(ptr, "seq_cst", 8)

    return sig, codegen


@numba.njit(nogil=True, cache=True)
def barrier(sync, nparts):
    """Wait until all ``nparts`` threads have arrived (``sync``: two int64 zeros shared by them:
    the count of arrivals and a generation). Reusable: the last to arrive resets the count and
    bumps the generation, which releases the others. A no-op for one part."""
    if nparts <= 1:
        return
    gen = atomic_load(sync, 1)
    if atomic_add(sync, 0, 1) == nparts - 1:
        atomic_add(sync, 0, -nparts)
        atomic_add(sync, 1, 1)
    else:
        while atomic_load(sync, 1) == gen:
            pass
