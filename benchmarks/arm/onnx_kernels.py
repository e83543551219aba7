#!/usr/bin/env python
"""Does an int8 ONNX file give the same answer on x86 with and without VNNI? Measured, per setting.

    python benchmarks/arm/onnx_kernels.py --model lenet5=TRAINED.keras --model mnv2=TRAINED.keras
        [--informative] [--variants u8s8-7bit u8s8-7bit-dw8 u8s8-8bit u8u8] [--limit 2000]
        [--emulated-limit 256]
        [--workdir DIR] [--out benchmarks/results]

ONNX Runtime's quantization docs: on x86 with AVX2 or AVX-512 but no VNNI, MLAS's u8s8 kernels
multiply with VPMADDUBSW, which adds each pair of uint8 x int8 products in int16 and saturates
(255 * 127 * 2 > 32767); they recommend `reduce_range` (7-bit weights) or u8u8. This script
measures it instead of trusting it:

1. `build` (x86, export extra): for each trained Keras model, the float32 ONNX by
   `edgecnn.export` and one int8 file per quantization setting (`VARIANTS`: export's own
   settings, full 8-bit weights, u8u8), each by `converters.onnx.quantize_static_qdq` (the
   call export makes) on export's 100 calibration images (Fashion-MNIST train, seed 0);
   `--informative` adds the random-weight MobileNetV2 0.35/96 with BatchNorm statistics from
   real images that benchmarks/arm/check.py uses. The variant with export's settings is compared
   with `edgecnn export --int8`'s own file (the same settings and data: the same nodes and weights).
2. `run` (TensorFlow-free), natively and again under `qemu-x86_64-static -cpu Haswell`
   (user mode, this Python: TCG has AVX2 and FMA but no AVX-512 or VNNI, so MLAS takes its
   AVX2 path): every int8 file fused (ONNX Runtime's default graph optimization, one thread)
   and unfused (`ORT_DISABLE_ALL`: each Q/DQ as written, float between, the file's own QDQ
   arithmetic), over the first `--emulated-limit` test images (and, natively, all `--limit`).
   Which kernel ran is shown, not assumed: a probe (`sides.u8s8_probe`, a MatMulInteger of
   uint8 255 by int8 127) returns the exact sum only where the u8s8 kernel does not saturate.
3. the report: per model and setting, top-1 on the labels (float32 and int8, natively), and for
   each pair (native fused / unfused, Haswell fused / unfused, native / Haswell fused) how many
   top-1s agree, how many outputs are bit-identical and the largest difference in steps of
   the output's quantization scale. Writes <out>/<machine>/onnx_int8_kernels.json and .md.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
for path in (REPO, HERE):
    if str(path) not in sys.path:  # run as a script from a checkout
        sys.path.insert(0, str(path))

from edgecnn.host import machine_info, machine_slug, write_atomic  # noqa: E402

# The quantization settings measured, each over export's own (STATIC_INT8_SETTINGS): 7-bit weights
# (reduce_range), 7-bit weights but 8-bit ones for depthwise convolutions (ORT runs those on its
# depthwise kernel, not the u8s8 matrix multiply), full 8-bit weights, and u8u8 (uint8 weights),
# the alternatives ONNX Runtime's docs name for x86 without VNNI.
VARIANTS = {
    "u8s8-7bit": {"reduce_range": True, "depthwise_full_range": False},
    "u8s8-7bit-dw8": {"reduce_range": True, "depthwise_full_range": True},
    "u8s8-8bit": {"reduce_range": False, "depthwise_full_range": False},
    "u8u8": {"weight_type": "QUInt8", "reduce_range": False, "depthwise_full_range": False},
}
EMULATOR = "qemu-x86_64-static"
EMULATED_CPU = "Haswell"
CALIB_SAMPLES = 100


def log(message: str) -> None:
    print(f"[onnx_kernels {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def settings_for(variant: str) -> dict:
    from converters.onnx import STATIC_INT8_SETTINGS

    return {**STATIC_INT8_SETTINGS, **VARIANTS[variant]}


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


# -- build (x86, TensorFlow) ------------------------------------------------------------------
def _export(request_kwargs: dict, quantization: str) -> dict:
    from edgecnn.export import ExportRequest, export

    (manifest,) = export(ExportRequest(quantization=quantization, formats=("onnx",), **request_kwargs))
    return manifest


def build_model(name: str, request_kwargs: dict, calib_source, test_source, variants, folder: Path, limit: int) -> dict:
    """Float32 and int8 ONNX files of one model in `folder`, with its test inputs and labels."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from calibration import CalibrationData
    from converters.onnx import INPUT_NAME, quantize_static_qdq

    folder.mkdir(parents=True, exist_ok=True)
    log(f"{name}: float32 and int8 ONNX by edgecnn.export")
    float_manifest = _export(request_kwargs, "float32")
    int8_manifest = _export(request_kwargs, "int8")
    shape, mode = float_manifest["preprocess"]["input_shape"], float_manifest["preprocess"]["mode"]
    shutil.copyfile(float_manifest["path"], folder / "float32.onnx")
    prepared = folder / ".prep.onnx"
    quant_pre_process(
        float_manifest["path"],
        prepared,
        skip_optimization=False,
        skip_onnx_shape=False,
        skip_symbolic_shape=False,
        auto_merge=False,
    )
    calibration = CalibrationData(calib_source, input_shape=shape, preprocess=mode, samples=CALIB_SAMPLES, seed=0)
    files = {}
    for variant in variants:
        out = folder / f"{variant}.onnx"
        quantize_static_qdq(
            prepared,
            out,
            lambda: calibration.ort_reader(INPUT_NAME),
            settings=settings_for(variant),
            calib_method="minmax",
        )
        files[variant] = {
            "file": out.name,
            "bytes": out.stat().st_size,
            "sha256": sha256(out),
            "settings": settings_for(variant),
            "weights": weight_facts(out),
        }
        log(f"  {variant}: {files[variant]['bytes']:,} bytes, weights {files[variant]['weights']}")
    prepared.unlink()
    from converters.onnx import STATIC_INT8_SETTINGS

    exported = {"depthwise_full_range": False, **STATIC_INT8_SETTINGS}  # the key is new: absent = False
    export_variant = next((v for v in variants if settings_for(v) == exported), None)
    test = CalibrationData(test_source, input_shape=shape, preprocess=mode, samples=limit, seed=None)
    np.save(folder / "inputs.npy", test.arrays().astype(np.float32))
    labels = test.labels()
    if labels is not None:
        np.save(folder / "labels.npy", np.asarray(labels, np.int64))
    return {
        "name": name,
        "export": {k: v for k, v in request_kwargs.items() if k != "out"},
        "float32": {"file": "float32.onnx", "sha256": float_manifest["sha256"]},
        "export_int8": {"sha256": int8_manifest["sha256"], "settings": int8_manifest.get("quantization_settings")},
        "export_variant": export_variant,
        "export_int8_same_graph": same_graph(int8_manifest["path"], folder / f"{export_variant}.onnx")
        if export_variant in files
        else None,
        "variants": files,
        "test_images": int(len(test.arrays())),
        "calibration": calibration.info()["source"],
        "labelled": labels is not None,
    }


