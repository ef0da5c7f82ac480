"""A small pool of threads for the ``event-par`` synapse paths and the fused path's sample
blocks (``fused.FusedProgram.run`` at batch >= 2).

The kernels release the GIL (``nogil``), so blocks of one call (samples, or output channels at
batch 1) run truly in parallel. Blocks are handed out one at a time to whichever thread asks
first, the calling thread included: on a busy machine a pool thread that the OS does not
schedule soon only means the caller does more blocks itself, never that it waits for a block
nobody started. Thread-safe: several simulators may step at once from different threads.
``set_threads(1)`` (or ``SNN_WORKBENCH_THREADS=1``) makes every path serial; by default the
fused path measures which is faster now (``Chooser``), the per-layer paths use all cores unless
the machine is oversubscribed (see ``_AUTO``).
"""

from __future__ import annotations

import itertools
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor

_ENV = os.environ.get("SNN_WORKBENCH_THREADS", "").strip()
_THREADS = max(1, int(_ENV)) if _ENV else (os.cpu_count() or 1)
# Auto mode (the default): back off to serial while the machine is oversubscribed (1-minute load
# average above the cores + 0.5). There a second thread seldom gets a core at the right moment
# and a call waits for its straggling block (measured: 1.3-2x slower than serial at load 6 on
# 2 cores). Results are identical either way; only the speed differs.
_AUTO = not _ENV
_BUSY = [0.0, False]  # last check (monotonic seconds), machine busy?
_POOL: ThreadPoolExecutor | None = None
_POOL_LOCK = threading.Lock()


def set_threads(n: int | None) -> None:
    """Threads for the ``event-par`` paths: ``n`` exactly (1: always serial), or ``None`` for
    the default (all cores, serial while the machine is oversubscribed)."""
    global _THREADS, _POOL, _AUTO
    with _POOL_LOCK:
        _AUTO = n is None
        _THREADS = (os.cpu_count() or 1) if n is None else max(1, int(n))
        if _POOL is not None:
            _POOL.shutdown(wait=True)
            _POOL = None


def _busy() -> bool:
    now = time.monotonic()
    if now - _BUSY[0] > 2.0:
        try:
            _BUSY[1] = os.getloadavg()[0] > (os.cpu_count() or 1) + 0.5
        except OSError:
            _BUSY[1] = False
        _BUSY[0] = now
    return _BUSY[1]


def threads() -> int:
    """How many threads a call may use now."""
    if _THREADS > 1 and _AUTO and _busy():
        return 1
    return _THREADS


class Chooser:
    """Serial or parallel for one call site (a fused program), by measurement rather than by
    the load average (which also counts threads that are idle now, such as a benchmark's own
    Keras threads of the last minute): the seconds per step of each, averaged over recent
    calls; the choice not taken is measured again every ``RETRY`` calls, as the load changes.
    With ``set_threads(n)`` (or SNN_WORKBENCH_THREADS) the choice is fixed: parallel iff n > 1."""

    RETRY = 16
    WEIGHT = 0.3  # of the newest call in the average

    def __init__(self):
        self.seconds: dict[bool, float | None] = {False: None, True: None}  # per step, by mode
        self.calls = 0
        self._seen: set[bool] = set()  # modes run once: their first call (starting threads, faulting
        # memory in) is not counted

    def parallel(self) -> bool:
        if not _AUTO:
            return threads() > 1
        if _THREADS <= 1:
            return False
        self.calls += 1
        for mode in (True, False):  # each measured once first
            if self.seconds[mode] is None:
                return mode
        best = self.seconds[True] <= self.seconds[False]
        return (not best) if self.calls % self.RETRY == 0 else best

    def record(self, parallel: bool, seconds: float, steps: int) -> None:
        if parallel not in self._seen:
            self._seen.add(parallel)
            return
        per = seconds / max(1, steps)
        old = self.seconds[parallel]
        self.seconds[parallel] = per if old is None else (1 - self.WEIGHT) * old + self.WEIGHT * per


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


def run_blocks(kernel, args: tuple, batch: int, channels: int) -> int:
    """Call ``kernel(*args, b0, b1, c0, c1)`` on blocks covering the batch and channels, on the
    calling thread and the pool; returns (the number of blocks) when all blocks are done
    (exceptions propagate)."""
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
    return len(job.blocks)


def run_parts(kernel, args: tuple, n: int, sync) -> int:
    """Call ``kernel(*args, part, n, sync)`` for part = 0 .. n-1 AT ONCE: parts 1.. on pool
    threads, part 0 on the calling thread; returns n when all are done (exceptions propagate).
    Unlike ``run_blocks`` the parts wait for each other (a barrier on ``sync`` inside the
    kernel), so every part must get a thread: callers use it only while ``threads()`` >= n,
    and the pool has ``threads() - 1`` threads for the other parts."""
    global _POOL
    if _POOL is None:
        with _POOL_LOCK:
            if _POOL is None:
                _POOL = ThreadPoolExecutor(max(1, _THREADS - 1), thread_name_prefix="snn-synapses")
    futures = [_POOL.submit(kernel, *args, part, n, sync) for part in range(1, n)]
    error = None
    try:
        kernel(*args, 0, n, sync)
    except BaseException as exc:  # pragma: no cover - the kernels raise nothing
        error = exc
    for f in futures:
        f.result()
    if error is not None:
        raise error
    return n
