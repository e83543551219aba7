"""One seeded, re-iterable source of float32 NHWC batches, and its two adapters.

As in ONNX Runtime's calibrate.py: `CalibrationData` is the data, read and
preprocessed once; `representative_dataset()` hands it to the TFLite converter and
`ort_reader()` to ONNX Runtime's static quantization. The same arguments give
byte-identical arrays on every run, so the same export command gives the same model.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import PIL

from calibration.errors import BadArgument
from calibration.preprocessing import (
    check_crop_fraction,
    check_input_shape,
    check_mode,
    normalize,
    resize_image,
)
from calibration.sources import ImageSource, open_source


class CalibrationData:
    """`samples` images of `source`, picked with `seed`, preprocessed for one model.

    Iterating yields float32 arrays of shape (1, h, w, c), the same ones every
    time. Images are read lazily, on the first use of the data.
    """

    def __init__(
        self,
        source: ImageSource | str | os.PathLike,
        *,
        input_shape: Sequence[int],
        preprocess: str,
        samples: int | None = 100,
        seed: int | None = 0,
        crop_fraction: float | None = None,
    ):
        self.input_shape = check_input_shape(input_shape)
        self.preprocess = check_mode(preprocess).value
        if samples is not None and (isinstance(samples, bool) or int(samples) < 1):
            raise BadArgument(f"samples must be a positive integer. Received `samples={samples}`")
        self.samples = None if samples is None else int(samples)
        self.seed = None if seed is None else int(seed)
        base = open_source(source) if not isinstance(source, ImageSource) else source
        self.source = base.for_input_shape(self.input_shape)
        self.crop_fraction = check_crop_fraction(
            self.source.default_crop_fraction if crop_fraction is None else crop_fraction
        )
        self._arrays: np.ndarray | None = None
        self._labels: np.ndarray | None = None
        self._skipped = 0
        self._skipped_files: list[str] = []

    # -- the data --------------------------------------------------------------------
    def _load(self) -> None:
        if self._arrays is not None:
            return
        h, w, c = self.input_shape
        pixels, labels = [], []
        for image, label in self.source.iter_images(self.samples, seed=self.seed):
            pixels.append(resize_image(image, input_shape=self.input_shape, crop_fraction=self.crop_fraction))
            labels.append(label)
        batch = np.stack(pixels) if pixels else np.zeros((0, h, w, c), np.uint8)
        arrays = normalize(batch, self.preprocess)
        arrays.setflags(write=False)
        self._arrays = arrays
        if labels and all(label is not None for label in labels):
            self._labels = np.asarray(labels, dtype=np.int64)
            self._labels.setflags(write=False)
        self._skipped = self.source.skipped
        self._skipped_files = list(self.source.skipped_files)

    def arrays(self) -> np.ndarray:
        """All samples as one read-only float32 (N, h, w, c) array (computed once)."""
        self._load()
        return self._arrays

    def labels(self) -> np.ndarray | None:
        """The samples' labels (int64, aligned with `arrays()`), or None if unlabelled."""
        self._load()
        return self._labels

    def __len__(self) -> int:
        return len(self.arrays())

    def __iter__(self) -> Iterator[np.ndarray]:
        arrays = self.arrays()
        for i in range(len(arrays)):
            yield arrays[i : i + 1].copy()

    # -- adapters --------------------------------------------------------------------
    def representative_dataset(self) -> Callable[[], Iterator[list[np.ndarray]]]:
        """A zero-argument generator function for `TFLiteConverter.representative_dataset`."""

        def representative_dataset() -> Iterator[list[np.ndarray]]:
            for batch in self:
                yield [batch]

        return representative_dataset

    def ort_reader(self, input_name: str, *, layout: str = "NHWC"):
        """A new `onnxruntime.quantization.CalibrationDataReader` over the samples.

        ORT readers are read once: call this again for every quantization run.
        `layout="NCHW"` transposes the batches for models exported channels-first.
        Needs `onnx` (the export extra), imported only here.
        """
        from calibration._ort import make_reader

        return make_reader(self, input_name, layout=layout)

    # -- the record ------------------------------------------------------------------
    def info(self) -> dict[str, Any]:
        """What was used, for the manifest: JSON-ready."""
        arrays = self.arrays()
        record: dict[str, Any] = {
            "source": self.source.describe(),
            "count": int(len(arrays)),
            "samples_requested": self.samples,
            "skipped": self._skipped,
            "seed": self.seed,
            "preprocess": self.preprocess,
            "crop_fraction": self.crop_fraction,
            "resize": "central crop, then Pillow bilinear",
            "input_shape": list(self.input_shape),
            "labelled": self._labels is not None,
            "sha256": hashlib.sha256(np.ascontiguousarray(arrays).tobytes()).hexdigest(),
            "decoder": f"Pillow {PIL.__version__}",
        }
        if self._skipped_files:
            record["skipped_files"] = self._skipped_files[:10]
        if self.samples is not None and len(arrays) < self.samples:
            record["note"] = f"{self.samples} samples requested, the source has {len(arrays)}: all of them used"
        warning = self.source.warning
        if warning:
            record["warning"] = warning
        return record


def iter_batches(
    source: ImageSource | str | os.PathLike,
    *,
    input_shape: Sequence[int],
    preprocess: str,
    batch_size: int = 32,
    limit: int | None = None,
    seed: int | None = None,
    crop_fraction: float | None = None,
) -> Iterator[tuple[np.ndarray, np.ndarray | None]]:
    """Stream `(float32 (n, h, w, c) batch, int64 labels or None)` over a whole source.

    For evaluation: unlike `CalibrationData`, nothing is kept, so 1300 photos at
    224x224 never sit in memory at once. Without a seed the source's own order.
    """
    shape = check_input_shape(input_shape)
    mode = check_mode(preprocess).value
    if isinstance(batch_size, bool) or int(batch_size) < 1:
        raise BadArgument(f"batch_size must be a positive integer. Received `batch_size={batch_size}`")
    source = open_source(source) if not isinstance(source, ImageSource) else source
    source = source.for_input_shape(shape)
    fraction = check_crop_fraction(source.default_crop_fraction if crop_fraction is None else crop_fraction)
    pixels: list[np.ndarray] = []
    labels: list[int | None] = []

    def flush() -> tuple[np.ndarray, np.ndarray | None]:
        batch = normalize(np.stack(pixels), mode)
        y = None if any(v is None for v in labels) else np.asarray(labels, dtype=np.int64)
        pixels.clear()
        labels.clear()
        return batch, y

    for image, label in source.iter_images(limit, seed=seed):
        pixels.append(resize_image(image, input_shape=shape, crop_fraction=fraction))
        labels.append(label)
        if len(pixels) == int(batch_size):
            yield flush()
    if pixels:
        yield flush()
