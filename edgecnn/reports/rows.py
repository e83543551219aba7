"""Read and check what `edgecnn compare` is given: result rows and manifests.

A RESULTS argument is one of

- a JSON-lines file written by `edgecnn benchmark --out` or `edgecnn evaluate --out`
  (blank lines are skipped);
- a JSON file holding one row, a list of rows (`edgecnn benchmark --json > rows.json`)
  or a manifest (`artifacts/mobilenetv2-int8/manifest.json`);
- a folder: its `*.jsonl` files, its `manifest.json` and its subfolders' `manifest.json`
  (an `artifacts/` folder written by `edgecnn export`), in name order.

Every record must carry an edgecnn schema this version reads (`edgecnn.benchmark/1`,
`edgecnn.evaluate/1`, `edgecnn.manifest/1`) and parse as its typed record
(`edgecnn.records.BenchmarkRow`, `EvaluateRow`, `Manifest`: every field the report reads of
its type; `Record.record` holds it). One bad record never costs the others: a line that is not JSON (a
truncated line), not an object, from another tool, of a newer schema or with a field of
the wrong type (`host` a string) is skipped with one warning naming the file and line,
and the rest reports. The readers print nothing: each warning goes to the caller's `warn`
(`build_report` keeps them in `Report.warnings`, and the CLI prints them). Only input with
nothing readable at all (a missing file, no record in any file) raises EdgecnnError.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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
    typed: Any = field(default=None, compare=False, repr=False)  # its edgecnn.records record

    @property
    def record(self):
        """The typed record (`Manifest`, `BenchmarkRow`, `EvaluateRow`), parsed when not given."""
        if self.typed is not None:
            return self.typed
        from edgecnn.records import ROW_RECORDS

        return ROW_RECORDS[self.data["schema"].rpartition("/")[0]].from_json(self.data, self.origin)


def expand(paths) -> list[Path]:
    """The files behind the RESULTS arguments, in order."""
    paths = [Path(p) for p in paths or ()]
    if not paths:
        raise BadArgument(
            "no RESULTS given: pass .jsonl files written by `edgecnn benchmark --out` "
            "or `edgecnn evaluate --out` (or a folder of them)"
        )
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


def parse_record(data, where: str):
    """The typed record (`edgecnn.records.BenchmarkRow`, `EvaluateRow` or `Manifest`) when
    `data` is an edgecnn row this version reads and every field the report reads has its type;
    EdgecnnError (one line naming `where`) otherwise."""
    from edgecnn.records import ROW_RECORDS

    if not isinstance(data, dict):
        raise EdgecnnError(f"{where}: not an edgecnn result row (a JSON {type(data).__name__}, not an object)")
    schema = data.get("schema")
    if not isinstance(schema, str) or "/" not in schema:
        raise EdgecnnError(
            f"{where}: not an edgecnn result row (no `schema`; expected {BENCHMARK_SCHEMA} or {EVALUATE_SCHEMA})"
        )
    name = schema.rpartition("/")[0]
    if name not in ROW_RECORDS:
        raise EdgecnnError(
            f"{where}: not an edgecnn result row (schema {schema!r}; expected {BENCHMARK_SCHEMA} or {EVALUATE_SCHEMA})"
        )
    return ROW_RECORDS[name].from_json(data, where)


def check_record(data, where: str) -> str:
    """The record's kind ("benchmark", "evaluate", "manifest"); EdgecnnError as parse_record."""
    return _kind(parse_record(data, where))


def _kind(record) -> str:
    return KINDS[record.SCHEMA.rsplit("/", 1)[0]][0]


def one_line(message) -> str:
    """A warning as one line: its whitespace (a newline in a file name) collapsed."""
    return " ".join(str(message).split())


def read_file(path: Path, start: int = 0, *, warn) -> list[Record]:
    """The records of one file: a JSON document (object or list) or JSON lines. A record that
    cannot be read is skipped: `warn` gets one message naming the file and line. EdgecnnError
    for a file that cannot be read at all."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise EdgecnnError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:  # a damaged line, or not a text file at all: line by line
        return _read_damaged(path, raw, start, warn)
    if not text.strip():
        warn(f"{path} is empty: no result rows, skipped")
        return []
    items: list[tuple[object, str]] = []
    try:
        whole = json.loads(text)
    except (ValueError, RecursionError):
        whole = None
    if isinstance(whole, list):
        if not whole:
            warn(f"{path} is empty: no result rows (an empty JSON list), skipped")
            return []
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
            except (ValueError, RecursionError):
                items.append((_NOT_JSON, where))
    records = []
    for data, where in items:
        try:
            if data is _NOT_JSON:
                raise EdgecnnError(f"{where}: not JSON (a truncated line?), so not an edgecnn result row")
            typed = parse_record(data, where)
        except EdgecnnError as exc:
            warn(f"{exc}; skipped")
            continue
        records.append(Record(_kind(typed), data, where, start + len(records), typed))
    return records


_NOT_JSON = object()


def _read_damaged(path: Path, raw: bytes, start: int, warn) -> list[Record]:
    """The records of a file that is not UTF-8 throughout: each line that decodes is read;
    a file where none does is one warning, not one per line."""
    notes: list[str] = []
    records: list[Record] = []
    for number, chunk in enumerate(raw.split(b"\n"), 1):
        if not chunk.strip():
            continue
        where = f"{path} line {number}"
        try:
            data = json.loads(chunk.decode("utf-8"))
            typed = parse_record(data, where)
        except UnicodeDecodeError:
            notes.append(f"{where}: not UTF-8 text, so not an edgecnn result row; skipped")
            continue
        except (ValueError, RecursionError):
            notes.append(f"{where}: not JSON (a truncated line?), so not an edgecnn result row; skipped")
            continue
        except EdgecnnError as exc:
            notes.append(f"{exc}; skipped")
            continue
        records.append(Record(_kind(typed), data, where, start + len(records), typed))
    if not records:
        warn(f"{path} is not a text file of JSON lines, skipped")
        return []
    for note in notes:
        warn(note)
    return records


def read_results(paths, *, warn) -> list[Record]:
    """Every readable record of every RESULTS argument, checked, in input order; each record
    skipped is one `warn` message, one line (`one_line`), given only when some record is
    readable. EdgecnnError when none is: the error alone, with the first reason."""
    records: list[Record] = []
    skipped: list[str] = []
    files = expand(paths)
    for path in files:
        records.extend(read_file(path, start=len(records), warn=skipped.append))
    if not records:  # the error alone, with the first reason, not warnings before it
        names = ", ".join(str(f) for f in files[:3]) + (" ..." if len(files) > 3 else "")
        first = skipped[0].removesuffix("; skipped").removesuffix(", skipped") if skipped else ""
        more = f" (and {len(skipped) - 1} more)" if len(skipped) > 1 else ""
        raise EdgecnnError(f"no readable edgecnn result rows in {names}" + (f": {first}{more}" if first else ""))
    for message in skipped:
        warn(one_line(message))
    return records
