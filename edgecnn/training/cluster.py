"""`edgecnn cluster` (and `prune --cluster K`): weight clustering with fine-tuning.

    model, info = cluster_model("lenet5.keras", "fashion-mnist", clusters=16, out="c.keras")

`tfmot.clustering.keras.cluster_weights` replaces each kernel (Conv2D, Dense,
separable pointwise) by K shared values (k-means++ initial centroids) that the
fine-tuning moves; `strip_clustering` leaves a plain Keras model whose kernels hold
at most K distinct values, which the report counts from the weights. Conv2D kernels
with too few weights for K clusters are left as they are (the toolkit's rule), and
depthwise kernels are not clustered by the toolkit; the report lists both. On a
pruned model (`preserve_sparsity`, the default when the model's sidecar records a
sparsity), the zeros stay zeros.
"""

from __future__ import annotations

import time
from typing import Any

from edgecnn.errors import BadArgument
from edgecnn.models import strip_auxiliary_outputs
from edgecnn.training import _toolkit
from edgecnn.training.data import Progress, TrainingData, load_training_data
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

INITS = {"kmeans++": "KMEANS_PLUS_PLUS", "linear": "LINEAR", "density": "DENSITY_BASED", "random": "RANDOM"}
MAX_CLUSTERS = 256  # more than int8 can tell apart buys nothing


def check_clusters(clusters, *, preserve_sparsity: bool = False) -> int:
    low = 3 if preserve_sparsity else 2  # with sparsity kept, one centroid is pinned at zero
    if isinstance(clusters, bool) or not isinstance(clusters, int) or not low <= clusters <= MAX_CLUSTERS:
        raise BadArgument(
            f"--cluster must be an integer from {low} to {MAX_CLUSTERS}"
            f"{' when the zeros of a pruned model are kept' if preserve_sparsity else ''}. "
            f"Received {clusters!r}"
        )
    return clusters


def cluster_report(model, clusters: int, *, preserve_sparsity: bool) -> dict[str, Any]:
    """Distinct values and zeros per kernel, counted in the stripped model's weights."""
    rows = _toolkit.weight_stats(model, unique=True)
    for row in rows:
        if row["unique"] <= clusters:
            row["clustered"] = True
        else:
            row["clustered"] = False
            row["why_not"] = (
                "the toolkit does not cluster depthwise kernels"
                if row["weight"] == "depthwise_kernel"
                else f"fewer weights per channel than {clusters} clusters: left as they are"
            )
    return {
        "clusters": clusters,
        "preserve_sparsity": preserve_sparsity,
        "layers": rows,
        "clustered_layers": sum(r["clustered"] for r in rows),
        "sparsity": _toolkit.total_sparsity(rows),
    }


def apply_clustering(model, *, clusters: int, init: str, preserve_sparsity: bool):
    tfmot = _toolkit.import_tfmot()
    _toolkit.check_layers(model, "clustering")
    centroid_init = getattr(tfmot.clustering.keras.CentroidInitialization, INITS[init])
    try:
        return tfmot.clustering.keras.cluster_weights(
            model,
            number_of_clusters=clusters,
            cluster_centroids_init=centroid_init,
            preserve_sparsity=preserve_sparsity,
        )
    except (ValueError, TypeError) as exc:
        raise _toolkit.rephrase_toolkit_error(exc, "clustering", model.name) from None


def cluster_model(
    model,
    dataset,
    *,
    clusters: int,
    init: str = "kmeans++",
    preserve_sparsity: bool | None = None,
    epochs: int = 2,
    batch_size: int = 64,
    lr: float = 1e-4,
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
    """Cluster the kernels of `model` into `clusters` values while fine-tuning; strip the wrappers.

    `preserve_sparsity=None` keeps the zeros when the model is pruned (its sidecar records
    a sparsity, or its kernels are at least 20% zeros). Returns `(model, info)`.
    """
    started = time.perf_counter()
    progress = progress or Progress()
    if init not in INITS:
        raise BadArgument(f"--init must be one of {', '.join(INITS)}. Received `{init}`")
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
    check_clusters(clusters)
    check_dataset(dataset)
    out = check_out(out)
    spec = ModelSpec.resolve(model, input_size=input_size, alpha=alpha, preprocess=preprocess, trust_model=trust_model)
    check_zoo_size(spec, input_size=input_size, alpha=alpha, classes=classes, batch_size=batch_size)
    spec.drop_training_kwargs()  # clustering from scratch: no auxiliary heads
    if spec.optimization.get("qat"):
        raise BadArgument(
            f"{spec.source} is a quantization-aware model; cluster the float model, "
            "then run QAT (edgecnn export --int8 --qat)"
        )
    if isinstance(dataset, TrainingData):
        data = dataset
    else:
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
    _toolkit.check_layers(dense, "clustering")
    if preserve_sparsity is None:
        recorded = spec.optimization.get("sparsity") or 0.0
        preserve_sparsity = recorded > 0 or _toolkit.total_sparsity(_toolkit.weight_stats(dense)) >= 0.2
    check_clusters(clusters, preserve_sparsity=preserve_sparsity)
    for message in [*spec.warnings, *data.warnings]:
        progress.warn(message)

    dense_tflite = None
    if measure_size:
        progress.start("converting the unclustered model (float32 TFLite) for the size comparison")
        dense_tflite = _toolkit.tflite_float_bytes(dense)
    progress.start("evaluating the unclustered model")
    accuracy_before = evaluate_model(dense, data)
    dense_params = int(dense.count_params())

    tfmot = _toolkit.import_tfmot()
    progress.start(f"initialising {clusters} clusters per kernel ({init})")
    wrapped = apply_clustering(dense, clusters=clusters, init=init, preserve_sparsity=preserve_sparsity)
    history = fit(
        wrapped,
        data,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        seed=seed,
        from_logits=not softmax_output(dense),
        progress=progress,
        label="clustering",
    )
    stripped = tfmot.clustering.keras.strip_clustering(wrapped)
    batchnorm = batchnorm_recalibration(stripped, data, progress)
    report = cluster_report(stripped, clusters, preserve_sparsity=preserve_sparsity)
    report["init"] = init
    progress.start("evaluating the clustered model")
    accuracy_after = evaluate_model(stripped, data)

    info = finetune_sidecar(
        spec,
        data,
        stripped,
        stage="cluster",
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
            "clustering": report,
        }
    )
    info["optimization"] = {**info["optimization"], "clusters": clusters}
    if preserve_sparsity:
        info["optimization"]["sparsity"] = report["sparsity"]
    if dense_tflite is not None:
        progress.start("converting the clustered model (float32 TFLite) for the size comparison")
        info["size"] = _toolkit.size_record(dense_tflite, _toolkit.tflite_float_bytes(stripped))
    info["seconds"] = round(time.perf_counter() - started, 2)
    info["warnings"] = [*spec.warnings, *data.warnings]
    if out is not None:
        progress.start(f"saving {out}")
        info["path"] = str(save_model(stripped, out, info))
    return stripped, info
