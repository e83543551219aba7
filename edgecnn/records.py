"""Typed, versioned records: what one stage hands the next, as frozen dataclasses.

    Manifest      manifest.json beside an artifact (`edgecnn export`, `edgecnn tune`)
    Sidecar       NAME.edgecnn.json beside a trained model (`edgecnn train`, prune, cluster)
    BenchmarkRow  one line of `edgecnn benchmark --out`
    EvaluateRow   one line of `edgecnn evaluate --out`
    Optimization  (sparsity, clusters, qat): the sub-record a manifest, a sidecar and a
                  benchmark row's `variant` share; `Optimization.NONE` is "not optimized"
    GraphFacts    a manifest's `graph`: the artifact's op census and whether it is integer-only

Each record has its `SCHEMA` (`edgecnn.<kind>/<version>`), `from_json(data, where)`, which
checks the shape and refuses a wrong one with one EdgecnnError line naming `where` and the
first wrong field, and `to_json()`, which gives the JSON object back (`from_json(r.to_json())
== r`). Keys a record does not type are kept in `extra` and written back as they came, so
readers of older and newer files lose nothing. Files written before (every schema `/1`) load.

Base layer: imports nothing from edgecnn but `edgecnn.errors`, and no TensorFlow.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

from edgecnn.errors import EdgecnnError

MANIFEST_SCHEMA = "edgecnn.manifest/1"
SIDECAR_SCHEMA = "edgecnn.trained/1"
BENCHMARK_SCHEMA = "edgecnn.benchmark/1"
EVALUATE_SCHEMA = "edgecnn.evaluate/1"
MANIFEST_NAME = "manifest.json"


# -- field checks ----------------------------------------------------------------------
#
# A spec maps a field path to the JSON types it may hold (None is always allowed unless the
# field is in `required`): "a.b" is the field b of the object at a, "a[]" each item of the
# list at a, "a{}" each value of the object at a. Parents come before their children, so a
# child is only looked at inside a parent of the right type.

_TYPE_NAMES = {
    "str": "a string",
    "int": "an integer",
    "number": "a number",
    "bool": "true or false",
    "dict": "an object",
    "list": "a list",
}


def _is(value, kind: str) -> bool:
    if kind == "str":
        return isinstance(value, str)
    if kind == "bool":
        return isinstance(value, bool)
    if isinstance(value, bool):  # JSON true is not a number
        return False
    if kind == "int":
        return isinstance(value, int)
    if kind == "number":  # NaN and Infinity parse from JSON but are no measurement: top-1 `inf%`
        return isinstance(value, int) or (isinstance(value, float) and math.isfinite(value))
    if kind == "dict":
        return isinstance(value, dict)
    if kind == "list":
        return isinstance(value, list)
    raise ValueError(f"unknown field type {kind!r}")


def json_kind(value) -> str:
    """`a string`, `a list`... as a reader would say what it found."""
    if value is None:
        return "null"
    for kind in ("bool", "int", "number", "str", "dict", "list"):
        if _is(value, kind):
            return _TYPE_NAMES[kind]
    return type(value).__name__


def _values_at(data, path: str):
    """(location, value) of every value at `path` in `data`; nothing where a parent is absent."""
    found = [("", data)]
    for part in path.split("."):
        each = part.endswith(("[]", "{}"))
        name = part[:-2] if each else part
        step = []
        for location, value in found:
            if not isinstance(value, dict) or value.get(name) is None:
                continue
            child, where = value[name], f"{location}.{name}" if location else name
            if not each:
                step.append((where, child))
            elif part.endswith("[]") and isinstance(child, list):
                step.extend((f"{where}[{i}]", item) for i, item in enumerate(child))
            elif part.endswith("{}") and isinstance(child, dict):
                step.extend((f"{where}.{key}", item) for key, item in child.items())
        found = step
    return found


def check_fields(data, spec: dict, where: str, required: tuple = ()) -> dict:
    """`data` when it is an object whose fields have the types `spec` gives; else EdgecnnError,
    one line naming `where` and the first field that is wrong."""
    if not isinstance(data, dict):
        raise EdgecnnError(f"{where}: {json_kind(data)}, not a JSON object")
    for name in required:
        if data.get(name) is None:
            raise EdgecnnError(f"{where}: no `{name}`")
    for path, kinds in spec.items():
        kinds = (kinds,) if isinstance(kinds, str) else kinds
        for location, value in _values_at(data, path):
            if value is not None and not any(_is(value, kind) for kind in kinds):
                if isinstance(value, float) and not math.isfinite(value):
                    raise EdgecnnError(f"{where}: `{location}` {value!r} is not a finite number")
                wanted = " or ".join(_TYPE_NAMES[k] for k in kinds)
                raise EdgecnnError(f"{where}: `{location}` is {json_kind(value)}, not {wanted}")
    return data


def _nested(prefix: str, spec: dict) -> dict:
    """`spec` for the object at `prefix` (`variant.optimization`...)."""
    return {f"{prefix}.{path}": kinds for path, kinds in spec.items()}


def schema_version(
    schema,
    where: str,
    family: str = MANIFEST_SCHEMA.rsplit("/", 1)[0],
    newest: str = MANIFEST_SCHEMA,
    noun: str = "an edgecnn manifest",
) -> int:
    """The version number of `family/N`; EdgecnnError (one line) for another family, a version
    that is not a number, or one newer than this edgecnn reads."""
    name, _, number = str(schema).rpartition("/")
    if not isinstance(schema, str) or name != family:
        raise EdgecnnError(f"{where} is not {noun} (schema {schema!r}; expected {newest})")
    if not (number.isascii() and number.isdigit()):  # no sign, no space, no `1.0`, no `²`
        raise EdgecnnError(f"{where} has schema {schema!r}: its version is not a number (expected {newest})")
    if int(number) > int(newest.rsplit("/", 1)[1]):
        raise EdgecnnError(f"{where} has schema {schema}, newer than this edgecnn reads ({newest}): upgrade edgecnn")
    return int(number)


def row_schema_version(schema, where: str, newest: str) -> int:
    """The version of a result row's `schema` (of `newest`'s family, checked before); one line
    for a version that is not a number or is newer than this edgecnn reads."""
    name, _, version = str(schema).rpartition("/")
    if not (version.isascii() and version.isdigit()):  # int() refuses `²`
        raise EdgecnnError(f"{where}: unreadable schema version {schema!r}")
    if int(version) > int(newest.rsplit("/", 1)[1]):
        raise EdgecnnError(
            f"{where}: schema {schema} is newer than this edgecnn reads "
            f"({name}/{newest.rsplit('/', 1)[1]}): upgrade edgecnn"
        )
    return int(version)


# -- the specs -------------------------------------------------------------------------

OPTIMIZATION_FIELDS = {"sparsity": "number", "clusters": "int", "qat": "bool"}

# A manifest's `graph` (edgecnn.runtime.graph_facts): the op census of the file and, for TFLite,
# whether it is integer-only and which ops break that.
GRAPH_FIELDS = {
    "ops": "int",
    "op_counts": "dict",
    "op_counts{}": "int",
    "conversions": "dict",
    "conversions{}": "int",
    "integer_only": "bool",
    "float_ops": "list",
    "float_ops[]": "str",
    "conversions_inside": "list",
    "conversions_inside[]": "str",
}

# The preprocessing modes a manifest may name: calibration.PREPROCESS_MODES, written here so that
# the base layer imports no building block (tests/test_records.py keeps the two equal).
PREPROCESS_MODES = ("tf", "caffe", "torch", "unit", "raw")

# The fields every reader of a manifest uses (benchmark, evaluate, compare), with their JSON
# types (None is allowed where a field is not required).
MANIFEST_FIELDS = {
    "schema": "str",
    "artifact": "str",
    "sha256": "str",
    "model": "str",
    "source": "str",
    "format": "str",
    "quantization": "str",
    "weights": "str",
    "params": "int",
    "bytes": "int",
    "options": "dict",
    "options.input_size": "int",
    "options.alpha": "number",
    "options.classes": "int",
    "options.io": "str",
    "options.calib": "str",
    "optimization": "dict",
    **_nested("optimization", OPTIMIZATION_FIELDS),
    "inputs": "list",
    "inputs[]": "dict",
    "inputs[].name": "str",
    "inputs[].shape": "list",
    "inputs[].shape[]": "int",
    "inputs[].dtype": "str",
    "inputs[].scale": "number",
    "inputs[].zero_point": "int",
    "outputs": "list",
    "outputs[]": "dict",
    "outputs[].name": "str",
    "outputs[].shape": "list",
    "outputs[].shape[]": "int",
    "outputs[].dtype": "str",
    "outputs[].scale": "number",
    "outputs[].zero_point": "int",
    "preprocess": "dict",
    "preprocess.mode": "str",
    "preprocess.input_shape": "list",
    "preprocess.input_shape[]": "int",
    "preprocess.crop_fraction": "number",
    "preprocess.color": "str",
    "graph": "dict",
    **_nested("graph", GRAPH_FIELDS),
    "calibration": "dict",
    "calibration.source": "dict",
    "calibration_method": "str",
    "versions": "dict",
    "versions{}": "str",
    "warnings": "list",
    "warnings[]": "str",
}
MANIFEST_REQUIRED = ("schema", "artifact", "sha256")

_HOST_FIELDS = {
    "host": "dict",
    "host.hostname": "str",
    "host.cpu": "str",
    "host.cores": "int",
    "host.arch": "str",
    "host.os": "str",
    "host.board": "str",
    "host.governor": "str",
    "host.cpu_mhz": "number",
    "host.temperatures_c": "dict",
    "host.temperatures_c{}": "number",
    "host.throttled": "str",
}

# The fields of benchmark rows that `edgecnn compare` and `edgecnn benchmark` read.
BENCHMARK_FIELDS = {
    "status": "str",
    "error": "str",
    "artifact": "str",
    "artifact_name": "str",
    "sha256": "str",
    "bytes": "int",
    "format": "str",
    "model": "str",
    "quantization": "str",
    "weights": "str",
    "variant": "dict",
    "variant.source": "str",
    "variant.params": "int",
    "variant.input_size": "int",
    "variant.alpha": "number",
    "variant.classes": "int",
    "variant.optimization": "dict",
    **_nested("variant.optimization", OPTIMIZATION_FIELDS),
    "variant.preprocess": "dict",
    "variant.preprocess.mode": "str",
    "variant.preprocess.input_shape": "list",
    "variant.preprocess.input_shape[]": "int",
    "variant.manifest_sha256_matches": "bool",
    "runtime": "str",
    "runtime_version": "str",
    "provider": "str",
    "threads": "int",
    "batch": "int",
    "settings": "dict",
    "inputs": "list",
    "inputs[]": "dict",
    "latency_ms": "dict",
    "latency_ms{}": "number",
    "init_ms": "number",
    "first_ms": "number",
    "warmup_ms": "number",
    "loop_secs": "number",
    "peak_rss_mb": "number",
    "remote": "str",
    "warnings": "list",
    "warnings[]": "str",
    **_HOST_FIELDS,
}

# The fields of evaluate rows that `edgecnn compare` reads.
EVALUATE_FIELDS = {
    "artifact": "str",
    "artifact_name": "str",
    "sha256": "str",
    "format": "str",
    "model": "str",
    "quantization": "str",
    "data": "dict",
    "data.kind": "str",
    "data.name": "str",
    "split": "str",
    "n": "int",
    "top1": "number",
    "top5": "number",
    "classes": "int",
    "preprocess": "dict",
    "preprocess.mode": "str",
    "preprocess.input_shape": "list",
    "preprocess.input_shape[]": "int",
    "runtime": "str",
    "runtime_version": "str",
    "threads": "int",
    "batch_size": "int",
    "warnings": "list",
    "warnings[]": "str",
    **_HOST_FIELDS,
}

# The fields of a sidecar that `export`, `train`, `prune`, `cluster` and `tune` read.
SIDECAR_FIELDS = {
    "schema": "str",
    "model": "str",
    "preprocess": "str",
    "class_names": "list",
    "optimization": "dict",
    **_nested("optimization", OPTIMIZATION_FIELDS),
}


# -- records -----------------------------------------------------------------------------


class _Record:
    """What every record shares: typed fields in JSON order, `extra` for the keys it does not
    type. Subclasses are frozen dataclasses whose fields are the typed keys (then `extra`)."""

    SCHEMA: ClassVar[str] = ""
    _SUB: ClassVar[dict] = {}  # key -> the record class of that sub-object
    _OMIT_NONE: ClassVar[tuple] = ()  # keys left out of to_json() when None (written only when known)
    _NOT_JSON: ClassVar[tuple] = ("extra", "data")

    @classmethod
    def keys(cls) -> tuple[str, ...]:
        """The typed JSON keys, in the order they are written."""
        return tuple(f.name for f in fields(cls) if f.name not in cls._NOT_JSON)

    @classmethod
    def check(cls, data, where: str) -> dict:  # overridden: the record's own checks
        raise NotImplementedError

    @classmethod
    def _build(cls, source: dict, **more) -> Any:
        keys = cls.keys()
        values = {}
        for key in keys:
            value = source.get(key)
            sub = cls._SUB.get(key)
            if sub is not None and value is not None:
                value = sub.from_json(value)
            elif isinstance(value, list) and key in cls._TUPLES:
                value = tuple(value)
            values[key] = value
        return cls(**values, extra={k: v for k, v in source.items() if k not in keys}, **more)

    @classmethod
    def from_json(cls, data, where: str = "record"):
        """The record, when `data` has its shape; EdgecnnError (one line naming `where`) otherwise."""
        return cls._build(cls.check(data, where))

    _TUPLES: ClassVar[tuple] = ()  # list-valued keys held as tuples (a frozen record's lists)

    def to_json(self) -> dict:
        out = {}
        for key in self.keys():
            value = getattr(self, key)
            if value is None and key in self._OMIT_NONE:
                continue
            if hasattr(value, "to_json"):
                value = value.to_json()
            elif isinstance(value, tuple):
                value = list(value)
            out[key] = value
        out.update(self.extra)
        return out


@dataclass(frozen=True)
class Optimization(_Record):
    """What was done to the weights before conversion: pruning to `sparsity`, clustering to
    `clusters` centroids, quantization-aware training. Extra keys (`preserve`) are kept."""

    NONE: ClassVar[Optimization]

    sparsity: float | None = None
    clusters: int | None = None
    qat: bool | None = False
    extra: dict = field(default_factory=dict, hash=False)

    @classmethod
    def check(cls, data, where: str = "optimization") -> dict:
        return check_fields(data, OPTIMIZATION_FIELDS, where)

    @classmethod
    def from_json(cls, data, where: str = "optimization") -> Optimization:
        """None (no record of any optimization) is NONE."""
        return cls.NONE if data is None else cls._build(cls.check(data, where))

    @property
    def optimized(self) -> bool:
        return bool(self.sparsity or self.clusters or self.qat)

    def with_(self, **changes) -> Optimization:
        """A copy with `changes` (sparsity, clusters, qat, or extra keys)."""
        typed = {k: changes.pop(k) for k in list(changes) if k in self.keys()}
        return Optimization(**{**{k: getattr(self, k) for k in self.keys()}, **typed}, extra={**self.extra, **changes})


Optimization.NONE = Optimization()


@dataclass(frozen=True)
class GraphFacts(_Record):
    """The op census of an artifact's graph (`ops`, `op_counts`, the (de)quantize `conversions`)
    and `integer_only`: true for a TFLite graph that computes in integers only (`float_ops` and
    `conversions_inside` name what breaks it), None for ONNX (ONNX Runtime decides at load time)."""

    _OMIT_NONE: ClassVar[tuple] = ("float_ops", "conversions_inside")  # TFLite's only
    _TUPLES: ClassVar[tuple] = ("float_ops", "conversions_inside")

    ops: int | None = None
    op_counts: dict | None = None
    conversions: dict | None = None
    integer_only: bool | None = None
    float_ops: tuple | None = None
    conversions_inside: tuple | None = None
    extra: dict = field(default_factory=dict, hash=False)

    @classmethod
    def check(cls, data, where: str = "graph") -> dict:
        return check_fields(data, GRAPH_FIELDS, where)


def _check_manifest_values(data: dict, where: str) -> None:
    """The values readers act on, in range: a preprocessing mode that exists, a crop in (0, 1],
    positive input sizes, finite non-negative scales."""
    pre = data.get("preprocess") or {}
    mode = pre.get("mode")
    if mode is not None and mode.strip().lower() not in PREPROCESS_MODES:
        raise EdgecnnError(f"{where}: `preprocess.mode` {mode!r} is not one of {', '.join(PREPROCESS_MODES)}")
    crop = pre.get("crop_fraction")
    if crop is not None and not 0.0 < crop <= 1.0:
        raise EdgecnnError(f"{where}: `preprocess.crop_fraction` {crop!r} is not in (0, 1]")
    if any(d is not None and d <= 0 for d in pre.get("input_shape") or ()):
        raise EdgecnnError(f"{where}: `preprocess.input_shape` {pre['input_shape']} has a size below 1")
    for group in ("inputs", "outputs"):
        for i, tensor in enumerate(data.get(group) or ()):
            tensor = tensor or {}
            if any(d is not None and d < -1 for d in tensor.get("shape") or ()):
                raise EdgecnnError(f"{where}: `{group}[{i}].shape` {tensor['shape']} has a negative size")
            scale = tensor.get("scale")
            if scale is not None and not (math.isfinite(scale) and scale >= 0):
                raise EdgecnnError(f"{where}: `{group}[{i}].scale` {scale!r} is not a finite number >= 0")


def check_manifest(data, where: str = MANIFEST_NAME) -> dict:
    """`data` when it is a manifest this edgecnn reads, every field a reader uses of the right
    type; EdgecnnError with one line naming `where` and what is wrong otherwise."""
    if not isinstance(data, dict):
        raise EdgecnnError(f"{where} is not an edgecnn manifest ({json_kind(data)}, not a JSON object)")
    if "schema" not in data:
        raise EdgecnnError(f"{where} is not an edgecnn manifest (no `schema`; expected {MANIFEST_SCHEMA})")
    schema_version(data["schema"], where)
    check_fields(data, MANIFEST_FIELDS, where, required=MANIFEST_REQUIRED)
    _check_manifest_values(data, where)
    return data


@dataclass(frozen=True)
class Manifest(_Record):
    """manifest.json: the single truth about one artifact (its sha256), read by every later stage.

    The typed fields are those readers use; the rest (`parity`, `labels`, `export_stages`...)
    stays in `extra`. `data` is the object it was read from (readers that still want a dict).
    """

    SCHEMA: ClassVar[str] = MANIFEST_SCHEMA
    _SUB: ClassVar[dict] = {"optimization": Optimization, "graph": GraphFacts}
    _TUPLES: ClassVar[tuple] = ("inputs", "outputs", "warnings")
    _OMIT_NONE: ClassVar[tuple] = ("graph",)  # manifests written before the census lack it
    # The order `edgecnn export` writes the keys in (typed or not); others follow as they came.
    KEY_ORDER: ClassVar[tuple] = (
        "schema",
        "model",
        "source",
        "options",
        "format",
        "quantization",
        "optimization",
        "qat",
        "weights",
        "params",
        "artifact",
        "bytes",
        "float32_weight_bytes",
        "sha256",
        "inputs",
        "outputs",
        "graph",
        "preprocess",
        "labels",
        "calibration",
        "calibration_method",
        "quantization_settings",
        "parity",
        "export_seconds",
        "export_stages",
        "created",
        "versions",
        "warnings",
    )

    schema: str
    artifact: str
    sha256: str
    model: str | None = None
    source: str | None = None
    format: str | None = None
    quantization: str | None = None
    weights: str | None = None
    params: int | None = None
    bytes: int | None = None
    options: dict | None = None
    optimization: Optimization | None = None
    inputs: tuple | None = None
    outputs: tuple | None = None
    preprocess: dict | None = None
    calibration: dict | None = None
    calibration_method: str | None = None
    versions: dict | None = None
    warnings: tuple | None = None
    graph: GraphFacts | None = None
    extra: dict = field(default_factory=dict, hash=False)
    data: dict = field(default_factory=dict, repr=False, compare=False, hash=False)

    @classmethod
    def check(cls, data, where: str = MANIFEST_NAME) -> dict:
        return check_manifest(data, where)

    def to_json(self) -> dict:
        """The JSON object, its keys in `KEY_ORDER` (then any others in the order they came)."""
        out = super().to_json()
        ordered = {key: out.pop(key) for key in self.KEY_ORDER if key in out}
        return {**ordered, **out}

    @classmethod
    def from_json(cls, data, where: str = MANIFEST_NAME) -> Manifest:
        return cls._build(check_manifest(data, where), data=data)

    @property
    def version(self) -> int:
        return int(self.schema.rsplit("/", 1)[1])

    @property
    def option(self) -> dict:
        """`options`, {} where the manifest has none."""
        return self.options or {}

    @property
    def input_shape(self) -> tuple | None:
        """The model's input (H, W, C), from `preprocess.input_shape`."""
        shape = (self.preprocess or {}).get("input_shape")
        return tuple(shape) if shape else None


