"""Lower checked ONNX nodes into ``Layer`` records and ``Pending`` markers, channels-last.

ONNX is channels-first (NCHW data, OIHW weights); the workbench is channels-last. Every data
tensor carries how our array relates to ONNX's: ``axes`` (ours = onnx.transpose(axes), batch
first: ``(0, 2, 3, 1)`` for a feature map) and, for a flat vector made by flattening a feature
map, ``perm`` (ours[:, i] = onnx[:, perm[i]]). A Flatten thus costs nothing: the following
Gemm/MatMul gets its weight rows permuted (``W[perm]``) instead of a transpose layer, and a
Transpose that only re-labels the layout (tf2onnx's NHWC->NCHW at the input) is no layer at all.

Constant sub-graphs (Shape/Gather/Unsqueeze/Concat before a Reshape, Constant, Cast, ...) are
evaluated here with numpy; the batch size they see is 1 and the first entry of a Reshape target
is always the batch. Explicit pads become TF-style ``'same'`` when they equal it, else a
``zero_pad2d`` layer before a ``'valid'`` window; dilated kernels are expanded with zeros.
Settings we cannot simulate exactly become ``unsupported`` markers naming the op and node.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from workbench.models import network as nw
from workbench.models.forward import same_padding
from workbench.models.graph.pending import Pending
from workbench.models.onnx.reader import Parsed, node_label, to_array

NHWC = (0, 2, 3, 1)
NEEDS_INPUT_SCALES = frozenset({nw.AVG_POOL2D, nw.GLOBAL_AVG_POOL2D, nw.ACTIVATION, nw.ADD})
SUPPORTED_OPS = (
    "Conv", "Gemm", "MatMul", "Add", "Relu", "Clip", "BatchNormalization", "MaxPool", "AveragePool",
    "GlobalAveragePool", "GlobalMaxPool", "Flatten", "Reshape", "Squeeze", "Concat", "Pad",
    "Identity", "Dropout", "Transpose", "Softmax", "Sigmoid", "Tanh",
    # evaluated at import when every input is a constant (the shape chains exporters emit)
    "Constant", "Shape", "Gather", "Unsqueeze", "Cast", "Slice", "Mul", "Sub", "Div",
)


class _Refuse(Exception):
    """Raised in a node handler: the message says which setting is not simulated."""


@dataclass
class T:
    """A data tensor: the item that makes it, its ONNX shape (batch 1) and our layout of it."""

    item: str
    shape: tuple
    axes: tuple
    perm: np.ndarray | None = None
    nonneg: bool = False

    @property
    def ours(self) -> tuple:
        return tuple(self.shape[a] for a in self.axes)[1:]

    def to_ours(self, ref: np.ndarray) -> np.ndarray:
        """ONNX's array of this tensor (any batch) in our layout."""
        out = np.transpose(ref, self.axes)
        return out[:, self.perm] if self.perm is not None else out


@dataclass
class Lowered:
    items: list
    points: dict  # item name -> (onnx tensor name, T): where ONNX computes the same values
    input_tensor: T
    output_item: str


def _check(cond, what: str) -> None:
    if not cond:
        raise _Refuse(what)


def _attrs(node) -> dict:
    from onnx import helper

    out = {}
    for a in node.attribute:
        v = helper.get_attribute_value(a)
        out[a.name] = v.decode() if isinstance(v, bytes) else v
    return out


def _flat_perm(t: T) -> np.ndarray | None:
    """For a flatten of ``t``: which ONNX flat index each of our flat values holds."""
    if t.perm is not None:
        return t.perm
    idx = np.arange(math.prod(t.shape)).reshape(t.shape).transpose(t.axes).ravel()
    return None if np.array_equal(idx, np.arange(idx.size)) else idx


