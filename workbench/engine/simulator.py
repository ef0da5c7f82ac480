"""Simulator: owns the state of a batch and advances it, one layer or one timestep at a time.

Step order within a timestep (the same for ``step`` and repeated ``step_layer``):
  for each layer in topological order (the input layer first):
      input layer:   encode the sample (constant current, Poisson spikes, or the recorded
                     spike train's frame t)
      other layers:  synapses (inbound outputs -> current J, or -> output directly)
                     neurons  (J -> spikes, membrane update and reset; y = spikes * scale)
  after the last layer: t += 1, cumulative output counts -> prediction, record the step.
With ``config.synaptic_delay = 1`` a neuron layer's synapses read its inbound layers' outputs
of the previous step (kept in ``_prev``), as Lava's Dense delivers them; layers without neurons
still pass this step's values on, so every neuron-to-neuron connection is one step late.

``cursor`` is the index of the next layer to advance; it is 0 between timesteps. Kernels are
numba functions compiled with ``nogil=True``, so a worker thread stepping the simulator leaves
the GUI thread free.
"""

from __future__ import annotations

from collections.abc import Callable

import numba
import numpy as np

from workbench.engine import conversion as _conversion
from workbench.engine import fused as _fused
from workbench.engine.config import SimConfig
from workbench.engine.layer_state import LayerState, advance
from workbench.engine.recording import NO_LAYER_CAPACITY, Recorder, estimate_bytes, format_bytes
from workbench.engine.stop_flag import StopWhenChanged
from workbench.errors import ConfigError, DataFileError
from workbench.models import network as nw


@numba.njit(nogil=True, cache=True)
def argmax_or_none(counts, out):
    """out[b] = first index of the maximum of counts[b], or -1 when counts[b] is all zero."""
    for b in range(counts.shape[0]):
        best = 0
        nonzero = False
        for k in range(counts.shape[1]):
            c = counts[b, k]
            if c != 0:
                nonzero = True
            if c > counts[b, best]:
                best = k
        out[b] = best if nonzero else -1


