"""`edgecnn prune`: magnitude pruning with fine-tuning, then `strip_pruning`.

    model, info = prune_model("lenet5.keras", "fashion-mnist", sparsity=0.5, epochs=2,
                              out="lenet5-pruned.keras")

`tfmot.sparsity.keras.prune_low_magnitude` wraps every layer; the fine-tuning raises
the sparsity of each kernel (Conv2D, Dense, separable pointwise) along the schedule
(`polynomial`: from 0 to the target, cubic, as in Zhu & Gupta 2017; `constant`: the
target from the first step), or prunes `M:N` structured (`--structured 2:4`: two
zeros in every four consecutive input-channel weights). The schedule is set so that
its last mask update falls inside the fine-tuning, at about 70% of the steps, and
the remaining steps recover accuracy with the mask fixed.

The sparsity reported is read from the stripped model's weights (zeros counted),
per layer and in total, never taken from the schedule. The size reported is the gzip
size of the float32 TFLite artifact against the dense model's: pruning does not make
the file smaller, zeros make it compress better. `--cluster K` clusters the pruned
model afterwards, keeping its zeros (sparsity-preserving clustering).
"""

from __future__ import annotations

import math
import time
from typing import Any

from edgecnn.errors import BadArgument
from edgecnn.models import strip_auxiliary_outputs
from edgecnn.training import _toolkit
from edgecnn.training.data import Progress, load_training_data
from edgecnn.training.train import (
    ModelSpec,
    batchnorm_recalibration,
    check_dataset,
    check_out,
    check_training_arguments,
    check_zoo_size,
    evaluate_model,
    finetune_sidecar,
    fit,
    save_model,
    softmax_output,
)

SCHEDULES = ("polynomial", "constant")


def check_sparsity(sparsity) -> float:
    if (
        isinstance(sparsity, bool)
        or not isinstance(sparsity, (int, float))
        or not math.isfinite(sparsity)
        or not 0.0 <= float(sparsity) < 1.0
    ):
        raise BadArgument(f"--sparsity must be in [0, 1). Received {sparsity!r}")
    return float(sparsity)


# The widest M:N block accepted (see parse_structured).
MAX_STRUCTURED_BLOCK = 64


def parse_structured(structured) -> tuple[int, int] | None:
    """`"2:4"` -> (2, 4): M zeros in every N consecutive weights."""
    if structured in (None, ""):
        return None
    if isinstance(structured, (tuple, list)) and len(structured) == 2:
        m, n = structured
    else:
        text = str(structured).strip()
        left, sep, right = text.partition(":")
        if not sep or not left.strip().isdigit() or not right.strip().isdigit():
            raise BadArgument(f"--structured must be M:N, e.g. 2:4. Received `{structured}`")
        m, n = int(left), int(right)
    if not 0 < m < n:
        raise BadArgument(f"--structured M:N needs 0 < M < N. Received `{structured}`")
    if n > MAX_STRUCTURED_BLOCK:
        # tfmot pads every row of weights to a multiple of N before it ranks a block: a block
        # wider than a layer's input channels prunes padding, and 2:1000000 holds 10^6 floats a row.
        raise BadArgument(
            f"--structured M:N needs N <= {MAX_STRUCTURED_BLOCK} (sparse kernels use 1:2, 2:4, 4:8). "
            f"Received `{structured}`"
        )
    return int(m), int(n)