def same_graph(a, b) -> bool:
    """The same nodes and initializers (the bytes can differ in tf2onnx's in-process `unk__N` batch
    dimension name, see the README)."""
    import onnx

    ga, gb = onnx.load(str(a)).graph, onnx.load(str(b)).graph
    return list(ga.node) == list(gb.node) and list(ga.initializer) == list(gb.initializer)


def weight_facts(path: Path) -> dict:
    """The integer range the quantized weights use (what decides whether VPMADDUBSW saturates)."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(path)).graph
    ranges = {}
    for tensor in graph.initializer:
        if tensor.data_type in (onnx.TensorProto.INT8, onnx.TensorProto.UINT8) and len(tensor.dims) >= 2:
            values = numpy_helper.to_array(tensor).astype(np.int32)
            kind = "int8" if tensor.data_type == onnx.TensorProto.INT8 else "uint8"
            low, high = ranges.get(kind, (255, -255))
            ranges[kind] = (min(low, int(values.min())), max(high, int(values.max())))
    return {kind: list(r) for kind, r in ranges.items()}


def build(args) -> dict:
    from calibration import open_source

    plan = {"models": {}}
    common = {"calib": "fashion-mnist", "calib_samples": CALIB_SAMPLES, "out": args.workdir / "exports"}
    for spec in args.model:
        name, _, path = spec.partition("=")
        plan["models"][name] = build_model(
            name,
            {"model": path, **common},
            open_source("fashion-mnist", split="train"),
            open_source("fashion-mnist", split="test"),
            args.variants,
            args.workdir / name,
            args.limit,
        )
    if args.informative:
        import sides

        weights = args.workdir / "informative.weights.h5"
        if not weights.is_file():
            sides.main(["weights", "--out", str(weights)])
        images = args.images
        kwargs = {
            "model": "mobilenet_v2",
            "input_size": 96,
            "alpha": 0.35,
            "weights": str(weights),
            "calib": str(images),
            "calib_samples": CALIB_SAMPLES,
            "out": args.workdir / "exports",
        }
        plan["models"]["mobilenet_v2-informative"] = build_model(
            "mobilenet_v2-informative",
            kwargs,
            open_source(str(images)),
            open_source(str(images)),
            args.variants,
            args.workdir / "mobilenet_v2-informative",
            min(args.limit, 64),
        )
    (args.workdir / "plan.json").write_text(json.dumps(plan, indent=2, default=str) + "\n")
    return plan


# -- run (TensorFlow-free; natively and under qemu) --------------------------------------------
def run(args) -> int:
    """Outputs of every file of the plan, fused and unfused, into --tag.npz; the probe into --tag.json."""
    import onnxruntime as ort
    import sides

    plan = json.loads((args.workdir / "plan.json").read_text())
    arrays, record = {}, {"probe": sides.u8s8_probe(), "onnxruntime": ort.__version__, "seconds": {}}
    for name, model in plan["models"].items():
        folder = args.workdir / name
        x = np.load(folder / "inputs.npy")[: args.limit]
        files = [("float32", model["float32"]["file"])] if args.tag == "native" else []
        files += [(variant, v["file"]) for variant, v in model["variants"].items()]
        for key, file in files:
            started = time.perf_counter()
            for level in ("fused", "unfused"):
                if key == "float32" and level == "unfused":
                    continue
                arrays[f"{name}/{key}/{level}"] = _outputs(folder / file, x, fused=level == "fused")
            record["seconds"][f"{name}/{key}"] = round(time.perf_counter() - started, 1)
            log(f"{args.tag}: {name} {key} ({len(x)} images, {record['seconds'][f'{name}/{key}']} s)")
    np.savez(args.workdir / f"{args.tag}.npz", **arrays)
    (args.workdir / f"{args.tag}.json").write_text(json.dumps(record, indent=2) + "\n")
    return 0


def _outputs(path: Path, x: np.ndarray, *, fused: bool) -> np.ndarray:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    if not fused:
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return np.concatenate([session.run(None, {name: x[i : i + 64]})[0] for i in range(0, len(x), 64)])


def output_step(path: Path) -> float | None:
    """The output's quantization scale (`sides.output_step`: the DequantizeLinear before it)."""
    import sides

    return sides.output_step(path, None)