class Simulator:
    def __init__(self, network: nw.Network, config: SimConfig | None = None, x: np.ndarray | None = None,
                 labels: np.ndarray | None = None, record_capacity: int | None = None):
        """``x``: (B, *input_shape) or None (zeros until ``set_input``). ``record_capacity``: how
        many steps the recorder keeps (default ``config.steps``; older steps are dropped)."""
        self.network = network
        self.config = config or SimConfig()
        self.config.check_against(network)
        self.dt = self.config.effective_dt
        # which neuron each layer runs (engine/conversion.py): overrides, readout, linear layers
        # carrying current, activation-matched neurons; ``plan.warnings`` for the reports
        self.plan = _conversion.plan(network, self.config)
        models = [self.config.neuron, *self.config.overrides.values(), *(lp.model for lp in self.plan.layers.values())]
        for model in {id(m): m for m in models}.values():
            model.validate_dt(self.dt)
        self.batch = self.config.batch if x is None else int(np.asarray(x).shape[0])
        index = {layer.name: i for i, layer in enumerate(network.layers)}
        self.layers: list[LayerState] = []
        for i, layer in enumerate(network.layers):
            lp = self.plan.layers.get(layer.name)
            model, gain, offset, syn, inv = ((lp.model, lp.gain, lp.offset, lp.synapse, lp.rate_inverted)
                                             if lp is not None else (None, 1.0, 0.0, 0.0, False))
            self.layers.append(LayerState(layer, i, [index[n] for n in layer.inbound], self.batch, model, self.dt,
                                          self.config.rate_scale * gain, self.config.float64, offset, syn, inv))
        for ls in self.layers:
            if ls.model is not None and hasattr(ls.model, "prepare_layer"):
                ls.model.prepare_layer(ls)
        self._by_name = {ls.layer.name: ls for ls in self.layers}
        self._outputs = [ls.y for ls in self.layers]
        # synaptic_delay 1: the outputs of the previous step, which the neuron layers read
        self._prev = [np.zeros_like(y) for y in self._outputs] if self.config.synaptic_delay else None
        self._input_train: np.ndarray | None = None  # the 'recorded' encoder's [T, B, *shape]
        self._constant = self._constant_layers()
        self._constant_flags = [ls.index in self._constant for ls in self.layers]
        record = self.config.record
        names = [l.name for l in network.neuron_layers] if record is None else list(record)
        recorded = [self._by_name[n] for n in names if self._by_name[n].is_neuron]
        capacity = record_capacity or self.config.steps
        if not recorded and record_capacity is None:  # nothing asked for: keep the newest predictions only
            capacity = min(capacity, NO_LAYER_CAPACITY)
        self._check_record_memory(recorded, capacity)
        self.recorder = Recorder(
            recorded,
            self.batch,
            capacity,
            self.config.record_membrane,
            self.config.record_current,
        )
        self.x = np.zeros((self.batch, *network.input_shape), dtype=np.float32)
        self.x.flags.writeable = False  # set_input replaces it (a write in place would be lost)
        self.labels = None
        # The fused fast path (engine/fused.py, fused_kernel.py): whole timesteps in one numba call when every
        # layer and the neuron model allow it; False (or SNN_WORKBENCH_FUSED=0) forces the
        # generic per-layer path. ``fused_reason`` says why it does not apply (None: it does).
        self.fused = _fused.enabled_by_env()
        # batch 1, large networks: split each fused step over two threads (fused.SPLIT_MIN_WORK);
        # the window turns it off (its GUI thread needs the other core)
        self.split_steps = True
        self.fused_reason = _fused.reason(self)
        self._fused_prog: _fused.FusedProgram | None = None
        if x is not None:
            self.set_input(x, labels)
        self.reset()

    # ---- set-up --------------------------------------------------------------------------
    def _check_record_memory(self, recorded, capacity: int) -> None:
        """Refuse before allocating when the recording would exceed ``config.max_record_bytes``."""
        limit = self.config.max_record_bytes
        if limit is None:
            return
        sizes = {ls.layer.name: ls.layer.size for ls in recorded}
        need = estimate_bytes(sizes, capacity, self.batch, self.config.record_membrane, self.config.record_current)
        if need > limit:
            what = "spikes" + (", membranes" if self.config.record_membrane else "") + (
                ", currents" if self.config.record_current else "")
            raise ConfigError(
                "max_record_bytes",
                f"recording the {what} of {len(sizes)} layer(s) for {capacity} steps "
                f"({self.batch} sample(s) at a time) would take {format_bytes(need)}, more than the "
                f"{format_bytes(limit)} allowed for a recording; record fewer layers or fewer steps",
            )

    def set_recording(self, layers, capacity: int, membrane=True, current: bool = False,
                      spike_dtype=np.int16) -> None:
        """Record ``layers`` (names of neuron layers) from now on, keeping the newest ``capacity``
        steps (``membrane``: True, False or the names of the layers whose membranes to keep;
        ``spike_dtype``: int8 when no step's count passes 127, see ``Recorder``).
        The state is kept (no reset); the recording starts empty. No limit applies: the caller
        sized it (the window, by its memory budget)."""
        recorded = [self._by_name[n] for n in layers if self._by_name[n].is_neuron]
        self.recorder = Recorder(recorded, self.batch, int(capacity), membrane, current, spike_dtype)
        self._fused_prog = None  # its program holds the old recorder's rings

    def _constant_layers(self) -> set[int]:
        """Layers whose inputs are the same every step: fed only by the input layer (through
        stateless reshaping), under the constant encoder. Their current is computed once."""
        if self.config.encoder != "constant" or self.config.synaptic_delay:
            return set()
        constant_out = {0}
        result = set()
        for ls in self.layers[1:]:
            if all(i in constant_out for i in ls.inbound):
                if ls.is_neuron:
                    result.add(ls.index)
                elif ls.layer.kind in (nw.FLATTEN, nw.RESHAPE, nw.ZERO_PAD2D, nw.CONCATENATE):
                    constant_out.add(ls.index)
        return result

    def set_input(self, x: np.ndarray, labels: np.ndarray | None = None) -> None:
        x = np.asarray(x, dtype=np.float32)
        if x.shape != (self.batch, *self.network.input_shape):
            raise DataFileError(
                f"input has shape {x.shape}, the simulator expects {(self.batch, *self.network.input_shape)}"
            )
        self.x = np.array(x, dtype=np.float32, order="C")  # our own copy, read-only: change it
        self.x.flags.writeable = False                     # with set_input, never in place
        self.labels = None if labels is None else np.asarray(labels, dtype=np.int64)
        self.reset()

    def set_input_spikes(self, train: np.ndarray) -> None:
        """The spike train the 'recorded' encoder replays: [T, B, *input_shape], row t-1 the
        input layer's spike counts at step t (``encoders.input_train`` reads it from a trace)."""
        if self.config.encoder != "recorded":
            raise ConfigError("encoder", f"is '{self.config.encoder}'; an input spike train needs 'recorded'")
        train = np.asarray(train, dtype=np.float32)
        want = (self.batch, *self.network.input_shape)
        if train.ndim != len(want) + 1 or train.shape[1:] != want or train.shape[0] < 1:
            raise DataFileError(f"input spike train has shape {train.shape}, the simulator expects "
                                f"(T, {', '.join(map(str, want))})")
        self._input_train = np.ascontiguousarray(train)
        self.reset()

    def _input(self) -> np.ndarray:
        """What the input layer encodes this step: the sample, or the recorded train's frame."""
        if self.config.encoder != "recorded":
            return self.x
        train = self._input_train
        if train is None:
            raise ConfigError("encoder", "'recorded' needs an input spike train (Simulator.set_input_spikes)")
        if self.t >= len(train):
            raise ConfigError("steps", f"the recorded input spike train has {len(train)} steps; "
                              f"step {self.t + 1} has no input")
        return train[self.t]

    def _sources(self, ls: LayerState) -> list[np.ndarray]:
        """The outputs a layer reads: the previous step's for neuron layers under a delay."""
        return self._prev if self._prev is not None and ls.is_neuron else self._outputs

    def reset(self) -> None:
        """Back to t = 0: state zeroed, RNG re-seeded, recording cleared. Input is kept."""
        self.t = 0
        self.cursor = 0
        self.rng = np.random.default_rng(self.config.seed)
        for ls in self.layers:
            ls.reset()
        if self._prev is not None:
            for arr in self._prev:
                arr.fill(0)
        self.recorder.clear()

    # ---- stepping ------------------------------------------------------------------------
    def step_layer(self) -> LayerState:
        """Advance the layer under the cursor; completes the timestep after the last layer."""
        ls = self.layers[self.cursor]
        advance(ls, self._sources(ls), self._input(), self.config.encoder, self.rng, ls.index in self._constant)
        self.cursor += 1
        if self.cursor == len(self.layers):
            self._finish_step()
        return ls

    def _fused_program(self):
        """The fused program when the fused path applies, else None."""
        if not self.fused or self.fused_reason is not None:
            return None
        prog = self._fused_prog
        if prog is None or prog.recorder is not self.recorder:
            prog = self._fused_prog = _fused.FusedProgram(self)
        return prog

    def step(self) -> None:
        """Finish the current timestep (all of it when the cursor is at 0)."""
        if self.cursor:
            while self.cursor:
                self.step_layer()
            return
        prog = self._fused_program()
        if prog is not None:
            prog.run(self, 1)
            return
        # The hot loop: the same as step_layer() over all layers, without its bookkeeping.
        outputs, x, encoder, rng = self._outputs, self._input(), self.config.encoder, self.rng
        prev = self._prev
        for i, (ls, constant) in enumerate(zip(self.layers, self._constant_flags)):
            self.cursor = i
            advance(ls, prev if prev is not None and ls.is_neuron else outputs, x, encoder, rng, constant)
        self._finish_step()

    def run(self, n: int, on_progress: Callable[[int, int], None] | None = None,
            should_stop: Callable[[], bool] | None = None, progress_every: int = 10,
            max_chunk: int | None = None) -> int:
        """Advance ``n`` timesteps; returns how many ran (fewer when ``should_stop`` said so).
        The fused path advances up to ``max_chunk`` steps (default ``fused.CHUNK``) per nogil
        call; ``should_stop`` and ``on_progress`` are looked at between calls. A caller that
        sizes ``n`` by time itself (the window's worker) passes ``max_chunk=n``: one call, one
        hand-over of the GIL. A ``should_stop`` that is a ``stop_flag.StopWhenChanged`` is also
        read by the fused kernel before every step (when it runs as one serial call), so a stop
        asked for by another thread ends even a long chunk within one step."""
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
            raise ConfigError("steps", f"must be a whole number >= 0, got {n!r}")
        n = int(n)
        progress_every = max(1, int(progress_every))
        prog = self._fused_program() if n else None
        i = 0
        while i < n:  # one step, or a fused chunk of up to fused.CHUNK steps, at a time
            if should_stop is not None and should_stop():
                return i
            if prog is None or self.cursor:
                self.step()
                k = 1
            else:
                k = min(max_chunk or _fused.CHUNK, n - i, prog.max_steps)
                if on_progress is not None:
                    k = min(k, progress_every - i % progress_every)
                ran = prog.run(self, k, should_stop if isinstance(should_stop, StopWhenChanged) else None)
                if ran < k:
                    return i + ran
            i += k
            if on_progress is not None and (i % progress_every == 0 or i == n):
                on_progress(i, n)
        return n

    def _finish_step(self) -> None:
        if self._prev is not None:
            for dst, src in zip(self._prev, self._outputs):
                np.copyto(dst, src)
        self.cursor = 0
        self.t += 1
        self.recorder.append(self.t, self.prediction())

    # ---- reading state -------------------------------------------------------------------
    def layer(self, name: str) -> LayerState:
        return self._by_name[name]

    @property
    def output(self) -> LayerState:
        return self.layers[-1]

    def output_counts(self) -> np.ndarray:
        """(B, classes) cumulative output spike counts (the membrane readout: the accumulated
        charge of the non-spiking output layer, ``conversion`` rule 1)."""
        out = self.output
        counts = out.counts if out.is_neuron else out.y
        return counts.reshape(self.batch, -1)

    def prediction(self) -> np.ndarray:
        """(B,) argmax of cumulative output spike counts (first maximum on ties); -1 where the
        output layer has not spiked yet."""
        pred = np.empty(self.batch, dtype=np.int64)
        argmax_or_none(self.output_counts(), pred)
        return pred

    def record_bytes(self, steps: int) -> int:
        sizes = {ls.layer.name: ls.layer.size for ls in self.recorder.layers}
        return estimate_bytes(sizes, steps, self.batch, self.config.record_membrane, self.config.record_current)

    def metadata(self) -> dict:
        from workbench import __version__

        return {
            **self.config.metadata(),
            "batch": self.batch,
            "network": self.network.name,
            "network_sha256": self.network.fingerprint(),
            "source": dict(self.network.source),
            "normalization": dict(self.network.normalization),
            "scales": dict(self.network.scales),
            "layout": "channels_last",
            "membrane": "post-reset",
            "tool": f"snn-workbench {__version__}",
            "models": {ls.layer.name: {"name": ls.model.name, "params": ls.model.params(),
                                       "signed": ls.model.signed, "role": self.plan.layers[ls.layer.name].role,
                                       "gain": float(ls.gain), "offset": float(ls.offset), "synapse": ls.synapse,
                                       "rate_inverted": ls.rate_inv is not None}
                       for ls in self.layers if ls.is_neuron},
            "conversion_warnings": list(self.plan.warnings),
            "kinds": {ls.layer.name: ls.layer.kind for ls in self.layers},
        }

    def trace(self, last: int | None = None, ann: dict | None = None) -> "Trace":  # noqa: F821
        """What was recorded so far (newest ``last`` steps), with the ANN activations if given."""
        return self.recorder.trace(last, self.labels, ann, self.metadata())
