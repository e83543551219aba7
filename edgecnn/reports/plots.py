"""Plots of the comparison: size vs top-1 and p50 latency vs top-1, as PNG bytes.

One colour per model (and input), one marker per host when there are several; filled
points are on the Pareto front (size, p50 and top-1 together, see
`edgecnn.reports.pareto`), hollow ones are not; the step line is the front of the two
metrics the panel shows. Without any top-1 in the results the one panel is size vs p50
latency, and its title says so. Failed benchmarks are not plotted.

Every point is labelled with its variant (plus the format, runtime or threads where the
model's points differ in them), and no label covers another label or a point:

- points of one model that coincide on the panel (within a few pixels: float32 in ONNX
  and in TFLite, often) share one label ("float32 · onnx, tflite");
- labels are placed one by one, points on the front first, at the first free place
  around their point, further out with a thin leader line when the near places are
  taken (`_place_labels`);
- a label with no free place left becomes a number beside its point, spelled out in
  the key under the panel.

The legend sits under the panels, outside the data. `render_images` also returns where
each point is in the PNG, with its numbers, for the HTML page's hover titles.

matplotlib is imported here only, with the Agg backend, so that reading and tabulating
results never loads it.
"""

from __future__ import annotations

import io
import math
import textwrap
from dataclasses import dataclass, field
from typing import Callable

from edgecnn.errors import EdgecnnError
from edgecnn.reports.join import ComparedRow, host_label, input_label
from edgecnn.reports.pareto import step_points

MARKERS = ("o", "s", "^", "D", "v", "P", "X")
DPI = 110
PANEL_INCHES = (7.4, 5.8)  # one panel's share of the figure
FONT = 7  # label size, points
MERGE_PX = 4.0  # points closer than this on the panel share one label
POINT_PX = 5.5  # half the width of a marker (s=42 at DPI) plus a little air
PAD_PX = 1.5  # air around a label
RADII = (3, 10, 20, 34, 50, 70, 95, 125, 160, 200, 250, 310)  # px from the point to the label's near side
ANGLES = (
    45,
    -45,
    0,
    180,
    135,
    -135,
    90,
    -90,
    22,
    -22,
    158,
    -158,
    68,
    -68,
    112,
    -112,
    -80,
    -100,
    80,
    100,
    -56,
    -124,
    56,
    124,
)
KEY_TITLE = "labelled by number:\n"
KEY_CHARS_PER_PANEL = 125
NEAR_PX = 50  # the longest leader of a label off the front: further out, a number is clearer
CLEAR_PX = 3  # a label without a leader is at least this much nearer its own point than any other
CROWD_PX = 40  # points within this distance make a point crowded: its label is placed early

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


@dataclass(frozen=True)
class PlotPoint:
    """Where one point (or several coinciding ones) is in the PNG: pixels from the top left."""

    x: float
    y: float
    title: str  # every row at that place, one line each


@dataclass(frozen=True)
class PanelImage:
    title: str
    png: bytes
    width: int
    height: int
    points: tuple[PlotPoint, ...] = ()


@dataclass
class _Spot:
    """One labelled place on a panel: the rows at it, their label, where it went."""

    rows: list[ComparedRow]
    colour: tuple
    px: float
    py: float
    text: str
    front: bool
    number: int | None = None  # set when the label did not fit and the key spells it out
    box: tuple | None = None  # (x0, y0, x1, y1) in display pixels, once placed
    parts: list = field(default_factory=list)  # each row's label parts, until merged into `text`
    artists: list = field(default_factory=list)


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
        raise EdgecnnError("nothing to plot: no row has a top-1 with a size or a latency, nor a size with a latency")
    if not any(r.p50 is not None for r in report.rows if not r.failed):
        panels = [Panel(p.x, p.y, p.title + " (no latency in the results)") for p in panels]
    return panels


def _label_parts(row: ComparedRow, varying: set[str], mark_random: bool) -> list[str]:
    parts = [row.variant + (" (random)" if mark_random and row.facts.weights == "random" else "")]
    if "format" in varying:
        parts.append(row.facts.format or "?")
    if "runtime" in varying:
        parts.append(row.runtime or "?")
    if "threads" in varying:
        parts.append(f"{row.threads}t" if row.threads else "default threads")
    return parts


