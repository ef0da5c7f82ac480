"""Small ONNX graphs built with onnx.helper for the ONNX importer tests (no PyTorch involved)."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


class G:
    """A graph under construction: ``G((1, 3, 8, 8))`` then ``op(...)`` calls, then ``model()``."""

    def __init__(self, in_shape, seed=0, opset=13, batch="N"):
        self.rng = np.random.default_rng(seed)
        self.in_shape = list(in_shape)
        self.batch = batch
        self.opset = opset
        self.nodes, self.inits, self.n = [], [], 0

    def const(self, arr, dtype=np.float32) -> str:
        name = f"c{len(self.inits)}"
        self.inits.append(numpy_helper.from_array(np.asarray(arr, dtype), name))
        return name

    def w(self, *shape, scale=0.5) -> str:
        return self.const(self.rng.normal(0, scale, shape))

    def op(self, op_type, inputs, name=None, n_out=1, **attrs) -> str:
        self.n += 1
        name = name or f"{op_type.lower()}{self.n}"
        outs = [f"{name}_out{i}" for i in range(n_out)]
        self.nodes.append(helper.make_node(op_type, inputs, outs, name=name, **attrs))
        return outs[0]

    def model(self, out: str) -> onnx.ModelProto:
        x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [self.batch, *self.in_shape[1:]])
        y = helper.make_tensor_value_info(out, TensorProto.FLOAT, None)
        graph = helper.make_graph(self.nodes, "g", [x], [y], self.inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", self.opset)])
        model.ir_version = 8
        return model  # the output's shape is left open: onnxruntime, not onnx.checker, is the judge


def conv(g: G, x, cin, cout, k=3, bias=True, **attrs):
    ins = [x, g.w(cout, cin // attrs.get("group", 1), k, k)] + ([g.w(cout, scale=0.1)] if bias else [])
    return g.op("Conv", ins, kernel_shape=[k, k], **attrs)


def bn(g: G, x, c):
    return g.op("BatchNormalization", [x, g.const(g.rng.uniform(0.5, 1.5, c)), g.const(g.rng.normal(0, 0.1, c)),
                                       g.const(g.rng.normal(0, 0.1, c)), g.const(g.rng.uniform(0.5, 2, c))],
                epsilon=1e-3)


def view_flatten(g: G, x):
    """The Shape/Gather/Unsqueeze/Concat chain torch.onnx.export writes for x.view(x.size(0), -1)."""
    s = g.op("Shape", [x])
    b = g.op("Gather", [s, g.const(0, np.int64)], axis=0)
    u = g.op("Unsqueeze", [b, g.const([0], np.int64)])
    t = g.op("Concat", [u, g.const([-1], np.int64)], axis=0)
    return g.op("Reshape", [x, t])


def digits_onnx(network) -> onnx.ModelProto:
    """The demo's digits CNN (a saved Network, channels-last) written by hand as PyTorch would
    export it: NCHW input, OIHW kernels, torch.flatten in C,H,W order, Dropout, Gemm, Softmax."""
    g = G((1, *(int(d) for d in np.roll(network.input_shape, 1))), opset=13)
    x, prev = "x", None
    for layer in network.layers[1:]:
        if layer.kind == "conv2d":
            kh, kw = layer.weights.shape[:2]
            pads = [kh // 2, kw // 2] * 2 if layer.config["padding"] == "same" else [0, 0, 0, 0]
            w = g.const(layer.weights.transpose(3, 2, 0, 1))
            x = g.op("Conv", [x, w, g.const(layer.bias)], name=layer.name, kernel_shape=[kh, kw], pads=pads,
                     strides=layer.config["strides"])
        elif layer.kind == "avg_pool2d":
            x = g.op("AveragePool", [x], name=layer.name, kernel_shape=layer.config["pool_size"],
                     strides=layer.config["strides"])
        elif layer.kind == "flatten":
            x = g.op("Flatten", [x], name=layer.name, axis=1)
            h, w_, c = prev.output_shape
            chw_rows = np.arange(h * w_ * c).reshape(h, w_, c).transpose(2, 0, 1).ravel()
        elif layer.kind == "dense":
            w = layer.weights
            if prev.kind == "flatten":  # rows in ONNX's C,H,W flatten order
                w = w[chw_rows]
            x = g.op("Gemm", [x, g.const(w.T.copy()), g.const(layer.bias)], name=layer.name, transB=1)
        else:
            raise AssertionError(layer.kind)
        if layer.activation == "relu":
            x = g.op("Relu", [x], name=f"{layer.name}_relu")
        elif layer.activation == "softmax":
            x = g.op("Softmax", [x], name=f"{layer.name}_softmax", axis=-1)
        if layer.config.get("removed"):
            x = g.op("Dropout", [x], name=layer.config["removed"][0])
        prev = layer
    return g.model(x)
