"""The project's base errors: the CLI reports them as one line on stderr instead of a traceback.

They live here, in the lowest package, so that calibration, converters and edgecnn all raise
the same classes while imports go one way only (edgecnn -> converters -> calibration).
`edgecnn.errors` re-exports them: import them from there in edgecnn's own code.
"""


class EdgecnnError(Exception):
    """A failure of the job itself (a missing file, a failed conversion): exit code 1."""

    exit_code = 1


class BadArgument(EdgecnnError, ValueError):
    """A value the user gave that cannot work (unknown model, alpha out of range): exit code 2."""

    exit_code = 2


# -- range checks: every numeric option is checked where the library takes it -----------------
# One message shape for all: `--input-size must be at least 16. Received 0`.
# `option` is the CLI spelling; Python callers get the same BadArgument (a ValueError).


def check_int(value, option: str, *, minimum: int | None = None, maximum: int | None = None) -> int:
    """`value` as an int within [minimum, maximum]; a bool, a float or a string is refused."""
    import numbers

    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise BadArgument(
            f"{option} must be an integer{',' if minimum is not None or maximum is not None else ''}"
            f"{_range_text(minimum, maximum)}. Received {value!r}"
        )
    value = int(value)
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise BadArgument(f"{option} must be{_range_text(minimum, maximum)}. Received {value}")
    return value


def check_number(
    value,
    option: str,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    above: float | None = None,
    below: float | None = None,
) -> float:
    """`value` as a finite float: >= minimum, <= maximum, > above, < below (each when given).

    inf and nan are refused always: no option of edgecnn means anything by them.
    """
    import math
    import numbers

    bounds = []
    if above is not None:
        bounds.append(f"> {above:g}")
    if minimum is not None:
        bounds.append(f">= {minimum:g}")
    if below is not None:
        bounds.append(f"< {below:g}")
    if maximum is not None:
        bounds.append(f"<= {maximum:g}")
    wanted = f"{option} must be a finite number" + (f" {' and '.join(bounds)}" if bounds else "")
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise BadArgument(f"{wanted}. Received {value!r}")
    number = float(value)
    if (
        not math.isfinite(number)
        or (above is not None and number <= above)
        or (minimum is not None and number < minimum)
        or (below is not None and number >= below)
        or (maximum is not None and number > maximum)
    ):
        raise BadArgument(f"{wanted}. Received {value!r}")
    return number


# numpy, Keras and TensorFlow seeds are 32-bit unsigned.
MAX_SEED = 2**32 - 1


def check_seed(value, option: str = "--seed") -> int:
    return check_int(value, option, minimum=0, maximum=MAX_SEED)


def _range_text(minimum, maximum) -> str:
    if minimum is not None and maximum is not None:
        return f" from {minimum} to {maximum}"
    if minimum is not None:
        return f" at least {minimum}"
    if maximum is not None:
        return f" at most {maximum}"
    return ""
