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

__all__ = ["CALIBRATION_METHODS", "FORMATS", "NEEDS_CALIBRATION", "QUANTIZATIONS"]
