"""The census of an .onnx graph: the file as written, and the graph ONNX Runtime actually runs.

The file is read with the `onnx` package (`pip install onnx`; ONNX Runtime's own quantization
tools need it too). What runs is another graph: ONNX Runtime fuses DequantizeLinear -> Conv ->
QuantizeLinear into QLinearConv, MatMul into QGemm and so on where it has an int8 kernel, and
leaves the pair where it has none. We ask it for that graph (`SessionOptions.
optimized_model_filepath`, at the optimization level and thread count the benchmark uses) and
read it the same way: Q/DQ nodes still there, and float ops between them, are what did not fuse.
"""

from __future__ import annotations

import tempfile
from collections import Counter
from pathlib import Path

from edgecnn.errors import EdgecnnError
from edgecnn.runtime.census import Graph, Op, TensorRecord, numel

CONVERSIONS = ("QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear")
SHAPE_OPS = {
    "Reshape",
    "Shape",
    "Squeeze",
    "Unsqueeze",
    "Flatten",
    "Gather",
    "Slice",
    "Concat",
    "Cast",
    "Constant",
    "ConstantOfShape",
    "Identity",
    "Transpose",
    "Size",
    "Range",
    "Expand",
}
# Input positions of (weights, bias) for the ops that hold them.
_WEIGHTS = {
    "Conv": (1, 2),
    "ConvTranspose": (1, 2),
    "Gemm": (1, 2),
    "MatMul": (1, None),
    "QLinearConv": (3, 8),
    "QLinearMatMul": (3, None),
    "QGemm": (3, 6),
    "ConvInteger": (1, None),
    "MatMulInteger": (1, None),
    "FusedConv": (1, 2),
    "FusedGemm": (1, 2),
    "FusedMatMul": (1, None),
    "NhwcQLinearConv": (3, 8),
    "MatMulIntegerToFloat": (1, None),
    "DynamicQuantizeMatMul": (1, None),
}
_INT32_OUT = {"ConvInteger", "MatMulInteger"}
_INT64_OUT = {"Shape", "Size", "NonZero", "ArgMax", "ArgMin"}


def _onnx():
    try:
        import onnx
    except ImportError:
        raise EdgecnnError("inspecting an .onnx file needs the onnx package: pip install onnx") from None
    return onnx


def _dtype_name(onnx, elem_type: int) -> str:
    try:
        import numpy as np

        return np.dtype(onnx.helper.tensor_dtype_to_np_dtype(elem_type)).name
    except Exception:  # noqa: BLE001  float8, int4 and friends
        return onnx.TensorProto.DataType.Name(elem_type).lower()


def _shape(value_info) -> tuple:
    dims = []
    if not value_info.type.tensor_type.HasField("shape"):
        return ()
    for d in value_info.type.tensor_type.shape.dim:
        dims.append(int(d.dim_value) if d.HasField("dim_value") else (d.dim_param or None))
    return tuple(dims)


def load_model(path: Path):
    onnx = _onnx()
    path = Path(path)
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # noqa: BLE001  protobuf's DecodeError and friends
        reason = " ".join(str(exc).split())[:200] or "the bytes do not parse as an ONNX protobuf"
        raise EdgecnnError(f"{path.name} is not a readable ONNX model: {reason}") from None
    if not model.graph.node:
        raise EdgecnnError(f"{path.name} is not an ONNX model with a graph (no nodes)")
    return model