def _merged_label(labels: list[list[str]]) -> str:
    """One label for coinciding points: what they share said once, what differs joined
    ("float32 · onnx, tflite"); where they differ in more, one line per format (or runtime...)
    with its variants joined ("float32, int8 · onnx" over "float16 · tflite")."""
    unique = list(dict.fromkeys(tuple(parts) for parts in labels))
    if len(unique) == 1:
        return " · ".join(unique[0])
    if len({len(parts) for parts in unique}) == 1:
        differing = [i for i in range(len(unique[0])) if len({parts[i] for parts in unique}) > 1]
        if len(differing) == 1:
            i = differing[0]
            merged = list(unique[0])
            merged[i] = ", ".join(dict.fromkeys(parts[i] for parts in unique))
            return " · ".join(merged)
    lines: dict[tuple, list[str]] = {}
    for parts in unique:
        lines.setdefault(parts[1:], []).append(parts[0])
    return "\n".join(" · ".join([", ".join(dict.fromkeys(variants)), *rest]) for rest, variants in lines.items())


def _wide(values: list[float]) -> bool:
    return bool(values) and min(values) > 0 and max(values) / min(values) > 20


def _group_key(row: ComparedRow) -> tuple:
    return (row.group_model, row.facts.input_key)


def _group_name(row: ComparedRow) -> str:
    return f"{row.model} {input_label(row.facts)}".strip()


def _varying(members: list[ComparedRow]) -> set[str]:
    varying = {
        key
        for key, get in (
            ("format", lambda r: r.facts.format),
            ("runtime", lambda r: (r.facts.format, r.runtime)),
            ("threads", lambda r: r.threads),
        )
        if len({get(r) for r in members}) > 1
    }
    if len({(r.facts.format, r.runtime) for r in members}) == len({r.facts.format for r in members}):
        varying.discard("runtime")  # one runtime per format: the format says it
    return varying


def describe(row: ComparedRow) -> str:
    """One line about a row for a hover title: model, variant, where it ran, its numbers."""
    facts = row.facts
    parts = [_group_name(row), row.variant, facts.format or "", row.runtime or ""]
    if row.threads:
        parts.append(f"{row.threads} threads")
    if row.host:
        parts.append(host_label(row.host))
    numbers = []
    if row.bytes is not None:
        numbers.append(f"{row.bytes / 1e6:.3f} MB")
    if row.top1 is not None:
        numbers.append(f"top-1 {100 * row.top1:.2f}%")
    if row.p50 is not None:
        numbers.append(f"p50 {row.p50:.3g} ms")
    if row.front:
        numbers.append("on the front")
    return " · ".join(p for p in parts if p) + (": " + ", ".join(numbers) if numbers else "")


def _draw(ax, report, panel: Panel, colours: dict, hosts: list[str]) -> list[tuple]:
    """The points and step lines of one panel; returns (row, colour, label parts) per point."""
    _, fx, x_sense = AXES[panel.x]
    _, fy, y_sense = AXES[panel.y]
    rows = _points(report, panel.x, panel.y)
    groups: dict[tuple, list[ComparedRow]] = {}
    for row in rows:
        groups.setdefault(_group_key(row), []).append(row)
    all_random = all(r.facts.weights == "random" for r in rows)
    pending: list[tuple[ComparedRow, tuple, list[str]]] = []
    for key, members in groups.items():
        colour = colours[key]
        varying = _varying(members)
        several_hosts = len({host_label(r.host) for r in members}) > 1  # the marker says which
        for host_index, host in enumerate(hosts):
            subset = [r for r in members if host_label(r.host) == host]
            if not subset:
                continue
            marker = MARKERS[host_index % len(MARKERS)]
            on = [r for r in subset if r.front]
            off = [r for r in subset if not r.front]
            if on:
                ax.scatter([fx(r) for r in on], [fy(r) for r in on], color=colour, marker=marker, s=42, zorder=3)
            if off:
                ax.scatter(
                    [fx(r) for r in off],
                    [fy(r) for r in off],
                    facecolors="none",
                    edgecolors=colour,
                    marker=marker,
                    s=42,
                    zorder=3,
                )
            steps = step_points([(fx(r), fy(r)) for r in subset], (x_sense, y_sense))
            if len(steps) > 1:
                ax.plot(
                    [p[0] for p in steps],
                    [p[1] for p in steps],
                    drawstyle="steps-post",
                    color=colour,
                    alpha=0.6,
                    linewidth=1.2,
                    zorder=2,
                )
            for row in subset:
                parts = _label_parts(row, varying, not all_random)
                if several_hosts:
                    parts.append(f"on {host}")
                pending.append((row, colour, parts))
    if _wide([fx(r) for r in rows]):  # sizes and latencies spanning decades: log scale
        ax.set_xscale("log")
    if panel.y != "top1" and _wide([fy(r) for r in rows]):
        ax.set_yscale("log")
    title = panel.title
    if all_random and panel.y == "top1":
        title += "\nweights: random, top-1 is chance"
    ax.set_title(title, fontsize=10)
    ax.set_xlabel(AXES[panel.x][0])
    ax.set_ylabel(AXES[panel.y][0])
    ax.margins(x=0.12, y=0.1)
    ax.grid(True, alpha=0.3)
    return pending


