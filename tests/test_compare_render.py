"""What a person sees of `edgecnn compare`: labels of the plots that never cover each other,
and the HTML page in a real browser (headless Chromium, where it is installed).

The plots are checked on the committed suite results (two models, fourteen variants each,
points that coincide) and on synthetic rows built to collide; the overlap check measures
the drawn texts with matplotlib's own renderer.
"""

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from edgecnn.reports import build_report
from edgecnn.reports.join import input_label
from edgecnn.reports.plots import build_figure, choose_panels, render_images
from edgecnn.results import BENCHMARK_SCHEMA, EVALUATE_SCHEMA

REPO = Path(__file__).resolve().parents[1]
SUITE = REPO / "benchmarks" / "results" / "amd-epyc-2c-x86_64" / "results.jsonl"
HOST = {"hostname": "vm", "cpu": "AMD EPYC", "cores": 2, "arch": "x86_64", "os": "Linux 6.1", "python": "3.11.7"}


def bench(name, model, quant, fmt, size, p50, host=HOST):
    return {
        "schema": BENCHMARK_SCHEMA,
        "status": "ok",
        "error": None,
        "artifact": f"/a/{name}.{fmt}",
        "artifact_name": f"{name}.{fmt}",
        "sha256": f"sha-{name}",
        "bytes": size,
        "format": fmt,
        "model": model,
        "quantization": quant,
        "weights": "imagenet",
        "variant": {
            "input_size": 96,
            "alpha": 1.0,
            "classes": None,
            "optimization": {"sparsity": None, "clusters": None, "qat": False},
        },
        "runtime": "litert" if fmt == "tflite" else "onnxruntime",
        "runtime_version": "1",
        "provider": "cpu",
        "threads": 2,
        "batch": 1,
        "latency_ms": {
            "count": 50,
            "min": p50,
            "max": p50,
            "mean": p50,
            "std": 0.0,
            "p50": p50,
            "p90": p50,
            "p99": p50,
        },
        "host": host,
        "created": "2025-01-01T00:00:00+00:00",
    }


def evaluation(name, model, quant, fmt, top1):
    return {
        "schema": EVALUATE_SCHEMA,
        "artifact": f"/a/{name}.{fmt}",
        "artifact_name": f"{name}.{fmt}",
        "sha256": f"sha-{name}",
        "format": fmt,
        "model": model,
        "quantization": quant,
        "data": {"kind": "folder", "name": "val-500", "count": 500, "labelled": True},
        "n": 500,
        "top1": top1,
        "top5": top1,
        "runtime": "litert",
        "runtime_version": "1",
        "threads": 2,
        "host": HOST,
    }


def colliding_rows():
    """Two models whose TFLite and ONNX files of each quantization measure the same (points that
    coincide), and variants a hair apart: the case whose labels used to print over each other."""
    rows = []
    quants = {
        "float32": (14.0e6, 20.0, 0.716),
        "float16": (7.0e6, 20.0, 0.7159),
        "dynamic": (3.6e6, 15.0, 0.714),
        "int8": (3.7e6, 8.0, 0.712),
        "int16x8": (3.75e6, 8.1, 0.7155),
    }
    for model, scale in (("mobilenet_v2", 1.0), ("mobilenet_v1", 1.02)):
        for quant, (size, p50, top1) in quants.items():
            for fmt in ("tflite", "onnx"):
                name = f"{model}-{quant}-{fmt}"
                rows.append(bench(name, model, quant, fmt, int(size * scale), p50 * scale))
                rows.append(evaluation(name, model, quant, fmt, top1 - 0.001 * (scale - 1)))
    return rows


def crowd_rows():
    """Thirty variants in a tiny box: more labels than the room around them, so some become numbers."""
    rows = []
    for i in range(30):
        name = f"m-{i}"
        quant = ("float32", "float16", "dynamic", "int8", "int16x8")[i % 5]
        rows.append(bench(name, "lenet5", quant, ("tflite", "onnx")[i % 2], 70_000 + 150 * i, 0.03 + 0.0002 * i))
        rows.append(evaluation(name, "lenet5", quant, ("tflite", "onnx")[i % 2], 0.908 + 0.00005 * (i % 7)))
    for name, size, p50, top1 in (("far-a", 20_000, 0.003, 0.95), ("far-b", 2_000_000, 3.0, 0.50)):
        rows.append(bench(name, "lenet5", "float32", "tflite", size, p50))
        rows.append(evaluation(name, "lenet5", "float32", "tflite", top1))
    return rows


