"""Input encoders: how an input sample becomes the input layer's output each timestep.

- constant (SNN Toolbox INIsim's default): the pixel value itself every step, in rate units, so
  the first layer integrates ``dt * (W @ x + b)`` each step;
- poisson: each input unit spikes with probability ``clip(x, 0, 1)`` per step, carrying value 1,
  so its expected value equals x (INIsim's Poisson input with inputs normalized to [0, 1]).
  Random numbers come from a seeded ``numpy.random.Generator``: same seed, same spikes.
- recorded: replays a recorded input spike train, step t's counts as step t's input (each spike
  carrying value 1, as the Poisson encoder's): the input a chip or another simulator saw, read
  from the input layer of a trace (``input_train``) and given to ``Simulator.set_input_spikes``.
  Runs the generic path.
"""

from __future__ import annotations

import numpy as np


def encode_constant(x: np.ndarray, out: np.ndarray, rng) -> None:
    out[...] = x


def encode_poisson(x: np.ndarray, out: np.ndarray, rng) -> None:
    p = np.clip(x, 0.0, 1.0)
    np.less(rng.random(x.shape, dtype=np.float32), p, out=out, casting="unsafe")


ENCODE = {"constant": encode_constant, "poisson": encode_poisson,
          "recorded": encode_constant}  # the simulator hands over step t's frame of the train


def input_train(trace, input_name: str, input_shape: tuple[int, ...]) -> np.ndarray:
    """The spike train [T, B, *input_shape] (float32) of the trace's layer ``input_name``; when
    the trace has no layer of that name, its only layer shaped like the input. The trace's rows
    must be the steps 1..T (a ring buffer that dropped early steps cannot be replayed)."""
    from workbench.errors import DataFileError

    input_shape = tuple(int(d) for d in input_shape)
    layer = trace.layers.get(input_name)
    if layer is None:
        same = [lt for lt in trace.layers.values() if tuple(lt.shape) == input_shape]
        if len(same) != 1:
            names = ", ".join(f"'{n}' {tuple(lt.shape)}" for n, lt in trace.layers.items()) or "none"
            raise DataFileError(f"input spike train: the trace has no layer '{input_name}' and "
                                f"{'several' if same else 'no'} layers shaped {input_shape} (layers: {names})")
        layer = same[0]
    if tuple(layer.shape) != input_shape:
        raise DataFileError(f"input spike train: layer '{layer.name}' has shape {tuple(layer.shape)}, "
                            f"the network's input is {input_shape}")
    steps = np.asarray(trace.steps)
    if not np.array_equal(steps, np.arange(1, len(steps) + 1)):
        raise DataFileError("input spike train: the trace's steps must be 1..T without gaps "
                            f"(it starts at step {int(steps[0]) if len(steps) else 'none'})")
    return np.ascontiguousarray(layer.spikes, dtype=np.float32)
