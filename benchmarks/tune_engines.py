#!/usr/bin/env python
"""tune's TFLite engine, chosen by measurement: AI Edge Quantizer against TensorFlow's QuantizationDebugger.

    python benchmarks/tune_engines.py [--models lenet5 lenet5-rescaled mobilenet_v2] [--ks 0 1 3]
        [--rounds 5] [--threads 2] [--workdir DIR] [--reuse] [--out benchmarks/results]

On the trained Fashion-MNIST models of benchmarks/tune.py (its `trained()`, imported, not
copied; `--reuse` takes the models a tune.py run left in --workdir), for the same selective
quantization decision (the k layers tune's sensitivity ranks first kept float; k = 0, 1, 3),
both engines build the int8 file:

- `ai-edge-quantizer`: `edgecnn.tune.engines_tflite.quantize` on the float .tflite, what tune
  does (one recipe line `no_quantize` per tensor of the float group);
- `tf-debugger`: `tf.lite.experimental.QuantizationDebugger` built on a TFLiteConverter of the
  same Keras model (Optimize.DEFAULT, the same calibration images), the same float group given as
  `QuantizationDebugOptions(denylisted_nodes=..., fully_quantize=True)`, the file from
  `get_nondebug_quantized_model()`. The debugger calibrates once (its constructor); each k is a
  new `options` (which re-quantizes the debug model) plus the non-debug quantization.

Name mapping: tune's layer handles are the output tensor names of the float .tflite that
TensorFlow's converter writes (engines_tflite.graph). denylisted_nodes takes "op's output tensor
names" of the calibrated model, which the same converter writes from the same Keras model; the
script checks that every handle is a tensor of the calibrated model (recorded as `mapped`).

The ranking: tune's step 3 (`edgecnn.numerics.layer_errors` of AI Edge Quantizer's plain int8
against the float file on 64 validation images, `edgecnn.tune.sensitivity.rank`, `float_set`).
Both engines get the same 100 calibration images (tune's step 1). Figures per engine and k:
quantize seconds, validation and test top-1 in LiteRT (edgecnn.evaluate; 1000 + 1000 images of
tune's split, seed 0), size, integer-only (no op computing in float) and the I/O dtypes, and
latency through edgecnn.harness (50 runs, at least 0.5 s), the engines interleaved for --rounds
rounds (median and min of the p50s, and the debugger's over AI Edge Quantizer's as ratios: on a
shared machine one round can be 40% slow, the min is the steadier figure).

Writes <out>/<machine slug>/tune_engines.json and .md atomically after each model.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run as a script from a checkout

from edgecnn.host import machine_info, machine_slug, write_atomic  # noqa: E402  (after the sys.path line above)

ENGINES = ("ai-edge-quantizer", "tf-debugger")


def _bench_tune():
    """benchmarks/tune.py as a module (its trained models and training settings)."""
    spec = importlib.util.spec_from_file_location("bench_tune", REPO / "benchmarks" / "tune.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _tensor_names(data: bytes) -> set[str]:
    from edgecnn.runtime.tflite import load_interpreter

    interpreter_class, _, _ = load_interpreter("auto")
    return {d["name"] for d in interpreter_class(model_content=data).get_tensor_details()}


def _io(path) -> list[str]:
    from edgecnn.runtime import open_session

    session = open_session(path)
    return [session.inputs[0].dtype, session.outputs[0].dtype]


def measure_model(name: str, path: Path, ks, rounds: int, threads: int, seed: int, work: Path) -> dict:
    import warnings

    import calibration
    from edgecnn.evaluate import evaluate_artifact
    from edgecnn.harness import BenchmarkSettings, benchmark_artifact
    from edgecnn.loading import load_keras_model
    from edgecnn.numerics import layer_errors
    from edgecnn.tune import engines_tflite
    from edgecnn.tune.ladder import DEFAULT_CALIBRATION_IMAGES
    from edgecnn.tune.sensitivity import float_set, rank
    from edgecnn.tune.split import DEFAULT_CALIBRATION, split_source

    model, facts = load_keras_model(path)
    mode = facts["preprocess"]
    shape = tuple(int(d) for d in model.inputs[0].shape[1:])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        parts = split_source(calibration.open_source("fashion-mnist"), calibration=DEFAULT_CALIBRATION, seed=seed)
        calib = calibration.CalibrationData(
            parts.calibration, input_shape=shape, preprocess=mode, samples=None, seed=None
        ).arrays()[:DEFAULT_CALIBRATION_IMAGES]
        sens = calibration.CalibrationData(
            parts.validation, input_shape=shape, preprocess=mode, samples=64, seed=None
        ).arrays()

    def representative():
        for i in range(len(calib)):
            yield [calib[i : i + 1]]

    t = time.perf_counter()
    float_path = work / "float.tflite"
    float_path.write_bytes(engines_tflite.float_tflite(model))
    float_s = time.perf_counter() - t

    artifacts = {}  # (engine, k) -> facts

    def aeq(floats):
        t = time.perf_counter()
        data, _ = engines_tflite.quantize(float_path, calib, float_tensors=floats, threads=threads)
        return data, time.perf_counter() - t

    # k = 0 first: the ranking is measured on it, as tune's step 3 does on its best candidate
    data, seconds = aeq([])
    aeq0 = work / "ai-edge-quantizer-k0.tflite"
    aeq0.write_bytes(data)
    ranked = rank(layer_errors(aeq0, float_path, sens), engines_tflite.graph(float_path), engines_tflite.PASS_THROUGH)
    groups = {k: float_set(ranked, k) for k in ks}
    artifacts[("ai-edge-quantizer", 0)] = {"path": aeq0, "quantize_s": seconds}
    for k in ks:
        if k == 0:
            continue
        data, seconds = aeq(groups[k])
        file = work / f"ai-edge-quantizer-k{k}.tflite"
        file.write_bytes(data)
        artifacts[("ai-edge-quantizer", k)] = {"path": file, "quantize_s": seconds}

    # TensorFlow's QuantizationDebugger: one calibration, then one quantization per denylist
    import tensorflow as tf

    debugger_note = None
    t = time.perf_counter()
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    options = tf.lite.experimental.QuantizationDebugOptions
    from edgecnn._tf import muted_stderr

    with muted_stderr():
        debugger = tf.lite.experimental.QuantizationDebugger(
            converter=converter, debug_dataset=representative, debug_options=options(fully_quantize=True)
        )
    calibrate_s = time.perf_counter() - t
    names = _tensor_names(debugger.calibrated_model)
    mapping = {}
    for k in ks:
        floats = groups[k]
        mapped = [n for n in floats if n in names]
        mapping[k] = {"float_group": floats, "mapped": len(mapped), "unmapped": [n for n in floats if n not in names]}
        t = time.perf_counter()
        try:
            with muted_stderr():
                debugger.options = options(denylisted_nodes=mapped or None, fully_quantize=True)
                options_s = time.perf_counter() - t
                data = debugger.get_nondebug_quantized_model()
        except Exception as exc:  # the MLIR quantizer raises RuntimeError/ValueError for what it cannot do
            reason = " ".join(str(exc).split())[:300] or type(exc).__name__
            artifacts[("tf-debugger", k)] = {"error": reason}
            debugger_note = reason
            continue
        file = work / f"tf-debugger-k{k}.tflite"
        file.write_bytes(data)
        artifacts[("tf-debugger", k)] = {"path": file, "quantize_s": time.perf_counter() - t, "options_s": options_s}

    # accuracy, size, integer-only, I/O
    rows = []
    for k in ks:
        for engine in ENGINES:
            a = artifacts[(engine, k)]
            row = {"engine": engine, "k": k, "float_group": len(groups[k])}
            if "error" in a:
                rows.append({**row, "error": a["error"]})
                continue
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                val, test = (
                    evaluate_artifact(a["path"], part, preprocess=mode, threads=threads)
                    for part in (parts.validation, parts.test)
                )
            float_ops = engines_tflite.float_op_count(a["path"])
            row.update(
                {
                    "quantize_s": round(a["quantize_s"], 3),
                    "val_top1": val["top1"],
                    "test_top1": test["top1"],
                    "bytes": a["path"].stat().st_size,
                    "float_ops": float_ops,
                    "integer_only": float_ops == 0,
                    "io": _io(a["path"]),
                    "p50_ms": [],
                }
            )
            if "options_s" in a:
                row["options_s"] = round(a["options_s"], 3)
            rows.append(row)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference = {
            f"{key}_top1": evaluate_artifact(float_path, part, preprocess=mode, threads=threads)["top1"]
            for key, part in (("val", parts.validation), ("test", parts.test))
        }
    reference["bytes"] = float_path.stat().st_size

    # latency, the engines interleaved
    settings = BenchmarkSettings(threads=threads, runs=50, min_secs=0.5, max_secs=10.0)
    measured = [r for r in rows if "error" not in r]
    for _ in range(rounds):
        for r in measured:
            result = benchmark_artifact(artifacts[(r["engine"], r["k"])]["path"], settings)
            p50 = (result.get("latency_ms") or {}).get("p50") if result.get("status") == "ok" else None
            r["p50_ms"].append(p50)
    for r in measured:
        values = [v for v in r["p50_ms"] if v is not None]
        r["p50_ms_median"] = statistics.median(values) if values else None
        r["p50_ms_min"] = min(values) if values else None
    by = {(r["engine"], r["k"]): r for r in measured}
    for k in ks:
        a, d = by.get(("ai-edge-quantizer", k)), by.get(("tf-debugger", k))
        if a and d and a["p50_ms_median"] and d["p50_ms_median"]:
            d["latency_ratio_to_aeq"] = round(d["p50_ms_median"] / a["p50_ms_median"], 3)
            d["latency_ratio_to_aeq_min"] = round(d["p50_ms_min"] / a["p50_ms_min"], 3)
    return {
        "model": name,
        "float_convert_s": round(float_s, 2),
        "debugger_calibrate_s": round(calibrate_s, 2),
        "calibration_images": len(calib),
        "sensitivity_images": len(sens),
        "ranking": [e.to_dict() for e in ranked[: max(ks) if ks else 0]],
        "mapping": mapping,
        "float_reference": reference,
        "rows": rows,
        "debugger_error": debugger_note,
    }


def markdown(report: dict) -> str:
    lines = [
        "# tune's TFLite engine: AI Edge Quantizer against TensorFlow's QuantizationDebugger",
        "",
        f"Machine: {report['machine'].get('cpu_model')}, {report['machine'].get('cores_usable')} usable cores; "
        f"threads {report['threads']}; {report['rounds']} interleaved latency rounds "
        "(median and min of the p50s). "
        "Same trained models, same 100 calibration images, same float groups (the k layers tune's "
        "sensitivity ranks first, and the ops tune keeps float with them). Top-1 on tune's validation / "
        "test parts (1000 + 1000 Fashion-MNIST test images, seed 0), in LiteRT.",
        "",
        f"Command: `{report['command']}`",
        "",
    ]
    for m in report["models"]:
        f = m["float_reference"]
        lines += [
            f"## {m['model']}",
            "",
            f"Float .tflite: {100 * f['val_top1']:.2f}% / {100 * f['test_top1']:.2f}%, "
            f"{f['bytes'] / 1e3:.1f} kB; "
            f"float conversion {m['float_convert_s']:.1f} s (AI Edge Quantizer starts from it); the debugger's "
            f"calibrating conversion {m['debugger_calibrate_s']:.1f} s (once per model, shared by every k).",
            "",
            "| k | float tensors (mapped) | engine | quantize s | val / test top-1 | size | float ops | "
            "int-only | io | p50 ms median / min | ratio median / min |",
            "|---:|---|---|---:|---|---:|---:|---|---|---:|---:|",
        ]
        for r in m["rows"]:
            mp = m["mapping"][str(r["k"])] if str(r["k"]) in m["mapping"] else m["mapping"][r["k"]]
            head = f"| {r['k']} | {r['float_group']} ({mp['mapped']}) | {r['engine']} |"
            if "error" in r:
                lines.append(f"{head} failed: {r['error']} | | | | | | | |")
                continue
            secs = f"{r['quantize_s']:.2f}"
            p50 = r.get("p50_ms_median")
            lines.append(
                f"{head} {secs} | {100 * r['val_top1']:.2f}% / {100 * r['test_top1']:.2f}% | "
                f"{r['bytes'] / 1e3:.1f} kB | {r['float_ops']} | {'yes' if r['integer_only'] else 'no'} | "
                f"{'/'.join(r['io'])} | {p50 if p50 is not None else 'n/a'} / {r.get('p50_ms_min')} | "
                + (
                    f"{r['latency_ratio_to_aeq']} / {r['latency_ratio_to_aeq_min']} |"
                    if "latency_ratio_to_aeq" in r
                    else " |"
                )
            )
        ok = {e: [r for r in m["rows"] if r["engine"] == e and "error" not in r] for e in ENGINES}
        aeq_total = m["float_convert_s"] + sum(r["quantize_s"] for r in ok["ai-edge-quantizer"])
        dbg_total = m["debugger_calibrate_s"] + sum(r["quantize_s"] for r in ok["tf-debugger"])
        pairs = [(a, d) for a in ok["ai-edge-quantizer"] for d in ok["tf-debugger"] if a["k"] == d["k"]]
        if pairs:
            val = statistics.mean(100 * (a["val_top1"] - d["val_top1"]) for a, d in pairs)
            test = statistics.mean(100 * (a["test_top1"] - d["test_top1"]) for a, d in pairs)
            lines += [
                "",
                f"All {len(pairs)} candidates from the Keras model: AI Edge Quantizer {aeq_total:.1f} s "
                f"(float conversion + {len(ok['ai-edge-quantizer'])} quantizations), the debugger "
                f"{dbg_total:.1f} s (calibrating conversion + {len(ok['tf-debugger'])} quantizations). "
                f"AI Edge Quantizer minus the debugger, mean over k: {val:+.2f} points validation, "
                f"{test:+.2f} test.",
            ]
        lines.append("")
    if report.get("unfinished"):
        lines += [f"Not run (time): {', '.join(report['unfinished'])}", ""]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=["lenet5", "lenet5-rescaled", "mobilenet_v2"])
    parser.add_argument("--ks", nargs="+", type=int, default=[0, 1, 3])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/edgecnn-tune-bench"))
    parser.add_argument("--reuse", action="store_true", help="reuse trained models in --workdir")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    ks = sorted(set([0, *args.ks]))

    from importlib import metadata

    from edgecnn.manifest import tool_versions

    bench = _bench_tune()
    args.workdir.mkdir(parents=True, exist_ok=True)
    machine = machine_info()
    report = {
        "benchmark": "tune_engines",
        "machine": machine,
        "machine_slug": machine_slug(machine),
        "threads": args.threads,
        "rounds": args.rounds,
        "ks": ks,
        "versions": {**tool_versions(), "litert-quantizer": metadata.version("litert-quantizer")},
        "command": "python benchmarks/tune_engines.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "models": [],
    }
    folder = args.out / report["machine_slug"]
    for i, name in enumerate(args.models):
        path, train = bench.trained(name, args.workdir, args.reuse or i > 0, args.seed)
        log(f"engines: {name}")
        started = time.perf_counter()
        with tempfile.TemporaryDirectory() as tmp:
            result = measure_model(name, path, ks, args.rounds, args.threads, args.seed, Path(tmp))
        result["training"] = train
        result["seconds"] = round(time.perf_counter() - started, 1)
        report["models"].append(result)
        report["unfinished"] = args.models[i + 1 :]
        write_atomic(folder / "tune_engines.json", json.dumps(report, indent=2, default=str) + "\n")
        write_atomic(folder / "tune_engines.md", markdown(report))
        log(f"  done in {result['seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
