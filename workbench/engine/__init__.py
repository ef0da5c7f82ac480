"""How a network RUNS: neuron models, numba kernels, the simulator, traces and analysis.

Never imports Qt or TensorFlow. numba's on-disk cache must be writable; where the installed
package folder is read-only we point it at the user's cache folder before numba is imported.
"""

import os
from pathlib import Path

if "NUMBA_CACHE_DIR" not in os.environ and not os.access(Path(__file__).parent, os.W_OK):
    os.environ["NUMBA_CACHE_DIR"] = str(Path.home() / ".cache" / "snn-workbench" / "numba")
