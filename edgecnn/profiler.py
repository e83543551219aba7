"""What a model costs: parameters, multiply-adds and activation memory, per layer.

    from edgecnn.profiler import profile_model, profile_zoo_model
    profile = profile_zoo_model("mobilenet_v2")          # 1.0/224
    profile.macs, profile.params, profile.peak_activation_bytes

Everything is counted from the built graph of a tf_keras functional (or Sequential)
model, never typed in. The conventions, which are those behind the published
figures of the architecture papers:

* **MACs** are the multiply-accumulates of convolutions and dense layers only:
  `Conv1D/2D/3D` (grouped too), `DepthwiseConv1D/2D`, `SeparableConv1D/2D`,
  `Conv1D/2D/3DTranspose` and `Dense` on inputs of any rank. Biases, batch
  normalization, activations, pooling, additions and every other layer count 0.
  A transposed convolution counts every input element times its kernel
  (`H_in * W_in * C_in * kh * kw * C_out`), cropped borders included.
* **Activation bytes** are batch 1, float32 (4 bytes per element), whatever the
  dtype of the model.
* **Peak activation bytes** come from a liveness pass over the graph in Keras's
  execution order: a tensor lives from the layer that produces it until its last
  consumer (model inputs from the start, model outputs to the end), and the peak
  is the largest sum of the live tensors while a layer runs (its inputs and its
  outputs both held). This is the arena that a runtime with a perfect memory
  planner and no in-place reuse, such as TFLite's, needs for activations; scratch
  buffers of the kernels (im2col) are not included.
* **Weight bytes**: float32 is 4 bytes per parameter. The int8 figure is an
  estimate of a fully int8 model: 1 byte per weight of the conv and dense kernels,
  4 bytes per bias (int32) and per every other parameter (batch normalization
  statistics, which a converter usually folds away, so this errs high);
  per-channel quantization scales are ignored.

Models nested inside a model (`base = MobileNetV2(include_top=False); x = base(x)`)
are profiled through: their layers appear as `base/layer`, and a shared layer's
parameters count once while every call counts its MACs.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import math
import os
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from edgecnn.errors import BadArgument, EdgecnnError

BYTES_PER_ACTIVATION = 4  # float32


@dataclass(frozen=True)
class LayerCost:
    """One call of one layer in the graph.

    `output_shape` has no batch dimension (a layer with several outputs gives a
    tuple of shapes). `params` count at the layer's first call only, so the rows
    add up to the model's totals. `activation_bytes` is the size of the outputs,
    batch 1, float32.
    """

    name: str
    type: str
    output_shape: tuple
    params: int
    macs: int
    activation_bytes: int

    def to_dict(self) -> dict[str, Any]:
        record = asdict(self)
        record["output_shape"] = _listify(self.output_shape)
        return record


@dataclass(frozen=True)
class ModelProfile:
    """The totals of a model and its per-layer rows (see the module docstring)."""

    model: str
    input_shape: tuple  # no batch dimension; a tuple of shapes for several inputs
    params: int
    macs: int
    peak_activation_bytes: int
    peak_activation_layer: str  # the layer running when the peak is reached
    weight_bytes_float32: int
    weight_bytes_int8: int
    layers: tuple[LayerCost, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values: lists instead of tuples, layers as dicts."""
        return {
            "model": self.model,
            "input_shape": _listify(self.input_shape),
            "params": self.params,
            "macs": self.macs,
            "peak_activation_bytes": self.peak_activation_bytes,
            "peak_activation_layer": self.peak_activation_layer,
            "weight_bytes_float32": self.weight_bytes_float32,
            "weight_bytes_int8": self.weight_bytes_int8,
            "layers": [layer.to_dict() for layer in self.layers],
        }


def _listify(value):
    if isinstance(value, (tuple, list)):
        return [_listify(v) for v in value]
    return value


# --------------------------------------------------------------------------- graph walk


@dataclass
class _Op:
    name: str
    layer: Any
    inputs: list[str]  # tensor keys, resolved
    outputs: list[str]
    first_call: bool


