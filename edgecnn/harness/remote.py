"""`edgecnn benchmark --remote user@host`: measure on another machine over ssh.

1. `ssh user@host` makes a temporary folder there (`mktemp -d`), one subfolder per artifact;
2. `scp` copies each artifact, with its manifest.json when it has one, and the --data
   file or folder when it exists here (a keyword such as `default`, or a path that exists
   only there, is used there as it is);
3. `ssh user@host PYTHON -m edgecnn benchmark FILES --json OPTIONS` measures them there
   (each in its own process, as locally) and prints the rows, which come back here with
   `"remote": "user@host"`, the local path as `artifact`, and the remote machine's `host`;
4. the temporary folder is removed, whatever happened.

The system `ssh` and `scp` run with BatchMode=yes (no password prompts: use a key) and a
connect timeout. `port` and `ssh_options` (`-o` options such as `IdentityFile=~/.ssh/pi`
or `StrictHostKeyChecking=accept-new`) go to both; options given by the user come first,
so they win over the defaults here (ssh keeps the first value it reads).
"""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Sequence

from edgecnn.errors import BadArgument, EdgecnnError
from edgecnn.harness import (
    BenchmarkSettings,
    add_host_warnings,
    check_row,
    describe_artifact,
    failed_row,
    resolve_artifact,
    worker_limit,
)
from edgecnn.manifest import MANIFEST_NAME

CONNECT_TIMEOUT_S = 10
COPY_TIMEOUT_S = 900


class RemoteError(EdgecnnError):
    """ssh or scp failed: every artifact of the call fails with this reason."""


def ssh_base_options(
    *, port: int | None = None, ssh_options: Sequence[str] = (), connect_timeout: int = CONNECT_TIMEOUT_S
) -> list[str]:
    options: list[str] = []
    for option in ssh_options:
        if "=" not in option and " " not in option.strip():
            raise BadArgument(f"--ssh-option takes ssh's `-o` form, Name=value. Received `{option}`")
        options += ["-o", option]
    if port is not None:
        if not 0 < int(port) < 65536:
            raise BadArgument(f"--remote-port must be a TCP port. Received {port}")
        options += ["-o", f"Port={int(port)}"]
    options += ["-o", "BatchMode=yes", "-o", f"ConnectTimeout={int(connect_timeout)}", "-o", "LogLevel=ERROR"]
    return options


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return " ".join(lines[-1].split()) if lines else ""


def _hint(message: str) -> str:
    if "Host key verification failed" in message:
        return (
            " (connect once with ssh to accept the host's key, or pass --ssh-option StrictHostKeyChecking=accept-new)"
        )
    if "Permission denied" in message:
        return " (BatchMode: use a key, e.g. --ssh-option IdentityFile=~/.ssh/id_ed25519)"
    return ""


