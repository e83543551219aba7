"""One progress adapter: any pipeline's `edgecnn.progress.Progress` drawn with rich on stderr.

Drawn only on a terminal (in a pipe or a log a bar leaves stray lines), transient (a failure
leaves its one error line alone); warnings and per-epoch lines print either way, above the bar,
so --json output on stdout stays clean.
"""

from __future__ import annotations

import contextlib

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from edgecnn.cli._app import error_console
from edgecnn.progress import Progress as PipelineProgress

_EPOCH_FIELDS = (("loss", "loss"), ("accuracy", "acc"), ("val_loss", "val_loss"), ("val_accuracy", "val_acc"))


class RichProgress(PipelineProgress):
    """`start` (or `step`) opens a new bar and closes the last; `epoch_end` prints one line.

    `bars_from="step"` draws only the pipeline's steps (tune), so the sub-stages a step runs,
    which call `start` themselves, do not add bars of their own."""

    def __init__(self, bar: Progress, *, epoch_label: str = "epoch", bars_from: str = "start"):
        self._bar = bar
        self._task = None
        self._epoch_label = epoch_label
        self._bars_from = bars_from

    def _open(self, label, total):
        self.finish()
        self._task = self._bar.add_task(label, total=total)

    def start(self, label, total=None):
        if self._bars_from == "start":
            self._open(label, total)

    def step(self, label, total=None):
        self._open(label, total)

    def advance(self, steps=1):
        if self._task is not None:
            self._bar.advance(self._task, steps)

    def warn(self, message):
        self._bar.console.print(f"[yellow]warning:[/yellow] {message}", highlight=False)

    def note(self, message):
        if not self._bar.disable:  # a step's result line: for a person watching, not a log
            self._bar.console.print(message, highlight=False)

    def epoch_end(self, epoch, epochs, logs):
        parts = [f"{self._epoch_label} {epoch + 1}/{epochs}"]
        parts += [f"{label} {logs[key]:.4f}" for key, label in _EPOCH_FIELDS if logs.get(key) is not None]
        if logs.get("seconds") is not None:
            parts.append(f"{logs['seconds']:.1f} s")
        self._bar.console.print("  ".join(parts), highlight=False)

    def finish(self):
        if self._task is not None:
            total = self._bar.tasks[-1].total or 1
            self._bar.update(self._task, completed=total, total=total)
            self._task = None


@contextlib.contextmanager
def rich_progress(*, remaining: bool = False, transient: bool = True, **options):
    """`with rich_progress() as progress:` a RichProgress over a stderr bar (transient: it goes
    away, so a failure leaves one error line)."""
    columns = [
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    ]
    if remaining:
        columns.append(TimeRemainingColumn())
    with Progress(*columns, console=error_console, transient=transient, disable=not error_console.is_terminal) as bar:
        progress = RichProgress(bar, **options)
        yield progress
        progress.finish()
