"""The `edgecnn` command line: each command maps options onto one library call.

Errors from the library become one red line on stderr and a non-zero exit code
(2 for a bad argument, 1 for a failure), never a traceback; EDGECNN_DEBUG=1 shows it.
Heavy imports happen inside the commands, so `edgecnn benchmark` on a board never
loads TensorFlow.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from typing import Any, Callable

import typer
from rich.console import Console

from edgecnn import __version__
from edgecnn.errors import EdgecnnError

app = typer.Typer(
    name="edgecnn",
    help="From a Keras CNN to a measured, quantized TFLite or ONNX artifact.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
error_console = Console(stderr=True, highlight=False, soft_wrap=True)


def fail(message: str, exit_code: int = 1) -> typer.Exit:
    """Print one red line on stderr and return the Exit to raise."""
    line = " ".join(str(message).split())
    error_console.print(f"[red]error:[/red] {line}", markup=True)
    return typer.Exit(exit_code)


def one_line_errors(command: Callable) -> Callable:
    """Turn library exceptions into one line on stderr and an exit code."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any):
        try:
            return command(*args, **kwargs)
        except (typer.Exit, typer.Abort, KeyboardInterrupt):
            raise
        except Exception as exc:  # noqa: BLE001: the whole point is no traceback
            if os.environ.get("EDGECNN_DEBUG"):
                raise
            if isinstance(exc, EdgecnnError):
                raise fail(str(exc), exc.exit_code) from None
            if isinstance(exc, OSError) and exc.filename:
                raise fail(f"{exc.strerror or exc}: {exc.filename}", 1) from None
            raise fail(f"{type(exc).__name__}: {exc}", 1) from None

    return wrapper


def print_json(payload: Any) -> None:
    """Machine output: plain JSON on stdout, nothing else."""
    sys.stdout.write(json.dumps(payload, indent=2, default=str) + "\n")


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"edgecnn {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version_callback, is_eager=True,
                                 help="Print the version and exit."),
) -> None:
    """edgecnn: model zoo, cost profiler, quantized export and on-device benchmarks."""


def main() -> None:
    app()


if __name__ == "__main__":
    main()
