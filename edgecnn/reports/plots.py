"""Plots of the comparison: size vs top-1 and p50 latency vs top-1, as PNG bytes.

One colour per model (and input), one marker per host when there are several; every
point is labelled with its variant (plus the format, runtime or threads where the
model's points differ in them). Filled points are on the Pareto front (size, p50 and
top-1 together, see `edgecnn.reports.pareto`); the step line is the front of the two
metrics the panel shows. Without any top-1 in the results the one panel is size vs p50
latency, and its title says so. Failed benchmarks are not plotted.

matplotlib is imported here only, with the Agg backend, so that reading and tabulating
results never loads it.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Callable

from edgecnn.errors import EdgecnnError
from edgecnn.reports.join import ComparedRow, host_label, input_label
from edgecnn.reports.pareto import step_points

MARKERS = ("o", "s", "^", "D", "v", "P", "X")

# metric -> (axis label, value, sense)
AXES: dict[str, tuple[str, Callable[[ComparedRow], float | None], str]] = {
    "size": ("size (MB)", lambda r: None if r.bytes is None else r.bytes / 1e6, "min"),
    "p50": ("p50 latency (ms)", lambda r: r.p50, "min"),
    "top1": ("top-1 (%)", lambda r: None if r.top1 is None else 100 * r.top1, "max"),
}


@dataclass(frozen=True)
class Panel:
    x: str
    y: str
    title: str


def _points(report, x: str, y: str) -> list[ComparedRow]:
    fx, fy = AXES[x][1], AXES[y][1]
    return [r for r in report.rows if not r.failed and fx(r) is not None and fy(r) is not None]


def choose_panels(report) -> list[Panel]:
    """Size vs top-1 and p50 vs top-1 where the results allow; size vs p50 without any top-1."""
    panels = []
    if _points(report, "size", "top1"):
        panels.append(Panel("size", "top1", "size vs top-1"))
    if _points(report, "p50", "top1"):
        panels.append(Panel("p50", "top1", "p50 latency vs top-1"))
    if not panels and _points(report, "size", "p50"):
        panels.append(Panel("size", "p50", "size vs p50 latency (no top-1 in the results)"))
    if not panels:
        raise EdgecnnError("nothing to plot: no row has a top-1 with a size or a latency, "
                           "nor a size with a latency")
    if not any(r.p50 is not None for r in report.rows if not r.failed):
        panels = [Panel(p.x, p.y, p.title + " (no latency in the results)") for p in panels]
    return panels


def _label(row: ComparedRow, varying: set[str], mark_random: bool) -> str:
    parts = [row.variant]
    if "format" in varying:
        parts.append(row.facts.format or "?")
    if "runtime" in varying:
        parts.append(row.runtime or "?")
    if "threads" in varying:
        parts.append(f"{row.threads}t" if row.threads else "default threads")
    label = " · ".join(parts)
    return label + " (random)" if mark_random and row.facts.weights == "random" else label


def _wide(values: list[float]) -> bool:
    return bool(values) and min(values) > 0 and max(values) / min(values) > 20


def _draw(ax, report, panel: Panel) -> None:
    x_label, fx, x_sense = AXES[panel.x]
    y_label, fy, y_sense = AXES[panel.y]
    rows = _points(report, panel.x, panel.y)
    groups: dict[tuple, list[ComparedRow]] = {}
    for row in rows:
        groups.setdefault((row.group_model, row.facts.input_key), []).append(row)
    hosts = sorted({host_label(r.host) for r in rows})
    all_random = all(r.facts.weights == "random" for r in rows)
    from matplotlib import colormaps

    cmap = colormaps["tab10"]
    for index, members in enumerate(groups.values()):
        colour = cmap(index % 10)
        head = members[0]
        name = f"{head.model} {input_label(head.facts)}".strip()
        varying = {key for key, get in (("format", lambda r: r.facts.format),
                                        ("runtime", lambda r: (r.facts.format, r.runtime)),
                                        ("threads", lambda r: r.threads))
                   if len({get(r) for r in members}) > 1}
        if len({(r.facts.format, r.runtime) for r in members}) == len({r.facts.format for r in members}):
            varying.discard("runtime")  # one runtime per format: the format says it
        for host_index, host in enumerate(hosts):
            subset = [r for r in members if host_label(r.host) == host]
            if not subset:
                continue
            marker = MARKERS[host_index % len(MARKERS)]
            label = name + (f" on {host}" if len(hosts) > 1 else "")
            on = [r for r in subset if r.front]
            off = [r for r in subset if not r.front]
            if on:
                ax.scatter([fx(r) for r in on], [fy(r) for r in on], color=colour, marker=marker,
                           s=42, zorder=3, label=label)
            if off:
                ax.scatter([fx(r) for r in off], [fy(r) for r in off], facecolors="none", edgecolors=colour,
                           marker=marker, s=42, zorder=3, label=None if on else label)
            steps = step_points([(fx(r), fy(r)) for r in subset], (x_sense, y_sense))
            if len(steps) > 1:
                ax.plot([p[0] for p in steps], [p[1] for p in steps], drawstyle="steps-post", color=colour,
                        alpha=0.6, linewidth=1.2, zorder=2)
            for row in subset:
                ax.annotate(_label(row, varying, not all_random), (fx(row), fy(row)), xytext=(4, 4),
                            textcoords="offset points", fontsize=7, color=colour)
    if _wide([fx(r) for r in rows]):  # sizes and latencies spanning decades: log scale
        ax.set_xscale("log")
    if panel.y != "top1" and _wide([fy(r) for r in rows]):
        ax.set_yscale("log")
    title = panel.title
    if all_random and panel.y == "top1":
        title += "\nweights: random, top-1 is chance"
    ax.set_title(title, fontsize=10)
    ax.set_xlabel(x_label)
    ax.set_ylabel(y_label)
    ax.margins(x=0.15, y=0.12)  # room for the labels of the outermost points
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7, loc="best")


def _figure(report, panels: list[Panel]):
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise EdgecnnError("plots need matplotlib: pip install matplotlib") from None

    fig = Figure(figsize=(6.4 * len(panels), 5.0), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, panel in zip(axes, panels):
        _draw(ax, report, panel)
    fig.supxlabel("filled: on the Pareto front (size, p50, top-1); line: the front of the panel's two metrics",
                  fontsize=8)
    return fig


def _png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    return buffer.getvalue()


def render_png(report) -> bytes:
    """Every panel side by side in one PNG (for --plot)."""
    return _png(_figure(report, choose_panels(report)))


def render_panels(report) -> list[tuple[str, bytes]]:
    """(title, PNG) for each panel apart (for the HTML page)."""
    return [(panel.title, _png(_figure(report, [panel]))) for panel in choose_panels(report)]
