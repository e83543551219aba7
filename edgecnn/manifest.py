"""manifest.json: the single truth about an artifact, read by every later stage.

Written next to each artifact by `edgecnn export`; read by benchmark, evaluate and
compare. TensorFlow-free. The schema is versioned: readers refuse a newer one.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import tempfile
from importlib.metadata import PackageNotFoundError, version
from dataclasses import dataclass, field
from pathlib import Path

from edgecnn.errors import EdgecnnError

SCHEMA = "edgecnn.manifest/1"
MANIFEST_NAME = "manifest.json"

# Distributions whose versions go into every manifest (those not installed are left out).
TOOL_DISTRIBUTIONS = (
    "edgecnn", "tensorflow", "tf-keras", "tensorflow-model-optimization", "tf2onnx", "onnx",
    "onnxruntime", "onnxconverter-common", "ai-edge-litert", "numpy",
)


def sha256_of(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def tool_versions() -> dict:
    versions = {"python": platform.python_version()}
    for name in TOOL_DISTRIBUTIONS:
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            pass
    return versions


def manifest_path_for(artifact) -> Path:
    return Path(artifact).with_name(MANIFEST_NAME)


def write_manifest(directory, manifest: dict) -> Path:
    """Write manifest.json atomically (temporary file, then rename)."""
    target = Path(directory) / MANIFEST_NAME
    text = json.dumps(manifest, indent=2, sort_keys=False) + "\n"
    handle, tmp = tempfile.mkstemp(prefix=".manifest-", suffix=".tmp", dir=directory)
    with os.fdopen(handle, "w") as out:
        out.write(text)
    os.chmod(tmp, 0o644)  # mkstemp makes it private; a manifest is meant to be read
    os.replace(tmp, target)
    return target


# The fields every reader of a manifest uses (benchmark, evaluate, compare), with their JSON
# types (see edgecnn.results.check_fields; None is allowed where a field is not required).
MANIFEST_FIELDS = {
    "schema": "str", "artifact": "str", "sha256": "str", "model": "str", "source": "str",
    "format": "str", "quantization": "str", "weights": "str", "params": "int", "bytes": "int",
    "options": "dict", "options.input_size": "int", "options.alpha": "number", "options.classes": "int",
    "options.io": "str", "options.calib": "str",
    "optimization": "dict", "optimization.sparsity": "number", "optimization.clusters": "int",
    "optimization.qat": "bool",
    "inputs": "list", "inputs[]": "dict", "inputs[].name": "str", "inputs[].shape": "list",
    "inputs[].shape[]": "int", "inputs[].dtype": "str", "inputs[].scale": "number",
    "inputs[].zero_point": "int",
    "outputs": "list", "outputs[]": "dict", "outputs[].name": "str", "outputs[].shape": "list",
    "outputs[].shape[]": "int", "outputs[].dtype": "str", "outputs[].scale": "number",
    "outputs[].zero_point": "int",
    "preprocess": "dict", "preprocess.mode": "str", "preprocess.input_shape": "list",
    "preprocess.input_shape[]": "int", "preprocess.crop_fraction": "number", "preprocess.color": "str",
    "calibration": "dict", "calibration.source": "dict", "calibration_method": "str",
    "versions": "dict", "versions{}": "str", "warnings": "list", "warnings[]": "str",
}
MANIFEST_REQUIRED = ("schema", "artifact", "sha256")


def schema_version(schema, where: str, family: str = SCHEMA.rsplit("/", 1)[0],
                   newest: str = SCHEMA) -> int:
    """The version number of `family/N`; EdgecnnError (one line) for another family, a version
    that is not a number, or one newer than this edgecnn reads."""
    name, _, number = str(schema).rpartition("/")
    if not isinstance(schema, str) or name != family:
        raise EdgecnnError(f"{where} is not an edgecnn manifest (schema {schema!r}; expected {newest})")
    if not (number.isascii() and number.isdigit()):  # no sign, no space, no `1.0`, no `²`
        raise EdgecnnError(f"{where} has schema {schema!r}: its version is not a number (expected {newest})")
    if int(number) > int(newest.rsplit("/", 1)[1]):
        raise EdgecnnError(f"{where} has schema {schema}, newer than this edgecnn reads ({newest}): "
                           "upgrade edgecnn")
    return int(number)


def check_manifest(data, where: str = MANIFEST_NAME) -> dict:
    """`data` when it is a manifest this edgecnn reads, every field a reader uses of the right
    type; EdgecnnError with one line naming `where` and what is wrong otherwise."""
    from edgecnn.results import check_fields, json_kind

    if not isinstance(data, dict):
        raise EdgecnnError(f"{where} is not an edgecnn manifest ({json_kind(data)}, not a JSON object)")
    if "schema" not in data:
        raise EdgecnnError(f"{where} is not an edgecnn manifest (no `schema`; expected {SCHEMA})")
    schema_version(data["schema"], where)
    check_fields(data, MANIFEST_FIELDS, where, required=MANIFEST_REQUIRED)
    _check_values(data, where)
    return data


def _check_values(data: dict, where: str) -> None:
    """The values readers act on, in range: a preprocessing mode that exists, a crop in (0, 1],
    positive input sizes, finite non-negative scales."""
    import math

    from calibration.preprocessing import PREPROCESS_MODES

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


@dataclass(frozen=True)
class Manifest:
    """A checked manifest: the fields readers rely on, typed, and `data`, the whole record.

    `Manifest.from_json(json.loads(text), where)` is the one way in; readers that still
    want the dict use `data` (or `read_manifest_for`, which returns it).
    """

    schema: str
    artifact: str
    sha256: str
    model: str | None = None
    format: str | None = None
    quantization: str | None = None
    weights: str | None = None
    params: int | None = None
    bytes: int | None = None
    preprocess: dict | None = None
    inputs: tuple = ()
    data: dict = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, data, where: str = MANIFEST_NAME) -> Manifest:
        check_manifest(data, where)
        return cls(schema=data["schema"], artifact=data["artifact"], sha256=data["sha256"],
                   model=data.get("model"), format=data.get("format"),
                   quantization=data.get("quantization"), weights=data.get("weights"),
                   params=data.get("params"), bytes=data.get("bytes"), preprocess=data.get("preprocess"),
                   inputs=tuple(data.get("inputs") or ()), data=data)

    @property
    def version(self) -> int:
        return int(self.schema.rsplit("/", 1)[1])


def read_manifest(path) -> Manifest:
    """The manifest in the file `path`, checked; EdgecnnError (one line naming the file) when it
    is not readable, not JSON, or not a manifest this edgecnn reads."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise EdgecnnError(f"{path} is not readable JSON: not UTF-8 text") from None
    except OSError as exc:
        raise EdgecnnError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        data = json.loads(text)
    except ValueError as exc:  # JSONDecodeError, and numbers too long to convert
        raise EdgecnnError(f"{path} is not readable JSON: {exc}") from None
    except RecursionError:
        raise EdgecnnError(f"{path} is not readable JSON: nested too deep") from None
    return Manifest.from_json(data, str(path))


