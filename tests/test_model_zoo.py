"""The stock keras.applications models of issue 14: each is built once (weights=None, smallest
allowed input), imported, verified layer by layer against Keras (absolute and relative
tolerance) and stepped a few timesteps at batch 1; the families with no spiking equivalent are
refused with every layer named and the reason. docs/models.md has the table for every model."""

from __future__ import annotations

import numpy as np
import pytest

from workbench.engine.config import SimConfig
from workbench.engine.simulator import Simulator
from workbench.errors import UnsupportedLayerError
from workbench.models import network as nw
from workbench.models.normalize import normalize
from workbench.models.verify import verify_against_keras

pytestmark = pytest.mark.slow

IMPORTED = ["VGG16", "ResNet50", "MobileNetV2", "InceptionV3", "MobileNet", "ResNet50V2", "DenseNet121",
            "Xception", "NASNetMobile"]


def _structure(name: str, net: nw.Network) -> None:
    """What each model needed from issue 14, checked on the imported graph."""
    kinds = {layer.name: layer.kind for layer in net.layers}
    if name == "MobileNet":  # GlobalAveragePooling2D(keepdims=True): a pool over the whole 1x1 image
        pool = net["global_average_pooling2d"] if "global_average_pooling2d" in kinds else \
            next(l for l in net.layers if l.source_type == "GlobalAveragePooling2D")
        assert pool.kind == nw.AVG_POOL2D and pool.output_shape[:2] == (1, 1)
        assert max(l.activation_params.get("max_value", 0) for l in net.layers) == 6.0
    if name == "ResNet50V2":  # pre-activation BN after a join: a per-channel affine layer
        bn = net["conv3_block1_preact_bn"]
        assert bn.kind == nw.DEPTHWISE_CONV2D and bn.weights.shape[:2] == (1, 1) and bn.config["affine"]
        assert bn.activation == "relu" and bn.config["folded"] == ["conv3_block1_preact_relu"]
        assert kinds[bn.inbound[0]] == nw.ADD
    if name == "DenseNet121":  # BN after Concatenate
        bn = net["conv2_block2_0_bn"]
        assert bn.config["affine"] and kinds[bn.inbound[0]] == nw.CONCATENATE
    if name in ("Xception", "NASNetMobile"):  # SeparableConv2D: depthwise + pointwise, BN folded in
        sep = next(l for l in net.layers if l.source_type == "SeparableConv2D" and l.kind == nw.CONV2D)
        assert net[sep.inbound[0]].kind == nw.DEPTHWISE_CONV2D and sep.inbound[0] == f"{sep.name}/depthwise"
        assert sep.weights.shape[:2] == (1, 1) and any("bn" in f for f in sep.config.get("folded", []))
    if name == "NASNetMobile":  # Cropping2D as a shifting depthwise kernel
        crop = next(l for l in net.layers if l.source_type == "Cropping2D")
        assert crop.weights.sum() == crop.weights.shape[2] and crop.weights[1, 1].all()
    affine = [l for l in net.layers if l.config.get("affine")]
    if name in ("VGG16", "ResNet50", "MobileNetV2", "InceptionV3", "MobileNet", "Xception"):
        assert not affine  # every BN of these folds into the convolution before it


@pytest.mark.parametrize("name", IMPORTED)
def test_stock_model_imports_verifies_and_steps(name):
    from workbench.models.keras import zoo
    from workbench.models.keras.importer import network_from_keras

    model = zoo.build(name)  # built once, used by every check below
    net = network_from_keras(model, name)
    x = zoo.sample(model)
    checks = verify_against_keras(net, model, x)
    bad = [(c.name, c.max_abs_diff, c.max_abs_ref) for c in checks if not c.ok]
    assert not bad
    compared = [c for c in checks if c.max_abs_diff is not None]
    assert len(compared) >= len(net.layers) - sum(l.name.endswith(("/depthwise", "/pool")) for l in net.layers)
    assert all(c.max_abs_ref > 0 for c in compared if c.kind != nw.INPUT)  # the relative bound means something
    _structure(name, net)
    assert net.output_layer.output_shape == (1000,) and net.output_layer.activation == "softmax"

    snn = normalize(net, x, 99.9)
    sim = Simulator(snn, SimConfig(batch=1), x[:1])
    sim.run(3)
    counts = sim.output_counts()
    assert counts.shape == (1, 1000) and np.isfinite(counts).all()
    first = sim.layer(snn.neuron_layers[0].name)
    # the input reached the first neuron layer within 3 steps (signed: a linear conv feeding max
    # pooling runs signed IF, a layer carrying current counts its signed charge)
    assert np.abs(first.counts).sum() > 0


@pytest.mark.parametrize("name, layer, what, why", [
    ("EfficientNetB0", "block1a_se_excite", "Multiply", "not multiplied by each other"),
    ("MobileNetV3Small", "expanded_conv_squeeze_excite_mul", "Multiply", "not multiplied by each other"),
    ("ConvNeXtTiny", "convnext_tiny_stage_0_block_0_layernorm", "LayerNormalization", "own mean and variance"),
])
def test_families_without_a_spiking_equivalent_are_refused_with_the_reason(name, layer, what, why):
    from workbench.models.keras import zoo
    from workbench.models.keras.importer import network_from_keras

    with pytest.raises(UnsupportedLayerError) as info:
        network_from_keras(zoo.build(name), name)
    listed = dict(info.value.layers)
    assert listed[layer].startswith(what)
    text = str(info.value)
    assert why in text and f"'{layer}' ({what}" in text
    acts = {"EfficientNetB0": "silu", "MobileNetV3Small": "hard_silu", "ConvNeXtTiny": "gelu"}[name]
    assert any(r.startswith(acts) or f" {acts}," in r or r.split(":")[0].endswith(acts) for r in info.value.reasons)
    assert zoo.expected_refusal(name)
