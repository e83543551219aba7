"""`edgecnn compare` and `edgecnn.reports`: the join, the float parent, the front, the outputs, bad input.

Most tests write synthetic rows with the real schemas and keys (`row_keys_are_real` keeps
the helper honest); one joins real rows of the shared int8 fixture.
"""

import base64
import csv
import io
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import edgecnn.cli.compare  # noqa: F401 (registers `compare` on the app, as edgecnn.cli does)
from edgecnn.cli import app
from edgecnn.harness import ROW_KEYS
from edgecnn.reports import build_report, dominates, front, variant_label
from edgecnn.reports.pareto import step_points
from edgecnn.reports.plots import choose_panels
from edgecnn.results import BENCHMARK_SCHEMA, EVALUATE_SCHEMA

runner = CliRunner()
REPO = Path(__file__).resolve().parents[1]
DATA = Path(__file__).parent / "data"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

HOST = {
    "hostname": "vm",
    "cpu": "AMD EPYC",
    "cores": 2,
    "arch": "x86_64",
    "os": "Linux 6.1",
    "python": "3.11.7",
    "governor": None,
    "cpu_mhz": None,
    "temperatures_c": None,
    "throttled": None,
}
PI = {
    "hostname": "pi",
    "cpu": "Cortex-A72",
    "cores": 4,
    "arch": "aarch64",
    "os": "Linux 6.6",
    "python": "3.11.2",
    "governor": "performance",
    "cpu_mhz": 1800.0,
    "temperatures_c": {"cpu-thermal": 51.1},
    "throttled": "0x0",
    "board": "Raspberry Pi 4 Model B",
}
NO_OPT = {"sparsity": None, "clusters": None, "qat": False}


def bench(
    name,
    *,
    quant="float32",
    p50=10.0,
    size=1_000_000,
    model="mobilenet_v2",
    opt=None,
    weights="imagenet",
    fmt="tflite",
    runtime="litert",
    threads=2,
    host=HOST,
    status="ok",
    error=None,
    batch=1,
    input_size=96,
    sha=None,
    provider="cpu",
):
    """A benchmark row as `edgecnn benchmark --out` writes it (every ROW_KEY, real schema)."""
    artifact = f"/artifacts/{name}/{name}.{fmt}"
    row = dict.fromkeys(ROW_KEYS)
    row.update(
        schema=BENCHMARK_SCHEMA,
        status=status,
        error=error,
        artifact=artifact,
        artifact_name=f"{name}.{fmt}",
        sha256=sha or f"sha-{name}",
        bytes=size,
        format=fmt,
        model=model,
        quantization=quant,
        weights=weights,
        variant={
            "source": "zoo",
            "params": 2_257_984,
            "input_size": input_size,
            "alpha": 1.0,
            "classes": None,
            "io": None,
            "calib": "default",
            "calibration_method": None,
            "optimization": opt or NO_OPT,
            "preprocess": {
                "mode": "tf",
                "input_shape": [input_size, input_size, 3],
                "crop_fraction": 0.875,
                "color": "rgb",
            },
            "manifest_sha256_matches": True,
        },
        runtime=runtime,
        runtime_version="2.3.0" if runtime == "litert" else "1.31.1",
        provider=provider,
        threads=threads,
        batch=batch,
        settings={
            "warmup": 1,
            "runs": 50,
            "min_secs": 1.0,
            "max_secs": 150.0,
            "data": None,
            "preprocess": None,
            "samples": None,
            "seed": 0,
        },
        inputs=[{"name": "input", "shape": [batch, input_size, input_size, 3], "dtype": "float32"}],
        latency_ms=None
        if status != "ok"
        else {
            "count": 50,
            "min": p50 * 0.9,
            "max": p50 * 1.5,
            "mean": p50,
            "std": p50 * 0.05,
            "p50": p50,
            "p90": p50 * 1.2,
            "p99": p50 * 1.4,
        },
        init_ms=20.0,
        first_ms=p50,
        warmup_ms=p50,
        loop_secs=1.0,
        stopped_by="runs",
        peak_rss_mb=60.0,
        host=host if status == "ok" else None,
        warnings=[],
        created="2025-01-01T00:00:00+00:00",
    )
    if status != "ok":  # failed before the worker reported: the runtime is still the setting
        row.update(runtime="auto", runtime_version=None)
    return row


