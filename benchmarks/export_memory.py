#!/usr/bin/env python
"""Export memory and time of every zoo model: peak RSS and seconds per format and stage.

    python benchmarks/export_memory.py [--models vgg16,resnet152] [--quantizations int8,float32]
        [--out benchmarks/results] [--force] [--min-available-gb 14]

For each zoo model at its default input (224x224 for the ImageNet models, LeNet-5 at its
own 32x32) and each quantization (int8 first, then float32), one run of

    edgecnn export MODEL --QUANT --format all --out TMP --json

in a subprocess of its own (default weights `auto`: ImageNet where cached, else random;
the default calibration set, 100 images), measured from outside:

- wall seconds of the whole command;
- `peak_tree_rss_mb`: the largest sum of the RSS of the command and all its children,
  sampled every 0.1 s (an export converts several formats each in a process of its own:
  what the machine must hold is their sum, which `/usr/bin/time -v` does not show, as it
  reports the largest single process);
- `largest_process_rss_mb`: what `/usr/bin/time -v` would report (ru_maxrss of the
  children);
- from each manifest: the artifact bytes and `export_stages` (seconds and the peak RSS of
  the converting process at the end of each stage: build, calibration data, reference,
  tflite.convert, onnx.tf2onnx, onnx.preprocess, onnx.quantize, parity).

Before each run the script waits (up to 10 minutes) until MemAvailable is at least
--min-available-gb (14 GB for VGG), so that a run does not compete with others for memory; the
available memory at the start is recorded.

Resumable: rows already in `<out>/<machine slug>/export_memory.json` are kept and not run
again (--force runs them again); every finished row is written at once (atomically),
together with export_memory.md. A failed export is a row with its error line.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a script from a checkout
    sys.path.insert(0, str(REPO))

from edgecnn.host import machine_info, machine_slug, write_atomic  # noqa: E402

MODELS = (
    "lenet5",
    "mobilenet_v1",
    "mobilenet_v2",
    "googlenet",
    "resnet18",
    "resnet34",
    "resnet50",
    "alexnet",
    "resnet101",
    "resnet152",
    "vgg16",
    "vgg19",
)
QUANTIZATIONS = ("int8", "float32")
# Row order in the results: every variant export offers.
ORDER = ("int8", "float32", "float16", "dynamic", "int16x8")
# The targets (export MODEL --int8 --format all), checked in the Markdown.
TARGETS_MB = {("vgg16", "int8"): 8000, ("resnet152", "int8"): 6000}
ANY_MODEL_TARGET_MB = 10000


# Measured by benchmarks/export_memory_steps.py (RSS and peak between probes around each step of
# one conversion); AlexNet at 224, 233 MB of float32 weights, random weights, int8 for TFLite.
STEPS_NOTE = [
    "## Where the memory goes inside one conversion",
    "",
    "`python benchmarks/export_memory_steps.py alexnet onnx|tflite`: RSS around each step of the "
    "converter, AlexNet at 224 (233 MB of float32 weights), 1.33 GB of RSS when the conversion starts.",
    "",
    "- tf2onnx before the weights were held out: TensorFlow's freezing (convert_variables_to_constants_v2: "
    "values read, put in a GraphDef, imported into a new function, exported again) left the process at "
    "3.0 GB (3.5 GB peak); grappler (tf_optimize: serialized, parsed, optimized, serialized, parsed back) "
    "peaked at 6.2 GB; tf2onnx's own graph, make_model and the canonical naming stayed under 4.4 GB.",
    "- tf2onnx now (converters/held_out.py: a four-byte marker constant per float32 weight through freezing "
    "and grappler, the weight read from its variable when tf2onnx makes the ONNX tensor): freezing 1.5 GB "
    "peak, grappler 1.75 GB, tf2onnx's graph 1.85 GB, make_model 2.2 GB, canonical naming 2.5 GB, the "
    "serialized model 2.7 GB: 6x the weights over the start, most of it the ONNX model held two or three "
    "times (tf2onnx's graph, the ModelProto, its bytes). ONNX Runtime's pre-processing and calibration "
    "then add little (AlexNet: 2.77 -> 3.07 GB).",
    "- TFLite int8 (TensorFlow 2.21 converts a Keras model through a SavedModel: no Python freezing or "
    "grappler): SavedModel save and load 1.36 GB, MLIR to the float flatbuffer 2.25 GB peak, "
    "add_intermediate_tensors 2.94 GB, calibration 3.18 GB, MLIR quantization 3.61 GB peak: the float "
    "flatbuffer, its copy with intermediate tensors, the calibrator's interpreter and the calibrated "
    "model are alive together inside TFLiteConverter (some 10x the weights) when the quantizer starts.",
    "- TFLite int8 now (converters/tflite.py `_calibrate_then_quantize`: the converter stops after "
    "calibration, its frames end, the calibrated model is quantized as convert() would, same bytes): "
    "VGG-16 (528 MB of weights, an export's own process, 2.15 GB when the conversion starts) 3.6 GB peak "
    "to the float flatbuffer, 5.2 GB adding intermediate tensors, 5.8 GB calibrating, then the MLIR "
    "quantizer from 2.4 GB to a 5.9 GB peak (7.1 GB before, starting from 3.8 GB). int16x8 still "
    "converts in one convert() call (its quantizer is not the MLIR one).",
    "",
]


def log(message: str) -> None:
    print(f"[{datetime.now().strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def available_mb() -> int | None:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) // 1024
    return None


def tree_rss_mb(root: int) -> int:
    """The summed VmRSS of `root` and its descendants (Linux /proc)."""
    total, todo, seen = 0, [root], set()
    while todo:
        pid = todo.pop()
        if pid in seen:
            continue
        seen.add(pid)
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
                    break
            children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        except (OSError, ValueError):
            continue
        todo.extend(int(child) for child in children)
    return total // 1024


def run_export(model: str, quantization: str, workdir: Path) -> dict:
    out = workdir / f"{model}-{quantization}"
    flag = [] if quantization == "float32" else [f"--{quantization}"]  # no flag means float32
    command = ["edgecnn", "export", model, *flag, "--format", "all", "--out", str(out), "--json"]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    started = time.perf_counter()
    with tempfile.TemporaryFile() as stdout, tempfile.TemporaryFile() as stderr:
        process = subprocess.Popen(command, stdout=stdout, stderr=stderr, env=env, cwd=REPO)
        peak = 0
        while process.poll() is None:
            peak = max(peak, tree_rss_mb(process.pid))
            time.sleep(0.1)
        wall = time.perf_counter() - started
        stdout.seek(0)
        stderr.seek(0)
        text, errors = stdout.read().decode(), stderr.read().decode(errors="replace")
    after = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    row = {
        "model": model,
        "quantization": quantization,
        "command": " ".join(command[: 3 + len(flag)] + ["--format", "all"]),
        "exit_code": process.returncode,
        "wall_seconds": round(wall, 1),
        "peak_tree_rss_mb": peak,
        # ru_maxrss of the children only rises: a run below an earlier one's peak reads as None.
        "largest_process_rss_mb": after // 1024 if after > before else None,
    }
    if process.returncode != 0:
        lines = [line for line in errors.splitlines() if line.strip()]
        row["error"] = lines[-1][:400] if lines else f"exit code {process.returncode}"
        return row
    manifests = json.loads(text)
    row["params"] = manifests[0]["params"]
    row["weights"] = manifests[0]["weights"]
    row["formats"] = {
        m["format"]: {
            "bytes": m["bytes"],
            "sha256": m["sha256"],
            "export_seconds": m["export_seconds"],
            "stages": m.get("export_stages"),
            "process_peak_rss_mb": max(
                (s.get("peak_rss_mb") or 0) for s in (m.get("export_stages") or {}).values() if isinstance(s, dict)
            )
            if m.get("export_stages")
            else None,
        }
        for m in manifests
    }
    return row


def _commit() -> str | None:
    """The checkout's commit (with `+` when it has uncommitted changes), for a row's record."""
    try:
        head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
        dirty = subprocess.run(
            ["git", "-C", str(REPO), "status", "--porcelain", "-uno"], capture_output=True, text=True
        )
    except OSError:
        return None
    return head.stdout.strip() + ("+" if dirty.stdout.strip() else "") if head.returncode == 0 else None


def _machine_words(machine: dict) -> str:
    simd = ", ".join(f for f in machine.get("simd", ()) if f.startswith("avx512") or "vnni" in f) or "no AVX-512"
    return f"{machine.get('cpu_model')} {machine.get('cpu_family_model_stepping', '')} ({simd})"


def peak_stage(formats: dict) -> str:
    """`format.stage` where a converting process first reached its peak."""
    best, where = -1, ""
    for fmt, record in formats.items():
        stages = record.get("stages") or {}
        top = record.get("process_peak_rss_mb") or 0
        for name, stage in stages.items():
            if isinstance(stage, dict) and stage.get("peak_rss_mb") == top:
                if top > best:
                    best, where = top, f"{fmt}: {name}"
                break
    return where


def markdown(report: dict) -> str:
    lines = [
        "# Export memory and time, every zoo model",
        "",
        f"Machine: {report['machine'].get('cpu_model')} ({report['machine_slug']}), "
        f"{report['machine'].get('memory_gib', '?')} GiB of memory ({_machine_words(report['machine'])}; "
        "rows measured on another machine of the same slug say so). "
        "Command: `edgecnn export MODEL --QUANT --format all` (default weights `auto`, default "
        "calibration: 100 shipped photos), one subprocess per row, by benchmarks/export_memory.py.",
        "",
        "`tree peak` is the largest summed RSS of the command and its child processes (each format "
        "converts in a process of its own; what the machine must hold); `largest process` is what "
        "`/usr/bin/time -v` reports; `peak at` is the stage where the largest converting process "
        "reached its peak.",
        "",
        "| model | params | quantization | wall s | tree peak MB | largest process MB | peak at | "
        "tflite MB | onnx MB | tflite s | onnx s | target | result |",
        "|---|---:|---|---:|---:|---:|---|---:|---:|---:|---:|---|---|",
    ]
    for row in report["rows"]:
        formats = row.get("formats", {})
        target = TARGETS_MB.get((row["model"], row["quantization"]), ANY_MODEL_TARGET_MB)
        met = "met" if row.get("exit_code") == 0 and row["peak_tree_rss_mb"] <= target else "missed"
        size = lambda f, formats=formats: f"{formats[f]['bytes'] / 1e6:.1f}" if f in formats else "-"  # noqa: E731
        secs = lambda f, formats=formats: f"{formats[f]['export_seconds']}" if f in formats else "-"  # noqa: E731
        params = f"{row['params'] / 1e6:.1f}M" if row.get("params") else "-"
        result = "ok" if row.get("exit_code") == 0 else f"failed: {row.get('error', '')}"
        if row.get("machine"):
            result += f" (measured on {_machine_words(row['machine'])}"
            result += f", {row['commit']})" if row.get("commit") else ")"
        lines.append(
            f"| {row['model']} | {params} | {row['quantization']} | {row['wall_seconds']} | "
            f"{row['peak_tree_rss_mb']} | {row.get('largest_process_rss_mb') or '-'} | "
            f"{peak_stage(formats) or '-'} | {size('tflite')} | {size('onnx')} | {secs('tflite')} | "
            f"{secs('onnx')} | <= {target} MB: {met} | {result} |"
        )
    lines += ["", "Stages (seconds / peak RSS MB of the converting process at the stage's end):", ""]
    for row in report["rows"]:
        for fmt, record in row.get("formats", {}).items():
            stages = record.get("stages") or {}
            text = ", ".join(
                f"{name} {s['seconds']} s / {s['peak_rss_mb']}" for name, s in stages.items() if isinstance(s, dict)
            )
            lines.append(f"- {row['model']} {row['quantization']} {fmt} ({stages.get('process', '?')} process): {text}")
    lines += [
        "",
        "Load average at the start of each row is in export_memory.json; the machine was "
        "shared with other work, so seconds vary between runs; memory figures much less.",
        "",
    ]
    lines += STEPS_NOTE
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--quantizations", default=",".join(QUANTIZATIONS))
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    parser.add_argument("--force", action="store_true", help="run rows that are already in the results again")
    parser.add_argument(
        "--min-available-gb",
        type=float,
        default=8.0,
        help="wait for this much available memory before each row (VGG: at least 14)",
    )
    args = parser.parse_args(argv)
    machine = machine_info()
    slug = machine_slug(machine)
    folder = args.out / slug
    path = folder / "export_memory.json"
    report = json.loads(path.read_text()) if path.is_file() else {"rows": []}
    # The file's machine is the one that measured it first; a row measured elsewhere (same slug,
    # another CPU or build) carries its own `machine`, and the Markdown says so.
    report.setdefault("machine", machine)
    report.update(machine_slug=slug, script="benchmarks/export_memory.py")
    done = {(r["model"], r["quantization"]) for r in report["rows"] if r.get("exit_code") == 0}
    with tempfile.TemporaryDirectory(prefix="export-memory-") as tmp:
        for quantization in args.quantizations.split(","):
            for model in args.models.split(","):
                if (model, quantization) in done and not args.force:
                    log(f"{model} {quantization}: in the results already")
                    continue
                waited = time.monotonic()
                wanted = max(args.min_available_gb, 14.0 if model.startswith("vgg") else 0.0)
                while (available_mb() or 0) < wanted * 1024 and time.monotonic() - waited < 600:
                    time.sleep(10)
                log(f"{model} {quantization}: exporting ({available_mb()} MB available)")
                free, load = available_mb(), os.getloadavg()[0]
                row = run_export(model, quantization, Path(tmp))
                if machine != report["machine"]:
                    row["machine"] = machine
                row.update(
                    commit=_commit(),
                    available_mb_at_start=free,
                    load_average_at_start=round(load, 2),
                    measured=datetime.now(timezone.utc).isoformat(timespec="seconds"),
                )
                log(
                    f"{model} {quantization}: {row['wall_seconds']} s, tree peak {row['peak_tree_rss_mb']} MB"
                    + (f", FAILED: {row['error']}" if row.get("error") else "")
                )
                # Read again before writing: another run of this script (other quantizations) may have
                # added rows since this one started; keep them.
                if path.is_file():
                    report["rows"] = json.loads(path.read_text())["rows"]
                report["rows"] = [
                    r for r in report["rows"] if (r["model"], r["quantization"]) != (model, quantization)
                ] + [row]
                report["rows"].sort(
                    key=lambda r: (
                        ORDER.index(r["quantization"]) if r["quantization"] in ORDER else 9,
                        MODELS.index(r["model"]) if r["model"] in MODELS else 99,
                    )
                )
                write_atomic(path, json.dumps(report, indent=2) + "\n")
                write_atomic(folder / "export_memory.md", markdown(report))
                for artifact in (Path(tmp) / f"{model}-{quantization}").glob("*"):
                    subprocess.run(["rm", "-rf", str(artifact)], check=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