class _Walker:
    """Flattens a functional graph (nested models inlined) into ops in execution order.

    Tensors are keyed per call scope, so a nested model called twice gives two
    sets of tensors. `shapes` maps every key to its shape with batch 1, propagated
    with `compute_output_shape` where the stored graph shape is not fully known
    (a nested model built for `(None, None, 3)`, or an input shape override).
    """

    def __init__(self, keras):
        self.keras = keras
        self.ops: list[_Op] = []
        self.shapes: dict[str, tuple[int, ...]] = {}
        self.alias: dict[str, str] = {}
        self.seen_layers: set[int] = set()
        self._scopes = 0

    def resolve(self, key: str) -> str:
        while key in self.alias:
            key = self.alias[key]
        return key

    def new_scope(self) -> int:
        self._scopes += 1
        return self._scopes

    def walk_top(self, model, input_shape=None) -> tuple[list[str], list[str]]:
        """Walk `model`; returns the keys of its inputs and of its outputs."""
        scope = self.new_scope()
        inputs = list(model.inputs)
        overrides = _input_overrides(model, inputs, input_shape)
        for tensor, shape in zip(inputs, overrides):
            key = _key(scope, tensor)
            self.shapes[key] = shape
            layer = tensor._keras_history.layer
            self.ops.append(_Op(layer.name, layer, [], [key], True))
            self.seen_layers.add(id(layer))
        self._walk_nodes(model, scope, prefix="")
        return ([_key(scope, t) for t in inputs], [self.resolve(_key(scope, t)) for t in model.outputs])

    def _walk_nodes(self, model, scope: int, prefix: str) -> None:
        produced = {_key(scope, t) for t in model.inputs}
        for depth in sorted(model._nodes_by_depth, reverse=True):
            for node in model._nodes_by_depth[depth]:
                if node.is_input:
                    continue
                in_keys = [_key(scope, t) for t in node.keras_inputs]
                if not all(k in produced for k in in_keys):
                    continue  # Keras skips nodes it cannot compute; so do we
                out_tensors = self.keras_flatten(node.outputs)
                out_keys = [_key(scope, t) for t in out_tensors]
                produced.update(out_keys)
                layer = node.layer
                if isinstance(layer, self.keras.Model):
                    self._walk_nested(layer, node, scope, in_keys, out_keys, prefix)
                    continue
                resolved_in = [self.resolve(k) for k in in_keys]
                self._set_output_shapes(layer, node, resolved_in, out_keys, out_tensors)
                first = id(layer) not in self.seen_layers
                self.seen_layers.add(id(layer))
                index = layer._inbound_nodes.index(node) if not first else 0
                name = f"{prefix}{layer.name}" + (f"[{index}]" if index else "")
                self.ops.append(_Op(name, layer, resolved_in, out_keys, first))

    def _walk_nested(self, model, node, outer_scope, in_keys, out_keys, prefix) -> None:
        if not getattr(model, "_is_graph_network", False):
            raise EdgecnnError(
                f"cannot profile the nested model `{model.name}`: only functional and "
                "Sequential models can be walked layer by layer"
            )
        scope = self.new_scope()
        call_inputs = self.keras_flatten(node.call_args[0]) if node.call_args else []
        call_inputs = [t for t in call_inputs if hasattr(t, "_keras_history")]
        if len(call_inputs) == len(model.inputs):  # in the order of model.inputs
            outer_in = [self.resolve(_key(outer_scope, t)) for t in call_inputs]
        else:
            outer_in = [self.resolve(k) for k in in_keys]
        if len(outer_in) != len(model.inputs):
            raise EdgecnnError(
                f"cannot profile the nested model `{model.name}`: it is called with "
                f"{len(outer_in)} tensors for {len(model.inputs)} inputs"
            )
        for inner, outer in zip(model.inputs, outer_in):
            self.alias[_key(scope, inner)] = outer
        self._walk_nodes(model, scope, prefix=f"{prefix}{model.name}/")
        for inner, outer in zip(model.outputs, out_keys):
            self.alias[outer] = self.resolve(_key(scope, inner))

    def _set_output_shapes(self, layer, node, in_keys, out_keys, out_tensors) -> None:
        in_shapes = [self.shapes[k] for k in in_keys]
        static_in = [_static_shape(t) for t in node.keras_inputs]
        static_out = [_static_shape(t) for t in out_tensors]
        if in_shapes == static_in and all(_known(s) for s in static_out):
            shapes = static_out
        else:
            try:
                arg = (
                    self.keras_shape(in_shapes[0]) if len(in_shapes) == 1 else [self.keras_shape(s) for s in in_shapes]
                )
                computed = layer.compute_output_shape(arg)
                shapes = [_as_tuple(s) for s in _flatten_shapes(computed)]
            except Exception as exc:  # noqa: BLE001  (any failure means "unknown")
                raise EdgecnnError(
                    f"cannot work out the output shape of layer `{layer.name}` "
                    f"({type(layer).__name__}) for inputs {in_shapes}: {exc}"
                ) from None
            if len(shapes) != len(out_keys) or not all(_known(s) for s in shapes):
                raise BadArgument(
                    f"the output of layer `{layer.name}` has unknown dimensions "
                    f"{shapes}; build the model with a fixed input shape"
                )
        for key, shape in zip(out_keys, shapes):
            self.shapes[key] = (1, *shape[1:]) if shape else shape

    def keras_flatten(self, structure):
        import tensorflow as tf

        return tf.nest.flatten(structure)

    def keras_shape(self, shape):
        import tensorflow as tf

        return tf.TensorShape(shape)


