"""One artifact's staging folder: the artifact, its parity run and its manifest, assembled here."""

from __future__ import annotations

import os
import shutil
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path

from converters import NEEDS_CALIBRATION
from converters.record import Conversion
from edgecnn.export.convert import _parity
from edgecnn.export.model import BuiltModel
from edgecnn.export.outfolder import _OutFolder
from edgecnn.export.request import ExportRequest, _folder_name, artifact_stem
from edgecnn.export.stages import Stages
from edgecnn.manifest import SCHEMA, sha256_of, tool_versions, write_manifest
from edgecnn.records import GraphFacts, Manifest


def _stage(
    request,
    converted: tuple[bytes, Conversion],
    built: BuiltModel,
    calibration,
    parity_data,
    export_seconds,
    progress,
    out: "_OutFolder",
    stages: "Stages | None" = None,
) -> tuple[Path, Path, dict]:
    """Write artifact + manifest into a temporary folder in --out and check it there.

    Returns (staging folder, final folder, manifest); `_OutFolder.publish` renames them.
    `converted` is the converter's (bytes, record), `built` the model and its stages' records."""
    artifact_bytes, conversion = converted
    fmt = conversion.format
    stem = artifact_stem(request)
    folder_name = _folder_name(request, fmt)
    final = out.path / folder_name
    staging = out.staging(folder_name)
    try:
        artifact = staging / f"{stem}.{fmt}"
        artifact.write_bytes(artifact_bytes)
        progress.start(f"checking {artifact.name} against the Keras model")
        stages = stages or Stages()
        with stages(f"{fmt}.parity"):
            parity = _parity(artifact, *parity_data)
        manifest = _manifest(request, conversion, artifact, built, calibration, parity, export_seconds, stages)
        write_manifest(staging, manifest)
        os.chmod(staging, 0o755)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return staging, final, {**manifest.to_json(), "path": str(final / artifact.name)}


def _manifest(
    request: ExportRequest,
    conversion: Conversion,
    artifact: Path,
    built: BuiltModel,
    calibration,
    parity: dict,
    export_seconds: float,
    stages: Stages,
) -> Manifest:
    """The manifest of `artifact`, assembled from the records of the stages that made it: the
    model's facts, the optimization (QAT) record, the converter's record, the parity run."""
    from edgecnn.runtime import graph_facts

    model, facts, qat_info = built.model, built.facts, built.qat
    params = int(model.count_params())
    shape = list(model.inputs[0].shape[1:])
    return Manifest(
        schema=SCHEMA,
        artifact=artifact.name,
        sha256=sha256_of(artifact),
        model=facts["name"],
        source=facts["source"],
        format=conversion.format,
        quantization=conversion.quantization,
        weights=facts["weights"],
        params=params,
        bytes=artifact.stat().st_size,
        options=_options(request),
        optimization=built.optimization,
        inputs=tuple(t.to_json() for t in conversion.inputs),
        outputs=tuple(t.to_json() for t in conversion.outputs),
        graph=GraphFacts.from_json(graph_facts(artifact)),  # op census, integer-only (edgecnn.runtime)
        preprocess={
            "mode": facts["preprocess"],
            "input_shape": shape,
            "crop_fraction": calibration.info().get("crop_fraction"),
            "color": "bgr" if facts["preprocess"] == "caffe" else ("gray" if shape[-1] == 1 else "rgb"),
        },
        calibration=_calibration_record(request, calibration, qat=qat_info is not None),
        calibration_method="qat" if qat_info and conversion.calibration_method else conversion.calibration_method,
        versions=tool_versions(),
        warnings=tuple(request.warnings),
        extra={
            "qat": _qat_record(qat_info),
            "float32_weight_bytes": 4 * params,
            "labels": facts.get("labels"),
            "random_weights": facts.get("random_weights"),  # what made random weights' outputs vary
            "quantization_settings": conversion.settings,
            "parity": parity,
            "export_seconds": round(export_seconds, 2),  # shared preparation + this format
            "export_stages": stages.for_format(conversion.format),  # seconds and peak RSS of each stage
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        },
    )


def _calibration_record(request: ExportRequest, calibration, *, qat: bool) -> dict | None:
    if request.quantization not in NEEDS_CALIBRATION:
        return None
    record = calibration.info()
    if qat:
        # Checked: the converter gives the same bytes whatever these images are (even noise).
        record = {
            **record,
            "ranges": "quantization-aware training",
            "note": "the int8 ranges are the ones learned in QAT (the model's FakeQuant "
            "min/max); TFLiteConverter requires a representative dataset for int8 "
            "ops and io, and these images do not change the artifact",
        }
    return record


def _qat_record(info: dict | None) -> dict | None:
    """The QAT stage as the manifest keeps it (its warnings are the manifest's own)."""
    if info is None:
        return None
    return {key: value for key, value in info.items() if key not in ("optimization", "stage", "warnings")}


def _options(request: ExportRequest) -> dict:
    options = asdict(request)
    options.pop("warnings")
    options["out"] = str(request.out)
    options["formats"] = list(request.formats)
    return options