# -- report --------------------------------------------------------------------------------------
def compare(a: np.ndarray, b: np.ndarray, step: float | None) -> dict:
    n = min(len(a), len(b))
    a, b = a[:n], b[:n]
    diff = np.abs(a.astype(np.float64) - b.astype(np.float64))
    largest = float(diff.max())
    return {
        "images": int(n),
        "top1_equal": int(np.sum(a.argmax(-1) == b.argmax(-1))),
        "identical": int(np.sum(np.all(a == b, axis=tuple(range(1, a.ndim))))),
        "max_abs_diff": largest,
        "max_steps": round(largest / step, 2) if step else None,
    }


def report(args, plan: dict, legs: dict, built_seconds: float) -> dict:
    native, emulated = legs["native"], legs.get("haswell")
    models = []
    for name, model in plan["models"].items():
        folder = args.workdir / name
        labels = np.load(folder / "labels.npy") if (folder / "labels.npy").is_file() else None
        float_out = native["arrays"][f"{name}/float32/fused"]
        entry = {
            "name": name,
            "test_images": int(len(float_out)),
            "labelled": labels is not None,
            "export": model["export"],
            "export_variant": model["export_variant"],
            "export_int8_same_graph": model["export_int8_same_graph"],
            "float32_top1": float(np.mean(float_out.argmax(-1) == labels)) if labels is not None else None,
            "variants": {},
        }
        for variant, facts in model["variants"].items():
            step = output_step(folder / facts["file"])
            nf, nu = native["arrays"][f"{name}/{variant}/fused"], native["arrays"][f"{name}/{variant}/unfused"]
            row = {
                **facts,
                "output_step": step,
                "int8_top1": float(np.mean(nf.argmax(-1) == labels)) if labels is not None else None,
                "agreement_with_float32": float(np.mean(nf.argmax(-1) == float_out.argmax(-1))),
                "native fused vs unfused": compare(nf, nu, step),
            }
            if emulated:
                hf, hu = emulated["arrays"][f"{name}/{variant}/fused"], emulated["arrays"][f"{name}/{variant}/unfused"]
                row["Haswell fused vs unfused"] = compare(hf, hu, step)
                row["Haswell fused vs native fused"] = compare(hf, nf, step)
                row["Haswell unfused vs native unfused"] = compare(hu, nu, step)
            entry["variants"][variant] = row
        models.append(entry)
    machine = machine_info()
    return {
        "benchmark": "onnx_int8_kernels",
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": "python " + shlex.join(["benchmarks/arm/onnx_kernels.py", *sys.argv[1:]]),
        "machine": machine,
        "machine_slug": machine_slug(machine),
        "onnxruntime": native["record"]["onnxruntime"],
        "probe": {leg: data["record"]["probe"] for leg, data in legs.items()},
        "emulation": legs.get("haswell", {}).get("emulator"),
        "seconds": {"build": round(built_seconds, 1), **{leg: data.get("seconds") for leg, data in legs.items()}},
        "models": models,
    }


