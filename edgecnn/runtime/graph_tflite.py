"""The census of a .tflite graph, read from its flatbuffer with LiteRT's own schema module.

`ai_edge_litert.schema_py_generated` (and the `flatbuffers` package LiteRT depends on) reads
the operators, tensors and buffers exactly as the file holds them: which tensors are constant
(weights, biases), their dtypes and quantization, shape signatures (-1: dynamic). Then the
interpreter, as the benchmark opens it (XNNPACK applied by default), says which ops the
delegate took: a DELEGATE node replaces a partition of the original ops, which we recover by
walking back from the delegate node's outputs to its inputs.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

from edgecnn.errors import EdgecnnError
from edgecnn.runtime.census import Graph, Op, TensorRecord, numel

_DTYPES = {
    0: "float32",
    1: "float16",
    2: "int32",
    3: "uint8",
    4: "int64",
    5: "string",
    6: "bool",
    7: "int16",
    9: "int8",
    10: "float64",
    12: "uint64",
    15: "uint32",
    16: "uint16",
    17: "int4",
    18: "bfloat16",
}
_CONVERSIONS = {"QUANTIZE", "DEQUANTIZE"}
_SHAPE_OPS = {"RESHAPE", "SHAPE", "SQUEEZE", "EXPAND_DIMS", "STRIDED_SLICE", "PACK", "GATHER"}


def _schema():
    try:
        from ai_edge_litert import schema_py_generated as schema
    except ImportError:
        try:
            from tflite_runtime import schema_py_generated as schema  # noqa: F401 (not in every wheel)
        except ImportError:
            raise EdgecnnError(
                "reading a .tflite graph needs the ai-edge-litert package: pip install ai-edge-litert"
            ) from None
    return schema


def _op_names(schema) -> dict[int, str]:
    return {value: name for name, value in vars(schema.BuiltinOperator).items() if not name.startswith("_")}


def read_graph(path: Path) -> Graph:
    data = Path(path).read_bytes()
    if len(data) < 8 or data[4:8] != b"TFL3":
        reason = "the file is empty" if not data else "no TFL3 flatbuffer identifier"
        raise EdgecnnError(f"{Path(path).name} is not a TFLite model ({reason})")
    schema = _schema()
    try:
        model = schema.ModelT.InitFromPackedBuf(data, 0)
    except Exception as exc:  # noqa: BLE001: a damaged flatbuffer raises anything
        raise EdgecnnError(f"{Path(path).name} is not a readable TFLite flatbuffer: {type(exc).__name__}") from None
    if not model.subgraphs:
        raise EdgecnnError(f"{Path(path).name} has no subgraph")
    names = _op_names(schema)
    subgraph = model.subgraphs[0]
    tensors = subgraph.tensors or []

    def constant(index: int) -> bool:
        if index < 0 or index >= len(tensors):
            return False
        buffer = tensors[index].buffer
        if not buffer or buffer >= len(model.buffers or []):
            return False
        content = model.buffers[buffer]
        return (content.data is not None and len(content.data) > 0) or bool(getattr(content, "size", 0))

    def record(index: int) -> TensorRecord:
        tensor = tensors[index]
        signature = tensor.shapeSignature if tensor.shapeSignature is not None else tensor.shape
        shape = tuple(int(d) for d in (signature if signature is not None else []))
        q = tensor.quantization
        scales = list(np.asarray(q.scale).reshape(-1)) if q is not None and q.scale is not None else []
        zeros = list(np.asarray(q.zeroPoint).reshape(-1)) if q is not None and q.zeroPoint is not None else []
        name = tensor.name.decode() if isinstance(tensor.name, bytes) else str(tensor.name)
        return TensorRecord(
            name=name,
            shape=shape,
            dtype=_DTYPES.get(tensor.type, f"type{tensor.type}"),
            scale=float(scales[0]) if len(scales) == 1 else None,
            zero_point=int(zeros[0]) if len(zeros) == 1 and len(scales) == 1 else None,
            channels_quantized=len(scales) if len(scales) > 1 else 0,
            constant=constant(index),
        )

    records = [record(i) for i in range(len(tensors))]
    for index, rec in enumerate(records):  # stored range of integer constants (7-bit weights show here)
        if rec.constant and rec.dtype in ("int8", "uint8"):
            content = model.buffers[tensors[index].buffer].data
            if content is not None and len(content):
                values = np.frombuffer(np.asarray(content, np.uint8).tobytes(), np.dtype(rec.dtype))
                rec.int_range = (int(values.min()), int(values.max()))
    ops = []
    for position, op in enumerate(subgraph.operators or []):
        code = model.operatorCodes[op.opcodeIndex]
        builtin = max(int(code.builtinCode or 0), int(code.deprecatedBuiltinCode or 0))
        kind = names.get(builtin, f"OP{builtin}")
        if kind == "CUSTOM":
            custom = code.customCode.decode() if isinstance(code.customCode, bytes) else code.customCode
            kind = f"CUSTOM:{custom}"
        inputs = [int(i) for i in (op.inputs if op.inputs is not None else []) if int(i) >= 0]
        outputs = [int(i) for i in (op.outputs if op.outputs is not None else [])]
        ops.append(
            Op(
                index=position,
                op_type=kind,
                inputs=inputs,
                outputs=outputs,
                name=records[outputs[0]].name if outputs else kind,
            )
        )
    graph = Graph(
        format="tflite",
        path=str(path),
        tensors=records,
        ops=ops,
        inputs=[records[int(i)] for i in subgraph.inputs],
        outputs=[records[int(i)] for i in subgraph.outputs],
    )
    for op in ops:
        op.compute_dtype = _compute_dtype(op, records)
        op.macs = _macs(op, records)
    graph.classify_constants(
        weight_ops={
            "CONV_2D": 1,
            "DEPTHWISE_CONV_2D": 1,
            "FULLY_CONNECTED": 1,
            "TRANSPOSE_CONV": 1,
            "CONV_3D": 1,
            "BATCH_MATMUL": 1,
        },
        bias_ops={"CONV_2D": 2, "DEPTHWISE_CONV_2D": 2, "FULLY_CONNECTED": 2, "TRANSPOSE_CONV": 3, "CONV_3D": 2},
    )
    graph.conversions = Counter(op.op_type for op in ops if op.op_type in _CONVERSIONS)
    graph.subgraphs = len(model.subgraphs)
    return graph


def _compute_dtype(op: Op, tensors: list[TensorRecord]) -> str:
    if op.op_type in _CONVERSIONS and op.inputs and op.outputs:
        return f"{tensors[op.inputs[0]].dtype}->{tensors[op.outputs[0]].dtype}"
    for index in op.inputs:
        if not tensors[index].constant:
            return tensors[index].dtype
    return tensors[op.outputs[0]].dtype if op.outputs else "?"


def _macs(op: Op, tensors: list[TensorRecord]) -> int | None:
    """Multiply-adds at batch 1 (a dynamic dimension counts as 1); None where the shapes do not tell."""
    if not op.outputs or len(op.inputs) < 2:
        return None
    out = numel(tensors[op.outputs[0]].shape)
    weights = tensors[op.inputs[1]].shape
    if out is None or not weights or any(d < 0 for d in weights):
        return None
    if op.op_type == "CONV_2D":  # OHWI
        return out * weights[1] * weights[2] * weights[3]
    if op.op_type == "DEPTHWISE_CONV_2D":  # 1HW(C*M)
        return out * weights[1] * weights[2]
    if op.op_type == "FULLY_CONNECTED":  # (units, depth)
        return out * weights[-1]
    if op.op_type == "TRANSPOSE_CONV" and len(op.inputs) >= 3:  # inputs: shape, weights OHWI, x
        x = numel(tensors[op.inputs[2]].shape)
        w = tensors[op.inputs[1]].shape
        return x * w[0] * w[1] * w[2] if x is not None and len(w) == 4 else None
    return None


def delegated_ops(path: Path, graph: Graph, *, threads: int | None = None) -> dict:
    """Which ops the default delegate (XNNPACK) took, as the benchmark's interpreter opens the file.

    Returns {"delegate": "XNNPACK"|None, "partitions": n, "delegated": [op index...],
    "default_kernels": [op index...], "note": str|None}."""
    from edgecnn._tf import muted_stderr
    from edgecnn.runtime.tflite import load_interpreter

    interpreter_class, runtime, version = load_interpreter("auto")
    try:
        with muted_stderr():
            interpreter = interpreter_class(model_path=str(path), num_threads=threads)
            interpreter.allocate_tensors()
    except (ValueError, RuntimeError) as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise EdgecnnError(f"{Path(path).name} is not a loadable TFLite model: {reason}") from None
    wrapper = interpreter._interpreter
    nodes = [
        (wrapper.NodeName(i), [int(t) for t in wrapper.NodeInputs(i)], [int(t) for t in wrapper.NodeOutputs(i)])
        for i in range(wrapper.NumNodes())
    ]
    originals = len(graph.ops)
    producer = {}
    for op in graph.ops:
        for t in op.outputs:
            producer[t] = op.index
    delegated: set[int] = set()
    partitions = 0
    for name, inputs, outputs in nodes[originals:]:
        if name != "DELEGATE":
            continue
        partitions += 1
        boundary = set(inputs)
        stack = [t for t in outputs]
        while stack:
            tensor = stack.pop()
            op_index = producer.get(tensor)
            if op_index is None or op_index in delegated:
                continue
            delegated.add(op_index)
            stack.extend(t for t in graph.ops[op_index].inputs if t not in boundary)
    note = None
    if len(nodes) < originals:
        note = "the interpreter lists fewer nodes than the file has ops; delegation not read"
    return {
        "delegate": "XNNPACK" if partitions else None,
        "partitions": partitions,
        "delegated": sorted(delegated),
        "default_kernels": [op.index for op in graph.ops if op.index not in delegated],
        "runtime": runtime,
        "runtime_version": version,
        "note": note,
    }
