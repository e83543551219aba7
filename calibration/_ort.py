"""The ONNX Runtime adapter, imported only when asked for.

`onnxruntime.quantization` imports `onnx`, which the runtime install of edgecnn
(a Raspberry Pi running `edgecnn evaluate`) does not have.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from calibration.errors import BadArgument, EdgecnnError

LAYOUTS = ("NHWC", "NCHW")


def make_reader(batches: Iterable[np.ndarray], input_name: str, *, layout: str = "NHWC") -> Any:
    """A fresh CalibrationDataReader yielding ``{input_name: batch}`` for each batch."""
    layout = str(layout).upper()
    if layout not in LAYOUTS:
        raise BadArgument(f"layout must be NHWC or NCHW. Received `layout={layout}`")
    if not input_name:
        raise BadArgument("ort_reader needs the model's input name")
    try:
        from onnxruntime.quantization import CalibrationDataReader
    except ImportError as exc:
        raise EdgecnnError(
            f"ONNX quantization needs the export side of edgecnn ({exc.name} is missing): pip install 'edgecnn[export]'"
        ) from None

    class EdgecnnCalibrationReader(CalibrationDataReader):
        """Reads the calibration batches once, in order; then get_next() returns None."""

        def __init__(self) -> None:
            self._batches = list(batches)
            self._start, self._end = 0, len(self._batches)
            self._next = 0

        def get_next(self) -> dict[str, np.ndarray] | None:
            if self._next >= self._end:
                return None
            batch = self._batches[self._next]
            self._next += 1
            if layout == "NCHW":
                batch = np.ascontiguousarray(batch.transpose(0, 3, 1, 2))
            return {input_name: batch}

        def __len__(self) -> int:
            return self._end - self._start

        def set_range(self, start_index: int, end_index: int) -> None:
            self._start = max(0, int(start_index))
            self._end = min(len(self._batches), int(end_index))
            self._next = self._start

    return EdgecnnCalibrationReader()