@dataclass(frozen=True)
class Sidecar(_Record):
    """NAME.edgecnn.json beside a trained model: what it was trained as and on. As untrusted as
    the model: a JSON object whose read fields have their types, or one error. Sidecars older
    than the `schema` key load; another schema, or a newer version, is refused. `data` is the
    object it was read from."""

    SCHEMA: ClassVar[str] = SIDECAR_SCHEMA
    _SUB: ClassVar[dict] = {"optimization": Optimization}
    _TUPLES: ClassVar[tuple] = ("class_names",)

    schema: str | None = SIDECAR_SCHEMA
    model: str | None = None
    preprocess: str | None = None
    class_names: tuple | None = None
    optimization: Optimization | None = None
    extra: dict = field(default_factory=dict, hash=False)
    data: dict = field(default_factory=dict, repr=False, compare=False, hash=False)

    @classmethod
    def check(cls, data, where: str = "sidecar") -> dict:
        if not isinstance(data, dict):
            raise EdgecnnError(f"{where} is not an edgecnn sidecar: a JSON object is expected, not {json_kind(data)}")
        if data.get("schema") is not None:
            schema_version(
                data["schema"], where, SIDECAR_SCHEMA.rsplit("/", 1)[0], SIDECAR_SCHEMA, "an edgecnn sidecar"
            )
        return check_fields(data, SIDECAR_FIELDS, where)

    @classmethod
    def from_json(cls, data, where: str = "sidecar") -> Sidecar:
        """The record; `data` keeps the object as it was read (keys it lacked stay absent there)."""
        return cls._build(cls.check(data, where), data=data)


