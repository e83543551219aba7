#!/usr/bin/env python
"""`edgecnn inspect` on MobileNetV2 224 int8 and float32, TFLite and ONNX: the per-op tables on record.

    python benchmarks/inspect_report.py [--artifacts DIR] [--threads 1] [--data default]
        [--samples 16] [--workdir DIR] [--out benchmarks/results]

`--artifacts DIR` is a folder holding the four export folders `edgecnn export mobilenetv2
--int8 --format all` and `edgecnn export mobilenetv2 --format all` write (mobilenetv2-int8,
mobilenetv2-int8-onnx, mobilenetv2-float32, mobilenetv2-float32-onnx); without it the script runs
those two commands into --workdir first (about 3 minutes on 2 cores). Each artifact goes through
`edgecnn.inspect.inspect_artifact(profile=True, threads=N)`; the int8 ones also with numerics
against their float twin on --samples images of --data. Writes <out>/<machine slug>/inspect_report.json
(every report whole) and inspect_report.md (findings, ORT's per-op-type tables, the tie of the
per-op total to the benchmark p50, the numerics' worst layers) atomically. Tests never assert these
figures.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a script from a checkout
    sys.path.insert(0, str(REPO))

from edgecnn.host import machine_info, machine_slug, write_atomic  # noqa: E402
from edgecnn.manifest import tool_versions  # noqa: E402

VARIANTS = (
    ("int8", "tflite", "mobilenetv2-int8/mobilenetv2-int8.tflite"),
    ("int8", "onnx", "mobilenetv2-int8-onnx/mobilenetv2-int8.onnx"),
    ("float32", "tflite", "mobilenetv2-float32/mobilenetv2-float32.tflite"),
    ("float32", "onnx", "mobilenetv2-float32-onnx/mobilenetv2-float32.onnx"),
)


def log(message: str) -> None:
    print(f"[inspect_report] {message}", file=sys.stderr, flush=True)


def export_all(workdir: Path) -> Path:
    for flags in (["--int8"], []):
        command = [
            sys.executable,
            "-m",
            "edgecnn",
            "export",
            "mobilenetv2",
            *flags,
            "--format",
            "all",
            "--out",
            str(workdir),
        ]
        if all((workdir / rel).is_file() for q, _, rel in VARIANTS if q == ("int8" if flags else "float32")):
            log(f"reusing {workdir} for {' '.join(flags) or 'float32'}")
            continue
        log("running " + shlex.join(command))
        subprocess.run(command, check=True, cwd=REPO)
    return workdir


def _worst(layers: list, n: int = 5) -> list:
    finite = [layer for layer in layers if isinstance(layer["sqnr_db"], (int, float))]
    return sorted(finite, key=lambda layer: layer["sqnr_db"])[:n]


def markdown(report: dict) -> str:
    m, v = report["machine"], report["versions"]
    lines = [
        "# edgecnn inspect: MobileNetV2 224, int8 and float32, TFLite and ONNX",
        "",
        f"{report['date']} on {m['cpu_model']} ({m['cores_usable']} usable cores, {m['arch']}; "
        f"load average {', '.join(f'{x:.2f}' for x in report['load_average'])}); LiteRT "
        f"{v.get('ai-edge-litert', '?')}, ONNX Runtime {v.get('onnxruntime', '?')}, edgecnn "
        f"{v.get('edgecnn', '?')}. Threads {report['threads']}. Command: `{report['command']}`. "
        f"Weights: {report['weights']}.",
        "",
    ]
    timing = report["latency"]
    rounds = len(next(iter(timing.values()))["p50_ms"])
    lines += [
        f"Latency through the harness at {report['threads']} thread(s), {rounds} "
        "rounds with the artifacts interleaved (p50 of each round; min and median over rounds):",
        "",
        "| artifact | p50 ms (min) | p50 ms (median) | float / this (min) |",
        "|---|---:|---:|---:|",
    ]
    for name, t in timing.items():
        fmt = "onnx" if "onnx" in name else "tflite"
        base = timing.get(f"float32 {fmt}", {}).get("p50_ms_min")
        lines.append(
            f"| {name} | {t['p50_ms_min']:.3f} | {t['p50_ms_median']:.3f} | {base / t['p50_ms_min']:.2f}x |"
            if base
            else f"| {name} | {t['p50_ms_min']:.3f} | {t['p50_ms_median']:.3f} | |"
        )
    lines.append("")
    for entry in report["artifacts"]:
        r = entry["report"]
        label = f" ({entry['label']})" if entry.get("label") else ""
        lines += [f"## {entry['quantization']} {entry['format']}{label}: {r['artifact']['name']}", ""]
        lines += [f"{f['rank']}. {f['text']} *{f['action']}*" for f in r["findings"]]
        lines.append("")
        prof = r.get("profile") or {}
        if prof.get("available"):
            harness = prof["harness"]
            lines += [
                f"Per-op time: ONNX Runtime's profiler, {prof['runs']} runs after {prof['warmup_runs']} "
                f"warm-up. Per-op total {prof['total_ms']:.3f} ms; ORT's own run span (p50, profiling on) "
                f"{prof['model_run_p50_ms']} ms; benchmark p50 (own process, profiling off) "
                f"{harness['p50_ms']} ms; per-op total / benchmark p50 = {prof['total_over_p50']:.2f}.",
                "",
                "| op | nodes | ms | share |",
                "|---|---:|---:|---:|",
            ]
            lines += [
                f"| {row['op_type']} | {row['nodes']} | {row['ms']:.3f} | {100 * row['share']:.1f}% |"
                for row in prof["by_op_type"]
            ]
            lines.append("")
        elif prof:
            lines += [f"Per-op time: {prof['note']}.", ""]
        runtime = r["runtime"]
        if r["artifact"]["format"] == "onnx":
            lines += [
                "Graph ONNX Runtime runs (ORT_ENABLE_ALL): "
                + ", ".join(
                    f"{row['op_type']} ({row['compute_dtype']}) x{row['count']}"
                    for row in runtime["optimized_ops_by_type"]
                )
                + ".",
                "",
            ]
        else:
            lines += [
                f"XNNPACK: {runtime['delegated_ops']} ops in {runtime['partitions']} partition(s); default "
                "kernels: "
                + (", ".join(f"{x['op_type']} x{x['count']}" for x in runtime["default_kernels"]) or "none")
                + ".",
                "",
            ]
        numerics = r.get("numerics")
        if numerics:
            lines += [
                f"Numerics: {numerics['images']} images of `{numerics['data']}`, top-1 agreement with float "
                f"{100 * numerics['top1_agreement']:.1f}%. Lowest SQNR layers:",
                "",
                "| tensor | op | SQNR dB | rel RMSE |",
                "|---|---|---:|---:|",
            ]
            lines += [
                f"| {layer['name']} | {layer['op_type']} | {layer['sqnr_db']:.1f} | {layer['rel_rmse']:.4f} |"
                for layer in _worst(numerics["layers"])
            ]
            lines.append("")
    return "\n".join(lines) + "\n"


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--artifacts", type=Path, default=None, help="folder with the four export folders")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--data", default="default", help="images for the numerics (a calibration source)")
    parser.add_argument("--samples", type=int, default=16)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/edgecnn-inspect-report"))
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    parser.add_argument(
        "--also",
        type=Path,
        action="append",
        default=[],
        help="another int8 .onnx of the same model to inspect and time (e.g. an older export)",
    )
    parser.add_argument("--rounds", type=int, default=3, help="benchmark rounds, artifacts interleaved")
    return parser.parse_args(argv)


def latencies(paths: dict, threads: int, rounds: int) -> dict:
    """p50 of each artifact through the harness (its own process, benchmark_model's method), the
    artifacts interleaved round by round so that a busy machine slows them alike; min and median."""
    from edgecnn.harness import BenchmarkSettings, benchmark_artifact

    p50s: dict = {name: [] for name in paths}
    for round_ in range(rounds):
        for name, path in paths.items():
            row = benchmark_artifact(path, BenchmarkSettings(threads=threads, runs=50, min_secs=2.0))
            if row.get("status") != "ok":
                raise SystemExit(f"inspect_report: benchmark of {path} failed: {row.get('error')}")
            p50s[name].append(row["latency_ms"]["p50"])
        log(f"round {round_ + 1}: " + ", ".join(f"{k} {v[-1]:.2f} ms" for k, v in p50s.items()))
    return {
        name: {"p50_ms_min": min(v), "p50_ms_median": sorted(v)[len(v) // 2], "p50_ms": v} for name, v in p50s.items()
    }


def main(argv=None) -> int:
    from edgecnn.inspect import inspect_artifact

    args = parse_args(argv)
    root = args.artifacts or export_all(args.workdir)
    missing = [str(root / rel) for _, _, rel in VARIANTS if not (root / rel).is_file()]
    if missing:
        print(f"inspect_report: missing artifacts: {', '.join(missing)}", file=sys.stderr)
        return 2
    entries = []
    weights = set()
    for quantization, fmt, rel in VARIANTS:
        path = root / rel
        reference = None
        if quantization == "int8":
            reference = next(root / r for q, f, r in VARIANTS if q == "float32" and f == fmt)
        log(f"inspecting {path.name}")
        report = inspect_artifact(
            path,
            threads=args.threads,
            profile=True,
            data=args.data if reference else None,
            reference=reference,
            samples=args.samples,
        )
        manifest = json.loads((path.parent / "manifest.json").read_text())
        weights.add(str(manifest.get("weights")))
        entries.append({"quantization": quantization, "format": fmt, "report": report})
    for path in args.also:
        reference = next(root / r for q, f, r in VARIANTS if q == "float32" and f == "onnx")
        log(f"inspecting {path}")
        report = inspect_artifact(
            path, threads=args.threads, profile=True, data=args.data, reference=reference, samples=args.samples
        )
        entries.append({"quantization": "int8", "format": "onnx", "label": f"also: {path.name}", "report": report})
    timed = {
        f"{e['quantization']} {e['format']}" + (f" ({e['label']})" if e.get("label") else ""): e["report"]["artifact"][
            "path"
        ]
        for e in entries
    }
    timing = latencies(timed, args.threads, args.rounds)
    machine = machine_info()
    report = {
        "benchmark": "inspect_report",
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": "python " + shlex.join(["benchmarks/inspect_report.py", *(argv or sys.argv[1:])]),
        "machine": machine,
        "machine_slug": machine_slug(machine),
        "load_average": list(os.getloadavg()),
        "versions": tool_versions(),
        "threads": args.threads,
        "weights": ", ".join(sorted(weights)),
        "artifacts": entries,
        "latency": timing,
    }
    folder = args.out / report["machine_slug"]
    write_atomic(folder / "inspect_report.json", json.dumps(report, indent=2, default=str) + "\n")
    write_atomic(folder / "inspect_report.md", markdown(report))
    print(markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
