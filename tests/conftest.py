"""Test-wide set-up: Qt without a display, numba's cache in a writable place."""

import os
import tempfile

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("NUMBA_CACHE_DIR", os.path.join(tempfile.gettempdir(), "snn-workbench-numba-cache"))
