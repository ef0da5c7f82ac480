"""Write the three small ONNX models in resources/onnx/ (LeNet-style, ResNet-style, MobileNet-style).

How they were made, honestly: PyTorch is not installed on the machine these were made on (and is
not a dependency of the workbench), so they were NOT written by ``torch.onnx.export``. This
script builds them with ``onnx.helper`` laid out the way ``torch.onnx.export`` lays out the same
``nn.Module``s: tensor and node names as PyTorch writes them (``/conv1/Conv``, ``conv1.weight``),
a symbolic batch axis ``batch_size``, Conv weights OIHW with explicit ``pads``, BatchNormalization
as its own node after a bias-free Conv (``torch.onnx.export(..., training=TrainingMode.EVAL,
do_constant_folding=False)``), Gemm with ``transB=1``, ``x.view(x.size(0), -1)`` as the
Shape/Gather/Unsqueeze/Concat/Reshape chain, ``torch.flatten(x, 1)`` as Flatten, ReLU6 as Clip
with min/max as inputs (opset 11+), Dropout kept in the graph. Weights are random (seeded), so
the files are small and reproducible: running this script again writes identical bytes (a test
checks it).

With PyTorch installed, ``--torch`` exports the equivalent ``nn.Module``s (random weights) with
``torch.onnx.export`` instead, as ``torch_<name>.onnx`` next to the others. That path could not be
run where the committed files were made (no PyTorch there); nothing in the workbench depends on
how a file was made.

    python scripts/make_onnx_examples.py [OUT_DIR]           (default: resources/onnx)
    python scripts/make_onnx_examples.py --torch [OUT_DIR]   (needs PyTorch; not a dependency)
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OUT = Path(__file__).resolve().parent.parent / "resources" / "onnx"


class Builder:
    """Collects nodes and initializers with PyTorch-style names."""

    def __init__(self, opset: int):
        self.opset = opset
        self.rng = np.random.default_rng(opset)
        self.nodes, self.inits = [], []

    def init(self, name: str, arr) -> str:
        self.inits.append(numpy_helper.from_array(np.asarray(arr), name))
        return name

    def node(self, op: str, scope: str, inputs: list, n_out: int = 1, tag: str = "", **attrs) -> str:
        tag = tag or op
        outs = [f"{scope}/{tag}_output_{i}" for i in range(n_out)]
        self.nodes.append(helper.make_node(op, inputs, outs, name=f"{scope}/{tag}", **attrs))
        return outs[0]

    def conv(self, scope, x, cin, cout, k, stride=1, pad=0, groups=1, bias=True):
        fan_in = cin // groups * k * k
        w = self.rng.normal(0, np.sqrt(2 / fan_in), (cout, cin // groups, k, k)).astype(np.float32)
        ins = [x, self.init(f"{scope[1:].replace('/', '.')}.weight", w)]
        if bias:
            ins.append(self.init(f"{scope[1:].replace('/', '.')}.bias", self.rng.normal(0, 0.05, cout).astype(np.float32)))
        return self.node("Conv", scope, ins, dilations=[1, 1], group=groups, kernel_shape=[k, k],
                         pads=[pad] * 4, strides=[stride, stride])

    def bn(self, scope, x, c):
        p = scope[1:].replace("/", ".")
        ins = [x, self.init(f"{p}.weight", self.rng.uniform(0.5, 1.5, c).astype(np.float32)),
               self.init(f"{p}.bias", self.rng.normal(0, 0.1, c).astype(np.float32)),
               self.init(f"{p}.running_mean", self.rng.normal(0, 0.1, c).astype(np.float32)),
               self.init(f"{p}.running_var", self.rng.uniform(0.5, 2.0, c).astype(np.float32))]
        return self.node("BatchNormalization", scope, ins, epsilon=1e-5, momentum=0.9)

    def gemm(self, scope, x, cin, cout):
        p = scope[1:].replace("/", ".")
        w = self.rng.normal(0, np.sqrt(2 / cin), (cout, cin)).astype(np.float32)
        return self.node("Gemm", scope, [x, self.init(f"{p}.weight", w),
                                         self.init(f"{p}.bias", self.rng.normal(0, 0.05, cout).astype(np.float32))],
                         alpha=1.0, beta=1.0, transB=1)

    def relu6(self, scope, x):
        lo = self.node("Constant", scope, tag="Constant", inputs=[], value=helper.make_tensor("v", TensorProto.FLOAT, [], [0.0]))
        hi = self.node("Constant", scope, tag="Constant_1", inputs=[], value=helper.make_tensor("v", TensorProto.FLOAT, [], [6.0]))
        return self.node("Clip", scope, [x, lo, hi])

    def view_flatten(self, scope, x):
        """``x.view(x.size(0), -1)`` as torch.onnx.export writes it."""
        shape = self.node("Shape", scope, tag="Shape", inputs=[x])
        zero = self.node("Constant", scope, tag="Constant", inputs=[], value=helper.make_tensor("v", TensorProto.INT64, [], [0]))
        batch = self.node("Gather", scope, tag="Gather", inputs=[shape, zero], axis=0)
        if self.opset < 13:  # Unsqueeze took its axes as an attribute before opset 13
            unsq = self.node("Unsqueeze", scope, tag="Unsqueeze", inputs=[batch], axes=[0])
        else:
            axes = self.node("Constant", scope, tag="Constant_1", inputs=[],
                             value=helper.make_tensor("v", TensorProto.INT64, [1], [0]))
            unsq = self.node("Unsqueeze", scope, tag="Unsqueeze", inputs=[batch, axes])
        minus = self.node("Constant", scope, tag="Constant_2", inputs=[], value=helper.make_tensor("v", TensorProto.INT64, [1], [-1]))
        target = self.node("Concat", scope, tag="Concat", inputs=[unsq, minus], axis=0)
        return self.node("Reshape", scope, tag="Reshape", inputs=[x, target])

    def model(self, name: str, x_shape: list, out: str, n_out: int, opset: int) -> onnx.ModelProto:
        x = helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch_size", *x_shape])
        self.nodes.append(helper.make_node("Identity", [out], ["output"], name="/output/Identity"))
        y = helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch_size", n_out])
        graph = helper.make_graph(self.nodes, name, [x], [y], self.inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                                  producer_name="pytorch-style (onnx.helper)", producer_version="1.0")
        model.ir_version = 8
        onnx.checker.check_model(model, full_check=True)
        return model


def lenet() -> onnx.ModelProto:
    """LeNet-5 style, 1x28x28: conv(pad 2)-relu-maxpool, conv-relu-maxpool, view, 3 Linear. Opset 11."""
    b = Builder(11)
    x = b.node("Relu", "/relu1", [b.conv("/conv1", "input", 1, 6, 5, pad=2)])
    x = b.node("MaxPool", "/pool1", [x], kernel_shape=[2, 2], pads=[0, 0, 0, 0], strides=[2, 2])
    x = b.node("Relu", "/relu2", [b.conv("/conv2", x, 6, 16, 5)])
    x = b.node("MaxPool", "/pool2", [x], kernel_shape=[2, 2], pads=[0, 0, 0, 0], strides=[2, 2])
    x = b.view_flatten("", x)
    x = b.node("Relu", "/relu3", [b.gemm("/fc1", x, 16 * 5 * 5, 120)])
    x = b.node("Relu", "/relu4", [b.gemm("/fc2", x, 120, 84)])
    x = b.gemm("/fc3", x, 84, 10)
    return b.model("lenet", [1, 28, 28], x, 10, 11)


def resnet_block() -> onnx.ModelProto:
    """A small ResNet, 3x32x32: stem conv-BN-relu, a basic block (identity shortcut), a block
    with stride 2 and a 1x1 conv-BN shortcut, global average pool, flatten, Linear. Opset 13."""
    b = Builder(13)
    x = b.node("Relu", "/relu", [b.bn("/bn1", b.conv("/conv1", "input", 3, 16, 3, pad=1, bias=False), 16)])

    def block(scope, x, cin, cout, stride):
        y = b.bn(f"{scope}/bn1", b.conv(f"{scope}/conv1", x, cin, cout, 3, stride, 1, bias=False), cout)
        y = b.node("Relu", f"{scope}/relu", [y])
        y = b.bn(f"{scope}/bn2", b.conv(f"{scope}/conv2", y, cout, cout, 3, 1, 1, bias=False), cout)
        if stride != 1 or cin != cout:
            x = b.bn(f"{scope}/downsample/1", b.conv(f"{scope}/downsample/0", x, cin, cout, 1, stride, 0, bias=False), cout)
        return b.node("Relu", f"{scope}/relu_1", [b.node("Add", f"{scope}/Add", [y, x])])

    x = block("/layer1/layer1.0", x, 16, 16, 1)
    x = block("/layer2/layer2.0", x, 16, 32, 2)
    x = b.node("GlobalAveragePool", "/avgpool", [x])
    x = b.node("Flatten", "/Flatten", [x], axis=1)
    x = b.gemm("/fc", x, 32, 10)
    return b.model("resnet_block", [3, 32, 32], x, 10, 13)


def mobilenet() -> onnx.ModelProto:
    """MobileNet-v2 style, 3x32x32: stem conv(s2)-BN-ReLU6, depthwise-separable blocks (depthwise
    3x3 conv with group = channels, BN, ReLU6, pointwise 1x1, BN, ReLU6), global average pool,
    flatten, dropout, Linear. Opset 17."""
    b = Builder(17)
    x = b.relu6("/features/0/2", b.bn("/features/0/1", b.conv("/features/0/0", "input", 3, 16, 3, 2, 1, bias=False), 16))
    c = 16
    for i, (cout, stride) in enumerate([(24, 1), (32, 2), (32, 1)], 1):
        s = f"/features/{i}/conv"
        x = b.relu6(f"{s}/0/2", b.bn(f"{s}/0/1", b.conv(f"{s}/0/0", x, c, c, 3, stride, 1, groups=c, bias=False), c))
        x = b.relu6(f"{s}/1/2", b.bn(f"{s}/1/1", b.conv(f"{s}/1/0", x, c, cout, 1, bias=False), cout))
        c = cout
    x = b.node("GlobalAveragePool", "/GlobalAveragePool", [x])
    x = b.node("Flatten", "/Flatten", [x], axis=1)
    x = b.node("Dropout", "/classifier/0", [x])
    x = b.gemm("/classifier/1", x, c, 10)
    return b.model("mobilenet", [3, 32, 32], x, 10, 17)


MODELS = {"lenet.onnx": lenet, "resnet_block.onnx": resnet_block, "mobilenet.onnx": mobilenet}


def torch_export(out: Path) -> None:  # pragma: no cover - needs PyTorch, which is not installed here
    """The same three architectures as real ``nn.Module``s, exported by ``torch.onnx.export``."""
    import torch
    from torch import nn

    class LeNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1, self.conv2 = nn.Conv2d(1, 6, 5, padding=2), nn.Conv2d(6, 16, 5)
            self.pool1, self.pool2 = nn.MaxPool2d(2), nn.MaxPool2d(2)
            self.fc1, self.fc2, self.fc3 = nn.Linear(400, 120), nn.Linear(120, 84), nn.Linear(84, 10)

        def forward(self, x):
            x = self.pool1(torch.relu(self.conv1(x)))
            x = self.pool2(torch.relu(self.conv2(x)))
            x = x.view(x.size(0), -1)
            return self.fc3(torch.relu(self.fc2(torch.relu(self.fc1(x)))))

    class Block(nn.Module):
        def __init__(self, cin, cout, stride):
            super().__init__()
            self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(cout)
            self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(cout)
            self.downsample = (nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
                               if stride != 1 or cin != cout else nn.Identity())

        def forward(self, x):
            y = self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))
            return torch.relu(y + self.downsample(x))

    class ResNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1, self.bn1 = nn.Conv2d(3, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16)
            self.layer1, self.layer2 = nn.Sequential(Block(16, 16, 1)), nn.Sequential(Block(16, 32, 2))
            self.avgpool, self.fc = nn.AdaptiveAvgPool2d(1), nn.Linear(32, 10)

        def forward(self, x):
            x = self.layer2(self.layer1(torch.relu(self.bn1(self.conv1(x)))))
            return self.fc(torch.flatten(self.avgpool(x), 1))

    def dw_block(cin, cout, stride):
        return nn.Sequential(
            nn.Sequential(nn.Conv2d(cin, cin, 3, stride, 1, groups=cin, bias=False), nn.BatchNorm2d(cin), nn.ReLU6()),
            nn.Sequential(nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU6()))

    class MobileNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.features = nn.Sequential(
                nn.Sequential(nn.Conv2d(3, 16, 3, 2, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU6()),
                dw_block(16, 24, 1), dw_block(24, 32, 2), dw_block(32, 32, 1))
            self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(32, 10))

        def forward(self, x):
            return self.classifier(torch.flatten(nn.functional.adaptive_avg_pool2d(self.features(x), 1), 1))

    torch.manual_seed(0)
    for name, module, shape, opset in (("lenet", LeNet(), (1, 1, 28, 28), 11),
                                       ("resnet_block", ResNet(), (1, 3, 32, 32), 13),
                                       ("mobilenet", MobileNet(), (1, 3, 32, 32), 17)):
        module.eval()
        path = out / f"torch_{name}.onnx"
        torch.onnx.export(module, torch.rand(shape), str(path), opset_version=opset, input_names=["input"],
                          output_names=["output"], dynamic_axes={"input": {0: "batch_size"}, "output": {0: "batch_size"}},
                          do_constant_folding=False)
        print(f"{path}: {path.stat().st_size / 1024:.1f} KB (torch.onnx.export)")


def main(out: Path = OUT) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for name, make in MODELS.items():
        data = make().SerializeToString()
        (out / name).write_bytes(data)
        print(f"{out / name}: {len(data) / 1024:.1f} KB")


if __name__ == "__main__":
    args = sys.argv[1:]
    use_torch = "--torch" in args
    args = [a for a in args if a != "--torch"]
    target = Path(args[0]) if args else OUT
    if use_torch:
        target.mkdir(parents=True, exist_ok=True)
        torch_export(target)
    else:
        main(target)