def evaluation(
    name,
    top1,
    *,
    model="mobilenet_v2",
    quant="float32",
    fmt="tflite",
    runtime="litert",
    data="imagenet-val-1300",
    n=1300,
    host=HOST,
    sha=None,
    input_size=96,
):
    """An evaluate row as `edgecnn evaluate --out` writes it."""
    return {
        "schema": EVALUATE_SCHEMA,
        "artifact": f"/artifacts/{name}/{name}.{fmt}",
        "artifact_name": f"{name}.{fmt}",
        "sha256": sha or f"sha-{name}",
        "format": fmt,
        "model": model,
        "quantization": quant,
        "data": {
            "kind": "folder",
            "name": data,
            "count": n,
            "labelled": True,
            "num_classes": 1000,
            "default_crop_fraction": 0.875,
        },
        "split": None,
        "n": n,
        "top1": top1,
        "top5": min(1.0, top1 + 0.2),
        "correct": {"top1": round(top1 * n), "top5": round(min(1.0, top1 + 0.2) * n)},
        "top5_k": 5,
        "classes": 1000,
        "background_class_dropped": False,
        "preprocess": {
            "mode": "tf",
            "crop_fraction": 0.875,
            "source": "manifest",
            "crop_source": "data",
            "input_shape": [input_size, input_size, 3],
            "layout": "NHWC",
        },
        "input": {
            "name": "input",
            "shape": [None, input_size, input_size, 3],
            "dtype": "float32",
            "scale": None,
            "zero_point": None,
        },
        "runtime": runtime,
        "runtime_version": "2.3.0",
        "threads": None,
        "batch_size": 32,
        "seconds": 3.0,
        "inference_seconds": 2.0,
        "host": host,
        "created": "2025-01-01T00:00:00+00:00",
    }


def write(path, rows):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def report_of(tmp_path, rows, **kw):
    return build_report([write(tmp_path / "results.jsonl", rows)], **kw)


def by_variant(report):
    return {row.variant: row for row in report.rows}


def error_line(result):
    """The one line a bad input gives: on stderr, prefixed, no traceback."""
    assert "Traceback" not in result.stdout + result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


# A float model, its int8 (smaller, faster, a bit less accurate) and a dynamic-range
# variant the int8 beats on every count.
THREE = [
    bench("f32", p50=20.0, size=14_000_000),
    evaluation("f32", 0.716),
    bench("int8", quant="int8", p50=8.0, size=3_900_000),
    evaluation("int8", 0.705, quant="int8"),
    bench("dyn", quant="dynamic", p50=15.0, size=4_000_000),
    evaluation("dyn", 0.700, quant="dynamic"),
]


def test_the_helper_writes_every_real_key():
    assert set(bench("x")) == set(ROW_KEYS)
    assert bench("x")["schema"] == "edgecnn.benchmark/1" and evaluation("x", 0.5)["schema"] == "edgecnn.evaluate/1"


# -- labels, the front -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "quant, opt, label",
    [
        ("float32", None, "float32"),
        ("int8", NO_OPT, "int8"),
        ("int8", {"sparsity": None, "clusters": None, "qat": True}, "int8 QAT"),
        ("float32", {"sparsity": 0.4987, "clusters": None, "qat": False}, "pruned 50%"),
        ("int8", {"sparsity": 0.5, "clusters": None, "qat": True}, "pruned 50% + int8 QAT"),
        ("float32", {"sparsity": None, "clusters": 16, "qat": False}, "clustered 16"),
        ("float16", {"sparsity": 0.8, "clusters": 8, "qat": False}, "pruned 80% + clustered 8 + float16"),
        (None, None, "?"),
    ],
)
def test_variant_labels(quant, opt, label):
    assert variant_label(quant, opt) == label


def test_dominance_and_ties():
    senses = ("min", "min", "max")
    assert dominates((1, 1, 0.7), (2, 2, 0.6), senses)
    assert dominates((1, 2, 0.7), (2, 2, 0.7), senses)  # as good everywhere, better on size
    assert not dominates((1, 1, 0.7), (1, 1, 0.7), senses)  # a tie dominates nothing
    assert not dominates((1, 3, 0.7), (2, 2, 0.7), senses)  # a trade-off
    assert front([(1, 1, 0.7), (1, 1, 0.7), (2, 2, 0.6), (3, 0.5, 0.8)], senses) == [True, True, False, True]
    assert step_points([(1, 60), (2, 70), (3, 65)], ("min", "max")) == [(1, 60), (2, 70)]


def test_a_dominated_variant_is_off_the_front(tmp_path):
    rows = by_variant(report_of(tmp_path, THREE))
    assert rows["float32"].front and rows["int8"].front  # a trade-off: bigger and slower, more accurate
    assert not rows["dynamic"].front  # int8 is smaller, faster and more accurate
    assert rows["int8"].front_basis == ("size", "p50", "top-1")


def test_tied_variants_are_both_on_the_front(tmp_path):
    rows = report_of(
        tmp_path,
        [
            bench("a", quant="int8", p50=5.0, size=100),
            evaluation("a", 0.5, quant="int8"),
            bench("b", quant="int8", p50=5.0, size=100),
            evaluation("b", 0.5, quant="int8"),
            bench("c", quant="int8", p50=6.0, size=100),
            evaluation("c", 0.5, quant="int8"),
        ],
    ).rows
    assert [r.front for r in sorted(rows, key=lambda r: r.facts.sha256)] == [True, True, False]


