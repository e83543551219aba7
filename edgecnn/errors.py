"""Errors that the CLI reports as one line on stderr (the classes live in calibration.errors,
the lowest package, so that every package raises the same ones; see there)."""

from calibration.errors import *  # noqa: F401,F403
from calibration.errors import BadArgument, EdgecnnError  # noqa: F401  (named for readers and linters)
