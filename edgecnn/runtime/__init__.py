"""Run TFLite and ONNX artifacts: one small session interface over every runtime.

TensorFlow-free on purpose (a Raspberry Pi has only LiteRT or ONNX Runtime).
Parity checks at export time, `edgecnn benchmark` and `edgecnn evaluate` all
run artifacts through `open_session`.
"""

from __future__ import annotations

from pathlib import Path

from edgecnn.errors import BadArgument, EdgecnnError
from edgecnn.runtime.tensors import TensorInfo, dequantize, quantize

__all__ = ["TensorInfo", "dequantize", "open_session", "quantize", "TFLITE_RUNTIMES"]

TFLITE_RUNTIMES = ("auto", "litert", "tflite-runtime", "tf")
ONNX_RUNTIMES = ("auto", "onnxruntime")


def open_session(path, *, runtime: str = "auto", threads: int | None = None,
                 provider: str | None = None):
    """A loaded artifact, ready to run: a TFLiteSession or an OnnxSession (or, as the float
    reference, a KerasSession for a saved .keras/.h5 model)."""
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

        return KerasSession(path, threads=threads)
    raise BadArgument(f"{path.name}: not a .tflite, .onnx or Keras (.keras, .h5) file")


def run_float(session, batch):
    """Feed a float32 batch through `session`, quantizing the input and dequantizing the outputs
    with the artifact's own scale and zero point. Returns a list of float32 arrays."""
    (input_info,) = session.inputs
    raw_outputs = session.run([quantize(batch, input_info)])
    return [dequantize(out, info) for out, info in zip(raw_outputs, session.outputs)]
