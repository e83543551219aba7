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

# `--format` choices of export and tune.
FORMAT_CHOICES = {"tflite": ("tflite",), "onnx": ("onnx",), "all": FORMATS}


def formats_for(choice: str) -> tuple[str, ...]:
    """`--format tflite|onnx|all` as the formats to write."""
    from calibration.errors import BadArgument

    if choice not in FORMAT_CHOICES:
        raise BadArgument(f"--format must be tflite, onnx or all. Received `{choice}`")
    return FORMAT_CHOICES[choice]


def quantization_for(**flags: bool) -> str:
    """The one quantization of `--int8`, `--float16`, ... (`int8=True`); float32 when none is on."""
    from calibration.errors import BadArgument

    chosen = [name for name, on in flags.items() if on]
    if len(chosen) > 1:
        raise BadArgument(f"choose one quantization; got {' and '.join('--' + c for c in chosen)}")
    return chosen[0] if chosen else "float32"


__all__ = [
    "CALIBRATION_METHODS",
    "FORMATS",
    "FORMAT_CHOICES",
    "IO_TYPES",
    "NEEDS_CALIBRATION",
    "QUANTIZATIONS",
    "formats_for",
    "quantization_for",
]