def _check_row(data, where: str, schema: str, spec: dict) -> dict:
    if not isinstance(data, dict):
        raise EdgecnnError(f"{where}: not an edgecnn result row (a JSON {json_kind(data)}, not an object)")
    family = schema.rsplit("/", 1)[0]
    found = data.get("schema")
    if not isinstance(found, str) or found.rpartition("/")[0] != family:
        raise EdgecnnError(
            f"{where}: not an edgecnn {family.rsplit('.', 1)[1]} row (schema {found!r}; expected {schema})"
        )
    row_schema_version(found, where, schema)
    return check_fields(data, spec, where)


@dataclass(frozen=True)
class BenchmarkRow(_Record):
    """One measurement of one artifact (its sha256) on one runtime, thread count, batch and host.

    The manifest's facts are copied into `model`, `quantization`, `weights` and `variant` for
    readers of single files; `edgecnn compare` takes them from the manifest of the same sha256
    when it has one.
    """

    SCHEMA: ClassVar[str] = BENCHMARK_SCHEMA
    _TUPLES: ClassVar[tuple] = ("inputs", "ops", "warnings")

    schema: str = BENCHMARK_SCHEMA
    status: str = "ok"
    error: str | None = None
    artifact: str | None = None
    artifact_name: str | None = None
    sha256: str | None = None
    bytes: int | None = None
    format: str | None = None
    model: str | None = None
    quantization: str | None = None
    weights: str | None = None
    variant: dict | None = None
    runtime: str | None = None
    runtime_version: str | None = None
    provider: str | None = None
    threads: int | None = None
    batch: int | None = None
    settings: dict | None = None
    inputs: tuple | None = None
    latency_ms: dict | None = None
    init_ms: float | None = None
    first_ms: float | None = None
    warmup_ms: float | None = None
    warmup_runs: int | None = None
    loop_secs: float | None = None
    stopped_by: str | None = None
    peak_rss_mb: float | None = None
    ops: tuple | None = None
    op_counts: dict | None = None
    host: dict | None = None
    remote: str | None = None
    warnings: tuple | None = None
    created: str | None = None
    extra: dict = field(default_factory=dict, hash=False)

    @classmethod
    def check(cls, data, where: str = "benchmark row") -> dict:
        _check_row(data, where, BENCHMARK_SCHEMA, BENCHMARK_FIELDS)
        if data.get("status") not in ("ok", "failed"):
            raise EdgecnnError(f"{where}: benchmark row with status {data.get('status')!r} (expected ok or failed)")
        if data["status"] == "ok" and not (data.get("sha256") and isinstance(data.get("latency_ms"), dict)):
            raise EdgecnnError(f"{where}: benchmark row marked ok without `sha256` and `latency_ms`")
        if not (data.get("sha256") or data.get("artifact")):
            raise EdgecnnError(f"{where}: benchmark row names no artifact (no `sha256`, no `artifact`)")
        return data

    @classmethod
    def from_json(cls, data, where: str = "benchmark row") -> BenchmarkRow:
        return cls._build(cls.check(data, where))

    @property
    def ok(self) -> bool:
        return self.status == "ok"


