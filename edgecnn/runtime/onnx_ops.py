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
    pos = start
    while pos < end:
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            _, pos = _varint(buf, pos)
        elif wire == 1:
            pos += 8
        elif wire == 2:
            length, pos = _varint(buf, pos)
            if pos + length > end:
                raise ValueError("field runs past the end of its message")
            if number == wanted:
                yield pos, pos + length
            pos += length
        elif wire == 5:
            pos += 4
        else:
            raise ValueError(f"unsupported wire type {wire}")
    if pos != end:
        raise ValueError("message ends inside a field")


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
