"""The format-neutral record of a graph that both readers fill: ops, tensors, and what follows from them."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

INTEGER_DTYPES = {"int8", "uint8", "int16", "int4", "uint16"}
FLOAT_DTYPES = {"float32", "float16", "bfloat16", "float64"}
_ITEM_BITS = {"int4": 4, "bfloat16": 16, "string": 8}


def numel(shape) -> int | None:
    """Elements at batch 1: a dynamic (-1/None/named) dimension counts as 1; None for an unknown rank."""
    if shape is None:
        return None
    total = 1
    for d in shape:
        total *= d if isinstance(d, int) and d > 0 else 1
    return total


def item_bytes(dtype: str) -> float:
    if dtype in _ITEM_BITS:
        return _ITEM_BITS[dtype] / 8
    try:
        return np.dtype(dtype).itemsize
    except TypeError:
        return 4


@dataclass
class TensorRecord:
    name: str
    shape: tuple  # -1 or None (or a name) where dynamic
    dtype: str
    scale: float | None = None  # per-tensor quantization; None when none or per-channel
    zero_point: int | None = None
    channels_quantized: int = 0  # per-channel scales (weights), 0 when per-tensor or none
    constant: bool = False
    kind: str | None = None  # weights, bias, other constant (classify_constants)
    int_range: tuple | None = None  # (min, max) stored values of an integer constant

    def io_dict(self) -> dict:
        return {
            "name": self.name,
            "shape": [d if isinstance(d, int) and d >= 0 else None for d in self.shape],
            "dtype": self.dtype,
            "scale": self.scale,
            "zero_point": self.zero_point,
        }


@dataclass
class Op:
    index: int
    op_type: str
    inputs: list  # tensor keys (TFLite indices, ONNX names)
    outputs: list
    name: str
    compute_dtype: str = "?"
    macs: int | None = None
    provider: str | None = None  # where it runs: XNNPACK / default kernels (TFLite), an ORT provider


@dataclass
class Graph:
    format: str
    path: str
    tensors: list | dict  # TFLite: list by index; ONNX: dict by name
    ops: list
    inputs: list
    outputs: list
    conversions: Counter = field(default_factory=Counter)  # QUANTIZE/DEQUANTIZE, QuantizeLinear/DequantizeLinear
    subgraphs: int = 1
    notes: list = field(default_factory=list)

    def tensor(self, key) -> TensorRecord:
        return self.tensors[key]

    def all_tensors(self):
        return self.tensors.values() if isinstance(self.tensors, dict) else self.tensors

    def classify_constants(self, *, weight_ops: dict, bias_ops: dict) -> None:
        """Mark each constant tensor weights, bias or other (shape tensors, scales, tables)."""
        for op in self.ops:
            for table, kind in ((weight_ops, "weights"), (bias_ops, "bias")):
                position = table.get(op.op_type)
                if position is not None and position < len(op.inputs):
                    record = self.tensor(op.inputs[position])
                    if record.constant and record.kind is None:
                        record.kind = kind
        for record in self.all_tensors():
            if record.constant and record.kind is None:
                record.kind = "other"

    # -- what follows ----------------------------------------------------------------------------
    @property
    def quantized(self) -> bool:
        return any(op.compute_dtype in INTEGER_DTYPES for op in self.ops)

    def ops_by_type(self) -> list[dict]:
        rows: dict[tuple, dict] = {}
        for op in self.ops:
            row = rows.setdefault(
                (op.op_type, op.compute_dtype),
                {"op_type": op.op_type, "compute_dtype": op.compute_dtype, "count": 0, "macs": 0},
            )
            row["count"] += 1
            row["macs"] += op.macs or 0
        return sorted(rows.values(), key=lambda r: (-r["macs"], -r["count"], r["op_type"]))

    def float_ops(
        self, conversions=("QUANTIZE", "DEQUANTIZE", "QuantizeLinear", "DequantizeLinear"), ignore=()
    ) -> list[Op]:
        """Ops computing in float inside a quantized graph (Q/DQ themselves and shape-only ops left out)."""
        if not self.quantized:
            return []
        return [
            op
            for op in self.ops
            if op.compute_dtype in FLOAT_DTYPES and op.op_type not in conversions and op.op_type not in ignore
        ]

    def dynamic_dims(self) -> list[dict]:
        found = []
        for role, records in (("input", self.inputs), ("output", self.outputs)):
            for record in records:
                for axis, d in enumerate(record.shape):
                    if not (isinstance(d, int) and d >= 0):
                        found.append(
                            {
                                "tensor": record.name,
                                "role": role,
                                "axis": axis,
                                "dim": d if isinstance(d, str) else None,
                            }
                        )
        return found

    def params_by_class(self) -> list[dict]:
        rows: dict[tuple, dict] = {}
        for record in self.all_tensors():
            if not record.constant:
                continue
            elements = numel(record.shape) or 0
            key = (record.kind or "other", record.dtype)
            row = rows.setdefault(
                key, {"class": key[0], "dtype": key[1], "tensors": 0, "params": 0, "bytes": 0, "per_channel": 0}
            )
            row["tensors"] += 1
            row["params"] += elements
            row["bytes"] += int(round(elements * item_bytes(record.dtype)))
            row["per_channel"] += 1 if record.channels_quantized else 0
        order = {"weights": 0, "bias": 1, "other": 2}
        return sorted(rows.values(), key=lambda r: (order.get(r["class"], 3), -r["bytes"]))

    def macs(self) -> int | None:
        counted = [op.macs for op in self.ops if op.macs is not None]
        return sum(counted) if counted else None