def read_manifest_for(artifact) -> dict | None:
    """The manifest that describes `artifact`, as a dict, or None when there is none
    (third-party files). A manifest in the same folder that names another file is not this
    artifact's. A manifest.json that is there but broken raises EdgecnnError (one line);
    benchmark and evaluate then ignore it with a warning and treat the file as third-party."""
    path = manifest_path_for(artifact)
    if not path.is_file():
        return None
    manifest = read_manifest(path)
    if manifest.artifact != Path(artifact).name:
        return None
    return manifest.data


def artifact_in_folder(folder) -> Path:
    """The artifact an export folder stands for: the file its manifest.json names, there.
    EdgecnnError (one line) for a folder that has none."""
    folder = Path(folder)
    path = folder / MANIFEST_NAME
    if not path.is_file():
        raise EdgecnnError(f"{folder} is a folder without a {MANIFEST_NAME}: give the model file")
    try:
        manifest = read_manifest(path)
    except EdgecnnError as exc:
        raise EdgecnnError(f"{folder} is a folder, and {exc}: give the model file") from None
    artifact = folder / manifest.artifact
    if Path(manifest.artifact).name != manifest.artifact or not artifact.is_file():
        raise EdgecnnError(f"{folder} is a folder whose {MANIFEST_NAME} names `{manifest.artifact}`, "
                           "which is not there: give the model file")
    return artifact
