"""The converted network's parameters for external implementations (C, FPGA, chips).

Three forms of the same content, documented in docs/trace-format.md ("Network parameters"):
- ``npz``: one file; member ``manifest`` (uint8 UTF-8 JSON) plus ``L<i>.<array>`` members;
- ``raw``: a folder with ``manifest.json``, a line-oriented ``manifest.txt`` that C parses with
  ``sscanf``/``strtok``, and one little-endian ``L<i>.<array>.bin`` per array;
- ``c``: one header file with ``static const`` arrays and a layer table.

Arrays are the ones the simulator USES: after the neuron model's ``prepare_layer`` (so a
quantizing model's weights are the quantized ones). Layout is Keras': dense ``(in, out)``, conv
``(kh, kw, cin, cout)``, channels-last. Extra per-model arrays (Loihi mantissas/exponents) come
from ``MODEL_EXPORTERS[model.name](layer_state) -> {name: array}``: register a function there to
export another model's integer parameters.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np

from workbench.atomic import atomic_dir, atomic_path
from workbench.engine.config import SimConfig
from workbench.engine.layer_state import _pool_geometry
from workbench.engine.synapses import padding_for
from workbench.errors import WorkbenchError
from workbench.models import network as nw

SCHEMA = "snn-workbench.params/1"
FORMATS = ("npz", "raw", "c")
_RESET_CODE = {"subtract": 0, "zero": 1, "modulo": 2}


class ExportError(WorkbenchError):
    """The network or the target cannot be exported as asked; the message names the layer."""


def _loihi_cuba_arrays(ls) -> dict[str, np.ndarray]:
    from workbench.engine.neurons.loihi_cuba import quantize_bias

    out: dict[str, np.ndarray] = {}
    q = getattr(ls, "quantization", {})
    if "weight_exp" in q:
        exp = int(q["weight_exp"])
        mant = np.round(ls.weights.astype(np.float64) / 2.0**exp)
        assert np.array_equal(mant * 2.0**exp, ls.weights.astype(np.float64)), "weights are not mant * 2**exp"
        out["weight_mant"] = mant.astype(np.int32)
        out["weight_exp"] = np.array([exp], dtype=np.int32)
        _, bmant, bexp = quantize_bias(ls.layer.bias if ls.layer.bias is not None
                                       else np.zeros(ls.layer.output_shape[-1], np.float32), ls.model.vth * 64)
        out["bias_mant"] = bmant.astype(np.int32)
        out["bias_exp"] = np.array([bexp], dtype=np.int32)
    if "layer_bias" in ls.state:
        out["bias_int"] = np.asarray(ls.state["layer_bias"], dtype=np.int32).reshape(ls.layer.output_shape)
    return out


MODEL_EXPORTERS: dict[str, Callable] = {"loihi_cuba": _loihi_cuba_arrays}


def _num(x: float) -> float:
    return float(x)


def collect(network: nw.Network, config: SimConfig | None = None) -> tuple[dict, dict[str, np.ndarray]]:
    """(manifest dict, arrays {'L<i>.<name>': array}) for ``network`` as the simulator runs it."""
    from workbench import __version__
    from workbench.engine.simulator import Simulator

    config = (config or SimConfig()).replace(batch=1, record=(), steps=1)
    sim = Simulator(network, config)  # builds the layer states and runs prepare_layer
    dt = sim.dt
    records, arrays = [], {}
    for ls in sim.layers:
        layer, i = ls.layer, ls.index
        rec = {"index": i, "name": layer.name, "kind": layer.kind, "inbound": list(ls.inbound),
               "shape": list(layer.output_shape)}
        if ls.inbound:
            rec["in_shape"] = list(sim.layers[ls.inbound[0]].layer.output_shape)
        cfg = layer.config
        if layer.kind in nw.WEIGHTED_KINDS:
            rec["kernel"] = list(layer.weights.shape[:2]) if layer.kind != nw.DENSE else []
            if layer.kind != nw.DENSE:
                rec["strides"] = list(cfg["strides"])
                rec["padding"] = cfg["padding"]
                rec["pad"] = list(padding_for(cfg["padding"], rec["in_shape"][:2], rec["kernel"], cfg["strides"]))
            arrays[f"L{i}.weights"] = np.ascontiguousarray(ls.weights, dtype=np.float32)
            arrays[f"L{i}.bias"] = np.ascontiguousarray(ls.bias, dtype=np.float32)
        if layer.kind in (nw.AVG_POOL2D, nw.MAX_POOL2D):
            ph, pw, sh, sw, pt, pl = _pool_geometry(layer, (1, *rec["in_shape"]))
            rec.update(pool=[ph, pw], strides=[sh, sw], padding=cfg.get("padding", "valid"), pad=[pt, pl])
            if layer.kind == nw.MAX_POOL2D and cfg.get("max_pool", "count") != "count":
                rec["max_pool"] = cfg["max_pool"]  # the 'lateral' remedy
        if layer.kind in (nw.AVG_POOL2D, nw.GLOBAL_AVG_POOL2D, nw.ADD, nw.ACTIVATION):
            rec["input_scales"] = [float(s) for s in (cfg.get("input_scales") or [1.0] * len(ls.inbound))]
        if layer.kind == nw.ZERO_PAD2D:
            rec["zero_padding"] = cfg["padding"]
        if layer.kind == nw.CONCATENATE:
            rec["axis"] = cfg["axis"]
        if ls.is_neuron:
            model = ls.model
            rec["neuron"] = {"name": model.name, "params": model.params(), "signed": model.signed}
            rec["out_scale"] = float(ls.out_scale)  # float32 value, exact in a double
            rec["gain"] = float(getattr(ls, "gain", 1.0))  # rate_scale: J *= gain (float32)
            for name, arr in MODEL_EXPORTERS.get(model.name, lambda _ls: {})(ls).items():
                arrays[f"L{i}.{name}"] = np.ascontiguousarray(arr)
        rec["arrays"] = {k.split(".", 1)[1]: {"file": f"{k}.bin", "dtype": _dtype_name(v), "shape": list(v.shape)}
                         for k, v in arrays.items() if k.startswith(f"L{i}.")}
        records.append(rec)
    manifest = {
        "schema": SCHEMA, "network": network.name, "network_sha256": network.fingerprint(),
        "source": dict(network.source), "layout": "channels_last", "byte_order": "little",
        "dt": dt, "encoder": config.encoder, "seed": config.seed,
        "neuron": {"name": config.neuron.name, "params": config.neuron.params()},
        "tool": f"snn-workbench {__version__}", "layers": records,
    }
    return json.loads(json.dumps(manifest, default=str)), arrays


def _dtype_name(arr: np.ndarray) -> str:
    return {"f": "float", "i": "int", "u": "uint"}[arr.dtype.kind] + str(arr.dtype.itemsize * 8)


def _shape3(shape) -> list[int]:
    """Image layers as (H, W, C); vectors as (1, 1, N): what the C reference uses."""
    return list(shape) if len(shape) == 3 else [1, 1, int(np.prod(shape))]


def manifest_text(manifest: dict) -> str:
    """The line-oriented manifest (manifest.txt), one ``key=value`` token list per layer."""
    lines = ["snn-workbench-params 1", f"network {_token(manifest['network'])}", f"encoder {manifest['encoder']}",
             f"dt {manifest['dt']!r}", f"layers {len(manifest['layers'])}"]
    for rec in manifest["layers"]:
        toks = [f"index={rec['index']}", f"kind={rec['kind']}", f"name={_token(rec['name'])}",
                f"in={','.join(map(str, rec['inbound'])) or '-1'}", f"shape={','.join(map(str, rec['shape']))}"]
        for key in ("kernel", "pool", "strides", "pad"):
            if rec.get(key):
                toks.append(f"{key}={','.join(map(str, rec[key]))}")
        if rec.get("max_pool"):
            toks.append(f"max_pool={rec['max_pool']}")
        if "input_scales" in rec:
            toks.append(f"in_scale={','.join(repr(float(s)) for s in rec['input_scales'])}")
        if "neuron" in rec:
            params = rec["neuron"]["params"]
            toks.append(f"neuron={rec['neuron']['name']}")
            if "threshold" in params:
                toks.append(f"threshold={float(params['threshold'])!r}")
            if "reset" in params:
                toks.append(f"reset={params['reset']}")
            if "v_init" in params:  # remedies (docs/conversion.md): listed only when set
                toks.append(f"v_init={float(params['v_init'])!r}")
            if "burst" in params:
                toks.append(f"burst={int(params['burst'])}")
            toks.append(f"out_scale={rec['out_scale']!r}")
            if rec.get("gain", 1.0) != 1.0:
                toks.append(f"gain={rec['gain']!r}")
        for name, spec in rec["arrays"].items():
            toks.append(f"{name}={spec['file']}:{spec['dtype']}")
        lines.append("layer " + " ".join(toks))
    return "\n".join(lines) + "\n"


def _token(name: str) -> str:
    if not name or re.search(r"[\s=,:]", name):
        raise ExportError(f"layer or network name '{name}' contains white space, '=', ',' or ':' "
                          "(the text manifest cannot hold it); rename it")
    return name


def export_params(network: nw.Network, config: SimConfig | None, path, format: str = "npz") -> Path:
    """Write the parameters of ``network`` under ``config`` to ``path`` (atomically)."""
    if format not in FORMATS:
        raise ExportError(f"{path}: format '{format}' is not one of {', '.join(FORMATS)}")
    manifest, arrays = collect(network, config)
    path = Path(path)
    if format == "npz":
        members = {"manifest": np.frombuffer(json.dumps(manifest).encode(), dtype=np.uint8), **arrays}
        with atomic_path(path) as tmp, open(tmp, "wb") as fh:
            np.savez(fh, **members)
    elif format == "c":
        text = c_header(manifest, arrays)
        with atomic_path(path) as tmp:
            Path(tmp).write_text(text)
    else:
        text = manifest_text(manifest)
        with atomic_dir(path) as tmp:
            (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1))
            (tmp / "manifest.txt").write_text(text)
            for key, arr in arrays.items():
                arr.astype(arr.dtype.newbyteorder("<")).tofile(tmp / f"{key}.bin")
    return path


def _cname(name: str) -> str:
    ident = re.sub(r"\W", "_", name)
    return ident if re.match(r"[A-Za-z_]", ident) else f"_{ident}"


def _c_values(arr: np.ndarray) -> str:
    flat = arr.reshape(-1)
    if arr.dtype.kind == "f":
        vals = [np.format_float_scientific(np.float32(v), unique=True, trim="0") + "f" for v in flat]
    else:
        vals = [str(int(v)) for v in flat]
    rows = [", ".join(vals[k : k + 8]) for k in range(0, len(vals), 8)]
    return "{\n    " + ",\n    ".join(rows) + "\n}" if rows else "{0}"


def c_header(manifest: dict, arrays: dict[str, np.ndarray]) -> str:
    """A self-contained C99 header: arrays (Keras layout, row-major) and a layer table."""
    guard = f"SNN_PARAMS_{_cname(manifest['network']).upper()}_H"
    out = [f"/* Generated by {manifest['tool']} from network '{manifest['network']}'",
           f" * sha256 {manifest['network_sha256']}. Schema {SCHEMA}; see docs/trace-format.md.",
           " * Layout channels-last; dense weights [in][out], conv [kh][kw][cin][cout]. */",
           f"#ifndef {guard}", f"#define {guard}", "#include <stdint.h>", "",
           f"#define SNN_DT {manifest['dt']!r}", f"#define SNN_N_LAYERS {len(manifest['layers'])}", ""]
    for key, arr in arrays.items():
        i, name = key.split(".", 1)
        ctype = "float" if arr.dtype.kind == "f" else "int32_t"
        layer = manifest["layers"][int(i[1:])]["name"]
        out.append(f"/* {layer}.{name}: shape {tuple(arr.shape)} */")
        out.append(f"static const {ctype} snn_{i}_{_cname(name)}[{max(arr.size, 1)}] = {_c_values(arr)};")
    out += ["", "typedef struct {", "    const char *name; const char *kind; int inbound;",
            "    int shape[3];      /* output H, W, C (vectors: 1, 1, N) */",
            "    int kernel[2]; int strides[2]; int pad[2];  /* kernel or pool size; pad = top, left */",
            "    float threshold; int reset; /* 0 subtract, 1 zero, 2 modulo */ float out_scale; float in_scale;",
            "    const float *weights; const float *bias;", "} snn_layer_t;", "",
            "static const snn_layer_t snn_layers[SNN_N_LAYERS] = {"]
    for rec in manifest["layers"]:
        i = rec["index"]
        params = rec.get("neuron", {}).get("params", {})
        size = rec.get("kernel") or rec.get("pool") or [0, 0]
        w = f"snn_L{i}_weights" if f"L{i}.weights" in arrays else "0"
        b = f"snn_L{i}_bias" if f"L{i}.bias" in arrays else "0"
        out.append(
            f'    {{"{rec["name"]}", "{rec["kind"]}", {rec["inbound"][0] if rec["inbound"] else -1}, '
            f"{{{', '.join(map(str, _shape3(rec['shape'])))}}}, {{{size[0]}, {size[1]}}}, "
            f"{{{', '.join(map(str, rec.get('strides', [1, 1])))}}}, {{{', '.join(map(str, rec.get('pad', [0, 0])))}}}, "
            f"{float(params.get('threshold', 0.0))!r}f, {_RESET_CODE.get(params.get('reset'), 0)}, "
            f"{float(rec.get('out_scale', 1.0))!r}f, {float((rec.get('input_scales') or [1.0])[0])!r}f, {w}, {b}}},")
    out += ["};", "", f"#endif /* {guard} */", ""]
    return "\n".join(out)
