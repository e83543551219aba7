"""The export pipeline: the request checked, then build, (QAT), calibration data, convert,
parity and staging per format, in this process or one process per format; published together."""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

import numpy as np

from edgecnn.export.child import _export_in_child
from edgecnn.export.convert import _convert, _predict, _quiet
from edgecnn.export.data import _calibration_and_parity_data, _calibration_source
from edgecnn.export.model import BuiltModel, _build, quantization_aware
from edgecnn.export.outfolder import _HeldWarnings, _OutFolder, _terminate_as_exit
from edgecnn.export.record import _stage
from edgecnn.export.request import ExportRequest, _check, _folder_names
from edgecnn.export.stages import Stages, _current_rss_bytes
from edgecnn.loading import is_model_file
from edgecnn.progress import Progress


@contextlib.contextmanager
def reserve(request: ExportRequest):
    """`--out` locked for `request`'s artifacts (and SIGTERM as an exit) across the stages run
    before `export(..., out=)`: a second export of the same artifact is refused before the
    first one's QAT trains, and a failed stage leaves no `--out` it created."""
    _check(request)
    with _terminate_as_exit(), _OutFolder(request.out, _folder_names(request)) as out:
        yield out


def export(
    request: ExportRequest,
    progress: Progress | None = None,
    *,
    model: BuiltModel | None = None,
    out: "_OutFolder | None" = None,
) -> list[dict]:
    """Export `request.model` in each requested format; return the manifests written.

    model -> optimize -> convert -> manifest: `model`, when given, is the model built
    (`build_model(request)`) and optimized (`.after(*stage)`, `quantization_aware`) before;
    without it, export builds the model itself, and runs the QAT stage a `qat` request asks for.

    Every option is checked before any work (`BadArgument`); the artifact folders are
    staged as `.NAME.*.partial` in `--out` and renamed into place together once every
    format has converted and passed its parity run, so a failure (or SIGINT/SIGTERM)
    leaves nothing behind, not even an `--out` folder it created. A lock per artifact
    folder makes a second export of the same artifact into the same `--out` refuse at
    once. Warnings reach `progress` only when the export succeeds (they are in the
    manifests either way); a failed export reports its error alone.
    """
    started = time.perf_counter() if model is None else model.started
    _check(request)
    shown = progress or Progress()
    progress = _HeldWarnings(shown)
    if out is not None:  # reserved by the caller (`reserve`)
        manifests = _export(request, progress, started, out, model)
    else:
        with _terminate_as_exit(), _OutFolder(request.out, _folder_names(request)) as out:
            manifests = _export(request, progress, started, out, model)
    progress.release()
    return manifests


def _export(
    request: ExportRequest,
    progress: "_HeldWarnings",
    started: float,
    out: "_OutFolder",
    model: BuiltModel | None = None,
) -> list[dict]:
    if model is None and _process_per_format(request):
        _calibration_source(request, progress)  # a bad --calib fails before any process starts
        staged = [
            _export_in_child(request, fmt, request.formats[index:], progress, out)
            for index, fmt in enumerate(request.formats)
        ]
    else:
        staged = _export_formats(request, request.formats, progress, started, out, built=model)
    return out.publish(staged)


def _process_per_format(request: ExportRequest) -> bool:
    """Several formats convert each in a process of its own, which gives its memory back
    when it ends (TensorFlow keeps what it once allocated: in one process the ONNX
    conversion starts on top of what the TFLite one left). Not after QAT (one format),
    and not for small models (a zoo model at 64 px or less, a Keras file under 64 MB),
    whose conversions take little memory and for which starting a process (TensorFlow's
    import, the model built again) costs more than it saves.
    `EDGECNN_EXPORT_PROCESSES=one` (or `per-format`) decides for every export."""
    choice = os.environ.get("EDGECNN_EXPORT_PROCESSES", "auto")
    if len(request.formats) < 2 or request.qat or choice == "one":
        return False
    if choice == "per-format":
        return True
    if is_model_file(request.model):
        return Path(request.model).stat().st_size > 64 * 2**20
    from edgecnn.models import get_model_info

    return (request.input_size or get_model_info(request.model).default_input_shape[0]) > 64


