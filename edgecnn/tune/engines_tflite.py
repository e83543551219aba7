"""TFLite candidates through AI Edge Quantizer (`litert-quantizer`), on the float .tflite.

Why AI Edge Quantizer and not TensorFlow's QuantizationDebugger: it quantizes the float
.tflite itself, with per-op recipes (an op kept float is one `no_quantize` line of the
recipe, selected by its output tensor's name), without TensorFlow, so the whole ladder
except QAT runs on the runtime side. Measured against the debugger's `denylisted_nodes`
path on the same layers (benchmarks/tune_engines.py): the same ops, sizes and latency, top-1
a draw; the debugger calibrates once and requantizes in 0.04-0.3 s per candidate where AI Edge
Quantizer recalibrates (0.2-4.4 s), but it needs TensorFlow and the Keras model.

Range algorithms (step 2): AI Edge Quantizer calibrates one image at a time and, by
default, keeps a moving average of each tensor's min/max (`moving_average`); `min_max`
keeps the overall extremes instead. Weights: `min_max_uniform_quantize` (default), or
MSE-optimal and OCTAV clipping of each weight channel (activations stay min/max).
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgecnn.errors import EdgecnnError

QSV_UPDATES = ("moving_average", "min_max")
WEIGHT_ALGORITHMS = {"min_max": "min_max_uniform_quantize", "mse": "MSE", "octav": "OCTAV"}

# Ops that move or select values without arithmetic of their own: keeping a layer float also
# keeps float the chain of these between it and the op that computes its input.
PASS_THROUGH = frozenset(
    {
        "MAX_POOL_2D",
        "RESHAPE",
        "RELU",
        "RELU6",
        "PAD",
        "TRANSPOSE",
        "SQUEEZE",
        "EXPAND_DIMS",
        "STRIDED_SLICE",
        "SLICE",
        "CONCATENATION_PASS",
    }
)
WEIGHTED = frozenset({"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "TRANSPOSE_CONV", "BATCH_MATMUL"})


@dataclass(frozen=True)
class Op:
    index: int
    op_type: str
    inputs: tuple[str, ...]  # activation inputs only (no constants)
    outputs: tuple[str, ...]


def _require():
    try:
        import litert_quantizer  # noqa: F401
    except ImportError:
        raise EdgecnnError("tune's TFLite engine is AI Edge Quantizer: pip install litert-quantizer") from None


def _quiet():
    """AI Edge Quantizer draws tqdm bars and logs; the CLI draws its own."""
    from edgecnn._tf import quiet_conversion

    return quiet_conversion(progress_bars=True)


def float_tflite(model) -> bytes:
    """The float32 .tflite of the Keras model (needs TensorFlow: the converter)."""
    from converters.tflite import keras_to_tflite

    flatbuffer, _ = keras_to_tflite(model, quantization="float32")
    return flatbuffer


def graph(path) -> list[Op]:
    """The ops of a .tflite in execution order, with their activation tensors by name."""
    from edgecnn.runtime.tflite import reference_interpreter

    interpreter = reference_interpreter(path)
    details = {d["index"]: d for d in interpreter.get_tensor_details()}
    produced = set()
    ops = []
    raw = interpreter._get_ops_details()
    for op in raw:
        produced.update(int(i) for i in op["outputs"])
    graph_inputs = {d["index"] for d in interpreter.get_input_details()}
    for op in raw:
        inputs = tuple(
            details[int(i)]["name"]
            for i in op["inputs"]
            if int(i) >= 0 and (int(i) in produced or int(i) in graph_inputs)
        )
        outputs = tuple(details[int(i)]["name"] for i in op["outputs"] if int(i) >= 0)
        ops.append(Op(int(op["index"]), op["op_name"], inputs, outputs))
    return ops


def float_op_count(path) -> int:
    """Ops of a .tflite that compute in float (QUANTIZE and DEQUANTIZE aside), read with the
    runtime's graph reader (`edgecnn.runtime.graph_tflite.read_graph`, the census `graph_facts`
    records in the manifest and `edgecnn inspect` shows). Counted on any graph, a float one too
    (`Graph.float_ops` and `graph_facts` look at quantized graphs only)."""
    from edgecnn.runtime.census import FLOAT_DTYPES
    from edgecnn.runtime.graph_tflite import read_graph

    return sum(
        1
        for op in read_graph(Path(path)).ops
        if op.compute_dtype in FLOAT_DTYPES and op.op_type not in ("QUANTIZE", "DEQUANTIZE")
    )


def _recipe(weight_algorithm: str, float_tensors) -> list[dict]:
    import litert_quantizer

    path = Path(litert_quantizer.__file__).parent / "recipes" / "default_a8w8_recipe.json"
    import json

    base = json.loads(path.read_text())
    (default,) = base
    default = copy.deepcopy(default)
    recipe = [default]
    if weight_algorithm != "min_max":  # MSE/OCTAV choose weight ranges: the weighted ops only
        for op in sorted(WEIGHTED - {"TRANSPOSE_CONV", "BATCH_MATMUL"}):
            entry = copy.deepcopy(default)
            entry.update({"operation": op, "algorithm_key": WEIGHT_ALGORITHMS[weight_algorithm]})
            recipe.append(entry)
    for name in float_tensors:  # later entries win: the ops producing these stay float
        # An op's scope is its output names joined by ";", with a trailing ";".
        recipe.append({"regex": f"(^|;){re.escape(name)};", "operation": "*", "algorithm_key": "no_quantize"})
    return recipe


def quantize(
    float_path,
    calibration: np.ndarray,
    *,
    qsv_update: str = "moving_average",
    weight_algorithm: str = "min_max",
    float_tensors=(),
    threads: int | None = None,
) -> tuple[bytes, dict]:
    """Full-integer int8 (per-channel int8 weights, per-tensor asymmetric int8 activations and
    int8 input/output) of the float .tflite at `float_path`, calibrated on `calibration`
    (float32 NHWC, preprocessed); the ops producing `float_tensors` stay float.
    Returns (bytes, the settings as recorded)."""
    _require()
    from litert_quantizer import calibrator, quantizer
    from litert_quantizer.utils import qsv_utils

    if qsv_update not in QSV_UPDATES:
        raise EdgecnnError(f"unknown range update `{qsv_update}`; use {', '.join(QSV_UPDATES)}")
    recipe = _recipe(weight_algorithm, list(float_tensors))
    update = qsv_utils.moving_average_update if qsv_update == "moving_average" else qsv_utils.min_max_update
    try:
        with _quiet():
            qt = quantizer.Quantizer(str(float_path), recipe)
            signature, input_name = _signature_input(float_path)
            data = {signature: [{input_name: calibration[i : i + 1]} for i in range(len(calibration))]}
            calib = calibrator.Calibrator(qt._float_model_buffer, num_threads=int(threads or 2), qsv_update_func=update)
            # The recipe manager decides which tensors need ranges (the public calibrate() builds
            # its Calibrator itself, without a choice of range update).
            calib.calibrate(data, qt._recipe_manager)
            result = qt.quantize(calib.get_model_qsvs(), enable_progress_report=False)
    except EdgecnnError:
        raise
    except Exception as exc:  # AEQ raises ValueError/RuntimeError/KeyError for what it cannot do
        reason = " ".join(str(exc).split())[:300] or type(exc).__name__
        raise EdgecnnError(f"AI Edge Quantizer cannot quantize {Path(float_path).name}: {reason}") from None
    settings = {
        "engine": "ai-edge-quantizer",
        "activations": "int8 per-tensor asymmetric",
        "weights": "int8 per-channel symmetric",
        "io": "int8",
        "range_update": qsv_update,
        "weight_algorithm": WEIGHT_ALGORITHMS[weight_algorithm],
        "calibration_images": len(calibration),
        "float_ops": list(float_tensors),
    }
    return bytes(result.quantized_model), settings


def _signature_input(path) -> tuple[str, str]:
    from edgecnn.runtime.tflite import load_interpreter

    interpreter_class, _, _ = load_interpreter("auto")
    interpreter = interpreter_class(model_path=str(path))
    signatures = interpreter.get_signature_list()
    if len(signatures) != 1:
        raise EdgecnnError(f"{Path(path).name} has {len(signatures)} signatures; tune takes one")
    ((key, spec),) = signatures.items()
    if len(spec["inputs"]) != 1:
        raise EdgecnnError(f"{Path(path).name} has {len(spec['inputs'])} inputs; tune takes one")
    return key, spec["inputs"][0]


def qat_tflite(qat_model, calibration: np.ndarray) -> bytes:
    """The QAT Keras model converted to full-integer int8 by TensorFlow's converter (the ranges
    are the ones learned in QAT; the converter requires a representative dataset anyway)."""
    from converters.tflite import keras_to_tflite

    def representative():
        for i in range(len(calibration)):
            yield [calibration[i : i + 1]]

    with _quiet():
        flatbuffer, _ = keras_to_tflite(qat_model, quantization="int8", representative_dataset=representative)
    return flatbuffer
