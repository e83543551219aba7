"""What every command shares: the app, one-line errors, output helpers, formatters.

Errors from the library become one red line on stderr and a non-zero exit code
(2 for a bad argument, 1 for a failure), never a traceback; EDGECNN_DEBUG=1 shows it.
Command modules import this one; only edgecnn/cli/__init__.py imports the commands.
"""

from __future__ import annotations

import contextlib
import difflib
import functools
import inspect
import json
import os
import sys
from typing import Any, Callable

import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperGroup

from edgecnn import __version__
from edgecnn.errors import EdgecnnError

try:  # recent typer vendors Click as typer._click; older versions use the click package
    from typer._click import exceptions as _click_exceptions
except ImportError:  # pragma: no cover - depends on the installed typer
    from click import exceptions as _click_exceptions
BadParameter, ClickException = _click_exceptions.BadParameter, _click_exceptions.ClickException
MissingParameter, NoSuchOption = _click_exceptions.MissingParameter, _click_exceptions.NoSuchOption
UsageError = _click_exceptions.UsageError
NoArgsIsHelpError = getattr(_click_exceptions, "NoArgsIsHelpError", ())  # Click < 8.2 has none


def _option_name(param) -> str:
    """`--input-size` for an option (its long name), `MODEL` for an argument."""
    opts = list(getattr(param, "opts", None) or [])
    if getattr(param, "param_type_name", "") == "argument" or not opts:
        return (param.name or "argument").upper()
    return max(opts, key=len)


_PYDANTIC_TYPES = {
    "int_parsing": "is not an integer",
    "int_from_float": "is not an integer",
    "float_parsing": "is not a number",
    "bool_parsing": "is not true or false",
}


def usage_error_line(exc: UsageError) -> str:
    """Click's usage error as one line: `--input-size: 'abc' is not an integer`."""
    if isinstance(exc, MissingParameter):
        kind = exc.param_type or getattr(exc.param, "param_type_name", None) or "parameter"
        name = _option_name(exc.param) if exc.param is not None else ""
        return f"missing {kind} {name}".rstrip()
    if isinstance(exc, BadParameter):
        message = exc.message
        cause = exc.__cause__
        errors = cause.errors() if hasattr(cause, "errors") else None  # pydantic's ValidationError
        if errors:
            first = errors[0]
            described = _PYDANTIC_TYPES.get(first.get("type"))
            message = f"{first.get('input')!r} {described}" if described else str(first.get("msg", message))
        message = message[:1].lower() + message[1:] if message[:2] != message[:2].upper() else message
        name = _option_name(exc.param) if exc.param is not None else None
        return f"{name}: {message}" if name else message
    if isinstance(exc, NoSuchOption):
        close = difflib.get_close_matches(exc.option_name, sorted(exc.possibilities or ()), n=1, cutoff=0.7)
        return f"no such option {exc.option_name}" + (f" (did you mean {close[0]}?)" if close else "")
    message = exc.format_message()
    return message[:1].lower() + message[1:]


def _plain_flags(params):
    """An on/off flag takes no value: show no `<bool>` type beside it in --help."""
    for param in params:
        if getattr(param, "is_flag", False) and param.metavar is None:
            param.metavar = ""
    return params


def reflow_help(text: str | None) -> str | None:
    """Join the lines of each help paragraph, so rich wraps them to the terminal.

    Typer's rich help keeps a docstring's line breaks: a sentence broken in the source
    broke mid-line on screen. Paragraphs with list items or indented lines keep theirs.
    """
    if not text:
        return text
    paragraphs = []
    for paragraph in inspect.cleandoc(text).split("\n\n"):
        lines = paragraph.splitlines()
        keep = paragraph.startswith("\b") or any(line.startswith((" ", "\t", "- ", "* ")) for line in lines)
        paragraphs.append(paragraph if keep else " ".join(line.strip() for line in lines))
    return "\n\n".join(paragraphs)


