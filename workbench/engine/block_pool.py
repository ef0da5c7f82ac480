"""A small pool of threads for the ``event-par`` synapse paths.

The kernels release the GIL (``nogil``), so blocks of one call (samples, or output channels at
batch 1) run truly in parallel. Blocks are handed out one at a time to whichever thread asks
first, the calling thread included: on a busy machine a pool thread that the OS does not
schedule soon only means the caller does more blocks itself, never that it waits for a block
nobody started. Thread-safe: several simulators may step at once from different threads.
``set_threads(1)`` (or ``SNN_WORKBENCH_THREADS=1``) makes every path serial.
"""

from __future__ import annotations

import itertools
import os
import threading
from concurrent.futures import ThreadPoolExecutor

_THREADS = max(1, int(os.environ.get("SNN_WORKBENCH_THREADS", 0)) or (os.cpu_count() or 1))
_POOL: ThreadPoolExecutor | None = None
_POOL_LOCK = threading.Lock()


def set_threads(n: int) -> None:
    """How many threads the ``event-par`` paths use (1: always serial)."""
    global _THREADS, _POOL
    with _POOL_LOCK:
        _THREADS = max(1, int(n))
        if _POOL is not None:
            _POOL.shutdown(wait=True)
            _POOL = None


def threads() -> int:
    return _THREADS


def _blocks(batch: int, channels: int, n: int) -> list[tuple[int, int, int, int]]:
    """About ``n`` blocks (b0, b1, c0, c1): over samples, or over output channels (at least 8
    each) when the batch is smaller than ``n``."""
    if batch >= n:
        return [(i * batch // n, (i + 1) * batch // n, 0, channels) for i in range(n)]
    per = max(1, min(channels // 8, -(-n // batch)))
    return [(bi, bi + 1, c * channels // per, (c + 1) * channels // per) for bi in range(batch) for c in range(per)]


class _Job:
    """Blocks handed out one at a time to whichever thread asks first (the caller included), so
    a pool thread that the OS does not schedule soon (a busy machine) only means the caller
    does more of the blocks itself, never that it waits for a block nobody started."""

    def __init__(self, kernel, args, blocks):
        self.kernel, self.args, self.blocks = kernel, args, blocks
        self._next = itertools.count()  # next() is atomic under the GIL
        self._lock = threading.Lock()
        self._done = 0
        self.finished = threading.Event()
        self.error: BaseException | None = None

    def work(self) -> None:
        n = len(self.blocks)
        while True:
            i = next(self._next)
            if i >= n:
                return
            try:
                self.kernel(*self.args, *self.blocks[i])
            except BaseException as exc:  # re-raised in the calling thread
                self.error = exc
            with self._lock:
                self._done += 1
                if self._done == n:
                    self.finished.set()


def run_blocks(kernel, args: tuple, batch: int, channels: int) -> None:
    """Call ``kernel(*args, b0, b1, c0, c1)`` on blocks covering the batch and channels, on the
    calling thread and the pool; returns when all blocks are done (exceptions propagate)."""
    global _POOL
    if _POOL is None:
        with _POOL_LOCK:
            if _POOL is None:
                _POOL = ThreadPoolExecutor(max(1, _THREADS - 1), thread_name_prefix="snn-synapses")
    job = _Job(kernel, args, _blocks(batch, channels, 2 * _THREADS))
    for _ in range(_THREADS - 1):
        _POOL.submit(job.work)
    job.work()
    job.finished.wait()
    if job.error is not None:
        raise job.error
