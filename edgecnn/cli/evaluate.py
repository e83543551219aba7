"""`edgecnn evaluate`: options in, `edgecnn.evaluate.evaluate_artifact` called, top-1/top-5 out.

No TensorFlow here or in what it imports: this command runs on boards.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from edgecnn.cli._app import app, console, error_console, one_line_errors, print_json
from edgecnn.cli._progress import rich_progress


def _percent(value: float) -> str:
    return f"{100 * value:.2f}%"


@app.command("evaluate")
@one_line_errors
def evaluate_command(
    artifact: Path = typer.Argument(
        ...,
        help="A .tflite or .onnx file (with its manifest.json beside it, "
        "or --preprocess), or a folder written by `edgecnn export`.",
    ),
    data: str = typer.Option(
        ...,
        "--data",
        help="Labelled images: default, a folder with dataset.txt, fashion-mnist[:DIR], or an .npz with labels.",
    ),
    limit: Optional[int] = typer.Option(None, "--limit", help="Evaluate the first N images only."),
    preprocess: str = typer.Option(
        "auto", "--preprocess", help="auto (the manifest's), tf, caffe, torch, unit or raw."
    ),
    crop_fraction: Optional[float] = typer.Option(
        None,
        "--crop-fraction",
        help="Central crop before resizing (default: the data's own, "
        "0.875 for photos, 1.0 for Fashion-MNIST and .npz).",
    ),
    split: str = typer.Option("test", "--split", help="train or test (Fashion-MNIST, .npz with x_train/x_test)."),
    runtime: str = typer.Option(
        "auto", "--runtime", help="auto, litert, tflite-runtime or tf for .tflite; onnxruntime for .onnx."
    ),
    threads: Optional[int] = typer.Option(None, "--threads", help="Runtime threads (default: the runtime's)."),
    batch_size: int = typer.Option(32, "--batch-size", help="Images per inference call."),
    input_scale: Optional[float] = typer.Option(
        None,
        "--input-scale",
        help="How an integer (uint8/int8) input holds real values where the "
        "model does not say: real = scale * (q - zero point).",
    ),
    input_zero_point: Optional[int] = typer.Option(
        None, "--input-zero-point", help="Zero point with --input-scale (default 0)."
    ),
    out: Optional[Path] = typer.Option(None, "--out", help="Append the result row to this .jsonl file."),
    as_json: bool = typer.Option(False, "--json", help="Print the result row as JSON."),
) -> None:
    """Top-1 and top-5 accuracy of an artifact on labelled images, in its own runtime.

    Inputs are quantized with the input's scale and zero point (a TFLite tensor's, or
    the DequantizeLinear reading an ONNX input; an integer input the model says nothing
    about needs --input-scale, or --preprocess raw for uint8 pixels), outputs
    dequantized. A manifest.json that is broken is ignored with a warning. Models with
    1001 outputs (background class first) are scored against 1000 labels.
    """

    from edgecnn.evaluate import evaluate_artifact
    from edgecnn.results import append_rows

    def run(progress):
        return evaluate_artifact(
            artifact,
            data,
            limit=limit,
            preprocess=preprocess,
            runtime=runtime,
            threads=threads,
            batch_size=batch_size,
            split=split,
            crop_fraction=crop_fraction,
            input_scale=input_scale,
            input_zero_point=input_zero_point,
            progress=progress,
        )

    if out is not None:
        from edgecnn.results import check_writable

        check_writable(out)  # before evaluating, not after

    with rich_progress() as progress:
        row = run(progress)
    if out is not None:
        append_rows(out, [row])
    if as_json:
        print_json(row)
        return
    from rich.table import Table

    pre = row["preprocess"]
    k = row["top5_k"]
    table = Table(
        title=f"{row['artifact_name']} on {row['data']['name']}", title_justify="left", box=None, show_header=False
    )
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    table.add_row("n", str(row["n"]))
    table.add_row("top-1", _percent(row["top1"]))
    table.add_row("top-5" if k == 5 else f"top-{k}", _percent(row["top5"]))
    table.add_row(
        "preprocess",
        f"{pre['mode']} ({pre['source']}), {'x'.join(map(str, pre['input_shape']))}, crop {pre['crop_fraction']:g}",
    )
    table.add_row(
        "runtime",
        f"{row['runtime']} {row['runtime_version']}, batch {row['batch_size']}"
        + (f", {row['threads']} threads" if row["threads"] else ""),
    )
    table.add_row("seconds", f"{row['seconds']:.1f}")
    console.print(table)
    if row["background_class_dropped"]:
        console.print("1001 outputs: column 0 (background) dropped, scored against labels 0..999", highlight=False)
    if out is not None:
        error_console.print(f"appended to {out}", highlight=False)
