"""What a converter knows about the artifact it made: a plain frozen record of its own.

    artifact, conversion = keras_to_tflite(model, quantization="int8", representative_dataset=...)
    conversion.inputs[0].dtype, conversion.inputs[0].scale   # 'int8', 0.0039...

The converters return `(artifact bytes, Conversion)`: the quantization, the input and output
tensors as the file declares them (dtype, shape, and the scale and zero point of a quantized
one), the calibration method and the quantizer's settings as passed. `edgecnn export` assembles
its manifest from this record. Like the rest of `converters`, this imports nothing of edgecnn.
"""

from __future__ import annotations

from dataclasses import dataclass, field

CALIBRATED_BY_TFLITE = "minmax"  # TFLiteConverter calibrates with min/max ranges only


@dataclass(frozen=True)
class TensorFacts:
    """One input or output of an artifact: `real = scale * (q - zero_point)` when quantized."""

    name: str
    shape: tuple  # None where the dimension is dynamic (the batch)
    dtype: str  # numpy's name: float32, float16, int8, uint8, int16
    scale: float | None = None  # None when the tensor is not quantized
    zero_point: int | None = None

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "shape": list(self.shape),
            "dtype": self.dtype,
            "scale": self.scale,
            "zero_point": self.zero_point,
        }


@dataclass(frozen=True)
class Conversion:
    """The facts one conversion knows about the artifact it returned."""

    format: str  # tflite | onnx
    quantization: str  # float32 | float16 | dynamic | int8 | int16x8
    inputs: tuple[TensorFacts, ...]
    outputs: tuple[TensorFacts, ...]
    # How the activation ranges were calibrated (minmax, entropy, percentile); None when not calibrated.
    calibration_method: str | None = None
    # The quantizer's options as passed (ONNX Runtime's static quantization); None where there are none.
    settings: dict | None = field(default=None, hash=False)


def tflite_tensors(flatbuffer: bytes) -> tuple[tuple[TensorFacts, ...], tuple[TensorFacts, ...]]:
    """(inputs, outputs) of a .tflite flatbuffer, as TFLite's interpreter reports them."""
    import warnings

    import numpy as np
    import tensorflow as tf

    with warnings.catch_warnings():  # tf.lite.Interpreter says it moves to ai-edge-litert
        warnings.simplefilter("ignore")
        interpreter = tf.lite.Interpreter(model_content=flatbuffer)

    def facts(detail: dict) -> TensorFacts:
        scale, zero_point = detail.get("quantization", (0.0, 0))
        shape = detail.get("shape_signature", detail["shape"])
        return TensorFacts(
            name=detail["name"],
            shape=tuple(None if int(d) == -1 else int(d) for d in shape),
            dtype=np.dtype(detail["dtype"]).name,
            scale=float(scale) if scale else None,
            zero_point=int(zero_point) if scale else None,
        )

    return (
        tuple(facts(d) for d in interpreter.get_input_details()),
        tuple(facts(d) for d in interpreter.get_output_details()),
    )


def onnx_tensors(proto) -> tuple[tuple[TensorFacts, ...], tuple[TensorFacts, ...]]:
    """(inputs, outputs) of an ONNX ModelProto, initializers left out (as ONNX Runtime lists them).
    QDQ files keep float inputs and outputs: no scale or zero point."""
    from onnx import helper

    graph = proto.graph
    constants = {tensor.name for tensor in graph.initializer}

    def facts(value) -> TensorFacts:
        tensor = value.type.tensor_type
        shape = tuple(d.dim_value if d.HasField("dim_value") else None for d in tensor.shape.dim)
        return TensorFacts(name=value.name, shape=shape, dtype=helper.tensor_dtype_to_np_dtype(tensor.elem_type).name)

    return (tuple(facts(v) for v in graph.input if v.name not in constants), tuple(facts(v) for v in graph.output))
