"""Weights held out of TensorFlow's graphs while a converter freezes and optimizes them.

tf2onnx freezes the Keras model (convert_variables_to_constants_v2: every variable read,
put in a GraphDef, imported into a new function, exported again) and runs grappler on the
frozen graph (serialized, parsed, optimized, serialized and parsed back): some 20x the
float32 weights at the peak, measured step by step with
benchmarks/export_memory_steps.py (AlexNet, 233 MB of weights: tf2onnx's freezing left
the process 1.7 GB larger, its grappler took it 2.5 GB higher still).

`hold_out()` makes the freezing read each float32 variable once and give TensorFlow, in
its place, a constant of the same dtype and shape holding one marker value, which the
TensorProto stores in four bytes (TensorFlow repeats the last value to fill the shape).
Grappler's decisions do not depend on the values except for all-zero or all-one tensors
(kept real: a zero bias stays in) and the constants it computes; its folding of
Identity(weight), the one thing it does to a Keras weight, gives the same marker under
the Identity's name, as it gives the weight. `HeldOut.resolve` then maps each marker
constant of the optimized graph to its variable; a float constant grappler made that is
not a marker (computed from a weight, perhaps) raises `NotHeldOut`, and the caller
converts again without holding out. tf2onnx puts the real values back when it makes each
ONNX tensor (converters/onnx.py). TFLiteConverter does not use this: with TensorFlow 2.21
it converts a Keras model through a SavedModel, with no freezing or grappler in Python.
"""

from __future__ import annotations

import contextlib

import numpy as np

# A held-out weight's marker: this plus its index (never 0 or 1); exact in float32 for
# the first 7 million weights.
MARKER_BASE = 2.0**20
# Float32 variables held out: at least this many elements and not all one value.
MIN_ELEMENTS = 1024
FLOAT_TYPES = frozenset({1, 2, 14, 19})  # DT_FLOAT, DT_DOUBLE, DT_BFLOAT16, DT_HALF


class NotHeldOut(Exception):
    """Grappler made a float constant that may come from a held-out weight."""


class HeldOut:
    def __init__(self):
        self.variables: dict[float, object] = {}  # marker -> variable

    def float_constants(self, graph_def) -> set:
        """What the float constants of `graph_def` hold (before grappler)."""
        return {
            _float_key(node.attr["value"].tensor)
            for node in graph_def.node
            if node.op == "Const" and node.attr["value"].tensor.dtype in FLOAT_TYPES
        }

    def resolve(self, graph_def, before: set) -> dict:
        """Node name -> variable for each marker constant of `graph_def` (whose marker
        value is cleared); NotHeldOut for a float constant neither a marker nor in `before`."""
        held = {}
        for node in graph_def.node:
            if node.op != "Const":
                continue
            tensor = node.attr["value"].tensor
            variable = (
                self.variables.get(tensor.float_val[0])
                if tensor.dtype == 1 and len(tensor.float_val) == 1 and not tensor.tensor_content
                else None
            )
            if variable is not None and [d.size for d in tensor.tensor_shape.dim] == list(variable.shape):
                del tensor.float_val[:]
                held[node.name] = variable
            elif tensor.dtype in FLOAT_TYPES and self.variables and _float_key(tensor) not in before:
                raise NotHeldOut(node.name)
        return held


def read(variable) -> bytes:
    """A variable's bytes, as TensorProto.tensor_content holds them; eager even inside
    the graph a converter builds."""
    from tensorflow.python.eager import context

    with context.eager_mode():
        return variable.numpy().tobytes()


@contextlib.contextmanager
def hold_out():
    """TensorFlow's freezing (convert_variables_to_constants_v2 and its variants) with
    marker constants for the float32 variables; yields the `HeldOut` record."""
    from tensorflow.core.framework import tensor_pb2, types_pb2
    from tensorflow.python.framework import convert_to_constants, tensor_util

    held = HeldOut()
    stand_ins: dict[int, object] = {}  # id -> the broadcast view standing for a variable
    eager = convert_to_constants._FunctionConverterDataInEager
    original_eval, original_proto = eager._eval, tensor_util.make_tensor_proto

    def _eval(self, tensor):
        value = original_eval(self, tensor)
        if (
            not hasattr(tensor, "handle")
            or value.dtype != np.float32
            or value.size < MIN_ELEMENTS
            or (value == value.flat[0]).all()
        ):
            return value
        marker = np.float32(MARKER_BASE + len(held.variables))
        held.variables[float(marker)] = tensor
        view = np.broadcast_to(marker, value.shape)  # no memory: every element the one marker
        stand_ins[id(view)] = view
        return view

    def make_tensor_proto(values, dtype=None, shape=None, *args, **kwargs):
        if stand_ins.get(id(values)) is values:
            proto = tensor_pb2.TensorProto(dtype=types_pb2.DT_FLOAT, float_val=[values.flat[0]])
            for size in values.shape:
                proto.tensor_shape.dim.add(size=size)
            return proto
        return original_proto(values, dtype, shape, *args, **kwargs)

    eager._eval, tensor_util.make_tensor_proto = _eval, make_tensor_proto
    try:
        yield held
    finally:
        eager._eval, tensor_util.make_tensor_proto = original_eval, original_proto


def _float_key(tensor) -> tuple:
    """A float TensorProto's dtype, shape and values, whichever way the proto stores them."""
    from tensorflow.python.framework import tensor_util

    value = tensor_util.MakeNdarray(tensor)
    return tensor.dtype, value.shape, value.tobytes()