def _merge(ax, panel: Panel, points: list[tuple]) -> list[_Spot]:
    """Display positions, and one spot for the points of one colour that coincide."""
    fx, fy = AXES[panel.x][1], AXES[panel.y][1]
    merged: list[_Spot] = []
    for row, colour, parts in points:
        px, py = ax.transData.transform((fx(row), fy(row)))
        for other in merged:
            if other.colour == colour and math.hypot(other.px - px, other.py - py) <= MERGE_PX:
                other.rows.append(row)
                other.parts.append(parts)
                other.front = other.front or row.front
                break
        else:
            merged.append(
                _Spot(rows=[row], colour=colour, px=float(px), py=float(py), text="", front=row.front, parts=[parts])
            )
    for spot in merged:
        spot.text = _merged_label(spot.parts)
    return merged


def _overlaps(a: tuple, b: tuple) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _segment_hits(p: tuple, q: tuple, box: tuple) -> bool:
    """Whether the segment p-q passes through the box (Liang-Barsky clipping)."""
    (x0, y0), (x1, y1) = p, q
    dx, dy = x1 - x0, y1 - y0
    low, high = 0.0, 1.0
    for step, room in ((-dx, x0 - box[0]), (dx, box[2] - x0), (-dy, y0 - box[1]), (dy, box[3] - y0)):
        if step == 0:
            if room < 0:
                return False
            continue
        t = room / step
        if step < 0:
            low = max(low, t)
        else:
            high = min(high, t)
        if low > high:
            return False
    return True


def _candidate(px: float, py: float, w: float, h: float, radius: float, angle: float):
    """The box of a w x h label whose near side is `radius` px from the point at `angle`;
    with the alignment that puts it there and the anchor (text position)."""
    c, s = math.cos(math.radians(angle)), math.sin(math.radians(angle))
    ax_, ay_ = px + (POINT_PX + radius) * c, py + (POINT_PX + radius) * s
    ha = "left" if c > 0.38 else "right" if c < -0.38 else "center"
    va = "bottom" if s > 0.38 else "top" if s < -0.38 else "center"
    x0 = ax_ if ha == "left" else ax_ - w if ha == "right" else ax_ - w / 2
    y0 = ay_ if va == "bottom" else ay_ - h if va == "top" else ay_ - h / 2
    return (x0, y0, x0 + w, y0 + h), ha, va, (ax_, ay_)


def _distance(box: tuple, px: float, py: float) -> float:
    return math.hypot(max(box[0] - px, 0.0, px - box[2]), max(box[1] - py, 0.0, py - box[3]))


def _near_point(box: tuple, px: float, py: float) -> tuple[float, float]:
    return min(max(px, box[0]), box[2]), min(max(py, box[1]), box[3])


def _step_segments(ax) -> list[tuple]:
    """The segments, in display pixels, of the step lines drawn so far (`drawstyle="steps-post"`)."""
    segments = []
    for line in ax.lines:
        if line.get_drawstyle() != "steps-post":
            continue
        points = ax.transData.transform(line.get_xydata())
        for (x0, y0), (x1, y1) in zip(points[:-1], points[1:]):
            segments += [((x0, y0), (x1, y0)), ((x1, y0), (x1, y1))]
    return segments


