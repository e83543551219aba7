"""`edgecnn export`: options in, `edgecnn.export.export` called, a summary out."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from edgecnn.cli._app import app, console, one_line_errors, print_json, print_table, si_bytes, trust_model_option
from edgecnn.cli._progress import rich_progress


@app.command("export")
@one_line_errors
def export_command(
    model: str = typer.Argument(..., help="A zoo name (see `edgecnn models`) or a saved Keras model (.keras, .h5)."),
    int8: bool = typer.Option(False, "--int8", help="Full-integer int8, calibrated on real images."),
    float16: bool = typer.Option(False, "--float16", help="Float16 weights."),
    dynamic: bool = typer.Option(False, "--dynamic", help="Dynamic range: int8 weights, float activations."),
    int16x8: bool = typer.Option(False, "--int16x8", help="int16 activations, int8 weights, calibrated."),
    fmt: str = typer.Option("tflite", "--format", help="tflite, onnx or all."),
    weights: str = typer.Option(
        "auto", help="auto (ImageNet if cached or downloadable, else random), none, or a weights file."
    ),
    input_size: Optional[int] = typer.Option(None, help="Input height and width."),
    alpha: Optional[float] = typer.Option(None, help="Width multiplier (MobileNets)."),
    classes: Optional[int] = typer.Option(None, help="Number of classes."),
    calib: str = typer.Option(
        "default",
        help="Calibration images: default (shipped photos; with --qat the --dataset), "
        "a folder, fashion-mnist, an .npz, or random.",
    ),
    calib_samples: int = typer.Option(100, help="Calibration samples."),
    calib_method: str = typer.Option("minmax", help="minmax, entropy or percentile (ONNX; TFLite uses minmax)."),
    io: Optional[str] = typer.Option(
        None, help="Input/output type of integer TFLite models: int8 (default), uint8, float; int16 for --int16x8."
    ),
    preprocess: str = typer.Option("auto", help="auto (the model's own), tf, caffe, torch, unit or raw."),
    out: Path = typer.Option(Path("artifacts"), help="Folder to write artifact folders into."),
    seed: int = typer.Option(0, help="Seed for random weights, the calibration sample and QAT."),
    qat: bool = typer.Option(
        False,
        "--qat",
        help="Quantization-aware training on --dataset before the "
        "--int8 conversion (TFLite only); keeps a pruned or clustered model's zeros or clusters.",
    ),
    dataset: Optional[str] = typer.Option(
        None,
        "--dataset",
        help="With --qat: labelled training data (fashion-mnist, a folder with dataset.txt, an .npz with labels).",
    ),
    epochs: Optional[int] = typer.Option(None, "--epochs", help="With --qat: fine-tuning epochs (default 1)."),
    qat_lr: Optional[float] = typer.Option(None, "--qat-lr", help="With --qat: Adam learning rate (default 1e-5)."),
    qat_batch_size: Optional[int] = typer.Option(None, "--qat-batch-size", help="With --qat: batch size (default 64)."),
    qat_limit: Optional[int] = typer.Option(
        None,
        "--qat-limit",
        help="With --qat: use only N training images (quick runs; validation keeps the whole split).",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the manifests as a JSON list."),
    trust_model: bool = trust_model_option(),
) -> None:
    """Convert a model to TFLite and/or ONNX, quantized, with a manifest.json beside each artifact.

    `--int8 --qat --dataset SOURCE --epochs N` fine-tunes the model quantization-aware first.
    """
    import warnings

    from calibration import CalibrationWarning
    from converters import formats_for, quantization_for
    from edgecnn.export import ExportRequest, build_model, export, qat_settings, quantization_aware, reserve

    warnings.simplefilter("ignore", CalibrationWarning)  # export prints them as one line each

    request = ExportRequest(
        model=model,
        quantization=quantization_for(int8=int8, float16=float16, dynamic=dynamic, int16x8=int16x8),
        formats=formats_for(fmt),
        weights=weights,
        input_size=input_size,
        alpha=alpha,
        classes=classes,
        calib=calib,
        calib_samples=calib_samples,
        calib_method=calib_method,
        io=io,
        preprocess=preprocess,
        out=out,
        seed=seed,
        qat=qat,
        trust_model=trust_model,
        **qat_settings(qat, dataset=dataset, epochs=epochs, lr=qat_lr, batch_size=qat_batch_size, limit=qat_limit),
    )
    with rich_progress(epoch_label="QAT epoch") as progress:
        if request.qat:  # model -> optimize (the QAT stage) -> convert + manifest (export), --out locked first
            with reserve(request) as folder:
                model = quantization_aware(build_model(request, progress), request, progress)
                manifests = export(request, progress=progress, model=model, out=folder)
        else:
            manifests = export(request, progress=progress)
    if as_json:
        print_json(manifests)
        return
    table = Table(title=None, box=None)
    table.add_column("artifact", overflow="fold")
    for column in ("size", "vs float32 weights", "parity (max |diff|, top-1)", "weights"):
        table.add_column(column)
    for m in manifests:
        parity = m["parity"]
        table.add_row(
            m["path"],
            si_bytes(m["bytes"]),
            f"{m['bytes'] / m['float32_weight_bytes']:.2f}x",
            f"{parity['max_abs_diff']:.2g}, {parity['top1_agreement']:.0%} of {parity['samples']}",
            m["weights"],
        )
    print_table(table)
    qat_record = manifests[0].get("qat")
    if qat_record:
        console.print(
            f"QAT ({qat_record['scheme']}, {qat_record['epochs']} epoch(s), "
            f"{qat_record['data']['train_count']} images): Keras validation accuracy "
            f"{qat_record['val_accuracy_float']:.2%} float, {qat_record['val_accuracy_qat']:.2%} "
            "quantization-aware",
            highlight=False,
            soft_wrap=True,
        )
