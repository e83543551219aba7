"""The `edgecnn` command line: one thin module per command, each mapping options onto one
library call and rendering the result (fastapi-cli's shape).

Imports go one way: this package imports the command modules (which register themselves on
`app`), and they import only `edgecnn.cli._app` and `edgecnn.cli._progress`. Heavy imports
happen inside the commands, so `edgecnn benchmark` on a board never loads TensorFlow.
"""

from edgecnn.cli import benchmark, compare, evaluate, export, inspect, profile, train, tune  # noqa: F401  (importing registers the commands)
from edgecnn.cli._app import (  # noqa: F401  (the names tests and benchmarks use)
    OneLineGroup,
    app,
    console,
    error_console,
    fail,
    one_line_errors,
    print_json,
    print_table,
    reflow_help,
    si_bytes,
    trust_model_option,
    usage_error_line,
)


def main() -> None:
    app()
