"""What a pipeline reports as it goes: one protocol for export, training, evaluate and tune.

Every method is optional (a no-op here), so a library caller passes nothing and the CLI draws
it with rich (edgecnn/cli/_progress.py).
"""

from __future__ import annotations


class Progress:
    def start(self, label: str, total: int | None = None) -> None:
        """A stage begins (`total` steps, or None when unknown)."""

    def step(self, label: str, total: int | None = None) -> None:
        """One step of a multi-step pipeline begins (tune's ladder); its stages call `start`."""

    def advance(self, steps: int = 1) -> None:
        """`steps` more of the current stage are done."""

    def warn(self, message: str) -> None:
        """Something the user should read; the pipeline goes on."""

    def note(self, message: str) -> None:
        """A line of information (a step's result)."""

    def epoch_end(self, epoch: int, epochs: int, logs: dict) -> None:
        """A training epoch ended, with Keras's logs (loss, accuracy, val_*, seconds)."""
