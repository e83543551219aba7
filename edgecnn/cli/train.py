"""`edgecnn train`, `edgecnn prune`, `edgecnn cluster`: options in, one library call, a summary out."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from edgecnn.cli._app import app, console, one_line_errors, print_json, print_table, si_bytes, trust_model_option
from edgecnn.cli._progress import rich_progress


def _run(call):
    """Run a training stage under a transient progress display on stderr."""
    with rich_progress() as progress:
        return call(progress)


def _pct(value) -> str:
    return "n/a" if value is None else f"{100 * value:.2f}%"


def _summary(info: dict) -> None:
    rows = [
        ("model", info.get("path") or "(not saved)"),
        (
            "data",
            f"{info['data']['train_count']} training, {info['data']['validation']['count']} "
            f"validation images ({info['data']['validation']['kind']})",
        ),
    ]
    if "val_accuracy_before" in info:
        rows.append(("val accuracy", f"{_pct(info['val_accuracy_before'])} before, {_pct(info['val_accuracy'])} after"))
    else:
        rows.append(("val accuracy", _pct(info["val_accuracy"])))
    rows.append(("train accuracy", f"{_pct(info.get('train_accuracy'))} (last epoch, training mode)"))
    size = info.get("size")
    if size:
        rows.append(
            (
                "gzip size",
                f"{si_bytes(size['optimized_gzip_bytes'])} vs {si_bytes(size['dense_gzip_bytes'])} "
                f"dense ({size['gzip_ratio']:.2f}x, {size['format']})",
            )
        )
    opt = info.get("optimization", {})
    rows.append(
        ("optimization", f"sparsity {opt.get('sparsity')}, clusters {opt.get('clusters')}, qat {opt.get('qat')}")
    )
    rows.append(("seconds", f"{info['seconds']:.1f}"))
    table = Table(box=None, show_header=False)
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    for key, value in rows:
        table.add_row(key, value)
    print_table(table)


def _layer_table(title: str, layers: list[dict], *, unique: bool = False) -> None:
    table = Table(title=title, title_justify="left")
    for name, justify in (
        ("Layer", "left"),
        ("Type", "left"),
        ("Weights", "right"),
        ("Zeros", "right"),
        ("Sparsity", "right"),
    ):
        table.add_column(name, justify=justify)
    if unique:
        table.add_column("Distinct values", justify="right")
    for row in layers:
        cells = [
            row["layer"],
            row["type"],
            f"{row['count']:,}",
            f"{row['zeros']:,}",
            _pct(row["sparsity"]) + ("" if row.get("pruned", True) else "  (not pruned)"),
        ]
        if unique:
            cells.append(f"{row['unique']:,}" + ("" if row.get("clustered", True) else f"  ({row['why_not']})"))
        table.add_row(*cells)
    print_table(table)


_DATASET_HELP = (
    "Labelled images: fashion-mnist[:DIR] (train split; its test split validates), "
    "a folder with a dataset.txt of `path, label` lines, or an .npz with labels."
)


@app.command("train")
@one_line_errors
def train_command(
    model: str = typer.Argument(
        ..., help="A zoo name (see `edgecnn models`) or a saved Keras model (.keras) to fine-tune."
    ),
    dataset: str = typer.Option(..., "--dataset", help=_DATASET_HELP),
    epochs: int = typer.Option(10, help="Epochs (at least 1)."),
    batch_size: int = typer.Option(64, help="Batch size."),
    lr: float = typer.Option(1e-3, help="Adam learning rate."),
    lr_schedule: str = typer.Option("constant", help="constant, or cosine (decays to 0 over the run)."),
    bn_momentum: float = typer.Option(
        0.99, help="BatchNormalization momentum while training (the MobileNets' own 0.999 needs thousands of steps)."
    ),
    input_size: Optional[int] = typer.Option(
        None, help="Input height and width of a zoo model (default: the model's)."
    ),
    alpha: Optional[float] = typer.Option(None, help="Width multiplier (MobileNets)."),
    classes: Optional[int] = typer.Option(
        None, help="Number of classes (default: the dataset's); a saved model gets a new classifier when it differs."
    ),
    weights: str = typer.Option(
        "none",
        help="Zoo models: none, imagenet (a new head on ImageNet "
        "features, MobileNets/VGG/ResNet-50+), or a weights file.",
    ),
    out: Optional[Path] = typer.Option(
        None, help="Where to save (.keras); a NAME.edgecnn.json sidecar goes beside it. Default: artifacts/MODEL.keras."
    ),
    val_fraction: float = typer.Option(
        0.1, help="Held out for validation when the dataset has no test split of its own."
    ),
    limit: Optional[int] = typer.Option(None, help="Use at most N training images (seeded choice)."),
    val_limit: Optional[int] = typer.Option(None, help="Validate on at most N images."),
    seed: int = typer.Option(0, help="Seed for the weights, the shuffle and the split."),
    as_json: bool = typer.Option(False, "--json", help="Print the sidecar record as JSON."),
    trust_model: bool = trust_model_option(),
) -> None:
    """Train a zoo model (or fine-tune a saved one) on labelled images; save it with a sidecar.

    Images are resized (and grayscale made RGB) for the model, with the model's own
    preprocessing. GoogLeNet trains with its auxiliary classifiers (loss weight 0.3
    each) and is saved without them. `edgecnn export OUT.keras` then picks up the
    preprocessing and class names from the sidecar.
    """
    from edgecnn.training.data import default_output
    from edgecnn.training.train import train_model

    out = out or default_output(model)
    _, info = _run(
        lambda progress: train_model(
            model,
            dataset,
            epochs=epochs,
            batch_size=batch_size,
            lr=lr,
            lr_schedule=lr_schedule,
            bn_momentum=bn_momentum,
            input_size=input_size,
            alpha=alpha,
            classes=classes,
            weights=weights,
            out=out,
            seed=seed,
            val_fraction=val_fraction,
            limit=limit,
            val_limit=val_limit,
            trust_model=trust_model,
            progress=progress,
        )
    )
    if as_json:
        print_json(info)
        return
    _summary(info)


@app.command("prune")
@one_line_errors
def prune_command(
    model: str = typer.Argument(
        ..., help="A saved Keras model (.keras), or a zoo name (trained from scratch while pruning)."
    ),
    sparsity: Optional[float] = typer.Option(
        None, help="Target fraction of zero weights, in [0, 1) (implied by --structured)."
    ),
    dataset: str = typer.Option(..., "--dataset", help=_DATASET_HELP),
    schedule: str = typer.Option("polynomial", help="polynomial (0 to the target, cubic) or constant."),
    structured: Optional[str] = typer.Option(
        None, help="M:N structured pruning, e.g. 2:4 (two zeros in every four input-channel weights)."
    ),
    cluster: Optional[int] = typer.Option(
        None, "--cluster", help="Then cluster into K values per kernel, keeping the zeros."
    ),
    epochs: int = typer.Option(2, help="Fine-tuning epochs (at least 1)."),
    batch_size: int = typer.Option(64, help="Batch size."),
    lr: float = typer.Option(1e-4, help="Adam learning rate for the fine-tuning."),
    classes: Optional[int] = typer.Option(None, help="Zoo models: number of classes."),
    input_size: Optional[int] = typer.Option(None, help="Zoo models: input height and width."),
    alpha: Optional[float] = typer.Option(None, help="Zoo models: width multiplier (MobileNets)."),
    out: Optional[Path] = typer.Option(None, help="Where to save (.keras). Default: artifacts/NAME-pruned.keras."),
    limit: Optional[int] = typer.Option(None, help="Use at most N training images (seeded choice)."),
    val_limit: Optional[int] = typer.Option(None, help="Validate on at most N images."),
    seed: int = typer.Option(0, help="Seed for the shuffle and the split."),
    as_json: bool = typer.Option(False, "--json", help="Print the sidecar record as JSON."),
    trust_model: bool = trust_model_option(),
) -> None:
    """Prune with fine-tuning; report the sparsity read from the weights and the gzip size.

    Pruning is prune_low_magnitude, then strip_pruning. The sparsity is read from the
    weights, per layer and in total; the gzip size is compared with the dense model's.
    """
    from edgecnn.training.data import default_output
    from edgecnn.training.prune import prune_model

    out = out or default_output(model, "pruned")
    _, info = _run(
        lambda progress: prune_model(
            model,
            dataset,
            sparsity=sparsity,
            schedule=schedule,
            structured=structured,
            cluster=cluster,
            epochs=epochs,
            batch_size=batch_size,
            lr=lr,
            classes=classes,
            input_size=input_size,
            alpha=alpha,
            out=out,
            seed=seed,
            limit=limit,
            val_limit=val_limit,
            trust_model=trust_model,
            progress=progress,
        )
    )
    if as_json:
        print_json(info)
        return
    pruning = info["pruning"]
    _layer_table(
        f"sparsity read from the pruned weights (target {pruning['target']:.0%}"
        f"{', ' + pruning['structured'] if pruning['structured'] else ''})",
        pruning["layers"],
    )
    console.print(
        f"total {_pct(pruning['total'])} of the pruned kernels; "
        f"{_pct(pruning['overall']['sparsity'])} of all {pruning['overall']['count']:,} weights",
        highlight=False,
    )
    if "clustering" in info:
        _layer_table(
            f"after clustering into {info['clustering']['clusters']} values", info["clustering"]["layers"], unique=True
        )
    _summary(info)


@app.command("cluster")
@one_line_errors
def cluster_command(
    model: str = typer.Argument(..., help="A saved Keras model (.keras), or a zoo name."),
    clusters: int = typer.Option(..., "--clusters", "--cluster", help="K: distinct values per kernel."),
    dataset: str = typer.Option(..., "--dataset", help=_DATASET_HELP),
    init: str = typer.Option("kmeans++", help="Centroid initialisation: kmeans++, linear, density, random."),
    keep_sparsity: Optional[bool] = typer.Option(
        None,
        "--keep-sparsity/--no-keep-sparsity",
        help="Keep the zeros of a pruned model (default: when its sidecar records a sparsity).",
    ),
    epochs: int = typer.Option(2, help="Fine-tuning epochs (at least 1)."),
    batch_size: int = typer.Option(64, help="Batch size."),
    lr: float = typer.Option(1e-4, help="Adam learning rate for the fine-tuning."),
    classes: Optional[int] = typer.Option(None, help="Zoo models: number of classes."),
    input_size: Optional[int] = typer.Option(None, help="Zoo models: input height and width."),
    alpha: Optional[float] = typer.Option(None, help="Zoo models: width multiplier (MobileNets)."),
    out: Optional[Path] = typer.Option(None, help="Where to save (.keras). Default: artifacts/NAME-clustered.keras."),
    limit: Optional[int] = typer.Option(None, help="Use at most N training images (seeded choice)."),
    val_limit: Optional[int] = typer.Option(None, help="Validate on at most N images."),
    seed: int = typer.Option(0, help="Seed for the shuffle and the split."),
    as_json: bool = typer.Option(False, "--json", help="Print the sidecar record as JSON."),
    trust_model: bool = trust_model_option(),
) -> None:
    """Cluster each kernel into K shared values with fine-tuning; report the values per kernel.

    Clustering is cluster_weights, then strip_clustering; the distinct values are read
    from the weights.
    """
    from edgecnn.training.cluster import cluster_model
    from edgecnn.training.data import default_output

    out = out or default_output(model, "clustered")
    _, info = _run(
        lambda progress: cluster_model(
            model,
            dataset,
            clusters=clusters,
            init=init,
            preserve_sparsity=keep_sparsity,
            epochs=epochs,
            batch_size=batch_size,
            lr=lr,
            classes=classes,
            input_size=input_size,
            alpha=alpha,
            out=out,
            seed=seed,
            limit=limit,
            val_limit=val_limit,
            trust_model=trust_model,
            progress=progress,
        )
    )
    if as_json:
        print_json(info)
        return
    _layer_table(f"{clusters} clusters per kernel, read from the weights", info["clustering"]["layers"], unique=True)
    _summary(info)