def _window_pads(size: int, k: int, s: int, begin: int, end: int, ceil: bool) -> tuple[int, int, int]:
    """ONNX's output size and the (begin, end) padding a 'valid' window needs to give it."""
    span = size + begin + end - k
    _check(span >= 0, f"kernel {k} larger than the padded input {size + begin + end}")
    out = (-(-span // s) if ceil else span // s) + 1
    if ceil and (out - 1) * s >= size + begin:  # the last window may not start in the end padding
        out -= 1
    return out, begin, max(end, (out - 1) * s + k - size - begin)


class Lowering:
    """One pass over the nodes; ``run`` returns the items in topological order."""

    def __init__(self, parsed: Parsed):
        self.p = parsed
        self.consts = dict(parsed.consts)
        self.tensors: dict[str, T] = {}
        self.items: list = []
        self.by_name: dict = {}
        self.points: dict = {}
        self.uses: dict[str, int] = {}
        for node in parsed.nodes:
            for x in node.input:
                self.uses[x] = self.uses.get(x, 0) + 1
        self.uses[parsed.output_name] = self.uses.get(parsed.output_name, 0) + 1

    # ---- bookkeeping ---------------------------------------------------------------------
    def _unique(self, name: str) -> str:
        """A fresh item name; PyTorch's scope slashes become dots (names also key HDF5/NIR groups)."""
        if isinstance(name, bytes):  # protobuf hands back bytes for a name that is not UTF-8
            name = name.decode("utf-8", "replace")
        name = name.strip("/").replace("/", ".")
        base, k = name or "node", 1
        while name in self.by_name or not name:
            name, k = f"{base}_{k}", k + 1
        return name

    def _add(self, item, tensor_name: str | None, t: T | None, op: str = ""):
        self.items.append(item)
        self.by_name[item.name] = item
        if isinstance(item, nw.Layer):
            item.source_type = op
            if item.kind in NEEDS_INPUT_SCALES:
                item.config["input_scales"] = [1.0] * len(item.inbound)
        if tensor_name is not None:
            self.points[item.name] = (tensor_name, t)
        return item

    def _layer(self, node, name, kind, t_in: list[T], out_shape: tuple, axes: tuple, *, weights=None,
               bias=None, activation="linear", params=None, config=None, perm=None, nonneg=False):
        t = T(name, out_shape, axes, perm, nonneg)
        layer = nw.Layer(name, kind, t.ours, tuple(x.item for x in t_in), weights, bias, activation,
                         params or {}, config or {})
        self._add(layer, node.output[0], t, node.op_type)
        self.tensors[node.output[0]] = t
        return t

    def _data(self, node, i: int) -> T:
        x = node.input[i] if i < len(node.input) else ""
        if x in self.tensors:
            return self.tensors[x]
        if x in self.consts:
            raise _Refuse(f"a constant as input {i} (only data flows through this op here)")
        raise _Refuse(f"input {i} '{x}' is not available")

    def _const(self, node, i: int, default=None):
        x = node.input[i] if i < len(node.input) else ""
        if not x:
            return default
        if x not in self.consts:
            raise _Refuse(f"input {i} '{x}' is not a constant")
        return self.consts[x]

    @staticmethod
    def _map(t: T) -> T:
        _check(len(t.shape) == 4 and t.axes == NHWC and t.perm is None,
               f"an input of shape {list(t.shape)} that is not an NCHW feature map")
        return t

    # ---- the pass ------------------------------------------------------------------------
    def run(self) -> Lowered:
        p = self.p
        axes = NHWC if len(p.input_shape) == 4 else (0, 1)
        consumers = [n for n in p.nodes if p.input_name in n.input]
        if len(p.input_shape) == 4 and consumers and all(
                n.op_type == "Transpose" and list(_attrs(n).get("perm", [])) == [0, 3, 1, 2] for n in consumers):
            axes = (0, 1, 2, 3)  # NHWC data, transposed to NCHW inside the model (tf2onnx)
        name = self._unique(p.input_name)
        t_in = T(name, p.input_shape, axes)
        self._add(nw.Layer(name, nw.INPUT, t_in.ours), p.input_name, t_in, "Input")
        self.tensors[p.input_name] = t_in
        needed = self._needed()
        for index, node in enumerate(p.nodes):
            if index not in needed:
                continue
            label = node_label(node, index)
            try:
                self._node(node, label)
            except _Refuse as why:
                text = f"{node.op_type} with {why}" if str(why) else node.op_type
                self._add(Pending(self._unique(label), "unsupported", (), text), None, None)
            except Exception as exc:  # noqa: BLE001 - a malformed node of the user's file, named
                text = f"{node.op_type}, malformed ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})"
                self._add(Pending(self._unique(label), "unsupported", (), text), None, None)
        out = self.tensors.get(p.output_name)
        if out is None and p.output_name in self.consts:
            self._add(Pending(self._unique(p.output_name), "unsupported", (), "constant graph output"), None, None)
        return Lowered(self.items, self.points, t_in, out.item if out is not None else "")

    def _needed(self) -> set:
        """Indexes of the nodes the graph output depends on (others are never lowered)."""
        producer = {o: i for i, n in enumerate(self.p.nodes) for o in n.output if o}
        seen, todo = set(), [self.p.output_name]
        while todo:
            i = producer.get(todo.pop())
            if i is None or i in seen:
                continue
            seen.add(i)
            todo.extend(x for x in self.p.nodes[i].input if x)
        return seen

    def _node(self, node, label: str) -> None:
        op = node.op_type
        _check(node.domain in ("", "ai.onnx"), f"domain '{node.domain}'")
        _check(op in SUPPORTED_OPS, "")
        ins = [x for x in node.input if x]
        if op == "Constant":
            value = _attrs(node).get("value")
            _check(value is not None, "a value other than 'value'")
            self.consts[node.output[0]] = to_array(value, f"{self.p.label}: node '{label}' (Constant)")
            return
        if op == "Shape" and ins and ins[0] in self.tensors:
            self.consts[node.output[0]] = np.array(self.tensors[ins[0]].shape, dtype=np.int64)
            return
        if ins and all(x in self.consts for x in ins):
            try:
                self._fold_constant(node)
            except (ValueError, IndexError, TypeError, KeyError, AttributeError, OverflowError) as exc:
                raise _Refuse(f"constant inputs that do not fit ({exc})") from None
            return
        if any(x not in self.tensors and x not in self.consts for x in ins):
            return  # downstream of a refused node: that node is already named
        getattr(self, f"_op_{op}", self._op_missing)(node, label)

    @staticmethod
    def _op_missing(node, label):
        raise _Refuse("this input (only constant inputs are evaluated)")

    # ---- constants -----------------------------------------------------------------------
    def _fold_constant(self, node) -> None:
        op, a = node.op_type, _attrs(node)
        c = [self.consts[x] if x else None for x in node.input]
        if op == "Gather":
            out = np.take(c[0], c[1].astype(np.int64), axis=a.get("axis", 0))
        elif op == "Unsqueeze":
            axes = a.get("axes") if "axes" in a else c[1].tolist()
            out = c[0]
            for ax in sorted(int(v) % (out.ndim + len(axes)) for v in axes):
                out = np.expand_dims(out, ax)
        elif op == "Squeeze":
            axes = a.get("axes") if "axes" in a else (c[1].tolist() if len(c) > 1 and c[1] is not None else None)
            out = np.squeeze(c[0], axis=None if axes is None else tuple(int(v) for v in axes))
        elif op == "Concat":
            out = np.concatenate([np.atleast_1d(v) for v in c], axis=a.get("axis", 0))
        elif op == "Cast":
            from onnx import helper

            out = c[0].astype(helper.tensor_dtype_to_np_dtype(a["to"]))
        elif op in ("Identity", "Dropout"):
            out = c[0]
        elif op in ("Add", "Sub", "Mul", "Div"):
            fn = {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Div": np.divide}[op]
            out = fn(c[0], c[1])
            if op == "Div" and c[0].dtype.kind in "iu":
                out = np.floor_divide(c[0], c[1])
        elif op == "Reshape":
            out = c[0].reshape([d if d != 0 else c[0].shape[i] for i, d in enumerate(c[1].tolist())])
        elif op == "Flatten":
            ax = a.get("axis", 1)
            out = c[0].reshape(math.prod(c[0].shape[:ax]), -1)
        elif op == "Transpose":
            out = np.transpose(c[0], a.get("perm"))
        elif op == "Slice":
            starts, ends = c[1].tolist(), c[2].tolist()
            axes = c[3].tolist() if len(c) > 3 and c[3] is not None else list(range(len(starts)))
            steps = c[4].tolist() if len(c) > 4 and c[4] is not None else [1] * len(starts)
            index = [slice(None)] * c[0].ndim
            for s, e, ax, st in zip(starts, ends, axes, steps):
                index[ax] = slice(s, e, st)
            out = c[0][tuple(index)]
        else:
            raise _Refuse("constant inputs (not evaluated at import)")
        self.consts[node.output[0]] = np.asarray(out)

    # ---- weighted layers -----------------------------------------------------------------
    def _pads(self, node, t: T, kernel, strides, ceil=False) -> tuple:
        """(out_hw, pad config, explicit ((t, b), (l, r)) or None) for a conv/pool window."""
        a = _attrs(node)
        _check(len(strides) == 2 and min(strides) >= 1, f"strides {list(strides)}")
        _check(len(kernel) == 2 and min(kernel) >= 1, f"kernel {list(kernel)}")
        h, w = t.shape[2], t.shape[3]
        auto = a.get("auto_pad", "NOTSET")
        if auto in ("SAME_UPPER", "SAME_LOWER"):
            pads = []
            for size, k, s in ((h, kernel[0], strides[0]), (w, kernel[1], strides[1])):
                lo, hi = same_padding(size, k, s)
                pads.append((lo, hi) if auto == "SAME_UPPER" else (hi, lo))
            begin, end = [p[0] for p in pads], [p[1] for p in pads]
        elif auto == "VALID":
            begin, end = [0, 0], [0, 0]
        else:
            _check(auto == "NOTSET", f"auto_pad '{auto}'")
            raw = list(a.get("pads", [0, 0, 0, 0]))
            _check(len(raw) == 4 and min(raw) >= 0, f"pads {raw}")
            begin, end = raw[:2], raw[2:]
        outs, pad = [], []
        for size, k, s, b, e in zip((h, w), kernel, strides, begin, end):
            o, b2, e2 = _window_pads(size, k, s, b, e, ceil)
            outs.append(o)
            pad.append((b2, e2))
        same = [same_padding(size, k, s) for size, k, s in zip((h, w), kernel, strides)]
        if all(v == 0 for p in pad for v in p):
            return outs, "valid", None
        if [tuple(p) for p in pad] == same and outs == [-(-h // strides[0]), -(-w // strides[1])]:
            return outs, "same", None
        return outs, "valid", pad

    def _zero_pad(self, node, t: T, pad, name: str) -> T:
        """A ``zero_pad2d`` layer before a window op that pads explicitly (not TF's 'same')."""
        (tp, bt), (lf, rt) = pad
        n, c, h, w = t.shape
        out = T(name, (n, c, h + tp + bt, w + lf + rt), NHWC, None, t.nonneg)
        self._add(nw.Layer(name, nw.ZERO_PAD2D, out.ours, (t.item,),
                           config={"padding": [[tp, bt], [lf, rt]]}), None, None, "Pad")
        return out

    def _op_Conv(self, node, label):
        t = self._map(self._data(node, 0))
        a = _attrs(node)
        w = self._const(node, 1)
        _check(w is not None and w.ndim == 4, "a kernel that is not a constant 4-D tensor")
        b = self._const(node, 2, np.zeros(w.shape[0]))
        dil = list(a.get("dilations", [1, 1]))
        _check(len(dil) == 2 and min(dil) >= 1, f"dilations {dil}")
        if dil != [1, 1]:  # expand the kernel with zeros: exact
            o, i, kh, kw = w.shape
            big = np.zeros((o, i, (kh - 1) * dil[0] + 1, (kw - 1) * dil[1] + 1))
            big[:, :, :: dil[0], :: dil[1]] = w
            w = big
        strides = list(a.get("strides", [1, 1]))
        group, c = int(a.get("group", 1)), t.shape[1]
        cout = w.shape[0]
        if group == 1:
            _check(w.shape[1] == c, f"kernel {list(w.shape)} for {c} input channels")
            kind, weights = nw.CONV2D, w.transpose(2, 3, 1, 0)
            config = {}
        else:
            _check(group == c and w.shape[1] == 1 and cout % c == 0,
                   f"group={group} (only 1, or depthwise: group = input channels)")
            mult = cout // c
            kind, weights = nw.DEPTHWISE_CONV2D, w.reshape(c, mult, *w.shape[2:]).transpose(2, 3, 0, 1)
            config = {"depth_multiplier": mult}
        outs, padding, pad = self._pads(node, t, weights.shape[:2], strides)
        name = self._unique(label)
        if pad is not None:
            t = self._zero_pad(node, t, pad, self._unique(f"{name}/pad"))
        config |= {"strides": strides, "padding": padding}
        self._layer(node, name, kind, [t], (1, cout, *outs), NHWC, weights=weights,
                    bias=np.broadcast_to(b, (cout,)), config=config)

    def _dense(self, node, label, t: T, w: np.ndarray, b: np.ndarray):
        _check(len(t.shape) == 2 and t.axes == (0, 1), f"an input of shape {list(t.shape)} (flatten first)")
        _check(w.ndim == 2 and w.shape[0] == t.shape[1], f"weights {list(w.shape)} for {t.shape[1]} inputs")
        if t.perm is not None:
            w = w[t.perm]
        n = w.shape[1]
        self._layer(node, self._unique(label), nw.DENSE, [t], (1, n), (0, 1), weights=w,
                    bias=np.broadcast_to(np.asarray(b, np.float64).reshape(-1), (n,)))

    def _op_Gemm(self, node, label):
        a = _attrs(node)
        _check(not a.get("transA", 0), "transA=1")
        t, w = self._data(node, 0), self._const(node, 1)
        _check(w is not None, "non-constant weights")
        w = (w.T if a.get("transB", 0) else w) * a.get("alpha", 1.0)
        c = self._const(node, 2, np.zeros(1))
        _check(np.size(c) in (1, w.shape[-1]), f"bias of shape {list(np.shape(c))}")
        self._dense(node, label, t, w, np.asarray(c, np.float64).reshape(-1) * a.get("beta", 1.0))

    def _op_MatMul(self, node, label):
        t, w = self._data(node, 0), self._const(node, 1)
        _check(w is not None and w.ndim == 2, "a non-constant or non-2-D right operand")
        self._dense(node, label, t, w, np.zeros(1))

    def _op_Add(self, node, label):
        x0, x1 = node.input[0], node.input[1]
        if x0 in self.consts or x1 in self.consts:
            data, const = (x1, x0) if x0 in self.consts else (x0, x1)
            self._bias_add(node, self.tensors[data], data, self.consts[const])
            return
        t0, t1 = self.tensors[x0], self.tensors[x1]
        _check(t0.shape == t1.shape, f"operands of shapes {list(t0.shape)} and {list(t1.shape)} (no broadcasting)")
        same_perm = (t0.perm is None and t1.perm is None) or (
            t0.perm is not None and t1.perm is not None and np.array_equal(t0.perm, t1.perm))
        _check(t0.axes == t1.axes and same_perm, "operands in different layouts")
        self._layer(node, self._unique(label), nw.ADD, [t0, t1], t0.shape, t0.axes, perm=t0.perm)

    def _bias_add(self, node, t: T, data: str, const: np.ndarray):
        """``x + constant`` right after a linear weighted layer: added to its bias."""
        layer = self.by_name.get(t.item)
        ok = (isinstance(layer, nw.Layer) and layer.kind in nw.WEIGHTED_KINDS and layer.activation == "linear"
              and self.uses.get(data, 0) == 1 and self.points.get(layer.name, ("",))[0] == data)
        _check(ok, "a constant operand not directly after a Gemm/MatMul/Conv (only a bias add is simulated)")
        n = layer.output_shape[-1]
        vec = np.asarray(const, np.float64)
        if len(t.shape) == 4:
            _check(vec.size in (1, n) and (vec.ndim < 3 or vec.shape[-2:] == (1, 1)) and vec.ndim <= 4,
                   f"a constant of shape {list(vec.shape)} that is not one value per channel")
        else:
            _check(vec.size in (1, n) and vec.ndim <= 2, f"a constant of shape {list(vec.shape)}")
        vec = np.broadcast_to(vec.reshape(-1), (n,))
        if t.perm is not None:
            vec = vec[t.perm]
        layer.bias = (layer.bias.astype(np.float64) + vec).astype(np.float32)
        self.points[layer.name] = (node.output[0], t)
        self.tensors[node.output[0]] = t

    # ---- activations, BN, no-ops ---------------------------------------------------------
    def _activation(self, node, label, activation, params=None, nonneg=False):
        t = self._data(node, 0)
        self._layer(node, self._unique(label), nw.ACTIVATION, [t], t.shape, t.axes, activation=activation,
                    params=params, perm=t.perm, nonneg=nonneg)

    def _op_Relu(self, node, label):
        self._activation(node, label, "relu", nonneg=True)

    def _op_Clip(self, node, label):
        a = _attrs(node)
        lo = self._const(node, 1, a.get("min"))
        hi = self._const(node, 2, a.get("max"))
        _check(lo is not None and float(lo) == 0.0, f"min {lo} (only Clip(0, max) = ReLU/ReLU6)")
        _check(hi is None or float(hi) > 0, f"max {hi}")
        self._activation(node, label, "relu", {} if hi is None else {"max_value": float(hi)}, nonneg=True)

    def _op_Sigmoid(self, node, label):
        self._activation(node, label, "sigmoid")

    def _op_Tanh(self, node, label):
        self._activation(node, label, "tanh")

    def _op_Softmax(self, node, label):
        t = self._data(node, 0)
        axis = _attrs(node).get("axis", -1 if self.p.opset >= 13 else 1)
        _check(len(t.shape) == 2 and axis in (1, -1) and t.perm is None, f"axis {axis} on shape {list(t.shape)}")
        self._activation(node, label, "softmax")

    def _op_BatchNormalization(self, node, label):
        t = self._data(node, 0)
        a = _attrs(node)
        _check(not a.get("training_mode", 0), "training_mode=1")
        _check(len(node.output) == 1 or not any(node.output[1:]), "training outputs (mean/var) in use")
        gamma, beta, mean, var = (self._const(node, i) for i in (1, 2, 3, 4))
        _check(all(v is not None for v in (gamma, beta, mean, var)), "non-constant parameters")
        _check(len(t.shape) == 4 and t.axes == NHWC or len(t.shape) == 2 and t.axes == (0, 1),
               f"an input of shape {list(t.shape)} in a layout other than NCHW / (N, features)")
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):  # NaN refused after folding
            scale = gamma / np.sqrt(var + float(a.get("epsilon", 1e-5)))
            shift = beta - mean * scale
        if t.perm is not None:
            scale, shift = scale[t.perm], shift[t.perm]
        self._passthrough(node, label, t, Pending(self._unique(label), "batchnorm", (t.item,),
                                                   "BatchNormalization", scale, shift))

    def _passthrough(self, node, label, t: T, item: Pending):
        out = replace(t, item=item.name)
        self._add(item, node.output[0], out)
        self.tensors[node.output[0]] = out

    def _op_Identity(self, node, label):
        t = self._data(node, 0)
        self._passthrough(node, label, t, Pending(self._unique(label), "noop", (t.item,), node.op_type))

    def _op_Dropout(self, node, label):
        _check(len(node.output) == 1 or not any(node.output[1:]) or
               all(self.uses.get(o, 0) == 0 for o in node.output[1:] if o), "its mask output in use")
        self._op_Identity(node, label)

    # ---- pooling -------------------------------------------------------------------------
    def _pool(self, node, label, kind):
        t = self._map(self._data(node, 0))
        a = _attrs(node)
        kernel = list(a["kernel_shape"]) if "kernel_shape" in a else None
        _check(kernel is not None and len(kernel) == 2, f"kernel_shape {kernel}")
        strides = list(a.get("strides", [1, 1]))
        _check(list(a.get("dilations", [1, 1])) == [1, 1], f"dilations {list(a.get('dilations', [1, 1]))}")
        _check(len(node.output) == 1 or not any(node.output[1:]), "its indices output in use")
        ceil = bool(a.get("ceil_mode", 0))
        outs, padding, pad = self._pads(node, t, kernel, strides, ceil)
        declared = list(a.get("pads", [0, 0, 0, 0])) if a.get("auto_pad", "NOTSET") == "NOTSET" else []
        include = kind == nw.AVG_POOL2D and a.get("count_include_pad", 0) and any(declared)
        if include:  # the declared pads count in the average: zero-pad them, nothing beyond
            pad = [(declared[0], declared[2]), (declared[1], declared[3])]
            _check(outs == [_window_pads(s, k, st, b, e, False)[0] for s, k, st, (b, e)
                            in zip(t.shape[2:], kernel, strides, pad)],
                   "ceil_mode=1 with count_include_pad=1 and pads (windows past the padding)")
            padding = "valid"
        elif pad is not None:
            _check(kind == nw.MAX_POOL2D and t.nonneg,
                   f"pads {declared} (not TF's 'same' window: padding a pool of possibly negative values "
                   "or excluding explicit pads from an average is not simulated)")
        if pad is not None:
            t = self._zero_pad(node, t, pad, self._unique(f"{label}/pad"))
        name = self._unique(label)
        self._layer(node, name, kind, [t], (1, t.shape[1], *outs), NHWC, nonneg=t.nonneg,
                    config={"pool_size": kernel, "strides": strides, "padding": padding})

    def _op_MaxPool(self, node, label):
        self._pool(node, label, nw.MAX_POOL2D)

    def _op_AveragePool(self, node, label):
        self._pool(node, label, nw.AVG_POOL2D)

    def _global(self, node, label, kind):
        t = self._map(self._data(node, 0))
        h, w = t.shape[2], t.shape[3]
        self._layer(node, self._unique(label), kind, [t], (1, t.shape[1], 1, 1), NHWC, nonneg=t.nonneg,
                    config={"pool_size": [h, w], "strides": [h, w], "padding": "valid"})

    def _op_GlobalAveragePool(self, node, label):
        self._global(node, label, nw.AVG_POOL2D)

    def _op_GlobalMaxPool(self, node, label):
        self._global(node, label, nw.MAX_POOL2D)

    # ---- shape ops -----------------------------------------------------------------------
    def _flatten(self, node, label, t: T):
        if len(t.shape) == 2:
            self.tensors[node.output[0]] = t
            return
        perm = _flat_perm(t)
        self._layer(node, self._unique(label), nw.FLATTEN, [t], (1, math.prod(t.shape)), (0, 1),
                    perm=perm, nonneg=t.nonneg)

    def _op_Flatten(self, node, label):
        axis = _attrs(node).get("axis", 1)
        _check(axis == 1, f"axis {axis} (only flattening per sample)")
        self._flatten(node, label, self._data(node, 0))

    def _op_Reshape(self, node, label):
        t = self._data(node, 0)
        target = self._const(node, 1)
        _check(target is not None, "a non-constant target shape")
        per = [int(d) for d in np.asarray(target).reshape(-1)[1:]]  # the first entry is the batch
        per = [t.shape[i + 1] if d == 0 and i + 1 < len(t.shape) else d for i, d in enumerate(per)]
        if len(per) == 1:
            _check(per[0] in (-1, math.prod(t.shape)), f"target {per} for {math.prod(t.shape)} values")
            self._flatten(node, label, t)
            return
        _check(tuple(per) == tuple(t.shape[1:]), f"target shape {per} (only flattening is simulated)")
        self.tensors[node.output[0]] = t

    def _op_Squeeze(self, node, label):
        t = self._data(node, 0)
        a = _attrs(node)
        axes = a.get("axes") if "axes" in a else self._const(node, 1)
        axes = sorted(int(v) % len(t.shape) for v in np.asarray(axes).reshape(-1)) if axes is not None else \
            [i for i, d in enumerate(t.shape) if d == 1 and i > 0]
        _check(0 not in axes and all(t.shape[i] == 1 for i in axes), f"axes {axes}")
        _check(len(t.shape) - len(axes) == 2, f"axes {axes} (only squeezing to (N, features))")
        self._flatten(node, label, t)

    def _op_Transpose(self, node, label):
        t = self._data(node, 0)
        p = list(_attrs(node).get("perm", list(range(len(t.shape)))[::-1]))
        _check(p[0] == 0 and t.perm is None and sorted(p) == list(range(len(t.shape))),
               f"perm {p} (a transpose that moves the batch axis or mixes flattened data)")
        inv = np.argsort(p)
        axes = tuple(int(inv[a]) for a in t.axes)
        self.tensors[node.output[0]] = T(t.item, tuple(t.shape[i] for i in p), axes, None, t.nonneg)

    def _op_Concat(self, node, label):
        ts = [self._data(node, i) for i in range(len(node.input))]
        axis = _attrs(node).get("axis", 1) % len(ts[0].shape)
        _check(all(x.axes == ts[0].axes and x.perm is None and len(x.shape) == len(ts[0].shape) for x in ts),
               "inputs in different layouts")
        _check(axis != 0, "concatenation along the batch axis")
        shape = list(ts[0].shape)
        shape[axis] = sum(x.shape[axis] for x in ts)
        ours_axis = ts[0].axes.index(axis) - 1
        self._layer(node, self._unique(label), nw.CONCATENATE, ts, tuple(shape), ts[0].axes,
                    config={"axis": ours_axis}, nonneg=all(x.nonneg for x in ts))

    def _op_Pad(self, node, label):
        t = self._map(self._data(node, 0))
        a = _attrs(node)
        _check(a.get("mode", "constant") == "constant", f"mode '{a.get('mode')}'")
        pads = self._const(node, 1, a.get("pads"))
        value = self._const(node, 2, a.get("value", 0.0))
        _check(len(node.input) < 4 or not node.input[3], "an axes input")
        _check(value is None or float(np.asarray(value).reshape(-1)[0] if np.size(value) else 0) == 0.0,
               f"value {value} (only zero padding)")
        pads = [int(v) for v in np.asarray(pads).reshape(-1)]
        _check(len(pads) == 8 and pads[0] == pads[1] == pads[4] == pads[5] == 0 and min(pads) >= 0,
               f"pads {pads} (only non-negative padding of height and width)")
        (tp, lf, bt, rt) = pads[2], pads[3], pads[6], pads[7]
        n, c, h, w = t.shape
        self._layer(node, self._unique(label), nw.ZERO_PAD2D, [t], (n, c, h + tp + bt, w + lf + rt), NHWC,
                    config={"padding": [[tp, bt], [lf, rt]]}, nonneg=t.nonneg)


def lower(parsed: Parsed) -> Lowered:
    """``Lowered`` items (Layer / Pending, topological order) for the checked model."""
    return Lowering(parsed).run()