def write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _boxes(texts, renderer):
    return [(t, t.get_window_extent(renderer)) for t in texts if t.get_visible() and t.get_text().strip()]


def check_no_overlap(report):
    """Every label, number and key of the drawn figure, measured: no two overlap, each label
    inside its panel, none on the legend; and every plotted row is named by a label or the key."""
    panels = choose_panels(report)
    fig, spots = build_figure(report, panels)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    labels = []
    for ax in fig.axes:
        frame = ax.get_window_extent(renderer)
        for text, box in _boxes(ax.texts, renderer):
            assert frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0 and box.y1 <= frame.y1, (
                f"label {text.get_text()!r} leaves its panel"
            )
            labels.append((text, box))
    for i, (a, box_a) in enumerate(labels):
        for b, box_b in labels[i + 1 :]:
            assert not box_a.overlaps(box_b), f"{a.get_text()!r} overlaps {b.get_text()!r}"
    for ax in fig.axes:  # nor across a step line of the front
        for line in ax.lines:
            if line.get_drawstyle() != "steps-post":
                continue
            corners = ax.transData.transform(line.get_xydata())
            for (x0, y0), (x1, y1) in zip(corners[:-1], corners[1:]):
                for p, q in (((x0, y0), (x1, y0)), ((x1, y0), (x1, y1))):
                    samples = [(p[0] + t / 50 * (q[0] - p[0]), p[1] + t / 50 * (q[1] - p[1])) for t in range(51)]
                    for text, box in labels:
                        assert not any(box.contains(x, y) for x, y in samples), (
                            f"a step line crosses {text.get_text()!r}"
                        )
    others = [t for legend in fig.legends for t in legend.get_texts()]
    if fig._supxlabel is not None:
        others.append(fig._supxlabel)
    for other, other_box in _boxes(others, renderer):
        for text, box in labels:
            assert not box.overlaps(other_box), f"{text.get_text()!r} overlaps {other.get_text()!r}"
    key = fig._supxlabel.get_text() if fig._supxlabel is not None else ""
    drawn = {t.get_text() for t, _ in labels}
    for panel_spots in spots:
        for spot in panel_spots:
            if spot.number is None:
                assert spot.text in drawn
            else:
                entry = f"{abs(spot.number)} {spot.rows[0].model} "
                assert entry in key.replace("\n", " ") and spot.text.replace("\n", " / ") in key.replace("\n", " ")
    plotted = sum(len(s.rows) for panel_spots in spots for s in panel_spots)
    return fig, spots, labels, key, plotted


def test_labels_of_the_committed_suite_results_never_overlap():
    report = build_report([SUITE])
    _, _, labels, _, plotted = check_no_overlap(report)
    with_top1 = [r for r in report.rows if r.top1 is not None and not r.failed]
    assert plotted == 2 * len(with_top1)  # each panel has every evaluated row
    texts = {t.get_text() for t, _ in labels}
    # the lenet5 float32 files in TFLite and ONNX coincide on size vs top-1: one label says both
    assert "float32 · onnx, tflite" in texts


def test_coinciding_points_share_one_label_and_nothing_overlaps(tmp_path):
    report = build_report([write(tmp_path / "r.jsonl", colliding_rows())])
    _, spots, _, _, plotted = check_no_overlap(report)
    assert plotted == 2 * 20
    size_panel = spots[0]
    merged = [s for s in size_panel if len(s.rows) > 1]
    assert merged and all({r.facts.format for r in s.rows} == {"onnx", "tflite"} for s in merged)