@dataclass(frozen=True)
class EvaluateRow(_Record):
    """The accuracy of one artifact (its sha256) on one data set, as one runtime computed it."""

    SCHEMA: ClassVar[str] = EVALUATE_SCHEMA
    _OMIT_NONE: ClassVar[tuple] = ("skipped", "warnings")
    _TUPLES: ClassVar[tuple] = ("warnings",)

    schema: str = EVALUATE_SCHEMA
    artifact: str | None = None
    artifact_name: str | None = None
    sha256: str | None = None
    format: str | None = None
    model: str | None = None
    quantization: str | None = None
    data: dict | None = None
    split: str | None = None
    n: int | None = None
    top1: float | None = None
    top5: float | None = None
    correct: dict | None = None
    top5_k: int | None = None
    classes: int | None = None
    background_class_dropped: bool | None = None
    preprocess: dict | None = None
    input: dict | None = None
    input_quantization: Any = None
    runtime: str | None = None
    runtime_version: str | None = None
    threads: int | None = None
    batch_size: int | None = None
    seconds: float | None = None
    inference_seconds: float | None = None
    host: dict | None = None
    created: str | None = None
    skipped: Any = None
    warnings: tuple | None = None
    extra: dict = field(default_factory=dict, hash=False)

    _NOT_JSON: ClassVar[tuple] = ("extra",)  # `data` is the data set here, a JSON key

    @classmethod
    def check(cls, data, where: str = "evaluate row") -> dict:
        _check_row(data, where, EVALUATE_SCHEMA, EVALUATE_FIELDS)
        if not data.get("sha256") or data.get("top1") is None or not data.get("n"):
            raise EdgecnnError(f"{where}: evaluate row without `sha256`, `top1` and `n`")
        for key in ("top1", "top5"):  # fractions of the images: 7.5 printed as a top-1 of 750.00%
            if data.get(key) is not None and not 0 <= data[key] <= 1:
                raise EdgecnnError(f"{where}: `{key}` {data[key]!r} is not a fraction in [0, 1]")
        return data

    @classmethod
    def from_json(cls, data, where: str = "evaluate row") -> EvaluateRow:
        return cls._build(cls.check(data, where))


# Result rows by schema family: what `edgecnn compare` reads.
ROW_RECORDS = {record.SCHEMA.rsplit("/", 1)[0]: record for record in (BenchmarkRow, EvaluateRow, Manifest)}
