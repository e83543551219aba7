"""`edgecnn benchmark`: options in, `edgecnn.harness` called, a table or JSON rows out.

TensorFlow-free (unless `--runtime tf` is asked for): this command runs on boards.
"""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from edgecnn.cli._app import (
    app,
    console,
    error_console,
    one_line_errors,
    print_json,
    print_table,
    si_bytes,
    trust_model_option,
)


def _host_line(host: dict, remote: str | None) -> str:
    parts = [f"{host.get('cpu')}, {host.get('cores')} cores, {host.get('arch')}, {host.get('os')}"]
    if host.get("board"):
        parts.insert(0, host["board"])
    if host.get("governor"):
        parts.append(f"governor {host['governor']}")
    if host.get("cpu_mhz"):
        parts.append(f"{host['cpu_mhz']:g} MHz")
    temps = host.get("temperatures_c") or {}
    if temps:
        zone, celsius = max(temps.items(), key=lambda kv: kv[1])
        parts.append(f"{celsius:.1f} °C ({zone})")
    if host.get("throttled") is not None:
        parts.append(f"throttled {host['throttled']}")
    where = f"{remote} ({host.get('hostname')})" if remote else host.get("hostname")
    return f"host {where}: " + "; ".join(parts)


def print_rows(rows: list[dict]) -> None:
    """The rows that were measured, for people; failures go to stderr as one line each."""
    from rich.table import Table

    from edgecnn.reports.formats import ms_text as _ms

    ok = [row for row in rows if row["status"] == "ok"]
    if not ok:
        return
    show_batch = any(row["batch"] != 1 for row in ok)
    table = Table(box=None, title=None)
    table.add_column("artifact", no_wrap=True)
    table.add_column("runtime", no_wrap=True)
    table.add_column("threads", justify="right")
    if show_batch:
        table.add_column("batch", justify="right")
    table.add_column("runs", justify="right")
    for name in ("p50 ms", "p90 ms", "mean ± std ms", "init ms", "first ms", "RSS MB", "size"):
        table.add_column(name, justify="right", no_wrap=True)
    for row in ok:
        lat = row["latency_ms"]
        runtime = f"{row['runtime']} {row['runtime_version']}"
        if row.get("provider") and row["format"] == "onnx":
            runtime += f" {row['provider']}"
        name = row["artifact_name"] + (f" @ {row['remote']}" if row.get("remote") else "")
        cells = [name, runtime, "default" if row["threads"] is None else str(row["threads"])]
        if show_batch:
            cells.append(str(row["batch"]))
        cells += [
            str(lat["count"]),
            _ms(lat["p50"]),
            _ms(lat["p90"]),
            f"{_ms(lat['mean'])} ± {_ms(lat['std'])}",
            _ms(row["init_ms"]),
            _ms(row["first_ms"]),
            f"{row['peak_rss_mb']:.0f}",
            si_bytes(row["bytes"]),
        ]
        table.add_row(*cells)
    print_table(table)
    seen = set()
    for row in ok:
        host = row.get("host") or {}
        key = (row.get("remote"), host.get("hostname"), host.get("cpu"))
        if key not in seen:
            seen.add(key)
            console.print(_host_line(host, row.get("remote")), highlight=False, soft_wrap=True)


