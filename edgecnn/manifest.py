"""manifest.json: the single truth about an artifact, read by every later stage.

Written next to each artifact by `edgecnn export`; read by benchmark, evaluate and
compare. TensorFlow-free. The schema is versioned: readers refuse a newer one. The record
itself (`Manifest`, its fields and checks) is `edgecnn.records.Manifest`; this module finds,
reads and writes the file.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import tempfile
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from edgecnn.errors import EdgecnnError

# The record, its schema and its checks live in edgecnn.records; these names stay importable here.
from edgecnn.records import (  # noqa: F401
    MANIFEST_FIELDS,
    MANIFEST_NAME,
    MANIFEST_REQUIRED,
    Manifest,
    check_manifest,
    schema_version,
)
from edgecnn.records import MANIFEST_SCHEMA as SCHEMA  # noqa: F401

# Distributions whose versions go into every manifest (those not installed are left out).
TOOL_DISTRIBUTIONS = (
    "edgecnn",
    "tensorflow",
    "tf-keras",
    "tensorflow-model-optimization",
    "tf2onnx",
    "onnx",
    "onnxruntime",
    "onnxconverter-common",
    "ai-edge-litert",
    "numpy",
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


def write_manifest(directory, manifest: dict | Manifest) -> Path:
    """Write manifest.json atomically (temporary file, then rename). A manifest its readers
    would refuse is refused here instead (EdgecnnError, nothing written)."""
    target = Path(directory) / MANIFEST_NAME
    data = manifest.to_json() if isinstance(manifest, Manifest) else manifest
    check_manifest(data, f"{target} (being written)")
    text = json.dumps(data, indent=2, sort_keys=False) + "\n"
    handle, tmp = tempfile.mkstemp(prefix=".manifest-", suffix=".tmp", dir=directory)
    with os.fdopen(handle, "w") as out:
        out.write(text)
    os.chmod(tmp, 0o644)  # mkstemp makes it private; a manifest is meant to be read
    os.replace(tmp, target)
    return target


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


def manifest_for(artifact) -> Manifest | None:
    """The manifest record that describes `artifact`, or None when there is none (third-party
    files). A manifest in the same folder that names another file is not this artifact's. A
    manifest.json that is there but broken raises EdgecnnError (one line); benchmark and
    evaluate then ignore it with a warning and treat the file as third-party."""
    path = manifest_path_for(artifact)
    if not path.is_file():
        return None
    manifest = read_manifest(path)
    if manifest.artifact != Path(artifact).name:
        return None
    return manifest


def read_manifest_for(artifact) -> dict | None:
    """`manifest_for(artifact)` as the dict it was read from (None when there is none)."""
    manifest = manifest_for(artifact)
    return None if manifest is None else manifest.data


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
        raise EdgecnnError(
            f"{folder} is a folder whose {MANIFEST_NAME} names `{manifest.artifact}`, "
            "which is not there: give the model file"
        )
    return artifact
