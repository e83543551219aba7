"""The calibration images and the parity images, read once from `--calib`."""

from __future__ import annotations

import time

from converters import NEEDS_CALIBRATION
from edgecnn.errors import BadArgument
from edgecnn.export.request import ExportRequest, _warn
from edgecnn.loading import is_model_file
from edgecnn.progress import Progress


def _calibration_source(request: ExportRequest, progress: Progress):
    import calibration

    # With --qat, `--calib default` means the training data: parity images the model knows.
    spec = request.qat_dataset if request.qat and request.calib == "default" else request.calib
    source = calibration.open_source(spec, split="train")
    _check_image_memory(request, source)
    if getattr(source, "warning", None):
        _warn(request, progress, source.warning)
    return source


def _check_image_memory(request: ExportRequest, source) -> None:
    """The calibration and parity images are held as float32 at the model's input size: a
    large source (Fashion-MNIST's 60,000) at 224 px would not fit. Refused before building."""
    if is_model_file(request.model):
        return  # its input size is known once loaded
    from edgecnn.models import get_model_info
    from edgecnn.profiler import _gb, available_memory_bytes

    shape = get_model_info(request.model).default_input_shape
    size = request.input_size or shape[0]
    asked = request.calib_samples + request.parity_samples
    try:
        count = min(asked, len(source))
    except TypeError:  # a source without a length (random images) gives what is asked
        count = asked
    need = count * size * size * shape[2] * 4
    available = available_memory_bytes()
    if available is not None and need > available // 2:
        raise BadArgument(
            f"--calib-samples {request.calib_samples}: {count} images at {size}x{size}x{shape[2]} "
            f"need {_gb(need)} as float32, more than half of the {_gb(available)} available; "
            "ask for fewer"
        )


def _calibration_and_parity_data(request: ExportRequest, source, preprocess: str, input_shape, progress: Progress):
    """The calibration data, and the images the parity check runs on.

    Parity images are held out from calibration when the source has enough: the next
    images of the same seeded order. Otherwise (the 100 shipped photos with the default
    100 calibration samples) parity reuses calibration images and says so.
    """
    import calibration as calib

    needs_calibration = request.quantization in NEEDS_CALIBRATION
    if needs_calibration:
        progress.start("reading calibration images", total=None)
    calib_count = request.calib_samples if needs_calibration else 0
    pool = calib.CalibrationData(
        source,
        input_shape=input_shape,
        preprocess=preprocess,
        samples=calib_count + request.parity_samples,
        seed=request.seed,
    )
    if pool.info().get("warning"):  # e.g. images that did not decode, known once read
        _warn(request, progress, pool.info()["warning"])
    held_out = pool.arrays()[calib_count:]
    if not needs_calibration:
        return pool, held_out, True
    calibration = calib.CalibrationData(
        source, input_shape=input_shape, preprocess=preprocess, samples=calib_count, seed=request.seed
    )
    if len(held_out):
        return calibration, held_out, True
    return calibration, calibration.arrays()[: request.parity_samples], False


class _Counting:
    """Wrap a representative_dataset so the progress bar moves with calibration (and
    the seconds from its first image to its last are known)."""

    def __init__(self, generator_fn, progress: Progress, total: int):
        self._generator_fn, self._progress, self._total = generator_fn, progress, total
        self.seconds = 0.0

    def __call__(self):
        self._progress.start("calibrating", total=self._total)
        started = time.perf_counter()
        for sample in self._generator_fn():
            yield sample
            self._progress.advance()
        self.seconds += time.perf_counter() - started
