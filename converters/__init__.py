"""Keras to TFLite and ONNX, with post-training quantization.

Each backend lives in its own module and is imported when used (NNCF style):
`converters.tflite` needs TensorFlow, `converters.onnx` needs tf2onnx and
onnxruntime.quantization. Both take every quantization option explicitly.
"""

QUANTIZATIONS = ("float32", "float16", "dynamic", "int8", "int16x8")
FORMATS = ("tflite", "onnx")
CALIBRATION_METHODS = ("minmax", "entropy", "percentile")
# Which quantizations need representative (calibration) data.
NEEDS_CALIBRATION = frozenset({"int8", "int16x8"})
# TFLite --io for each quantization: the first entry is the default. Here, without TensorFlow,
# so that `export --io` is checked before TensorFlow loads (a refusal took a minute under load).
IO_TYPES = {
    "float32": ("float",),
    "float16": ("float",),
    "dynamic": ("float",),
    "int8": ("int8", "uint8", "float"),
    "int16x8": ("float", "int16"),
}

__all__ = ["CALIBRATION_METHODS", "FORMATS", "IO_TYPES", "NEEDS_CALIBRATION", "QUANTIZATIONS"]
