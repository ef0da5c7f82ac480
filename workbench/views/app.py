"""Start the window: ``run_app(model=None, data=None, demo=True) -> exit code``.

With no model the bundled demo opens (the saved digits network, normalized on its calibration
set, running on its test set; TensorFlow is not imported). With a model file that file opens,
and ``data`` (if given) after it. The CLI calls this for ``snn-workbench gui [MODEL] [--data F]``
and for ``snn-workbench`` without arguments.
"""

from __future__ import annotations

import sys

from workbench.views.qt_main_window import APPLICATION, ORGANIZATION


def build_window(model=None, data=None, demo: bool = True, settings=None, error_handler=None):
    """The Session and its window, with the opening files requested (for run_app and tests)."""
    from workbench.views.qt_main_window import QtMainWindow
    from workbench.views.session import Session

    session = Session()
    window = QtMainWindow(session, settings=settings, error_handler=error_handler)
    if model is not None:
        session.open_model(model)
    elif demo:
        session.open_demo()
    if data is not None:
        if model is None and not demo:
            window.error_handler("Data given without a model: open a model first.", "")
        else:
            _open_data_after_model(session, data)
    return session, window


def _open_data_after_model(session, data) -> None:
    """The data is shaped to the model, so it is read once the model has arrived."""

    def on_network_changed():
        session.network_changed.disconnect(on_network_changed)
        session.open_data(data)

    session.network_changed.connect(on_network_changed)


def run_app(model=None, data=None, demo: bool = True) -> int:
    from PyQt6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setOrganizationName(ORGANIZATION)
    app.setApplicationName(APPLICATION)
    app.setApplicationDisplayName("SNN Workbench")
    session, window = build_window(model, data, demo)
    window.show()
    try:
        return int(app.exec())
    finally:
        session.shutdown()