def _key(scope: int, tensor) -> str:
    return f"{scope}:{id(tensor)}"


def _as_tuple(shape) -> tuple:
    dims = shape.as_list() if hasattr(shape, "as_list") else list(shape)
    return tuple(None if d is None else int(d) for d in dims)


def _static_shape(tensor) -> tuple:
    shape = _as_tuple(tensor.shape)
    return (1, *shape[1:]) if shape else shape


def _flatten_shapes(shape) -> list:
    """A layer's compute_output_shape result as a list of shapes."""
    if hasattr(shape, "as_list"):
        return [shape]
    if isinstance(shape, (list, tuple)) and shape and all(d is None or isinstance(d, int) for d in shape):
        return [shape]
    if isinstance(shape, dict):
        shape = [shape[k] for k in sorted(shape)]
    flat = []
    for item in shape:
        flat.extend(_flatten_shapes(item))
    return flat


def _known(shape: tuple) -> bool:
    return all(d is not None for d in shape)


def _input_overrides(model, inputs, input_shape) -> list[tuple]:
    """Batch-1 shapes for the model inputs, with `input_shape` filling unknown dims."""
    shapes = [_static_shape(t) for t in inputs]
    if input_shape is None:
        for shape in shapes:
            if not _known(shape):
                raise BadArgument(
                    f"`{model.name}` takes inputs of shape {shape[1:]} with unknown "
                    "dimensions; give a fixed input shape (--input-size)"
                )
        return shapes
    if len(inputs) != 1:
        raise BadArgument(f"an input shape override needs a model with one input; `{model.name}` has {len(inputs)}")
    wanted = tuple(int(d) for d in input_shape)
    current = shapes[0][1:]
    if len(wanted) != len(current) or any(c is not None and c != w for c, w in zip(current, wanted)):
        raise BadArgument(f"`{model.name}` takes inputs of shape {current}. Received `input_shape={wanted}`")
    return [(1, *wanted)]


# --------------------------------------------------------------------------- counting


def _layer_kinds(keras):
    layers = keras.layers
    return (
        ("transpose", (layers.Conv1DTranspose, layers.Conv2DTranspose, layers.Conv3DTranspose)),
        ("depthwise", (layers.DepthwiseConv1D, layers.DepthwiseConv2D)),
        ("separable", (layers.SeparableConv1D, layers.SeparableConv2D)),
        ("conv", (layers.Conv1D, layers.Conv2D, layers.Conv3D)),
        ("dense", (layers.Dense,)),
    )


def _kind(layer, kinds) -> str | None:
    for kind, classes in kinds:
        if isinstance(layer, classes):
            return kind
    return None


def _dims(variable) -> list[int]:
    return [int(d) for d in variable.shape]


def _layer_macs(kind: str | None, layer, in_shape: tuple, out_shape: tuple) -> int:
    """Multiply-accumulates of one call, from the built kernel and the batch-1 shapes."""
    if kind is None:
        return 0
    out_elements = math.prod(out_shape[1:])
    if kind == "conv":
        # kernel (*k, C_in / groups, C_out): every output element sums k*C_in/groups products
        return out_elements * math.prod(_dims(layer.kernel)[:-1])
    if kind == "depthwise":
        # kernel (*k, C_in, depth_multiplier): every output element sums k products
        return out_elements * math.prod(_dims(layer.depthwise_kernel)[:-2])
    if kind == "separable":
        dw = _dims(layer.depthwise_kernel)  # (*k, C_in, depth_multiplier)
        pw = _dims(layer.pointwise_kernel)  # (*1, C_in * depth_multiplier, C_out)
        positions = out_elements // pw[-1]
        return positions * (math.prod(dw) + pw[-2] * pw[-1])
    if kind == "transpose":
        # kernel (*k, C_out, C_in): every input element is scattered over k*C_out outputs
        return math.prod(in_shape[1:]) * math.prod(_dims(layer.kernel)[:-1])
    if kind == "dense":
        # kernel (features, units) applied at every position of the leading axes
        return math.prod(in_shape[1:-1]) * math.prod(_dims(layer.kernel))
    return 0


