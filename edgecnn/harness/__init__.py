"""Benchmark artifacts the TFLite `benchmark_model` way, each in its own subprocess.

    from edgecnn.harness import BenchmarkSettings, benchmark_many
    rows = benchmark_many(["a.tflite", "b.onnx"], BenchmarkSettings(threads=2, runs=100))

Each artifact is opened and timed by `python -m edgecnn.harness.worker` in a child
process: a runtime that crashes on a corrupt file (a bad flatbuffer can take the
process down) becomes a failed row with the reason, and the other artifacts go on.
The parent reads the file's bytes, sha256 and manifest itself, so a failed row still
says which artifact it was about.

Every row is one JSON-ready dict with the same keys (`ROW_KEYS`), `status` "ok" or
"failed" and `error` a single line or None; `edgecnn compare` joins rows by `sha256`.
TensorFlow-free: this runs on a Raspberry Pi with only `pip install edgecnn`.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Iterable, Sequence

from edgecnn.errors import BadArgument, EdgecnnError
from edgecnn.records import BENCHMARK_SCHEMA, BenchmarkRow, Manifest

__all__ = [
    "BenchmarkSettings",
    "PROVIDERS",
    "ROW_KEYS",
    "RUNTIMES",
    "benchmark_artifact",
    "benchmark_many",
    "failed_row",
]

RUNTIMES = ("auto", "litert", "tflite-runtime", "tf", "onnxruntime")
PROVIDERS = ("cpu", "cuda", "tensorrt")
# .keras/.h5: the Keras float model as a reference (TensorFlow, GPU when present).
FORMATS = {".tflite": "tflite", ".onnx": "onnx", ".keras": "keras", ".h5": "keras"}

# Seconds a worker may take beyond --max-secs (start-up, loading, warm-up, op listing).
WORKER_MARGIN_S = 120.0

# (option, lowest, highest) of the integer settings; the highest keep a typo from asking for
# a thousand million threads or a seed numpy refuses.
INTEGER_RANGES = (
    ("threads", 1, 1024),
    ("warmup", 0, 10**9),
    ("runs", 1, 10**9),
    ("batch", 1, 1 << 20),
    ("samples", 1, 1 << 20),
    ("seed", 0, 2**32 - 1),
)
# The longest --max-secs, --min-secs or --warmup-secs: a day.
MAX_SECONDS = 86400.0


def check_integer(option: str, value, low: int, high: int) -> int:
    """`value` when it is an integer in [low, high]; BadArgument naming `option` otherwise."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise BadArgument(f"{option} must be an integer from {low} to {high:,}. Received {value}")
    return value


def check_seconds(option: str, value, low: float = 0.0, *, strictly: bool = False, high: float = MAX_SECONDS) -> float:
    """`value` when it is a finite number of seconds above `low` (or at least `low`) and at most
    `high`; BadArgument naming `option` otherwise (inf and nan included)."""
    ok = (
        not isinstance(value, bool)
        and isinstance(value, (int, float))
        and math.isfinite(value)
        and (value > low if strictly else value >= low)
        and value <= high
    )
    if not ok:
        bound = f"more than {low:g}" if strictly else f"at least {low:g}"
        raise BadArgument(f"{option} must be a number of seconds, {bound} and at most {high:g}. Received {value}")
    return float(value)


# --data values that name a source rather than a path (see calibration.open_source).
_DATA_KEYWORDS = frozenset({"default", "random", "fashion-mnist", "fashionmnist"})

# Every row has these keys, in this order (None where unknown): the typed record's.
ROW_KEYS = BenchmarkRow.keys()

# The start of the warning a row gets when the manifest.json beside its file is broken.
MANIFEST_IGNORED = "manifest ignored"

# What the manifest says about the variant, copied as it is (absent keys are left out).
_VARIANT_KEYS = (
    "source",
    "params",
    "input_size",
    "alpha",
    "classes",
    "io",
    "calib",
    "calibration_method",
    "optimization",
    "preprocess",
    "manifest_sha256_matches",
)


