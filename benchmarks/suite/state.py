"""When a step can be skipped, and the two JSON-lines files the suite keeps.

- train/prune: the .keras, its sidecar and a stamp `NAME.suite.json` beside them that
  records the command's settings and the sidecar's sha256 (a model trained again by hand
  does not pass for the suite's).
- export: per format, a stamp `.suite-FORMAT.json` in the variant's folder, and exactly one
  artifact folder of that format whose manifest.json records the same options.
- benchmark/evaluate: a row in results.jsonl for the artifact's sha256 with the same settings.

A step's settings include the fingerprint of what it was made from (the sidecar's sha256),
so training a model again redoes everything made from it.
"""

from __future__ import annotations

import json
from pathlib import Path

from edgecnn.host import write_atomic
from edgecnn.loading import sidecar_path
from edgecnn.manifest import MANIFEST_NAME, sha256_of
from edgecnn.results import BENCHMARK_SCHEMA, EVALUATE_SCHEMA, append_rows, now_iso

SUITE_LOG_SCHEMA = "edgecnn.suite-log/1"


def read_json(path: Path):
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


def read_jsonl(path: Path) -> list[dict]:
    rows = []
    try:
        lines = Path(path).read_text().splitlines()
    except OSError:
        return rows
    for line in lines:
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if isinstance(row, dict):
            rows.append(row)
    return rows


# -- trained models ---------------------------------------------------------------------
def model_stamp(keras: Path) -> Path:
    return keras.with_name(f"{keras.stem}.suite.json")


def fingerprint(keras: Path) -> str | None:
    """sha256 of a saved model's sidecar (it records when and how the model was made)."""
    sidecar = sidecar_path(keras)
    return sha256_of(sidecar) if keras.is_file() and sidecar.is_file() else None


def model_done(keras: Path, settings: dict) -> bool:
    stamp, current = read_json(model_stamp(keras)), fingerprint(keras)
    return (
        current is not None
        and stamp is not None
        and stamp.get("settings") == settings
        and stamp.get("sidecar_sha256") == current
    )


def write_model_stamp(keras: Path, settings: dict) -> None:
    write_atomic(
        model_stamp(keras),
        json.dumps({"settings": settings, "sidecar_sha256": fingerprint(keras), "written": now_iso()}, indent=2) + "\n",
    )


# -- artifacts ------------------------------------------------------------------------------
def export_stamp(folder: Path, fmt: str) -> Path:
    return folder / f".suite-{fmt}.json"


def artifact_manifests(folder: Path, fmt: str) -> list[tuple[Path, dict]]:
    """(artifact path, manifest) of each artifact folder of format `fmt` under `folder`."""
    found = []
    for path in sorted(folder.glob(f"*/{MANIFEST_NAME}")):
        manifest = read_json(path)
        if isinstance(manifest, dict) and manifest.get("format") == fmt and manifest.get("artifact"):
            found.append((path.parent / manifest["artifact"], manifest))
    return found


def export_done(folder: Path, fmt: str, settings: dict, options: dict, qat: bool) -> Path | None:
    """The artifact when the stamp and the one manifest of `fmt` agree with what is asked."""
    stamp = read_json(export_stamp(folder, fmt))
    if stamp is None or stamp.get("settings") != settings:
        return None
    found = artifact_manifests(folder, fmt)
    if len(found) != 1:
        return None
    artifact, manifest = found[0]
    return artifact if manifest_agrees(artifact, manifest, options, qat) else None


def manifest_agrees(artifact: Path, manifest: dict, options: dict, qat: bool) -> bool:
    recorded = manifest.get("options") or {}
    if any(recorded.get(key) != value for key, value in options.items()):
        return False
    if qat and not (manifest.get("optimization") or {}).get("qat"):
        return False
    return artifact.is_file() and artifact.stat().st_size == manifest.get("bytes")


def write_export_stamp(folder: Path, fmt: str, settings: dict, manifest: dict) -> None:
    write_atomic(
        export_stamp(folder, fmt),
        json.dumps({"settings": settings, "sha256": manifest.get("sha256"), "written": now_iso()}, indent=2) + "\n",
    )


# -- results.jsonl --------------------------------------------------------------------------
class Results:
    """The benchmark and evaluate rows of `edgecnn benchmark/evaluate --out`, nothing else.

    A row's identity is (schema, artifact path, runtime, threads[, provider]); measuring it
    again replaces the rows with that identity, so the file holds one current row per
    artifact and runtime setting, and rows of artifacts exported again go away with them.
    """

    def __init__(self, path: Path):
        self.path = path

    def rows(self) -> list[dict]:
        return read_jsonl(self.path)

    def find(self, identity: dict, sha256: str, settings: dict) -> dict | None:
        for row in self.rows():
            if (
                _matches(row, identity)
                and row.get("sha256") == sha256
                and row.get("status", "ok") == "ok"
                and _matches(row, settings)
            ):
                return row
        return None

    def forget(self, identity: dict) -> int:
        """Remove the rows with this identity; returns how many."""
        return self._drop(lambda row: _matches(row, identity))

    def forget_missing(self, folder: str, workdir: Path) -> int:
        """Remove the rows of artifacts under `folder` (relative to `workdir`) that no longer
        exist there (an export folder renamed or replaced); returns how many."""
        prefix = folder.rstrip("/") + "/"
        return self._drop(
            lambda row: str(row.get("artifact", "")).startswith(prefix) and not (workdir / row["artifact"]).is_file()
        )

    def _drop(self, condition) -> int:
        if not self.path.is_file():
            return 0
        lines = self.path.read_text().splitlines(keepends=True)
        kept = []
        for line in lines:
            try:
                row = json.loads(line)
            except ValueError:
                row = None
            if not (isinstance(row, dict) and condition(row)):
                kept.append(line)
        if len(kept) != len(lines):
            write_atomic(self.path, "".join(kept))
        return len(lines) - len(kept)


def _matches(row: dict, wanted: dict) -> bool:
    """Every key of `wanted` has that value in `row`; dotted keys reach into sub-objects."""
    for key, value in wanted.items():
        node = row
        for part in key.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        if node != value:
            return False
    return True


def benchmark_identity(artifact_rel: str, runtime: str, threads: int, provider: str | None) -> dict:
    identity = {"schema": BENCHMARK_SCHEMA, "artifact": artifact_rel, "runtime": runtime, "threads": threads}
    if provider is not None:
        identity["provider"] = provider
    return identity


def evaluate_identity(artifact_rel: str, runtime: str, threads: int) -> dict:
    return {"schema": EVALUATE_SCHEMA, "artifact": artifact_rel, "runtime": runtime, "threads": threads}


# -- suite-log.jsonl ------------------------------------------------------------------------
class SuiteLog:
    """The suite's own steps, one JSON line each (never fed to `edgecnn compare`)."""

    def __init__(self, path: Path, run: str):
        self.path, self.run = path, run
        self.entries: list[dict] = []

    def add(self, **entry) -> dict:
        row = {"schema": SUITE_LOG_SCHEMA, "run": self.run, **entry, "at": now_iso()}
        append_rows(self.path, [row])
        self.entries.append(row)
        return row

    def earlier_seconds(self) -> dict[str, float]:
        """The last measured time of each step name that once worked (for estimates)."""
        seconds = {}
        for row in read_jsonl(self.path):
            if row.get("status") == "ok" and row.get("seconds") is not None and row.get("step"):
                seconds[row["step"]] = row["seconds"]
        return seconds
