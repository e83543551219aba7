"""Quantization-aware training for `edgecnn export MODEL --int8 --qat --dataset SOURCE`.

    qat_model, record = qat_stage(model, dataset="fashion-mnist", preprocess="unit")
    tflite, conversion = keras_to_tflite(qat_model, quantization="int8", representative_dataset=..., io="int8")

`quantize_annotate_model` + `quantize_apply` insert fake-quantization (int8 weights per
channel, int8 activations) into the float model, the fine-tuning adapts the weights to
it, and the TFLite converter (Optimize.DEFAULT, int8 ops, int8 input and output) then
uses the ranges learned in training. The scheme follows what the model went through:

- plain float model: the default 8-bit scheme;
- pruned (sidecar `optimization.sparsity`): `Default8BitPrunePreserveQuantizeScheme`,
  whose fine-tuning keeps the zeros (PQAT);
- clustered (`optimization.clusters`): `Default8BitClusterPreserveQuantizeScheme`,
  which keeps the clusters, and the zeros too when the model was pruned first (CQAT).

The QAT model is kept in memory and converted at once: tf_keras cannot reload a
QAT model saved as `.keras` (its QuantizeLayer variables do not round-trip).
"""

from __future__ import annotations

import time
import warnings
from typing import Any

from edgecnn.errors import BadArgument
from edgecnn.models import strip_auxiliary_outputs
from edgecnn.records import Optimization
from edgecnn.training import _toolkit
from edgecnn.training.data import Progress, TrainingData, load_training_data
from edgecnn.training.train import (
    check_epochs,
    check_training_arguments,
    evaluate_model,
    fit,
    softmax_output,
)

PRESERVE = ("auto", "none", "sparsity", "clusters")


def _scheme(preserve: str, *, sparse: bool):
    """The tfmot quantize scheme and its name for what must be preserved."""
    tfmot = _toolkit.import_tfmot()
    if preserve == "sparsity":
        return (
            tfmot.experimental.combine.Default8BitPrunePreserveQuantizeScheme(),
            "Default8BitPrunePreserveQuantizeScheme (PQAT)",
        )
    if preserve == "clusters":
        return tfmot.experimental.combine.Default8BitClusterPreserveQuantizeScheme(
            preserve_sparsity=sparse
        ), f"Default8BitClusterPreserveQuantizeScheme (CQAT{', sparsity kept' if sparse else ''})"
    from tensorflow_model_optimization.python.core.quantization.keras.default_8bit import (
        default_8bit_quantize_scheme,
    )

    return default_8bit_quantize_scheme.Default8BitQuantizeScheme(), "Default8BitQuantizeScheme"


def resolve_preserve(preserve: str, optimization: dict | None) -> tuple[str, bool]:
    """('none' | 'sparsity' | 'clusters', sparse) from the model's optimization record."""
    if preserve not in PRESERVE:
        raise BadArgument(f"preserve must be one of {', '.join(PRESERVE)}. Received `{preserve}`")
    optimization = optimization or {}
    sparse = bool(optimization.get("sparsity"))
    if preserve != "auto":
        return preserve, sparse
    if optimization.get("clusters"):
        return "clusters", sparse
    if sparse:
        return "sparsity", True
    return "none", False


def quantize_model_for_training(model, *, preserve: str = "none", sparse: bool = False):
    """The QAT model of `model` (a copy; `model` keeps its float weights) and the scheme's name."""
    tfmot = _toolkit.import_tfmot()
    _toolkit.check_layers(model, "quantization")
    scheme, scheme_name = _scheme(preserve, sparse=sparse)
    try:
        annotated = tfmot.quantization.keras.quantize_annotate_model(model)
        with tfmot.quantization.keras.quantize_scope():
            qat = tfmot.quantization.keras.quantize_apply(annotated, scheme)
    except (ValueError, RuntimeError, TypeError) as exc:
        raise _toolkit.rephrase_toolkit_error(exc, "quantization-aware training", model.name) from None
    return qat, scheme_name


