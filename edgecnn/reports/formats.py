"""The comparison as text: a terminal table (rich), Markdown and CSV.

Table and Markdown show numbers for people (sizes in MB, top-1 in %, the change in
percentage points); CSV (and JSON) keep plain values: bytes, fractions, milliseconds.
The host is a column only when the rows come from more than one machine; otherwise it
is one line under the table.
"""

from __future__ import annotations

import csv
import io
from typing import Callable

from edgecnn.reports.join import ComparedRow, data_label, host_label, input_label

FRONT_MARK = "*"


def ms_text(value) -> str:
    """A latency in milliseconds for people: 3 significant digits or so, "" for none."""
    if value is None:
        return ""
    if value >= 100:
        return f"{value:.0f}"
    if value >= 10:
        return f"{value:.1f}"
    if value >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


def _mb(n: int | None) -> str:
    if n is None:
        return ""
    mb = n / 1e6
    return f"{mb:.1f}" if mb >= 100 else f"{mb:.2f}" if mb >= 1 else f"{mb:.3f}"


def _ratio(x: float | None) -> str:
    return "" if x is None else f"{x:.2f}x"


def _percent(x: float | None, digits: int = 2) -> str:
    return "" if x is None else f"{100 * x:.{digits}f}%"


def _points(x: float | None) -> str:
    return "" if x is None else f"{x:+.2f} pts"


def _runtime(row: ComparedRow) -> str:
    measured = row.measured
    if not measured.get("runtime"):
        return ""
    text = f"{measured['runtime']} {measured.get('runtime_version') or ''}".strip()
    if row.provider and (row.facts.format == "onnx" or row.provider != "cpu"):
        text += f" {row.provider}"
    return text


def _threads(row: ComparedRow) -> str:
    if not row.measured:
        return ""
    return "default" if row.threads is None else str(row.threads)


# header, cell, right-aligned
COLUMNS: list[tuple[str, Callable[[ComparedRow], str], bool]] = [
    ("front", lambda r: FRONT_MARK if r.front else "", False),
    ("model", lambda r: r.model, False),
    ("input", lambda r: input_label(r.facts), False),
    ("variant", lambda r: r.variant, False),
    ("format", lambda r: r.facts.format or "", False),
    ("runtime", _runtime, False),
    ("threads", _threads, True),
    ("host", lambda r: host_label(r.host), False),
    ("size MB", lambda r: _mb(r.bytes), True),
    ("vs float", lambda r: _ratio(r.size_vs_float), True),
    ("sparsity", lambda r: _percent(r.sparsity, 0), True),
    ("top-1", lambda r: _percent(r.top1), True),
    ("Δ top-1", lambda r: _points(r.top1_change), True),
    ("data", lambda r: data_label(r.evaluation), False),
    ("p50 ms", lambda r: ms_text(r.p50), True),
    ("p90 ms", lambda r: ms_text(r.latency("p90")), True),
    ("speed-up", lambda r: _ratio(r.speedup), True),
    ("notes", lambda r: "; ".join(r.notes), False),
]


def _datasets(report) -> set[str]:
    return {data_label(row.evaluation) for row in report.rows if row.evaluation}


def columns(report) -> list[tuple[str, Callable[[ComparedRow], str], bool]]:
    """The columns worth showing: host and data only when rows differ in them (else one line
    under the table), sparsity and notes only when some row has one."""
    hidden = set()
    if len(report.hosts()) <= 1:
        hidden.add("host")
    if len(_datasets(report)) <= 1:
        hidden.add("data")
    if not any(row.sparsity for row in report.rows):
        hidden.add("sparsity")
    if not any(row.notes for row in report.rows):
        hidden.add("notes")
    return [c for c in COLUMNS if c[0] not in hidden]


def cells(report) -> tuple[list[str], list[list[str]], list[bool]]:
    cols = columns(report)
    return ([c[0] for c in cols], [[c[1](row) for c in cols] for row in report.rows], [c[2] for c in cols])


def footer_lines(report) -> list[str]:
    """What the marks mean, the machine(s), and the report's notes."""
    lines = [
        f"{FRONT_MARK} on the Pareto front of its model, input and host: no other row is smaller, "
        "faster and at least as accurate",
        f"vs float, Δ top-1, speed-up: against the {report.baseline} artifact of the same model, input, "
        "format, runtime, threads and host",
    ]
    hosts = report.hosts()
    if len(hosts) == 1:
        ((label, host),) = hosts.items()
        lines.append(f"host: {label}, {host.get('os')}")
    datasets = _datasets(report)
    if len(datasets) == 1:
        lines.append(f"top-1 on {datasets.pop()}")
    lines.extend(report.notes)
    return lines


def rich_table(report):
    from rich.table import Table

    headers, body, right = cells(report)
    table = Table(box=None)
    for header, is_right in zip(headers, right):
        table.add_column(header, justify="right" if is_right else "left", no_wrap=header != "notes")
    for row, texts in zip(report.rows, body):
        table.add_row(*texts, style="bold" if row.front else ("red" if row.failed else None))
    return table


def to_table_text(report) -> str:
    """The terminal table as plain text, its full width (for --out FILE)."""
    from rich.console import Console
    from rich.measure import Measurement

    table = rich_table(report)
    sizer = Console(width=10_000, file=io.StringIO())
    width = Measurement.get(sizer, sizer.options, table).maximum
    console = Console(width=max(width, 40), file=io.StringIO(), color_system=None, highlight=False)
    console.print(table)
    for line in footer_lines(report):
        console.print(line, soft_wrap=True)
    return console.file.getvalue()


def _md_cell(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def to_markdown(report) -> str:
    headers, body, right = cells(report)
    lines = [
        "| " + " | ".join(_md_cell(h) for h in headers) + " |",
        "|" + "|".join("---:" if r else "---" for r in right) + "|",
    ]
    lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in body]
    lines.append("")
    lines += [
        f"- {_md_cell(line)}" if not line.startswith(FRONT_MARK) else f"- \\{line}" for line in footer_lines(report)
    ]
    return "\n".join(lines) + "\n"


CSV_KEYS = (
    "front",
    "model",
    "input",
    "variant",
    "quantization",
    "weights",
    "format",
    "runtime",
    "runtime_version",
    "provider",
    "threads",
    "batch",
    "host",
    "remote",
    "bytes",
    "size_mb",
    "size_vs_float",
    "sparsity",
    "top1",
    "top1_change",
    "top5",
    "data",
    "p50_ms",
    "p90_ms",
    "speedup",
    "status",
    "error",
    "notes",
    "sha256",
    "artifact",
)


def to_csv(report) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_KEYS)
    for record in report.records():
        values = []
        for key in CSV_KEYS:
            value = record[key]
            if key == "notes":
                value = "; ".join(value)
            elif isinstance(value, bool):
                value = "true" if value else "false"
            values.append("" if value is None else value)
        writer.writerow(values)
    return out.getvalue()