@dataclass(frozen=True)
class BenchmarkSettings:
    """How to measure. Defaults are `benchmark_model`'s: warm-up of at least 1 run and 0.5 s,
    then at least 50 runs and 1 s, at most 150 s."""

    runtime: str = "auto"
    threads: int | None = None  # None: the runtime's own default
    provider: str | None = None  # ONNX Runtime only: cpu, cuda, tensorrt
    warmup: int = 1
    warmup_secs: float = 0.5  # and at least this many seconds of warm-up (benchmark_model's warmup_min_secs)
    runs: int = 50
    min_secs: float = 1.0
    max_secs: float = 150.0
    batch: int = 1
    data: str | None = None  # a calibration source (folder, .npz, default...) or an .npy of input tensors
    preprocess: str | None = None  # None: the manifest's mode (needed with image --data)
    samples: int = 16  # images read from --data
    seed: int = 0  # random inputs and the --data sample
    input_scale: float | None = None  # how an integer input holds --data's real values, where the
    input_zero_point: int | None = None  # model does not say (real = scale * (q - zero_point))
    trust_model: bool = False  # a Keras reference skips the model gate (`--trust-model`)

    def check(self, *, local_data: bool = True) -> BenchmarkSettings:
        """Raise BadArgument (exit code 2) for settings that cannot work; return self.

        `local_data=False` (remote runs) lets --data name a path that exists only there."""
        if self.runtime not in RUNTIMES:
            raise BadArgument(f"unknown runtime `{self.runtime}`; use one of {', '.join(RUNTIMES)}")
        if self.provider is not None and self.provider not in PROVIDERS:
            raise BadArgument(f"unknown provider `{self.provider}`; use one of {', '.join(PROVIDERS)}")
        if self.provider not in (None, "cpu") and self.runtime not in ("auto", "onnxruntime"):
            raise BadArgument(
                f"--provider {self.provider} is an ONNX Runtime provider; it does not apply to --runtime {self.runtime}"
            )
        for name, low, high in INTEGER_RANGES:
            value = getattr(self, name)
            if value is None and name == "threads":
                continue
            check_integer(f"--{name}", value, low, high)
        for name, value, low in (("--min-secs", self.min_secs, 0.0), ("--warmup-secs", self.warmup_secs, 0.0)):
            check_seconds(name, value, low)
        check_seconds("--max-secs", self.max_secs, 0.0, strictly=True)
        if self.max_secs < self.min_secs:
            raise BadArgument(f"--max-secs ({self.max_secs}) must be at least --min-secs ({self.min_secs})")
        if self.input_zero_point is not None and self.input_scale is None:
            raise BadArgument("--input-zero-point needs --input-scale")
        if self.input_scale is not None:
            if self.data is None:
                raise BadArgument("--input-scale applies to --data (random inputs are made in the input's own type)")
            if not (
                isinstance(self.input_scale, (int, float))
                and not isinstance(self.input_scale, bool)
                and math.isfinite(self.input_scale)
                and self.input_scale > 0
            ):
                raise BadArgument(f"--input-scale must be a finite number above 0. Received {self.input_scale}")
            if self.input_zero_point is not None:
                check_integer("--input-zero-point", self.input_zero_point, -32768, 65535)
        if self.data is not None and local_data:
            keyword = str(self.data).split(":", 1)[0].strip().lower().replace("_", "-")
            if keyword not in _DATA_KEYWORDS and not Path(self.data).expanduser().exists():
                raise BadArgument(
                    f"--data {self.data}: no such file or folder (nor one of "
                    f"{', '.join(sorted(_DATA_KEYWORDS - {'fashionmnist'}))})"
                )
        if self.preprocess is not None:
            from calibration.preprocessing import check_mode

            check_mode(self.preprocess)
        return self

    def to_dict(self) -> dict:
        return asdict(self)

    def recorded(self) -> dict:
        """The `settings` of a row: what shapes the measurement besides runtime/threads/batch."""
        return {
            "warmup": self.warmup,
            "warmup_secs": self.warmup_secs,
            "runs": self.runs,
            "min_secs": self.min_secs,
            "max_secs": self.max_secs,
            "data": self.data,
            "preprocess": self.preprocess,
            "samples": self.samples if self.data else None,
            "seed": self.seed,
            "input_scale": self.input_scale,
            "input_zero_point": self.input_zero_point,
        }


