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
        if quantization == "int8" and not _whole_in_converter():
            flatbuffer = _calibrate_then_quantize(converter)
        else:
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


def _whole_in_converter() -> bool:
    """`EDGECNN_TFLITE_INT8=converter`: int8 in one `converter.convert()` call, as TensorFlow
    does it (the same bytes, more memory); the reference the split path is tested against."""
    import os

    return os.environ.get("EDGECNN_TFLITE_INT8", "split") == "converter"


def _calibrate_then_quantize(converter) -> bytes:
    """Full-integer int8 as `converter.convert()` makes it (the same bytes), in two steps,
    so that the quantizer does not run beside what the converter no longer needs.

    Inside one `convert()` call the MLIR quantizer (3-6x the weights on its own) starts while
    the float flatbuffer, the copy with calibration outputs added and the calibrator's
    interpreter holding a third copy are still referenced by the converter's frames: on
    VGG-16 some 2 GB of the 7 GB peak. Here the converter stops after calibration (the
    switch TensorFlow's QuantizationDebugger uses), its frames end, and the calibrated model
    is quantized, deduplicated and given its conversion metadata as `convert()` does it.
    TensorFlow 2.21's private steps; tests/test_tflite_split.py holds the bytes to the
    one-call path so that a TensorFlow upgrade that changes them fails there.
    """
    import gc

    from tensorflow.lite.python import lite

    converter._experimental_calibrate_only = True
    converter.exclude_conversion_metadata = True  # added once, to the final model, below
    calibrated = converter.convert()
    gc.collect()
    if not converter._quant_mode.is_post_training_integer_quantization():
        # Nothing was calibrated: convert() was the whole job, but for the metadata it was told to leave out.
        return bytes(calibrated) if _uses_buffer_offsets(calibrated) else _with_metadata(converter, calibrated)
    flags = converter._get_base_converter_args()
    flags.update(converter._quant_mode.converter_flags())
    quantized = lite._mlir_quantize(
        calibrated,
        converter._experimental_disable_per_channel,
        input_data_type=converter.inference_input_type,
        output_data_type=converter.inference_output_type,
        enable_variable_quantization=converter._quant_mode.enable_mlir_variable_quantization,
        disable_per_channel_for_dense_layers=(
            converter._experimental_disable_per_channel_quantization_for_dense_layers
        ),
        debug_options_str=lite._build_conversion_flags(**flags).debug_options.SerializeToString(),
    )
    del calibrated
    gc.collect()
    if _uses_buffer_offsets(quantized):  # over 2 GB: convert() leaves such a model as it is
        return bytes(quantized)
    return _with_metadata(converter, lite._deduplicate_readonly_buffers(quantized))


def _uses_buffer_offsets(flatbuffer) -> bool:
    from tensorflow.lite.python import lite
    from tensorflow.lite.tools import flatbuffer_utils

    return bool(lite._check_model_use_buffer_offset(flatbuffer_utils.convert_bytearray_to_object(flatbuffer)))


def _with_metadata(converter, flatbuffer) -> bytes:
    """`flatbuffer` with the conversion metadata `convert()` adds last (TensorFlow's
    `_convert_and_export_metrics`: sparsity modes, the model's hash, the options)."""
    from tensorflow.lite.python import util
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(flatbuffer)
    del flatbuffer
    converter._metadata.options.modelOptimizationModes.extend(util.get_sparsity_modes(model))
    converter._metadata.environment.modelHash = util.get_model_hash(model)
    model = util.populate_conversion_metadata(model, converter._metadata)
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))