def _kernel_params(kind: str | None, layer) -> int:
    if kind is None:
        return 0
    names = (
        ("depthwise_kernel", "pointwise_kernel")
        if kind == "separable"
        else (("depthwise_kernel",) if kind == "depthwise" else ("kernel",))
    )
    return sum(math.prod(_dims(getattr(layer, n))) for n in names)


def _nbytes(shape: tuple) -> int:
    return BYTES_PER_ACTIVATION * math.prod(shape)


def _peak(ops: list[_Op], shapes: dict[str, tuple], outputs: list[str]) -> tuple[int, str]:
    """Liveness over the flat op list: (peak bytes, name of the op at the peak)."""
    uses: Counter[str] = Counter()
    for op in ops:
        for key in set(op.inputs):
            uses[key] += 1
    pinned = set(outputs)
    live: dict[str, int] = {}
    current = peak = 0
    peak_at = ""
    for op in ops:
        for key in op.outputs:
            if key not in live:
                live[key] = _nbytes(shapes[key])
                current += live[key]
        if current > peak:
            peak, peak_at = current, op.name
        for key in set(op.inputs):
            uses[key] -= 1
        for key in (*set(op.inputs), *op.outputs):
            if uses[key] <= 0 and key not in pinned and key in live:
                current -= live.pop(key)
    return peak, peak_at


def profile_model(model, *, input_shape=None) -> ModelProfile:
    """Count the costs of a built tf_keras functional or Sequential model.

    `input_shape` (no batch dimension) fills in input dimensions the model leaves
    unknown, such as `(None, None, 3)`; dimensions the model fixes must match it.
    Raises `BadArgument` for a model that cannot be profiled as given (unknown
    shapes) and `EdgecnnError` for one that cannot be walked (subclassed models).
    See the module docstring for what is counted.
    """
    from edgecnn._tf import import_keras

    keras = import_keras()
    if not isinstance(model, keras.Model):
        raise BadArgument(
            f"profile_model needs a tf_keras Model. Received an object of type "
            f"{type(model).__module__}.{type(model).__name__}"
        )
    if not getattr(model, "_is_graph_network", False) or not model.built:
        raise EdgecnnError(
            f"cannot profile `{model.name}`: only built functional and Sequential models "
            "can be walked layer by layer (build a Sequential model with an Input first)"
        )
    walker = _Walker(keras)
    inputs, outputs = walker.walk_top(model, input_shape)
    kinds = _layer_kinds(keras)

    rows: list[LayerCost] = []
    total_params = total_macs = int8_bytes = 0
    for op in walker.ops:
        kind = _kind(op.layer, kinds)
        in_shape = walker.shapes[op.inputs[0]] if op.inputs else ()
        out_shapes = [walker.shapes[k] for k in op.outputs]
        macs = _layer_macs(kind, op.layer, in_shape, out_shapes[0]) if out_shapes else 0
        params = int(op.layer.count_params()) if op.first_call else 0
        if op.first_call:
            kernel = _kernel_params(kind, op.layer)
            int8_bytes += kernel + 4 * (params - kernel)
        total_params += params
        total_macs += macs
        shown = tuple(s[1:] for s in out_shapes)
        rows.append(
            LayerCost(
                name=op.name,
                type=type(op.layer).__name__,
                output_shape=shown[0] if len(shown) == 1 else shown,
                params=params,
                macs=macs,
                activation_bytes=sum(_nbytes(s) for s in out_shapes),
            )
        )
    peak, peak_at = _peak(walker.ops, walker.shapes, outputs)
    in_shapes = tuple(walker.shapes[key][1:] for key in inputs)
    return ModelProfile(
        model=model.name,
        input_shape=in_shapes[0] if len(in_shapes) == 1 else in_shapes,
        params=total_params,
        macs=total_macs,
        peak_activation_bytes=peak,
        peak_activation_layer=peak_at,
        weight_bytes_float32=4 * total_params,
        weight_bytes_int8=int8_bytes,
        layers=tuple(rows),
    )


