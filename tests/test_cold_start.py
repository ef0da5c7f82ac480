"""Opening the saved demo network and stepping it never imports TensorFlow or Keras (behaviour,
not timing: the time is measured by ``python -m benchmarks --only coldstart``)."""

import json
import subprocess
import sys
from pathlib import Path

CHILD = """
import json, sys
import numpy as np
from workbench.models.loading import DEMO_NETWORK, open_model
from workbench.engine.config import SimConfig
from workbench.engine.simulator import Simulator
net = open_model(DEMO_NETWORK)
sim = Simulator(net, SimConfig(), x=np.full((1, *net.input_shape), 0.5, np.float32))
sim.step()
print(json.dumps({"t": sim.t, "heavy": sorted(m for m in ("tensorflow", "keras") if m in sys.modules)}))
"""


def test_saved_network_steps_without_tensorflow():
    out = subprocess.run([sys.executable, "-c", CHILD], cwd=Path(__file__).resolve().parent.parent,
                         capture_output=True, text=True, check=True, timeout=300)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result == {"t": 1, "heavy": []}