def _one_line(text: str, limit: int = 400) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


def now_iso() -> str:
    from edgecnn.results import now_iso as _now

    return _now()


def empty_row(artifact, settings: BenchmarkSettings) -> dict:
    """A row with every key (the BenchmarkRow record's), nothing measured yet; filled in as a
    dict by the worker's report."""
    path = Path(artifact)
    return BenchmarkRow(
        schema=BENCHMARK_SCHEMA,
        status="ok",
        artifact=str(artifact),
        artifact_name=path.name,
        format=FORMATS.get(path.suffix.lower()),
        runtime=settings.runtime,
        provider=settings.provider,
        threads=settings.threads,
        batch=settings.batch,
        settings=settings.recorded(),
        warnings=(),
        created=now_iso(),
    ).to_json()


def failed_row(row: dict, reason: str) -> dict:
    row.update(status="failed", error=_one_line(reason))
    return row


def check_row(row: dict, where: str) -> dict:
    """`row` when it is a benchmark row as `edgecnn compare` reads it (`BenchmarkRow.from_json`:
    its schema, status and every field's type); else EdgecnnError, one line naming `where` and
    the first wrong field. Rows are checked here, where they are made, so that a bad one is
    refused when it is written and not skipped when it is read."""
    BenchmarkRow.from_json(row, where)
    return row


def _measured_row(row: dict, result: dict, name: str) -> dict:
    """`row` with the worker's measurements; a failed row (the reason: the first wrong field)
    when they do not make a benchmark row."""
    measured = {**row, **{k: v for k, v in result.items() if k in ROW_KEYS and k != "warnings"}}
    measured["warnings"] = row["warnings"] + list(result.get("warnings") or [])
    try:
        check_row(measured, f"the measurement of {name}")
    except EdgecnnError as exc:
        return failed_row(row, str(exc))
    return add_host_warnings(measured)


def resolve_artifact(path) -> Path:
    """A model file; a folder written by `edgecnn export` stands for the artifact its manifest
    names (benchmark, evaluate and remote runs all resolve folders here)."""
    path = Path(path)
    if path.is_dir():
        from edgecnn.manifest import artifact_in_folder

        return artifact_in_folder(path)
    if not path.exists():
        raise EdgecnnError(f"no such file: {path}")
    if not path.is_file():
        raise EdgecnnError(f"{path} is not a regular file")
    return path