class Remote:
    """A user@host reached with the system ssh/scp."""

    def __init__(
        self,
        target: str,
        *,
        port: int | None = None,
        ssh_options: Sequence[str] = (),
        connect_timeout: int = CONNECT_TIMEOUT_S,
    ):
        target = (target or "").strip()
        if not target or target.startswith("-") or any(c.isspace() for c in target) or ":" in target:
            raise BadArgument(f"--remote takes user@host or host (no scheme, no path). Received `{target}`")
        for tool in ("ssh", "scp"):
            if shutil.which(tool) is None:
                raise EdgecnnError(f"--remote needs `{tool}` on this machine: install openssh-client")
        self.target = target
        self.options = ssh_base_options(port=port, ssh_options=ssh_options, connect_timeout=connect_timeout)

    def ssh(self, command: str, *, timeout: float) -> subprocess.CompletedProcess:
        argv = ["ssh", *self.options, "-T", self.target, command]
        try:
            return subprocess.run(
                argv, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL, errors="replace"
            )
        except subprocess.TimeoutExpired:
            raise RemoteError(f"ssh {self.target} timed out after {timeout:.0f} s") from None

    def checked_ssh(self, command: str, *, timeout: float, what: str) -> str:
        proc = self.ssh(command, timeout=timeout)
        if proc.returncode == 255:  # ssh's own failure: cannot connect, authenticate...
            message = _last_line(proc.stderr) or "ssh failed"
            raise RemoteError(f"cannot reach {self.target}: {message}{_hint(message)}")
        if proc.returncode != 0:
            raise RemoteError(f"{what} on {self.target} failed: {_last_line(proc.stderr) or proc.returncode}")
        return proc.stdout

    def copy(self, sources: Sequence[Path], destination: str, *, recursive: bool = False) -> None:
        argv = [
            "scp",
            "-q",
            *self.options,
            *(["-r"] if recursive else []),
            *[str(s) for s in sources],
            f"{self.target}:{destination}",
        ]
        try:
            proc = subprocess.run(
                argv, capture_output=True, text=True, timeout=COPY_TIMEOUT_S, stdin=subprocess.DEVNULL, errors="replace"
            )
        except subprocess.TimeoutExpired:
            raise RemoteError(f"scp to {self.target} timed out after {COPY_TIMEOUT_S} s") from None
        if proc.returncode != 0:
            message = _last_line(proc.stderr) or f"scp exited with code {proc.returncode}"
            raise RemoteError(f"cannot copy to {self.target}: {message}{_hint(message)}")


def _python_word(python: str) -> str:
    """The remote Python, quoted for the remote shell; a leading ~/ still expands."""
    if python.startswith("~/"):
        return "~/" + shlex.quote(python[2:])
    return shlex.quote(python)


def remote_arguments(settings: BenchmarkSettings, data: str | None) -> list[str]:
    """The `edgecnn benchmark` options that reproduce `settings` on the other side."""
    args = [
        "--json",
        "--runtime",
        settings.runtime,
        "--warmup",
        str(settings.warmup),
        "--runs",
        str(settings.runs),
        "--min-secs",
        repr(float(settings.min_secs)),
        "--max-secs",
        repr(float(settings.max_secs)),
        "--batch",
        str(settings.batch),
        "--samples",
        str(settings.samples),
        "--seed",
        str(settings.seed),
    ]
    if settings.warmup_secs != BenchmarkSettings.warmup_secs:  # older remotes lack the option
        args += ["--warmup-secs", repr(float(settings.warmup_secs))]
    if settings.input_scale is not None:
        args += ["--input-scale", repr(float(settings.input_scale))]
    if settings.input_zero_point is not None:
        args += ["--input-zero-point", str(settings.input_zero_point)]
    if settings.threads is not None:
        args += ["--threads", str(settings.threads)]
    if settings.provider is not None:
        args += ["--provider", settings.provider]
    if data is not None:
        args += ["--data", data]
    if settings.preprocess is not None:
        args += ["--preprocess", settings.preprocess]
    return args


