"""Keras to ONNX through tf2onnx; quantization through ONNX Runtime."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

from edgecnn._tf import import_keras
from edgecnn.errors import BadArgument, EdgecnnError

import_keras()
import tensorflow as tf  # noqa: E402

OPSET = 17
INPUT_NAME = "input"


def keras_to_onnx(model, *, opset: int = OPSET) -> bytes:
    """The float32 ONNX model, batch dimension dynamic, input named `input`."""
    import tf2onnx

    if opset < 17:
        raise BadArgument(f"ONNX opset must be 17 or newer. Received {opset}")
    (input_shape,) = [tuple(t.shape) for t in model.inputs] if len(model.inputs) == 1 else [None]
    if input_shape is None:
        raise BadArgument(f"`{model.name}` has {len(model.inputs)} inputs; edgecnn exports single-input models")
    signature = [tf.TensorSpec((None, *input_shape[1:]), tf.float32, name=INPUT_NAME)]
    try:
        proto, _ = tf2onnx.convert.from_keras(model, input_signature=signature, opset=opset)
    except Exception as exc:
        reason = " ".join(str(exc).split())[:400] or type(exc).__name__
        raise EdgecnnError(f"ONNX conversion failed: {reason}") from None
    return _canonical(proto).SerializeToString()


_NAME_COUNTER = re.compile(r"__(\d+)")


def _canonical(proto):
    """The same model gives the same bytes, whatever the process converted before.

    tf2onnx suffixes the names it makes with `__N` from process-wide counters, and its
    initializer order varies. Renumber the suffixes in order of first appearance in
    the graph, then sort the initializers by name.
    """
    numbers: dict[str, int] = {}

    def rename(name: str) -> str:
        return _NAME_COUNTER.sub(lambda m: f"__{numbers.setdefault(m.group(1), len(numbers) + 1)}", name)

    graph = proto.graph
    for node in graph.node:
        node.name = rename(node.name)
        node.input[:] = [rename(name) for name in node.input]
        node.output[:] = [rename(name) for name in node.output]
    for value in (*graph.input, *graph.output, *graph.value_info, *graph.initializer):
        value.name = rename(value.name)
    initializers = sorted(graph.initializer, key=lambda tensor: tensor.name)
    ordered = [type(tensor)() for tensor in initializers]
    for copy, tensor in zip(ordered, initializers):
        copy.CopyFrom(tensor)
    del graph.initializer[:]
    graph.initializer.extend(ordered)
    return proto


def quantize_onnx(float_model: bytes, *, quantization: str, calibration_reader_factory=None,
                  calib_method: str = "minmax") -> bytes:
    """Quantize a float32 ONNX model with ONNX Runtime and return the new model.

    int8: `quant_pre_process`, then `quantize_static` in QDQ format with per-channel
    int8 weights and int8 activations. int16x8: the same with int16 activations.
    dynamic: `quantize_dynamic` (int8 weights). float16: onnxconverter-common,
    float32 inputs and outputs kept. Every option is passed explicitly: ORT's
    defaults have changed between versions.
    """
    from onnxruntime.quantization import (
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_dynamic,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    methods = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
               "percentile": CalibrationMethod.Percentile}
    if calib_method not in methods:
        raise BadArgument(f"unknown calibration method `{calib_method}`; use one of {', '.join(methods)}")
    if quantization == "float16":
        return _to_float16(float_model)
    with tempfile.TemporaryDirectory(prefix="edgecnn-onnx-") as tmp:
        tmp = Path(tmp)
        (tmp / "float.onnx").write_bytes(float_model)
        try:
            if quantization == "dynamic":
                quantize_dynamic(
                    tmp / "float.onnx", tmp / "quant.onnx",
                    op_types_to_quantize=None, per_channel=False, reduce_range=False,
                    weight_type=QuantType.QInt8, nodes_to_quantize=None, nodes_to_exclude=None,
                    use_external_data_format=False, extra_options={},
                )
            elif quantization in ("int8", "int16x8"):
                if calibration_reader_factory is None:
                    raise BadArgument(f"{quantization} quantization needs calibration data")
                quant_pre_process(
                    tmp / "float.onnx", tmp / "prep.onnx",
                    skip_optimization=False, skip_onnx_shape=False, skip_symbolic_shape=False,
                    auto_merge=False,
                )
                activation_type = QuantType.QInt8 if quantization == "int8" else QuantType.QInt16
                quantize_static(
                    tmp / "prep.onnx", tmp / "quant.onnx",
                    calibration_data_reader=calibration_reader_factory(),
                    quant_format=QuantFormat.QDQ,
                    op_types_to_quantize=None,
                    per_channel=True,
                    reduce_range=False,
                    activation_type=activation_type,
                    weight_type=QuantType.QInt8,
                    nodes_to_quantize=None,
                    nodes_to_exclude=None,
                    use_external_data_format=False,
                    calibrate_method=methods[calib_method],
                    calibration_providers=["CPUExecutionProvider"],
                    extra_options={
                        "ActivationSymmetric": False,
                        "WeightSymmetric": True,
                        # int16 QDQ needs com.microsoft Q/DQ ops below opset 21
                        "UseQDQContribOps": quantization == "int16x8",
                    },
                )
            else:
                raise BadArgument(f"unknown quantization `{quantization}` for ONNX")
        except (BadArgument, EdgecnnError):
            raise
        except Exception as exc:
            reason = " ".join(str(exc).split())[:400] or type(exc).__name__
            raise EdgecnnError(f"ONNX Runtime {quantization} quantization failed: {reason}") from None
        return (tmp / "quant.onnx").read_bytes()


def _to_float16(float_model: bytes) -> bytes:
    import onnx
    from onnxconverter_common import float16

    model = onnx.load_from_string(float_model)
    converted = float16.convert_float_to_float16(model, keep_io_types=True)
    return converted.SerializeToString()
