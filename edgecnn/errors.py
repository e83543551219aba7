"""Errors that the CLI reports as one line on stderr instead of a traceback."""


class EdgecnnError(Exception):
    """A failure of the job itself (a missing file, a failed conversion): exit code 1."""

    exit_code = 1


class BadArgument(EdgecnnError, ValueError):
    """A value the user gave that cannot work (unknown model, alpha out of range): exit code 2."""

    exit_code = 2
