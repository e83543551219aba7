#!/usr/bin/env python
"""What `edgecnn benchmark` costs over a bare invoke() loop, and how repeatable it is.

    python benchmarks/harness_overhead.py [--threads 2] [--repeats 3] [--min-secs 2]
        [--formats tflite,onnx] [--artifacts DIR] [--out benchmarks/results]

1. Exports a small and a large model with `edgecnn export` (the real CLI): LeNet-5 and
   MobileNetV2 1.0 at 224, full int8, TFLite and ONNX (`--format all`), into --artifacts
   (kept and reused when given, else a temporary folder).
2. For each artifact, `--repeats` rounds, interleaved A B A B...:
   A: `edgecnn benchmark FILE --json --threads T --runs N --min-secs S` (the whole CLI:
      a worker subprocess per artifact, the timer around `invoke()`), its p50;
   B: a bare loop in a fresh `python -c` process: LiteRT's `Interpreter` (or an ONNX Runtime
      `InferenceSession`) on the same file with the same thread count, the same seeded random
      input set once, one first inference and the same warm-up, then the same stop rule
      (at least N runs and S seconds), `time.perf_counter()` around `invoke()` / `run()`, p50.
   overhead = p50(A) / p50(B) per round; the median over rounds is reported.
3. Repeatability: the spread (max - min) / median of the A p50s over the rounds; the
   target is 5%.
4. Writes `<out>/<machine slug>/harness_overhead.json` (`edgecnn.host.machine_slug`, as
   export_quality.py: CPU model, usable cores, architecture) with the host, tool versions,
   load average before and after, and every round; prints a summary table.

Timings move with whatever else runs on the machine: read the load average with them.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from edgecnn.host import describe_host, machine_info, machine_slug, write_atomic  # noqa: E402
from edgecnn.manifest import tool_versions  # noqa: E402

MODELS = (  # (label, `edgecnn export` arguments)
    ("lenet5", ["lenet5", "--int8"]),
    ("mobilenet_v2-224", ["mobilenet_v2", "--int8", "--input-size", "224"]),
)
REPEATABILITY_TARGET = 0.05

BARE_LOOP = r"""
import json, sys, time
import numpy as np
path, fmt, threads, warmup, runs, min_secs, max_secs, seed = json.loads(sys.argv[1])
rng = np.random.default_rng(seed)

def random_array(shape, dtype):
    dt = np.dtype(dtype)
    if dt.kind in "iu":
        lim = np.iinfo(dt)
        return rng.integers(lim.min, lim.max, size=shape, endpoint=True).astype(dt)
    return rng.uniform(-1, 1, size=shape).astype(dt)

if fmt == "tflite":
    from ai_edge_litert.interpreter import Interpreter
    interpreter = Interpreter(model_path=path, num_threads=threads)
    interpreter.allocate_tensors()
    for d in interpreter.get_input_details():
        interpreter.set_tensor(d["index"], random_array(tuple(d["shape"]), d["dtype"]))
    invoke = interpreter.invoke
else:
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    session = ort.InferenceSession(path, sess_options=options, providers=["CPUExecutionProvider"])
    types = {"tensor(float)": "float32", "tensor(int8)": "int8", "tensor(uint8)": "uint8"}
    feeds = {i.name: random_array(tuple(d if isinstance(d, int) else 1 for d in i.shape), types[i.type])
             for i in session.get_inputs()}
    invoke = lambda: session.run(None, feeds)

invoke()  # the first inference, as the harness does
for _ in range(warmup):
    invoke()
times = []
clock = time.perf_counter
start_loop = clock()
while True:
    t = clock()
    invoke()
    times.append(clock() - t)
    elapsed = clock() - start_loop
    if (len(times) >= runs and elapsed >= min_secs) or elapsed >= max_secs:
        break
ms = np.asarray(times) * 1e3
print(json.dumps({"count": len(ms), "p50": float(np.percentile(ms, 50)), "p90": float(np.percentile(ms, 90)),
                  "mean": float(ms.mean()), "min": float(ms.min())}))
