"""The TensorFlow Model Optimization Toolkit, imported quietly, and what the stages share:
which layers it can wrap (and why not), weight statistics read from the weights
themselves, and the gzip size of a model's TFLite artifact."""

from __future__ import annotations

import gzip
import warnings
from typing import Any

from edgecnn.errors import BadArgument

# Weights that pruning and clustering act on, by attribute name.
KERNEL_NAMES = ("kernel", "depthwise_kernel", "pointwise_kernel", "embeddings")


def import_tfmot():
    """`tensorflow_model_optimization`, on top of tf_keras (Keras 2)."""
    from edgecnn._tf import import_keras, muted_stderr

    import_keras()
    try:
        with muted_stderr(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import tensorflow_model_optimization as tfmot
    except ImportError:
        from edgecnn.errors import EdgecnnError

        raise EdgecnnError("this command needs tensorflow-model-optimization: pip install 'edgecnn[export]'") from None
    return tfmot


def _why_not(layer, toolkit: str) -> str | None:
    """Why `toolkit` cannot wrap `layer`, or None when it can."""
    from edgecnn._tf import import_keras

    keras = import_keras()
    kind = type(layer).__name__
    if isinstance(layer, keras.layers.InputLayer):
        return None
    if isinstance(layer, keras.Model):
        return (
            f"a nested model ({kind}): the toolkit wraps the layers of one flat functional "
            "graph, not models inside models"
        )
    if toolkit == "pruning":
        from tensorflow_model_optimization.python.core.sparsity.keras import prunable_layer, prune_registry

        if isinstance(layer, prunable_layer.PrunableLayer) or hasattr(layer, "get_prunable_weights"):
            return None
        if prune_registry.PruneRegistry.supports(layer):
            return None
        return f"{kind} is not in the pruning registry of tensorflow-model-optimization (and is not a PrunableLayer)"
    if toolkit == "clustering":
        from tensorflow_model_optimization.python.core.clustering.keras import (
            clusterable_layer,
            clustering_registry,
        )

        if isinstance(layer, clusterable_layer.ClusterableLayer):
            return None
        if clustering_registry.ClusteringRegistry.supports(layer):
            return None
        return (
            f"{kind} has trainable weights the clustering registry of "
            "tensorflow-model-optimization does not know (and is not a ClusterableLayer)"
        )
    if toolkit == "quantization":
        from tensorflow_model_optimization.python.core.quantization.keras.default_8bit import (
            default_8bit_quantize_registry,
        )

        if isinstance(layer, (keras.layers.Lambda,)) or kind == "TFOpLambda":
            return (
                f"{kind} layers are opaque to the toolkit (it cannot tell what their function "
                "computes), so it leaves them in float"
            )
        if isinstance(layer, keras.layers.BatchNormalization):
            return None  # folded into the convolution before it; quantize_apply says if it cannot
        if default_8bit_quantize_registry.Default8BitQuantizeRegistry().supports(layer):
            return None
        return f"{kind} is not in the default 8-bit quantization registry of tensorflow-model-optimization"
    raise ValueError(f"unknown toolkit {toolkit!r}")


def check_layers(model, toolkit: str) -> None:
    """BadArgument naming each layer `toolkit` (pruning, clustering, quantization) cannot wrap, and why."""
    import_tfmot()
    problems = [(layer.name, why) for layer in model.layers if (why := _why_not(layer, toolkit))]
    if not problems:
        return
    shown = "; ".join(f"layer `{name}`: {why}" for name, why in problems[:3])
    more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
    raise BadArgument(f"{toolkit} cannot handle `{model.name}`: {shown}{more}")


def rephrase_toolkit_error(exc: Exception, toolkit: str, model_name: str) -> BadArgument:
    """A toolkit exception as one line that names the layer when the message does."""
    import re

    text = " ".join(str(exc).split())
    match = re.search(r"Layer (\S+?):<class '([\w.]+)'> is not supported", text)
    if match:
        kind = match.group(2).rsplit(".", 1)[-1]
        return BadArgument(
            f"{toolkit} cannot handle `{model_name}`: layer `{match.group(1)}` ({kind}) is not supported "
            "by the default 8-bit scheme in this position (a BatchNormalization is quantized only "
            "right after a convolution or dense layer)"
        )
    return BadArgument(f"{toolkit} cannot handle `{model_name}`: {text[:300]}")


def weight_stats(model, *, unique: bool = False) -> list[dict[str, Any]]:
    """Per kernel: weights, zeros, sparsity (and distinct values), read from the variables.

    Reads the variables themselves, so it works through the wrappers of QAT too (whose
    layers' `kernel` attribute is the fake-quantized tensor, not the variable).
    """
    import numpy as np
    import tensorflow as tf

    rows = []
    for layer in model.layers:
        inner = layer
        while hasattr(inner, "layer"):
            inner = inner.layer
        for attr in KERNEL_NAMES:
            variable = getattr(inner, attr, None)
            if variable is None:
                continue
            if not isinstance(variable, tf.Variable):  # a wrapper swapped in its own tensor
                variable = next((v for v in layer.weights if v.name.split(":")[0].rsplit("/", 1)[-1] == attr), None)
                if variable is None:
                    continue
            values = variable.numpy()
            zeros = int(np.count_nonzero(values == 0))
            row = {
                "layer": inner.name,
                "type": type(inner).__name__,
                "weight": attr,
                "count": int(values.size),
                "zeros": zeros,
                "sparsity": round(zeros / values.size, 6) if values.size else 0.0,
            }
            if unique:
                row["unique"] = int(np.unique(values).size)
            rows.append(row)
    return rows


def total_sparsity(rows: list[dict[str, Any]]) -> float:
    count = sum(r["count"] for r in rows)
    return round(sum(r["zeros"] for r in rows) / count, 6) if count else 0.0


def overall_sparsity(model) -> dict[str, Any]:
    """Zeros among all of the model's weights (biases, batch-norm statistics included)."""
    import numpy as np

    count = zeros = 0
    for w in model.weights:
        values = w.numpy()
        count += values.size
        zeros += int(np.count_nonzero(values == 0))
    return {"count": int(count), "zeros": int(zeros), "sparsity": round(zeros / count, 6) if count else 0.0}


def tflite_float_bytes(model) -> bytes:
    """The float32 TFLite artifact of `model`, converted as `edgecnn export` converts it."""
    from converters.tflite import keras_to_tflite
    from edgecnn._tf import muted_stderr

    with muted_stderr(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        flatbuffer, _ = keras_to_tflite(model, quantization="float32")
    return flatbuffer


def gzip_size(data: bytes) -> int:
    """Bytes after gzip -9 (mtime 0: the same input gives the same size)."""
    return len(gzip.compress(data, compresslevel=9, mtime=0))


def size_record(dense_bytes: bytes, optimized_bytes: bytes, *, fmt: str = "tflite float32") -> dict[str, Any]:
    dense_gz, optimized_gz = gzip_size(dense_bytes), gzip_size(optimized_bytes)
    return {
        "format": fmt,
        "dense_bytes": len(dense_bytes),
        "dense_gzip_bytes": dense_gz,
        "optimized_bytes": len(optimized_bytes),
        "optimized_gzip_bytes": optimized_gz,
        "gzip_ratio": round(optimized_gz / dense_gz, 4) if dense_gz else None,
    }
