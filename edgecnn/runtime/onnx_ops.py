"""The op types of an ONNX graph, read from the protobuf without the `onnx` package.

A board has ONNX Runtime but usually not `onnx` (it belongs to the export extra), and
ONNX Runtime does not list a graph's nodes. The file is a `ModelProto`; its field 7 is
the `GraphProto`, whose repeated field 1 is `NodeProto`, whose field 4 is `op_type`.
Walking those three levels skips the weights by their length prefix, so even a large
model costs a memory map and a few thousand varints.
"""

from __future__ import annotations

import mmap
from pathlib import Path

_MODEL_GRAPH, _GRAPH_NODE, _NODE_OP_TYPE = 7, 1, 4


def _varint(buf, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")


def _length_delimited(buf, start: int, end: int, wanted: int):
    """(start, end) of every length-delimited field number `wanted` in buf[start:end]."""
    for number, wire, value in _fields(buf, start, end):
        if wire == 2 and number == wanted:
            yield value


def onnx_op_types(path) -> list[str]:
    """Op types of the main graph's nodes, in file order (subgraphs of If/Loop not included)."""
    with open(Path(path), "rb") as handle:
        size = handle.seek(0, 2)
        if size == 0:
            return []
        with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as buf:
            ops = []
            for g_start, g_end in _length_delimited(buf, 0, size, _MODEL_GRAPH):
                for n_start, n_end in _length_delimited(buf, g_start, g_end, _GRAPH_NODE):
                    for o_start, o_end in _length_delimited(buf, n_start, n_end, _NODE_OP_TYPE):
                        ops.append(bytes(buf[o_start:o_end]).decode("utf-8", "replace"))
            return ops


# -- the quantization of the graph's inputs and outputs ------------------------------------
#
# An ONNX input of type uint8/int8 carries no scale itself (a TFLite tensor does). In a QDQ
# graph the scale and zero point are the other two inputs of the DequantizeLinear that reads
# the input; for an output, of the QuantizeLinear that writes it. Both are initializers or
# Constant nodes. The field numbers are onnx.proto's.

_GRAPH_INITIALIZER, _GRAPH_INPUT, _GRAPH_OUTPUT = 5, 11, 12
_NODE_INPUT, _NODE_OUTPUT, _NODE_ATTRIBUTE = 1, 2, 5
_ATTR_NAME, _ATTR_FLOAT, _ATTR_INT, _ATTR_TENSOR = 1, 2, 3, 5
_TENSOR_DIMS, _TENSOR_TYPE, _TENSOR_FLOATS, _TENSOR_INT32S, _TENSOR_INT64S = 1, 2, 4, 5, 7
_TENSOR_NAME, _TENSOR_RAW, _TENSOR_DOUBLES, _TENSOR_LOCATION = 8, 9, 10, 14
_VALUE_INFO_NAME = 1

# TensorProto.DataType -> numpy dtype of the types a scale or zero point can have
_DTYPES = {1: "<f4", 2: "u1", 3: "i1", 4: "<u2", 5: "<i2", 6: "<i4", 7: "<i8", 10: "<f2", 11: "<f8"}


def _fields(buf, start: int, end: int):
    """(field number, wire type, value) of each field of the message in buf[start:end]: an int
    for varints, (start, end) for length-delimited fields, the bytes of fixed-width ones."""
    pos = start
    while pos < end:
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 1:
            value, pos = bytes(buf[pos : pos + 8]), pos + 8
        elif wire == 2:
            length, pos = _varint(buf, pos)
            if pos + length > end:
                raise ValueError("field runs past the end of its message")
            value, pos = (pos, pos + length), pos + length
        elif wire == 5:
            value, pos = bytes(buf[pos : pos + 4]), pos + 4
        else:
            raise ValueError(f"unsupported wire type {wire}")
        yield number, wire, value
    if pos != end:
        raise ValueError("message ends inside a field")


def _text(buf, span) -> str:
    return bytes(buf[span[0] : span[1]]).decode("utf-8", "replace")


def _signed(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _packed_varints(buf, span) -> list[int]:
    values, pos = [], span[0]
    while pos < span[1]:
        value, pos = _varint(buf, pos)
        values.append(_signed(value))
    return values


def _tensor(buf, span):
    """(name, numpy array) of a TensorProto; the array is None where its data is not inline."""
    import numpy as np

    name, dtype, dims, raw, numbers, external = "", None, [], None, [], False
    for number, wire, value in _fields(buf, *span):
        if number == _TENSOR_NAME and wire == 2:
            name = _text(buf, value)
        elif number == _TENSOR_TYPE and wire == 0:
            dtype = value
        elif number == _TENSOR_DIMS:
            dims += _packed_varints(buf, value) if wire == 2 else [_signed(value)]
        elif number == _TENSOR_RAW and wire == 2:
            raw = bytes(buf[value[0] : value[1]])
        elif number == _TENSOR_FLOATS:
            numbers += list(np.frombuffer(bytes(buf[value[0] : value[1]]) if wire == 2 else value, "<f4"))
        elif number == _TENSOR_DOUBLES:
            numbers += list(np.frombuffer(bytes(buf[value[0] : value[1]]) if wire == 2 else value, "<f8"))
        elif number in (_TENSOR_INT32S, _TENSOR_INT64S):
            numbers += _packed_varints(buf, value) if wire == 2 else [_signed(value)]
        elif number == _TENSOR_LOCATION and wire == 0 and value == 1:
            external = True
    if dtype not in _DTYPES or external:
        return name, None
    if raw is not None:
        array = np.frombuffer(raw, _DTYPES[dtype])
    elif dtype == 10:  # float16 values are stored as the bits of each value in int32_data
        array = np.asarray(numbers, np.uint16).view(np.float16)
    else:
        array = np.asarray(numbers).astype(_DTYPES[dtype])
    size = int(np.prod(dims)) if dims else 1
    if array.size != size:
        return name, None
    return name, array.reshape(dims) if dims else array.reshape(())


def _node(buf, span) -> dict:
    node = {"op": "", "inputs": [], "outputs": [], "value": None}
    for number, wire, value in _fields(buf, *span):
        if wire != 2:
            continue
        if number == _NODE_OP_TYPE:
            node["op"] = _text(buf, value)
        elif number == _NODE_INPUT:
            node["inputs"].append(_text(buf, value))
        elif number == _NODE_OUTPUT:
            node["outputs"].append(_text(buf, value))
        elif number == _NODE_ATTRIBUTE:
            node["attributes"] = node.get("attributes", []) + [value]
    if node["op"] == "Constant":
        node["value"] = _constant_value(buf, node.pop("attributes", []))
    node.pop("attributes", None)
    return node


def _constant_value(buf, attributes):
    """The value of a Constant node: its `value` tensor, `value_float` or `value_int`."""
    import numpy as np

    for span in attributes:
        name, found = "", None
        for number, wire, value in _fields(buf, *span):
            if number == _ATTR_NAME and wire == 2:
                name = _text(buf, value)
            elif number == _ATTR_TENSOR and wire == 2:
                found = _tensor(buf, value)[1]
            elif number == _ATTR_FLOAT and wire == 5:
                found = np.frombuffer(value, "<f4").reshape(())
            elif number == _ATTR_INT and wire == 0:
                found = np.asarray(_signed(value), np.int64)
        if name in ("value", "value_float", "value_int"):
            return found
    return None


def read_graph(path) -> dict:
    """The main graph's nodes (op, inputs, outputs, a Constant's value), its small constant
    initializers by name, and the names of its inputs and outputs."""
    with open(Path(path), "rb") as handle:
        size = handle.seek(0, 2)
        graph = {"nodes": [], "constants": {}, "inputs": [], "outputs": []}
        if size == 0:
            return graph
        with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as buf:
            for g_start, g_end in _length_delimited(buf, 0, size, _MODEL_GRAPH):
                for number, wire, value in _fields(buf, g_start, g_end):
                    if wire != 2:
                        continue
                    if number == _GRAPH_NODE:
                        graph["nodes"].append(_node(buf, value))
                    elif number == _GRAPH_INITIALIZER and value[1] - value[0] < 4096:  # scalars, not weights
                        name, array = _tensor(buf, value)
                        graph["constants"][name] = array
                    elif number in (_GRAPH_INPUT, _GRAPH_OUTPUT):
                        for n, w, v in _fields(buf, *value):
                            if n == _VALUE_INFO_NAME and w == 2:
                                key = "inputs" if number == _GRAPH_INPUT else "outputs"
                                graph[key].append(_text(buf, v))
    for node in graph["nodes"]:
        if node["op"] == "Constant" and node["outputs"]:
            graph["constants"].setdefault(node["outputs"][0], node["value"])
    return graph


def _scale_and_zero_point(graph: dict, node: dict) -> tuple[float, int] | None:
    """The per-tensor (scale, zero point) of a QuantizeLinear/DequantizeLinear, or None when
    they are not constants of one value each (per-channel, computed, external)."""
    import numpy as np

    constants = graph["constants"]
    scale = constants.get(node["inputs"][1]) if len(node["inputs"]) > 1 else None
    if scale is None or np.size(scale) != 1 or not np.issubdtype(np.asarray(scale).dtype, np.floating):
        return None
    zero_point = 0
    if len(node["inputs"]) > 2 and node["inputs"][2]:
        zp = constants.get(node["inputs"][2])
        if zp is None or np.size(zp) != 1:
            return None
        zero_point = int(np.asarray(zp).reshape(()))
    value = float(np.asarray(scale, np.float64).reshape(()))
    return (value, zero_point) if np.isfinite(value) and value > 0 else None


def io_quantization(path) -> dict[str, tuple[float, int]]:
    """(scale, zero point) of each graph input read by DequantizeLinear nodes that agree on one
    per-tensor scale, and of each graph output written by a QuantizeLinear (real = scale * (q - zp))."""
    graph = read_graph(path)
    found: dict[str, tuple[float, int]] = {}
    for name in graph["inputs"]:
        readers = [n for n in graph["nodes"] if n["op"] == "DequantizeLinear" and n["inputs"][:1] == [name]]
        params = {_scale_and_zero_point(graph, n) for n in readers}
        if len(params) == 1 and None not in params:
            found[name] = params.pop()
    for name in graph["outputs"]:
        writers = [n for n in graph["nodes"] if n["op"] == "QuantizeLinear" and name in n["outputs"][:1]]
        if len(writers) == 1:
            params = _scale_and_zero_point(graph, writers[0])
            if params is not None:
                found[name] = params
    return found
