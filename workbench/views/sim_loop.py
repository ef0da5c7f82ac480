"""SimLoop: the worker side of the Session, the only code that touches the Simulator.

The GUI thread never reads or writes engine state. It posts commands (tuples of immutable
values: a Network, a SimConfig, read-only sample arrays) into a queue; the loop, running on one
worker thread, executes them in order and reports back through ``emit(kind, payload)``:

- ``("snapshot", Snapshot)``: after a command changed the state (coalesced: one per batch of
  queued commands) and, while playing, at most once per ``frame_interval`` and only after the
  GUI said it took the previous one (``frame_done``). Between frames, steps run flat out.
- ``("running", bool)``, ``("status", str)``, ``("error", (message, details))``,
  ``("result", (tag, value))`` for jobs (loading, normalizing) run on this thread, with
  ``("progress", fraction)`` while they normalize (when the whole percent changes) and
  ``("cancelled", (tag, label))`` instead of a result when ``cancel_jobs()`` came after the job
  was posted (it stops at the job's next progress report, or its result is dropped; a job busy
  without a measure, such as a Keras import in its child process, reports
  ``on_progress(0, None)`` every 0.1 s: a check only, nothing is shown), and
  ``("cancellable", bool)`` around each job (a status without it, such as the first setup's
  compiling of the kernels, cannot be cancelled);
  ``("trace", Trace or None)`` answering a ``("trace",)`` command (what the recorder holds);
  ``("ann_accuracy", float)`` after each setup: the ANN's accuracy on the batch (NaN: no labels);
  ``("reached", t)`` when a play stopped because it reached its target (not when paused);
  ``("ended", message)`` when a play or step would go past the end of the input spike train the
  'recorded' encoder replays (the Simulator refuses those steps; the play stops at its last step).

A play may be slowed to ``speed`` steps per second (None: flat out): it then runs only as many
steps as that speed allows since the play started and sleeps in between (at most a frame), so
10 steps a second can be watched step by step.

While playing, the loop steps the simulator in chunks (``Simulator.run(k)``: with the fused
path each chunk is ONE nogil numba call, so the GUI thread has the GIL meanwhile; after each
call the worker must win the GIL back from the GUI thread, which costs it time while the GUI
paints, so chunks are as long as the frames allow). A chunk runs until the next frame is due
(by the measured time per step), at most ``CHUNK_SECONDS`` and ``MAX_CHUNK`` steps, never past a
play's target; while a due frame waits for the GUI to take the last one, chunks are
``OVERDUE_CHUNK_SECONDS`` long. Frames are due on a grid of ``frame_interval``: a snapshot sent a
little late (up to ``FRAME_JITTER`` of an interval) does not push the next one back, so a play
sends ``1 / frame_interval`` snapshots a second, not fewer by the average lateness.
Pausing does not wait in the queue nor for the chunk: ``pause()`` bumps a generation counter
held in an int64 array (``stop_flag``) that the fused kernel reads before every timestep and
the loop before each chunk, so a pause takes effect within one timestep (a batch stepped on
several threads: at the end of the call, within one frame).
Exceptions never end the loop: they are reported and the loop stays usable.
"""

from __future__ import annotations

import dataclasses
import inspect
import queue
import time
import traceback
from types import MappingProxyType

import numpy as np

from workbench.analysis import warmup
from workbench.engine import stop_flag
from workbench.engine.recording import default_budget, history_plan, spike_dtype
from workbench.engine.simulator import Simulator
from workbench.analysis.snapshot import HistoryCache, layer_stats_of, make_snapshot
from workbench.errors import WorkbenchError
from workbench.models.forward import forward
from workbench.views.loaders import ann_accuracy

