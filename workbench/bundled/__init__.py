"""Files the program reads at run time, shipped inside the package (a wheel holds them too).

``demo/``: the bundled digits CNN (``.keras`` and saved network), its test and calibration data.
``c_reference/``: the plain C99 IF simulator another implementation is checked against.
Read through ``DEMO_DIR`` / ``C_REFERENCE_DIR`` (``importlib.resources``), never through paths
relative to the source tree: an installed package has no ``resources/`` folder beside it.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

BUNDLED = Path(str(files(__name__)))
DEMO_DIR = BUNDLED / "demo"
C_REFERENCE_DIR = BUNDLED / "c_reference"
