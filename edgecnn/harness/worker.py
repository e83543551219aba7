"""`python -m edgecnn.harness.worker JOB_JSON`: measure one artifact, in a process of its own.

The parent (`edgecnn.harness.benchmark_artifact`) reads this process's stdout: one JSON
line per phase (`{"phase": "load"}`...), so that a crash can say where it happened,
then `{"result": {...}}`, the measured fields of the row. File descriptor 1 is
pointed at stderr before anything else runs, so a runtime that prints to stdout
cannot garble that channel; stderr (LiteRT's XNNPACK notice, tracebacks) is captured
by the parent and only its last line is shown, as the reason of a failure.

No TensorFlow unless the job asks for the `tf` runtime.
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
from collections import Counter


def _one_line(text: str) -> str:
    return " ".join(str(text).split())[:400]


def _channel():
    """A private copy of the original stdout for the messages; fd 1 now goes to stderr."""
    sys.stdout.flush()
    fd = os.dup(1)
    os.dup2(2, 1)
    return os.fdopen(fd, "w", buffering=1)


def measure(job: dict, phase) -> dict:
    """The measured fields of a row, for the artifact and settings of `job`."""
    from edgecnn.errors import EdgecnnError
    from edgecnn.harness.measure import latency_stats, make_feeds, peak_rss_mb, time_invokes

    settings = job["settings"]
    batch = int(settings.get("batch") or 1)
    phase("load")
    from edgecnn.runtime import open_session

    start = time.perf_counter()
    session = open_session(
        job["path"],
        runtime=settings.get("runtime") or "auto",
        threads=settings.get("threads"),
        provider=settings.get("provider"),
        trust_model=bool(settings.get("trust_model")),
    )
    init_s = time.perf_counter() - start

    phase("inputs")
    preprocess = job.get("manifest_preprocess") or None
    if settings.get("preprocess"):
        preprocess = {**(preprocess or {}), "mode": settings["preprocess"]}
    feeds, input_records = make_feeds(
        session.inputs,
        batch=batch,
        data=settings.get("data"),
        preprocess=preprocess,
        samples=int(settings.get("samples") or 16),
        seed=int(settings.get("seed") or 0),
        manifest_inputs=job.get("manifest_inputs"),
        quantization={"scale": settings.get("input_scale"), "zero_point": settings.get("input_zero_point")},
    )

    try:
        timing = time_invokes(
            session,
            feeds,
            warmup=int(settings["warmup"]),
            runs=int(settings["runs"]),
            min_secs=float(settings["min_secs"]),
            max_secs=float(settings["max_secs"]),
            warmup_secs=float(settings.get("warmup_secs") or 0.0),
            phase=phase,
        )
    except (EdgecnnError, MemoryError):
        raise
    except Exception as exc:  # runtimes raise their own types (ORT's Fail, RuntimeError, ValueError)
        reason = _one_line(str(exc)) or type(exc).__name__
        shapes = ", ".join(str(tuple(r["shape"])) for r in input_records)
        if batch != 1:
            raise EdgecnnError(f"batch {batch} does not fit this model (fed {shapes}): {reason}") from None
        raise EdgecnnError(f"inference failed (fed {shapes}): {reason}") from None
    rss = peak_rss_mb()  # before listing ops: that opens a second interpreter

    phase("ops")
    warnings = []
    try:
        ops = session.op_types()
    except Exception as exc:  # noqa: BLE001: the measurement stands without the op list
        ops = []
        warnings.append(f"could not list the {session.format.upper()} ops: {_one_line(str(exc))}")

    phase("host")
    from edgecnn.host import describe_host

    counts = Counter(ops)
    if getattr(session, "provider", None) and settings.get("provider") not in (None, session.provider):
        warnings.append(f"asked for provider {settings['provider']}, ONNX Runtime ran {session.provider}")
    return {
        "status": "ok",
        "error": None,
        "runtime": session.runtime,
        "runtime_version": session.runtime_version,
        "provider": getattr(session, "provider", None),
        "threads": settings.get("threads"),
        "batch": batch,
        "inputs": input_records,
        "latency_ms": latency_stats(timing.times_s),
        "init_ms": round(init_s * 1e3, 3),
        "first_ms": round(timing.first_s * 1e3, 4),
        "warmup_ms": round(sum(timing.warmup_s) / len(timing.warmup_s) * 1e3, 4) if timing.warmup_s else None,
        "warmup_runs": len(timing.warmup_s),
        "loop_secs": round(timing.loop_s, 4),
        "stopped_by": timing.stopped_by,
        "peak_rss_mb": rss,
        "ops": sorted(counts),
        "op_counts": dict(sorted(counts.items())),
        "host": describe_host(),
        "warnings": warnings,
    }


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    channel = _channel()

    def phase(name: str) -> None:
        channel.write(json.dumps({"phase": name}) + "\n")
        channel.flush()

    phase("start")
    code = 0
    try:
        job = json.loads(argv[0])
        result = measure(job, phase)
    except Exception as exc:  # noqa: BLE001: every failure becomes the row's one-line reason
        from edgecnn.errors import EdgecnnError

        if isinstance(exc, EdgecnnError):
            reason = _one_line(str(exc))
        else:
            traceback.print_exc()  # captured by the parent; shown with EDGECNN_DEBUG=1
            reason = _one_line(f"{type(exc).__name__}: {exc}")
        result = {"status": "failed", "error": reason or type(exc).__name__}
        code = 1
    channel.write(json.dumps({"result": result}, default=str) + "\n")
    channel.flush()
    return code


if __name__ == "__main__":
    sys.exit(main())