def benchmark_remote(
    artifacts: Sequence,
    settings: BenchmarkSettings | None = None,
    *,
    target: str,
    python: str | None = None,
    port: int | None = None,
    ssh_options: Sequence[str] = (),
    connect_timeout: int = CONNECT_TIMEOUT_S,
) -> list[dict]:
    """One row per artifact, measured on `target`. Never raises for an unreachable host or a
    failed artifact: those rows come back failed with the reason."""
    settings = (settings or BenchmarkSettings()).check(local_data=False)
    remote = Remote(target, port=port, ssh_options=ssh_options, connect_timeout=connect_timeout)
    rows: list[dict | None] = [None] * len(artifacts)
    sending: list[tuple[int, Path]] = []
    for index, artifact in enumerate(artifacts):
        row, _ = describe_artifact(artifact, settings)
        rows[index] = row
        if row["status"] == "ok":
            sending.append((index, resolve_artifact(artifact)))
    if sending:
        try:
            remote_rows = _run_remote(remote, sending, settings, python)
        except RemoteError as exc:
            remote_rows = {index: str(exc) for index, _ in sending}
        for index, _ in sending:
            result = remote_rows.get(index, f"{target} returned no row for this artifact")
            local = rows[index]
            if isinstance(result, str):
                failed_row(local, result)
                continue
            try:  # another edgecnn made it: a row of the wrong shape is refused here, a failed row
                check_row(result, f"the row {target} returned for {local['artifact_name']}")
            except EdgecnnError as exc:
                failed_row(local, str(exc))
                continue
            result = dict(result)
            result["artifact"] = local["artifact"]  # the remote copy is gone; say which file it was
            if isinstance(result.get("settings"), dict):
                result["settings"] = {**result["settings"], "data": settings.data}  # not the remote temp path
            if result.get("sha256") != local["sha256"]:
                result["warnings"] = [
                    *(result.get("warnings") or []),
                    "the remote copy's sha256 differs from the local file's",
                ]
            rows[index] = add_host_warnings(result)  # already there unless the remote edgecnn is older
    for row in rows:
        row["remote"] = target
    return [check_row(row, f"the benchmark row of {row.get('artifact_name') or row.get('artifact')}") for row in rows]


def _run_remote(
    remote: Remote, sending: list[tuple[int, Path]], settings: BenchmarkSettings, python: str | None
) -> dict[int, dict | str]:
    folders = " ".join(f'"$d/{index}"' for index, _ in sending)
    make = f'd=$(mktemp -d "${{TMPDIR:-/tmp}}/edgecnn-bench.XXXXXX") && mkdir {folders} && echo "$d"'
    workdir = remote.checked_ssh(make, timeout=CONNECT_TIMEOUT_S + 60, what="mktemp -d").strip().splitlines()
    if not workdir or not workdir[-1].startswith("/"):
        raise RemoteError(f"mktemp -d on {remote.target} gave no folder")
    workdir = workdir[-1]
    try:
        files = []
        for index, path in sending:
            sources = [path]
            manifest = path.with_name(MANIFEST_NAME)
            if manifest.is_file():
                sources.append(manifest)
            remote.copy(sources, f"{workdir}/{index}/")
            files.append(f"{workdir}/{index}/{path.name}")
        data = settings.data
        if data is not None and Path(data).expanduser().exists():
            local = Path(data).expanduser()
            remote.copy([local], f"{workdir}/data-{local.name}", recursive=local.is_dir())
            data = f"{workdir}/data-{local.name}"
        command = " ".join(
            [
                _python_word(python or "python3"),
                "-m",
                "edgecnn",
                "benchmark",
                *map(shlex.quote, files),
                *map(shlex.quote, remote_arguments(settings, data)),
            ]
        )
        per_artifact = worker_limit(settings) + 30
        proc = remote.ssh(command, timeout=per_artifact * len(files) + 60)
        if proc.returncode == 255 and not proc.stdout.strip():
            message = _last_line(proc.stderr) or "ssh failed"
            raise RemoteError(f"cannot reach {remote.target}: {message}{_hint(message)}")
        try:
            parsed = json.loads(proc.stdout)
        except ValueError:
            parsed = None
        if not isinstance(parsed, list) or len(parsed) != len(files):
            message = _last_line(proc.stderr) or f"exit code {proc.returncode}, no JSON rows"
            hint = ""
            if "No module named" in message or "not found" in message or "No such file" in message:
                hint = (
                    " (install edgecnn there, `pip install edgecnn`, or point --remote-python "
                    "at the Python that has it)"
                )
            raise RemoteError(f"edgecnn benchmark on {remote.target} failed: {message}{hint}")
        return {index: row for (index, _), row in zip(sending, parsed)}
    finally:
        try:
            remote.ssh(f"rm -rf {shlex.quote(workdir)}", timeout=CONNECT_TIMEOUT_S + 60)
        except RemoteError:
            pass


__all__ = ["Remote", "RemoteError", "benchmark_remote", "remote_arguments", "ssh_base_options"]
