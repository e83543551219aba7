"""Per-layer error of a quantized artifact against its float twin: `inspect`'s numerics, `tune`'s sensitivity.

TensorFlow-free (runtime side). Each format uses its runtime's own machinery; no arithmetic of
ours stands in for a quantizer:

- ONNX: `onnxruntime.quantization.qdq_loss_debug`. `modify_model_output_intermediate_tensors`
  exposes every float tensor of both files as an output, and `create_activation_matching` pairs
  the quantized graph's values after each QuantizeLinear/DequantizeLinear pair with the float
  graph's tensor of the same name. We run the two augmented files ourselves, batch by batch, with
  the session options `collect_activations` uses (graph optimization off: the QDQ graph computes
  what its Q/DQ nodes say) and keep running sums instead of every activation of every image, which
  for MobileNetV2 at 224 would be gigabytes. This needs the `onnx` package, as ORT's tool does.
- TFLite: the LiteRT interpreter with `experimental_preserve_all_tensors=True` on both files and
  without the default XNNPACK delegate (a delegated graph keeps no intermediate tensors); tensors
  are matched by name (the converter names an op's output after the Keras layer in both files)
  and the quantized ones dequantized with their own scale and zero point. AI Edge Quantizer's
  model validator does the same comparison but only for files it quantized itself and needs the
  `litert-quantizer` package; the interpreter reads any pair, ours or a third party's.
"""

from __future__ import annotations

import math
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from edgecnn.errors import BadArgument, EdgecnnError

__all__ = ["LayerError", "layer_errors"]


@dataclass(frozen=True)
class LayerError:
    name: str  # the quantized graph's name for the compared tensor (ONNX tensor name; TFLite tensor name)
    op_type: str  # the op producing it in the quantized graph: "Conv", "CONV_2D", "DEPTHWISE_CONV_2D"
    sqnr_db: float  # 10*log10(sum(ref^2)/sum((ref-q)^2)), inf when equal
    rel_rmse: float  # rmse(ref-q)/rms(ref)
    # one image's tensor shape, batch left out (ONNX: flattened, as ORT's tool saves it)
    shape: tuple = field(default=())
    elements: int = 0  # values compared, over all images
    max_abs_error: float = 0.0
    images: int = 0

    def to_dict(self) -> dict:
        data = asdict(self)
        data["shape"] = list(self.shape)
        for key in ("sqnr_db", "rel_rmse"):  # JSON has no inf
            if not math.isfinite(data[key]):
                data[key] = None if math.isnan(data[key]) else ("inf" if data[key] > 0 else "-inf")
        return data


