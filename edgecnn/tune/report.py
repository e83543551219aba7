"""The tuning report in the look of `edgecnn compare`: a table of candidates (md, html, json,
and a rich table for the terminal), the per-layer sensitivity table, and a plot of validation
drop against latency with the budget line."""

from __future__ import annotations

import base64
import io
import json
from html import escape
from pathlib import Path

HEADERS = (
    "format",
    "candidate",
    "step",
    "settings",
    "float layers",
    "size",
    "val top-1",
    "Δ val",
    "test top-1",
    "Δ test",
    "p50 ms",
    "vs float",
    "int-only",
    "within",
    "chosen",
)
RIGHT = {"step", "float layers", "size", "val top-1", "Δ val", "test top-1", "Δ test", "p50 ms", "vs float"}
SENS_HEADERS = ("format", "layer", "type", "SQNR dB", "own SQNR dB", "rel RMSE", "kept float")


def _pct(x):
    return "" if x is None else f"{100 * x:.2f}%"


def _pts(x):
    return "" if x is None else f"{x:+.2f}"


def _size(n):
    if n is None:
        return ""
    return f"{n / 1e6:.2f} MB" if n >= 1e6 else f"{n / 1e3:.1f} kB"


def _ms(x):
    return "" if x is None else (f"{x:.3f}" if x < 10 else f"{x:.1f}")


def rows(record) -> list[list[str]]:
    out = []
    for fmt, data in record["formats"].items():
        ref = data["float_reference"]
        out.append(
            [
                fmt,
                "float32 (reference)",
                "",
                "float artifact, own runtime",
                "all",
                _size(ref["bytes"]),
                _pct(ref["val_top1"]),
                "",
                _pct(ref["test_top1"]),
                "",
                _ms(ref["latency_ms"]),
                "1.00x",
                "no",
                "",
                "",
            ]
        )
        chosen = data["choice"]["id"]
        for c in data["candidates"]:
            if c["error"]:
                out.append(
                    [
                        fmt,
                        c["id"],
                        str(c["step"]),
                        c["label"],
                        "",
                        "",
                        "",
                        "",
                        "",
                        "",
                        "",
                        "",
                        "",
                        "",
                        f"failed: {c['error'][:80]}",
                    ]
                )
                continue
            speed = f"{ref['latency_ms'] / c['latency_ms']:.2f}x" if ref["latency_ms"] and c["latency_ms"] else ""
            out.append(
                [
                    fmt,
                    c["id"],
                    str(c["step"]),
                    c["label"],
                    str(len(c["float_layers"])),
                    _size(c["bytes"]),
                    _pct(c["val_top1"]),
                    _pts(-c["val_drop"]),
                    _pct(c["test_top1"]),
                    _pts(-c["test_drop"]),
                    _ms(c["latency_ms"]),
                    speed,
                    "yes" if c["integer_only"] else "no",
                    "yes" if c["within_budget"] else "no",
                    "<- chosen" if c["id"] == chosen else "",
                ]
            )
    return out


def sensitivity_rows(record) -> list[list[str]]:
    out = []
    for fmt, data in record["formats"].items():
        for s in data.get("sensitivity") or []:

            def num(v):
                return "" if v is None else (v if isinstance(v, str) else f"{v:.2f}")

            out.append(
                [
                    fmt,
                    s["layer"],
                    s["type"],
                    num(s["sqnr_db"]),
                    num(s["own_sqnr_db"]),
                    "" if s["rel_rmse"] in (None, "inf") else f"{s['rel_rmse']:.4f}",
                    "yes" if s["kept_float"] else "",
                ]
            )
    return out


def footer(record) -> list[str]:
    lines = [
        f"budget: at most {record['budget']['max_drop_points']:g} top-1 points below the float reference "
        f"on validation; optimize {record['budget']['optimize']}",
        "parts: "
        + ", ".join(
            f"{k} {v['count']}"
            for k, v in record["parts"].items()
            if k != "source" and isinstance(v, dict) and "count" in v
        )
        + f" (seed {record['parts']['seed']}, of {record['parts']['source']['name']})",
        "Δ val, Δ test: top-1 points against the float artifact of the same format (negative: below it); "
        "test figures are reported, never used to choose",
    ]
    for fmt, data in record["formats"].items():
        lines.append(f"{fmt}: {data['choice']['why']} ({data['choice']['rule']})")
        for step in data["steps"]:
            if step.get("skipped"):
                lines.append(f"{fmt} step {step['step']} skipped: {step['skipped']}")
        if data.get("stopped"):
            lines.append(f"{fmt}: {data['stopped']}")
    lines.append(f"wall time {record['seconds']:.1f} s")
    return lines


def _md_table(headers, body) -> list[str]:
    def cell(t):
        return str(t).replace("|", "\\|")

    out = [
        "| " + " | ".join(headers) + " |",
        "|" + "|".join("---:" if h in RIGHT or h.endswith("dB") or h == "rel RMSE" else "---" for h in headers) + "|",
    ]
    out += ["| " + " | ".join(cell(t) for t in row) + " |" for row in body]
    return out