def read_graph(path: Path, model=None) -> Graph:
    onnx = _onnx()
    from onnx import numpy_helper

    model = model if model is not None else load_model(path)
    try:  # shapes and types of the intermediate tensors (MACs); contrib ops are left untyped
        inferred = onnx.shape_inference.infer_shapes(model, strict_mode=False)
    except Exception:  # noqa: BLE001
        inferred = model
    graph = inferred.graph
    tensors: dict[str, TensorRecord] = {}
    for init in graph.initializer:
        record = TensorRecord(
            name=init.name,
            shape=tuple(int(d) for d in init.dims),
            dtype=_dtype_name(onnx, init.data_type),
            constant=True,
        )
        if record.dtype in ("int8", "uint8") and len(init.dims) >= 1:
            values = numpy_helper.to_array(init)
            if values.size:
                record.int_range = (int(values.min()), int(values.max()))
        tensors[init.name] = record
    for info in list(graph.input) + list(graph.value_info) + list(graph.output):
        if info.name in tensors or not info.type.HasField("tensor_type"):
            continue
        tensors[info.name] = TensorRecord(
            name=info.name, shape=_shape(info), dtype=_dtype_name(onnx, info.type.tensor_type.elem_type)
        )
    for node in graph.node:  # Constant nodes hold constants too
        if node.op_type == "Constant":
            for attr in node.attribute:
                if attr.name == "value":
                    tensors[node.output[0]] = TensorRecord(
                        name=node.output[0],
                        shape=tuple(attr.t.dims),
                        dtype=_dtype_name(onnx, attr.t.data_type),
                        constant=True,
                    )
    ops = []
    for position, node in enumerate(graph.node):
        if node.op_type == "Constant":
            continue
        op = Op(
            index=position,
            op_type=node.op_type,
            inputs=[i for i in node.input if i],
            outputs=list(node.output),
            name=node.name or node.output[0],
        )
        op.domain = node.domain or "ai.onnx"
        op.attributes = {
            a.name: onnx.helper.get_attribute_value(a)
            for a in node.attribute
            if a.name in ("group", "transB", "transA", "to", "output_dtype")
        }
        _propagate(op, node, tensors)
        ops.append(op)
    producer = {out: op for op in ops for out in op.outputs}
    for op in ops:
        op.compute_dtype = _compute_dtype(op, tensors)
        op.macs = _macs(op, tensors, producer)
    initializer_names = {t.name for t in graph.initializer}
    inputs = [tensors[i.name] for i in graph.input if i.name not in initializer_names and i.name in tensors]
    outputs = [tensors[o.name] for o in graph.output if o.name in tensors]
    result = Graph(format="onnx", path=str(path), tensors=tensors, ops=ops, inputs=inputs, outputs=outputs)
    _classify(result, producer)
    result.conversions = Counter(op.op_type for op in ops if op.op_type in CONVERSIONS)
    result.opsets = {o.domain or "ai.onnx": o.version for o in model.opset_import}
    _input_quantization(result, model, ops)
    return result


def _propagate(op: Op, node, tensors: dict) -> None:
    """Fill in the dtype of outputs shape inference left untyped (ORT's contrib ops)."""
    known = [tensors[i].dtype for i in op.inputs if i in tensors]
    for position, out in enumerate(op.outputs):
        if out in tensors and tensors[out].dtype:
            continue
        t = op.op_type
        if t == "QuantizeLinear":
            dtype = tensors[op.inputs[2]].dtype if len(op.inputs) > 2 and op.inputs[2] in tensors else "uint8"
        elif t == "DequantizeLinear":
            dtype = tensors[op.inputs[1]].dtype if len(op.inputs) > 1 and op.inputs[1] in tensors else "float32"
        elif t == "DynamicQuantizeLinear":
            dtype = ("uint8", "float32", "uint8")[min(position, 2)]
        elif t in _INT32_OUT:
            dtype = "int32"
        elif t in _INT64_OUT:
            dtype = "int64"
        elif t == "QGemm":
            dtype = tensors[op.inputs[8]].dtype if len(op.inputs) > 8 and op.inputs[8] in tensors else "float32"
        elif t == "QLinearConcat":
            dtype = tensors[op.inputs[1]].dtype if len(op.inputs) > 1 and op.inputs[1] in tensors else "uint8"
        elif t.startswith("QLinear") or t.startswith("NhwcQLinear"):
            dtype = known[0] if known else "uint8"
        elif t in ("MatMulIntegerToFloat", "DynamicQuantizeMatMul"):
            dtype = "float32"
        else:
            dtype = next(
                (tensors[i].dtype for i in op.inputs if i in tensors and not tensors[i].constant),
                known[0] if known else "?",
            )
        tensors[out] = TensorRecord(name=out, shape=tensors[out].shape if out in tensors else (), dtype=dtype)


def _compute_dtype(op: Op, tensors: dict) -> str:
    first = lambda key: tensors[key].dtype if key in tensors else "?"  # noqa: E731
    if op.op_type in ("QuantizeLinear", "DequantizeLinear") and op.inputs and op.outputs:
        return f"{first(op.inputs[0])}->{first(op.outputs[0])}"
    for key in op.inputs:
        if key in tensors and not tensors[key].constant:
            return tensors[key].dtype
    return first(op.outputs[0]) if op.outputs else "?"


def _through_dq(key: str, producer: dict) -> str:
    """A weight reaching an op through DequantizeLinear is the constant behind it (QDQ files)."""
    op = producer.get(key)
    if op is not None and op.op_type == "DequantizeLinear" and op.inputs:
        return op.inputs[0]
    return key


def _classify(graph: Graph, producer: dict) -> None:
    for op in graph.ops:
        positions = _WEIGHTS.get(op.op_type)
        if not positions:
            continue
        for position, kind in zip(positions, ("weights", "bias")):
            if position is not None and position < len(op.inputs):
                key = _through_dq(op.inputs[position], producer)
                record = graph.tensors.get(key)
                if record is not None and record.constant and record.kind is None:
                    record.kind = kind
                    dq = producer.get(op.inputs[position])
                    scale = graph.tensors.get(dq.inputs[1]) if dq is not None and len(dq.inputs) > 1 else None
                    if kind == "weights" and scale is not None and (numel(scale.shape) or 1) > 1:
                        record.channels_quantized = numel(scale.shape)
    for record in graph.tensors.values():
        if record.constant and record.kind is None:
            record.kind = "other"