def check_zoo_arguments(name: str, *, input_size=None, alpha=None, classes=None) -> None:
    """The --input-size, --alpha and --classes of a zoo model, checked before anything is built.

    `--input-size` from the model's smallest input (its `min_input_size`); `--alpha` a finite
    positive number, for the models that have one; `--classes` at least 1.
    """
    from edgecnn.errors import check_int, check_number
    from edgecnn.models import get_model_info

    info = get_model_info(name)
    if input_size is not None:
        check_int(input_size, "--input-size", minimum=info.min_input_size)
    if alpha is not None:
        if "alpha" not in info.extra_args:
            raise BadArgument(f"--alpha applies to the MobileNets; {info.name} has no width multiplier")
        check_number(alpha, "--alpha", above=0)
    if classes is not None:
        check_int(classes, "--classes", minimum=1)


def zoo_input_shape(name: str, input_size: int | None) -> tuple[int, int, int] | None:
    """`(N, N, default channels)` of a zoo model for `--input-size N`; None keeps its default."""
    from edgecnn.models import get_model_info

    info = get_model_info(name)
    if input_size is None:
        return None
    if isinstance(input_size, bool) or not isinstance(input_size, int) or input_size < 1:
        raise BadArgument(f"`input_size` must be a positive integer. Received `input_size={input_size!r}`")
    return (input_size, input_size, info.default_input_shape[2])


# -------------------------------------------------------------------- memory, before building

# Sizes that every zoo model is known to build at (its default input, ImageNet's widest
# alpha, ImageNet's class count): no estimate is needed below them.
_USUAL_ALPHA, _USUAL_CLASSES = 1.4, 1000
_MAX_WEIGHT_BYTES = 2**31  # protobuf (TF graphs, ONNX) and TFLite flatbuffers stop at 2 GB


@dataclass(frozen=True)
class MemoryEstimate:
    """A zoo model's size at a requested shape, estimated from two small builds."""

    model: str
    params: int
    peak_activation_bytes: int  # batch 1, float32