def test_rows_of_two_hosts_are_labelled_with_their_host_and_do_not_overlap(tmp_path):
    pi = {
        **HOST,
        "hostname": "pi",
        "cpu": "Cortex-A72",
        "cores": 4,
        "arch": "aarch64",
        "board": "Raspberry Pi 4 Model B",
    }
    rows = colliding_rows()
    rows += [
        dict(r, host=pi, latency_ms={**r["latency_ms"], "p50": r["latency_ms"]["p50"] * 4})
        for r in colliding_rows()
        if r["schema"] == BENCHMARK_SCHEMA
    ]
    report = build_report([write(tmp_path / "r.jsonl", rows)])
    _, _, labels, key, plotted = check_no_overlap(report)
    assert plotted == 2 * 40
    assert any("on Raspberry Pi 4 Model B" in t.get_text() for t, _ in labels) or "Raspberry" in key


def test_a_crowd_gets_numbers_spelled_out_in_the_key(tmp_path):
    report = build_report([write(tmp_path / "r.jsonl", crowd_rows())])
    _, spots, _, key, _ = check_no_overlap(report)
    numbered = [s for panel_spots in spots for s in panel_spots if s.number is not None]
    assert numbered and key.startswith("labelled by number:")
    assert sorted(abs(s.number) for s in numbered) == list(range(1, len(numbered) + 1))


def test_many_models_the_key_makes_the_figure_taller_not_the_panels_smaller(tmp_path):
    import random

    random.seed(0)
    rows = []
    for m in range(6):
        for i in range(14):
            name, quant, fmt = f"m{m}-{i}", ("float32", "float16", "dynamic", "int8", "int16x8")[i % 5], "tflite"
            rows.append(bench(name, f"model{m}", quant, fmt, int(random.uniform(1e5, 1e7)), random.uniform(0.1, 20)))
            rows.append(evaluation(name, f"model{m}", quant, fmt, random.uniform(0.6, 0.9)))
    report = build_report([write(tmp_path / "r.jsonl", rows)])
    fig, _, _, key, plotted = check_no_overlap(report)
    assert plotted == 2 * 84 and key
    renderer = fig.canvas.get_renderer()
    for ax in fig.axes:  # the panels keep a readable size however long the key
        frame = ax.get_window_extent(renderer)
        assert frame.width > 500 and frame.height > 350


def test_the_page_maps_every_point_to_a_hover_title(tmp_path):
    report = build_report([SUITE])
    images = render_images(report)
    assert [i.title for i in images] == ["size vs top-1", "p50 latency vs top-1"]
    for image in images:
        assert all(0 <= p.x <= image.width and 0 <= p.y <= image.height for p in image.points)
        assert sum(len(p.title.splitlines()) for p in image.points) == sum(
            1 for r in report.rows if r.top1 is not None and not r.failed
        )


def test_hover_areas_sit_on_the_drawn_points():
    """The image map's circles are where the PNG has its markers (not flipped, not scaled)."""
    import io

    from PIL import Image

    report = build_report([SUITE])
    for image in render_images(report):
        picture = Image.open(io.BytesIO(image.png)).convert("RGB")
        assert picture.size == (image.width, image.height)
        for point in image.points:
            x, y = round(point.x), round(point.y)
            around = [picture.getpixel((x + dx, y + dy)) for dx in range(-5, 6) for dy in range(-5, 6)]
            assert any(max(p) - min(p) > 80 for p in around), f"no coloured marker at {point}"


# -- the page in a real browser --------------------------------------------------------------------------

BROWSER = next(
    (shutil.which(name) for name in ("chromium", "chromium-browser", "google-chrome") if shutil.which(name)), None
)
needs_browser = pytest.mark.skipif(
    BROWSER is None, reason="no Chromium installed (apt-get install chromium; .ci/run installs it)"
)

