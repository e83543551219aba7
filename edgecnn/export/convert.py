"""The converters called for one format, quietly, and the parity check in the artifact's runtime."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from converters import NEEDS_CALIBRATION
from converters.record import Conversion
from edgecnn.errors import EdgecnnError
from edgecnn.export.data import _Counting
from edgecnn.export.request import ExportRequest
from edgecnn.export.stages import Stages
from edgecnn.progress import Progress


def _convert(
    model, fmt: str, request: ExportRequest, calibration, progress: Progress, stages: "Stages | None" = None
) -> tuple[bytes, Conversion]:
    """`model` converted to `fmt`: the artifact's bytes and the converter's record of it."""
    stages = stages or Stages()
    needs_calibration = request.quantization in NEEDS_CALIBRATION
    count = len(calibration.arrays())
    if fmt == "tflite":
        from converters.tflite import keras_to_tflite

        dataset = _Counting(calibration.representative_dataset(), progress, count) if needs_calibration else None
        started = time.perf_counter()
        converted = keras_to_tflite(
            model, quantization=request.quantization, representative_dataset=dataset, io=request.io
        )
        # TFLite calibrates inside its converter: its share is said apart.
        stages.add(
            "tflite.convert",
            time.perf_counter() - started,
            **({"calibration_seconds": round(dataset.seconds, 2)} if dataset else {}),
        )
        return converted
    from converters.onnx import INPUT_NAME, keras_to_onnx, quantize_onnx

    with stages("onnx.tf2onnx"):
        float_model, conversion = keras_to_onnx(model)
    if request.quantization == "float32":
        return float_model, conversion
    if needs_calibration:
        progress.start("calibrating (ONNX Runtime)", total=None)
    return quantize_onnx(
        float_model,
        quantization=request.quantization,
        calibration_reader_factory=lambda: calibration.ort_reader(INPUT_NAME),
        calib_method=request.calib_method,
        stage=lambda name: stages(f"onnx.{name}"),
    )


def _quiet():
    """Converters print to stderr from C++ and Python logging, ONNX Runtime's entropy and
    percentile calibrators to stdout (which is `--json`'s); the CLI promises quiet."""
    from edgecnn._tf import quiet_conversion

    return quiet_conversion(stdout=True)


def _parity(path: Path, parity_batch, reference, held_out: bool, qat_reference=None) -> dict:
    """Run the artifact in its own runtime against the Keras float outputs: the parity record.

    After QAT, also against the QAT Keras model (fake quantization), which the artifact
    should follow more closely."""
    from edgecnn.runtime import open_session, output_spread, predict

    try:
        session = open_session(path)
    except EdgecnnError as exc:
        if "no_integer_overflow_from_quantization" not in str(exc):
            raise
        # LiteRT's check that an activation's bounds fit int32 once quantized: a range so narrow
        # (activations vanishing, as in a deep CNN with untrained weights) that its scale is ~0.
        raise EdgecnnError(
            f"{exc}: the converter made an activation range too narrow to quantize "
            "(activations near zero, as with untrained weights such as --weights none); "
            "export trained weights (--weights PATH) or --weights auto"
        ) from None
    outputs = predict(session, parity_batch, batch_size=1).reshape(reference.shape)  # image by image
    spread = output_spread(reference)
    record = {
        "runtime": f"{session.runtime} {session.runtime_version}",
        "samples": int(len(parity_batch)),
        "max_abs_diff": float(np.max(np.abs(outputs - reference))),
        "top1_agreement": float(np.mean(outputs.argmax(-1) == reference.argmax(-1))),
        "held_out": held_out,  # false: the images were also calibration images
        # How much the float model's outputs vary: with random weights they can be so flat
        # that any variant "agrees"; then `informative` is false (edgecnn.runtime.output_spread).
        "reference_output_std": spread["mean_std_across_classes"],
        "reference_top1_classes": spread["distinct_top1"],
        "informative": spread["informative"],
    }
    if qat_reference is not None:
        qat_reference = qat_reference.reshape(outputs.shape)
        record["qat_model_max_abs_diff"] = float(np.max(np.abs(outputs - qat_reference)))
        record["qat_model_top1_agreement"] = float(np.mean(outputs.argmax(-1) == qat_reference.argmax(-1)))
    return record


def _predict(model, batch):
    outputs = model.predict(batch, verbose=0, batch_size=8)
    return outputs[0] if isinstance(outputs, list) else outputs
