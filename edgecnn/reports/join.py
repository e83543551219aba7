"""Join benchmark rows, evaluate rows and manifests into one row per measured configuration.

- **Facts** about an artifact are pooled by its sha256, read through the typed records
  (`edgecnn.records`): rows are joined to the manifest of the same sha256 (given as RESULTS,
  or found beside the artifact path a row names, when its sha256 matches) and its facts come
  first; only what no manifest says is taken from what benchmark rows copied (`model`,
  `quantization`, `weights`, `variant`), then from evaluate rows. A sha256 is one artifact
  wherever it was measured.
- **One row per configuration**: a benchmark row's key is sha256 + runtime + provider +
  threads + batch + host (architecture, CPU model, cores). A later line with the same key
  wins (a rerun). A failed row stays, with its reason, unless a later successful row
  about the same artifact and settings replaces it.
- **Accuracy** is the artifact's, not the configuration's: the evaluate row with the
  same sha256 (the latest one from the same runtime, else the latest) joins every
  configuration of that artifact. Evaluated artifacts that were never benchmarked, and
  manifests of artifacts never measured, get a row of their own.
- **Baseline**: each row's float parent is the row of the same model, input shape, alpha
  and classes, format, runtime, provider, threads, batch and host whose quantization is
  the baseline (float32 by default) without pruning, clustering or QAT; same weights
  preferred, then the latest. Size vs float, the top-1 change (percentage points, only
  when both were scored on the same data) and the speed-up (parent p50 / row p50) are
  relative to it, and None when there is no parent.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgecnn.errors import EdgecnnError
from edgecnn.records import BenchmarkRow, EvaluateRow, Manifest, Optimization
from edgecnn.reports.rows import Record

_FACT_KEYS = (
    "model",
    "quantization",
    "weights",
    "format",
    "bytes",
    "input_shape",
    "alpha",
    "classes",
    "optimization",
    "params",
    "artifact_name",
    "versions",
    "manifest_mismatch",
)


@dataclass
class Facts:
    """What is known about one artifact (one sha256), whoever said it."""

    sha256: str
    model: str | None = None
    quantization: str | None = None
    weights: str | None = None
    format: str | None = None
    bytes: int | None = None
    input_shape: tuple | None = None
    alpha: float | None = None
    classes: int | None = None
    optimization: dict | None = None
    params: int | None = None
    artifact_name: str | None = None
    versions: dict | None = None  # the tools that built it (manifest)
    manifest_mismatch: bool = False  # a benchmark found a manifest describing another build
    tuned: bool = False  # chosen by `edgecnn tune` (its manifest holds a tuning record)
    float_layers: tuple = ()  # layers tune kept in float

    def fill(self, **values: Any) -> None:
        """Set the fields still unknown; what was said first stays."""
        for key, value in values.items():
            if value is not None and getattr(self, key) in (None, False):
                setattr(self, key, value)

    @property
    def optimized(self) -> bool:
        opt = self.optimization or {}
        return bool(opt.get("sparsity") or opt.get("clusters") or opt.get("qat"))

    @property
    def input_key(self) -> tuple:
        return (self.input_shape, self.alpha, self.classes)


def variant_label(
    quantization: str | None, optimization: dict | None, *, tuned: bool = False, float_layers: int = 0
) -> str:
    """`int8`, `int8 QAT`, `pruned 50%`, `pruned 50% + int8 QAT`, `clustered 16 + int8`, and for a file
    `edgecnn tune` chose: `int8 tuned`, `int8 tuned, 3 layers float`.

    Float32 is left out of a label that already names an optimization (`pruned 50%` is a
    float32 model); an unknown quantization (a file without a manifest) is `?`.
    """
    opt = optimization or {}
    parts = []
    if opt.get("sparsity"):
        parts.append(f"pruned {100 * float(opt['sparsity']):.0f}%")
    if opt.get("clusters"):
        parts.append(f"clustered {int(opt['clusters'])}")
    quant = quantization or "?"
    if opt.get("qat"):
        parts.append(f"{quant} QAT")
    elif quant != "float32" or not parts:
        parts.append(quant)
    label = " + ".join(parts)
    if tuned:
        label += " tuned" + (f", {float_layers} layer{'s' if float_layers != 1 else ''} float" if float_layers else "")
    return label


def input_label(facts: Facts) -> str:
    parts = ["x".join(str(d) for d in facts.input_shape)] if facts.input_shape else []
    if facts.alpha is not None:
        parts.append(f"a{facts.alpha:g}")
    if facts.classes is not None:
        parts.append(f"{facts.classes} cl")
    return " ".join(parts)


def host_key(host: dict | None) -> tuple | None:
    """Which machine: architecture, CPU model and core count (hostnames of sandboxes are random)."""
    return (host.get("arch"), host.get("cpu"), host.get("cores")) if host else None


def host_label(host: dict | None) -> str:
    """`AMD EPYC (x86_64, 2 cores)`, `Raspberry Pi 4 Model B (aarch64, 4 cores)`."""
    if not host:
        return ""
    name = host.get("board") or host.get("cpu") or "?"
    return f"{name} ({host.get('arch')}, {host.get('cores')} cores)"


def data_key(evaluation: dict | None) -> tuple | None:
    if not evaluation:
        return None
    data = evaluation.get("data") or {}
    return (data.get("kind"), data.get("name"), evaluation.get("split"), evaluation.get("n"))


def data_label(evaluation: dict | None) -> str:
    if not evaluation:
        return ""
    data = evaluation.get("data") or {}
    name, split = data.get("name", "?"), evaluation.get("split")
    if split and not name.endswith(f"/{split}"):  # fashion-mnist's name already says `/test`
        name += f"/{split}"
    return f"{name} (n={evaluation.get('n')})"


@dataclass
class ComparedRow:
    """One measured configuration of one artifact, with its comparisons."""

    facts: Facts
    benchmark: dict | None = None  # the benchmark row (None: evaluated or manifest only)
    evaluation: dict | None = None  # the evaluate row joined to it
    order: int = 0
    parent: ComparedRow | None = field(default=None, repr=False)
    front: bool = False
    front_basis: tuple = ()
    notes: list = field(default_factory=list)

    # -- what the row is about
    @property
    def failed(self) -> bool:
        return bool(self.benchmark) and self.benchmark.get("status") != "ok"

    @property
    def error(self) -> str | None:
        return self.benchmark.get("error") if self.failed else None

    @property
    def measured(self) -> dict:
        """The row that says where it ran: the benchmark's, else the evaluation's."""
        return self.benchmark or self.evaluation or {}

    @property
    def model(self) -> str:
        return self.facts.model or self.facts.artifact_name or self.facts.sha256[:12]

    @property
    def group_model(self) -> str:
        """Rows of the same group_model and input compare; a file without a manifest is its own model."""
        return self.facts.model or f"file:{self.facts.sha256}"

    @property
    def variant(self) -> str:
        return variant_label(
            self.facts.quantization,
            self.facts.optimization,
            tuned=self.facts.tuned,
            float_layers=len(self.facts.float_layers),
        )

    @property
    def host(self) -> dict | None:
        return self.measured.get("host")

    @property
    def host_key(self) -> tuple | None:
        return host_key(self.host)

    @property
    def runtime(self) -> str | None:
        return self.measured.get("runtime")

    @property
    def provider(self) -> str | None:
        return (self.benchmark or {}).get("provider")

    @property
    def threads(self) -> int | None:
        return self.measured.get("threads")

    @property
    def batch(self) -> int:
        return (self.benchmark or {}).get("batch") or 1

    @property
    def config_key(self) -> tuple:
        """Rows with the same config_key and model/input compare with each other directly."""
        return (
            self.group_model,
            self.facts.input_key,
            self.facts.format,
            self.runtime,
            self.provider,
            self.threads,
            self.batch,
            self.host_key,
        )

    # -- the numbers
    @property
    def bytes(self) -> int | None:
        return self.facts.bytes

    def latency(self, key: str) -> float | None:
        if self.failed or not self.benchmark:
            return None
        return (self.benchmark.get("latency_ms") or {}).get(key)

    @property
    def p50(self) -> float | None:
        return self.latency("p50")

    @property
    def top1(self) -> float | None:
        return self.evaluation.get("top1") if self.evaluation else None

    @property
    def sparsity(self) -> float | None:
        return (self.facts.optimization or {}).get("sparsity")

    @property
    def size_vs_float(self) -> float | None:
        if self.parent is None or not self.bytes or not self.parent.bytes:
            return None
        return self.bytes / self.parent.bytes

    @property
    def top1_change(self) -> float | None:
        """Percentage points against the parent, when both were scored on the same data."""
        parent = self.parent
        if parent is None or self.top1 is None or parent.top1 is None:
            return None
        if data_key(self.evaluation) != data_key(parent.evaluation):
            return None
        return 100 * (self.top1 - parent.top1)

    @property
    def speedup(self) -> float | None:
        if self.parent is None or not self.p50 or not self.parent.p50:
            return None
        return self.parent.p50 / self.p50

    def to_dict(self) -> dict:
        """The JSON and CSV record: plain values, sizes in bytes and MB, top-1 as a fraction."""
        bench = self.benchmark or {}
        return {
            "front": self.front,
            "model": self.model,
            "input": input_label(self.facts),
            "variant": self.variant,
            "quantization": self.facts.quantization,
            "optimization": self.facts.optimization,
            "weights": self.facts.weights,
            "format": self.facts.format,
            "runtime": self.runtime,
            "runtime_version": self.measured.get("runtime_version"),
            "provider": self.provider,
            "threads": self.threads,
            "batch": self.batch if self.benchmark else None,
            "host": host_label(self.host),
            "remote": bench.get("remote"),
            "bytes": self.bytes,
            "size_mb": None if self.bytes is None else round(self.bytes / 1e6, 6),
            "size_vs_float": _round(self.size_vs_float, 4),
            "sparsity": self.sparsity,
            "top1": self.top1,
            "top5": self.evaluation.get("top5") if self.evaluation else None,
            "top1_change": _round(self.top1_change, 4),
            "data": data_label(self.evaluation) or None,
            "p50_ms": self.p50,
            "p90_ms": self.latency("p90"),
            "speedup": _round(self.speedup, 4),
            "status": "failed" if self.failed else ("ok" if self.benchmark else "not benchmarked"),
            "error": self.error,
            "front_basis": list(self.front_basis),
            "notes": list(self.notes),
            "sha256": self.facts.sha256,
            "artifact": bench.get("artifact") or (self.evaluation or {}).get("artifact"),
            "baseline_sha256": self.parent.facts.sha256 if self.parent else None,
        }


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


# -- facts ------------------------------------------------------------------------------


def _optimization(record) -> dict | None:
    return record.to_json() if record is not None else None


def _from_manifest(facts: Facts, manifest: Manifest) -> None:
    facts.fill(
        model=manifest.model,
        quantization=manifest.quantization,
        weights=manifest.weights,
        format=manifest.format,
        bytes=manifest.bytes,
        input_shape=manifest.input_shape,
        alpha=manifest.option.get("alpha"),
        classes=manifest.option.get("classes"),
        optimization=_optimization(manifest.optimization),
        params=manifest.params,
        artifact_name=manifest.artifact,
        versions=manifest.versions,
    )
    # The tuning record (`edgecnn tune`): which layers the chosen file keeps in float.
    tuning, float_layers = manifest.data.get("tuning"), manifest.data.get("float_layers")
    if isinstance(tuning, dict):
        facts.tuned = True
        if isinstance(float_layers, list) and all(isinstance(name, str) for name in float_layers):
            facts.float_layers = tuple(float_layers)


def _from_benchmark(facts: Facts, row: BenchmarkRow) -> None:
    """What a benchmark row copied from its manifest: only what no manifest of the same sha256 said."""
    variant = row.variant or {}
    shape = (variant.get("preprocess") or {}).get("input_shape")
    optimization = variant.get("optimization")
    facts.fill(
        model=row.model,
        quantization=row.quantization,
        weights=row.weights,
        format=row.format,
        bytes=row.bytes,
        input_shape=tuple(shape) if shape else None,
        alpha=variant.get("alpha"),
        classes=variant.get("classes"),
        optimization=_optimization(Optimization.from_json(optimization)) if optimization else None,
        params=variant.get("params"),
        artifact_name=row.artifact_name,
        manifest_mismatch=variant.get("manifest_sha256_matches") is False,
    )


def _from_evaluation(facts: Facts, row: EvaluateRow) -> None:
    # alpha and classes are export options, unknown here; the input shape is the model's own
    shape = (row.preprocess or {}).get("input_shape")
    facts.fill(
        model=row.model,
        quantization=row.quantization,
        format=row.format,
        input_shape=tuple(shape) if shape else None,
        artifact_name=row.artifact_name,
    )


def _manifest_beside(path: str, sha256: str) -> Manifest | None:
    """The manifest next to an artifact a row names, if the file is here and it is this build."""
    from edgecnn.manifest import manifest_for

    try:
        if not Path(path).is_file():
            return None
        manifest = manifest_for(path)
    except (EdgecnnError, OSError, ValueError):
        return None
    return manifest if manifest is not None and manifest.sha256 == sha256 else None


def manifests_by_sha256(records: list[Record]) -> dict[str, list[Manifest]]:
    """The manifests of each artifact the records are about, by sha256, latest first: those
    given as RESULTS, else the first one found beside an artifact path a row names whose
    sha256 matches."""
    manifests: dict[str, list[Manifest]] = {}
    for record in reversed(records):
        if record.kind == "manifest":
            manifests.setdefault(record.record.sha256, []).append(record.record)
    named: dict[str, list] = {}
    for record in records:
        sha = record.data.get("sha256")
        if record.kind != "manifest" and sha and record.data.get("artifact"):
            paths = named.setdefault(sha, [])
            if record.data["artifact"] not in paths:
                paths.append(record.data["artifact"])
    for sha, paths in named.items():
        if sha not in manifests:
            manifest = next(filter(None, (_manifest_beside(path, sha) for path in paths)), None)
            if manifest is not None:
                manifests[sha] = [manifest]
    return manifests


def collect_facts(records: list[Record]) -> dict[str, Facts]:
    """The facts of each sha256: its manifests' first (rows join manifests by sha256; a later
    manifest wins), then what the latest benchmark rows copied, then evaluate rows; a fact once
    known is not overwritten."""
    facts: dict[str, Facts] = {}

    def of(sha: str) -> Facts:
        return facts.setdefault(sha, Facts(sha256=sha))

    for sha, manifests in manifests_by_sha256(records).items():
        for manifest in manifests:
            _from_manifest(of(sha), manifest)
    for kind, fill in (("benchmark", _from_benchmark), ("evaluate", _from_evaluation)):
        for record in reversed([r for r in records if r.kind == kind]):
            if record.data.get("sha256"):
                fill(of(record.data["sha256"]), record.record)
    return facts


# -- the join -----------------------------------------------------------------------------


def _bench_key(row: dict) -> tuple:
    identity = row.get("sha256") or f"path:{row.get('artifact')}"
    return (
        identity,
        row.get("runtime"),
        row.get("provider"),
        row.get("threads"),
        row.get("batch") or 1,
        host_key(row.get("host")),
    )


def _replaces(ok: dict, failed: dict) -> bool:
    """A later successful run of the same artifact and settings replaces a failed one (whose
    runtime may still read `auto`, and whose host is unknown when it failed early)."""
    if failed.get("sha256"):
        same_file = ok.get("sha256") == failed["sha256"]
    else:
        same_file = ok.get("artifact") == failed.get("artifact")
    same_host = not failed.get("host") or host_key(failed["host"]) == host_key(ok.get("host"))
    return (
        same_file
        and same_host
        and failed.get("runtime") in ("auto", ok.get("runtime"))
        and failed.get("provider") in (None, ok.get("provider"))
        and failed.get("threads") == ok.get("threads")
        and (failed.get("batch") or 1) == (ok.get("batch") or 1)
    )


def _latest_benchmarks(records: list[Record]) -> list[Record]:
    latest: dict[tuple, Record] = {}
    for record in records:
        if record.kind == "benchmark":
            key = _bench_key(record.data)
            latest.pop(key, None)  # re-insert: the order is that of the latest line
            latest[key] = record
    kept = list(latest.values())
    oks = [r for r in kept if r.data["status"] == "ok"]
    return [
        r
        for r in kept
        if r.data["status"] == "ok" or not any(ok.order > r.order and _replaces(ok.data, r.data) for ok in oks)
    ]


def _pick_evaluation(evaluations: list[Record], runtime: str | None) -> Record | None:
    same = [r for r in evaluations if r.data.get("runtime") == runtime]
    return (same or evaluations or [None])[-1]


def join(records: list[Record], baseline: str = "float32") -> list[ComparedRow]:
    """One ComparedRow per configuration, parents set, notes written (fronts: see pareto)."""
    facts = collect_facts(records)
    evaluations: dict[str, list[Record]] = {}
    for record in records:
        if record.kind == "evaluate":
            evaluations.setdefault(record.data["sha256"], []).append(record)

    rows: list[ComparedRow] = []
    for record in _latest_benchmarks(records):
        bench = record.data
        sha = bench.get("sha256")
        fact = facts.get(sha) if sha else None
        if fact is None:  # failed before the file could be read: only its name is known
            fact = Facts(
                sha256=sha or "",
                artifact_name=bench.get("artifact_name") or bench.get("artifact"),
                model=bench.get("model"),
                quantization=bench.get("quantization"),
                format=bench.get("format"),
            )
        evaluation = _pick_evaluation(evaluations.get(sha, []), bench.get("runtime")) if sha else None
        rows.append(ComparedRow(fact, bench, evaluation.data if evaluation else None, record.order))
    for sha, evals in evaluations.items():
        if not any(r.facts.sha256 == sha for r in rows):
            rows.append(ComparedRow(facts[sha], None, evals[-1].data, evals[-1].order))
    for record in records:
        sha = record.data["sha256"]
        if record.kind == "manifest" and not any(r.facts.sha256 == sha for r in rows):
            rows.append(ComparedRow(facts[sha], None, None, record.order))

    _set_parents(rows, baseline)
    for row in rows:
        _write_notes(row, baseline)
    return rows


def _set_parents(rows: list[ComparedRow], baseline: str) -> None:
    parents: dict[tuple, list[ComparedRow]] = {}
    for row in rows:
        if not row.failed and row.facts.model and row.facts.quantization == baseline and not row.facts.optimized:
            parents.setdefault(row.config_key, []).append(row)
    for row in rows:
        candidates = parents.get(row.config_key)
        if candidates:
            row.parent = max(candidates, key=lambda p: (p.facts.weights == row.facts.weights, p.order))


def _write_notes(row: ComparedRow, baseline: str) -> None:
    notes = row.notes
    if row.failed:
        notes.append(f"failed: {row.error}")
    if row.facts.weights == "random":
        notes.append("weights: random")
    if row.facts.manifest_mismatch:
        notes.append("manifest describes another build")
    if row.batch != 1:
        notes.append(f"batch {row.batch}: latency per batch")
    if row.parent is None and row.facts.model and not row.failed:
        if row.facts.quantization != baseline or row.facts.optimized:
            notes.append(f"no {baseline} parent measured alike")
    elif row.parent is not None and row.top1 is not None and row.parent.top1 is not None and row.top1_change is None:
        notes.append(f"top-1 on other data than the {baseline} parent")
    if row.evaluation and row.benchmark and row.evaluation.get("runtime") != row.runtime:
        notes.append(f"top-1 from {row.evaluation.get('runtime')}")
    host = row.host or {}
    if host.get("throttled") not in (None, "0x0"):
        notes.append(f"throttled {host['throttled']}")
    if row.benchmark and row.benchmark.get("remote"):
        notes.append(f"on {row.benchmark['remote']}")