def test_fronts_are_per_model_input_and_host(tmp_path):
    report = report_of(
        tmp_path,
        [
            bench("f32", p50=20.0, size=14_000_000),
            bench("int8", quant="int8", p50=8.0, size=3_900_000),
            bench("f32-pi", p50=200.0, size=14_000_000, host=PI, sha="sha-f32", threads=4),
            bench("lenet", model="lenet5", p50=0.05, size=250_000, input_size=32),
            bench("f32-224", p50=90.0, size=14_000_000, input_size=224),
        ],
    )
    fronts = {(r.model, r.host_key[1], r.facts.input_shape[0], r.variant): r.front for r in report.rows}
    # the float model is alone (hence on the front) on the Pi, for LeNet and at 224; int8 beats it at 96
    assert fronts == {
        ("mobilenet_v2", "AMD EPYC", 96, "float32"): False,
        ("mobilenet_v2", "AMD EPYC", 96, "int8"): True,
        ("mobilenet_v2", "Cortex-A72", 96, "float32"): True,
        ("lenet5", "AMD EPYC", 32, "float32"): True,
        ("mobilenet_v2", "AMD EPYC", 224, "float32"): True,
    }


def test_missing_accuracy_narrows_the_front_and_says_so(tmp_path):
    report = report_of(tmp_path, [*THREE[:5], bench("dyn", quant="dynamic", p50=15.0, size=4_000_000)])
    rows = by_variant(report)
    assert rows["dynamic"].top1 is None and rows["int8"].front_basis == ("size", "p50")
    assert not rows["dynamic"].front and rows["int8"].front
    assert any("front on size and p50 only (top-1 missing for 1 of 3 rows)" in n for n in report.notes)


def test_accuracy_on_different_data_is_left_out_of_the_front(tmp_path):
    report = report_of(
        tmp_path,
        [
            bench("f32", p50=20.0, size=14_000_000),
            evaluation("f32", 0.716),
            bench("int8", quant="int8", p50=8.0, size=3_900_000),
            evaluation("int8", 0.9, quant="int8", data="imagenet-16", n=16),
        ],
    )
    rows = by_variant(report)
    assert rows["int8"].front_basis == ("size", "p50")
    assert rows["int8"].top1_change is None and "top-1 on other data than the float32 parent" in rows["int8"].notes


# -- the float parent ------------------------------------------------------------------------


def test_deltas_against_the_float_parent(tmp_path):
    rows = by_variant(report_of(tmp_path, THREE))
    int8 = rows["int8"]
    assert int8.parent is rows["float32"]
    assert int8.size_vs_float == pytest.approx(3.9 / 14)
    assert int8.top1_change == pytest.approx(-1.1)  # percentage points
    assert int8.speedup == pytest.approx(2.5)
    assert rows["float32"].size_vs_float == 1.0 and rows["float32"].top1_change == 0.0
    record = int8.to_dict()
    assert record["size_vs_float"] == pytest.approx(0.2786, abs=1e-4) and record["speedup"] == 2.5


def test_another_baseline(tmp_path):
    rows = by_variant(report_of(tmp_path, THREE, baseline="int8"))
    assert rows["dynamic"].parent is rows["int8"]
    assert rows["float32"].speedup == pytest.approx(0.4)


def test_optimized_float_models_are_not_parents_and_parents_match_the_configuration(tmp_path):
    pruned = {"sparsity": 0.5, "clusters": None, "qat": False}
    report = report_of(
        tmp_path,
        [
            bench("f32", p50=20.0),
            bench("pruned", opt=pruned, p50=18.0),
            bench("int8", quant="int8", p50=8.0, threads=4),  # float32 measured with 2 threads only
            bench("f32-onnx", fmt="onnx", runtime="onnxruntime", p50=25.0),
            bench("int8-onnx", quant="int8", fmt="onnx", runtime="onnxruntime", p50=12.0),
        ],
    )
    rows = {(r.variant, r.facts.format): r for r in report.rows}
    assert rows[("pruned 50%", "tflite")].parent is rows[("float32", "tflite")]
    assert rows[("int8", "tflite")].parent is None
    assert rows[("int8", "tflite")].speedup is None and rows[("int8", "tflite")].size_vs_float is None
    assert "no float32 parent measured alike" in rows[("int8", "tflite")].notes
    assert rows[("int8", "onnx")].parent is rows[("float32", "onnx")]
    assert rows[("int8", "onnx")].speedup == pytest.approx(25 / 12)


# -- the join -------------------------------------------------------------------------------------


def test_benchmark_and_evaluate_of_one_file_are_one_row(tmp_path):
    report = report_of(tmp_path, [bench("int8", quant="int8", p50=8.0), evaluation("int8", 0.7, quant="int8")])
    (row,) = report.rows
    assert row.p50 == 8.0 and row.top1 == 0.7 and row.to_dict()["status"] == "ok"