R_HISTORY_POINTS = 2000  # per layer; older points are thinned by half when exceeded
CHUNK_SECONDS = 0.05  # the longest chunk of a play (frames usually end them sooner: 1/30 s)
OVERDUE_CHUNK_SECONDS = 0.002  # chunks while a due frame waits for the GUI to take the last one
MAX_CHUNK = 8192
FRAME_JITTER = 0.1  # share of a frame interval by which a late snapshot is made up at the next
DETAIL_ALL_NEURONS = 2_000_000  # up to this many neurons x samples, snapshots copy every layer's arrays
STATS_SECONDS = 2.0  # while playing a bigger network, the other layers' stats are refreshed at most this often
STATS_SHARE = 0.03  # and so that refreshing them takes at most this share of a play (ResNet50: ~0.1 s each)
DETAIL_STATS_SECONDS = 0.25  # and the shown layers' stats (a table cell is not read faster)
FRAME_SHARE = 0.12  # of a play's time, what a big network's frames may take: the worker's snapshot and
# the GUI thread's handling and painting of it (fewer frames then, not fewer steps)
COMPACT_CACHE = dict(slack=1.25, spare=1, warm=0)  # the history cache when not everything fits the budget:
# 2.5 bytes per neuron and step of int8 history (buffer, spare), a copy of the window every quarter window


@dataclasses.dataclass(frozen=True)
class RecordingPlan:
    """What the window records (``SimLoop``): ``everything`` (every layer the settings name, with
    membranes, for the full window) when that fits the memory budget, else only what the views
    show: the history layers (the selected layer, the watched neurons' layers, the output) with
    the membranes of the watched neurons' layers, for as many steps as fit."""

    everything: bool
    layers: tuple[str, ...]
    membranes: tuple[str, ...]
    steps: int  # history length
    bytes: int  # estimated: the simulator's ring and the snapshots' history
    budget: int


class JobCancelled(Exception):
    """Raised inside a job by its progress report once the job was cancelled."""


def describe_error(exc: BaseException) -> tuple[str, str]:
    """(one-line message a person can act on, full traceback to copy)."""
    details = "".join(traceback.format_exception(exc))
    if isinstance(exc, WorkbenchError):
        return str(exc), details
    return f"Internal error ({type(exc).__name__}): {exc}", details


