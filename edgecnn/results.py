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

# The rows' records, schemas and field checks live in edgecnn.records; these names stay importable.
from edgecnn.records import (  # noqa: F401
    _HOST_FIELDS,
    _TYPE_NAMES,
    BENCHMARK_FIELDS,
    BENCHMARK_SCHEMA,
    EVALUATE_FIELDS,
    EVALUATE_SCHEMA,
    BenchmarkRow,
    EvaluateRow,
    _is,
    _values_at,
    check_fields,
    json_kind,
)


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
            for row in rows:  # dicts, or records (BenchmarkRow, EvaluateRow)
                handle.write(json.dumps(row.to_json() if hasattr(row, "to_json") else row, default=str) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as exc:
        raise EdgecnnError(f"cannot write results to {path}: {exc.strerror or exc}") from None
    return path