def _export_formats(
    request: ExportRequest,
    formats,
    progress: Progress,
    started: float,
    out,
    stages: "Stages | None" = None,
    memory_formats=None,
    built: BuiltModel | None = None,
) -> list:
    """Build (unless `built` is given), calibrate and convert `formats` in this process; the
    staged folders.

    The memory check covers `memory_formats` (default `formats`): a process for the
    first of several formats refuses at once if a later one would not fit either."""
    stages = stages or Stages()
    if built is None:
        built = _build(request, progress, stages)
        if request.qat:
            built = quantization_aware(built, request, progress)
    for message in built.warnings:  # said by stages before export: shown with export's own
        if message not in request.warnings:
            request.warnings.append(message)
        progress.warn(message)
    stages.records.update({name: dict(record) for name, record in built.stages.items()})
    source = built.calibration_source
    if source is None:
        source = _calibration_source(request, progress)
    # With QAT the QAT model is converted; the float model stays the parity reference
    # (and gives `params`: the QAT model also holds its quantizers' min/max variables).
    model, facts, converted = built.model, built.facts, built.converted
    input_shape = tuple(int(d) for d in model.inputs[0].shape[1:])
    with stages("calibration_data"):
        calibration, parity_batch, held_out = _calibration_and_parity_data(
            request, source, facts["preprocess"], input_shape, progress
        )
    with stages("reference"):
        reference = _predict(model, parity_batch)
        qat_reference = _predict(converted, parity_batch) if built.optimized is not None else None
    _check_conversion_memory(
        request,
        converted,
        tuple(memory_formats or formats),
        calibration,
        one_process=stages.process == "shared" and len(formats) > 1,
    )
    prepare_seconds = time.perf_counter() - started  # shared by every format

    staged = []
    for fmt in formats:
        format_started = time.perf_counter()
        progress.start(f"converting to {fmt} ({request.quantization}{', QAT' if built.qat else ''})")
        with _quiet():
            conversion = _convert(converted, fmt, request, calibration, progress, stages)
        staged.append(
            _stage(
                request,
                conversion,
                built,
                calibration,
                (parity_batch, reference, held_out, qat_reference),
                prepare_seconds + (time.perf_counter() - format_started),
                progress,
                out,
                stages,
            )
        )
    return staged


def _check_conversion_memory(request: ExportRequest, model, formats, calibration, *, one_process: bool) -> None:
    """Refuse, in one line, a conversion whose estimated peak exceeds the memory available."""
    if os.environ.get("EDGECNN_MEMORY_CHECK", "1") == "0":
        return
    from converters.memory import check_export_memory

    check_export_memory(
        params=int(model.count_params()),
        quantization=request.quantization,
        formats=tuple(formats),
        calib_method=request.calib_method,
        calib_samples=len(calibration.arrays()),
        activation_bytes=_activation_bytes(model),
        current_rss=_current_rss_bytes(),
        one_process=one_process,
    )


def _activation_bytes(model) -> int:
    """float32 bytes of every layer output of one image (what ONNX Runtime's histogram
    calibrators keep per calibration sample)."""
    total = 0
    for layer in model.layers:
        for node in getattr(layer, "_inbound_nodes", []):  # a shared layer has several
            for tensor in tf_nest_flatten(getattr(node, "outputs", None)):
                shape = getattr(tensor, "shape", None)
                if shape is not None and shape.rank is not None:
                    total += 4 * int(np.prod([d or 1 for d in shape[1:]], dtype=np.int64))
    return total


def tf_nest_flatten(structure) -> list:
    if structure is None:
        return []
    if isinstance(structure, (list, tuple)):
        return [item for part in structure for item in tf_nest_flatten(part)]
    if isinstance(structure, dict):
        return [item for part in structure.values() for item in tf_nest_flatten(part)]
    return [structure]
