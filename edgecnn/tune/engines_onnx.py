"""ONNX candidates through ONNX Runtime's static quantization (`onnxruntime.quantization`).

The settings are export's (`converters.onnx.STATIC_INT8_SETTINGS`: QDQ, per-channel 7-bit int8
weights, int8 activations), so a tuned file differs from `edgecnn export --int8` only in what
the ladder changed: the calibration method and the nodes kept float (`nodes_to_exclude`).
Needs `onnx` (the export extra), as ONNX Runtime's quantization tools do.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgecnn.errors import EdgecnnError

METHODS = ("minmax", "entropy", "percentile")
INPUT_NAME = "input"  # converters.onnx names the input so (importing it would import TensorFlow)
PASS_THROUGH = frozenset(
    {"MaxPool", "Relu", "Clip", "Reshape", "Flatten", "Transpose", "Squeeze", "Unsqueeze", "Identity", "Pad", "Slice"}
)
WEIGHTED = frozenset({"Conv", "Gemm", "MatMul", "ConvTranspose"})
_QDQ = frozenset({"QuantizeLinear", "DequantizeLinear"})


@dataclass(frozen=True)
class Op:
    index: int
    op_type: str
    inputs: tuple[str, ...]  # activation inputs only (no initializers)
    outputs: tuple[str, ...]
    name: str = ""


def _quiet():
    """ONNX Runtime's quantizer logs; its entropy and percentile calibrators print their progress
    on stdout (--json's)."""
    from edgecnn._tf import quiet_conversion

    return quiet_conversion(stderr=False, stdout=True)


def float_onnx(model) -> bytes:
    """The float32 .onnx of the Keras model, as `edgecnn export --format onnx` makes it."""
    from converters.onnx import keras_to_onnx

    float_model, _ = keras_to_onnx(model)
    return float_model


def prepare(float_path, out_path) -> Path:
    """ONNX Runtime's `quant_pre_process` (shape inference, graph optimization): the graph that
    is quantized, and the float twin whose tensor names the numerics match."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    try:
        with _quiet():
            quant_pre_process(
                str(float_path),
                str(out_path),
                skip_optimization=False,
                skip_onnx_shape=False,
                skip_symbolic_shape=False,
                auto_merge=False,
            )
    except Exception as exc:
        reason = " ".join(str(exc).split())[:300] or type(exc).__name__
        raise EdgecnnError(f"ONNX Runtime cannot prepare {Path(float_path).name} for quantization: {reason}") from None
    return Path(out_path)


def graph(path) -> list[Op]:
    import onnx

    model = onnx.load(str(path))
    constants = {t.name for t in model.graph.initializer}
    ops = []
    for index, node in enumerate(model.graph.node):
        inputs = tuple(name for name in node.input if name and name not in constants)
        ops.append(Op(index, node.op_type, inputs, tuple(node.output), node.name))
    return ops


def float_op_count(path) -> int:
    """Nodes of a QDQ graph that compute in float: not Q/DQ, and an activation input that no
    DequantizeLinear produced or an output that no QuantizeLinear alone reads. Read with the
    runtime's graph reader (`edgecnn.runtime.graph_onnx.read_graph`, as `edgecnn inspect`);
    `graph_facts` leaves ONNX's integer-only verdict to ONNX Runtime (None), so the QDQ rule is here."""
    from edgecnn.runtime.graph_onnx import read_graph

    graph = read_graph(Path(path))

    def constant(name: str) -> bool:
        record = graph.tensors.get(name)
        return record is not None and record.constant

    producer = {out: op.op_type for op in graph.ops for out in op.outputs}
    readers: dict[str, list[str]] = {}
    for op in graph.ops:
        for name in op.inputs:
            readers.setdefault(name, []).append(op.op_type)
    outputs = {record.name for record in graph.outputs}
    inputs = {record.name for record in graph.inputs}
    count = 0
    for op in graph.ops:  # Constant nodes are not ops of the record: their outputs are constants
        if op.op_type in _QDQ or op.op_type == "Shape":
            continue
        activations = [name for name in op.inputs if not constant(name)]
        # A layout op on the float graph input, before its QuantizeLinear, computes nothing.
        fed_float = any(
            producer.get(name) != "DequantizeLinear" and not (name in inputs and op.op_type in PASS_THROUGH)
            for name in activations
        )
        out_float = any(
            name in outputs or any(r != "QuantizeLinear" for r in readers.get(name, [])) for name in op.outputs
        )
        if fed_float or out_float:
            count += 1
    return count


def quantize(
    prepared_path, calibration: np.ndarray, *, method: str = "minmax", nodes_to_exclude=(), input_name: str = INPUT_NAME
) -> tuple[bytes, dict]:
    """int8 QDQ of the prepared float .onnx, calibrated on `calibration` with `method`; the
    nodes named in `nodes_to_exclude` stay float. Returns (bytes, the settings as recorded)."""
    from calibration._ort import make_reader

    try:
        from converters.onnx import STATIC_INT8_SETTINGS as settings
        from converters.onnx import quantize_static_qdq
    except ImportError:  # pragma: no cover - converters.onnx imports TensorFlow
        raise EdgecnnError("ONNX tuning needs the export side: pip install 'edgecnn[export]'") from None
    if method not in METHODS:
        raise EdgecnnError(f"unknown calibration method `{method}`; use {', '.join(METHODS)}")
    batches = [calibration[i : i + 1] for i in range(len(calibration))]
    with tempfile.TemporaryDirectory(prefix="edgecnn-tune-onnx-") as tmp:
        out = Path(tmp) / "quant.onnx"
        try:
            with _quiet():
                quantize_static_qdq(
                    prepared_path,
                    out,
                    lambda: make_reader(batches, input_name),
                    settings=settings,
                    calib_method=method,
                    nodes_to_exclude=nodes_to_exclude,
                )
        except Exception as exc:
            reason = " ".join(str(exc).split())[:300] or type(exc).__name__
            raise EdgecnnError(f"ONNX Runtime cannot quantize {Path(prepared_path).name}: {reason}") from None
        data = out.read_bytes()
    recorded = {
        "engine": "onnxruntime.quantization",
        **settings,
        "calibrate_method": method,
        "calibration_images": len(calibration),
        "nodes_to_exclude": list(nodes_to_exclude),
    }
    return data, recorded
