"""`edgecnn tune`: options in, `edgecnn.tune.tune` called, the candidates table out."""

from __future__ import annotations

from pathlib import Path

import typer

from edgecnn.cli._app import (
    app,
    console,
    one_line_errors,
    print_json,
    print_table,
    trust_model_option,
)
from edgecnn.cli._progress import rich_progress


@app.command("tune")
@one_line_errors
def tune_command(
    model: str = typer.Argument(..., help="A saved Keras model (.keras, .h5), or a zoo name with --weights."),
    data: str = typer.Option(
        ...,
        "--data",
        help="Labelled images: fashion-mnist[:DIR], a folder with dataset.txt, an .npz with labels, default.",
    ),
    max_drop: float = typer.Option(
        1.0, "--max-drop", help="Top-1 points the artifact may lose against the float artifact, on the validation part."
    ),
    fmt: str = typer.Option("tflite", "--format", help="tflite, onnx or all."),
    optimize: str = typer.Option("latency", "--optimize", help="latency (fastest within budget) or size."),
    threads: int | None = typer.Option(None, "--threads", help="Runtime threads for evaluation and latency."),
    time_budget: float | None = typer.Option(
        None, "--time-budget", help="Minutes; the ladder stops before a candidate that would not fit."
    ),
    qat: bool | None = typer.Option(
        None,
        "--qat/--no-qat",
        help="Step 4, quantization-aware fine-tuning "
        "(TFLite) on what the three parts leave of --data (default: when "
        "there are enough images).",
    ),
    qat_epochs: int = typer.Option(1, "--qat-epochs", help="QAT epochs."),
    calib_size: int = typer.Option(200, "--calib-size", help="Calibration part, images."),
    val_size: int | None = typer.Option(
        None, "--val-size", help="Validation part (default: half of the rest, at most 1000)."
    ),
    test_size: int | None = typer.Option(None, "--test-size", help="Test part (default: as validation)."),
    max_float_layers: int = typer.Option(6, "--max-float-layers", help="Step 3's limit on the layers kept float."),
    seed: int = typer.Option(0, "--seed", help="Seed of the split."),
    weights: str = typer.Option("auto", "--weights", help="Zoo models: auto, none or a weights file."),
    preprocess: str = typer.Option(
        "auto", "--preprocess", help="auto (the model's sidecar), tf, caffe, torch, unit or raw."
    ),
    out: Path = typer.Option(Path("tuned"), "--out", help="Folder for the chosen artifact(s) and the report."),
    trust_model: bool = trust_model_option(),
    as_json: bool = typer.Option(False, "--json", help="Print the tuning record as JSON."),
) -> None:
    """The fastest (or smallest) int8 artifact within an accuracy budget, per format.

    The data is split into three disjoint seeded parts: calibration, validation (every
    choice is made there) and test (reported only). Ladder per format, cheapest first,
    stopping at the first step with a candidate within budget: plain int8, calibration
    variants, the most sensitive layers kept float, QAT (TFLite).
    """
    from converters import formats_for
    from edgecnn.tune import TuneRequest, tune

    request = TuneRequest(
        model=model,
        data=data,
        max_drop=max_drop,
        formats=formats_for(fmt),
        optimize=optimize,
        threads=threads,
        time_budget=time_budget,
        qat=qat,
        qat_epochs=qat_epochs,
        calib_size=calib_size,
        val_size=val_size,
        test_size=test_size,
        max_float_layers=max_float_layers,
        seed=seed,
        weights=weights,
        preprocess=preprocess,
        out=out,
        trust_model=trust_model,
    )
    with rich_progress(remaining=True, transient=False, bars_from="step") as progress:
        record = tune(request, progress)
    if as_json:
        print_json(record)
        return
    from edgecnn.tune.report import footer, rich_table

    print_table(rich_table(record))
    for line in footer(record):
        console.print(line, highlight=False)
    for fmt_name, data_ in record["formats"].items():
        console.print(f"{fmt_name}: {data_['choice'].get('artifact')}", highlight=False)
    console.print(f"report: {record['report']}", highlight=False)