@app.command("benchmark")
@one_line_errors
def benchmark_command(
    artifacts: List[str] = typer.Argument(
        ..., help=".tflite or .onnx files (or folders written by `edgecnn export`); any third-party model file works."
    ),
    runtime: str = typer.Option(
        "auto",
        help="auto (LiteRT, then tflite-runtime, then TensorFlow for "
        ".tflite; ONNX Runtime for .onnx), litert, tflite-runtime, tf or onnxruntime.",
    ),
    threads: Optional[int] = typer.Option(None, help="Threads for the runtime (default: its own choice)."),
    warmup: int = typer.Option(1, help="Warm-up runs after the first inference."),
    warmup_secs: float = typer.Option(
        0.5, "--warmup-secs", help="And at least this many seconds of warm-up (benchmark_model's warmup_min_secs)."
    ),
    runs: int = typer.Option(50, help="At least this many timed runs."),
    min_secs: float = typer.Option(1.0, "--min-secs", help="And at least this many seconds of them."),
    max_secs: float = typer.Option(150.0, "--max-secs", help="Stop the timed runs after this many seconds."),
    provider: Optional[str] = typer.Option(
        None, help="ONNX Runtime provider: cpu, cuda or tensorrt (needs onnxruntime-gpu); the one that ran is reported."
    ),
    batch: int = typer.Option(1, help="Batch size, where the model allows it."),
    data: Optional[str] = typer.Option(
        None,
        help="Real inputs: default, an image folder, fashion-mnist, "
        "an .npz of images, or an .npy of input tensors (default: random).",
    ),
    preprocess: Optional[str] = typer.Option(
        None, help="How to preprocess --data images: tf, caffe, torch, unit or raw (default: the manifest's)."
    ),
    samples: int = typer.Option(16, help="Images read from --data."),
    seed: int = typer.Option(0, help="Seed of the random inputs and of the --data sample."),
    input_scale: Optional[float] = typer.Option(
        None,
        "--input-scale",
        help="How an integer (uint8/int8) input holds --data's real values "
        "where the model does not say: real = scale * (q - zero point).",
    ),
    input_zero_point: Optional[int] = typer.Option(
        None, "--input-zero-point", help="Zero point with --input-scale (default 0)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the rows as a JSON list on stdout."),
    out: Optional[Path] = typer.Option(None, "--out", help="Append the rows to this .jsonl file."),
    remote: Optional[str] = typer.Option(
        None,
        help="Run on user@host over ssh (key login); the "
        "files (and a local --data) are copied there and removed after.",
    ),
    remote_python: Optional[str] = typer.Option(
        None, "--remote-python", help="Python with edgecnn on the remote host (default python3)."
    ),
    remote_port: Optional[int] = typer.Option(None, "--remote-port", help="ssh port of the remote host."),
    ssh_option: List[str] = typer.Option(
        [], "--ssh-option", help="Extra ssh -o option, Name=value (repeatable), e.g. IdentityFile=~/.ssh/pi."
    ),
    trust_model: bool = trust_model_option(),
) -> None:
    """Time artifacts the TFLite benchmark_model way, each in its own process.

    Init time and the first inference are reported apart; warm-up is at least --warmup
    runs and --warmup-secs seconds; then at least --runs runs and at least --min-secs
    seconds, capped at --max-secs. A manifest.json that is broken is ignored with a
    warning, and the file measured as a third-party model. A file that fails (missing,
    corrupt, crashing the runtime) is one error line and the others go on; the exit
    code is 1 when any failed.
    """
    from edgecnn.errors import BadArgument
    from edgecnn.harness import BenchmarkSettings, benchmark_many, failed_count

    settings = BenchmarkSettings(
        runtime=runtime,
        threads=threads,
        provider=provider,
        warmup=warmup,
        warmup_secs=warmup_secs,
        runs=runs,
        min_secs=min_secs,
        max_secs=max_secs,
        batch=batch,
        data=data,
        preprocess=preprocess,
        samples=samples,
        seed=seed,
        input_scale=input_scale,
        input_zero_point=input_zero_point,
        trust_model=trust_model,
    ).check(local_data=remote is None)
    if remote is None and (remote_python or remote_port is not None or ssh_option):
        given = [
            f
            for f, v in (
                ("--remote-python", remote_python),
                ("--remote-port", remote_port),
                ("--ssh-option", ssh_option),
            )
            if v
        ]
        raise BadArgument(f"{' and '.join(given)} need --remote user@host")
    if remote_port is not None and not 1 <= remote_port <= 65535:
        raise BadArgument(f"--remote-port must be from 1 to 65535. Received {remote_port}")
    if out is not None:
        from edgecnn.results import check_writable

        check_writable(out)  # before measuring, not after

    if remote is not None:
        from edgecnn.harness.remote import benchmark_remote

        with _status(f"benchmarking {len(artifacts)} artifact(s) on {remote}"):
            rows = benchmark_remote(
                artifacts, settings, target=remote, python=remote_python, port=remote_port, ssh_options=ssh_option
            )
    else:
        with _status("benchmarking") as status:

            def progress(index, total, name):
                if status is not None:
                    status.update(f"benchmarking {Path(name).name} ({index + 1}/{total})")

            rows = benchmark_many(artifacts, settings, progress=progress)

    if out is not None:
        from edgecnn.results import append_rows

        append_rows(out, rows)
    if as_json:
        print_json(rows)
    else:
        print_rows(rows)
    from rich.markup import escape

    _print_host_warnings(rows)
    _print_row_warnings(rows)
    for row in rows:
        if row["status"] != "ok":
            line = " ".join(f"{row['artifact']}: {row['error']}".split())
            error_console.print(f"[red]error:[/red] {escape(line)}", markup=True, highlight=False)
    if failed_count(rows):
        raise typer.Exit(1)


def _print_host_warnings(rows: list[dict]) -> None:
    """Each host warning once on stderr (the rows carry it in `warnings` too)."""
    from rich.markup import escape

    from edgecnn.harness import host_warnings

    shown = set()
    for row in rows:
        for message in host_warnings(row.get("host")):
            line = f"{row['remote']}: {message}" if row.get("remote") else message
            if line not in shown:
                shown.add(line)
                error_console.print(f"[yellow]warning:[/yellow] {escape(line)}", markup=True, highlight=False)


def _print_row_warnings(rows: list[dict]) -> None:
    """What made a row's facts doubtful (a broken manifest ignored, a manifest of another
    build), one line each on stderr; host warnings are printed once, above."""
    from rich.markup import escape

    from edgecnn.harness import host_warnings

    for row in rows:
        shown = set(host_warnings(row.get("host")))
        for message in row.get("warnings") or []:
            if message not in shown:
                shown.add(message)
                line = " ".join(f"{row['artifact']}: {message}".split())
                error_console.print(f"[yellow]warning:[/yellow] {escape(line)}", markup=True, highlight=False)


class _NoStatus:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


def _status(text: str):
    """A spinner on stderr when it is a terminal; nothing otherwise (logs stay clean)."""
    if error_console.is_terminal:
        return error_console.status(text)
    return _NoStatus()