def test_other_threads_runtimes_and_hosts_are_other_rows_sharing_the_accuracy(tmp_path):
    report = report_of(
        tmp_path,
        [
            bench("int8", quant="int8", threads=1, p50=12.0),
            bench("int8", quant="int8", threads=2, p50=8.0),
            bench("int8", quant="int8", threads=4, p50=40.0, host=PI),
            bench("int8", quant="int8", threads=2, p50=9.0, runtime="tflite-runtime"),
            bench("int8", quant="int8", threads=2, p50=7.0, batch=4),
            evaluation("int8", 0.7, quant="int8"),
        ],
    )
    assert len(report.rows) == 5
    assert all(r.top1 == 0.7 for r in report.rows)
    assert {(r.threads, r.runtime, r.host_key[1], r.batch) for r in report.rows} == {
        (1, "litert", "AMD EPYC", 1),
        (2, "litert", "AMD EPYC", 1),
        (4, "litert", "Cortex-A72", 1),
        (2, "tflite-runtime", "AMD EPYC", 1),
        (2, "litert", "AMD EPYC", 4),
    }
    assert len(report.hosts()) == 2


def test_a_later_line_for_the_same_configuration_wins(tmp_path):
    report = report_of(
        tmp_path,
        [
            bench("int8", quant="int8", p50=8.0),
            evaluation("int8", 0.70, quant="int8"),
            bench("int8", quant="int8", p50=6.0),
            evaluation("int8", 0.71, quant="int8"),
        ],
    )
    (row,) = report.rows
    assert row.p50 == 6.0 and row.top1 == 0.71


def test_failed_rows_stay_with_their_reason_and_off_the_front(tmp_path):
    report = report_of(
        tmp_path,
        [
            *THREE,
            bench(
                "broken",
                quant="int8",
                status="failed",
                error="broken.tflite is not a TFLite model (no TFL3 identifier)",
                sha="sha-broken",
            ),
        ],
    )
    (failed,) = [r for r in report.rows if r.failed]
    assert not failed.front and failed.p50 is None
    record = failed.to_dict()
    assert record["status"] == "failed" and "no TFL3 identifier" in record["error"]
    assert any("failed: broken.tflite" in note for note in record["notes"])


def test_a_successful_rerun_replaces_a_failed_run(tmp_path):
    report = report_of(
        tmp_path,
        [bench("int8", quant="int8", status="failed", error="timed out"), bench("int8", quant="int8", p50=8.0)],
    )
    (row,) = report.rows
    assert not row.failed and row.p50 == 8.0


def test_evaluated_only_and_manifest_only_artifacts_get_rows(tmp_path):
    manifest = {
        "schema": "edgecnn.manifest/1",
        "model": "mobilenet_v2",
        "format": "tflite",
        "quantization": "float16",
        "optimization": NO_OPT,
        "weights": "imagenet",
        "options": {"input_size": 96, "alpha": 1.0, "classes": None},
        "params": 2_257_984,
        "artifact": "f16.tflite",
        "bytes": 7_000_000,
        "sha256": "sha-f16",
        "preprocess": {"mode": "tf", "input_shape": [96, 96, 3]},
        "versions": {"tensorflow": "2.21.0"},
    }
    (tmp_path / "f16").mkdir()
    (tmp_path / "f16" / "manifest.json").write_text(json.dumps(manifest))
    write(tmp_path / "results.jsonl", [bench("f32", p50=20.0), evaluation("only-evaluated", 0.6, quant="int8")])
    report = build_report([tmp_path])  # a folder: its .jsonl and its subfolders' manifests
    rows = {r.facts.sha256: r for r in report.rows}
    assert set(rows) == {"sha-f32", "sha-only-evaluated", "sha-f16"}
    assert rows["sha-only-evaluated"].top1 == 0.6 and rows["sha-only-evaluated"].p50 is None
    assert rows["sha-f16"].bytes == 7_000_000 and rows["sha-f16"].variant == "float16"
    assert rows["sha-f16"].to_dict()["status"] == "not benchmarked"
    assert report.versions()["tensorflow (export)"] == ["2.21.0"]


def test_random_weights_are_marked(tmp_path):
    report = report_of(tmp_path, [bench("f32", weights="random"), evaluation("f32", 0.001)])
    assert "weights: random" in report.rows[0].notes
    assert any("random weights" in note for note in report.notes)


# -- outputs -------------------------------------------------------------------------------------


def test_the_table(tmp_path):
    result = runner.invoke(app, ["compare", str(write(tmp_path / "r.jsonl", THREE))])
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split()[:4] == ["front", "model", "input", "variant"]
    (int8,) = [line for line in lines if " int8 " in line]
    assert int8.lstrip().startswith("*") and "0.28x" in int8 and "-1.10 pts" in int8 and "2.50x" in int8
    assert "host: AMD EPYC (x86_64, 2 cores)" in result.stdout