def describe_artifact(artifact, settings: BenchmarkSettings) -> tuple[dict, dict | None]:
    """(row with the file's facts and the manifest's, manifest or None). Never raises for a
    bad artifact: the row comes back failed with the reason."""
    from edgecnn.manifest import manifest_for, sha256_of

    row = empty_row(artifact, settings)
    try:
        path = resolve_artifact(artifact)
    except EdgecnnError as exc:
        return failed_row(row, str(exc)), None
    row["artifact"], row["artifact_name"] = str(path), path.name
    try:
        row["bytes"] = path.stat().st_size
        row["sha256"] = sha256_of(path)
        with open(path, "rb") as handle:
            head = handle.read(8)
    except OSError as exc:
        return failed_row(row, f"cannot read {path}: {exc.strerror or exc}"), None
    fmt = FORMATS.get(path.suffix.lower())
    row["format"] = fmt
    if fmt is None:
        return failed_row(
            row, f"{path.name} is not a model file: expected .tflite, .onnx, or .keras/.h5 for the float reference"
        ), None
    if fmt == "tflite" and head[4:8] != b"TFL3":
        reason = "the file is empty" if not head else "no TFL3 flatbuffer identifier"
        return failed_row(row, f"{path.name} is not a TFLite model ({reason})"), None
    if fmt == "keras" and not settings.trust_model:
        from edgecnn.model_gate import check_model_file

        try:  # here, before a worker starts TensorFlow: a refused file costs one row
            check_model_file(path)
        except EdgecnnError as exc:
            return failed_row(row, str(exc)), None
    try:
        manifest = manifest_for(path)
    except EdgecnnError as exc:  # a broken manifest costs its facts, not the measurement
        row["warnings"].append(f"{MANIFEST_IGNORED}: {_one_line(str(exc))}; measured as a third-party model")
        manifest = None
    if manifest is not None:
        row.update(manifest_facts(manifest, row["sha256"]))
        if not row["variant"]["manifest_sha256_matches"]:
            row["warnings"].append(
                "the file's sha256 differs from its manifest's: the manifest describes another build"
            )
    return row, (manifest.data if manifest is not None else None)


def manifest_facts(manifest: Manifest, sha256: str | None) -> dict:
    """The manifest's facts a row copies (`model`, `quantization`, `weights`, `variant`), for
    readers of a single results file; `edgecnn compare` joins rows to the manifest of the same
    sha256 instead, and prefers its facts to these copies."""
    variant = {
        "source": manifest.source,
        "params": manifest.params,
        "input_size": manifest.option.get("input_size"),
        "alpha": manifest.option.get("alpha"),
        "classes": manifest.option.get("classes"),
        "io": manifest.option.get("io"),
        "calib": manifest.option.get("calib"),
        "calibration_method": manifest.calibration_method,
        "optimization": manifest.optimization.to_json() if manifest.optimization is not None else None,
        "preprocess": manifest.preprocess,
        "manifest_sha256_matches": manifest.sha256 == sha256,
    }
    return {
        "model": manifest.model,
        "quantization": manifest.quantization,
        "weights": manifest.weights,
        "variant": {k: variant[k] for k in _VARIANT_KEYS},
    }


def host_warnings(host: dict | None) -> list[str]:
    """What makes the figures of this host doubtful: a throttled Raspberry Pi."""
    from edgecnn.host import throttling_warning

    message = throttling_warning((host or {}).get("throttled"))
    return [message] if message else []


def add_host_warnings(row: dict) -> dict:
    """`host_warnings` of the row's host, added to its `warnings` (once)."""
    warnings = list(row.get("warnings") or [])
    row["warnings"] = warnings + [w for w in host_warnings(row.get("host")) if w not in warnings]
    return row


# -- the worker subprocess -------------------------------------------------------------


def worker_command(job: dict) -> list[str]:
    """The child process that measures one artifact (tests swap it for a crashing one)."""
    return [sys.executable, "-m", "edgecnn.harness.worker", json.dumps(job)]


_PHASES = {
    "start": "while starting",
    "load": "while loading the model",
    "inputs": "while preparing the inputs",
    "first": "during the first inference",
    "warmup": "during warm-up",
    "loop": "during the timed runs",
    "ops": "while listing the ops",
    "host": "while describing the host",
}

# Lines a runtime prints on stderr that say nothing about a failure.
_NOISE = ("INFO: Created TensorFlow Lite XNNPACK delegate", "INFO: Initialized TensorFlow Lite runtime")


def _last_line(stderr: str) -> str:
    for line in reversed(stderr.splitlines()):
        line = line.strip()
        if line and not line.startswith(_NOISE):
            return _one_line(line, 300)
    return ""


