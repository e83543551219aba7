#!/usr/bin/env python
"""How often does the int8 artifact pick the same class as its float32 parent, on trained weights?

    python benchmarks/int8_agreement.py [--model TRAINED.keras ...] [--formats tflite onnx]
        [--limit N] [--calib-samples 100] [--threads 2] [--workdir DIR] [--out benchmarks/results]

The export issue asks for int8 top-1 agreement of at least 95% on real images with trained
weights. ImageNet weights cannot be fetched here, so the trained models are Fashion-MNIST
classifiers made by `edgecnn train`. Without `--model` the script trains LeNet-5 itself:

    edgecnn train lenet5 --dataset fashion-mnist --epochs 5 --input-size 32 --out WORKDIR/lenet5.keras

For each model it exports float32 and int8 in every format through `edgecnn.export.export`
(int8 calibrated on 100 Fashion-MNIST training images, as `edgecnn export M.keras --int8
--calib fashion-mnist --format all`), runs every artifact in its own runtime on the
Fashion-MNIST test split (10,000 images unless `--limit`) and reports, per format:

- top-1 against the labels for float32 and int8;
- agreement: the fraction of images where int8 and float32 pick the same class;
- the float32 TFLite vs float32 ONNX agreement, as a check that the two runtimes see the same
  images.

Writes <out>/<machine slug>/int8_agreement.json and .md atomically. Tests never assert these
figures.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a script from a checkout
    sys.path.insert(0, str(REPO))

from edgecnn.host import machine_info, machine_slug, write_atomic  # noqa: E402
from edgecnn.loading import sidecar_path  # noqa: E402
from edgecnn.manifest import tool_versions  # noqa: E402

TARGET_AGREEMENT = 0.95
QUANTIZATIONS = ("float32", "int8")


def log(message: str) -> None:
    print(f"[int8_agreement] {message}", file=sys.stderr, flush=True)


def train_default_model(workdir: Path, epochs: int) -> Path:
    out = workdir / "lenet5.keras"
    if out.is_file():
        log(f"reusing {out}")
        return out
    command = [
        "edgecnn",
        "train",
        "lenet5",
        "--dataset",
        "fashion-mnist",
        "--epochs",
        str(epochs),
        "--input-size",
        "32",
        "--out",
        str(out),
    ]
    log("$ " + shlex.join(command))
    subprocess.run(command, check=True)
    return out


def export_pair(model: Path, formats: list[str], calib_samples: int, workdir: Path) -> dict:
    """{(quantization, format): manifest} for float32 and int8 of `model`."""
    from edgecnn.export import ExportRequest, export

    manifests = {}
    for quantization in QUANTIZATIONS:
        request = ExportRequest(
            model=str(model),
            quantization=quantization,
            formats=tuple(formats),
            calib="fashion-mnist",
            calib_samples=calib_samples,
            out=workdir / "artifacts",
        )
        for manifest in export(request):
            manifests[(quantization, manifest["format"])] = manifest
            log(f"  {manifest['artifact']}: {manifest['bytes']:,} bytes")
    return manifests


def test_images(manifest: dict, limit: int | None):
    """The Fashion-MNIST test split, preprocessed as the manifest says, in file order."""
    from calibration import CalibrationData, open_source

    data = CalibrationData(
        open_source("fashion-mnist", split="test"),
        input_shape=manifest["preprocess"]["input_shape"],
        preprocess=manifest["preprocess"]["mode"],
        samples=limit,
        seed=None,
    )
    return data.arrays(), data.labels()


def predict(path: str, images: np.ndarray, threads: int) -> np.ndarray:
    """Top-1 class per image, the artifact run in its own runtime (which resizes its batch)."""
    from edgecnn.runtime import predict as run_over

    return run_over(path, images, batch_size=500, threads=threads).argmax(-1)


def measure_model(model: Path, args) -> dict:
    log(f"{model}: exporting float32 and int8 ({', '.join(args.formats)})")
    manifests = export_pair(model, args.formats, args.calib_samples, args.workdir)
    any_manifest = next(iter(manifests.values()))
    images, labels = test_images(any_manifest, args.limit)
    log(f"  {len(images)} test images")
    predictions = {}
    for key, manifest in manifests.items():
        started = time.perf_counter()
        predictions[key] = predict(manifest["path"], images, args.threads)
        log(
            f"  {key[1]} {key[0]}: top-1 {np.mean(predictions[key] == labels):.4f} "
            f"({time.perf_counter() - started:.1f} s)"
        )
    rows = []
    for fmt in args.formats:
        float_pred, int8_pred = predictions[("float32", fmt)], predictions[("int8", fmt)]
        manifest = manifests[("int8", fmt)]
        agreement = float(np.mean(float_pred == int8_pred))
        rows.append(
            {
                "format": fmt,
                "runtime": manifest["parity"]["runtime"],
                "float32_artifact": manifests[("float32", fmt)]["artifact"],
                "int8_artifact": manifest["artifact"],
                "float32_sha256": manifests[("float32", fmt)]["sha256"],
                "int8_sha256": manifest["sha256"],
                "float32_top1": float(np.mean(float_pred == labels)),
                "int8_top1": float(np.mean(int8_pred == labels)),
                "agreement": agreement,
                "disagreements": int(np.sum(float_pred != int8_pred)),
                "meets_target": agreement >= TARGET_AGREEMENT,
                "int8_bytes": manifest["bytes"],
                "float32_bytes": manifests[("float32", fmt)]["bytes"],
            }
        )
    cross = None
    if {"tflite", "onnx"} <= set(args.formats):
        cross = float(np.mean(predictions[("float32", "tflite")] == predictions[("float32", "onnx")]))
    sidecar = sidecar_path(model)
    trained = json.loads(sidecar.read_text()) if sidecar.is_file() else {}
    return {
        "model": str(model),
        "model_name": any_manifest["model"],
        "trained": {k: trained.get(k) for k in ("dataset", "epochs", "val_accuracy", "seconds") if k in trained},
        "test_images": int(len(images)),
        "calibration": manifests[("int8", args.formats[0])].get("calibration"),
        "formats": rows,
        "float32_tflite_vs_onnx_agreement": cross,
    }


def markdown(report: dict) -> str:
    m, v = report["machine"], report["versions"]
    lines = [
        "# int8 vs float32 top-1 agreement on trained weights",
        "",
        f"{report['date']} on {m['cpu_model']} ({m['cores_usable']} usable cores, {m['arch']}); "
        f"TensorFlow {v.get('tensorflow', '?')}, LiteRT {v.get('ai-edge-litert', '?')}, "
        f"ONNX Runtime {v.get('onnxruntime', '?')}, edgecnn {v.get('edgecnn', '?')}. "
        f"Command: `{report['command']}`.",
        "",
        f"Target (export issue): int8 picks the float32 model's class on at least "
        f"{TARGET_AGREEMENT:.0%} of real images. Fashion-MNIST test split; int8 calibrated on "
        "Fashion-MNIST training images; each artifact run in its own runtime.",
        "",
        "| model | format | float32 top-1 | int8 top-1 | agreement | disagreements | target |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    for entry in report["models"]:
        for row in entry["formats"]:
            lines.append(
                f"| {entry['model_name']} ({Path(entry['model']).name}) | {row['format']} | "
                f"{row['float32_top1']:.2%} | {row['int8_top1']:.2%} | {row['agreement']:.2%} | "
                f"{row['disagreements']} of {entry['test_images']} | "
                f"{'ok' if row['meets_target'] else 'MISSED'} |"
            )
    lines.append("")
    for entry in report["models"]:
        if entry["float32_tflite_vs_onnx_agreement"] is not None:
            lines.append(
                f"- {entry['model_name']}: float32 TFLite and float32 ONNX agree on "
                f"{entry['float32_tflite_vs_onnx_agreement']:.2%} of the images."
            )
        if entry["trained"]:
            t = entry["trained"]
            lines.append(
                f"- {entry['model_name']}: trained {t.get('epochs')} epochs on "
                f"{(t.get('dataset') or {}).get('name', '?')}, validation top-1 in Keras "
                f"{t.get('val_accuracy')}, {t.get('seconds')} s."
            )
    return "\n".join(lines) + "\n"


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--model",
        type=Path,
        action="append",
        default=None,
        help="a trained .keras model (repeat for several); default: train LeNet-5",
    )
    parser.add_argument("--train-epochs", type=int, default=5, help="epochs for the default LeNet-5")
    parser.add_argument("--formats", nargs="+", default=["tflite", "onnx"], choices=["tflite", "onnx"])
    parser.add_argument("--limit", type=int, default=None, help="test images (default: all 10,000)")
    parser.add_argument("--calib-samples", type=int, default=100)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/edgecnn-int8-agreement"))
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    args.workdir.mkdir(parents=True, exist_ok=True)
    models = args.model or [train_default_model(args.workdir, args.train_epochs)]
    missing = [str(m) for m in models if not m.is_file()]
    if missing:
        print(f"int8_agreement: no such model: {', '.join(missing)}", file=sys.stderr)
        return 2
    machine = machine_info()
    report = {
        "benchmark": "int8_agreement",
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": "python " + shlex.join(["benchmarks/int8_agreement.py", *(argv or sys.argv[1:])]),
        "machine": machine,
        "machine_slug": machine_slug(machine),
        "load_average": list(os.getloadavg()),
        "versions": tool_versions(),
        "target_agreement": TARGET_AGREEMENT,
        "models": [measure_model(model, args) for model in models],
    }
    folder = args.out / report["machine_slug"]
    write_atomic(folder / "int8_agreement.json", json.dumps(report, indent=2, default=str) + "\n")
    write_atomic(folder / "int8_agreement.md", markdown(report))
    print(markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