def test_csv_parses_with_plain_values(tmp_path):
    result = runner.invoke(app, ["compare", str(write(tmp_path / "r.jsonl", THREE)), "--format", "csv"])
    assert result.exit_code == 0, result.stderr
    rows = {r["variant"]: r for r in csv.DictReader(io.StringIO(result.stdout))}
    assert set(rows) == {"float32", "int8", "dynamic"}
    assert rows["int8"]["front"] == "true" and rows["dynamic"]["front"] == "false"
    assert int(rows["int8"]["bytes"]) == 3_900_000 and float(rows["int8"]["top1"]) == 0.705
    assert float(rows["int8"]["speedup"]) == 2.5 and float(rows["int8"]["top1_change"]) == pytest.approx(-1.1)
    assert rows["float32"]["host"] == "AMD EPYC (x86_64, 2 cores)" and rows["float32"]["threads"] == "2"


def test_markdown_is_a_table(tmp_path):
    out = tmp_path / "report.md"
    result = runner.invoke(
        app, ["compare", str(write(tmp_path / "r.jsonl", THREE)), "--format", "md", "--out", str(out)]
    )
    assert result.exit_code == 0, result.stderr
    table = [line for line in out.read_text().splitlines() if line.startswith("|")]
    widths = {len(re.split(r"(?<!\\)\|", line)) for line in table}
    assert len(table) == 5 and len(widths) == 1  # header, rule, three rows, all as wide
    assert set(table[1].strip("|").split("|")) == {"---", "---:"}
    assert table[0].startswith("| front | model |") and "| int8 |" in out.read_text()


def test_json_rows(tmp_path):
    result = runner.invoke(app, ["compare", str(write(tmp_path / "r.jsonl", THREE)), "--json"])
    assert result.exit_code == 0, result.stderr
    rows = {r["variant"]: r for r in json.loads(result.stdout)}
    assert rows["int8"]["front"] is True and rows["int8"]["front_basis"] == ["size", "p50", "top-1"]
    assert rows["int8"]["baseline_sha256"] == "sha-f32"


def test_html_is_one_page_with_the_plots_embedded(tmp_path):
    out = tmp_path / "report.html"
    result = runner.invoke(
        app, ["compare", str(write(tmp_path / "r.jsonl", THREE)), "--format", "html", "--out", str(out)]
    )
    assert result.exit_code == 0, result.stderr
    page = out.read_text()
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(images) == 2 and all(base64.b64decode(data).startswith(PNG_MAGIC) for data in images)
    assert '<tr class="front">' in page and "AMD EPYC" in page and "litert" in page
    # Nothing fetched from elsewhere: no URL outside the embedded images (whose base64 may spell "http").
    assert "http" not in re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", page).replace("<!DOCTYPE html>", "")


def test_the_plot_is_a_png(tmp_path):
    plot = tmp_path / "plots" / "compare.png"
    result = runner.invoke(app, ["compare", str(write(tmp_path / "r.jsonl", THREE)), "--plot", str(plot)])
    assert result.exit_code == 0, result.stderr
    assert plot.read_bytes().startswith(PNG_MAGIC)
    assert [p.name for p in plot.parent.iterdir()] == ["compare.png"]  # no temporary file left


def test_without_accuracy_the_plot_is_size_vs_latency(tmp_path):
    report = report_of(tmp_path, [bench("f32", p50=20.0), bench("int8", quant="int8", p50=8.0)])
    (panel,) = choose_panels(report)
    assert (panel.x, panel.y) == ("size", "p50") and "no top-1" in panel.title
    plot = tmp_path / "p.png"
    result = runner.invoke(app, ["compare", str(tmp_path / "results.jsonl"), "--plot", str(plot)])
    assert result.exit_code == 0, result.stderr
    assert plot.read_bytes().startswith(PNG_MAGIC)


# -- bad input: one line, an exit code, no file -------------------------------------------------------


def _bad_lines(tmp_path):
    newer = {**bench("x"), "schema": "edgecnn.benchmark/2"}
    return {
        "other-tool.jsonl": (json.dumps({"name": "resnet50", "latency": 3.1}) + "\n", "not an edgecnn result row"),
        "other-schema.jsonl": (json.dumps({"schema": "mlperf.result/1"}) + "\n", "schema 'mlperf.result/1'"),
        "newer.jsonl": (json.dumps(newer) + "\n", "newer than this edgecnn reads"),
        "superscript.jsonl": (
            json.dumps({**bench("x"), "schema": "edgecnn.benchmark/\u00b2"}) + "\n",
            "unreadable schema version",
        ),
        "garbage.jsonl": ("fine?\n", "line 1: not JSON"),
        "empty.jsonl": ("", "is empty"),
        "blank.jsonl": ("\n\n", "is empty"),
    }


def _warning_lines(result):
    assert "Traceback" not in result.stdout + result.stderr
    return [line for line in result.stderr.splitlines() if line.strip()]


