#!/usr/bin/env python
"""Peak memory of an entropy-calibrated int8 ONNX export against the number of calibration images.

    python benchmarks/histogram_memory.py [--model mobilenet_v2] [--samples 24,96]
        [--out benchmarks/results]

Runs `edgecnn export MODEL --int8 --format onnx --calib-method entropy --calib-samples N` (zoo
model at its default input, random weights, the default calibration set) once per N with
export's default histogram budget, and once for the largest N with no budget
(EDGECNN_HISTOGRAM_BUDGET_MB=1e12: every image at once, ONNX Runtime's way, as before the
budget). Each run is a process of its own (one format: one process), so the peak is its
ru_maxrss. Writes <out>/<machine slug>/histogram_memory.json and .md atomically.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from edgecnn.host import machine_info, machine_slug, write_results  # noqa: E402
from edgecnn.manifest import tool_versions  # noqa: E402


def run(model: str, samples: int, budget_mb: str | None, out: Path) -> dict:
    """One export in a fresh process: its peak RSS (MB), seconds and the manifest's calibration."""
    command = [sys.executable, "-m", "edgecnn", "export", model, "--int8", "--format", "onnx"]
    command += ["--calib-method", "entropy", "--calib-samples", str(samples), "--out", str(out), "--json"]
    env = {**os.environ, "EDGECNN_OFFLINE": "1"}
    env.pop("EDGECNN_HISTOGRAM_BUDGET_MB", None)
    if budget_mb is not None:
        env["EDGECNN_HISTOGRAM_BUDGET_MB"] = budget_mb
    # ru_maxrss of the children is the largest of any child so far: one run per script process.
    script = (
        "import resource, subprocess, sys, json;"
        "p = subprocess.run(sys.argv[1:], capture_output=True, text=True);"
        "print(json.dumps({'code': p.returncode, 'stdout': p.stdout, 'stderr': p.stderr[-2000:],"
        "'peak_kb': resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}))"
    )
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", script, *command], capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - started
    result = json.loads(done.stdout)
    row = {
        "samples": samples,
        "budget": "none (all at once)" if budget_mb is not None else "default",
        "exit_code": result["code"],
        "peak_rss_mb": result["peak_kb"] // 1024,
        "wall_seconds": round(seconds, 1),
    }
    if result["code"] != 0:
        row["error"] = (result["stderr"].strip().splitlines() or ["?"])[-1][:300]
        return row
    (manifest,) = json.loads(result["stdout"])
    row.update(sha256=manifest["sha256"], calibration_count=manifest["calibration"]["count"])
    return row


def markdown(report: dict) -> str:
    lines = [
        f"# Entropy calibration memory against calibration images: {report['model']}",
        "",
        f"{report['measured']} on {report['machine'].get('cpu_model')} ({report['machine_slug']}); "
        + ", ".join(f"{k} {v}" for k, v in report["versions"].items())
        + f". `{report['command']}`, each run a process of its own; peak = its ru_maxrss.",
        "",
        "| calibration images | histogram budget | peak RSS MB | wall s | result |",
        "|---:|---|---:|---:|---|",
    ]
    for row in report["rows"]:
        result = "ok" if row["exit_code"] == 0 else f"failed: {row.get('error', '')}"
        lines.append(
            f"| {row['samples']} | {row['budget']} | {row['peak_rss_mb']} | {row['wall_seconds']} | {result} |"
        )
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="mobilenet_v2")
    parser.add_argument("--samples", default="24,96")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    args = parser.parse_args(argv)
    counts = [int(n) for n in args.samples.split(",")]
    rows = []
    with tempfile.TemporaryDirectory(prefix="histogram-memory-") as tmp:
        plan = [(n, None) for n in counts] + [(max(counts), "1e12")]
        for index, (samples, budget) in enumerate(plan):
            row = run(args.model, samples, budget, Path(tmp) / str(index))
            print(json.dumps(row), file=sys.stderr, flush=True)
            rows.append(row)
    machine = machine_info()
    report = {
        "measured": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": machine,
        "machine_slug": machine_slug(machine),
        "versions": tool_versions(),
        "model": args.model,
        "command": f"edgecnn export {args.model} --int8 --format onnx --calib-method entropy --calib-samples N",
        "script": "benchmarks/histogram_memory.py",
        "rows": rows,
    }
    write_results(args.out, "histogram_memory", report, markdown(report))
    print(markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
