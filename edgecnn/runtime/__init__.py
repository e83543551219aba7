"""Run TFLite and ONNX artifacts: one small session interface over every runtime.

TensorFlow-free on purpose (a Raspberry Pi has only LiteRT or ONNX Runtime).
Parity checks at export time, `edgecnn benchmark` and `edgecnn evaluate` all
run artifacts through `open_session`; "run this artifact over these images" is one call,
`predict(artifact, images)`, for export's parity, evaluate, inspect and every benchmark script.
"""

from __future__ import annotations

from pathlib import Path

from edgecnn.errors import BadArgument, EdgecnnError
from edgecnn.runtime.tensors import TensorInfo, dequantize, quantize

__all__ = [
    "INFORMATIVE_OUTPUT_STD",
    "TensorInfo",
    "dequantize",
    "input_quantization",
    "open_session",
    "graph_facts",
    "output_spread",
    "predict",
    "quantize",
    "run_float",
    "TFLITE_RUNTIMES",
]

TFLITE_RUNTIMES = ("auto", "litert", "tflite-runtime", "tf")
ONNX_RUNTIMES = ("auto", "onnxruntime")


def open_session(
    path, *, runtime: str = "auto", threads: int | None = None, provider: str | None = None, trust_model: bool = False
):
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

HOW_TO_STATE_THE_RANGE = (
    "pass --input-scale S --input-zero-point Z (real = S * (q - Z)); for raw "
    "0-255 pixels use --preprocess raw, which feeds a uint8 input as it is"
)


def input_quantization(
    info: TensorInfo,
    *,
    scale: float | None = None,
    zero_point: int | None = None,
    preprocess: str | None = None,
    artifact: str = "the model",
) -> TensorInfo:
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
            raise BadArgument(
                f"--input-scale applies to integer inputs; input `{info.name}` of {artifact} is {info.dtype}"
            )
        zero_point = 0 if zero_point is None else zero_point
        if isinstance(zero_point, bool) or not isinstance(zero_point, int) or not limits[0] <= zero_point <= limits[1]:
            raise BadArgument(
                f"--input-zero-point must be an integer from {limits[0]} to {limits[1]} for a "
                f"{info.dtype} input. Received {zero_point}"
            )
        return replace(info, scale=float(scale), zero_point=int(zero_point))
    if limits is None or info.quantized:
        return info
    if preprocess == "raw" and info.dtype == "uint8":
        return replace(info, scale=1.0, zero_point=0)
    raise EdgecnnError(
        f"input `{info.name}` of {artifact} is {info.dtype} and the model says nothing about "
        f"its scale (no DequantizeLinear reads it, no quantization on the tensor): "
        f"{HOW_TO_STATE_THE_RANGE}"
    )


def run_float(session, batch, input_info: TensorInfo | None = None):
    """Feed a float32 batch through `session`, quantizing the input and dequantizing the outputs
    with the artifact's own scale and zero point (or `input_info`'s, see `input_quantization`).
    Returns a list of float32 arrays."""
    if input_info is None:
        (input_info,) = session.inputs
    raw_outputs = session.run([quantize(batch, input_info)])
    return [dequantize(out, info) for out, info in zip(raw_outputs, session.outputs)]


def _fixed_batch(info: TensorInfo) -> int | None:
    """The batch size an input fixes (an ONNX file exported at batch 1 takes only 1), or None."""
    if len(info.shape) < 2:
        return None
    first = info.shape[0]
    return int(first) if isinstance(first, int) and first > 0 else None


def predict(
    artifact,
    images,
    *,
    batch_size: int | None = None,
    runtime: str = "auto",
    threads: int | None = None,
    provider: str | None = None,
    input_info: TensorInfo | None = None,
    output: int | None = 0,
):
    """Run `artifact` over `images` and return its real-valued outputs, one row per image.

    `artifact`: a path (opened with `open_session`) or a session already open. `images`: float32
    real values, images first, in the layout the artifact takes. They go through in batches,
    quantized with the artifact's own scale and zero point (or `input_info`'s, see
    `input_quantization`), the outputs dequantized with theirs. `batch_size` None: 32 images at a
    time, or the batch the input fixes (an ONNX file exported at batch 1 takes one image at a time);
    a `batch_size` given is fed as asked: TFLite resizes its input to each batch, ONNX Runtime takes
    any batch a dynamic axis allows, and a runtime that refuses one raises its own error (so that a
    caller such as `evaluate` can fall back to single images and say so).
    Returns the `output`-th output as one float32 array of len(images) rows (`output=None`: a list
    of every output). Images whose shape the input cannot take are one EdgecnnError."""
    import numpy as np

    if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1):
        raise BadArgument(f"batch_size must be an integer of at least 1. Received {batch_size}")
    session = (
        open_session(artifact, runtime=runtime, threads=threads, provider=provider)
        if isinstance(artifact, (str, Path))
        else artifact
    )
    images = np.asarray(images, np.float32)
    if images.ndim < 1 or len(images) == 0:
        raise EdgecnnError("no images to predict")
    if input_info is None:
        if len(session.inputs) != 1:
            raise BadArgument(f"predict feeds single-input models; this one has {len(session.inputs)} inputs")
        (input_info,) = session.inputs
    wanted = tuple(input_info.shape[1:])
    if len(wanted) != images.ndim - 1 or any(
        isinstance(w, int) and w > 0 and w != int(g) for w, g in zip(wanted, images.shape[1:])
    ):
        raise EdgecnnError(
            f"images of shape {tuple(images.shape[1:])} do not fit input `{input_info.name}` of "
            f"shape {tuple(input_info.shape)}"
        )
    step = batch_size or _fixed_batch(input_info) or 32
    chunks = [run_float(session, images[start : start + step], input_info) for start in range(0, len(images), step)]
    outputs = [np.concatenate([chunk[k] for chunk in chunks]) for k in range(len(chunks[0]))]
    return outputs if output is None else outputs[output]