# Appended to a copy of the page: writes the layout as the browser laid it out into the DOM,
# then clicks the p50 header and records each model's p50 cells.
PROBE = """
<script>
window.addEventListener("load", function () {
  var box = document.querySelector(".table-box"), table = document.getElementById("compare");
  var facts = {inner: window.innerWidth, page: document.documentElement.scrollWidth,
               boxRight: box.getBoundingClientRect().right, boxWidth: box.clientWidth,
               tableWidth: table.scrollWidth, overflowX: getComputedStyle(box).overflowX,
               images: Array.prototype.map.call(document.images, function (i) {
                 return [i.naturalWidth, i.getBoundingClientRect().width, i.useMap]; }),
               groups: Array.prototype.map.call(table.tBodies, function (b) {
                 return b.rows[0].textContent.trim(); })};
  var heads = Array.prototype.map.call(table.tHead.rows[0].cells, function (c) { return c.textContent.trim(); });
  var p50 = heads.indexOf("p50 ms");
  table.tHead.rows[0].cells[p50].click();
  facts.sorted = Array.prototype.map.call(table.tBodies, function (b) {
    return Array.prototype.slice.call(b.rows, 1).map(function (r) { return r.cells[p50].textContent.trim(); });
  });
  facts.firstRows = Array.prototype.map.call(table.tBodies, function (b) { return b.rows[0].className; });
  // what the browser finds under each hover area's centre: the area itself, with a title
  facts.hits = [];
  Array.prototype.forEach.call(document.images, function (img) {
    img.scrollIntoView();
    var map = document.getElementsByName(img.useMap.slice(1))[0];
    Array.prototype.forEach.call(map.areas, function (area) {
      var c = area.coords.split(",").map(Number), r = img.getBoundingClientRect();
      var hit = document.elementFromPoint(r.left + c[0], r.top + c[1]);
      facts.hits.push([hit ? hit.tagName : null, hit && hit.title ? hit.title.length : 0]);
    });
  });
  var pre = document.createElement("pre");
  pre.id = "layout-facts";
  pre.textContent = JSON.stringify(facts);
  document.body.appendChild(pre);
});
</script>
"""


def layout(page: Path, tmp_path: Path, width: int) -> dict:
    probe = tmp_path / f"probe-{width}.html"
    probe.write_text(page.read_text().replace("</body>", PROBE + "</body>"))
    result = subprocess.run(
        [
            BROWSER,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--run-all-compositor-stages-before-draw",
            "--virtual-time-budget=5000",
            f"--window-size={width},1000",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--dump-dom",
            probe.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    found = re.search(r'<pre id="layout-facts">(.*?)</pre>', result.stdout, re.S)
    assert found, result.stderr[-2000:]
    import html

    return json.loads(html.unescape(found.group(1)))


@pytest.fixture(scope="module")
def suite_page(tmp_path_factory):
    from typer.testing import CliRunner

    import edgecnn.cli.compare  # noqa: F401 (registers `compare`)
    from edgecnn.cli import app

    page = tmp_path_factory.mktemp("page") / "report.html"
    result = CliRunner().invoke(app, ["compare", str(SUITE), "--format", "html", "--out", str(page)])
    assert result.exit_code == 0, result.stderr
    return page


@needs_browser
@pytest.mark.parametrize("width", [1400, 900])
def test_the_page_in_chromium_fits_and_its_table_scrolls_in_its_box(suite_page, tmp_path, width):
    facts = layout(suite_page, tmp_path, width)
    assert facts["inner"] == width
    assert facts["page"] <= facts["inner"], facts  # nothing runs off the right edge of the page
    assert facts["boxRight"] <= facts["inner"], facts
    if width == 1400:  # the suite's table fits whole at 1400 px: speed-up and notes are visible
        assert facts["tableWidth"] <= facts["boxWidth"], facts
    else:  # narrower: it scrolls inside its own box
        assert facts["tableWidth"] > facts["boxWidth"] and facts["overflowX"] == "auto", facts
    report = build_report([SUITE])
    models = {(r.model, input_label(r.facts)) for r in report.rows}
    assert len(facts["groups"]) == len(models)  # one section per model and input
    for natural, shown, usemap in facts["images"]:  # plots at their own size, so hover areas line up
        assert natural == shown and usemap.startswith("#plot-")
    if width == 1400:  # each point's place answers a hover with its rows
        assert facts["hits"] and all(tag == "AREA" and title > 0 for tag, title in facts["hits"]), facts["hits"]


@needs_browser
def test_a_click_on_a_header_sorts_each_models_rows(suite_page, tmp_path):
    facts = layout(suite_page, tmp_path, 1400)
    assert facts["firstRows"] == ["group"] * len(facts["groups"])  # the model's header stays on top
    for cells in facts["sorted"]:
        values = [float(c) for c in cells if c]
        assert values == sorted(values) and len(values) > 1
        assert cells[: len(values)] == [c for c in cells if c]  # empty cells last
