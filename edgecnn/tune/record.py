"""Publishing: the chosen artifact of each format in its folder, with a manifest that records
the tuning, and the report folder; each written under a temporary name, then renamed."""

from __future__ import annotations

import os
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from edgecnn.errors import EdgecnnError
from edgecnn.records import Optimization


def _stem(request) -> str:
    from edgecnn.loading import is_model_file

    return Path(request.model).stem if is_model_file(request.model) else str(request.model).lower()


def _replace_dir(staging: Path, final: Path) -> None:
    os.chmod(staging, 0o755)
    if final.exists():
        shutil.rmtree(final)
    os.replace(staging, final)


def publish(request, facts, model, parts, ctx, runs, out: Path, workdir: Path, seconds: float, progress) -> dict:
    from edgecnn.manifest import SCHEMA, sha256_of, tool_versions, write_manifest
    from edgecnn.runtime import graph_facts, open_session
    from edgecnn.tune import TUNE_SCHEMA
    from edgecnn.tune.choose import choose

    stem = _stem(request)
    created = datetime.now(UTC).isoformat(timespec="seconds")
    record = {
        "schema": TUNE_SCHEMA,
        "model": facts["name"],
        "source": facts["source"],
        "request": request.to_dict(),
        "budget": {
            "max_drop_points": float(request.max_drop),
            "optimize": request.optimize,
            "measured_on": "validation",
            "time_budget_min": request.time_budget,
        },
        "parts": parts.record(),
        "preprocess": {
            "mode": ctx.mode,
            "input_shape": list(ctx.input_shape),
            "crop_fraction": parts.calibration.default_crop_fraction,
        },
        "formats": {},
        "created": created,
        "versions": tool_versions(),
        "warnings": list(request.warnings),
    }
    choices = {}
    for fmt, run in runs.items():
        chosen, why = choose(run.candidates, max_drop=float(request.max_drop), optimize=request.optimize)
        if chosen is None:
            errors = "; ".join(f"{c.id}: {c.error}" for c in run.candidates if c.error)[:400]
            raise EdgecnnError(f"no {fmt} candidate could be made or measured: {errors}")
        if not why["within_budget"]:
            progress.warn(f"{fmt}: {why['why']}; publishing it anyway, marked `within_budget: false`")
        choices[fmt] = (chosen, why)
        record["formats"][fmt] = {
            "float_reference": {
                "artifact": f"float.{fmt}",
                "val_top1": run.float_val_top1,
                "test_top1": run.float_test_top1,
                "bytes": run.float_bytes,
                "latency_ms": run.float_latency_ms,
                "runtime": "litert" if fmt == "tflite" else "onnxruntime",
            },
            "steps": run.steps,
            "candidates": [c.to_dict() for c in run.candidates],
            "sensitivity": run.sensitivity,
            "stopped": run.stopped,
            "choice": {"id": chosen.id, **why},
        }
    record["seconds"] = round(seconds, 2)

    # The chosen artifacts, each in its own folder.
    for fmt, (chosen, _why) in choices.items():
        name = f"{stem}-tuned" if fmt == "tflite" else f"{stem}-tuned-onnx"
        staging = Path(tempfile.mkdtemp(prefix=f".{name}.", suffix=".partial", dir=out))
        try:
            artifact = staging / f"{name}.{fmt}"
            shutil.copyfile(chosen.path, artifact)
            session = open_session(artifact)
            format_record = record["formats"][fmt]
            for cand in format_record["candidates"]:
                cand.pop("path", None)  # scratch paths, gone after the run
            manifest = {
                "schema": SCHEMA,
                "model": facts["name"],
                "source": facts["source"],
                "options": {"command": "tune", **request.to_dict()},
                "format": fmt,
                "quantization": "int8",
                "optimization": facts.get("optimization", Optimization.NONE.to_json()),
                "weights": facts["weights"],
                "params": int(model.count_params()),
                "artifact": artifact.name,
                "bytes": artifact.stat().st_size,
                "float32_weight_bytes": 4 * int(model.count_params()),
                "sha256": sha256_of(artifact),
                "inputs": [t.to_dict() for t in session.inputs],
                "outputs": [t.to_dict() for t in session.outputs],
                "graph": graph_facts(artifact),  # op census, integer-only: as export records them
                "preprocess": {
                    **record["preprocess"],
                    "color": "bgr" if ctx.mode == "caffe" else ("gray" if ctx.input_shape[-1] == 1 else "rgb"),
                },
                "labels": facts.get("labels"),
                "calibration": {
                    "source": parts.calibration.describe(),
                    "count": chosen.settings.get("calibration_images"),
                },
                "calibration_method": chosen.settings.get("calibrate_method") or chosen.settings.get("range_update"),
                "quantization_settings": chosen.settings,
                "float_layers": chosen.float_layers,
                "integer_only": chosen.integer_only,
                "tuning": {
                    "schema": TUNE_SCHEMA,
                    "budget": record["budget"],
                    "parts": record["parts"],
                    **format_record,
                    "seconds": record["seconds"],
                },
                "created": created,
                "versions": record["versions"],
                "warnings": list(request.warnings),
            }
            write_manifest(staging, manifest)
            _replace_dir(staging, out / name)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        record["formats"][fmt]["choice"]["artifact"] = str(out / name / artifact.name)

    # The report.
    from edgecnn.tune.report import write_report

    name = f"{stem}-tune-report"
    staging = Path(tempfile.mkdtemp(prefix=f".{name}.", suffix=".partial", dir=out))
    try:
        record["report"] = str(out / name)
        write_report(record, staging)
        _replace_dir(staging, out / name)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return record
