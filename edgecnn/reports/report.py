"""`build_report(paths)`: read the results, join them, mark the fronts, sort; and writing files whole."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from edgecnn.errors import BadArgument, EdgecnnError
from edgecnn.reports.join import ComparedRow, host_label, input_label, join
from edgecnn.reports.pareto import mark_fronts
from edgecnn.reports.rows import read_results

BASELINES = ("float32", "float16", "dynamic", "int8", "int16x8")  # converters.QUANTIZATIONS


@dataclass
class Report:
    rows: list[ComparedRow]
    baseline: str = "float32"
    notes: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # records skipped, one line each (rows.read_results)

    def records(self) -> list[dict]:
        return [row.to_dict() for row in self.rows]

    def hosts(self) -> dict[str, dict]:
        """Each distinct host, by its label, with its full description (first seen)."""
        hosts: dict[str, dict] = {}
        for row in self.rows:
            if row.host:
                hosts.setdefault(host_label(row.host), row.host)
        return hosts

    def versions(self) -> dict[str, list[str]]:
        """Runtimes that measured, and the tools that built the artifacts (from manifests)."""
        from edgecnn import __version__

        found: dict[str, set] = {"edgecnn compare": {__version__}}
        for row in self.rows:
            measured = row.measured
            if measured.get("runtime") and measured.get("runtime_version"):
                found.setdefault(measured["runtime"], set()).add(str(measured["runtime_version"]))
            for tool, version in (row.facts.versions or {}).items():
                found.setdefault(f"{tool} (export)", set()).add(str(version))
        return {tool: sorted(values) for tool, values in found.items()}


def _sort_key(row: ComparedRow) -> tuple:
    facts = row.facts
    is_baseline_like = row.parent is row
    return (
        row.model,
        input_label(facts),
        row.failed,
        host_label(row.host),
        facts.format or "",
        row.runtime or "",
        row.provider or "",
        row.threads or 0,
        row.batch,
        not is_baseline_like,
        -(facts.bytes or 0),
        row.variant,
    )


def build_report(paths, baseline: str = "float32") -> Report:
    """Read RESULTS (files, folders), join by artifact, set the float parents and the fronts.
    A record that cannot be read is skipped: its one-line reason is in `Report.warnings`."""
    if baseline not in BASELINES:
        raise BadArgument(f"--baseline must be one of {', '.join(BASELINES)}. Received `{baseline}`")
    from edgecnn.reports.rows import expand

    files = expand(paths)
    skipped: list[str] = []
    records = read_results(files, warn=skipped.append)
    rows = join(records, baseline)
    notes = mark_fronts(rows)
    rows.sort(key=_sort_key)
    if any(row.facts.weights == "random" and row.top1 is not None for row in rows):
        notes.append("weights: random: exported with random weights, so their top-1 is chance")
    return Report(rows=rows, baseline=baseline, notes=notes, sources=[str(f) for f in files], warnings=skipped)


def write_file(path, data: bytes | str) -> Path:
    """Write a whole file or nothing: a temporary file beside it, then a rename."""
    path = Path(path)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    tmp = None
    try:
        if path.is_dir():
            raise EdgecnnError(f"cannot write {path}: it is a folder")
        if path.parent.exists() and not path.parent.is_dir():
            raise EdgecnnError(f"cannot write {path}: {path.parent} is not a folder")
        if path.parent != Path(""):
            path.parent.mkdir(parents=True, exist_ok=True)
        handle, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(handle, "wb") as out:
            out.write(payload)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except OSError as exc:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        raise EdgecnnError(f"cannot write {path}: {exc.strerror or exc}") from None
    return path
