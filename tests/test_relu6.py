"""ReLU6 (``max_value``): normalization puts the cap where an IF neuron saturates, the ANN
reference clips there, and diagnosis does not call that clip a threshold problem."""

import eval_nets as E
import numpy as np

from workbench.analysis.diagnosis import diagnose, format_report
from workbench.engine.config import SimConfig
from workbench.models import network as nw
from workbench.models.forward import forward
from workbench.models.normalize import normalize


def capped(cap: float = 6.0) -> nw.Network:
    """The eval MLP with fc2 scaled up so a third of its values pass ``cap``, and capped there."""
    net = E.mlp(0)
    fc2 = net["fc2"]
    fc2.weights, fc2.bias = fc2.weights * 20, fc2.bias * 20
    fc2.activation_params = {"max_value": cap}
    return net


def test_capped_layer_takes_the_cap_as_lambda():
    net = capped()
    x, _ = E.data(net)
    raw = forward(net, x)["fc2"]
    assert (raw == 6.0).mean() > 0.2  # the sample reaches the cap
    normalized = normalize(net, x, 99.9)
    assert normalized.scales["fc2"] == 6.0
    assert normalized["fc2"].activation_params["max_value"] == 1.0
    np.testing.assert_allclose(forward(normalized, x)["fc2"], raw / 6.0, rtol=1e-6, atol=1e-7)
    # a cap the sample never reaches leaves the percentile as lambda, like any ReLU
    loose = normalize(capped(1e6), x, 99.9)
    assert 6.0 < loose.scales["fc2"] < 1e6
    assert loose.scales["fc2"] == normalize(_uncapped(), x, 99.9).scales["fc2"]


def _uncapped() -> nw.Network:
    net = capped()
    net["fc2"].activation_params = {}
    return net


def test_a_correctly_clipped_relu6_layer_is_not_flagged_saturated():
    net = capped()
    x, _ = E.data(net)
    normalized = normalize(net, x, 99.9)
    y = forward(normalized, x)["out"].argmax(1)
    d = diagnose(normalized, SimConfig(batch=48), x, y, steps=100)
    assert not [f for f in d.findings if f.layer == "fc2" and f.cause == "saturated"], format_report(d)
    # the same layer without its cap: the ANN asks for more than a neuron gives, and is flagged
    over = normalize(_uncapped(), x, 99.9)
    over["fc2"].weights, over["fc2"].bias = over["fc2"].weights * 3, over["fc2"].bias * 3
    d = diagnose(over, SimConfig(batch=48), x, y, steps=100)
    assert [f.layer for f in d.findings if f.cause == "saturated"][:1] == ["fc2"], format_report(d)