PAIRS = ("native fused vs unfused", "Haswell fused vs unfused", "Haswell fused vs native fused")


def markdown(rep: dict) -> str:
    m = rep["machine"]
    probe = rep["probe"]
    lines = [
        "# ONNX int8 on x86 with and without VNNI: the same file, the same answer?",
        "",
        f"{rep['date']} on {m['cpu_model']} ({m['arch']}), ONNX Runtime {rep['onnxruntime']}, one thread. "
        f"Command: `{rep['command']}`. Without VNNI: {rep.get('emulation') or 'not run'}.",
        "",
        "Which u8s8 kernel ran (a MatMulInteger of uint8 255 by int8 127, K = 64: exact sum "
        f"{probe['native']['exact']}): "
        + "; ".join(
            f"{leg}: {p['ort']} ({'saturates: VPMADDUBSW, no VNNI' if p['saturates'] else 'exact'})"
            for leg, p in probe.items()
        )
        + ".",
        "",
        "Each pair: top-1 equal / images, outputs bit-identical / images, largest difference in steps "
        "of the output scale. *Unfused* is ONNX Runtime with graph optimizations off (`ORT_DISABLE_ALL`: "
        "each QuantizeLinear/DequantizeLinear as written, float32 between, the file's own QDQ arithmetic); "
        "*fused* is the default (QLinearConv and the like, MLAS int8 kernels).",
        "",
        "| model | setting | weights | top-1 float32 / int8 | int8 = float32 | " + " | ".join(PAIRS) + " |",
        "|---|---|---|---|---|" + "---|" * len(PAIRS),
    ]
    for entry in rep["models"]:
        for variant, row in entry["variants"].items():
            top1 = (
                f"{entry['float32_top1']:.2%} / {row['int8_top1']:.2%}"
                if entry["labelled"] and row["int8_top1"] is not None
                else "-"
            )
            cells = []
            for pair in PAIRS:
                c = row.get(pair)
                cells.append(
                    "-"
                    if c is None
                    else f"{c['top1_equal']}/{c['images']}, {c['identical']} identical, "
                    f"{c['max_steps'] if c['max_steps'] is not None else c['max_abs_diff']:.3g} steps"
                )
            weights = ", ".join(f"{k} [{lo}, {hi}]" for k, (lo, hi) in row["weights"].items())
            lines.append(
                f"| {entry['name']} ({entry['test_images']} images) | {variant} | {weights} | {top1} | "
                f"{row['agreement_with_float32']:.2%} | " + " | ".join(cells) + " |"
            )
    lines += [
        "",
        "Settings: "
        + "; ".join(f"{k}: {v or 'export (STATIC_INT8_SETTINGS)'}" for k, v in VARIANTS.items())
        + ". The Haswell columns cover the first images only (qemu is slow): see `images` in the JSON.",
        "",
    ]
    for entry in rep["models"]:
        lines.append(
            f"- {entry['name']}: `edgecnn export --int8` uses {entry['export_variant']}; the same graph "
            f"(nodes, initializers) as this script's: {entry['export_int8_same_graph']}; "
            f"export {entry['export']}."
        )
    lines += ["", f"Seconds: {json.dumps(rep['seconds'])}", ""]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("step", nargs="?", default="all", choices=["all", "build", "run"])
    parser.add_argument("--model", action="append", default=[], help="NAME=trained.keras (repeatable)")
    parser.add_argument(
        "--informative",
        action="store_true",
        help="also the random-weight, BatchNorm-recalibrated MobileNetV2 0.35/96 of check.py",
    )
    parser.add_argument(
        "--images",
        type=Path,
        default=REPO.parent / "shared" / "data" / "imagenet-val-1300",
        help="labelled photos for --informative (calibration and the first 64 as inputs)",
    )
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--limit", type=int, default=2000, help="test images natively")
    parser.add_argument("--emulated-limit", type=int, default=256, help="test images under qemu -cpu Haswell")
    parser.add_argument("--tag", default="native")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/edgecnn-onnx-kernels"))
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    args = parser.parse_args(argv)
    args.workdir.mkdir(parents=True, exist_ok=True)
    if args.step == "run":
        return run(args)
    started = time.perf_counter()
    plan = build(args)
    built = time.perf_counter() - started
    if args.step == "build":
        return 0
    legs = {}
    script = [sys.executable, str(Path(__file__).resolve()), "run", "--workdir", str(args.workdir)]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    for tag, prefix, limit in (
        ("native", [], args.limit),
        ("haswell", [EMULATOR, "-cpu", EMULATED_CPU], args.emulated_limit),
    ):
        if prefix and shutil.which(prefix[0]) is None:
            log(f"{prefix[0]} not found (apt-get install qemu-user-static): no leg without VNNI")
            continue
        t0 = time.perf_counter()
        subprocess.run([*prefix, *script, "--tag", tag, "--limit", str(limit)], check=True, env=env)
        with np.load(args.workdir / f"{tag}.npz") as npz:
            arrays = {k: npz[k] for k in npz.files}
        legs[tag] = {
            "arrays": arrays,
            "record": json.loads((args.workdir / f"{tag}.json").read_text()),
            "seconds": round(time.perf_counter() - t0, 1),
        }
        if prefix:
            legs[tag]["emulator"] = (
                subprocess.run([prefix[0], "--version"], capture_output=True, text=True).stdout.splitlines()[0]
                + f", -cpu {EMULATED_CPU}"
            )
    rep = report(args, plan, legs, built)
    folder = args.out / rep["machine_slug"]
    write_atomic(folder / "onnx_int8_kernels.json", json.dumps(rep, indent=2, default=str) + "\n")
    write_atomic(folder / "onnx_int8_kernels.md", markdown(rep))
    print(markdown(rep))
    return 0


if __name__ == "__main__":
    sys.exit(main())
