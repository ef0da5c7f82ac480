"""The bundled demo: accurate as an ANN, within 2 points as an IF SNN, and the two shipped
files (.keras and saved network) hold the same network."""

import numpy as np

from workbench.engine.config import SimConfig
from workbench.engine.evaluate import evaluate
from workbench.models import loading
from workbench.models.forward import predict
from workbench.models.prepare import prepare


def test_demo_ann_and_if_snn_accuracy():
    prep = prepare(None, demo=True)
    x, y = prep.samples.x, prep.samples.y
    assert x.shape == (360, 8, 8, 1) and y.shape == (360,)
    ann_acc = float((predict(prep.original, x).argmax(1) == y).mean())
    assert ann_acc >= 0.95
    result = evaluate(prep.network, SimConfig(steps=100, batch=120), x, y)
    assert result.samples == 360 and result.completed
    assert abs(result.ann_accuracy - ann_acc) < 1e-9  # normalization keeps the ANN's decisions
    assert result.snn_accuracy[-1] >= ann_acc - 0.02


def test_shipped_network_equals_the_keras_import():
    from workbench.models.keras_import import load_keras

    shipped = loading.open_model(loading.DEMO_NETWORK)
    fresh = load_keras(loading.DEMO_KERAS)
    assert shipped.fingerprint() == fresh.fingerprint()
    x = np.load(loading.DEMO_TEST, allow_pickle=False)["x"][:16]
    assert np.array_equal(predict(shipped, x), predict(fresh, x))