@pytest.mark.parametrize(
    "name",
    [
        "other-tool.jsonl",
        "other-schema.jsonl",
        "newer.jsonl",
        "superscript.jsonl",
        "garbage.jsonl",
        "empty.jsonl",
        "blank.jsonl",
    ],
)
def test_a_bad_results_file_is_skipped_with_one_warning(tmp_path, name):
    text, expected = _bad_lines(tmp_path)[name]
    bad = tmp_path / name
    bad.write_text(text)
    good = write(tmp_path / "good.jsonl", THREE)
    out = tmp_path / "out" / "report.html"
    result = runner.invoke(
        app,
        [
            "compare",
            str(good),
            str(bad),
            "--format",
            "html",
            "--out",
            str(out),
            "--plot",
            str(tmp_path / "out" / "p.png"),
        ],
    )
    assert result.exit_code == 0, result.stderr
    warnings = [line for line in _warning_lines(result) if line.startswith("warning: ")]
    assert len(warnings) == 1 and expected in warnings[0] and name in warnings[0], result.stderr
    assert out.is_file() and "int8" in out.read_text()


@pytest.mark.parametrize("name", ["other-tool.jsonl", "newer.jsonl", "garbage.jsonl", "empty.jsonl"])
def test_nothing_readable_is_an_error_and_writes_nothing(tmp_path, name):
    text, _ = _bad_lines(tmp_path)[name]
    bad = tmp_path / name
    bad.write_text(text)
    out = tmp_path / "out" / "report.html"
    result = runner.invoke(app, ["compare", str(bad), "--format", "html", "--out", str(out)])
    assert result.exit_code == 1
    (line,) = _warning_lines(result)  # the error alone, no warning before it
    assert line.startswith("error: no readable edgecnn result rows") and name in line
    assert not (tmp_path / "out").exists()


def test_a_damaged_or_binary_file_costs_only_its_own_lines(tmp_path):
    lines = [json.dumps(r).encode() for r in THREE]
    lines.insert(1, b'{"schema": "edgecnn.benchmark/1", "artifact": "\xff\xfe"}')
    damaged = tmp_path / "damaged.jsonl"
    damaged.write_bytes(b"\n".join(lines) + b"\n")
    binary = tmp_path / "plot.png"
    binary.write_bytes(PNG_MAGIC + bytes(range(256)) * 20)
    result = runner.invoke(app, ["compare", str(damaged), str(binary), "--json"])
    assert result.exit_code == 0, result.stderr
    assert _warning_lines(result) == [
        f"warning: {damaged} line 2: not UTF-8 text, so not an edgecnn result row; skipped",
        f"warning: {binary} is not a text file of JSON lines, skipped",
    ]
    assert sorted(r["variant"] for r in json.loads(result.stdout)) == ["dynamic", "float32", "int8"]


def _wrong_types():
    """Rows whose fields have the wrong JSON type, as a careless script or a crash writes them."""
    host_text = {**bench("x"), "host": "vm-1"}
    latency_number = {**bench("x"), "latency_ms": 12.5}
    shape_text = bench("x")
    shape_text["variant"] = {**shape_text["variant"], "preprocess": {"mode": "tf", "input_shape": "96x96x3"}}
    threads_list = {**bench("x"), "threads": [2]}
    cores_text = {**bench("x"), "host": {**HOST, "cores": "two"}}
    data_text = {**evaluation("x", 0.5), "data": "imagenet"}
    top1_text = {**evaluation("x", 0.5), "top1": "71%"}
    bad_manifest = {"schema": "edgecnn.manifest/1", "artifact": "x.tflite", "sha256": "sha-x", "options": [1]}
    return {
        "host a string": (json.dumps(host_text), "`host` is a string, not an object"),
        "latency a number": (json.dumps(latency_number), "`latency_ms` is a number, not an object"),
        "input shape a string": (json.dumps(shape_text), "`variant.preprocess.input_shape` is a string"),
        "threads a list": (json.dumps(threads_list), "`threads` is a list, not an integer"),
        "cores a string": (json.dumps(cores_text), "`host.cores` is a string, not an integer"),
        "evaluate data a string": (json.dumps(data_text), "`data` is a string, not an object"),
        "top-1 a string": (json.dumps(top1_text), "`top1` is a string, not a number"),
        "a list line": (json.dumps([bench("x")]), "not an object"),
        "a number line": ("3.5", "not an object"),
        "a truncated line": (json.dumps(bench("x"))[:150], "not JSON"),
        "a manifest with options a list": (json.dumps(bad_manifest), "`options` is a list, not an object"),
    }


@pytest.mark.parametrize("case", list(_wrong_types()))
def test_a_row_of_wrong_types_is_skipped_naming_file_and_line(tmp_path, case):
    line, expected = _wrong_types()[case]
    path = tmp_path / "r.jsonl"
    path.write_text(json.dumps(THREE[0]) + "\n" + line + "\n" + "".join(json.dumps(r) + "\n" for r in THREE[1:]))
    for args in ([], ["--json"], ["--format", "md"], ["--format", "csv"]):
        result = runner.invoke(app, ["compare", str(path), *args])
        assert result.exit_code == 0, result.stderr
        (warning,) = _warning_lines(result)
        assert warning.startswith(f"warning: {path} line 2: ") and expected in warning, warning
        assert "skipped" in warning
    records = json.loads(runner.invoke(app, ["compare", str(path), "--json"]).stdout)
    assert sorted(r["variant"] for r in records) == ["dynamic", "float32", "int8"]  # the rest reports


