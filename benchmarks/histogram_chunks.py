#!/usr/bin/env python
"""Does binning the calibration images a chunk at a time change int8 ONNX accuracy?

    python benchmarks/histogram_chunks.py [--model TRAINED.keras ...] [--limit N]
        [--calib-samples 100] [--workdir DIR] [--out benchmarks/results]

ONNX Runtime's entropy and percentile calibrators hold every calibrated tensor of every image
until they bin them. Export gives them all images at once while that fits
`converters.memory.HISTOGRAM_BUDGET_BYTES` (2 GiB), else a chunk at a time (quantize_static's
strided loop), which bounds the memory but merges histograms chunk by chunk, so the ranges and
the bytes can differ from one pass. The export issue allows a change of calibration mechanics
where accuracy on the trained Fashion-MNIST models stays within 0.1 point. For each model
(default: the LeNet-5 benchmarks/int8_agreement.py trains) and each method, int8 ONNX is
exported, calibrated on --calib-samples Fashion-MNIST training images, three ways: with the
default budget, all at once (no budget: ONNX Runtime's way, the bytes before the change) and one
image at a time (the most merging any budget can cause); each runs on the Fashion-MNIST test
split. min/max, which keeps two numbers per tensor and is never chunked, is the reference row.

Writes <out>/<machine slug>/histogram_chunks.json and .md atomically. Tests never assert these
figures.
"""

from __future__ import annotations

import argparse
import os
import sys
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
for path in (REPO, REPO / "benchmarks"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from int8_agreement import predict, test_images, train_default_model  # noqa: E402

from converters.memory import HISTOGRAM_BUDGET_BYTES  # noqa: E402
from edgecnn.host import machine_info, machine_slug, write_results  # noqa: E402
from edgecnn.manifest import tool_versions  # noqa: E402

METHODS = ("minmax", "entropy", "percentile")
# EDGECNN_HISTOGRAM_BUDGET_MB for each mode (None: export's default budget).
MODES = {"default": None, "all at once": "1e12", "one at a time": "1e-9"}
WITHIN_POINTS = 0.1


def log(message: str) -> None:
    print(f"[histogram_chunks] {message}", file=sys.stderr, flush=True)


def export_onnx(model: Path, method: str, mode: str, calib_samples: int, workdir: Path) -> dict:
    from edgecnn.export import ExportRequest, export

    budget = MODES[mode]
    if budget is None:
        os.environ.pop("EDGECNN_HISTOGRAM_BUDGET_MB", None)
    else:
        os.environ["EDGECNN_HISTOGRAM_BUDGET_MB"] = budget
    request = ExportRequest(
        model=str(model),
        quantization="int8",
        formats=("onnx",),
        calib="fashion-mnist",
        calib_samples=calib_samples,
        calib_method=method,
        out=workdir / f"{method}-{mode.replace(' ', '-')}",
    )
    (manifest,) = export(request)
    os.environ.pop("EDGECNN_HISTOGRAM_BUDGET_MB", None)
    return manifest


def measure_model(model: Path, args) -> list[dict]:
    rows, images, labels = [], None, None
    for method in METHODS:
        found = {}
        for mode in MODES if method != "minmax" else ("default",):
            manifest = export_onnx(model, method, mode, args.calib_samples, args.workdir)
            if images is None:
                images, labels = test_images(manifest, args.limit)
            top1 = float(np.mean(predict(manifest["path"], images, args.threads) == labels))
            found[mode] = {"top1": top1, "sha256": manifest["sha256"], "bytes": manifest["bytes"]}
            log(f"{model.name} {method} {mode}: top-1 {top1:.4f}")
        row = {"model": str(model), "method": method, "test_images": int(len(images)), **found}
        if len(found) == len(MODES):
            whole = found["all at once"]
            row["default_is_all_at_once"] = found["default"]["sha256"] == whole["sha256"]
            row["difference_points"] = round(100 * (found["default"]["top1"] - whole["top1"]), 3)
            row["one_at_a_time_difference_points"] = round(100 * (found["one at a time"]["top1"] - whole["top1"]), 3)
            row["within_target"] = abs(row["difference_points"]) <= WITHIN_POINTS
        rows.append(row)
    return rows


def markdown(report: dict) -> str:
    lines = [
        "# Histogram calibration within a memory budget: int8 ONNX accuracy",
        "",
        f"{report['measured']} on {report['machine'].get('cpu_model')} ({report['machine_slug']}); "
        + ", ".join(f"{k} {v}" for k, v in report["versions"].items())
        + f". Calibration: {report['calib_samples']} Fashion-MNIST training images. Test: the "
        f"Fashion-MNIST test split. Target: export's default within {WITHIN_POINTS} point of all "
        "at once (ONNX Runtime's way); one image at a time shows the most that chunking moves.",
        "",
        "| model | method | all at once top-1 | default top-1 | default = all at once (bytes) | "
        "one at a time top-1 | one at a time vs all at once (points) | target |",
        "|---|---|---:|---:|---|---:|---:|---|",
    ]
    pct = lambda found: f"{100 * found['top1']:.2f}%" if found else "-"  # noqa: E731
    for row in report["rows"]:
        target = ("ok" if row["within_target"] else "missed") if "within_target" in row else "reference"
        lines.append(
            f"| {Path(row['model']).name} | {row['method']} | {pct(row.get('all at once'))} | "
            f"{pct(row['default'])} | {row.get('default_is_all_at_once', '-')} | "
            f"{pct(row.get('one at a time'))} | {row.get('one_at_a_time_difference_points', '-')} | {target} |"
        )
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, action="append", help="a trained Fashion-MNIST .keras (repeatable)")
    parser.add_argument("--train-epochs", type=int, default=5, help="epochs for the default LeNet-5")
    parser.add_argument("--limit", type=int, default=None, help="test images (default: all 10,000)")
    parser.add_argument("--calib-samples", type=int, default=100)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/edgecnn-histogram-chunks"))
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    args = parser.parse_args(argv)
    args.workdir.mkdir(parents=True, exist_ok=True)
    models = args.model or [train_default_model(args.workdir, args.train_epochs)]
    rows = [row for model in models for row in measure_model(model, args)]
    machine = machine_info()
    report = {
        "measured": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": machine,
        "machine_slug": machine_slug(machine),
        "versions": tool_versions(),
        "calib_samples": args.calib_samples,
        "budget_bytes": HISTOGRAM_BUDGET_BYTES,
        "script": "benchmarks/histogram_chunks.py",
        "rows": rows,
    }
    write_results(args.out, "histogram_chunks", report, markdown(report))
    print(markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