class SimLoop:
    def __init__(self, emit, window: int = 500, frame_interval: float = 1 / 30, clock=time.perf_counter,
                 budget: int | None = None):
        """``clock``: seconds, monotonic (tests pass a fake one to check the frame gate).
        ``budget``: bytes the recording may take (default: ``recording.default_budget()``)."""
        self._emit = emit
        self._clock = clock
        self.window = window
        self.budget = default_budget() if budget is None else int(budget)
        self.plan: RecordingPlan | None = None
        self._config = None
        self._selected: str | None = None  # the selected layer (its arrays in every snapshot)
        self._stats: tuple = ()
        self._stats_time = -1e9
        self._snap_cost = 0.0  # seconds a big network's snapshot takes (recent average)
        self._gui_cost = 0.0  # CPU seconds the GUI thread spends per frame (recent average, ``frame_done``)
        self._full_stats_cost = 0.0  # seconds the last snapshot spent on every layer's stats
        self._full_stats_seconds = 0.0  # what the last refresh of every layer's stats took
        self._detail_time = -1e9  # when the shown layers' stats were last computed while playing
        self._cache_epoch = 0  # the history epoch of the last snapshot
        self.frame_interval = frame_interval
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._stop = stop_flag.new_flag()  # pause generation; a play runs while it matches
        self._cancel = stop_flag.new_flag()  # cancel generation; a job posted with it runs while it matches
        self._frame_wanted = True  # the GUI took the last snapshot
        self.sim: Simulator | None = None
        self._ann: dict = {}
        self._r_history: dict[str, list] = {}
        self._r_from: dict = {}  # layer -> the LayerStats its last r point came from
        self._cache = HistoryCache(window)  # snapshots share history rows, only new ones are copied
        self._history_layers: tuple[str, ...] | None = ()
        self._membrane_layers: tuple[str, ...] | None = None  # None: of every history layer
        self._membrane_neurons: tuple[tuple[str, int], ...] = ()  # membranes of single neurons
        self._play_gen: int | None = None  # generation of the running play, None when idle
        self._target: int | None = None
        self._dirty = False
        self._due = 0.0  # when the next frame is due while playing
        self._rate = (0.0, 0, 0.0)  # (time, t) at the last rate sample, and steps per second
        self._chunk = 1  # steps per chunk while playing, adapted to CHUNK_SECONDS
        self._step_seconds = 0.0  # time per step of the last chunk (0: unknown)
        self.speed: float | None = None  # steps per second a play keeps to (None: flat out); set from the GUI
        self._paced = (0.0, 0)  # (time, t) from which a slowed play counts its allowance
        self._ends: int | None = None  # steps of the replayed input spike train (None: no replay)

    @property
    def _pause_gen(self) -> int:
        return int(self._stop[0])

    # ---- called from the GUI thread --------------------------------------------------------
    def post(self, *command) -> None:
        self._queue.put(command)

    def pause(self) -> None:
        stop_flag.request(self._stop)
        self.post("pause")

    def play(self, target: int | None = None) -> None:
        self.post("play", self._pause_gen, target)

    def quit(self) -> None:
        stop_flag.request(self._stop)
        self.post("quit")

    def frame_done(self, gui_seconds: float | None = None) -> None:
        """The GUI took the last snapshot; ``gui_seconds``: the CPU time its thread spent since
        it took the one before (handling and painting a frame, on the core the engine's second
        thread wants): a big network's frames are spaced by it too (FRAME_SHARE)."""
        if gui_seconds is not None and gui_seconds >= 0:
            g = self._gui_cost
            self._gui_cost = gui_seconds if not g else 0.7 * g + 0.3 * gui_seconds
        self._frame_wanted = True

    def job_token(self) -> int:
        """What a job posted now carries: ``cancel_jobs()`` cancels every job posted before."""
        return int(self._cancel[0])

    def cancel_jobs(self) -> None:
        stop_flag.request(self._cancel)

    # ---- the worker thread ------------------------------------------------------------------
    def run(self) -> None:
        while True:
            try:
                command = self._queue.get(block=self._play_gen is None)
            except queue.Empty:
                command = None
            if command is not None:
                if command[0] == "quit":
                    return
                self._guarded(self._execute, command)
                if self._dirty and self._queue.empty() and self._play_gen is None:
                    self._guarded(self._send_snapshot)
                continue
            self._guarded(self._advance)

    def _guarded(self, fn, *args) -> None:
        try:
            fn(*args)
        except Exception as exc:  # reported to the window; the loop goes on
            self._set_running(None)
            self._emit("error", describe_error(exc))
            self._dirty = True

    def _execute(self, command) -> None:
        kind, *args = command
        sim = self.sim
        if kind == "setup":
            self._setup(*args)
        elif kind == "job":
            self._run_job(*args)
        elif kind == "history":
            self._history_layers = args[0]
            self._membrane_layers = args[1] if len(args) > 1 else None
            self._membrane_neurons = tuple(args[2]) if len(args) > 2 else ()
            self._selected = args[3] if len(args) > 3 else None
            self._replan()
            self._dirty = True
        elif kind == "budget":
            self.budget = int(args[0])
            self._replan()
            self._dirty = True
        elif kind == "pause":
            self._set_running(None)
        elif kind == "trace":  # what the recorder holds (the newest ``window`` steps), for comparing
            self._emit("trace", None if sim is None else sim.trace(ann=dict(self._ann)))
        elif sim is None:
            return
        elif kind in ("play", "step", "step_layer") and self._at_end():
            return
        elif kind == "play":
            gen, target = args
            if self._ends is not None:
                target = self._ends if target is None else min(target, self._ends)
            if gen == self._pause_gen and (target is None or sim.t < target or sim.cursor):
                self._target = target
                self._set_running(gen)
        elif kind == "step":
            sim.step()
            self._dirty = True
        elif kind == "step_layer":
            sim.step_layer()
            self._dirty = True
        elif kind == "reset":
            sim.reset()
            self._r_history, self._r_from = {}, {}
            self._dirty = True
        else:
            raise ValueError(f"unknown command {kind!r}")

    def _run_job(self, tag, label, fn, fn_args, token) -> None:
        """``fn(*fn_args, on_progress=...)``; its result, or ``cancelled`` when the job was
        cancelled before, during (its next progress report raises) or after it ran."""
        cancelled = stop_flag.StopWhenChanged(self._cancel, token)
        shown = [-1]  # the last whole percent sent: at most 101 reports, each one up to date

        def on_progress(done, total):
            if cancelled():
                raise JobCancelled
            if total is None:  # busy, no measure (a child process importing): only the check
                return
            percent = 100 * done // total if total else 100
            if percent != shown[0]:
                shown[0] = percent
                self._emit("progress", percent / 100)

        def on_stage(text):
            if cancelled():
                raise JobCancelled
            shown[0] = -1
            self._emit("status", text)

        if cancelled():
            self._emit("cancelled", (tag, label))
            return
        self._emit("cancellable", True)
        self._emit("status", label)
        kw = {"on_stage": on_stage} if "on_stage" in inspect.signature(fn).parameters else {}
        try:
            value = fn(*fn_args, on_progress=on_progress, **kw)
        except JobCancelled:
            value = None
        finally:
            self._emit("status", "")
            self._emit("cancellable", False)
        if cancelled():
            self._emit("cancelled", (tag, label))
        else:
            self._emit("result", (tag, value))

    def _at_end(self) -> bool:
        """At the end of the replayed input spike train (a whole step done): say so."""
        sim = self.sim
        if self._ends is None or sim.t < self._ends or sim.cursor:
            return False
        self._emit("ended", f"The recorded input spike train ends at step {self._ends}: no input for step "
                            f"{self._ends + 1}. Reset (R) to replay it again.")
        return True

    def _setup(self, network, config, x, labels, train=None) -> None:
        """A Simulator of ``network`` on the samples ``x``; ``train`` [T, B, *shape]: the input
        spike train the 'recorded' encoder replays (``x`` then only feeds the ANN)."""
        self._set_running(None)
        self.sim = None
        self._ends = None
        self._ann = {}
        self._r_history, self._r_from = {}, {}
        self._dirty = True
        if network is None or x is None:
            self._emit("ann_accuracy", float("nan"))
            return
        if not warmup.is_warm():  # ~20 s on a machine whose kernel cache is empty: say so
            self._emit("status", warmup.message())
            try:
                warmup.warm_up()
            finally:
                self._emit("status", "")
        self._ann = forward(network, x)
        for arr in self._ann.values():
            arr.flags.writeable = False  # snapshots then share them instead of copying each time
        self._emit("ann_accuracy", ann_accuracy(network, self._ann, labels))
        self._config = config
        self.plan = None
        self._stats, self._stats_time, self._snap_cost = (), -1e9, 0.0
        self.sim = Simulator(network, config.replace(record=(), max_record_bytes=None), x, labels, record_capacity=1)
        if train is not None:
            self.sim.set_input_spikes(train)
            self._ends = len(train)
        self._emit("conversion", tuple(self.sim.plan.warnings))  # what the conversion plan warns about
        self._replan()

    # ---- what is recorded -------------------------------------------------------------------
    def _wanted(self) -> tuple[str, ...]:
        """Neuron layers the settings ask to record (all by default)."""
        names = [ls.layer.name for ls in self.sim.layers if ls.is_neuron]
        record = self._config.record
        return tuple(names if record is None else [n for n in names if n in set(record)])

    def _needed(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """(layers, membrane layers) the views show: the history layers (None: all wanted) and
        the watched neurons' layers."""
        wanted = self._wanted()
        hist = wanted if self._history_layers is None else self._history_layers
        watched = tuple(dict.fromkeys(layer for layer, _ in self._membrane_neurons))
        need = set(hist) | set(watched)
        names = tuple(n for n in (ls.layer.name for ls in self.sim.layers if ls.is_neuron) if n in need)
        return names, tuple(n for n in names if n in watched)

    def recording_plan(self) -> RecordingPlan:
        sim, config = self.sim, self._config
        sizes = {ls.layer.name: ls.layer.size for ls in sim.layers if ls.is_neuron}
        wanted = self._wanted()
        membranes = wanted if config.record_membrane else ()
        base = HistoryCache(self.window)
        layers, shown_membranes = self._needed()
        steps, nbytes = history_plan({n: sizes[n] for n in wanted}, set(membranes), sim.batch, self.budget,
                                     self.window, base.factor, 2, cached=set(layers))
        if steps >= self.window:
            return RecordingPlan(True, wanted, membranes, self.window, nbytes, self.budget)
        membranes = shown_membranes
        compact = HistoryCache(1, **COMPACT_CACHE)
        dtype = self._spike_dtype(layers)
        steps, nbytes = history_plan({n: sizes[n] for n in layers}, set(membranes), sim.batch, self.budget,
                                     self.window, compact.factor, dtype.itemsize, ring_spike_bytes=dtype.itemsize)
        return RecordingPlan(False, layers, membranes, steps, nbytes, self.budget)

    def _spike_dtype(self, layers):
        models = [self.sim.layer(n).model for n in layers]  # a current-carrying layer sends no spikes
        most = max([m.max_rate(self.sim.dt) for m in models if m.spiking] or [1.0])
        return spike_dtype(most)

    def _replan(self) -> None:
        """Record what the plan says; a changed plan starts the history afresh (the state is kept)."""
        if self.sim is None:
            return
        plan = self.recording_plan()
        if plan == self.plan:
            return
        old = self.plan
        self.plan = plan
        self._emit("memory", plan)
        if old is not None and (old.layers, old.membranes, old.steps) == (plan.layers, plan.membranes, plan.steps):
            return  # the same recording (only the estimate moved with the layers shown): it goes on
        ring = np.int16 if plan.everything else self._spike_dtype(plan.layers)  # int8 when a step's count fits
        self.sim.set_recording(plan.layers, plan.steps, set(plan.membranes), self._config.record_current, ring)
        if plan.everything:
            if self._cache.window != plan.steps or self._cache.spike_dtype is not None or self._cache.slack != 4:
                self._cache = HistoryCache(plan.steps)
        else:
            self._cache = HistoryCache(plan.steps, **COMPACT_CACHE, spike_dtype=self._spike_dtype(plan.layers))

    def _detail_layers(self):
        """Layers whose arrays snapshots copy: all of a network up to DETAIL_ALL_NEURONS, else
        the history layers (what the views show: the selected layer, the watched neurons'
        layers) and the output."""
        sim = self.sim
        if sum(ls.layer.size for ls in sim.layers) * sim.batch <= DETAIL_ALL_NEURONS:
            return None
        if self._history_layers is None:  # every layer's history (a stacked raster): not every layer's arrays
            names = {self._selected} | {layer for layer, _ in self._membrane_neurons}
        else:
            names = set(self._history_layers)
        return names | {sim.layers[-1].layer.name}

    def _layer_stats(self, detail, now: float):
        """Every layer's stats when the network is small, paused, or STATS_SECONDS passed (and
        ``STATS_SHARE`` of the time: the last refresh took 0.1 s, the next is 2.5 s later); else
        those of ``detail`` (at most every DETAIL_STATS_SECONDS) with the others from the last time."""
        if detail is None:
            return None
        running = self._play_gen is not None
        self._full_stats_cost = 0.0
        every = max(STATS_SECONDS, self._full_stats_seconds / STATS_SHARE)
        if not running or now - self._stats_time >= every or not self._stats:
            start = self._clock()
            self._stats = layer_stats_of(self.sim, self._ann, set(l.layer.name for l in self.sim.layers))
            self._stats_time = self._clock()
            self._full_stats_cost = self._full_stats_seconds = self._stats_time - start
        elif now - self._detail_time >= DETAIL_STATS_SECONDS:
            self._stats = layer_stats_of(self.sim, self._ann, detail, self._stats)
            self._detail_time = now
        return self._stats

    def _set_running(self, gen: int | None) -> None:
        was = self._play_gen is not None
        self._play_gen = gen
        if gen is None:
            self._target = None
        else:
            self._rate = (self._clock(), self.sim.t, 0.0)
            self._paced = (self._clock(), self.sim.t)
        if was != (gen is not None):
            self._emit("running", gen is not None)
            self._dirty = True

    def _advance(self) -> None:
        sim = self.sim
        if sim is None or self._play_gen != self._pause_gen:
            self._set_running(None)
        else:
            start = self._clock()
            k = self._chunk_steps(start)
            allowed = self._allowed_steps(start)
            if allowed is not None and allowed < 1:  # a slowed play waits for its next step
                wait = (1 - allowed) / self.speed if self.speed else 0.0
                time.sleep(min(max(wait, 0.0005), self.frame_interval or 0.03))
                return  # nothing new to show
            elif allowed is not None:
                k = min(k, allowed)
            gen = self._play_gen
            ran = sim.run(k, should_stop=stop_flag.StopWhenChanged(self._stop, gen), max_chunk=k)
            self._adapt_chunk(ran, self._clock() - start)
            if self._ends is not None and sim.t >= self._ends and not sim.cursor:
                self._set_running(None)
                self._at_end()
            elif self._target is not None and sim.t >= self._target:
                self._set_running(None)
                self._emit("reached", sim.t)
        if self._play_gen is None:
            self._send_snapshot()
            return
        now = self._clock()
        if self._frame_wanted and now >= self._due:
            self._send_snapshot(now)

    def _chunk_steps(self, now: float) -> int:
        """Steps of the next chunk: the adapted chunk, not past the target nor much past the
        time the next frame is due (a short one when that has passed: the GUI has not yet taken
        the last frame, and the next is sent as soon as it has)."""
        k = self._chunk
        if self._target is not None:
            k = min(k, self._target - self.sim.t)
        if self._step_seconds > 0:
            until = self._due - now
            if until <= 0:
                until = OVERDUE_CHUNK_SECONDS
            k = min(k, int(until / self._step_seconds) + 1)
        return max(1, k)

    def _allowed_steps(self, now: float):
        """Steps a slowed play may run now (may be < 1: not yet); None when not slowed."""
        speed = self.speed
        if not speed or speed <= 0:
            return None
        then, t0 = self._paced
        return int((now - then) * speed) + 1 - (self.sim.t - t0)

    def _adapt_chunk(self, ran: int, elapsed: float) -> None:
        """Steps per chunk so that one takes about CHUNK_SECONDS (at most doubling at a time)."""
        if ran <= 0 or elapsed <= 0:
            return
        self._step_seconds = elapsed / ran
        want = int(CHUNK_SECONDS / self._step_seconds)  # a chunk cut short tells the rate all the same
        self._chunk = max(1, min(want, 2 * self._chunk, MAX_CHUNK))

    def _steps_per_second(self, now: float) -> float:
        then, t0, rate = self._rate
        if self._play_gen is not None and now - then >= 0.25:
            rate = (self.sim.t - t0) / (now - then)
            self._rate = (now, self.sim.t, rate)
        return rate

    def _send_snapshot(self, now: float | None = None) -> None:
        self._dirty = False
        if self.sim is None:
            self._emit("snapshot", None)
            return
        now = self._clock() if now is None else now
        running = self._play_gen is not None
        detail = self._detail_layers()
        snap = make_snapshot(self.sim, self._ann, self._history_layers, self._cache.window,
                             steps_per_second=self._steps_per_second(now) if running else 0.0,
                             running=running, cache=self._cache, membrane_layers=self._membrane_layers,
                             membrane_neurons=self._membrane_neurons, detail_layers=detail,
                             stats=self._layer_stats(detail, now))
        self._record_r(snap)
        history = MappingProxyType({k: tuple(v) for k, v in self._r_history.items()})
        snap = dataclasses.replace(snap, r_history=history)
        if detail is not None and self._cache_epoch == self._cache.epoch:
            # a big network's frames: spaced to take at most FRAME_SHARE of a play with the GUI's share; not
            # counted: a history's first snapshot (its buffers are allocated) and the refresh of
            # every layer's stats (every STATS_SECONDS, whatever the frame rate)
            cost = max(0.0, self._clock() - now - self._full_stats_cost)
            self._snap_cost = cost if not self._snap_cost else 0.7 * self._snap_cost + 0.3 * cost
        self._cache_epoch = self._cache.epoch
        interval = max(self.frame_interval, (self._snap_cost + self._gui_cost) / FRAME_SHARE if detail is not None
                       else 0.0)
        self._due = max(self._due + interval, now + interval * (1 - FRAME_JITTER)) if running else now + interval
        self._frame_wanted = False
        self._emit("snapshot", snap)

    def _record_r(self, snap) -> None:
        if snap.t == 0 or snap.cursor:
            return
        for s in snap.stats:
            points = self._r_history.setdefault(s.name, [])
            if points and points[-1][0] == snap.t:
                continue
            if self._r_from.get(s.name) is s:  # stats kept from an earlier step: r was not measured now
                continue
            self._r_from[s.name] = s
            points.append((snap.t, s.r))
            if len(points) > R_HISTORY_POINTS:
                del points[1:-1:2]
