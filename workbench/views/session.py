"""Session: what the window talks to. Owns the loaded network, data, settings and the worker.

The Session lives on the GUI thread and holds the *desired* state: the original and the
normalized Network, the samples, the SimConfig, the selected batch, the selected layer and the
watched neurons. Every intent turns into an immutable request for the one worker thread
(``SimLoop``), which owns the Simulator, does long work (opening files, normalizing) and sends
back snapshots at most ~30 times a second. Views subscribe to the signals; they never touch the
engine.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from pathlib import Path

from PyQt6.QtCore import QObject, QThread, pyqtSignal, pyqtSlot

from workbench.engine.config import SimConfig
from workbench.errors import ConfigError
from workbench.views import loaders
from workbench.views.sim_loop import SimLoop, describe_error


class _LoopThread(QThread):
    """Runs a SimLoop; its messages cross to the GUI thread as queued signals."""

    message = pyqtSignal(str, object)

    def __init__(self, parent=None, window: int = 500, budget: int | None = None):
        super().__init__(parent)
        self.loop = SimLoop(self.message.emit, window, budget=budget)
        self.setObjectName("snn-workbench-sim")

    def run(self) -> None:
        self.loop.run()


class Session(QObject):
    snapshot_ready = pyqtSignal(object)  # Snapshot, or None when nothing is loaded
    error = pyqtSignal(str, str)  # message, details to copy
    network_changed = pyqtSignal()
    data_changed = pyqtSignal()
    config_changed = pyqtSignal()
    status = pyqtSignal(str)
    busy_changed = pyqtSignal(bool)
    job_progress = pyqtSignal(float)  # 0..1 of the running job's normalization
    cancellable_changed = pyqtSignal(bool)  # a job (opening, normalizing) that cancel_jobs() stops is running
    running_changed = pyqtSignal(bool)
    layer_selected = pyqtSignal(str)
    ann_accuracy_changed = pyqtSignal(float)  # the ANN's accuracy on the running batch; NaN: unknown
    trace_ready = pyqtSignal(object)  # Trace of the recorded steps (request_trace), None when nothing runs
    conversion_warnings = pyqtSignal(object)  # tuple of the conversion plan's warnings (engine.conversion)
    conversion_edited = pyqtSignal()  # set_conversion asked for another normalization or remedies
    memory_changed = pyqtSignal(object)  # sim_loop.RecordingPlan: what is recorded, its history, bytes, budget
    replay_changed = pyqtSignal(object)  # loaders.Replay the input replays, None: the samples are encoded

    def __init__(self, parent=None, window: int = 500, budget: int | None = None):
        super().__init__(parent)
        self.original = None  # Network as loaded
        self.network = None  # the normalized Network that runs
        self.model_path: Path | None = None
        self.samples = None  # workbench.models.data.Samples
        self.calibration = None  # x used to normalize (None: the samples)
        self.config = SimConfig()
        self.conversion = loaders.Conversion()  # asked for (the settings show it)
        self.converted = loaders.Conversion()  # that of the network in use
        self.batch_start = 0
        self.selected_layer: str | None = None
        self.watched: list[tuple[str, int]] = []
        self.history_all = False  # every recorded layer in snapshots (a stacked raster)
        self.snapshot = None
        self.ann_accuracy = float("nan")  # of the running batch, from the worker's ANN forward pass
        self.running = False
        self.busy = False
        self.play_steps = self.config.steps  # T: a play runs each sample to this timestep
        self.play_through = True  # then goes on with the next sample (batch) of the data
        self.speed: float | None = None  # steps per second of a play (None: as fast as it goes)
        self._playing = False  # a play the person started and did not pause
        self.recording = None  # sim_loop.RecordingPlan of the running simulation
        self.replay = None  # loaders.Replay: the input spike train the 'recorded' encoder replays
        self._batch_before_replay = 1
        self._saved_remedies = None  # (config before, config with them) of a saved network's neuron remedies
        self._thread = _LoopThread(self, window, budget)
        self._thread.message.connect(self._on_message)
        self._loop = self._thread.loop
        self.memory_budget = self._loop.budget  # bytes the recording may take
        self._frame_cpu: float | None = None  # the GUI thread's CPU time when it took the last snapshot
        self._thread.start()

    # ---- intents: running ------------------------------------------------------------------
    @pyqtSlot()
    def play(self) -> None:
        """Run the shown sample to T (``play_steps``); with ``play_through``, then the next
        sample (batch) from t = 0, and so on to the end of the data, at ``speed``."""
        t = 0 if self.snapshot is None else self.snapshot.t
        self._playing = True
        if t >= self.play_steps:
            if self.play_through and self._next_sample():
                return
            self._playing = False
            self.status.emit(f"t = {t} is already at T = {self.play_steps}: raise T, or Reset (R) to play again.")
            return
        self._loop.play(self.play_steps)

    @pyqtSlot()
    def pause(self) -> None:
        self._playing = False
        self._loop.pause()

    @pyqtSlot(int)
    def set_play_steps(self, steps: int) -> None:
        self.play_steps = max(1, int(steps))

    @pyqtSlot(bool)
    def set_play_through(self, on: bool) -> None:
        self.play_through = bool(on)

    def set_speed(self, steps_per_second: float | None) -> None:
        """Steps per second of a play (None or 0: flat out); takes effect at once."""
        self.speed = float(steps_per_second) if steps_per_second else None
        self._loop.speed = self.speed

    def _next_sample(self) -> bool:
        """Go on with the next sample (batch) from t = 0 and play it; False at the end of the data."""
        n = 0 if self.samples is None else len(self.samples)
        start = self.batch_start + self.config.batch
        if start >= n:
            self._playing = False
            self.status.emit(f"Played every sample of the data to T = {self.play_steps}.")
            return False
        self.select_batch(start, self.config.batch)
        self._loop.play(self.play_steps)
        return True

    @pyqtSlot()
    def toggle_play(self) -> None:
        self.pause() if self.running else self.play()

    @pyqtSlot()
    def step(self) -> None:
        self._loop.pause()
        self._loop.post("step")

    @pyqtSlot()
    def step_layer(self) -> None:
        self._loop.pause()
        self._loop.post("step_layer")

    @pyqtSlot(int)
    def run_to(self, t: int) -> None:
        """Run to timestep ``t``; when the run is already there or past it, run again from 0."""
        self._playing = False
        self._loop.pause()
        now = 0 if self.snapshot is None else self.snapshot.t
        if now >= t:
            self._loop.post("reset")
            self.status.emit(f"Run to T = {t} with t = {now} already past it: reset to t = 0 and ran to {t}.")
        self._loop.play(int(t))

    @pyqtSlot()
    def reset(self) -> None:
        self._loop.pause()
        self._loop.post("reset")

    # ---- intents: what runs ----------------------------------------------------------------
    def set_config(self, config: SimConfig) -> None:
        replay = self.replay if config.encoder == "recorded" else None
        try:
            if config.encoder == "recorded" and replay is None:
                raise ConfigError("encoder", "'recorded' replays an input spike train: choose its trace with "
                                  "File > Replay input from trace…")
            if replay is not None:
                config = config.replace(batch=replay.batch)  # the train's samples
            if self.network is not None:
                config.check_against(self.network)
            if replay is None and self.samples is not None and config.batch > len(self.samples):
                raise ConfigError("batch", f"must be at most {len(self.samples)}, the samples in the open data")
        except ConfigError as exc:
            self.error.emit(*describe_error(exc))
            return
        before, self.config = self.config, config
        self.config_changed.emit()
        if replay is None and self.replay is not None:
            self._set_replay(None)
        if self.original is not None and self.converted.measures and _measured(before) != _measured(config):
            self._convert()  # calibration and balancing measured the SNN with the settings before
            return
        self._setup()

    @property
    def percentile(self) -> float:
        return self.conversion.percentile

    @pyqtSlot(float)
    def set_percentile(self, percentile: float) -> None:
        self.set_conversion(dataclasses.replace(self.conversion, percentile=float(percentile)))

    def set_conversion(self, conversion: loaders.Conversion) -> None:
        """Convert the open model again (off the GUI thread, with progress and Cancel): its
        normalization percentile, rule or SNN Toolbox factors file, and remedies, each as the
        command line does it (``loaders.converted``). A refused option is reported and the
        settings go back to those of the network in use."""
        if conversion == self.conversion and self.network is not None:
            return
        self.conversion = conversion
        self.config_changed.emit()
        if self.original is not None:
            self.conversion_edited.emit()
            self._convert()

    def _convert(self) -> None:
        c = self.conversion
        label = (f"Normalizing with {Path(c.factors_file).name}…" if c.factors_file
                 else f"Normalizing at the {c.percentile:g}th percentile…")
        if c.remedies:
            label = label[:-1] + f", then the remedies {c.remedies}…"
        self._job("normalized", label, loaders.converted, self.original, self._calibration_x(self.samples), c,
                  self.config)

    @pyqtSlot(int)
    def select_sample(self, index: int) -> None:
        self.select_batch(index, self.config.batch)

    def select_batch(self, start: int, size: int) -> None:
        if self.replay is not None:
            self.status.emit(f"The {self.replay.describe()}: choose another input encoding in Settings "
                             "to run the samples of the data.")
            return
        n = 0 if self.samples is None else len(self.samples)
        if not 0 <= start < max(n, 1) or size < 1:
            self.error.emit(f"No sample {start} (batch of {size}) in a data set of {n}", "")
            return
        self.batch_start = int(start)
        if size != self.config.batch:
            self.config = self.config.replace(batch=int(size))
            self.config_changed.emit()
        self.data_changed.emit()
        self._setup()

    def open_model(self, path) -> None:
        path = Path(path)
        self._job("model", f"Opening {path.name}…", functools.partial(loaders.open_model, rule=self.conversion.rule),
                  path, None if self.samples is None else self.samples.path, self.percentile)

    def open_data(self, path) -> None:
        if self.original is None:
            self.error.emit("Open a model first: the data is shaped to fit the model's input.", "")
            return
        self._job("data", f"Reading {Path(path).name}…", functools.partial(loaders.open_data, rule=self.converted.rule),
                  Path(path), self.original, self.network if self.network is not self.original else None,
                  self.converted.percentile)

    def replay_input(self, path) -> None:
        """Replay the input spike train of the trace ``path`` (its input layer; read off the GUI
        thread): the 'recorded' encoder, as the command line's ``run --input recorded
        --input-spikes``, with the train's samples as the batch. A trace that does not fit the
        network is refused with a message naming the file; the run stays as it was."""
        if self.network is None:
            self.error.emit("Open a model first: the spike train replays into the model's input layer.", "")
            return
        self._job("replay", f"Reading the input spike train of {Path(path).name}…", loaders.replay_input,
                  Path(path), self.network)

    def stop_replay(self) -> None:
        """Back to encoding the samples of the data (the constant encoder)."""
        if self.replay is not None:
            n = 1 if self.samples is None else len(self.samples)
            self.set_config(self.config.replace(encoder="constant", batch=max(1, min(self._batch_before_replay, n))))

    def _set_replay(self, replay) -> None:
        self.replay = replay
        self.replay_changed.emit(replay)

    def open_demo(self) -> None:
        self._job("model", "Opening the demo network…", functools.partial(loaders.open_demo, rule=self.conversion.rule),
                  self.percentile)

    def set_memory_budget(self, nbytes: int) -> None:
        """The memory the recording may take: with less, a big network's history gets shorter
        and only the layers the views show are recorded (``sim_loop.RecordingPlan``)."""
        nbytes = int(nbytes)
        if nbytes < 1:
            self.error.emit(f"The memory budget must be positive, got {nbytes} bytes", "")
            return
        self.memory_budget = nbytes
        self._loop.post("budget", nbytes)

    # ---- intents: what is looked at ----------------------------------------------------------
    @pyqtSlot(str)
    def select_layer(self, name: str) -> None:
        if name == self.selected_layer:
            return
        self.selected_layer = name
        self.layer_selected.emit(name)
        self._post_history()

    def set_watched(self, neurons) -> None:
        self.watched = [(str(layer), int(i)) for layer, i in neurons]
        self._post_history()

    @pyqtSlot(bool)
    def set_history_all(self, on: bool) -> None:
        self.history_all = bool(on)
        self._post_history()

    def history_layers(self) -> tuple[str, ...] | None:
        """Layers whose recent history snapshots carry: the selected layer, the layers of
        watched neurons and the output layer (the class vote); None: all recorded layers."""
        if self.history_all:
            return None
        output = None if self.network is None else self.network.output_layer.name
        names = [self.selected_layer] + [layer for layer, _ in self.watched] + [output]
        return tuple(dict.fromkeys(n for n in names if n))

    def membrane_neurons(self) -> tuple[tuple[str, int], ...]:
        """Neurons whose membranes snapshots carry (``Snapshot.neuron_membranes``): the watched
        ones, the only membranes a view plots. Snapshots carry no layer's whole membranes:
        copying those of a watched neuron's layer (2048 neurons of conv2 for one) was two
        thirds of the bytes a snapshot copied."""
        return tuple(dict.fromkeys(self.watched))

    def request_trace(self) -> None:
        """Ask the worker for a Trace of what it recorded so far; answered by ``trace_ready``."""
        self._loop.post("trace")

    def shutdown(self, timeout_ms: int = 10_000) -> bool:
        """Stop the worker and wait for it (the current step or job finishes first)."""
        if self._thread.isRunning():
            self._loop.quit()
            return self._thread.wait(timeout_ms)
        return True

    # ---- internals --------------------------------------------------------------------------
    def _job(self, tag: str, label: str, fn, *args) -> None:
        self._loop.pause()
        self._loop.post("job", tag, label, fn, args, self._loop.job_token())

    def cancel_jobs(self) -> None:
        """Cancel the running job (opening, normalizing) and those waiting: the network, data and
        percentile stay as they were; a job that already finished is not undone."""
        self._loop.cancel_jobs()

    def _on_cancelled(self, tag: str, label: str) -> None:
        if tag == "normalized" and self.network is not None:  # the fields show the conversion in use
            self.conversion = self.converted
            self.config_changed.emit()
        self.status.emit(f"Cancelled: {label.rstrip('…')}. Nothing was changed.")

    def _calibration_x(self, samples):
        if self.calibration is not None:
            return self.calibration
        return None if samples is None else samples.x[: loaders.CALIBRATION_SAMPLES]

    def _batch(self):
        if self.replay is not None and self.network is not None:  # the ANN sees the train's mean rate
            return self.replay.train.mean(axis=0, dtype="float64").astype("float32"), None
        if self.samples is None or self.network is None:
            return None, None
        part = self.samples.batch(min(self.batch_start, len(self.samples) - 1), self.config.batch)
        return part.x, part.y

    def _setup(self) -> None:
        x, y = self._batch()
        self._loop.pause()
        train = None if self.replay is None else self.replay.train
        self._loop.post("setup", self.network, self.config, x, y, train)

    def _post_history(self) -> None:
        self._loop.post("history", self.history_layers(), (), self.membrane_neurons(), self.selected_layer)

    def _adopt_network(self, loaded: loaders.Loaded) -> None:
        self.original, self.network = loaded.original, loaded.network
        self.model_path = loaded.path or self.model_path
        self.calibration = loaded.calibration
        overrides = {k: v for k, v in self.config.overrides.items() if k in {l.name for l in self.network.layers}}
        record = None if self.config.record is None else tuple(
            n for n in self.config.record if n in {l.name for l in self.network.layers})
        if overrides != dict(self.config.overrides) or record != self.config.record:
            self.config = self.config.replace(overrides=overrides, record=record)
            self.config_changed.emit()
        names = [l.name for l in self.network.neuron_layers]
        self.watched = [(layer, i) for layer, i in self.watched if layer in names]
        if self.selected_layer not in names:
            self.selected_layer = None
            self.select_layer(names[0] if names else "")
        self._post_history()
        self.network_changed.emit()

    def _on_result(self, tag: str, value) -> None:
        if tag in ("model", "data"):  # the samples of the data run again (another model: another input)
            self._end_replay(None if value.samples is None else len(value.samples))
        if tag == "model":  # a new model: its own factors file and remedies are for the user to give;
            # a saved converted network: those it was saved with, as the command line runs it
            fresh = dataclasses.replace(self.conversion, factors_file=None,
                                        remedies=loaders.saved_network_remedies(value.original))
            self._apply_saved_remedies(value.original)
            if fresh != self.conversion:
                self.conversion = fresh
                self.config_changed.emit()
            self.converted = fresh
            self.samples = value.samples
            self.batch_start = 0
            self._adopt_network(value)
            self.data_changed.emit()
        elif tag == "data":
            self.samples = value.samples
            self.batch_start = 0
            if value.network is not None:
                self._adopt_network(value)
            self.data_changed.emit()
        elif tag == "replay":
            if self.replay is None:
                self._batch_before_replay = self.config.batch
            self.replay = value
            self.config = self.config.replace(encoder="recorded", batch=value.batch)
            self.batch_start = 0
            self.config_changed.emit()
            self.replay_changed.emit(value)
            self.status.emit(f"Replaying the {value.describe()}.")
        elif tag == "normalized":
            if value.network is None:  # refused: the settings go back to the network in use
                self.conversion = self.converted
                self.config_changed.emit()
                self.error.emit(*describe_error(value.error))
                return
            self.network, self.converted = value.network, value.conversion
            self.network_changed.emit()
            self.status.emit(f"Converted with {value.conversion.describe()}.")
        if isinstance(value, loaders.Loaded) and value.message:
            self.status.emit(value.message)
        self._setup()

    def _end_replay(self, n: int | None) -> None:
        if self.replay is not None:
            batch = self._batch_before_replay if n is None else max(1, min(self._batch_before_replay, n))
            self.config = self.config.replace(encoder="constant", batch=batch)
            self._set_replay(None)
            self.config_changed.emit()

    def _apply_saved_remedies(self, network) -> None:
        """The neuron-side remedies a saved converted network was made with (half: IF v_init
        0.5, burstN: burst N) on the settings, as the command line's ``analysis.remedies.apply``
        runs it when reopened; refused (with a message) when the settings' model is no IF."""
        from workbench.analysis.remedies import neuron_config, saved_remedies

        before, self._saved_remedies = self._saved_remedies, None
        if before is not None and (self.config.neuron, self.config.overrides) == before[1]:
            # the last saved network's remedies, unchanged since: not this model's
            self.config = self.config.replace(neuron=before[0][0], overrides=before[0][1])
            self.config_changed.emit()
        if not (network.scales or network.normalization):
            return
        try:
            config = neuron_config(self.config, saved_remedies(network))
        except ConfigError as exc:
            self.error.emit(*describe_error(exc))
            return
        if config != self.config:
            self._saved_remedies = ((self.config.neuron, self.config.overrides), (config.neuron, config.overrides))
            self.config = config
            self.config_changed.emit()
            self.status.emit(f"{network.name} was converted with the remedies {saved_remedies(network)}: "
                             f"the neuron runs {config.neuron.describe()}.")

    def _current(self, snapshot) -> bool:
        """The snapshot is of the network that runs now (not one sent before another opened)."""
        net = self.network
        return net is not None and len(snapshot.layers) == len(net.layers) and all(
            ls.name == layer.name for ls, layer in zip(snapshot.layers, net.layers))

    def _on_message(self, kind: str, payload) -> None:
        if kind == "snapshot":
            if payload is not None and not self._current(payload):
                self._loop.frame_done()  # of the model before: its run was still on its way
                return
            self.snapshot = payload
            self.snapshot_ready.emit(payload)
            cpu = time.thread_time()  # this thread's CPU since the last frame: what a frame costs it
            running = payload is not None and payload.running
            self._loop.frame_done(cpu - self._frame_cpu if self._frame_cpu is not None and running else None)
            self._frame_cpu = cpu
        elif kind == "running":
            self.running = bool(payload)
            self.running_changed.emit(self.running)
        elif kind == "status":
            self.busy = bool(payload)
            self.busy_changed.emit(self.busy)
            self.status.emit(payload)
        elif kind == "error":
            self.error.emit(*payload)
        elif kind == "result":
            self._on_result(*payload)
        elif kind == "progress":
            self.job_progress.emit(float(payload))
        elif kind == "cancellable":
            self.cancellable_changed.emit(bool(payload))
        elif kind == "cancelled":
            self._on_cancelled(*payload)
        elif kind == "trace":
            self.trace_ready.emit(payload)
        elif kind == "conversion":
            self.conversion_warnings.emit(payload)
        elif kind == "memory":
            self.recording = payload
            self.memory_changed.emit(payload)
        elif kind == "ended":  # the replayed input spike train has no more steps
            self._playing = False
            self.status.emit(payload)
        elif kind == "reached":
            if self._playing and self.play_through:
                self._next_sample()
            else:
                self._playing = False
        elif kind == "ann_accuracy":
            self.ann_accuracy = float(payload)
            self.ann_accuracy_changed.emit(self.ann_accuracy)


def _measured(config: SimConfig) -> SimConfig:
    """What of ``config`` calibration and balancing depend on (not the run length, batch or seed)."""
    return config.replace(steps=1, batch=1, seed=0, record=(), record_membrane=False, record_current=False,
                          max_record_bytes=None)
