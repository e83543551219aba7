"""Result rows: one JSON object per line, appended to a .jsonl file.

`edgecnn benchmark --out` and `edgecnn evaluate --out` write them; `edgecnn compare`
reads them and joins rows about the same artifact by its sha256. Every row has a
`schema` ("edgecnn.benchmark/1", "edgecnn.evaluate/1") so a reader can refuse rows
from another tool or a newer edgecnn.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from pathlib import Path

from edgecnn.errors import EdgecnnError

BENCHMARK_SCHEMA = "edgecnn.benchmark/1"
EVALUATE_SCHEMA = "edgecnn.evaluate/1"


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def check_writable(path) -> Path:
    """`path` when rows can be appended to it: not a folder, and its folder (or the nearest one
    that exists, the rest being made on writing) is a folder this process may write in.
    EdgecnnError (one line) otherwise, so that a run is refused before it measures anything."""
    path = Path(path)
    where = f"cannot write results to {path}"
    if path.is_dir():
        raise EdgecnnError(f"{where}: it is a folder; give a .jsonl file")
    if path.exists():
        if not path.is_file():
            raise EdgecnnError(f"{where}: not a regular file")
        if not os.access(path, os.W_OK):
            raise EdgecnnError(f"{where}: permission denied")
        return path
    parent = path.absolute().parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise EdgecnnError(f"{where}: {parent} is not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise EdgecnnError(f"{where}: {parent} is not writable")
    return path


def append_rows(path, rows) -> Path:
    """Append rows as JSON lines. Each line is written whole, flushed and synced, so an
    interrupted run never leaves half a line behind."""
    path = Path(path)
    try:
        if path.parent != Path(""):
            path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a", encoding="utf-8") as handle:
            for row in rows:
                handle.write(json.dumps(row, default=str) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as exc:
        raise EdgecnnError(f"cannot write results to {path}: {exc.strerror or exc}") from None
    return path


# -- checking what a reader is given ---------------------------------------------------
#
# A spec maps a field path to the JSON types it may hold (None is always allowed unless the
# field is in `required`): "a.b" is the field b of the object at a, "a[]" each item of the
# list at a, "a{}" each value of the object at a. Parents come before their children, so a
# child is only looked at inside a parent of the right type.

_TYPE_NAMES = {"str": "a string", "int": "an integer", "number": "a number", "bool": "true or false",
               "dict": "an object", "list": "a list"}


def _is(value, kind: str) -> bool:
    if kind == "str":
        return isinstance(value, str)
    if kind == "bool":
        return isinstance(value, bool)
    if isinstance(value, bool):  # JSON true is not a number
        return False
    if kind == "int":
        return isinstance(value, int)
    if kind == "number":
        return isinstance(value, (int, float))
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
                wanted = " or ".join(_TYPE_NAMES[k] for k in kinds)
                raise EdgecnnError(f"{where}: `{location}` is {json_kind(value)}, not {wanted}")
    return data


_HOST_FIELDS = {"host": "dict", "host.hostname": "str", "host.cpu": "str", "host.cores": "int",
                "host.arch": "str", "host.os": "str", "host.board": "str", "host.governor": "str",
                "host.cpu_mhz": "number", "host.temperatures_c": "dict", "host.temperatures_c{}": "number",
                "host.throttled": "str"}

# The fields of benchmark rows that `edgecnn compare` and `edgecnn benchmark` read.
BENCHMARK_FIELDS = {
    "status": "str", "error": "str", "artifact": "str", "artifact_name": "str", "sha256": "str",
    "bytes": "int", "format": "str", "model": "str", "quantization": "str", "weights": "str",
    "variant": "dict", "variant.source": "str", "variant.params": "int", "variant.input_size": "int",
    "variant.alpha": "number", "variant.classes": "int", "variant.optimization": "dict",
    "variant.optimization.sparsity": "number", "variant.optimization.clusters": "int",
    "variant.optimization.qat": "bool", "variant.preprocess": "dict", "variant.preprocess.mode": "str",
    "variant.preprocess.input_shape": "list", "variant.preprocess.input_shape[]": "int",
    "variant.manifest_sha256_matches": "bool",
    "runtime": "str", "runtime_version": "str", "provider": "str", "threads": "int", "batch": "int",
    "settings": "dict", "inputs": "list", "inputs[]": "dict",
    "latency_ms": "dict", "latency_ms{}": "number", "init_ms": "number", "first_ms": "number",
    "warmup_ms": "number", "loop_secs": "number", "peak_rss_mb": "number", "remote": "str",
    "warnings": "list", "warnings[]": "str", **_HOST_FIELDS,
}

# The fields of evaluate rows that `edgecnn compare` reads.
EVALUATE_FIELDS = {
    "artifact": "str", "artifact_name": "str", "sha256": "str", "format": "str", "model": "str",
    "quantization": "str", "data": "dict", "data.kind": "str", "data.name": "str", "split": "str",
    "n": "int", "top1": "number", "top5": "number", "classes": "int",
    "preprocess": "dict", "preprocess.mode": "str", "preprocess.input_shape": "list",
    "preprocess.input_shape[]": "int", "runtime": "str", "runtime_version": "str", "threads": "int",
    "batch_size": "int", "warnings": "list", "warnings[]": "str", **_HOST_FIELDS,
}
