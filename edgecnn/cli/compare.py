"""`edgecnn compare`: results in, `edgecnn.reports.build_report` called, a table, a page or plots out.

TensorFlow-free: reports are made where the measurements were.
"""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from edgecnn.cli._app import app, console, error_console, one_line_errors, print_json, print_table

FORMATS = ("table", "md", "csv", "html")


@app.command("compare")
@one_line_errors
def compare_command(
    results: Optional[List[Path]] = typer.Argument(
        None, help=".jsonl files written by `edgecnn benchmark --out` and `edgecnn evaluate --out`, "
        "JSON files (rows, manifest.json), or folders of them.", show_default=False, metavar="RESULTS..."),
    fmt: str = typer.Option("table", "--format", help="table, md (Markdown), csv, or html (one "
                            "self-contained page with the plots embedded)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Write the output to this file (whole, or "
                                       "nothing on error) instead of stdout."),
    plot: Optional[Path] = typer.Option(None, "--plot", help="Also write the plots (size vs top-1, "
                                        "p50 vs top-1) to this .png file."),
    baseline: str = typer.Option("float32", "--baseline", help="The quantization the others are compared "
                                 "with: float32, float16, dynamic, int8 or int16x8."),
    as_json: bool = typer.Option(False, "--json", help="Print the rows as a JSON list (plain values: "
                                 "bytes, fractions, milliseconds)."),
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
    from edgecnn.reports import build_report, to_csv, to_markdown, to_table_text, write_file

    if fmt not in FORMATS:
        raise BadArgument(f"--format must be one of {', '.join(FORMATS)}. Received `{fmt}`")
    if as_json and fmt != "table":
        raise BadArgument(f"--json and --format {fmt}: choose one")
    if plot is not None and plot.suffix.lower() != ".png":
        raise BadArgument(f"--plot writes a PNG: give a .png file name. Received `{plot}`")

    report = build_report(results, baseline=baseline)

    # Everything is made in memory first, so a failure leaves no file behind.
    plot_png = None
    if plot is not None:
        from edgecnn.reports.plots import render_png

        plot_png = render_png(report)
    text = None
    if as_json:
        import json

        text = json.dumps(report.records(), indent=2, default=str) + "\n"
    elif fmt == "md":
        text = to_markdown(report)
    elif fmt == "csv":
        text = to_csv(report)
    elif fmt == "html":
        from edgecnn.errors import EdgecnnError
        from edgecnn.reports.html_page import render_html
        from edgecnn.reports.plots import render_images

        try:
            images, note = render_images(report), None
        except EdgecnnError as exc:  # nothing plottable: the page says so
            images, note = [], str(exc)
        text = render_html(report, images, note)
    elif out is not None:
        text = to_table_text(report)

    if plot is not None:
        write_file(plot, plot_png)
        error_console.print(f"wrote {plot}", highlight=False)
    if out is not None:
        write_file(out, text)
        error_console.print(f"wrote {out}", highlight=False)
        return
    if as_json:
        print_json(report.records())
    elif text is not None:
        typer.echo(text, nl=False)
    else:
        from edgecnn.reports.formats import footer_lines, rich_table

        print_table(rich_table(report))
        for line in footer_lines(report):
            console.print(line, highlight=False, soft_wrap=True, markup=False)
