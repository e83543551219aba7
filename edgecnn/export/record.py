"""One artifact's staging folder: the artifact, its parity run and its manifest, assembled here."""

from __future__ import annotations

import os
import shutil
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path

from converters import NEEDS_CALIBRATION
from edgecnn.export.convert import _parity
from edgecnn.export.outfolder import _OutFolder
from edgecnn.export.request import ExportRequest, _folder_name, artifact_stem
from edgecnn.export.stages import Stages
from edgecnn.manifest import SCHEMA, sha256_of, tool_versions, write_manifest


def _stage(request, fmt, artifact_bytes, model, facts, calibration, parity_data, qat_info,
           export_seconds, progress, out: "_OutFolder", stages: "Stages | None" = None) -> tuple[Path, Path, dict]:
    """Write artifact + manifest into a temporary folder in --out and check it there.

    Returns (staging folder, final folder, manifest); `_OutFolder.publish` renames them.
    `model` is the float Keras model (params, input shape); `qat_info` the QAT record or None."""
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
            parity, session = _parity(artifact, *parity_data)
        params = int(model.count_params())
        from edgecnn.runtime import graph_facts

        manifest = {
            "schema": SCHEMA,
            "model": facts["name"],
            "source": facts["source"],
            "options": _options(request),
            "format": fmt,
            "quantization": request.quantization,
            "optimization": qat_info["optimization"] if qat_info else
            facts.get("optimization", {"sparsity": None, "clusters": None, "qat": False}),
            "qat": _qat_record(qat_info),
            "weights": facts["weights"],
            "params": params,
            "artifact": artifact.name,
            "bytes": artifact.stat().st_size,
            "float32_weight_bytes": 4 * params,
            "sha256": sha256_of(artifact),
            "inputs": [t.to_dict() for t in session.inputs],
            "outputs": [t.to_dict() for t in session.outputs],
            "graph": graph_facts(artifact),  # op census, integer-only (edgecnn.runtime.graph_facts)
            "preprocess": {"mode": facts["preprocess"], "input_shape": list(model.inputs[0].shape[1:]),
                           "crop_fraction": calibration.info().get("crop_fraction"),
                           "color": "bgr" if facts["preprocess"] == "caffe" else
                           ("gray" if model.inputs[0].shape[-1] == 1 else "rgb")},
            "labels": facts.get("labels"),
            "calibration": _calibration_record(request, calibration),
            "calibration_method": _calibration_method(request, fmt),
            "quantization_settings": _quantization_settings(request, fmt),
            "parity": parity,
            "export_seconds": round(export_seconds, 2),  # shared preparation + this format
            "export_stages": stages.for_format(fmt),  # seconds and peak RSS of each stage
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "versions": tool_versions(),
            "warnings": list(request.warnings),
        }
        write_manifest(staging, manifest)
        os.chmod(staging, 0o755)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    manifest["path"] = str(final / artifact.name)
    return staging, final, manifest


def _calibration_record(request: ExportRequest, calibration) -> dict | None:
    if request.quantization not in NEEDS_CALIBRATION:
        return None
    record = calibration.info()
    if request.qat:
        # Checked: the converter gives the same bytes whatever these images are (even noise).
        record = {**record, "ranges": "quantization-aware training",
                  "note": "the int8 ranges are the ones learned in QAT (the model's FakeQuant "
                          "min/max); TFLiteConverter requires a representative dataset for int8 "
                          "ops and io, and these images do not change the artifact"}
    return record


def _calibration_method(request: ExportRequest, fmt: str) -> str | None:
    if request.quantization not in NEEDS_CALIBRATION:
        return None
    if request.qat:
        return "qat"
    return "minmax" if fmt == "tflite" else request.calib_method


def _quantization_settings(request: ExportRequest, fmt: str) -> dict | None:
    """ONNX Runtime's static quantization options as passed (7-bit weights for int8)."""
    if fmt != "onnx" or request.quantization not in NEEDS_CALIBRATION:
        return None
    from converters.onnx import STATIC_SETTINGS

    return dict(STATIC_SETTINGS[request.quantization])


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
