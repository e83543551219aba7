"""Time per op, and where each op runs.

ONNX Runtime: its own profiler (`SessionOptions.enable_profiling`) writes one event per node
run, with the node's op type and execution provider; we run the benchmark's warm-up (at least
one run and 0.5 s), then time `runs` runs and average each node over them.

LiteRT (ai-edge-litert 2.3): the Python package exposes no per-op timings. The Interpreter's
`experimental_force_delegate_node_profiling` only switches on profiling for a C++ profiler that
Python cannot install or read, and `CompiledModel` has no profiling call (its wrapper offers
Run, buffers and signatures only; the `profiling_info_pb2` message ships without an API that
fills it). `benchmark_model --enable_op_profiling=true` (a C++ binary, not in the wheel) is the
tool for that; inspect says so instead of inventing numbers.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from edgecnn.errors import EdgecnnError

LITERT_NO_PROFILER = (
    "LiteRT's Python package has no per-op profiler read-out (Interpreter: none; "
    "CompiledModel: no profiling call in ai-edge-litert 2.3): run TFLite's "
    "benchmark_model --enable_op_profiling=true for per-op times"
)


def _feeds(session, data: np.ndarray | None):
    from edgecnn.harness.measure import make_feeds

    if data is not None:
        from edgecnn.runtime.tensors import quantize

        (info,) = session.inputs
        return [quantize(data[:1], info)]
    feeds, _ = make_feeds(session.inputs, batch=1)
    return feeds[0] if feeds and isinstance(feeds[0], list) else feeds


def ort_profile(
    path: Path,
    *,
    threads: int | None = None,
    runs: int = 50,
    warmup: int = 1,
    warmup_secs: float = 0.5,
    data: np.ndarray | None = None,
) -> dict:
    """Per-node mean time (ms) over `runs` runs after the warm-up, with op type and provider.

    Returns {"nodes": [{"name", "op_type", "provider", "ms"}], "runs", "total_ms" (per run, summed
    over nodes), "model_run_p50_ms" (ORT's own per-run span), "providers": {provider: nodes}}."""
    import onnxruntime as ort

    from edgecnn.runtime.onnx import OnnxSession

    probe = OnnxSession(path, threads=threads)  # the benchmark's session: checks the file, gives inputs
    with tempfile.TemporaryDirectory(prefix="edgecnn-profile-") as tmp:
        options = ort.SessionOptions()
        options.enable_profiling = True
        options.profile_file_prefix = str(Path(tmp) / "ort")
        options.log_severity_level = 3
        if threads:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        session = ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
        feeds = _feeds(probe, data)
        if not isinstance(feeds, list):
            feeds = [feeds]
        feed = {info.name: np.asarray(array) for info, array in zip(probe.inputs, feeds)}
        del probe
        started, count = time.perf_counter(), 0
        while count < max(warmup, 1) or time.perf_counter() - started < warmup_secs:
            session.run(None, feed)
            count += 1
        for _ in range(runs):
            session.run(None, feed)
        profile_file = session.end_profiling()
        events = json.loads(Path(profile_file).read_text())
    run_starts = sorted(e["ts"] for e in events if e.get("cat") == "Session" and e.get("name") == "model_run")
    run_spans = sorted(e["dur"] for e in events if e.get("cat") == "Session" and e.get("name") == "model_run")
    if len(run_starts) < count + runs:
        raise EdgecnnError("ONNX Runtime's profile has fewer runs than were made; per-op times not read")
    measured_from = run_starts[count]
    measured_spans = sorted(
        e["dur"]
        for e in events
        if e.get("cat") == "Session" and e.get("name") == "model_run" and e["ts"] >= measured_from
    )
    per_node: dict[str, dict] = {}
    totals: dict[str, float] = defaultdict(float)
    for event in events:
        if event.get("cat") != "Node" or not event.get("name", "").endswith("_kernel_time"):
            continue
        if event["ts"] < measured_from:
            continue
        name = event["name"][: -len("_kernel_time")]
        args = event.get("args", {})
        node = per_node.setdefault(
            name,
            {
                "name": name,
                "op_type": args.get("op_name", "?"),
                "provider": args.get("provider", "?").removesuffix("ExecutionProvider"),
                "ms": 0.0,
            },
        )
        totals[name] += event["dur"] / 1e3
    for name, node in per_node.items():
        node["ms"] = round(totals[name] / runs, 5)
    nodes = list(per_node.values())
    providers: dict[str, int] = defaultdict(int)
    for node in nodes:
        providers[node["provider"]] += 1
    del run_spans
    return {
        "nodes": nodes,
        "runs": runs,
        "warmup_runs": count,
        "total_ms": round(sum(n["ms"] for n in nodes), 4),
        "model_run_p50_ms": round(float(np.median(measured_spans)) / 1e3, 4) if measured_spans else None,
        "providers": dict(providers),
    }


def by_op_type(nodes: list[dict]) -> list[dict]:
    rows: dict[str, dict] = {}
    total = sum(n["ms"] for n in nodes) or 1.0
    for node in nodes:
        row = rows.setdefault(node["op_type"], {"op_type": node["op_type"], "nodes": 0, "ms": 0.0})
        row["nodes"] += 1
        row["ms"] += node["ms"]
    for row in rows.values():
        row["ms"] = round(row["ms"], 4)
        row["share"] = round(row["ms"] / total, 4)
    return sorted(rows.values(), key=lambda r: -r["ms"])


def harness_p50(path: Path, *, threads: int | None) -> dict:
    """The benchmark's p50 for the same file and threads (its own process, benchmark_model's method)."""
    from edgecnn.harness import BenchmarkSettings, benchmark_artifact

    row = benchmark_artifact(path, BenchmarkSettings(threads=threads))
    if row.get("status") != "ok":
        raise EdgecnnError(f"the benchmark of {Path(path).name} failed: {row.get('error')}")
    return {
        "p50_ms": row["latency_ms"]["p50"],
        "runs": row["latency_ms"].get("count"),
        "runtime": row.get("runtime"),
        "runtime_version": row.get("runtime_version"),
    }
