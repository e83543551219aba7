"""The wall seconds and peak memory of each export stage (the manifest's `export_stages`)."""

from __future__ import annotations

import contextlib
import sys
import time
from pathlib import Path

from converters import FORMATS


def peak_rss_bytes() -> int | None:
    """This process's peak resident memory so far (VmHWM), or None where unknown."""
    try:
        import resource
    except ImportError:  # Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak) if sys.platform == "darwin" else int(peak) * 1024


class Stages:
    """The wall seconds of each export stage and this process's peak RSS when it ended.

    The manifest keeps them as `export_stages`: the stages shared by every format
    (`build`, `calibration_data`, ...), then the format's own (`tflite.convert`,
    `onnx.tf2onnx`, `onnx.quantize`, `onnx.parity`, ...). `peak_rss_mb` is the high-water
    mark of the process since it started, so the stage where it rises is the one that
    needed the memory.
    """

    def __init__(self, process: str = "shared"):
        self.records: dict[str, dict] = {}
        self.process = process

    @contextlib.contextmanager
    def __call__(self, name: str):
        started = time.perf_counter()
        yield
        self.add(name, time.perf_counter() - started)

    def add(self, name: str, seconds: float, **extra) -> None:
        peak = peak_rss_bytes()
        self.records[name] = {
            "seconds": round(seconds, 2),
            "peak_rss_mb": None if peak is None else round(peak / 2**20),
            **extra,
        }

    def for_format(self, fmt: str) -> dict:
        """The shared stages and `fmt`'s, for its manifest."""
        formats = tuple(f"{f}." for f in FORMATS)
        return {
            "process": self.process,
            **{
                name: dict(record)
                for name, record in self.records.items()
                if not name.startswith(formats) or name.startswith(f"{fmt}.")
            },
        }


def _current_rss_bytes() -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None