class _Sums:
    """Running sums of one tensor pair over the images."""

    def __init__(self):
        self.signal = 0.0
        self.noise = 0.0
        self.count = 0
        self.max_abs = 0.0
        self.shape: tuple = ()
        self.images = 0

    def add(self, ref: np.ndarray, q: np.ndarray, images: int) -> None:
        ref = np.asarray(ref, np.float64)
        q = np.asarray(q, np.float64)
        if ref.shape != q.shape:
            raise EdgecnnError(f"tensor shapes differ between the files: {ref.shape} vs {q.shape}")
        diff = ref - q
        self.signal += float(np.sum(ref * ref))
        self.noise += float(np.sum(diff * diff))
        self.count += ref.size
        self.max_abs = max(self.max_abs, float(np.max(np.abs(diff))) if diff.size else 0.0)
        self.images += images
        if not self.shape and images:
            self.shape = tuple(int(d) for d in ref.shape[1:]) if ref.ndim > 1 else (ref.size // images,)

    def result(self, name: str, op_type: str) -> LayerError:
        if self.noise == 0.0:
            sqnr, rel = math.inf, 0.0
        elif self.signal == 0.0:
            sqnr, rel = -math.inf, math.inf
        else:
            sqnr = 10.0 * math.log10(self.signal / self.noise)
            rel = math.sqrt(self.noise / self.signal)
        return LayerError(
            name=name,
            op_type=op_type,
            sqnr_db=sqnr,
            rel_rmse=rel,
            shape=self.shape,
            elements=self.count,
            max_abs_error=self.max_abs,
            images=self.images,
        )


def layer_errors(quantized, reference, images, *, limit=None, batch_size: int = 16) -> list[LayerError]:
    """Per-layer error of a quantized .tflite/.onnx against its float twin (same format) on float32
    NHWC images already preprocessed for the float model; inputs are quantized for the quantized
    model with its own input quantization. Sorted as in the graph (topological order).

    `limit` caps the number of images used (the first `limit`). Raises BadArgument for files of
    different formats or input shapes, or images of the wrong shape; EdgecnnError when nothing of
    the two graphs matches.
    """
    quantized, reference = Path(quantized), Path(reference)
    for path in (quantized, reference):
        if not path.is_file():
            raise EdgecnnError(f"no such file: {path}")
    q_suffix, r_suffix = quantized.suffix.lower(), reference.suffix.lower()
    if q_suffix != r_suffix:
        raise BadArgument(
            f"the reference must be the same format as the artifact: {quantized.name} vs {reference.name}"
        )
    if q_suffix not in (".tflite", ".onnx"):
        raise BadArgument(f"{quantized.name}: numerics compare .tflite or .onnx files")
    images = np.asarray(images, np.float32)
    if limit is not None:
        if limit < 1:
            raise BadArgument(f"limit must be at least 1. Received {limit}")
        images = images[:limit]
    if images.ndim < 2 or len(images) == 0:
        raise BadArgument(f"numerics need a batch of images; received an array of shape {images.shape}")
    if q_suffix == ".tflite":
        return _tflite_errors(quantized, reference, images)
    return _onnx_errors(quantized, reference, images, batch_size)


def _check_shapes(q_shape, r_shape, images_shape, q_name, r_name) -> None:
    def fixed(dims):
        return [None if d in (None, -1) or isinstance(d, str) else int(d) for d in dims]

    q_dims, r_dims = fixed(q_shape), fixed(r_shape)
    if len(q_dims) != len(r_dims) or any(
        a is not None and b is not None and a != b for a, b in zip(q_dims[1:], r_dims[1:])
    ):
        raise BadArgument(
            f"--reference {r_name} takes input {_dims(r_shape)}, {q_name} takes {_dims(q_shape)}: "
            "compare a quantized file with the float file of the same model"
        )
    want = q_dims[1:]
    got = list(images_shape[1:])
    if len(want) != len(got) or any(w is not None and w != g for w, g in zip(want, got)):
        raise BadArgument(
            f"the images are {'x'.join(map(str, got))}, {q_name} takes "
            f"{_dims(q_shape[1:])}: give data of the model's input size"
        )


def _dims(shape) -> str:
    return "x".join("?" if d in (None, -1) or isinstance(d, str) else str(d) for d in shape)


# -- TFLite ----------------------------------------------------------------------------------------


def _tflite_interpreter(path: Path):
    from edgecnn._tf import muted_stderr
    from edgecnn.runtime.tflite import reference_interpreter

    try:
        with muted_stderr():
            interpreter = reference_interpreter(path, experimental_preserve_all_tensors=True)
            interpreter.allocate_tensors()
    except (ValueError, RuntimeError) as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise EdgecnnError(f"{path.name} is not a loadable TFLite model: {reason}") from None
    return interpreter


def _tflite_value(interpreter, detail) -> np.ndarray:
    value = interpreter.get_tensor(detail["index"])
    scale, zero_point = detail.get("quantization", (0.0, 0))
    params = detail.get("quantization_parameters") or {}
    scales = np.asarray(params.get("scales", []), np.float32)
    if scales.size > 1:  # per-channel (an activation almost never is): along quantized_dimension
        axis = int(params.get("quantized_dimension", 0))
        shape = [1] * value.ndim
        shape[axis] = -1
        zeros = np.asarray(params.get("zero_points", np.zeros_like(scales)), np.float32)
        return ((value.astype(np.float32) - zeros.reshape(shape)) * scales.reshape(shape)).astype(np.float32)
    if scale:
        return ((value.astype(np.float32) - zero_point) * scale).astype(np.float32)
    return value.astype(np.float32)


def _tflite_quantize_input(x: np.ndarray, detail) -> np.ndarray:
    from edgecnn.runtime.tensors import quantize
    from edgecnn.runtime.tflite import _tensor_info

    return quantize(x, _tensor_info(detail))


def _tflite_errors(quantized: Path, reference: Path, images: np.ndarray) -> list[LayerError]:
    q_it, r_it = _tflite_interpreter(quantized), _tflite_interpreter(reference)
    (q_in,), (r_in,) = q_it.get_input_details(), r_it.get_input_details()
    _check_shapes(
        q_in.get("shape_signature", q_in["shape"]),
        r_in.get("shape_signature", r_in["shape"]),
        images.shape,
        quantized.name,
        reference.name,
    )
    q_details = {d["index"]: d for d in q_it.get_tensor_details()}
    r_by_name = {d["name"]: d for d in r_it.get_tensor_details()}
    # The compared tensors: each op's outputs in execution order, where the float file has the name.
    pairs: list[tuple[str, str, dict]] = []
    seen = set()
    for op in q_it._get_ops_details():
        for index in op["outputs"]:
            detail = q_details.get(int(index))
            if detail is None or detail["name"] in seen or detail["name"] not in r_by_name:
                continue
            seen.add(detail["name"])
            pairs.append((detail["name"], op["op_name"], detail))
    if not pairs:
        raise EdgecnnError(
            f"no tensor of {quantized.name} has a namesake in {reference.name}: are they the same model?"
        )
    sums = {name: _Sums() for name, _, _ in pairs}
    for image in images:
        x = image[None]
        for interpreter, detail in ((q_it, q_in), (r_it, r_in)):
            if tuple(detail["shape"]) != x.shape:
                interpreter.resize_tensor_input(detail["index"], list(x.shape))
                interpreter.allocate_tensors()
            interpreter.set_tensor(detail["index"], _tflite_quantize_input(x, detail))
            interpreter.invoke()
        q_details = {d["index"]: d for d in q_it.get_tensor_details()}
        r_by_name = {d["name"]: d for d in r_it.get_tensor_details()}
        for name, _, detail in pairs:
            try:
                ref = _tflite_value(r_it, r_by_name[name])
                got = _tflite_value(q_it, q_details[detail["index"]])
            except ValueError:  # a tensor the interpreter did not keep (e.g. a custom op's scratch)
                continue
            if ref.shape != got.shape:
                continue
            sums[name].add(ref, got, 1)
    return [sums[name].result(name, op_type) for name, op_type, _ in pairs if sums[name].count]


# -- ONNX ------------------------------------------------------------------------------------------


def _onnx_input_quantization(model, input_name: str):
    """(scale, zero point) of an integer graph input, read from the first node that dequantizes it."""
    from onnx import numpy_helper

    init = {t.name: t for t in model.graph.initializer}
    for node in model.graph.node:
        if input_name in node.input and node.op_type in (
            "DequantizeLinear",
            "QLinearConv",
            "QLinearMatMul",
            "QLinearAdd",
            "QGemm",
            "QLinearGlobalAveragePool",
        ):
            pos = list(node.input).index(input_name)
            scale_name, zero_name = node.input[pos + 1], node.input[pos + 2] if len(node.input) > pos + 2 else None
            if scale_name in init:
                scale = float(numpy_helper.to_array(init[scale_name]).reshape(-1)[0])
                zero = int(numpy_helper.to_array(init[zero_name]).reshape(-1)[0]) if zero_name in init else 0
                return scale, zero
    return None


def _onnx_errors(quantized: Path, reference: Path, images: np.ndarray, batch_size: int) -> list[LayerError]:
    try:
        import onnx
        import onnxruntime as ort
        from onnxruntime.quantization.qdq_loss_debug import (
            create_activation_matching,
            modify_model_output_intermediate_tensors,
        )
    except ImportError as exc:
        raise EdgecnnError(
            f"ONNX numerics need onnxruntime and onnx ({exc.name} is missing): pip install onnx onnxruntime"
        ) from None
    from edgecnn.runtime.tensors import TensorInfo, quantize

    models = {}
    for role, path in (("quantized", quantized), ("reference", reference)):
        try:
            models[role] = onnx.load(str(path), load_external_data=False)
        except Exception as exc:  # noqa: BLE001  (protobuf raises DecodeError and friends)
            reason = " ".join(str(exc).split())[:200] or "the bytes do not parse as an ONNX protobuf"
            raise EdgecnnError(f"{path.name} is not a loadable ONNX model: {reason}") from None
    q_model, r_model = models["quantized"], models["reference"]
    q_inputs = [i for i in q_model.graph.input if i.name not in {t.name for t in q_model.graph.initializer}]
    r_inputs = [i for i in r_model.graph.input if i.name not in {t.name for t in r_model.graph.initializer}]
    if len(q_inputs) != 1 or len(r_inputs) != 1:
        raise BadArgument("numerics compare models with one input each")

    def dims(value_info):
        return [d.dim_value if d.HasField("dim_value") else None for d in value_info.type.tensor_type.shape.dim]

    _check_shapes(dims(q_inputs[0]), dims(r_inputs[0]), images.shape, quantized.name, reference.name)
    q_elem = onnx.helper.tensor_dtype_to_np_dtype(q_inputs[0].type.tensor_type.elem_type)
    r_elem = onnx.helper.tensor_dtype_to_np_dtype(r_inputs[0].type.tensor_type.elem_type)
    q_info = TensorInfo(q_inputs[0].name, (), np.dtype(q_elem).name)
    if np.issubdtype(q_elem, np.integer):
        found = _onnx_input_quantization(q_model, q_inputs[0].name)
        if found is None:
            raise EdgecnnError(f"{quantized.name} takes {np.dtype(q_elem).name} input but no node says its scale")
        q_info = TensorInfo(q_inputs[0].name, (), np.dtype(q_elem).name, scale=found[0], zero_point=found[1])
    fixed_batch = dims(q_inputs[0])[0] or dims(r_inputs[0])[0]
    step = 1 if fixed_batch == 1 else batch_size

    # Producers in the quantized graph: the op type of a compared tensor, and the graph order.
    producer: dict[str, tuple[int, str]] = {}
    for position, node in enumerate(q_model.graph.node):
        for output in node.output:
            producer[output] = (position, node.op_type)
    del models, q_model, r_model

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # as collect_activations
    options.log_severity_level = 3
    threads = os.cpu_count() or 1
    options.intra_op_num_threads = min(threads, 4)
    sums: dict[str, _Sums] = {}
    with tempfile.TemporaryDirectory(prefix="edgecnn-numerics-") as tmp:
        sessions = {}
        for role, path in (("quantized", quantized), ("reference", reference)):
            augmented = Path(tmp) / f"{role}.onnx"
            try:
                modify_model_output_intermediate_tensors(str(path), str(augmented))
                sessions[role] = ort.InferenceSession(
                    str(augmented), sess_options=options, providers=["CPUExecutionProvider"]
                )
            except Exception as exc:  # noqa: BLE001  (ORT and onnx raise their own types)
                reason = " ".join(str(exc).split())[:300] or type(exc).__name__
                raise EdgecnnError(f"{path.name}: ONNX Runtime cannot expose its tensors: {reason}") from None
        for start in range(0, len(images), step):
            x = images[start : start + step]
            acts = {}
            for role, feed in (("quantized", quantize(x, q_info)), ("reference", x.astype(r_elem))):
                session = sessions[role]
                names = [o.name for o in session.get_outputs()]
                values = session.run(None, {session.get_inputs()[0].name: feed})
                acts[role] = {
                    name[: -len("_ReshapedSavedOutput")]: [value]
                    for name, value in zip(names, values)
                    if name.endswith("_ReshapedSavedOutput")
                }
            matched = create_activation_matching(acts["quantized"], acts["reference"])
            for name, match in matched.items():
                if not match.get("float") or not match.get("post_qdq") or match["post_qdq"][0] is None:
                    continue
                ref, got = match["float"][0], match["post_qdq"][0]
                if ref.shape != got.shape:
                    continue
                sums.setdefault(name, _Sums()).add(ref, got, len(x))
            # Tensors outside any Q/DQ pair (a float op left in the graph, a float file against
            # itself): the same name in both files is the same tensor.
            for name in acts["quantized"].keys() & acts["reference"].keys() - matched.keys():
                ref, got = acts["reference"][name][0], acts["quantized"][name][0]
                if ref.shape == got.shape and name in producer:  # (not the graph input itself)
                    sums.setdefault(name, _Sums()).add(ref, got, len(x))
    if not sums:
        raise EdgecnnError(
            f"no quantized tensor of {quantized.name} has a namesake in {reference.name}: "
            "numerics need a QDQ-format file and its float twin"
        )

    def where(name):
        for candidate in (f"{name}_QuantizeLinear_Input", name):  # a fused op's output feeds the Q
            if candidate in producer:
                return producer[candidate]
        return (len(producer), "input")

    ordered = sorted(sums, key=lambda name: where(name)[0])
    return [sums[name].result(name, where(name)[1]) for name in ordered]
