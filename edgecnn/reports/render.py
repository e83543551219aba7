"""A report in each of compare's output formats: one dispatch, for the CLI and for Python callers."""

from __future__ import annotations

import json

from edgecnn.errors import BadArgument, EdgecnnError

FORMATS = ("table", "md", "csv", "html", "json")


def render(report, fmt: str) -> str:
    """The whole text of `report` as `fmt` (made in memory, so a failure leaves no file)."""
    if fmt not in FORMATS:
        raise BadArgument(f"--format must be one of {', '.join(FORMATS[:-1])}. Received `{fmt}`")
    if fmt == "json":
        return json.dumps(report.records(), indent=2, default=str) + "\n"
    if fmt == "md":
        from edgecnn.reports.formats import to_markdown

        return to_markdown(report)
    if fmt == "csv":
        from edgecnn.reports.formats import to_csv

        return to_csv(report)
    if fmt == "html":
        from edgecnn.reports.html_page import render_html
        from edgecnn.reports.plots import render_images

        try:
            images, note = render_images(report), None
        except EdgecnnError as exc:  # nothing plottable: the page says so
            images, note = [], str(exc)
        return render_html(report, images, note)
    from edgecnn.reports.formats import to_table_text

    return to_table_text(report)


def check_plot_path(path) -> None:
    """--plot writes a PNG: refuse another name before any work."""
    from pathlib import Path

    if Path(path).suffix.lower() != ".png":
        raise BadArgument(f"--plot writes a PNG: give a .png file name. Received `{path}`")


def render_plot(report, path) -> bytes:
    """The PNG of the plots, for `path` (a .png file)."""
    check_plot_path(path)
    from edgecnn.reports.plots import render_png

    return render_png(report)
