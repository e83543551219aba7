"""Helpers the test files share (plain functions; the expensive fixtures are in conftest.py).

    from _helpers import one_error_line

pytest puts this folder on sys.path (tests/ has no __init__.py), so the test files import it by name.
"""


def one_stderr_line(result, prefix: str = "error: ") -> str:
    """The one line a command printed on stderr, which starts with `prefix`: nothing else there
    (no blank line either), no traceback and no rich error panel on stdout or stderr.

    `result`: a typer/click `Result` or a `subprocess.CompletedProcess` (text mode)."""
    stdout = getattr(result, "output", None) or getattr(result, "stdout", "") or ""
    stderr = result.stderr or ""
    lines = stderr.splitlines()
    assert len(lines) == 1 and lines[0].strip(), repr(stderr)
    assert lines[0].startswith(prefix), lines[0]
    for text in (stdout, stderr):
        assert "Traceback" not in text, text
        assert "╭" not in text, text  # typer's boxed usage error instead of one line
    return lines[0]


def one_error_line(result) -> str:
    """The one `error: ...` line of a failed command (see `one_stderr_line`)."""
    return one_stderr_line(result, "error: ")