def test_a_bad_line_among_good_ones_is_named(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_text(json.dumps(THREE[0]) + "\n" + json.dumps({"schema": "edgecnn.evaluate/7"}) + "\n")
    result = runner.invoke(app, ["compare", str(path)])
    assert result.exit_code == 0
    (warning,) = _warning_lines(result)
    assert f"{path} line 2: schema edgecnn.evaluate/7 is newer" in warning


def test_the_report_holds_the_skipped_records_and_the_cli_prints_them(tmp_path, capfd):
    """build_report prints nothing: each record skipped is one line of `Report.warnings` (a file
    name with a newline in it too), and `edgecnn compare` prints them, one `warning:` line each."""
    folder = tmp_path / "two\nlines"
    folder.mkdir()
    path = folder / "r.jsonl"
    path.write_text(json.dumps(THREE[0]) + "\n{not json\n" + json.dumps({"schema": "edgecnn.evaluate/7"}) + "\n")
    report = build_report([path])
    assert capfd.readouterr() == ("", "")
    shown = " ".join(str(path).split())
    assert report.warnings == [
        f"{shown} line 2: not JSON (a truncated line?), so not an edgecnn result row; skipped",
        f"{shown} line 3: schema edgecnn.evaluate/7 is newer than this edgecnn reads (edgecnn.evaluate/1): "
        "upgrade edgecnn; skipped",
    ]
    assert len(report.rows) == 1
    result = runner.invoke(app, ["compare", str(path), "--json"])
    assert result.exit_code == 0
    assert _warning_lines(result) == [f"warning: {line}" for line in report.warnings]
    assert len(json.loads(result.stdout)) == 1


def test_the_committed_results_load_without_a_warning():
    from edgecnn.reports.rows import read_results

    results = REPO / "benchmarks" / "results"
    files = sorted(results.glob("*/results.jsonl"))
    assert files
    skipped = []
    records = read_results(files, warn=skipped.append)
    assert skipped == [] and len(records) == sum(len(f.read_text().splitlines()) for f in files)


@pytest.mark.parametrize(
    "args, code, expected",
    [
        ([], 2, "no RESULTS given"),
        (["missing.jsonl"], 1, "no such results file: missing.jsonl"),
        (["{good}", "--format", "pdf"], 2, "--format must be one of table, md, csv, html"),
        (["{good}", "--baseline", "int4"], 2, "--baseline must be one of"),
        (["{good}", "--plot", "{tmp}/p.svg"], 2, "give a .png file name"),
        (["{good}", "--json", "--format", "csv"], 2, "choose one"),
        (["{good}", "--plot", "{good}/p.png"], 1, "cannot write {good}/p.png"),  # its folder is a file
        (["{good}", "--plot", "{tmp}"], 2, "give a .png file name"),
        (["{good}", "--plot", "{tmp}/dir.png"], 1, "cannot write {tmp}/dir.png: it is a folder"),
        (["{tmp}/empty-folder"], 1, "holds no .jsonl results and no manifest.json"),
    ],
)
def test_bad_arguments(tmp_path, args, code, expected):
    good = write(tmp_path / "good.jsonl", THREE)
    (tmp_path / "dir.png").mkdir()
    (tmp_path / "empty-folder").mkdir()
    before = sorted(p.name for p in tmp_path.iterdir())
    args = [a.format(good=good, tmp=tmp_path) for a in args]
    result = runner.invoke(app, ["compare", *args])
    assert result.exit_code == code
    assert expected.format(good=good, tmp=tmp_path) in error_line(result)
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written, no temporary file


def test_an_unwritable_out_leaves_no_plot_half_written(tmp_path):
    good = write(tmp_path / "good.jsonl", THREE)
    blocked = tmp_path / "blocked"
    blocked.write_text("a file, not a folder")
    result = runner.invoke(app, ["compare", str(good), "--out", str(blocked / "r.md"), "--format", "md"])
    assert result.exit_code == 1 and "cannot write" in error_line(result)


# -- real rows --------------------------------------------------------------------------------------


def test_real_rows_of_the_int8_fixture_join(exported_int8, tmp_path):
    """benchmark and evaluate of the shared int8 fixture (TFLite and ONNX), compared."""
    results = tmp_path / "results.jsonl"
    tflite, onnx = exported_int8["tflite"]["path"], exported_int8["onnx"]["path"]
    bench_run = runner.invoke(
        app, ["benchmark", tflite, onnx, "--out", str(results), "--runs", "3", "--min-secs", "0", "--threads", "1"]
    )
    assert bench_run.exit_code == 0, bench_run.stderr
    for path in (tflite, onnx):
        # the fixture has 10 classes: scored on Fashion-MNIST, whose labels are 0..9
        run = runner.invoke(
            app,
            [
                "evaluate",
                path,
                "--data",
                str(DATA / "fashion-mnist-test-200.npz"),
                "--limit",
                "32",
                "--out",
                str(results),
            ],
        )
        assert run.exit_code == 0, run.stderr
    result = runner.invoke(app, ["compare", str(results), "--json"])
    assert result.exit_code == 0, result.stderr
    rows = {r["format"]: r for r in json.loads(result.stdout)}
    assert set(rows) == {"tflite", "onnx"}
    for fmt, row in rows.items():
        manifest = exported_int8[fmt]
        assert row["sha256"] == manifest["sha256"] and row["bytes"] == manifest["bytes"]
        assert row["model"] == "mobilenet_v2" and row["variant"] == "int8" and row["input"] == "32x32x3 a0.35 10 cl"
        assert row["p50_ms"] > 0 and 0 <= row["top1"] <= 1 and row["data"] == "fashion-mnist-test-200.npz (n=32)"
        assert row["threads"] == 1 and row["status"] == "ok"
        assert row["size_vs_float"] is None  # no float32 export measured
        assert row["weights"] == manifest["weights"]
    assert any(row["front"] for row in rows.values())  # one group: the same model, input and host
    plot = tmp_path / "real.png"
    assert runner.invoke(app, ["compare", str(results), "--plot", str(plot)]).exit_code == 0
    assert plot.read_bytes().startswith(PNG_MAGIC)


# -- no TensorFlow ----------------------------------------------------------------------------------


def test_compare_never_imports_tensorflow(tmp_path):
    """Reports are made on the machine that measured, which may have no TensorFlow; the
    table alone does not load matplotlib either."""
    results = write(tmp_path / "r.jsonl", THREE)
    code = f"""
import sys
from edgecnn.cli import app

def run(*args):
    try:
        app(["compare", {str(results)!r}, *args])
    except SystemExit as exc:
        assert not exc.code, exc.code

run("--format", "md")
assert "matplotlib" not in sys.modules
run("--format", "html", "--out", {str(tmp_path / "r.html")!r}, "--plot", {str(tmp_path / "r.png")!r})
assert "matplotlib" in sys.modules
heavy = [m for m in ("tensorflow", "tf_keras", "keras", "tf2onnx") if m in sys.modules]
assert not heavy, heavy
print("ok")
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("ok")


# -- any field of any type: skipped or reported, never a crash ------------------------------------

_ODD_VALUES = ([], {}, "text", 3, 2.5, True, None, [1, "a"], {"a": [1]}, -1, float("nan"))


def _field_paths(row, prefix=()):
    for key, value in row.items():
        yield prefix + (key,)
        if isinstance(value, dict):
            yield from _field_paths(value, prefix + (key,))


def _with(row, path, value):
    row = json.loads(json.dumps(row))
    target = row
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return row


@pytest.mark.parametrize("kind", ["benchmark", "evaluate", "manifest"])
def test_any_field_of_any_type_is_skipped_or_reported(tmp_path, kind):
    """Every field (nested ones too) of a good record, replaced by values of every JSON type:
    the report either skips the record with one warning or reports it, in every format."""
    from edgecnn.reports import to_csv, to_markdown, to_table_text
    from edgecnn.reports.join import join
    from edgecnn.reports.pareto import mark_fronts
    from edgecnn.reports.report import Report
    from edgecnn.reports.rows import read_results

    good = {
        "benchmark": bench("odd", quant="int8"),
        "evaluate": evaluation("odd", 0.7, quant="int8"),
        "manifest": {
            "schema": "edgecnn.manifest/1",
            "model": "mobilenet_v2",
            "artifact": "odd.tflite",
            "sha256": "sha-odd",
            "format": "tflite",
            "quantization": "int8",
            "bytes": 10,
            "options": {"alpha": 1.0, "classes": None, "input_size": 96},
            "optimization": NO_OPT,
            "preprocess": {"mode": "tf", "input_shape": [96, 96, 3]},
            "versions": {"python": "3.11"},
        },
    }[kind]
    lines = [json.dumps(r) for r in THREE]
    cases = 0
    for path in _field_paths(good):
        for value in _ODD_VALUES:
            cases += 1
            results = tmp_path / "r.jsonl"
            results.write_text("\n".join(lines + [json.dumps(_with(good, path, value))]) + "\n")
            skipped = []
            rows = join(read_results([results], warn=skipped.append))
            mark_fronts(rows)
            report = Report(rows=rows)
            assert len(skipped) <= 1 and all(f"{results} line 7" in w for w in skipped), (path, value, skipped)
            assert len(report.rows) >= 3
            to_markdown(report), to_csv(report), json.dumps(report.records(), default=str)
            if value in ([], "text", None):  # the rich table is the slow one: a few types suffice
                to_table_text(report)
    assert cases > 100