def _place_labels(ax, spots: list[_Spot], renderer, taken: list[tuple], first_number: int = 1) -> list[_Spot]:
    """Put each spot's label at the first free place; returns the spots that got a number instead."""
    from matplotlib.lines import Line2D
    from matplotlib.transforms import IdentityTransform

    frame = ax.get_window_extent(renderer)
    inside = (frame.x0 + 2, frame.y0 + 2, frame.x1 - 2, frame.y1 - 2)
    marks = [(s.px - POINT_PX, s.py - POINT_PX, s.px + POINT_PX, s.py + POINT_PX) for s in spots]
    leaders: list[tuple] = []
    unplaced: list[_Spot] = []
    steps = _step_segments(ax)  # the front's step lines: a label is not written across them

    def fits(box, spot, leader, strict) -> bool:
        padded = (box[0] - PAD_PX, box[1] - PAD_PX, box[2] + PAD_PX, box[3] + PAD_PX)
        if not (
            inside[0] <= padded[0] and padded[2] <= inside[2] and inside[1] <= padded[1] and padded[3] <= inside[3]
        ):
            return False
        if any(_overlaps(padded, other) for other in taken) or any(_overlaps(padded, m) for m in marks):
            return False
        if any(_segment_hits(p, q, padded) for p, q in leaders) or any(_segment_hits(p, q, box) for p, q in steps):
            return False
        if leader is None:  # without a leader, a label must be nearer its own point than any other
            own = _distance(box, spot.px, spot.py)
            if any(_distance(box, s.px, s.py) < own + CLEAR_PX for s in spots if s is not spot):
                return False
        else:
            p, q = leader
            if any(_segment_hits(p, q, other) for other in taken):
                return False
            if strict and any(_segment_hits(p, q, m) for m, s in zip(marks, spots) if s is not spot):
                return False
        return True

    def place(spot: _Spot, text: str, reach: float = math.inf, strict: bool = True) -> bool:
        probe = ax.text(
            0,
            0,
            text,
            fontsize=FONT,
            color=spot.colour,
            transform=IdentityTransform(),
            ha="left",
            va="bottom",
            zorder=4,
        )
        extent = probe.get_window_extent(renderer)
        w, h = extent.width, extent.height
        for radius in (r for r in RADII if r <= reach):
            for angle in ANGLES:
                box, ha, va, anchor = _candidate(spot.px, spot.py, w, h, radius, angle)
                leader = None
                if radius > RADII[1]:
                    start = (
                        spot.px + POINT_PX * math.cos(math.radians(angle)),
                        spot.py + POINT_PX * math.sin(math.radians(angle)),
                    )
                    leader = (start, _near_point(box, spot.px, spot.py))
                if not fits(box, spot, leader, strict):
                    continue
                probe.set_position(anchor)
                probe.set_horizontalalignment(ha)
                probe.set_verticalalignment(va)
                probe.set_multialignment(ha if ha != "center" else "center")
                spot.box = box
                spot.artists.append(probe)
                taken.append((box[0] - PAD_PX, box[1] - PAD_PX, box[2] + PAD_PX, box[3] + PAD_PX))
                if leader is not None:
                    leaders.append(leader)
                    line = Line2D(
                        [leader[0][0], leader[1][0]],
                        [leader[0][1], leader[1][1]],
                        transform=IdentityTransform(),
                        color=spot.colour,
                        linewidth=0.6,
                        alpha=0.8,
                        zorder=2.5,
                    )
                    ax.add_line(line)
                    spot.artists.append(line)
                return True
        probe.remove()
        return False

    def crowd(spot: _Spot) -> int:
        return sum(1 for o in spots if o is not spot and math.hypot(o.px - spot.px, o.py - spot.py) < CROWD_PX)

    order = sorted(spots, key=lambda s: (not s.front, -crowd(s), s.px, -s.py))
    for spot in order:  # off the front, a label goes near its point or becomes a number
        if not place(spot, spot.text, math.inf if spot.front else NEAR_PX):
            unplaced.append(spot)
    unplaced.sort(key=lambda s: (s.px, -s.py))
    for number, spot in enumerate(unplaced, first_number):  # a number instead; the key spells it out
        spot.number = number
        # a number's leader may pass over another point (never over a label): better than no mark
        if not place(spot, str(number)) and not place(spot, str(number), strict=False):
            spot.number = -spot.number  # not even a number fits: the key gives the coordinates
    return unplaced


def _legend_handles(rows: list[ComparedRow], colours: dict, hosts: list[str]):
    from matplotlib.lines import Line2D

    names = {}
    for row in rows:
        names.setdefault(_group_key(row), _group_name(row))
    handles = [
        Line2D([], [], linestyle="none", marker="o", color=colours[key], markersize=6, label=names[key])
        for key in colours
    ]
    if len(hosts) > 1:
        handles += [
            Line2D(
                [],
                [],
                linestyle="none",
                marker=MARKERS[i % len(MARKERS)],
                color="0.3",
                markersize=6,
                label=f"on {host}",
            )
            for i, host in enumerate(hosts)
        ]
    handles += [
        Line2D(
            [],
            [],
            linestyle="none",
            marker="o",
            color="0.3",
            markersize=6,
            label="on the Pareto front (size, p50, top-1)",
        ),
        Line2D(
            [],
            [],
            linestyle="none",
            marker="o",
            markerfacecolor="none",
            color="0.3",
            markersize=6,
            label="off the front",
        ),
        Line2D([], [], color="0.3", alpha=0.6, label="step line: the front of the panel's two metrics"),
    ]
    return handles


