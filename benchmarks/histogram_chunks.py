#!/usr/bin/env python
"""Does binning the calibration images a chunk at a time change int8 ONNX accuracy?

    python benchmarks/histogram_chunks.py [--model TRAINED.keras ...] [--limit N]
        [--calib-samples 100] [--workdir DIR] [--out benchmarks/results]

ONNX Runtime's entropy and percentile calibrators hold every calibrated tensor of every image
until they bin them; export now gives them `converters.memory.HISTOGRAM_CHUNK` images at a time
(quantize_static's strided loop), which bounds the memory by the chunk but merges histograms
chunk by chunk, so the ranges, and the bytes, can differ from one pass over all images. The
export issue allows that where accuracy on the trained Fashion-MNIST models stays within 0.1
point. For each model (default: the LeNet-5 benchmarks/int8_agreement.py trains) and each
method, int8 ONNX is exported twice, calibrated on --calib-samples Fashion-MNIST training
images: all at once (EDGECNN_HISTOGRAM_CHUNK=0, ONNX Runtime's way, the bytes before the change)
and chunked (the default); both run on the Fashion-MNIST test split. min/max, unchanged by
the chunking, is the reference row.

Writes <out>/<machine slug>/histogram_chunks.json and .md atomically. Tests never assert these
figures.
"""

from __future__ import annotations

import argparse
import json
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

from edgecnn.host import machine_info, machine_slug, write_atomic  # noqa: E402
from edgecnn.manifest import tool_versions  # noqa: E402

METHODS = ("minmax", "entropy", "percentile")
MODES = {"all at once": "0", "chunked": None}  # EDGECNN_HISTOGRAM_CHUNK for each
WITHIN_POINTS = 0.1


def log(message: str) -> None:
    print(f"[histogram_chunks] {message}", file=sys.stderr, flush=True)


def export_onnx(model: Path, method: str, mode: str, calib_samples: int, workdir: Path) -> dict:
    from edgecnn.export import ExportRequest, export

    chunk = MODES[mode]
    if chunk is None:
        os.environ.pop("EDGECNN_HISTOGRAM_CHUNK", None)
    else:
        os.environ["EDGECNN_HISTOGRAM_CHUNK"] = chunk
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
    os.environ.pop("EDGECNN_HISTOGRAM_CHUNK", None)
    return manifest


def measure_model(model: Path, args) -> list[dict]:
    rows, images, labels = [], None, None
    for method in METHODS:
        found = {}
        for mode in MODES if method != "minmax" else ("chunked",):
            manifest = export_onnx(model, method, mode, args.calib_samples, args.workdir)
            if images is None:
                images, labels = test_images(manifest, args.limit)
            top1 = float(np.mean(predict(manifest["path"], images, args.threads) == labels))
            found[mode] = {"top1": top1, "sha256": manifest["sha256"], "bytes": manifest["bytes"]}
            log(f"{model.name} {method} {mode}: top-1 {top1:.4f}")
        row = {"model": str(model), "method": method, "test_images": int(len(images)), **found}
        if len(found) == 2:
            row["same_bytes"] = found["all at once"]["sha256"] == found["chunked"]["sha256"]
            row["difference_points"] = round(100 * (found["chunked"]["top1"] - found["all at once"]["top1"]), 3)
            row["within_target"] = abs(row["difference_points"]) <= WITHIN_POINTS
        rows.append(row)
    return rows


def markdown(report: dict) -> str:
    lines = [
        "# Histogram calibration a chunk at a time: int8 ONNX accuracy",
        "",
        f"{report['measured']} on {report['machine'].get('cpu_model')} ({report['machine_slug']}); "
        + ", ".join(f"{k} {v}" for k, v in report["versions"].items())
        + f". Calibration: {report['calib_samples']} Fashion-MNIST training images, binned "
        f"{report['chunk']} at a time (the largest divisor of {report['calib_samples']} up to "
        f"converters.memory.HISTOGRAM_CHUNK, 8). Test: the Fashion-MNIST "
        f"test split. Target: chunked within {WITHIN_POINTS} point of all at once.",
        "",
        "| model | method | all at once top-1 | chunked top-1 | difference (points) | same bytes | target |",
        "|---|---|---:|---:|---:|---|---|",
    ]
    for row in report["rows"]:
        whole = row.get("all at once")
        whole_top1 = f"{100 * whole['top1']:.2f}%" if whole else "-"
        lines.append(
            f"| {Path(row['model']).name} | {row['method']} | "
            f"{whole_top1} | {100 * row['chunked']['top1']:.2f}% | "
            f"{row.get('difference_points', '-')} | {row.get('same_bytes', '-')} | "
            f"{('ok' if row['within_target'] else 'missed') if 'within_target' in row else 'reference'} |"
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
    from converters.memory import histogram_stride

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
        "chunk": histogram_stride(args.calib_samples),
        "script": "benchmarks/histogram_chunks.py",
        "rows": rows,
    }
    folder = args.out / report["machine_slug"]
    folder.mkdir(parents=True, exist_ok=True)
    write_atomic(folder / "histogram_chunks.json", json.dumps(report, indent=1) + "\n")
    write_atomic(folder / "histogram_chunks.md", markdown(report))
    print(markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
