"""Keras to TFLite through `TFLiteConverter.from_keras_model`."""

from __future__ import annotations

from calibration.errors import BadArgument, EdgecnnError
from converters._tf import import_keras

import_keras()
import tensorflow as tf  # noqa: E402

from converters import IO_TYPES  # noqa: E402  (--io for each quantization, the first the default)
from converters.record import CALIBRATED_BY_TFLITE, Conversion, tflite_tensors  # noqa: E402

_TF_DTYPES = {"int8": tf.int8, "uint8": tf.uint8, "int16": tf.int16, "float": tf.float32}


def keras_to_tflite(
    model, *, quantization: str, representative_dataset=None, io: str | None = None
) -> tuple[bytes, Conversion]:
    """Convert `model`: the .tflite flatbuffer and its record (`converters.record.Conversion`:
    the input and output tensors with their dtypes and quantization, the calibration method).

    quantization: float32 | float16 (float16 weights) | dynamic (int8 weights,
    float activations) | int8 (full integer, calibrated) | int16x8 (int16
    activations, int8 weights, calibrated). `io` is the input/output type of the
    integer variants; TFLite calibrates with min/max ranges only.
    """
    if quantization not in IO_TYPES:
        raise BadArgument(f"unknown quantization `{quantization}`; use one of {', '.join(IO_TYPES)}")
    io = io or IO_TYPES[quantization][0]
    if io not in IO_TYPES[quantization]:
        raise BadArgument(f"--io {io} does not apply to {quantization}; use {' or '.join(IO_TYPES[quantization])}")
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if quantization != "float32":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantization == "float16":
        converter.target_spec.supported_types = [tf.float16]
    if quantization in ("int8", "int16x8"):
        if representative_dataset is None:
            raise BadArgument(f"{quantization} quantization needs calibration data")
        converter.representative_dataset = representative_dataset
        # Refuse to fall back to float kernels: every op integer or the conversion fails.
        converter.target_spec.supported_ops = [
            tf.lite.OpsSet.TFLITE_BUILTINS_INT8
            if quantization == "int8"
            else tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8
        ]
        converter.inference_input_type = _TF_DTYPES[io]
        converter.inference_output_type = _TF_DTYPES[io]
    try:
        flatbuffer = converter.convert()
    except Exception as exc:  # the converter raises ConverterError, RuntimeError, ValueError...
        reason = " ".join(str(exc).split())[:400] or type(exc).__name__
        raise EdgecnnError(f"TFLite conversion ({quantization}) failed: {reason}") from None
    inputs, outputs = tflite_tensors(flatbuffer)
    calibrated = quantization in ("int8", "int16x8")
    return flatbuffer, Conversion(
        format="tflite",
        quantization=quantization,
        inputs=inputs,
        outputs=outputs,
        calibration_method=CALIBRATED_BY_TFLITE if calibrated else None,
    )
