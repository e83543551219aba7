"""Run TFLite and ONNX artifacts: one small session interface over every runtime.

TensorFlow-free on purpose (a Raspberry Pi has only LiteRT or ONNX Runtime).
Parity checks at export time, `edgecnn benchmark` and `edgecnn evaluate` all
run artifacts through `open_session`.
"""

from __future__ import annotations

from pathlib import Path

from edgecnn.errors import BadArgument, EdgecnnError
from edgecnn.runtime.tensors import TensorInfo, dequantize, quantize

__all__ = ["TensorInfo", "dequantize", "input_quantization", "open_session", "quantize", "run_float",
           "TFLITE_RUNTIMES"]

TFLITE_RUNTIMES = ("auto", "litert", "tflite-runtime", "tf")
ONNX_RUNTIMES = ("auto", "onnxruntime")


def open_session(path, *, runtime: str = "auto", threads: int | None = None,
                 provider: str | None = None, trust_model: bool = False):
    """A loaded artifact, ready to run: a TFLiteSession or an OnnxSession (or, as the float
    reference, a KerasSession for a saved .keras/.h5 model, through the model gate unless
    `trust_model`)."""
    path = Path(path)
    if not path.is_file():
        raise EdgecnnError(f"no such file: {path}")
    if threads is not None and threads < 1:
        raise BadArgument(f"--threads must be at least 1. Received {threads}")
    suffix = path.suffix.lower()
    if suffix == ".tflite":
        if runtime not in TFLITE_RUNTIMES:
            raise BadArgument(f"runtime `{runtime}` cannot run .tflite files; use one of {', '.join(TFLITE_RUNTIMES)}")
        if provider not in (None, "cpu"):
            raise BadArgument(f"--provider applies to ONNX Runtime only. Received `{provider}` for {path.name}")
        from edgecnn.runtime.tflite import TFLiteSession

        return TFLiteSession(path, runtime=runtime, threads=threads)
    if suffix == ".onnx":
        if runtime not in ONNX_RUNTIMES:
            raise BadArgument(f"runtime `{runtime}` cannot run .onnx files; use auto or onnxruntime")
        from edgecnn.runtime.onnx import OnnxSession

        return OnnxSession(path, threads=threads, provider=provider or "cpu")
    if suffix in (".keras", ".h5"):  # the float reference (needs TensorFlow)
        if runtime not in ("auto", "tf"):
            raise BadArgument(f"a Keras model runs on TensorFlow (--runtime auto or tf), not `{runtime}`")
        from edgecnn.runtime.keras import KerasSession

        return KerasSession(path, threads=threads, trust_model=trust_model)
    raise BadArgument(f"{path.name}: not a .tflite, .onnx or Keras (.keras, .h5) file")


# Integer input types that hold quantized real values, and the zero points they can hold.
_QUANTIZED_INPUTS = {"uint8": (0, 255), "int8": (-128, 127), "uint16": (0, 65535), "int16": (-32768, 32767)}

HOW_TO_STATE_THE_RANGE = ("pass --input-scale S --input-zero-point Z (real = S * (q - Z)); for raw "
                          "0-255 pixels use --preprocess raw, which feeds a uint8 input as it is")


def input_quantization(info: TensorInfo, *, scale: float | None = None, zero_point: int | None = None,
                       preprocess: str | None = None, artifact: str = "the model") -> TensorInfo:
    """`info` with the scale and zero point to quantize real input values with.

    - `scale` (and `zero_point`, default 0) given: those, whatever the model says;
    - a float input, or one the artifact gives a scale (a TFLite tensor, an ONNX input read by
      a DequantizeLinear): as it is;
    - a uint8 input fed `raw` pixels (0-255): scale 1, zero point 0 (the values as they are);
    - any other integer input: EdgecnnError, one line saying how to state the range, never a
      silent cast of real values to integers.
    """
    import math
    from dataclasses import replace

    if zero_point is not None and scale is None:
        raise BadArgument("--input-zero-point needs --input-scale")
    limits = _QUANTIZED_INPUTS.get(info.dtype)
    if scale is not None:
        if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not (math.isfinite(scale) and scale > 0):
            raise BadArgument(f"--input-scale must be a finite number above 0. Received {scale}")
        if limits is None:
            raise BadArgument(f"--input-scale applies to integer inputs; input `{info.name}` of {artifact} "
                              f"is {info.dtype}")
        zero_point = 0 if zero_point is None else zero_point
        if isinstance(zero_point, bool) or not isinstance(zero_point, int) or not limits[0] <= zero_point <= limits[1]:
            raise BadArgument(f"--input-zero-point must be an integer from {limits[0]} to {limits[1]} for a "
                              f"{info.dtype} input. Received {zero_point}")
        return replace(info, scale=float(scale), zero_point=int(zero_point))
    if limits is None or info.quantized:
        return info
    if preprocess == "raw" and info.dtype == "uint8":
        return replace(info, scale=1.0, zero_point=0)
    raise EdgecnnError(f"input `{info.name}` of {artifact} is {info.dtype} and the model says nothing about "
                       f"its scale (no DequantizeLinear reads it, no quantization on the tensor): "
                       f"{HOW_TO_STATE_THE_RANGE}")


def run_float(session, batch, input_info: TensorInfo | None = None):
    """Feed a float32 batch through `session`, quantizing the input and dequantizing the outputs
    with the artifact's own scale and zero point (or `input_info`'s, see `input_quantization`).
    Returns a list of float32 arrays."""
    if input_info is None:
        (input_info,) = session.inputs
    raw_outputs = session.run([quantize(batch, input_info)])
    return [dequantize(out, info) for out, info in zip(raw_outputs, session.outputs)]