# Outputs that hardly vary (a random-weight deep CNN ends in an exactly uniform softmax) make any
# variant "agree" with its reference: a parity check on them proves nothing. One rule, here, for
# export's parity record and every benchmark: informative when the reference's outputs have a mean
# standard deviation across classes above this and more than one top-1 class.
INFORMATIVE_OUTPUT_STD = 1e-4


def output_spread(outputs) -> dict:
    """How much `outputs` (one row per image) vary, and whether a parity check against them is
    informative (`INFORMATIVE_OUTPUT_STD`, more than one top-1 class)."""
    import numpy as np

    outputs = np.asarray(outputs, np.float32).reshape(len(outputs), -1)
    std = float(np.mean(np.std(outputs, axis=-1)))
    classes = int(len(np.unique(outputs.argmax(-1))))
    return {
        "mean_std_across_classes": std,
        "max_output": float(outputs.max()),
        "distinct_top1": classes,
        "samples": int(len(outputs)),
        "informative": classes > 1 and std > INFORMATIVE_OUTPUT_STD,
    }


def graph_facts(path) -> dict:
    """The op census of an artifact's graph and whether it is integer-only: a fact of the file,
    recorded in its manifest, read with the readers `edgecnn inspect` and `edgecnn benchmark` use.

    - `op_counts`: op type -> count, most frequent first (the file as written); `conversions`:
      the QUANTIZE/DEQUANTIZE (QuantizeLinear/DequantizeLinear) ops among them;
    - TFLite (`graph_tflite.read_graph`, inspect's census): `integer_only` is true for a quantized
      graph with no op computing in float (`Graph.float_ops`) and no (de)quantize op inside it, only
      at its edges (touching a graph input or output, as `--io float` puts them); `float_ops` and
      `conversions_inside` name the ops that break it (`index:OP_TYPE`);
    - ONNX (`onnx_ops.onnx_op_types`, the file read as it is, no `onnx` package): a QDQ file
      computes in float on paper, and which Q/DQ pairs become integer kernels ONNX Runtime decides
      when it loads the file (its version, the CPU): `integer_only` is None; `edgecnn inspect`
      reports what fuses.
    """
    from collections import Counter

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".onnx":
        from edgecnn.runtime.graph_onnx import CONVERSIONS
        from edgecnn.runtime.onnx_ops import onnx_op_types

        counts = Counter(onnx_op_types(path))
        return {
            "ops": sum(counts.values()),
            "op_counts": dict(counts.most_common()),
            "conversions": {t: counts[t] for t in CONVERSIONS if counts[t]},
            "integer_only": None,
        }
    if suffix != ".tflite":
        raise BadArgument(f"{path.name}: not a .tflite or .onnx file")
    from edgecnn.runtime.graph_tflite import read_graph

    graph = read_graph(path)
    conversion_types = ("QUANTIZE", "DEQUANTIZE")
    edges = {id(t) for t in graph.inputs + graph.outputs}

    def at_edge(op) -> bool:
        return any(id(graph.tensor(i)) in edges for i in list(op.inputs) + list(op.outputs))

    inside = [f"{op.index}:{op.op_type}" for op in graph.ops if op.op_type in conversion_types and not at_edge(op)]
    floats = [f"{op.index}:{op.op_type}" for op in graph.float_ops(conversions=conversion_types) if not at_edge(op)]
    return {
        "ops": len(graph.ops),
        "op_counts": dict(Counter(op.op_type for op in graph.ops).most_common()),
        "conversions": dict(graph.conversions),
        "integer_only": graph.quantized and not inside and not floats,
        "float_ops": floats,
        "conversions_inside": inside,
    }
