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


def read_manifest_for(artifact) -> dict | None:
    """The manifest that describes `artifact`, or None when there is none (third-party files).

    A manifest in the same folder that names another file is not this artifact's.
    """
    path = manifest_path_for(artifact)
    if not path.is_file():
        return None
    try:
        manifest = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise EdgecnnError(f"{path} is not readable JSON: {exc}") from None
    schema = manifest.get("schema", "")
    if not schema.startswith("edgecnn.manifest/"):
        raise EdgecnnError(f"{path} is not an edgecnn manifest (schema {schema!r})")
    if int(schema.rsplit("/", 1)[1]) > int(SCHEMA.rsplit("/", 1)[1]):
        raise EdgecnnError(f"{path} has schema {schema}, newer than this edgecnn reads ({SCHEMA}): upgrade edgecnn")
    if manifest.get("artifact") != Path(artifact).name:
        return None
    return manifest