def estimate_zoo_memory(
    name: str, *, input_size: int | None = None, alpha: float | None = None, classes: int | None = None
) -> MemoryEstimate | None:
    """Parameters and peak activation bytes of a zoo model, without building it at that size.

    Returns None for a request within the model's usual sizes (nothing to fear). Otherwise
    the model is profiled at three sizes up to its default input (width at most 1, at
    most 1000 classes), and the figures are extrapolated: activations and the weights of
    flattening heads grow as a quadratic of the input size, the weights with the square of alpha and
    the classifier with the class count. An estimate, to refuse requests that cannot fit,
    not a figure to report.
    """
    from edgecnn.models import get_model_info

    info = get_model_info(name)
    default = info.default_input_shape[0]
    size = default if input_size is None else input_size
    width = 1.0 if alpha is None else float(alpha)
    count = _USUAL_CLASSES if classes is None else int(classes)
    if size <= default and width <= _USUAL_ALPHA and count <= _USUAL_CLASSES:
        return None
    from edgecnn._tf import import_keras

    keras = import_keras()
    ref_alpha = None if alpha is None else min(width, 1.0)
    ref_classes = None if classes is None else min(count, _USUAL_CLASSES)
    # Three sizes up to the default input: every figure is a quadratic in the input size
    # (`valid` convolutions make (s - k)^2 of a flattened head), fitted through them.
    low, high = max(info.min_input_size, default // 2), default
    sizes = (low, (low + high) // 2, high)
    figures = []
    for ref_size in sizes:
        profile = profile_zoo_model(
            info.name, input_size=ref_size, alpha=ref_alpha, classes=ref_classes, check_memory=False
        )
        head = sum(layer.params for layer in profile.layers if layer.name == "predictions")
        figures.append((profile.peak_activation_bytes, profile.params - head, head))
        keras.backend.clear_session()

    def at_size(index: int) -> float:
        total = 0.0  # Lagrange's quadratic through the three (size, figure) points
        for i, (s_i, row) in enumerate(zip(sizes, figures)):
            term = float(row[index])
            for j, s_j in enumerate(sizes):
                if j != i:
                    term *= (size - s_j) / (s_i - s_j)
            total += term
        return max(total, float(figures[0][index]))

    width_ratio = width / (ref_alpha or 1.0)
    class_ratio = count / (ref_classes or _USUAL_CLASSES) if classes is not None else 1.0
    params = at_size(1) * width_ratio**2 + at_size(2) * width_ratio * class_ratio
    return MemoryEstimate(model=info.name, params=int(params), peak_activation_bytes=int(at_size(0) * width_ratio))


def available_memory_bytes() -> int | None:
    """MemAvailable of /proc/meminfo (Linux), else the physical memory; None if unknown."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return None


def _gb(n: float) -> str:
    if n >= 1e15:
        return f"{n:.1e} bytes"
    if n >= 1e12:
        return f"{n / 1e12:,.0f} TB"
    return f"{n / 1e9:.1f} GB" if n >= 1e8 else f"{n / 1e6:.1f} MB"


def _count(n: float) -> str:
    """12.3M, 8.9G (billion), 1.2e+15 parameters."""
    if n >= 1e12:
        return f"{n:.1e}"
    return f"{n / 1e9:,.1f}G" if n >= 1e9 else f"{n / 1e6:,.1f}M"


def check_zoo_memory(
    name: str,
    *,
    input_size: int | None = None,
    alpha: float | None = None,
    classes: int | None = None,
    batch: int = 8,
    weight_copies: int = 3,
    extra_bytes: int = 0,
    what: str = "building it",
) -> MemoryEstimate | None:
    """Refuse (BadArgument, exit 2) a zoo model too large for this machine, before building it.

    The need is `batch` images of peak activations, `weight_copies` float32 copies of the
    weights (the model, the converter's graph, the written file; Adam's two moments when
    training) and `extra_bytes` (the calibration images). Weights over 2 GB are refused
    on any machine: TensorFlow graphs, ONNX files and TFLite flatbuffers cannot hold them.
    """
    asked = ", ".join(
        f"{flag} {value}"
        for flag, value in (("--input-size", input_size), ("--alpha", alpha), ("--classes", classes))
        if value is not None
    )
    try:
        estimate = estimate_zoo_memory(name, input_size=input_size, alpha=alpha, classes=classes)
    except OverflowError:  # a width or size so large that the estimate itself overflows a float
        raise BadArgument(f"{asked}: {name} would be too large for any machine to build") from None
    if estimate is None:
        return None
    weight_bytes = 4 * estimate.params
    if weight_bytes > _MAX_WEIGHT_BYTES:
        raise BadArgument(
            f"{asked}: {estimate.model} would have about {_count(estimate.params)} parameters "
            f"({_gb(weight_bytes)} of float32 weights); TensorFlow graphs, ONNX and TFLite "
            "files stop at 2 GB"
        )
    need = batch * estimate.peak_activation_bytes + weight_copies * weight_bytes + extra_bytes
    available = available_memory_bytes()
    if available is not None and need > available:
        raise BadArgument(
            f"{asked}: {what} needs about {_gb(need)} of memory (estimated: "
            f"{_gb(estimate.peak_activation_bytes)} of activations per image, "
            f"{_gb(weight_bytes)} of weights), more than the {_gb(available)} available"
        )
    return estimate


def profile_zoo_model(
    name: str,
    *,
    input_size: int | None = None,
    alpha: float | None = None,
    classes: int | None = None,
    check_memory: bool = True,
) -> ModelProfile:
    """Build a zoo model with `create_model` (random weights) and profile it.

    `input_size=N` builds an N x N input with the model's default channels. Options
    the model does not take, or values it rejects, raise `BadArgument`; so does a size
    that would not fit in memory (estimated before building, see `check_zoo_memory`).
    """
    from edgecnn.models import create_model

    check_zoo_arguments(name, input_size=input_size, alpha=alpha, classes=classes)
    input_shape = zoo_input_shape(name, input_size)
    if check_memory:
        check_zoo_memory(
            name, input_size=input_size, alpha=alpha, classes=classes, batch=1, weight_copies=1, what="profiling it"
        )
    model = create_model(name, input_shape=input_shape, alpha=alpha, classes=classes)
    return profile_model(model)


def profile_model_file(path, *, input_size: int | None = None, trust_model: bool = False) -> ModelProfile:
    """Load a saved Keras model (.keras or .h5, Keras safe mode) and profile it.

    `input_size=N` fills in the height and width of a model saved with a flexible
    input size; a model with fixed sizes must be given its own. A missing or
    unloadable file raises `EdgecnnError`.
    """
    from edgecnn.loading import read_keras_model

    model = read_keras_model(path, trust=trust_model)
    input_shape = None
    if input_size is not None:
        if isinstance(input_size, bool) or not isinstance(input_size, int) or input_size < 1:
            raise BadArgument(f"`input_size` must be a positive integer. Received `input_size={input_size!r}`")
        shape = _as_tuple(model.inputs[0].shape)[1:] if len(model.inputs) == 1 else ()
        if len(shape) != 3:
            raise BadArgument(
                f"--input-size applies to models with one image input (height, width, "
                f"channels); `{model.name}` takes {[_as_tuple(t.shape)[1:] for t in model.inputs]}"
            )
        input_shape = (input_size, input_size, shape[2])
    return profile_model(model, input_shape=input_shape)


# --------------------------------------------------------------------------- zoo table

_ZOO_CACHE_FILE = "zoo-costs.json"


def _cache_dir() -> Path:
    if os.environ.get("EDGECNN_CACHE_DIR"):
        return Path(os.environ["EDGECNN_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join("~", ".cache")
    return Path(base).expanduser() / "edgecnn"


def _zoo_cache_key(info) -> str:
    """Changes whenever the model's code, the profiler or the Keras version changes."""
    from importlib import metadata

    from edgecnn import __version__

    digest = hashlib.sha256()
    try:
        keras_version = metadata.version("tf-keras")
    except metadata.PackageNotFoundError:
        keras_version = "?"
    digest.update(f"{__version__}|{keras_version}|{info!r}".encode())
    modules = (__name__, "edgecnn.models._common", info.entrypoint.partition(":")[0])
    for module in modules:
        spec = importlib.util.find_spec(module)
        origin = spec.origin if spec else None
        digest.update(Path(origin).read_bytes() if origin and os.path.isfile(origin) else b"?")
    return digest.hexdigest()


def zoo_costs(*, use_cache: bool = True, progress: Callable[[str], None] | None = None) -> list[dict[str, Any]]:
    """Every zoo model at its default input: `name`, `aliases`, `input_shape`, `params`, `macs`.

    Counting means building each model (about a minute for the whole zoo on two
    cores), so results are kept in `$EDGECNN_CACHE_DIR` (default
    `~/.cache/edgecnn`), keyed by the source of the model, of the profiler and the
    tf_keras version; a warm cache answers without importing TensorFlow. Cache
    files that cannot be read or written are ignored. `progress(name)` is called
    before each model is built.
    """
    from edgecnn.models import all_model_infos

    cache_file = _cache_dir() / _ZOO_CACHE_FILE
    cache: dict[str, Any] = {}
    if use_cache:
        try:
            cache = json.loads(cache_file.read_text())
            if not isinstance(cache, dict):
                cache = {}
        except (OSError, ValueError):
            cache = {}
    rows, changed = [], False
    for info in all_model_infos():
        key = _zoo_cache_key(info)
        entry = cache.get(info.name)
        fresh = (
            isinstance(entry, dict)
            and entry.get("key") == key
            and all(isinstance(entry.get(k), int) for k in ("params", "macs"))
        )
        if not fresh:
            if progress is not None:
                progress(info.name)
            profile = profile_zoo_model(info.name)
            entry = {"key": key, "params": profile.params, "macs": profile.macs}
            cache[info.name] = entry
            changed = True
            from edgecnn._tf import import_keras

            import_keras().backend.clear_session()  # the next model starts from scratch
        rows.append(
            {
                "name": info.name,
                "aliases": list(info.aliases),
                "input_shape": list(info.default_input_shape),
                "params": int(entry["params"]),
                "macs": int(entry["macs"]),
            }
        )
    if use_cache and changed:
        try:
            cache_file.parent.mkdir(parents=True, exist_ok=True)
            tmp = cache_file.with_name(f"{cache_file.name}.{os.getpid()}.tmp")
            tmp.write_text(json.dumps(cache, indent=1, sort_keys=True))
            os.replace(tmp, cache_file)
        except OSError:
            pass
    return rows
