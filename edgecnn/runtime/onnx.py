"""ONNX files through ONNX Runtime, on the CPU, CUDA or TensorRT provider."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from edgecnn.errors import BadArgument, EdgecnnError
from edgecnn.runtime.tensors import TensorInfo

# Input and output types that stand for quantized values (real = scale * (q - zero_point)).
INTEGER_IO = ("uint8", "int8", "uint16", "int16")

PROVIDERS = {
    "cpu": ["CPUExecutionProvider"],
    "cuda": ["CUDAExecutionProvider", "CPUExecutionProvider"],
    "tensorrt": ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"],
}

_ORT_TYPES = {
    "tensor(float)": "float32",
    "tensor(float16)": "float16",
    "tensor(double)": "float64",
    "tensor(int8)": "int8",
    "tensor(uint8)": "uint8",
    "tensor(int16)": "int16",
    "tensor(uint16)": "uint16",
    "tensor(int32)": "int32",
    "tensor(int64)": "int64",
}


def _tensor_info(node) -> TensorInfo:
    shape = tuple(d if isinstance(d, int) else -1 for d in node.shape)
    return TensorInfo(name=node.name, shape=shape, dtype=_ORT_TYPES.get(node.type, node.type))


class OnnxSession:
    format = "onnx"
    runtime = "onnxruntime"

    def __init__(self, path, *, threads: int | None = None, provider: str = "cpu"):
        try:
            import onnxruntime as ort
        except ImportError:
            raise EdgecnnError("ONNX Runtime is not installed: pip install onnxruntime") from None
        if provider not in PROVIDERS:
            raise BadArgument(f"unknown provider `{provider}`; use one of {', '.join(PROVIDERS)}")
        wanted = PROVIDERS[provider]
        if wanted[0] not in ort.get_available_providers():
            raise EdgecnnError(
                f"ONNX Runtime here has no {wanted[0]} (it has {', '.join(ort.get_available_providers())}): "
                "pip install onnxruntime-gpu with a matching CUDA" + (" and TensorRT" if provider == "tensorrt" else "")
            )
        self.path = Path(path)
        self.threads = threads
        self.runtime_version = ort.__version__
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        try:
            self._session = ort.InferenceSession(str(self.path), sess_options=options, providers=wanted)
        except Exception as exc:  # ORT raises its own exception types for bad files
            raise EdgecnnError(f"{self.path.name} is not a loadable ONNX model: {ort_reason(exc)}") from None
        # The provider that actually runs the first node: ORT falls back silently.
        self.provider = self._session.get_providers()[0].removesuffix("ExecutionProvider").lower()
        self.inputs = [_tensor_info(n) for n in self._session.get_inputs()]
        self.outputs = [_tensor_info(n) for n in self._session.get_outputs()]
        self._read_io_quantization()
        self._feeds: dict = {}
        self._last: list = []

    def _read_io_quantization(self) -> None:
        """Integer inputs and outputs get the scale and zero point the graph gives them (the
        DequantizeLinear reading an input, the QuantizeLinear writing an output), as a TFLite
        tensor carries its own; where the graph says nothing they stay unquantized."""
        if not any(info.dtype in INTEGER_IO for info in self.inputs + self.outputs):
            return
        from edgecnn.runtime.onnx_ops import io_quantization

        try:
            found = io_quantization(self.path)
        except (OSError, ValueError):  # a graph this reader does not follow: ORT loaded it anyway
            return

        def fill(info: TensorInfo) -> TensorInfo:
            if info.dtype not in INTEGER_IO or info.name not in found:
                return info
            scale, zero_point = found[info.name]
            return replace(info, scale=scale, zero_point=zero_point)

        self.inputs = [fill(info) for info in self.inputs]
        self.outputs = [fill(info) for info in self.outputs]

    def set_inputs(self, arrays) -> None:
        self._feeds = {info.name: np.asarray(a) for info, a in zip(self.inputs, arrays)}

    def invoke(self) -> None:
        self._last = self._session.run(None, self._feeds)

    def get_outputs(self) -> list:
        return self._last

    def run(self, arrays) -> list:
        self.set_inputs(arrays)
        self.invoke()
        return self.get_outputs()

    def op_types(self) -> list[str]:
        """Op types of the graph in node order, read from the file (no `onnx` package needed)."""
        from edgecnn.runtime.onnx_ops import onnx_op_types

        return onnx_op_types(self.path)


def ort_reason(exc: Exception) -> str:
    """ONNX Runtime's message in one line, without its `[ONNXRuntimeError] : 7 : INVALID_PROTOBUF :` prefix."""
    import re

    text = " ".join(str(exc).split())
    text = re.sub(r"^\[ONNXRuntimeError\] : \d+ : [A-Z_]+ : ", "", text)
    return text[:300] or type(exc).__name__
