"""StopWhenChanged: a ``should_stop`` for ``Simulator.run`` that the fused kernel reads too.

A fused chunk runs as one numba call without the GIL, so a Python ``should_stop`` is looked at
only between calls: a pause waited for the rest of the chunk, and the window kept chunks short
(more hand-overs of the GIL) to keep pauses quick. This flag lives in an int64 array that
another thread changes (``request``); the kernel reads it atomically before every timestep and
returns early once it no longer holds the ``token`` the run was started with. A pause then
takes effect within one timestep however long the chunk, and the results are those of a run
asked for exactly the steps that ran (the Poisson generator is rewound to the steps used).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def new_flag() -> np.ndarray:
    """One int64: the generation of stop requests (``request`` adds one)."""
    return np.zeros(1, np.int64)


def request(flag: np.ndarray) -> int:
    """Ask every run started with an older token to stop; returns the new token. Call it from
    one thread only (the read-add-write is not atomic; the readers' loads are)."""
    flag[0] += 1
    return int(flag[0])


@dataclass(frozen=True, eq=False)
class StopWhenChanged:
    """True once ``flag[0]`` no longer equals ``token``."""

    flag: np.ndarray
    token: int

    def __call__(self) -> bool:
        return int(self.flag[0]) != self.token