def quantize_aware_finetune(
    model,
    data: TrainingData | None,
    epochs: int = 1,
    *,
    batch_size: int = 64,
    lr: float = 1e-5,
    preserve: str = "auto",
    optimization: dict | None = None,
    seed: int = 0,
    progress: Progress | None = None,
):
    """Quantization-aware fine-tuning of the float Keras `model` on `data` for `epochs`.

    `optimization`: the model's record (`{"sparsity", "clusters", "qat"}`, from its sidecar);
    with `preserve="auto"` it chooses the scheme that keeps the sparsity or the clusters.
    Returns `(qat_model, info)`; convert `qat_model` with the int8 TFLite settings.
    """
    started = time.perf_counter()
    progress = progress or Progress()
    if data is None:
        raise BadArgument(
            "quantization-aware training needs labelled data: pass --dataset "
            "(fashion-mnist, a labelled image folder or an .npz)"
        )
    if not isinstance(data, TrainingData):
        raise BadArgument(f"data must be a TrainingData (see load_training_data). Received {type(data).__name__}")
    check_epochs(epochs)
    check_training_arguments(epochs=epochs, batch_size=batch_size, lr=lr)
    if (optimization or {}).get("qat"):
        raise BadArgument("the model is already quantization-aware")
    model = strip_auxiliary_outputs(model)
    classes = int(model.outputs[0].shape[-1])
    if data.num_classes > classes or int(max(data.y_train.max(), data.y_val.max())) >= classes:
        raise BadArgument(
            f"labels outside the class range: the data has {data.num_classes} classes, the model {classes}"
        )
    preserve, sparse = resolve_preserve(preserve, optimization)
    _toolkit.check_layers(model, "quantization")  # before anything slow
    input_shape = tuple(int(d) for d in model.inputs[0].shape[1:])
    if input_shape != tuple(data.input_shape):
        raise BadArgument(f"the data was read for input {tuple(data.input_shape)}, the model takes {input_shape}")
    progress.start("evaluating the float model")
    accuracy_before = evaluate_model(model, data)
    sparsity_before = _toolkit.total_sparsity(_toolkit.weight_stats(model))
    progress.start("inserting fake quantization")
    qat, scheme_name = quantize_model_for_training(model, preserve=preserve, sparse=sparse)
    history = fit(
        qat,
        data,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        seed=seed,
        from_logits=not softmax_output(model),
        progress=progress,
        label="QAT",
    )
    progress.start("evaluating the quantization-aware model")
    accuracy_after = evaluate_model(qat, data)
    kept: dict[str, Any] = {}
    if preserve in ("sparsity", "clusters") or sparse:
        rows = _toolkit.weight_stats(qat, unique=preserve == "clusters")
        kept["sparsity_before"] = sparsity_before
        kept["sparsity_after"] = _toolkit.total_sparsity(rows)
        if preserve == "clusters":
            kept["unique_values_after"] = {r["layer"]: r["unique"] for r in rows}
    info = {
        "stage": "qat",
        "scheme": scheme_name,
        "preserve": preserve,
        "epochs": epochs,
        "batch_size": batch_size,
        "lr": lr,
        "seed": seed,
        "data": data.describe(),
        "history": history,
        "val_accuracy_float": round(accuracy_before, 6),
        "val_accuracy_qat": round(accuracy_after, 6),
        "val_accuracy_note": "the Keras QAT model simulates int8 (fake quantization); the converted "
        "artifact's own accuracy comes from evaluating it",
        **kept,
        "seconds": round(time.perf_counter() - started, 2),
        "warnings": list(data.warnings),
    }
    return qat, info


def qat_stage(
    model,
    *,
    dataset,
    epochs: int = 1,
    preprocess: str,
    optimization: dict | None = None,
    batch_size: int = 64,
    lr: float = 1e-5,
    seed: int = 0,
    limit: int | None = None,
    val_limit: int | None = None,
    name: str | None = None,
    progress: Progress | None = None,
):
    """QAT as a stage before conversion (`edgecnn export --int8 --qat`): read `dataset` for
    `model`'s input, then fine-tune quantization-aware. `model` keeps its float weights.

    Returns `(qat_model, record)`: the record is `quantize_aware_finetune`'s, with `stage: "qat"`,
    `optimization` (the model's record with `qat: True`, for the manifest) and `warnings` (what
    reading the data said; in the record, not reported to `progress`: the caller reports them
    once, with its own). `name` names the model in errors.
    """
    if (optimization or {}).get("qat"):
        raise BadArgument(f"{name or 'the model'} is already quantization-aware (its sidecar says `qat: true`)")
    _toolkit.check_layers(model, "quantization")  # before the data is read
    if dataset in (None, ""):
        raise BadArgument(
            "--qat needs labelled data: pass --dataset (fashion-mnist, a labelled image folder or an .npz)"
        )
    check_epochs(epochs)
    input_shape = tuple(int(d) for d in model.inputs[0].shape[1:])
    classes = int(strip_auxiliary_outputs(model).outputs[0].shape[-1])
    with warnings.catch_warnings():  # tfmot's and Keras's deprecation chatter
        warnings.simplefilter("ignore")
        data = load_training_data(
            dataset,
            input_shape=input_shape,
            preprocess=preprocess,
            num_classes=classes,
            limit=limit,
            val_limit=val_limit,
            seed=seed,
            progress=progress,
        )
        qat, info = quantize_aware_finetune(
            model, data, epochs, batch_size=batch_size, lr=lr, optimization=optimization, seed=seed, progress=progress
        )
    info["optimization"] = {**Optimization.NONE.to_json(), **(optimization or {}), "qat": True}
    return qat, info
