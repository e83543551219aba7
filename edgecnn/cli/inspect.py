"""`edgecnn inspect`: options mapped onto `edgecnn.inspect.inspect_artifact`, the report drawn. TensorFlow-free."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from edgecnn.cli._app import app, console, error_console, one_line_errors, print_json, print_table

FORMATS = ("table", "md", "html")


@app.command("inspect")
@one_line_errors
def inspect_command(
    artifact: Path = typer.Argument(
        ..., help="A .tflite or .onnx file (ours or a third party's), or an export folder."
    ),
    data: Optional[str] = typer.Option(
        None,
        "--data",
        help="Images for the numerics (a folder, an .npz, fashion-mnist, default...); needs --reference.",
    ),
    reference: Optional[Path] = typer.Option(
        None,
        "--reference",
        help="The float artifact of the same model and format: per-layer error against it on --data.",
    ),
    threads: Optional[int] = typer.Option(None, "--threads", help="Threads for the runtime (default: its own)."),
    profile: bool = typer.Option(
        False, "--profile", help="Time per op (ONNX Runtime's profiler), tied to the benchmark's p50."
    ),
    preprocess: str = typer.Option(
        "auto",
        "--preprocess",
        help="How --data images are preprocessed: auto (the manifest's), tf, caffe, torch, unit or raw.",
    ),
    samples: int = typer.Option(32, "--samples", help="Images of --data used for the numerics."),
    fmt: str = typer.Option("table", "--format", help="table, md (Markdown) or html (one page)."),
    out: Optional[Path] = typer.Option(
        None, "--out", help="Write the output to this file (whole, or nothing on error) instead of stdout."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the whole report as one JSON object."),
) -> None:
    """Why an artifact is as fast, as big and as accurate as it is.

    Graph (ops by type and compute dtype, float ops in a quantized graph, Q/DQ left after ONNX
    Runtime's fusions, dynamic dimensions, I/O quantization, parameters and bytes by class,
    MACs), runtime (XNNPACK partitions, ORT providers), --profile per-op time, the CPU's int8
    features, --data/--reference per-layer numerics, and ranked findings with what to do.
    """
    from edgecnn.errors import BadArgument
    from edgecnn.inspect import inspect_artifact

    if fmt not in FORMATS:
        raise BadArgument(f"--format must be one of {', '.join(FORMATS)}. Received `{fmt}`")
    if as_json and fmt != "table":
        raise BadArgument(f"--json and --format {fmt}: choose one")

    def warn(message: str) -> None:
        error_console.print(f"[yellow]warning:[/yellow] {message}", highlight=False)

    with error_console.status(f"inspecting {artifact.name}"):
        report = inspect_artifact(
            artifact,
            data=data,
            reference=reference,
            threads=threads,
            profile=profile,
            preprocess=preprocess,
            samples=samples,
            warn=warn,
        )
    from edgecnn.inspect import render

    text = None
    if as_json:
        import json

        text = json.dumps(report, indent=2, default=str) + "\n"
    elif fmt == "md":
        text = render.to_markdown(report)
    elif fmt == "html":
        text = render.to_html(report)
    elif out is not None:
        text = render.to_markdown(report)
    if out is not None:
        from edgecnn.reports.report import write_file

        write_file(out, text)
        error_console.print(f"wrote {out}", highlight=False)
        return
    if as_json:
        print_json(report)
    elif text is not None:
        typer.echo(text, nl=False)
    else:
        render.print_tables(report, print_table, console)