"""


def log(message: str) -> None:
    print(f"[harness_overhead] {message}", file=sys.stderr, flush=True)


def export(label: str, args: list[str], folder: Path, formats: list[str]) -> dict[str, dict]:
    """{format: manifest}, exported with the real CLI unless already there."""
    target = folder / label
    manifests = {}
    if target.is_dir():
        for manifest_path in target.glob("*/manifest.json"):
            manifest = json.loads(manifest_path.read_text())
            manifest["path"] = str(manifest_path.with_name(manifest["artifact"]))
            manifests[manifest["format"]] = manifest
    if all(f in manifests for f in formats):
        log(f"reusing {label} exports in {target}")
        return {f: manifests[f] for f in formats}
    fmt = formats[0] if len(formats) == 1 else "all"
    command = [sys.executable, "-m", "edgecnn", "export", *args, "--format", fmt, "--out", str(target), "--json"]
    log(f"exporting {label}: {shlex.join(command[1:])}")
    start = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"export of {label} failed: {proc.stderr.strip()[-500:]}")
    log(f"  done in {time.perf_counter() - start:.0f} s")
    return {m["format"]: m for m in json.loads(proc.stdout) if m["format"] in formats}


def edgecnn_p50(path: str, args) -> dict:
    command = [
        sys.executable,
        "-m",
        "edgecnn",
        "benchmark",
        path,
        "--json",
        "--threads",
        str(args.threads),
        "--warmup",
        str(args.warmup),
        "--runs",
        str(args.runs),
        "--min-secs",
        str(args.min_secs),
        "--max-secs",
        str(args.max_secs),
    ]
    proc = subprocess.run(command, capture_output=True, text=True)
    (row,) = json.loads(proc.stdout)
    if row["status"] != "ok":
        raise SystemExit(f"edgecnn benchmark {path} failed: {row['error']}")
    lat = row["latency_ms"]
    return {
        "count": lat["count"],
        "p50": lat["p50"],
        "p90": lat["p90"],
        "mean": lat["mean"],
        "min": lat["min"],
        "runtime": f"{row['runtime']} {row['runtime_version']}",
    }


def bare_p50(path: str, fmt: str, args) -> dict:
    job = json.dumps([path, fmt, args.threads, args.warmup, args.runs, args.min_secs, args.max_secs, 0])
    proc = subprocess.run([sys.executable, "-c", BARE_LOOP, job], capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"bare loop on {path} failed: {proc.stderr.strip()[-500:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def spread(values: list[float]) -> float:
    return (max(values) - min(values)) / statistics.median(values)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--min-secs", type=float, default=2.0)
    parser.add_argument("--max-secs", type=float, default=60.0)
    parser.add_argument("--formats", default="tflite,onnx", help="tflite, onnx or both (comma-separated)")
    parser.add_argument(
        "--artifacts",
        type=Path,
        default=None,
        help="keep the exports here and reuse them on the next run (default: a temporary folder)",
    )
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    args = parser.parse_args(argv)
    formats = [f.strip() for f in args.formats.split(",") if f.strip()]
    if not formats or set(formats) - {"tflite", "onnx"}:
        parser.error(f"--formats takes tflite and/or onnx. Received {args.formats!r}")
    if args.repeats < 2:
        parser.error("--repeats must be at least 2")

    machine = machine_info()
    slug = machine_slug(machine)
    load_before = [round(x, 2) for x in os.getloadavg()]
    log(f"machine {slug}; load {load_before}")
    with tempfile.TemporaryDirectory(prefix="edgecnn-harness-overhead-") as tmp:
        folder = args.artifacts or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        artifacts = {label: export(label, export_args, folder, formats) for label, export_args in MODELS}
        results = {}
        for label, by_format in artifacts.items():
            for fmt, manifest in by_format.items():
                key = f"{label}-int8-{fmt}"
                rounds = []
                for i in range(args.repeats):
                    a = edgecnn_p50(manifest["path"], args)
                    b = bare_p50(manifest["path"], fmt, args)
                    rounds.append({"edgecnn": a, "bare": b, "ratio": round(a["p50"] / b["p50"], 4)})
                    log(
                        f"{key} round {i + 1}: edgecnn p50 {a['p50']:.4f} ms ({a['count']} runs), "
                        f"bare p50 {b['p50']:.4f} ms ({b['count']} runs), ratio {rounds[-1]['ratio']:.3f}"
                    )
                a_p50 = [r["edgecnn"]["p50"] for r in rounds]
                b_p50 = [r["bare"]["p50"] for r in rounds]
                results[key] = {
                    "artifact": Path(manifest["path"]).name,
                    "bytes": manifest["bytes"],
                    "sha256": manifest["sha256"],
                    "weights": manifest.get("weights"),
                    "runtime": rounds[0]["edgecnn"]["runtime"],
                    "edgecnn_p50_ms": round(statistics.median(a_p50), 4),
                    "bare_p50_ms": round(statistics.median(b_p50), 4),
                    "overhead_ratio": round(statistics.median(r["ratio"] for r in rounds), 4),
                    "edgecnn_p50_spread": round(spread(a_p50), 4),
                    "bare_p50_spread": round(spread(b_p50), 4),
                    "repeatable_within_5pct": spread(a_p50) <= REPEATABILITY_TARGET,
                    "rounds": rounds,
                }
    report = {
        "benchmark": "harness_overhead",
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": shlex.join([Path(sys.executable).name, *sys.argv]),
        "machine": machine,
        "machine_slug": slug,
        "host": describe_host(),
        "versions": tool_versions(),
        "load_average": {"before": load_before, "after": [round(x, 2) for x in os.getloadavg()]},
        "settings": {
            "threads": args.threads,
            "repeats": args.repeats,
            "warmup": args.warmup,
            "runs": args.runs,
            "min_secs": args.min_secs,
            "max_secs": args.max_secs,
            "inputs": "seeded random, set once",
        },
        "repeatability_target": REPEATABILITY_TARGET,
        "results": results,
    }
    target = args.out / slug / "harness_overhead.json"
    write_atomic(target, json.dumps(report, indent=2) + "\n")

    threads = f"{args.threads} thread{'' if args.threads == 1 else 's'}"
    print(
        f"harness overhead on {slug} ({threads}, {args.repeats} rounds, "
        f"load {report['load_average']['before']} -> {report['load_average']['after']})"
    )
    print(f"{'artifact':<32} {'edgecnn p50':>12} {'bare p50':>10} {'ratio':>7} {'spread':>8}  repeatable")
    for key, r in results.items():
        print(
            f"{key:<32} {r['edgecnn_p50_ms']:>9.4f} ms {r['bare_p50_ms']:>7.4f} ms {r['overhead_ratio']:>7.3f} "
            f"{r['edgecnn_p50_spread']:>7.1%}  {'yes' if r['repeatable_within_5pct'] else 'NO'}"
        )
    print(f"written to {target.relative_to(REPO) if target.is_relative_to(REPO) else target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
