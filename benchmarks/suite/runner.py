"""Run one `edgecnn` command as a subprocess: time it, keep its output, say why it failed.

The command is `python -m edgecnn ...` with this checkout first on PYTHONPATH: the same
entry point as the `edgecnn` script, and the same code as the suite imports.
stderr goes to a log file per step (epoch lines and warnings are echoed); stdout is kept
for commands run with `--json`.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
EDGECNN = (sys.executable, "-m", "edgecnn")
_ECHO = re.compile(r"^\s*(epoch \d|warning:)")
_BOX = "│┃╭╮╰╯─━┏┓┗┛┡┩╇┳┻╋ "

_T0 = time.perf_counter()


def log(message: str) -> None:
    """A progress line on stderr with the seconds since the suite started."""
    print(f"[{time.perf_counter() - _T0:7.0f}s] {message}", file=sys.stderr, flush=True)


@dataclass
class Outcome:
    returncode: int
    seconds: float
    stdout: str
    reason: str | None  # None when it worked
    log: Path

    @property
    def status(self) -> str:
        """ok; refused (exit code 2: the CLI rejects the arguments, e.g. a format a variant
        does not support); failed (anything else, a timeout included)."""
        if self.reason is None:
            return "ok"
        return "refused" if self.returncode == 2 else "failed"


def display(argv) -> str:
    """The command as a user would type it."""
    return shlex.join(["edgecnn", *argv])


def reason_from(stderr: str, returncode: int) -> str:
    """The line that says why: the last `error:` line, else the last line with words in it
    (typer draws its usage errors in a box), else the exit code."""
    lines = [line.strip().strip(_BOX).strip() for line in stderr.splitlines()]
    lines = [line for line in lines if line]
    errors = [line for line in lines if line.lower().startswith("error:")]
    if errors:
        return errors[-1]
    if lines:
        return lines[-1]
    if returncode < 0:
        return f"killed by signal {-returncode}"
    return f"exit code {returncode}"


def _environment() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def run_edgecnn(argv, *, cwd: Path, log_path: Path, timeout: float | None = None) -> Outcome:
    """Run `edgecnn ARGV` in `cwd`; stderr into `log_path`, stdout returned."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    tail: list[str] = []
    with open(log_path, "w", encoding="utf-8") as log_file, tempfile.TemporaryFile("w+") as out:
        log_file.write(f"$ {display(argv)}\n(in {cwd})\n")
        log_file.flush()
        proc = subprocess.Popen(
            [*EDGECNN, *argv],
            cwd=cwd,
            env=_environment(),
            stdout=out,
            stderr=subprocess.PIPE,
            text=True,
            errors="replace",
            start_new_session=True,
        )

        def pump():
            for line in proc.stderr:
                log_file.write(line)
                log_file.flush()
                tail.append(line)
                del tail[:-200]
                if _ECHO.match(line):
                    print(f"          {line.rstrip()}", file=sys.stderr, flush=True)

        reader = threading.Thread(target=pump, daemon=True)
        reader.start()
        try:
            returncode = proc.wait(timeout=timeout)
            timed_out = False
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            returncode, timed_out = proc.wait(), True
        except BaseException:  # Ctrl-C: take the child down with us
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise
        reader.join(timeout=10)
        out.seek(0)
        stdout = out.read()
    seconds = time.perf_counter() - started
    reason = None
    if timed_out:
        reason = f"timed out after {timeout:g} s (--step-timeout)"
    elif returncode != 0:
        reason = reason_from("".join(tail), returncode)
    return Outcome(returncode, round(seconds, 2), stdout, reason, log_path)