class OneLineGroup(TyperGroup):
    """The `edgecnn` group: every usage error of every command is one line and exit code 2.

    Click and Typer print a usage box of five or six lines; here parsing errors (unknown
    option, a value of the wrong type, a missing argument, an unknown command) and
    BadParameter raised by a command become `error: --input-size: 'abc' is not an integer`.
    `--help` and `edgecnn` alone still print the help.
    """

    def make_context(self, info_name, args, *rest: Any, **kwargs: Any):
        with _usage_errors_in_one_line():
            _refuse_empty_values(args)
            return super().make_context(info_name, args, *rest, **kwargs)

    def invoke(self, ctx):
        with _usage_errors_in_one_line():
            return super().invoke(ctx)

    def get_params(self, ctx):
        return _plain_flags(super().get_params(ctx))

    def get_command(self, ctx, cmd_name: str):
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            _plain_flags([*command.params, command.get_help_option(ctx)])
            command.help = reflow_help(command.help)
        return command


def _refuse_empty_values(args) -> None:
    """An empty value (`--out ''`, `--calib=`) is a mistake, never a choice: refused by name.
    Click would take `--out ''` as the current folder (Path('') is '.') and write there."""
    for index, arg in enumerate(args or ()):
        option = arg[:-1] if arg.startswith("--") and arg.endswith("=") else None
        if arg == "" and index and str(args[index - 1]).startswith("-"):
            option = args[index - 1]
        if option:
            raise UsageError(f"{option}: an empty value; give one")
        if arg == "":
            raise UsageError("an empty argument; give a value")


@contextlib.contextmanager
def _usage_errors_in_one_line():
    try:
        yield
    except NoArgsIsHelpError:
        raise  # `edgecnn` alone: the help, as before
    except UsageError as exc:
        if os.environ.get("EDGECNN_DEBUG"):
            raise
        raise fail(usage_error_line(exc), 2) from None
    except ClickException as exc:  # a file option that cannot be opened, and the like
        if os.environ.get("EDGECNN_DEBUG"):
            raise
        message = exc.format_message()
        raise fail(message[:1].lower() + message[1:], exc.exit_code) from None


app = typer.Typer(
    name="edgecnn",
    help="From a Keras CNN to a measured, quantized TFLite or ONNX artifact.",
    cls=OneLineGroup,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
error_console = Console(stderr=True, highlight=False, soft_wrap=True)


# Every command that loads a Keras file takes this one option (see edgecnn/model_gate.py).
TRUST_MODEL_HELP = (
    "Load a Keras file even where its config names code edgecnn does not allow (a "
    "Lambda layer, a custom class, a module outside Keras): like Keras's safe_mode=False, "
    "only for a file you made yourself."
)


def trust_model_option():
    return typer.Option(False, "--trust-model", help=TRUST_MODEL_HELP)


def fail(message: str, exit_code: int = 1) -> typer.Exit:
    """Print one red line on stderr and return the Exit to raise."""
    line = escape(" ".join(str(message).split()))  # a path like [x] is not markup
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
        except Exception as exc:  # noqa: BLE001  (the whole point is no traceback)
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


def print_table(table) -> None:
    """A terminal gets what fits; a pipe or a file gets the whole table, unwrapped."""
    if console.is_terminal:
        console.print(table)
        return
    from rich.measure import Measurement

    natural = Measurement.get(console, console.options.update(max_width=10_000), table).maximum
    Console(width=max(natural, 40), highlight=False).print(table)


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"edgecnn {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version_callback, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """edgecnn: model zoo, cost profiler, quantized export and on-device benchmarks."""


# --------------------------------------------------------------------------- formatters


def si_count(n: float, unit: str = "") -> str:
    """3.54M, 15.47G, 61.7K: counts for people."""
    for factor, prefix in ((1e9, "G"), (1e6, "M"), (1e3, "K")):
        if abs(n) >= factor:
            return f"{n / factor:.2f}{prefix}{unit}"
    return f"{n:g}{unit}"


def si_bytes(n: int) -> str:
    """23.52 kB, 3.94 MB: sizes for people."""
    for factor, prefix in ((1e9, "GB"), (1e6, "MB"), (1e3, "kB")):
        if n >= factor:
            return f"{n / factor:.2f} {prefix}"
    return f"{n} B"


def shape_text(shape) -> str:
    if shape and isinstance(shape[0], (tuple, list)):
        return ", ".join(shape_text(s) for s in shape)
    return "x".join(str(d) for d in shape) if shape else "scalar"
