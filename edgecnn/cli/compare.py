"""`edgecnn compare`: results in, `edgecnn.reports.build_report` called, a table, a page or plots out.

TensorFlow-free: reports are made where the measurements were.
"""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from edgecnn.cli._app import app, console, error_console, one_line_errors, print_table


@app.command("compare")
@one_line_errors
def compare_command(
    results: Optional[List[Path]] = typer.Argument(
        None,
        help=".jsonl files written by `edgecnn benchmark --out` and `edgecnn evaluate --out`, "
        "JSON files (rows, manifest.json), or folders of them.",
        show_default=False,
        metavar="RESULTS...",
    ),
    fmt: str = typer.Option(
        "table",
        "--format",
        help="table, md (Markdown), csv, or html (one self-contained page with the plots embedded).",
    ),
    out: Optional[Path] = typer.Option(
        None, "--out", help="Write the output to this file (whole, or nothing on error) instead of stdout."
    ),
    plot: Optional[Path] = typer.Option(
        None, "--plot", help="Also write the plots (size vs top-1, p50 vs top-1) to this .png file."
    ),
    baseline: str = typer.Option(
        "float32",
        "--baseline",
        help="The quantization the others are compared with: float32, float16, dynamic, int8 or int16x8.",
    ),
    as_json: bool = typer.Option(
        False, "--json", help="Print the rows as a JSON list (plain values: bytes, fractions, milliseconds)."
    ),
) -> None:
    """One row per artifact and configuration: size, top-1, p50/p90, and each against the float model.

    Rows of benchmark and evaluate about the same file (sha256) are joined; the same file
    measured with another runtime, thread count or host is another row, and a later line
    for the same configuration replaces an earlier one. `*` marks the Pareto front of
    each model, input and host (no other row is smaller, faster and at least as
    accurate). Failed benchmarks are listed with their reason.

    The output goes to stdout, or to --out FILE for any format (an html page is meant for
    --out report.html).
    """
    from edgecnn.errors import BadArgument
    from edgecnn.reports import build_report, write_file
    from edgecnn.reports.render import FORMATS, check_plot_path, render, render_plot

    if fmt not in FORMATS[:-1]:
        raise BadArgument(f"--format must be one of {', '.join(FORMATS[:-1])}. Received `{fmt}`")
    if as_json and fmt != "table":
        raise BadArgument(f"--json and --format {fmt}: choose one")
    if plot is not None:
        check_plot_path(plot)

    report = build_report(results, baseline=baseline)
    for message in report.warnings:  # the records skipped, before anything is drawn or written
        typer.echo(f"warning: {message}", err=True)
    # Everything is made in memory first, so a failure leaves no file behind.
    plot_png = render_plot(report, plot) if plot is not None else None
    shown = "json" if as_json else fmt
    text = render(report, shown) if shown != "table" or out is not None else None

    if plot is not None:
        write_file(plot, plot_png)
        error_console.print(f"wrote {plot}", highlight=False)
    if out is not None:
        write_file(out, text)
        error_console.print(f"wrote {out}", highlight=False)
        return
    if text is not None:
        typer.echo(text, nl=False)
    else:
        from edgecnn.reports.formats import footer_lines, rich_table

        print_table(rich_table(report))
        for line in footer_lines(report):
            console.print(line, highlight=False, soft_wrap=True, markup=False)
