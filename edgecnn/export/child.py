"""One process per format: the parent's side (`_export_in_child`) and the child's (`_child_main`)."""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

from edgecnn.errors import BadArgument, EdgecnnError
from edgecnn.export.outfolder import _OutFolder
from edgecnn.export.request import ExportRequest, _folder_name, _warn
from edgecnn.export.stages import Stages
from edgecnn.progress import Progress

_CHILD = "from edgecnn.export.child import _child_main; _child_main()"


def _export_in_child(
    request: ExportRequest, fmt: str, memory_formats, progress: Progress, out: "_OutFolder"
) -> tuple[Path, Path, dict]:
    """`_export_formats(request, [fmt])` in a new Python process; its staged folder.

    The child builds the model again (same seed, same weights), converts, checks parity
    and stages the folder that this process made for it; it reports progress, warnings
    and the result as JSON lines on a pipe. Its stderr (the converters' C++ chatter) goes
    to a temporary file, whose last line explains a child that died.
    """
    import json
    import pickle
    import subprocess

    staging = out.staging(_folder_name(request, fmt))
    job = {
        "request": request,
        "format": fmt,
        "memory_formats": list(memory_formats),
        "staging": str(staging),
        "out": str(out.path),
        "launched": time.time(),
    }
    result = None
    with tempfile.TemporaryFile() as errors:
        child = subprocess.Popen(
            [sys.executable, "-c", _CHILD], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=errors
        )
        try:
            child.stdin.write(pickle.dumps(job))
            child.stdin.close()
            for line in child.stdout:
                message = json.loads(line)
                kind = message.pop("kind")
                if kind == "start":
                    progress.start(message["label"], message.get("total"))
                elif kind == "advance":
                    progress.advance(message["steps"])
                elif kind == "warn":
                    _warn(request, progress, message["message"])
                elif kind == "epoch_end":
                    report = getattr(progress, "epoch_end", None)
                    if report is not None:
                        report(message["epoch"], message["epochs"], message["logs"])
                else:
                    result = {"kind": kind, **message}
            code = child.wait()
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
        errors.seek(0)
        last = next(
            (line for line in reversed(errors.read().decode(errors="replace").splitlines()) if line.strip()), ""
        )
    if result is not None and result["kind"] == "error":
        error = BadArgument if result["error"] == "BadArgument" else EdgecnnError
        raise error(result["message"])
    if result is None or code != 0:
        why = (
            f"was killed by signal {-code}" + (" (out of memory?)" if code == -9 else "")
            if code < 0
            else f"exited with code {code}"
        )
        raise EdgecnnError(f"the {fmt} conversion process {why}" + (f": {last.strip()[:300]}" if last else ""))
    return staging, Path(result["final"]), result["manifest"]


class _ChildOut:
    """The `_OutFolder` of a child: the parent made the staging folder and publishes it."""

    def __init__(self, path: str, staging: str):
        self.path, self._staging = Path(path), Path(staging)

    def staging(self, folder_name: str) -> Path:
        return self._staging


class _ChannelProgress(Progress):
    """A child's progress, as JSON lines to the parent."""

    def __init__(self, channel):
        self._channel = channel

    def send(self, **message) -> None:
        import json

        self._channel.write(json.dumps(message, default=str) + "\n")
        self._channel.flush()

    def start(self, label, total=None):
        self.send(kind="start", label=label, total=total)

    def advance(self, steps=1):
        self.send(kind="advance", steps=steps)

    def warn(self, message):
        self.send(kind="warn", message=message)

    def epoch_end(self, epoch, epochs, logs):
        self.send(kind="epoch_end", epoch=epoch, epochs=epochs, logs=logs)


def _child_main() -> None:
    """The child of `_export_in_child`: read the job on stdin, answer on stdout."""
    import pickle

    from edgecnn.export.pipeline import _export_formats  # the pipeline imports this module

    channel = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # what the converters print on stdout must not mix with the answers
    job = pickle.load(sys.stdin.buffer)
    progress = _ChannelProgress(channel)
    started = time.perf_counter() - max(0.0, time.time() - job["launched"])
    stages = Stages(process="per-format")
    stages.add("process_start", time.perf_counter() - started)
    try:
        ((_, final, manifest),) = _export_formats(
            job["request"],
            [job["format"]],
            progress,
            started,
            _ChildOut(job["out"], job["staging"]),
            stages=stages,
            memory_formats=job["memory_formats"],
        )
        progress.send(kind="done", final=str(final), manifest=manifest)
    except EdgecnnError as exc:
        progress.send(
            kind="error", error=type(exc).__name__ if isinstance(exc, BadArgument) else "EdgecnnError", message=str(exc)
        )
    except Exception as exc:  # reported by the parent as a failed conversion
        reason = " ".join(str(exc).split())[:400] or type(exc).__name__
        progress.send(kind="error", error="EdgecnnError", message=f"{job['format']} export failed: {reason}")