def pruning_steps(total_steps: int) -> dict[str, int]:
    """Mask update frequency and end step so that the last update happens during fine-tuning.

    tfmot updates the mask at steps begin + k * frequency up to end_step; end_step is a
    multiple of the frequency at about 70% of the steps (never past the last step).
    """
    frequency = max(1, min(100, total_steps // 20))
    end = (int(total_steps * 0.7) // frequency) * frequency
    end = min(end, ((total_steps - 1) // frequency) * frequency)
    return {"begin_step": 0, "end_step": max(0, end), "frequency": frequency}


def make_schedule(schedule: str, sparsity: float, total_steps: int):
    tfmot = _toolkit.import_tfmot()
    steps = pruning_steps(total_steps)
    if schedule == "polynomial":
        return tfmot.sparsity.keras.PolynomialDecay(
            initial_sparsity=0.0,
            final_sparsity=sparsity,
            begin_step=steps["begin_step"],
            end_step=steps["end_step"],
            power=3,
            frequency=steps["frequency"],
        ), steps
    return tfmot.sparsity.keras.ConstantSparsity(
        sparsity, begin_step=steps["begin_step"], end_step=steps["end_step"], frequency=steps["frequency"]
    ), steps


def apply_pruning(model, *, schedule, m_by_n=None):
    """`prune_low_magnitude` on a checked model; a layer it cannot wrap is one clear error."""
    tfmot = _toolkit.import_tfmot()
    _toolkit.check_layers(model, "pruning")
    try:
        return tfmot.sparsity.keras.prune_low_magnitude(model, pruning_schedule=schedule, sparsity_m_by_n=m_by_n)
    except (ValueError, TypeError) as exc:
        raise _toolkit.rephrase_toolkit_error(exc, "pruning", model.name) from None


def m_by_n_pattern(model, m_by_n) -> dict[str, bool]:
    """Per pruned layer: whether its kernel follows the M:N pattern (along input channels,
    the TFLite layout; `last_channel="C_OUT"` names the TF layout of the kernel)."""
    from tensorflow_model_optimization.python.core.sparsity.keras import pruning_utils

    result = {}
    for layer in model.layers:
        kernel = getattr(layer, "kernel", None)
        if kernel is None or len(kernel.shape) not in (2, 4):
            continue
        try:
            result[layer.name] = bool(pruning_utils.is_pruned_m_by_n(kernel, m_by_n=m_by_n, last_channel="C_OUT"))
        except Exception:  # noqa: BLE001  (shapes the checker does not take)
            result[layer.name] = False
    return result


def prunable_weights(model) -> dict[str, set[str]]:
    """{layer name: names of the weights the toolkit prunes} (Conv2D/Dense `kernel`, ...)."""
    from tensorflow_model_optimization.python.core.sparsity.keras import prune_registry

    names = {}
    for layer in model.layers:
        if hasattr(layer, "get_prunable_weights") and not prune_registry.PruneRegistry.supports(layer):
            names[layer.name] = {w.name.split(":")[0].rsplit("/", 1)[-1] for w in layer.get_prunable_weights()}
        elif prune_registry.PruneRegistry.supports(layer) and layer.trainable_weights:
            names[layer.name] = set(prune_registry.PruneRegistry._weight_names(layer))
    return names


def sparsity_report(model, *, target: float | None = None, m_by_n=None) -> dict[str, Any]:
    """Sparsity per layer and in total, counted in `model`'s (stripped) weights.

    `total` counts the weights the toolkit prunes; kernels it leaves dense (depthwise
    kernels) are listed with `pruned: False` and counted in `overall` only.
    """
    _toolkit.import_tfmot()
    prunable = prunable_weights(model)
    rows = _toolkit.weight_stats(model)
    for row in rows:
        row["pruned"] = row["weight"] in prunable.get(row["layer"], ())
        if not row["pruned"]:
            row["why_not"] = f"tensorflow-model-optimization does not prune the {row['weight']} of {row['type']}"
    pruned_rows = [row for row in rows if row["pruned"]]
    report = {
        "target": target,
        "structured": f"{m_by_n[0]}:{m_by_n[1]}" if m_by_n else None,
        "layers": rows,
        "total": _toolkit.total_sparsity(pruned_rows),
        "total_note": "zeros among the weights pruning acts on (Conv2D/Dense kernels, separable "
        "pointwise kernels); depthwise kernels, biases and batch-norm parameters "
        "are not pruned (see `overall`)",
        "overall": _toolkit.overall_sparsity(model),
    }
    if m_by_n:
        report["pattern"] = m_by_n_pattern(model, m_by_n)
    return report


def weight_sparsity(model) -> float:
    """Total sparsity of the kernels the toolkit prunes in `model`, read from its weights."""
    return sparsity_report(model)["total"]


def prune_model(
    model,
    dataset,
    *,
    sparsity: float | None = 0.5,
    schedule: str = "polynomial",
    structured=None,
    epochs: int = 2,
    batch_size: int = 64,
    lr: float = 1e-4,
    cluster: int | None = None,
    cluster_epochs: int | None = None,
    classes: int | None = None,
    input_size: int | None = None,
    alpha: float | None = None,
    preprocess: str = "auto",
    out=None,
    seed: int = 0,
    val_fraction: float = 0.1,
    limit: int | None = None,
    val_limit: int | None = None,
    measure_size: bool = True,
    trust_model: bool = False,
    progress: Progress | None = None,
):
    """Prune `model` (a saved .keras path, a Keras model, or a zoo name trained from scratch)
    to `sparsity` while fine-tuning on `dataset`; strip the wrappers.

    Returns `(model, info)`; with `out`, the model is saved with its sidecar, whose
    `optimization.sparsity` is the measured total sparsity.
    """
    started = time.perf_counter()
    progress = progress or Progress()
    m_by_n = parse_structured(structured)
    if m_by_n is not None:
        implied = m_by_n[0] / m_by_n[1]
        if sparsity is not None and abs(float(sparsity) - implied) > 1e-9:
            raise BadArgument(
                f"--structured {m_by_n[0]}:{m_by_n[1]} prunes to sparsity {implied:g}; "
                f"--sparsity {sparsity} does not match (leave it out)"
            )
        sparsity = implied
    if sparsity is None:
        raise BadArgument("--sparsity is required (a fraction in [0, 1), e.g. 0.5)")
    sparsity = check_sparsity(sparsity)
    if schedule not in SCHEDULES:
        raise BadArgument(f"--schedule must be {' or '.join(SCHEDULES)}. Received `{schedule}`")
    check_training_arguments(
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        seed=seed,
        val_fraction=val_fraction,
        limit=limit,
        val_limit=val_limit,
        classes=classes,
    )
    if cluster is not None:
        from edgecnn.training.cluster import check_clusters

        check_clusters(cluster, preserve_sparsity=True)
    check_dataset(dataset)
    out = check_out(out)
    spec = ModelSpec.resolve(model, input_size=input_size, alpha=alpha, preprocess=preprocess, trust_model=trust_model)
    check_zoo_size(spec, input_size=input_size, alpha=alpha, classes=classes, batch_size=batch_size)
    spec.drop_training_kwargs()  # pruning from scratch: no auxiliary heads
    if spec.optimization.get("qat"):
        raise BadArgument(
            f"{spec.source} is a quantization-aware model; prune the float model, "
            "then run QAT (edgecnn export --int8 --qat)"
        )
    data = load_training_data(
        dataset,
        input_shape=spec.input_shape,
        preprocess=spec.preprocess,
        num_classes=classes or spec.output_classes,
        val_fraction=val_fraction,
        limit=limit,
        val_limit=val_limit,
        seed=seed,
        progress=progress,
    )
    progress.start(f"building {spec.name}")
    dense = strip_auxiliary_outputs(spec.build(data.num_classes, seed=seed))
    _toolkit.check_layers(dense, "pruning")  # before any slow step
    for message in [*spec.warnings, *data.warnings]:
        progress.warn(message)

    dense_tflite = None
    if measure_size:
        progress.start("converting the dense model (float32 TFLite) for the size comparison")
        dense_tflite = _toolkit.tflite_float_bytes(dense)
    progress.start("evaluating the dense model")
    accuracy_before = evaluate_model(dense, data)
    dense_params = int(dense.count_params())

    total_steps = data.steps_per_epoch(batch_size) * epochs
    pruning_schedule, steps = make_schedule(schedule, sparsity, total_steps)
    tfmot = _toolkit.import_tfmot()
    wrapped = apply_pruning(dense, schedule=pruning_schedule, m_by_n=m_by_n)
    history = fit(
        wrapped,
        data,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        seed=seed,
        from_logits=not softmax_output(dense),
        callbacks=[tfmot.sparsity.keras.UpdatePruningStep()],
        progress=progress,
        label="pruning",
    )
    stripped = tfmot.sparsity.keras.strip_pruning(wrapped)
    batchnorm = batchnorm_recalibration(stripped, data, progress)
    report = sparsity_report(stripped, target=sparsity, m_by_n=m_by_n)
    if sparsity > 0 and report["total"] < sparsity - 0.02:
        message = f"the pruned kernels are {report['total']:.1%} zeros, short of the {sparsity:.0%} asked for"
        progress.warn(message)
        data.warnings.append(message)
    progress.start("evaluating the pruned model")
    accuracy_after = evaluate_model(stripped, data)

    info = finetune_sidecar(
        spec,
        data,
        stripped,
        stage="prune",
        dense_params=dense_params,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        seed=seed,
        history=history,
        batchnorm=batchnorm,
        accuracy_before=accuracy_before,
        accuracy_after=accuracy_after,
    )
    info.update(
        {
            "pruning": {
                "schedule": "structured" if m_by_n else schedule,
                "schedule_steps": {**steps, "total_steps": total_steps},
                **report,
            },
        }
    )
    info["optimization"] = {**info["optimization"], "sparsity": report["total"]}
    model_out = stripped
    if cluster is not None:
        from edgecnn.training.cluster import cluster_model

        model_out, cluster_info = cluster_model(
            stripped,
            data,
            clusters=cluster,
            epochs=cluster_epochs or epochs,
            batch_size=batch_size,
            lr=lr,
            preserve_sparsity=True,
            seed=seed,
            measure_size=False,
            progress=progress,
        )
        info["clustering"] = cluster_info["clustering"]
        info["history"] = history + cluster_info["history"]
        info["val_accuracy"] = cluster_info["val_accuracy"]
        info["optimization"] = {
            **info["optimization"],
            "clusters": cluster,
            "sparsity": cluster_info["clustering"]["sparsity"],
        }
        info["stage"] = "prune+cluster"
    if dense_tflite is not None:
        progress.start("converting the optimized model (float32 TFLite) for the size comparison")
        info["size"] = _toolkit.size_record(dense_tflite, _toolkit.tflite_float_bytes(model_out))
    info["seconds"] = round(time.perf_counter() - started, 2)
    info["warnings"] = [*spec.warnings, *data.warnings]
    if out is not None:
        progress.start(f"saving {out}")
        info["path"] = str(save_model(model_out, out, info))
    return model_out, info
