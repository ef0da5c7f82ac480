"""Reading Keras files (``.keras``, legacy ``.h5``) into the framework-free graph.

``graph`` walks a loaded Keras model into ``RawNode`` records (the only module here that touches
Keras objects), ``convert`` translates each record into a ``Layer`` or a ``Pending`` marker and
``importer`` runs the whole path (safe-mode load, extract, translate, ``models.graph.fold``).
The only package that imports TensorFlow/Keras, and only inside functions (an import costs ~4 s).
May import: ``workbench.models`` and the shared base.
"""

from __future__ import annotations

import os
import sys


def import_keras():
    """``import keras`` without TensorFlow's start-up noise on stderr.

    TensorFlow prints 6-7 lines while it loads (absl's "All log messages before
    absl::InitializeLog()", oneDNN and CUDA-driver notices, ``E0000 ... failed call to cuInit``),
    which a user reads as a failure. Unless the user set ``TF_CPP_MIN_LOG_LEVEL`` (``--debug``
    sets it to 0), the C++ log level goes to 3 and the process's stderr is sent to /dev/null
    while TensorFlow is first imported (the early lines ignore the log level)."""
    if "keras" in sys.modules:
        return sys.modules["keras"]
    if "TF_CPP_MIN_LOG_LEVEL" in os.environ:
        import keras

        return keras
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):  # no real stderr (embedded, pytest capture)
        import keras

        return keras
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        os.close(devnull)
        import keras
    finally:
        os.dup2(saved, 2)
        os.close(saved)
    return keras
