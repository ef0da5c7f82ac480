"""QtInputView: the current input sample as an image, its true label, and the sample choosers.

"sample" is the data set index of the batch's first sample (``sample_selected``: the session
runs the batch starting there); with a batch of more than one, "shown" picks which sample of
the batch every view shows (``batch_sample_selected(k)``, 0 .. batch - 1; the window hands it
to the views' ``set_sample``), and the picture and caption follow it.

Images are shown the way they are stored: row 0 at the top (``imageAxisOrder='row-major'`` and
an inverted y axis), channels-last; one channel is grey, three are RGB, any other count shows
the first channel (named in the caption). A vector input is shown as one row of pixels. The
caption gives the true label and the SNN's current prediction for the sample.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PyQt6.QtCore import Qt, pyqtSignal, pyqtSlot
from PyQt6.QtWidgets import QFormLayout, QLabel, QSpinBox, QVBoxLayout, QWidget


def as_image(sample: np.ndarray) -> tuple[np.ndarray, str]:
    """(2-D grey or H x W x 3 image, note) for one channels-last sample."""
    sample = np.asarray(sample, dtype=np.float32)
    if sample.ndim == 1:
        return sample.reshape(1, -1), "vector input, one row"
    if sample.ndim == 2:
        return sample, ""
    if sample.ndim == 3 and sample.shape[-1] == 1:
        return sample[..., 0], ""
    if sample.ndim == 3 and sample.shape[-1] == 3:
        return sample, ""
    return sample.reshape(*sample.shape[:2], -1)[..., 0], f"channel 0 of {sample.shape[-1]}"


class QtInputView(QWidget):
    sample_selected = pyqtSignal(int)
    batch_sample_selected = pyqtSignal(int)

    def __init__(self, parent=None):
        super().__init__(parent)
        self._samples = None
        self._batch_start = 0
        self._shown = 0  # which sample of the batch
        self._snapshot = None
        self.graphics = pg.GraphicsLayoutWidget()
        self.graphics.setMinimumSize(120, 120)
        self.graphics.setMaximumHeight(260)
        self.view = self.graphics.addViewBox(lockAspect=True, invertY=True, enableMouse=False)
        self.image = pg.ImageItem(axisOrder="row-major")
        self.view.addItem(self.image)
        self.index = QSpinBox(minimum=0, maximum=0, keyboardTracking=False)
        self.index.setToolTip("First sample of the batch (the data set's index)")
        self.shown = QSpinBox(minimum=0, maximum=0, keyboardTracking=False)
        self.shown.setToolTip("Which sample of the batch the views show (0 = the first)")
        self.caption = QLabel()
        self.wrong = QLabel()  # the batch's misclassified samples, each a link that shows it
        self.wrong.setWordWrap(True)
        self.wrong.setTextFormat(Qt.TextFormat.RichText)
        self.wrong.setToolTip("Samples of the batch the SNN gets wrong now (click one to show it)")
        self.wrong.linkActivated.connect(lambda href: self.shown.setValue(int(href)))
        self.wrong.hide()
        self.replay = QLabel()  # the replayed input spike train (File > Replay input from trace…)
        self.replay.setWordWrap(True)
        self.replay.setStyleSheet("color: #e0a030; font-weight: bold;")
        self.replay.hide()
        form = QFormLayout()
        form.addRow("sample", self.index)
        form.addRow("shown in batch", self.shown)
        self._shown_label = form.labelForField(self.shown)
        self._set_batch_size(1)
        layout = QVBoxLayout(self)
        layout.addWidget(self.graphics, stretch=1)
        layout.addWidget(self.replay)
        layout.addWidget(self.caption)
        layout.addLayout(form)
        layout.addWidget(self.wrong)
        self.index.valueChanged.connect(self._on_index_changed)
        self.shown.valueChanged.connect(self._on_shown_changed)

    @pyqtSlot(object, int)
    def set_samples(self, samples, batch_start: int = 0) -> None:
        self._samples = samples
        self._batch_start = int(batch_start)
        n = 0 if samples is None else len(samples)
        self.index.blockSignals(True)
        self.index.setMaximum(max(n - 1, 0))
        self.index.setValue(self._batch_start)
        self.index.setEnabled(n > 0)
        self.index.blockSignals(False)
        self._show()

    @pyqtSlot(object)
    def set_replay(self, replay) -> None:
        """Say that the input is a replayed spike train (a ``loaders.Replay``) and from which file;
        None: the samples shown are what the input encodes."""
        if replay is None:
            self.replay.setText("")
            self.replay.setToolTip("")
            self.replay.hide()
        else:
            self.replay.setText(f"Input: replayed spike train from {replay.path.name} ({replay.batch} sample(s), "
                                f"{replay.steps} steps); the picture is the data's, not what runs")
            self.replay.setToolTip(str(replay.path))
            self.replay.show()
        self.index.setEnabled(replay is None and self._samples is not None and len(self._samples) > 0)

    @pyqtSlot(object)
    def set_snapshot(self, snapshot) -> None:
        """Only the batch size and the prediction are read from snapshots; the picture comes
        from the samples."""
        old = self._prediction()
        self._snapshot = snapshot
        if snapshot is not None and snapshot.batch != self.shown.maximum() + 1:
            self._set_batch_size(snapshot.batch)
        if self._prediction() != old:
            self._caption()
        self._list_wrong()

    def misclassified(self) -> list[int]:
        """Samples of the batch (0-based) whose SNN prediction differs from the label now."""
        snap = self._snapshot
        if snap is None or snap.labels is None or snap.t == 0 or snap.batch < 2:
            return []
        return [int(i) for i in np.flatnonzero(np.asarray(snap.predictions) != np.asarray(snap.labels))]

    def _list_wrong(self) -> None:
        wrong = self.misclassified()
        key = tuple(wrong), self._shown
        if getattr(self, "_wrong_shown", None) == key:
            return
        self._wrong_shown = key
        snap = self._snapshot
        if snap is None or snap.labels is None or snap.batch < 2 or snap.t == 0:
            self.wrong.hide()
            return
        links = ", ".join(f"<b>{i}</b>" if i == self._shown else f"<a href='{i}'>{i}</a>" for i in wrong[:40])
        more = f" … (+{len(wrong) - 40})" if len(wrong) > 40 else ""
        self.wrong.setText(f"wrong in batch ({len(wrong)}/{snap.batch}): {links or 'none'}{more}")
        self.wrong.show()
    def _set_batch_size(self, size: int) -> None:
        self.shown.setMaximum(max(size - 1, 0))  # clamps the value, emitting when it changes
        for w in (self.shown, self._shown_label):
            w.setVisible(size > 1)

    def shown_sample(self) -> int:
        """Which sample of the batch is shown (0-based)."""
        return self._shown

    def _prediction(self) -> int | None:
        snap = self._snapshot
        if snap is None or snap.t == 0:
            return None
        return int(snap.predictions[min(self._shown, snap.batch - 1)])

    def label(self) -> int | None:
        if self._samples is None or self._samples.y is None:
            return None
        return int(self._samples.y[min(self._batch_start + self._shown, len(self._samples) - 1)])

    def _show(self) -> None:
        if self._samples is None or len(self._samples) == 0:
            self.image.clear()
            self._caption()
            return
        picture, self._note = as_image(self._samples.x[min(self._batch_start + self._shown, len(self._samples) - 1)])
        hi = float(max(picture.max(), 1.0 if picture.min() >= 0 else picture.max()))
        lo = float(min(picture.min(), 0.0))
        self.image.setImage(np.ascontiguousarray(picture), levels=(lo, hi if hi > lo else lo + 1))
        self.view.autoRange(padding=0.02)
        self._caption()

    def _caption(self) -> None:
        if self._samples is None:
            self.caption.setText("no data")
            return
        label = self.label()
        parts = [f"true: <b>{label}</b>" if label is not None else "true: (no label)"]
        pred = self._prediction()
        if pred is not None:
            ok = label is not None and pred == label
            shown = "–" if pred < 0 else str(pred)
            parts.append(f"SNN: <b style='color:{'#30a030' if ok else '#d03030'}'>{shown}</b>")
        if getattr(self, "_note", ""):
            parts.append(f"<i>{self._note}</i>")
        self.caption.setText("&nbsp;&nbsp;".join(parts))

    def _on_index_changed(self, value: int) -> None:
        self.sample_selected.emit(int(value))

    def _on_shown_changed(self, value: int) -> None:
        self._shown = int(value)
        self._list_wrong()
        self._show()
        self.batch_sample_selected.emit(self._shown)
