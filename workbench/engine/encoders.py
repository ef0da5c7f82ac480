"""Input encoders: how an input sample becomes the input layer's output each timestep.

- constant (SNN Toolbox INIsim's default): the pixel value itself every step, in rate units, so
  the first layer integrates ``dt * (W @ x + b)`` each step;
- poisson: each input unit spikes with probability ``clip(x, 0, 1)`` per step, carrying value 1,
  so its expected value equals x (INIsim's Poisson input with inputs normalized to [0, 1]).
  Random numbers come from a seeded ``numpy.random.Generator``: same seed, same spikes.
"""

from __future__ import annotations

import numpy as np


def encode_constant(x: np.ndarray, out: np.ndarray, rng) -> None:
    out[...] = x


def encode_poisson(x: np.ndarray, out: np.ndarray, rng) -> None:
    p = np.clip(x, 0.0, 1.0)
    np.less(rng.random(x.shape, dtype=np.float32), p, out=out, casting="unsafe")


ENCODE = {"constant": encode_constant, "poisson": encode_poisson}
