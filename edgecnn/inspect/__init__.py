"""`edgecnn inspect`: why an artifact is as fast, as big and as accurate as it is.

    report = inspect_artifact("mobilenetv2-int8.onnx", profile=True, threads=1)
    report["findings"][0]["text"]

One dict, JSON-ready, in six sections: `graph` (ops by type and compute dtype, float ops inside a
quantized graph, QUANTIZE/DEQUANTIZE or Q/DQ, dynamic dimensions, I/O, parameters and bytes by
tensor class, MACs), `runtime` (XNNPACK's partitions; the graph ONNX Runtime runs after its own
fusions, and the provider of each node), `profile` (per-op time, with `profile=True`), `hardware`
(the CPU features that decide int8 speed), `numerics` (per-layer error against `reference` on
`data`, through edgecnn.numerics) and `findings` (a ranked list of plain sentences, each with what
to do). Any .tflite or .onnx, ours or a third party's, with or without a manifest. TensorFlow-free.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from edgecnn.errors import BadArgument, EdgecnnError

__all__ = ["inspect_artifact"]

DEFAULT_SAMPLES = 32


def _artifact_facts(path: Path) -> tuple[dict, dict | None]:
    from edgecnn.manifest import read_manifest_for, sha256_of

    try:
        manifest = read_manifest_for(path)
        ignored = None
    except EdgecnnError as exc:
        manifest, ignored = None, str(exc)
    facts = {
        "path": str(path),
        "name": path.name,
        "format": path.suffix.lower().lstrip("."),
        "bytes": path.stat().st_size,
        "sha256": sha256_of(path),
        "manifest": manifest is not None,
        "model": (manifest or {}).get("model"),
        "quantization": (manifest or {}).get("quantization"),
        "weights": (manifest or {}).get("weights"),
    }
    if ignored:
        facts["manifest_ignored"] = ignored
    return facts, manifest


def _resolve(path) -> Path:
    from edgecnn.harness import resolve_artifact

    path = resolve_artifact(path)
    if path.suffix.lower() not in (".tflite", ".onnx"):
        raise BadArgument(f"{path.name}: inspect reads .tflite and .onnx files")
    return path


def _graph_section(graph, ignore=()) -> dict:
    float_ops = graph.float_ops(ignore=ignore)
    weights = [t for t in graph.all_tensors() if t.constant and t.kind == "weights"]
    int_weights = [t for t in weights if t.int_range is not None and t.dtype == "int8"]
    seven_bit = [t for t in int_weights if -64 <= t.int_range[0] and t.int_range[1] <= 64]
    params = sum(r["params"] for r in graph.params_by_class())
    return {
        "ops": len(graph.ops),
        "subgraphs": graph.subgraphs,
        "quantized": graph.quantized,
        "ops_by_type": graph.ops_by_type(),
        "float_ops": [
            {"name": op.name, "op_type": op.op_type, "compute_dtype": op.compute_dtype, "macs": op.macs}
            for op in float_ops
        ],
        "conversions": dict(graph.conversions),
        "dynamic_dims": graph.dynamic_dims(),
        "inputs": [t.io_dict() for t in graph.inputs],
        "outputs": [t.io_dict() for t in graph.outputs],
        "params_by_class": graph.params_by_class(),
        "params": params,
        "macs": graph.macs(),
        "weights": {
            "tensors": len(weights),
            "int8": len(int_weights),
            "int8_within_7_bits": len(seven_bit),
            "per_channel": sum(1 for t in weights if t.channels_quantized),
        },
    }


def _tflite_sections(path: Path, threads: int | None, profile: bool) -> tuple[dict, dict, dict | None]:
    from edgecnn.inspect.profile import LITERT_NO_PROFILER
    from edgecnn.runtime import graph_tflite

    graph = graph_tflite.read_graph(path)
    section = _graph_section(graph)
    placement = graph_tflite.delegated_ops(path, graph, threads=threads)
    delegated = set(placement["delegated"])
    for op in graph.ops:
        op.provider = "XNNPACK" if op.index in delegated else "default kernels"
    staying = Counter(graph.ops[i].op_type for i in placement["default_kernels"])
    macs_total = graph.macs() or 0
    runtime = {
        "runtime": placement["runtime"],
        "runtime_version": placement["runtime_version"],
        "threads": threads,
        "delegate": placement["delegate"],
        "partitions": placement["partitions"],
        "delegated_ops": len(delegated),
        "default_kernel_ops": len(placement["default_kernels"]),
        "default_kernels": [{"op_type": t, "count": n} for t, n in staying.most_common()],
        "default_kernel_macs": sum(graph.ops[i].macs or 0 for i in placement["default_kernels"]),
        "macs": macs_total,
        "note": placement["note"],
    }
    prof = {"available": False, "note": LITERT_NO_PROFILER} if profile else None
    return section, runtime, prof


def _onnx_sections(path: Path, threads: int | None, profile: bool, data) -> tuple[dict, dict, dict | None]:
    from edgecnn.inspect.profile import by_op_type, ort_profile
    from edgecnn.runtime import graph_onnx

    graph = graph_onnx.read_graph(path)
    section = _graph_section(graph, ignore=graph_onnx.SHAPE_OPS)
    # A QDQ file computes in float on paper (Conv between DequantizeLinear and QuantizeLinear):
    # it is a quantized graph all the same.
    section["quantized"] = graph.quantized or bool(graph.conversions)
    section["opsets"] = getattr(graph, "opsets", {})
    optimized = graph_onnx.read_graph(path, graph_onnx.optimized_model(path, threads=threads))
    left = graph_onnx.unfused(optimized)
    float_after = optimized.float_ops(conversions=graph_onnx.CONVERSIONS, ignore=graph_onnx.SHAPE_OPS)
    # A short profile even without --profile: it is where ORT says which provider ran each node.
    try:
        placement = ort_profile(
            path, threads=threads, runs=50 if profile else 1, warmup_secs=0.5 if profile else 0.0, data=data
        )
        not_run = None
    except EdgecnnError as exc:  # e.g. dynamic dimensions no manifest fixes: the census stands without a run
        placement = {
            "providers": {},
            "nodes": [],
            "runs": 0,
            "warmup_runs": 0,
            "total_ms": 0.0,
            "model_run_p50_ms": None,
        }
        not_run = f"not run: {exc}"
    import onnxruntime as ort

    runtime = {
        "runtime": "onnxruntime",
        "runtime_version": ort.__version__,
        "threads": threads,
        "optimization_level": "ORT_ENABLE_ALL",
        "optimized_ops_by_type": optimized.ops_by_type(),
        "optimized_conversions": dict(optimized.conversions),
        "unfused": [
            {"name": op.name, "op_type": op.op_type, "compute_dtype": op.compute_dtype} for op in left["sandwiched"]
        ],
        "dequantize_of_activations": left["dequantize_of_activations"],
        "float_ops_after_optimization": [{"name": op.name, "op_type": op.op_type} for op in float_after],
        "fused": sorted(
            {
                op.op_type
                for op in optimized.ops
                if op.op_type.startswith(("QLinear", "QGemm", "Nhwc", "QAttention", "Fused"))
            }
        ),
        "providers": placement["providers"],
        "note": not_run,
    }
    prof = None
    if profile and not_run:
        prof = {"available": False, "note": f"ONNX Runtime's profiler was {not_run}"}
    elif profile:
        prof = {
            "available": True,
            "source": "onnxruntime SessionOptions.enable_profiling",
            "runs": placement["runs"],
            "warmup_runs": placement["warmup_runs"],
            "total_ms": placement["total_ms"],
            "model_run_p50_ms": placement["model_run_p50_ms"],
            "by_op_type": by_op_type(placement["nodes"]),
            "nodes": sorted(placement["nodes"], key=lambda n: -n["ms"]),
        }
        # Time in the float ops that ORT did not fuse (the sandwiched ones), for the findings.
        names = {op.name for op in left["sandwiched"]}
        prof["unfused_ms"] = round(sum(n["ms"] for n in placement["nodes"] if n["name"] in names), 4)
        float_names = {op.name for op in float_after}
        prof["float_ms"] = round(sum(n["ms"] for n in placement["nodes"] if n["name"] in float_names), 4)
    return section, runtime, prof


def _load_images(
    data: str,
    path: Path,
    manifest: dict | None,
    reference_manifest: dict | None,
    input_shape,
    preprocess: str,
    samples: int,
    warn,
) -> tuple:
    """(float32 images in the model's layout, labels or None, what was read)."""
    from calibration import CalibrationData
    from edgecnn.evaluate import _image_layout, _resolve_preprocess

    (h, w, c), layout = _image_layout(tuple(d if isinstance(d, int) and d > 0 else -1 for d in input_shape), path.name)
    mode, _ = _resolve_preprocess(manifest or reference_manifest, preprocess, path.name, warn)
    source = CalibrationData(data, input_shape=(h, w, c), preprocess=mode, samples=samples, seed=0)
    images = source.arrays()
    if len(images) == 0:
        raise EdgecnnError(f"--data {data} gave no images")
    if layout == "NCHW":
        images = images.transpose(0, 3, 1, 2)
    return (
        images.astype("float32"),
        source.labels(),
        {"data": str(data), "images": int(len(images)), "preprocess": mode, "layout": layout},
    )


def _numerics_section(path: Path, reference: Path, images, labels, read: dict) -> dict:
    import numpy as np

    from edgecnn.numerics import layer_errors
    from edgecnn.runtime import predict

    layers = layer_errors(path, reference, images)
    outputs = {}
    for role, file in (("quantized", path), ("reference", reference)):
        outputs[role] = predict(file, images).reshape(len(images), -1)  # 32 at a time, or the fixed batch
    q_top, r_top = outputs["quantized"].argmax(1), outputs["reference"].argmax(1)
    section = {
        **read,
        "reference": str(reference),
        "layers": [e.to_dict() for e in layers],
        "top1_agreement": round(float(np.mean(q_top == r_top)), 4),
    }
    if path.suffix.lower() == ".onnx":
        section["kernels"] = _kernel_agreement(path, images, outputs["quantized"])
    if labels is not None and outputs["quantized"].shape[1] > int(np.max(labels)):
        section["top1"] = {
            "quantized": round(float(np.mean(q_top == labels)), 4),
            "reference": round(float(np.mean(r_top == labels)), 4),
        }
    else:
        section["top1"] = None
        section["top1_note"] = (
            "the data has no labels: top-1 agreement between the two files only"
            if labels is None
            else "the labels do not fit the model's outputs"
        )
    return section


def _kernel_agreement(path: Path, images, fused) -> dict:
    """The fused int8 kernels ONNX Runtime runs (what the benchmark measures) against the file's own QDQ
    arithmetic (graph optimization off: each Q/DQ pair as written, the ops between them in float). They
    differ by the kernels' rounding, which differs between CPUs (x86 with or without VNNI, Arm)."""
    import numpy as np
    import onnxruntime as ort

    from edgecnn.runtime.tensors import TensorInfo, quantize

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.log_severity_level = 3
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    node = session.get_inputs()[0]
    from edgecnn.runtime.onnx import _ORT_TYPES

    info = TensorInfo(node.name, (), _ORT_TYPES.get(node.type, "float32"))
    if np.dtype(info.dtype).kind in "iu":
        from edgecnn.runtime.graph_onnx import read_graph

        record = read_graph(path).inputs[0]
        info = TensorInfo(node.name, (), info.dtype, scale=record.scale, zero_point=record.zero_point)
    step = 1 if node.shape and node.shape[0] == 1 else 32
    reference = (
        np.concatenate(
            [
                session.run(None, {node.name: quantize(images[i : i + step], info)})[0]
                for i in range(0, len(images), step)
            ]
        )
        .reshape(len(images), -1)
        .astype(np.float32)
    )
    return {
        "images": int(len(images)),
        "top1_agreement": round(float(np.mean(fused.argmax(1) == reference.argmax(1))), 4),
        "max_abs_diff": round(float(np.max(np.abs(fused - reference))), 6),
        "note": "ONNX Runtime's fused kernels (ORT_ENABLE_ALL) against the QDQ graph as written (ORT_DISABLE_ALL)",
    }


def inspect_artifact(
    artifact,
    *,
    data: str | None = None,
    reference=None,
    threads: int | None = None,
    profile: bool = False,
    preprocess: str = "auto",
    samples: int = DEFAULT_SAMPLES,
    warn=None,
) -> dict:
    """The whole report of `artifact` (see the module docstring)."""
    from edgecnn.host import cpu_features, describe_host
    from edgecnn.inspect.findings import findings

    warnings: list[str] = []

    def note(message: str) -> None:
        warnings.append(message)
        if warn is not None:
            warn(message)

    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise BadArgument(f"--threads must be an integer of at least 1. Received {threads}")
    if samples < 1:
        raise BadArgument(f"--samples must be at least 1. Received {samples}")
    from calibration.preprocessing import PREPROCESS_MODES

    if preprocess not in ("auto", *PREPROCESS_MODES):  # checked even without --data: a typo is a typo
        raise BadArgument(f"unknown --preprocess `{preprocess}`; use auto or {', '.join(PREPROCESS_MODES)}")
    if data is not None and reference is None:
        raise BadArgument(
            "--data feeds the numerics: give --reference FLOAT_ARTIFACT too (the float file "
            "of the same model and format)"
        )
    path = _resolve(artifact)
    reference_path = None
    if reference is not None:
        reference_path = _resolve(reference)
        if reference_path.suffix.lower() != path.suffix.lower():
            raise BadArgument(f"--reference {reference_path.name} is not the same format as {path.name}")
        if data is None:
            raise BadArgument("--reference needs --data SOURCE: the images both files are run on")
    facts, manifest = _artifact_facts(path)
    if facts.get("manifest_ignored"):
        note(f"the manifest beside {path.name} is ignored: {facts['manifest_ignored']}")

    images = labels = read = None
    if data is not None:
        from edgecnn.runtime.graph_onnx import load_model  # noqa: F401 (import check happens below)

        reference_manifest = _artifact_facts(reference_path)[1]
        shape = _input_shape(path)
        images, labels, read = _load_images(data, path, manifest, reference_manifest, shape, preprocess, samples, note)
    if path.suffix.lower() == ".tflite":
        graph, runtime, prof = _tflite_sections(path, threads, profile)
    else:
        graph, runtime, prof = _onnx_sections(path, threads, profile, images)
    if prof is not None and prof.get("available"):
        harness = __import__("edgecnn.inspect.profile", fromlist=["harness_p50"]).harness_p50(path, threads=threads)
        prof["harness"] = harness
        prof["total_over_p50"] = round(prof["total_ms"] / harness["p50_ms"], 4) if harness["p50_ms"] else None
    numerics = _numerics_section(path, reference_path, images, labels, read) if reference_path else None
    report = {
        "artifact": facts,
        "graph": graph,
        "runtime": runtime,
        "profile": prof,
        "hardware": {**cpu_features(), "cpu": describe_host()["cpu"], "cores": describe_host()["cores"]},
        "numerics": numerics,
        "warnings": warnings,
    }
    report["findings"] = findings(report)
    return report


def _input_shape(path: Path):
    from edgecnn.runtime import open_session

    session = open_session(path)
    if len(session.inputs) != 1:
        raise BadArgument(f"--data feeds models with one input; {path.name} has {len(session.inputs)}")
    return session.inputs[0].shape
