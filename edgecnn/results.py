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