def _macs(op: Op, tensors: dict, producer: dict) -> int | None:
    positions = _WEIGHTS.get(op.op_type)
    if not positions or not op.outputs or positions[0] >= len(op.inputs):
        return None
    out = tensors.get(op.outputs[0])
    weights = tensors.get(_through_dq(op.inputs[positions[0]], producer))
    if out is None or weights is None or not out.shape or not weights.shape:
        return None
    elements = numel(out.shape)
    w = [d for d in weights.shape]
    if "Conv" in op.op_type and op.op_type != "ConvTranspose":
        per_output = 1
        for d in w[1:]:
            per_output *= d
        return elements * per_output
    if op.op_type in ("Gemm", "QGemm", "FusedGemm"):
        k = w[0] if not op.attributes.get("transB") else w[1]
        return elements * k
    if "MatMul" in op.op_type and len(w) >= 2:
        return elements * w[-2]
    return None


def _input_quantization(graph: Graph, model, ops: list) -> None:
    """An integer graph input's scale and zero point, from the first node that dequantizes it."""
    for record in graph.inputs:
        if record.dtype not in ("int8", "uint8", "int16", "uint16"):
            continue
        for op in ops:
            if record.name in op.inputs and (
                op.op_type == "DequantizeLinear" or op.op_type.startswith("QLinear") or op.op_type == "QGemm"
            ):
                position = op.inputs.index(record.name)
                scale = constant_value(model, op.inputs[position + 1]) if len(op.inputs) > position + 1 else None
                zero = constant_value(model, op.inputs[position + 2]) if len(op.inputs) > position + 2 else None
                if scale is not None and scale.size == 1:
                    record.scale = float(scale.reshape(-1)[0])
                    record.zero_point = int(zero.reshape(-1)[0]) if zero is not None and zero.size == 1 else 0
                break


def constant_value(model, name: str):
    from onnx import numpy_helper

    for init in model.graph.initializer:
        if init.name == name:
            return numpy_helper.to_array(init)
    return None


def optimized_model(path: Path, *, threads: int | None = None, level: str = "ORT_ENABLE_ALL"):
    """The graph ONNX Runtime runs: saved by the session itself, at `level` (the benchmark's: ALL)."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise EdgecnnError("ONNX Runtime is not installed: pip install onnxruntime") from None
    onnx = _onnx()
    with tempfile.TemporaryDirectory(prefix="edgecnn-inspect-") as tmp:
        target = Path(tmp) / "optimized.onnx"
        options = ort.SessionOptions()
        options.graph_optimization_level = getattr(ort.GraphOptimizationLevel, level)
        options.optimized_model_filepath = str(target)
        options.log_severity_level = 3
        if threads:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        try:
            ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # noqa: BLE001  (ORT raises its own types)
            from edgecnn.runtime.onnx import ort_reason

            raise EdgecnnError(f"{Path(path).name} is not a loadable ONNX model: {ort_reason(exc)}") from None
        return onnx.load(str(target))


def unfused(graph: Graph) -> dict:
    """What ORT left of the Q/DQ pairs: float ops fed by a DequantizeLinear of an activation
    and feeding a QuantizeLinear (a quantized op without a fused kernel), and the pairs themselves."""
    producer = {out: op for op in graph.ops for out in op.outputs}
    consumers: dict[str, list] = {}
    for op in graph.ops:
        for key in op.inputs:
            consumers.setdefault(key, []).append(op)

    def activation_dq(key: str) -> bool:
        op = producer.get(key)
        return (
            op is not None
            and op.op_type == "DequantizeLinear"
            and op.inputs
            and not graph.tensors.get(op.inputs[0], TensorRecord("", (), "?")).constant
        )

    sandwiched = []
    for op in graph.ops:
        if op.op_type in CONVERSIONS:
            continue
        fed = any(activation_dq(key) for key in op.inputs)
        feeds_q = any(c.op_type == "QuantizeLinear" for out in op.outputs for c in consumers.get(out, []))
        if fed and feeds_q:
            sandwiched.append(op)
    activation_dqs = sum(1 for op in graph.ops if op.op_type == "DequantizeLinear" and activation_dq(op.outputs[0]))
    return {
        "sandwiched": sandwiched,
        "dequantize_of_activations": activation_dqs,
        "quantize": sum(1 for op in graph.ops if op.op_type == "QuantizeLinear"),
    }
