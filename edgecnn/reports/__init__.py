"""Comparison reports: what `edgecnn compare` prints, plots and writes.

    from edgecnn.reports import build_report, to_markdown
    report = build_report(["results.jsonl"], baseline="float32")
    print(to_markdown(report))

- `rows`: read RESULTS (JSON lines, JSON files, manifests, folders) and refuse what is
  not an edgecnn row this version reads;
- `join`: one row per artifact and configuration, variant labels, the float parent;
- `pareto`: the front per model, input and host;
- `formats`: table, Markdown, CSV; `plots`: matplotlib PNGs; `html_page`: one page.

TensorFlow-free, like benchmark and evaluate: reports are made on the machine that
measured. matplotlib is imported only when a plot is drawn.
"""

from edgecnn.reports.formats import to_csv, to_markdown, to_table_text
from edgecnn.reports.join import ComparedRow, variant_label
from edgecnn.reports.pareto import dominates, front
from edgecnn.reports.report import BASELINES, Report, build_report, write_file

__all__ = [
    "BASELINES",
    "ComparedRow",
    "Report",
    "build_report",
    "dominates",
    "front",
    "to_csv",
    "to_markdown",
    "to_table_text",
    "variant_label",
    "write_file",
]
