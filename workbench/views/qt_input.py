"""QtInputView: the current input sample as an image, its true label, and the sample chooser.

Images are shown the way they are stored: row 0 at the top (``imageAxisOrder='row-major'`` and
an inverted y axis), channels-last; one channel is grey, three are RGB, any other count shows
the first channel (named in the caption). A vector input is shown as one row of pixels. The
caption gives the true label and the SNN's current prediction for the sample.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PyQt6.QtCore import pyqtSignal, pyqtSlot
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

    def __init__(self, parent=None):
        super().__init__(parent)
        self._samples = None
        self._batch_start = 0
        self._snapshot = None
        self.graphics = pg.GraphicsLayoutWidget()
        self.graphics.setMinimumSize(120, 120)
        self.graphics.setMaximumHeight(260)
        self.view = self.graphics.addViewBox(lockAspect=True, invertY=True, enableMouse=False)
        self.image = pg.ImageItem(axisOrder="row-major")
        self.view.addItem(self.image)
        self.index = QSpinBox(minimum=0, maximum=0, keyboardTracking=False)
        self.index.setToolTip("First sample of the batch (the data set's index)")
        self.caption = QLabel()
        form = QFormLayout()
        form.addRow("sample", self.index)
        layout = QVBoxLayout(self)
        layout.addWidget(self.graphics, stretch=1)
        layout.addWidget(self.caption)
        layout.addLayout(form)
        self.index.valueChanged.connect(self._on_index_changed)

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
    def set_snapshot(self, snapshot) -> None:
        """Only the prediction is read from snapshots; the picture comes from the samples."""
        old = None if self._snapshot is None else int(self._snapshot.predictions[0])
        self._snapshot = snapshot
        new = None if snapshot is None else int(snapshot.predictions[0])
        if new != old:
            self._caption()

    def label(self) -> int | None:
        if self._samples is None or self._samples.y is None:
            return None
        return int(self._samples.y[self._batch_start])

    def _show(self) -> None:
        if self._samples is None or len(self._samples) == 0:
            self.image.clear()
            self._caption()
            return
        picture, self._note = as_image(self._samples.x[self._batch_start])
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
        if self._snapshot is not None and self._snapshot.t > 0:
            pred = int(self._snapshot.predictions[0])
            ok = label is not None and pred == label
            shown = "–" if pred < 0 else str(pred)
            parts.append(f"SNN: <b style='color:{'#30a030' if ok else '#d03030'}'>{shown}</b>")
        if getattr(self, "_note", ""):
            parts.append(f"<i>{self._note}</i>")
        self.caption.setText("&nbsp;&nbsp;".join(parts))

    def _on_index_changed(self, value: int) -> None:
        self.sample_selected.emit(int(value))