def to_markdown(record) -> str:
    out = [f"# edgecnn tune: {record['model']}", ""]
    out += _md_table(HEADERS, rows(record))
    out += [""] + [f"- {line}" for line in footer(record)]
    sens = sensitivity_rows(record)
    if sens:
        out += ["", "## Per-layer sensitivity (step 3)", ""]
        out += _md_table(SENS_HEADERS, sens)
    return "\n".join(out) + "\n"


def plot_png(record) -> bytes | None:
    """Validation drop against latency per format, the budget line across."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = [
        (fmt, c)
        for fmt, data in record["formats"].items()
        for c in data["candidates"]
        if not c["error"] and c["latency_ms"] is not None
    ]
    if not points:
        return None
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
    markers = {"tflite": "o", "onnx": "s"}
    for fmt, data in record["formats"].items():
        mine = [c for f, c in points if f == fmt]
        if not mine:
            continue
        ax.scatter(
            [c["latency_ms"] for c in mine],
            [c["val_drop"] for c in mine],
            marker=markers.get(fmt, "o"),
            label=f"{fmt} candidates",
            alpha=0.8,
        )
        for c in mine:
            ax.annotate(
                c["id"].split("-", 1)[1],
                (c["latency_ms"], c["val_drop"]),
                fontsize=7,
                xytext=(3, 3),
                textcoords="offset points",
            )
        chosen = next((c for c in mine if c["id"] == data["choice"]["id"]), None)
        if chosen:
            ax.scatter(
                [chosen["latency_ms"]],
                [chosen["val_drop"]],
                s=160,
                facecolors="none",
                edgecolors="black",
                linewidths=1.5,
            )
        if data["float_reference"]["latency_ms"]:
            ax.axvline(data["float_reference"]["latency_ms"], color="grey", linestyle=":", linewidth=1)
    ax.axhline(
        record["budget"]["max_drop_points"],
        color="red",
        linestyle="--",
        label=f"budget {record['budget']['max_drop_points']:g} points",
    )
    ax.set_xlabel("latency, harness p50 (ms); dotted: float reference")
    ax.set_ylabel("validation top-1 drop (points)")
    ax.set_title(f"edgecnn tune: {record['model']} (circled: chosen)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def to_html(record, png: bytes | None) -> str:
    def table(headers, body):
        out = ["<table><thead><tr>"] + [f"<th>{escape(h)}</th>" for h in headers] + ["</tr></thead><tbody>"]
        for row in body:
            css = ' class="front"' if row[-1] == "<- chosen" else ""
            out.append(
                f"<tr{css}>"
                + "".join(
                    f'<td class="num">{escape(t)}</td>' if h in RIGHT else f"<td>{escape(t)}</td>"
                    for h, t in zip(headers, row)
                )
                + "</tr>"
            )
        return out + ["</tbody></table>"]

    from edgecnn.reports.html_page import _STYLE

    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>edgecnn tune: {escape(record['model'])}</title>",
        f"<style>{_STYLE}</style></head><body>",
        f"<h1>edgecnn tune: {escape(record['model'])}</h1>",
    ]
    out += table(HEADERS, rows(record))
    out += ["<ul>"] + [f"<li>{escape(line)}</li>" for line in footer(record)] + ["</ul>"]
    if png:
        data = base64.b64encode(png).decode("ascii")
        out.append(
            f'<figure><img alt="drop against latency" src="data:image/png;base64,{data}">'
            "<figcaption>validation drop against latency, budget line dashed</figcaption></figure>"
        )
    sens = sensitivity_rows(record)
    if sens:
        out.append("<h2>Per-layer sensitivity (step 3)</h2>")
        out += table(SENS_HEADERS, sens)
    out.append("<h2>Versions</h2><dl>")
    for tool, version in record["versions"].items():
        out.append(f"<dt>{escape(tool)}</dt><dd>{escape(str(version))}</dd>")
    out.append("</dl></body></html>")
    return "\n".join(out) + "\n"


def rich_table(record):
    from rich.table import Table

    table = Table(title=f"edgecnn tune: {record['model']}", title_justify="left")
    for h in HEADERS:
        table.add_column(h, justify="right" if h in RIGHT else "left", overflow="fold")
    for row in rows(record):
        table.add_row(*row, style="bold green" if row[-1] == "<- chosen" else None)
    return table


def write_report(record, folder: Path) -> None:
    folder = Path(folder)
    png = plot_png(record)
    if png:
        (folder / "drop-latency.png").write_bytes(png)
    (folder / "report.md").write_text(to_markdown(record))
    (folder / "report.html").write_text(to_html(record, png))
    (folder / "report.json").write_text(json.dumps(record, indent=2, default=str) + "\n")
