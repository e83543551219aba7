"""Read and check what `edgecnn compare` is given: result rows and manifests.

A RESULTS argument is one of

- a JSON-lines file written by `edgecnn benchmark --out` or `edgecnn evaluate --out`
  (blank lines are skipped);
- a JSON file holding one row, a list of rows (`edgecnn benchmark --json > rows.json`)
  or a manifest (`artifacts/mobilenetv2-int8/manifest.json`);
- a folder: its `*.jsonl` files, its `manifest.json` and its subfolders' `manifest.json`
  (an `artifacts/` folder written by `edgecnn export`), in name order.

Every record must carry an edgecnn schema this version reads (`edgecnn.benchmark/1`,
`edgecnn.evaluate/1`, `edgecnn.manifest/1`). Anything else (a missing file, an empty
one, a line from another tool, a newer schema) raises EdgecnnError naming the file and
line: a report built from half the input would be wrong without saying so.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from edgecnn.errors import BadArgument, EdgecnnError
from edgecnn.manifest import SCHEMA as MANIFEST_SCHEMA
from edgecnn.results import BENCHMARK_SCHEMA, EVALUATE_SCHEMA

# schema name -> (kind, newest version this edgecnn reads)
KINDS = {
    BENCHMARK_SCHEMA.rsplit("/", 1)[0]: ("benchmark", int(BENCHMARK_SCHEMA.rsplit("/", 1)[1])),
    EVALUATE_SCHEMA.rsplit("/", 1)[0]: ("evaluate", int(EVALUATE_SCHEMA.rsplit("/", 1)[1])),
    MANIFEST_SCHEMA.rsplit("/", 1)[0]: ("manifest", int(MANIFEST_SCHEMA.rsplit("/", 1)[1])),
}


@dataclass(frozen=True)
class Record:
    """One benchmark row, evaluate row or manifest, and where it came from."""

    kind: str  # "benchmark", "evaluate" or "manifest"
    data: dict
    origin: str  # "results.jsonl line 3"
    order: int  # position in the whole input: later records win over earlier ones


def expand(paths) -> list[Path]:
    """The files behind the RESULTS arguments, in order."""
    paths = [Path(p) for p in paths or ()]
    if not paths:
        raise BadArgument("no RESULTS given: pass .jsonl files written by `edgecnn benchmark --out` "
                          "or `edgecnn evaluate --out` (or a folder of them)")
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = sorted(path.glob("*.jsonl"))
            found += [m for m in [path / "manifest.json", *sorted(path.glob("*/manifest.json"))] if m.is_file()]
            if not found:
                raise EdgecnnError(f"{path} holds no .jsonl results and no manifest.json")
            files.extend(found)
        elif path.is_file():
            files.append(path)
        elif path.exists():
            raise EdgecnnError(f"{path} is not a regular file")
        else:
            raise EdgecnnError(f"no such results file: {path}")
    return files


def check_record(data, where: str) -> str:
    """The record's kind; EdgecnnError when it is not an edgecnn row this version reads."""
    if not isinstance(data, dict):
        raise EdgecnnError(f"{where}: not an edgecnn result row (a JSON {type(data).__name__}, not an object)")
    schema = data.get("schema")
    if not isinstance(schema, str) or "/" not in schema:
        raise EdgecnnError(f"{where}: not an edgecnn result row (no `schema`; expected "
                           f"{BENCHMARK_SCHEMA} or {EVALUATE_SCHEMA})")
    name, _, version = schema.rpartition("/")
    if name not in KINDS:
        raise EdgecnnError(f"{where}: not an edgecnn result row (schema {schema!r}; expected "
                           f"{BENCHMARK_SCHEMA} or {EVALUATE_SCHEMA})")
    kind, newest = KINDS[name]
    if not version.isdigit():
        raise EdgecnnError(f"{where}: unreadable schema version {schema!r}")
    if int(version) > newest:
        raise EdgecnnError(f"{where}: schema {schema} is newer than this edgecnn reads "
                           f"({name}/{newest}): upgrade edgecnn")
    if kind == "benchmark":
        if data.get("status") not in ("ok", "failed"):
            raise EdgecnnError(f"{where}: benchmark row with status {data.get('status')!r} (expected ok or failed)")
        if data["status"] == "ok" and not (data.get("sha256") and isinstance(data.get("latency_ms"), dict)):
            raise EdgecnnError(f"{where}: benchmark row marked ok without `sha256` and `latency_ms`")
        if not (data.get("sha256") or data.get("artifact")):
            raise EdgecnnError(f"{where}: benchmark row names no artifact (no `sha256`, no `artifact`)")
    elif kind == "evaluate":
        if not data.get("sha256") or not isinstance(data.get("top1"), (int, float)) or not data.get("n"):
            raise EdgecnnError(f"{where}: evaluate row without `sha256`, `top1` and `n`")
    elif not data.get("sha256"):
        raise EdgecnnError(f"{where}: manifest without `sha256`")
    return kind


def read_file(path: Path, start: int = 0) -> list[Record]:
    """The records of one file: a JSON document (object or list) or JSON lines."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise EdgecnnError(f"{path} is not a text file of JSON lines") from None
    except OSError as exc:
        raise EdgecnnError(f"cannot read {path}: {exc.strerror or exc}") from None
    if not text.strip():
        raise EdgecnnError(f"{path} is empty: no result rows")
    items: list[tuple[object, str]] = []
    try:
        whole = json.loads(text)
    except ValueError:
        whole = None
    if isinstance(whole, list):
        if not whole:
            raise EdgecnnError(f"{path} is empty: no result rows (an empty JSON list)")
        items = [(item, f"{path} item {i + 1}") for i, item in enumerate(whole)]
    elif isinstance(whole, dict):
        items = [(whole, str(path))]
    else:
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            where = f"{path} line {number}"
            try:
                items.append((json.loads(line), where))
            except ValueError:
                raise EdgecnnError(f"{where}: not JSON, so not an edgecnn result row") from None
    records = []
    for data, where in items:
        kind = check_record(data, where)
        records.append(Record(kind, data, where, start + len(records)))
    return records


def read_results(paths) -> list[Record]:
    """Every record of every RESULTS argument, checked, in input order."""
    records: list[Record] = []
    for path in expand(paths):
        records.extend(read_file(path, start=len(records)))
    return records