def interpret_worker(returncode: int, stdout: str, stderr: str) -> tuple[dict | None, str | None]:
    """(measurements, None) from a worker that reported, or (None, one-line reason)."""
    phase, result = "start", None
    for line in stdout.splitlines():
        try:
            message = json.loads(line)
        except ValueError:
            continue
        if isinstance(message, dict):
            phase = message.get("phase", phase)
            if "result" in message:
                result = message["result"]
    if isinstance(result, dict):
        if result.get("status") == "failed":
            return None, result.get("error") or "failed without a reason"
        if returncode == 0:
            return result, None
    where = _PHASES.get(phase, f"during {phase}")
    last = _last_line(stderr)
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        hint = "; out of memory?" if -returncode == signal.SIGKILL else ""
        reason = f"runtime crashed ({name}, signal {-returncode}{hint}) {where}"
    else:
        reason = f"benchmark worker exited with code {returncode} {where}"
    return None, f"{reason}: {last}" if last else reason


def _run_worker(job: dict, timeout: float) -> tuple[dict | None, str | None, str]:
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env["PYTHONUNBUFFERED"] = "1"
    try:
        proc = subprocess.run(
            worker_command(job),
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
            stdin=subprocess.DEVNULL,
            errors="replace",
        )
    except subprocess.TimeoutExpired:
        return (
            None,
            f"timed out after {timeout:.0f} s (--max-secs {job['settings']['max_secs']:g} plus "
            f"{WORKER_MARGIN_S:.0f} s for loading and warm-up)",
            "",
        )
    except OSError as exc:
        return None, f"cannot start the benchmark worker: {exc.strerror or exc}", ""
    result, reason = interpret_worker(proc.returncode, proc.stdout, proc.stderr)
    return result, reason, proc.stderr


def worker_limit(settings: BenchmarkSettings) -> float:
    """Seconds one worker may take: the timed runs, the warm-up, and loading."""
    return settings.max_secs + WORKER_MARGIN_S + 10 * settings.warmup + min(settings.warmup_secs, settings.max_secs)


def benchmark_artifact(artifact, settings: BenchmarkSettings | None = None, *, timeout: float | None = None) -> dict:
    """Measure one artifact in a child process; always returns a row (failed with a reason
    rather than raising), except for settings that cannot work (BadArgument)."""
    settings = (settings or BenchmarkSettings()).check()
    row, manifest = describe_artifact(artifact, settings)
    if row["status"] == "failed":
        return check_row(row, f"the benchmark row of {row['artifact_name']}")
    path = resolve_artifact(artifact)
    job = {
        "path": str(path.resolve()),
        "settings": settings.to_dict(),
        "manifest_preprocess": (manifest or {}).get("preprocess"),
        "manifest_inputs": (manifest or {}).get("inputs"),
    }
    limit = timeout if timeout is not None else worker_limit(settings)
    result, reason, stderr = _run_worker(job, limit)
    if result is None:
        failed_row(row, reason)
    else:
        row = _measured_row(row, result, path.name)
    if os.environ.get("EDGECNN_DEBUG") and stderr:
        sys.stderr.write(stderr)
    row["created"] = now_iso()
    return check_row(row, f"the benchmark row of {path.name}")


def benchmark_many(
    artifacts: Sequence,
    settings: BenchmarkSettings | None = None,
    *,
    progress: Callable[[int, int, str], None] | None = None,
    timeout: float | None = None,
) -> list[dict]:
    """One row per artifact, measured one after another (never in parallel: they would
    compete for the cores)."""
    settings = (settings or BenchmarkSettings()).check()
    rows = []
    artifacts = list(artifacts)
    for index, artifact in enumerate(artifacts):
        if progress is not None:
            progress(index, len(artifacts), str(artifact))
        rows.append(benchmark_artifact(artifact, settings, timeout=timeout))
    return rows


def failed_count(rows: Iterable[dict]) -> int:
    return sum(1 for row in rows if row.get("status") != "ok")