def _key_text(panel_spots: list[tuple[Panel, list[_Spot]]], many: bool) -> str:
    """The key of the points labelled by a number, one line per panel."""
    lines = []
    for panel, spots in panel_spots:
        fx, fy = AXES[panel.x][1], AXES[panel.y][1]
        entries = []
        for spot in sorted((s for s in spots if s.number is not None), key=lambda s: abs(s.number)):
            text = spot.text.replace("\n", " / ")
            if spot.number < 0:  # not even the number found a place: say where the point is
                row = spot.rows[0]
                text += f" (at {fx(row):.3g}, {fy(row):.3g})"
            entries.append(f"{abs(spot.number)} {_group_name(spot.rows[0])}: {text}")
        if entries:
            lines += textwrap.wrap(
                (f"{panel.title}: " if many else "") + "; ".join(entries), width=KEY_CHARS_PER_PANEL * len(panel_spots)
            )
    return "\n".join(lines)


def _attempt(report, panels: list[Panel], key: str):
    from matplotlib import colormaps
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    plotted = {id(r) for panel in panels for r in _points(report, panel.x, panel.y)}
    rows = [r for r in report.rows if id(r) in plotted]
    colours: dict[tuple, tuple] = {}
    cmap = colormaps["tab10"]
    for row in rows:
        colours.setdefault(_group_key(row), cmap(len(colours) % 10))
    hosts = sorted({host_label(r.host) for r in rows})

    handles = _legend_handles(rows, colours, hosts)
    ncol = min(len(handles), 2 * len(panels))
    # The panels keep their size: the legend's extra rows and the key's lines make the figure taller.
    legend_rows = -(-len(handles) // ncol)
    key_lines = key.count("\n") + 2 if key else 0
    height = PANEL_INCHES[1] + (max(0, legend_rows - 3) * 1.6 + key_lines * 1.3) * FONT / 72
    fig = Figure(figsize=(PANEL_INCHES[0] * len(panels), height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    drawn = [(ax, panel, _draw(ax, report, panel, colours, hosts)) for ax, panel in zip(axes, panels)]
    fig.legend(handles=handles, loc="outside upper center", ncol=ncol, fontsize=7, frameon=False)
    if key:
        fig.supxlabel(KEY_TITLE + key, fontsize=FONT)
    fig.draw_without_rendering()  # the layout settles: axes, limits and scales are final
    fig.set_layout_engine("none")
    renderer = fig.canvas.get_renderer()
    result = []
    numbered = 0
    for ax, panel, points in drawn:
        spots = _merge(ax, panel, points)
        numbered += len(_place_labels(ax, spots, renderer, taken=[], first_number=numbered + 1))
        result.append((panel, spots))
    return fig, result


def build_figure(report, panels: list[Panel]):
    """The figure, drawn and labelled (its texts are final), and each panel's spots.

    Labels that find no place become numbers spelled out under the panels; the key makes the
    figure taller, so it is drawn again with the room for it (at most a few times, until the
    same labels are numbered)."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise EdgecnnError("plots need matplotlib: pip install matplotlib") from None

    key = ""
    for _ in range(4):
        fig, result = _attempt(report, panels, key)
        found = _key_text(result, len(panels) > 1)
        if found == key:
            break
        key = found
    else:
        if found != key:  # still changing: the last layout keeps its room, the key says what it shows
            fig.supxlabel(KEY_TITLE + found if found else "", fontsize=FONT)
    return fig, [spots for _, spots in result]


def _png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi="figure")
    return buffer.getvalue()


def _image(fig, spots_per_panel, title: str) -> PanelImage:
    width, height = fig.canvas.get_width_height()
    points = [
        PlotPoint(x=round(s.px, 1), y=round(height - s.py, 1), title="\n".join(describe(r) for r in s.rows))
        for spots in spots_per_panel
        for s in spots
    ]
    return PanelImage(title=title, png=_png(fig), width=width, height=height, points=tuple(points))


def render_png(report) -> bytes:
    """Every panel side by side in one PNG (for --plot)."""
    fig, _ = build_figure(report, choose_panels(report))
    return _png(fig)


def render_images(report) -> list[PanelImage]:
    """Each panel apart, with where its points are (for the HTML page)."""
    images = []
    for panel in choose_panels(report):
        fig, spots = build_figure(report, [panel])
        images.append(_image(fig, spots, panel.title))
    return images


def render_panels(report) -> list[tuple[str, bytes]]:
    """(title, PNG) for each panel apart."""
    return [(image.title, image.png) for image in render_images(report)]
