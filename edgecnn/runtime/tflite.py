"""TFLite through LiteRT, then tflite-runtime, then TensorFlow's interpreter."""

from __future__ import annotations

import importlib
from pathlib import Path

import numpy as np

from edgecnn.errors import EdgecnnError
from edgecnn.runtime.tensors import TensorInfo

# (runtime name, module with `Interpreter`, distribution that provides it)
_CANDIDATES = (
    ("litert", "ai_edge_litert.interpreter", "ai-edge-litert"),
    ("tflite-runtime", "tflite_runtime.interpreter", "tflite-runtime"),
    ("tf", "tensorflow.lite.python.interpreter", "tensorflow"),
)


def _version_of(distribution: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(distribution)
    except PackageNotFoundError:
        return "unknown"


def load_interpreter(runtime: str = "auto"):
    """(Interpreter class, runtime name, version): the first runtime that imports."""
    wanted = [c for c in _CANDIDATES if runtime in ("auto", c[0])]
    for name, module_name, distribution in wanted:
        try:
            if name == "tf":
                from edgecnn._tf import import_keras

                import_keras()  # quiet TensorFlow's import noise
            module = importlib.import_module(module_name)
        except (ImportError, EdgecnnError):
            continue
        return module.Interpreter, name, _version_of(distribution)
    if runtime == "auto":
        raise EdgecnnError(
            "no TFLite runtime is installed: pip install ai-edge-litert (or tflite-runtime on 32-bit Arm)"
        )
    distribution = {c[0]: c[2] for c in _CANDIDATES}[runtime]
    raise EdgecnnError(f"runtime `{runtime}` is not installed: pip install {distribution}")


def _tensor_info(detail: dict) -> TensorInfo:
    scale, zero_point = detail.get("quantization", (0.0, 0))
    return TensorInfo(
        name=detail["name"],
        shape=tuple(int(d) for d in detail.get("shape_signature", detail["shape"])),
        dtype=np.dtype(detail["dtype"]).name,
        scale=float(scale) if scale else None,
        zero_point=int(zero_point) if scale else None,
    )


class TFLiteSession:
    format = "tflite"

    def __init__(self, path, *, runtime: str = "auto", threads: int | None = None):
        interpreter_class, self.runtime, self.runtime_version = load_interpreter(runtime)
        self.path = Path(path)
        self.threads = threads
        from edgecnn._tf import muted_stderr  # (TF-free: TensorFlow is imported only on demand)

        try:
            # LiteRT announces "Created TensorFlow Lite XNNPACK delegate" on stderr; the
            # reason for a failure comes back in the exception, not on stderr.
            with muted_stderr():
                self._interpreter = interpreter_class(model_path=str(self.path), num_threads=threads)
                self._interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            reason = " ".join(str(exc).split()) or type(exc).__name__
            raise EdgecnnError(f"{self.path.name} is not a loadable TFLite model: {reason}") from None
        self._input_details = self._interpreter.get_input_details()
        self._output_details = self._interpreter.get_output_details()
        self.inputs = [_tensor_info(d) for d in self._input_details]
        self.outputs = [_tensor_info(d) for d in self._output_details]
        self.provider = "cpu"

    def _fit_batch(self, arrays) -> None:
        for detail, array in zip(self._input_details, arrays):
            if tuple(detail["shape"]) != array.shape:
                self._interpreter.resize_tensor_input(detail["index"], list(array.shape))
                self._interpreter.allocate_tensors()
                self._input_details = self._interpreter.get_input_details()
                self._output_details = self._interpreter.get_output_details()

    def set_inputs(self, arrays) -> None:
        """Copy inputs in; kept apart from `invoke` so a benchmark times the invoke alone."""
        self._fit_batch(arrays)
        for detail, array in zip(self._input_details, arrays):
            self._interpreter.set_tensor(detail["index"], array)

    def invoke(self) -> None:
        self._interpreter.invoke()

    def get_outputs(self) -> list:
        return [self._interpreter.get_tensor(d["index"]) for d in self._output_details]

    def run(self, arrays) -> list:
        self.set_inputs(arrays)
        self.invoke()
        return self.get_outputs()

    def op_types(self) -> list[str]:
        """Op type names of the graph in execution order (CONV_2D, QUANTIZE...).

        Read through a second interpreter without the default XNNPACK delegate,
        which would otherwise hide the ops it takes behind one DELEGATE node.
        """
        plain = reference_interpreter(self.path, type(self._interpreter))
        return [op["op_name"] for op in plain._get_ops_details()]


def reference_interpreter(path, interpreter_class=None, **options):
    """An interpreter of `path` on the runtime's reference kernels, without the default XNNPACK
    delegate (which hides the ops it takes behind one DELEGATE node): the ops as the file has them.
    `interpreter_class` defaults to the first runtime that imports; `options` go to its constructor."""
    if interpreter_class is None:
        interpreter_class, _, _ = load_interpreter("auto")
    resolver = getattr(importlib.import_module(interpreter_class.__module__), "OpResolverType", None)
    if resolver is not None and hasattr(resolver, "BUILTIN_WITHOUT_DEFAULT_DELEGATES"):
        options["experimental_op_resolver_type"] = resolver.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    return interpreter_class(model_path=str(path), **options)
