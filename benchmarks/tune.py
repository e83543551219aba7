#!/usr/bin/env python
"""`edgecnn tune` on trained Fashion-MNIST models: what the ladder chooses, against plain int8.

    python benchmarks/tune.py [--models lenet5 mobilenet_v2 lenet5-rescaled] [--budgets 1.0 0.1]
        [--threads 2] [--workdir DIR] [--reuse] [--out benchmarks/results]

For each model, trained here by `edgecnn.training.train_model` on the Fashion-MNIST training
split (epochs below: short runs, the machine is shared), it runs `edgecnn.tune.tune` with
`--format all` for each budget, on the Fashion-MNIST test split (calibration 200, validation
1000, test 1000, the remaining 7800 the QAT training part; seed 0), and records per format: the
chosen candidate's settings, its test drop, size and latency against step 1's plain int8, every
candidate, and the wall time of the run.

`lenet5-rescaled` is the trained LeNet-5 given a function-preserving rescale
(`edgecnn.tune.stress.rescale_channel`: conv1's channel 0 times 100, conv2's matching input
weights divided by 100), so that one channel's activations span 100 times the others': plain
int8 with per-tensor activation ranges loses accuracy, the ladder has to win it back.

Writes <out>/<machine slug>/tune.json and tune.md atomically, after each run (a long run that is
stopped keeps what finished). Tests never assert these figures.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run as a script from a checkout

from edgecnn.host import machine_info, machine_slug, write_atomic  # noqa: E402  (after the sys.path line above)

MODELS = {
    "lenet5": {
        "zoo": "lenet5",
        "input_size": 32,
        "alpha": None,
        "epochs": 5,
        "batch_size": 64,
        "lr": 2e-3,
        "limit": None,
    },
    "mobilenet_v2": {
        "zoo": "mobilenet_v2",
        "input_size": 32,
        "alpha": 0.35,
        "epochs": 4,
        "batch_size": 128,
        "lr": 3e-3,
        "limit": 30000,
    },
}


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


class LogProgress:
    def step(self, label, total=None):
        log(f"  {label}" + (f" ({total})" if total else ""))

    def start(self, label, total=None):
        pass

    def advance(self, steps=1):
        pass

    def warn(self, message):
        log(f"  warning: {message}")

    def note(self, message):
        log(f"  {message}")

    def epoch_end(self, epoch, epochs, logs):
        log(f"  epoch {epoch + 1}/{epochs}: acc {logs.get('accuracy')}, val_acc {logs.get('val_accuracy')}")


def trained(name: str, workdir: Path, reuse: bool, seed: int) -> tuple[Path, dict]:
    from edgecnn.loading import sidecar_path
    from edgecnn.training.train import train_model

    base = "lenet5" if name == "lenet5-rescaled" else name
    cfg = MODELS[base]
    path = workdir / f"{base}.keras"
    if not (reuse and path.is_file()):
        log(f"training {base}: {cfg['epochs']} epochs")
        train_model(
            cfg["zoo"],
            "fashion-mnist:train",
            epochs=cfg["epochs"],
            batch_size=cfg["batch_size"],
            lr=cfg["lr"],
            lr_schedule="cosine",
            input_size=cfg["input_size"],
            alpha=cfg["alpha"],
            out=path,
            seed=seed,
            limit=cfg["limit"],
            progress=LogProgress(),
        )
    info = json.loads(sidecar_path(path).read_text())
    train = {
        "epochs": info["epochs"],
        "train_count": info["data"]["train_count"],
        "val_accuracy_keras": info["val_accuracy"],
        "seconds": info["seconds"],
    }
    if name != "lenet5-rescaled":
        return path, train
    rescaled = workdir / "lenet5-rescaled.keras"
    from edgecnn.loading import read_keras_model
    from edgecnn.tune.stress import rescale_channel

    model = read_keras_model(path)
    rescale_channel(model, "conv1", "conv2", channel=0, factor=100.0)
    model.save(rescaled)
    shutil.copyfile(sidecar_path(path), sidecar_path(rescaled))
    return rescaled, {**train, "rescale": "conv1 channel 0 x100, conv2 input weights of channel 0 /100"}


def summary(record: dict) -> dict:
    out = {}
    for fmt, data in record["formats"].items():
        cands = {c["id"]: c for c in data["candidates"]}
        chosen = cands[data["choice"]["id"]]
        plain = cands.get(f"{fmt}-1-int8")

        def facts(c):
            if c is None:
                return None
            return {
                "id": c["id"],
                "label": c["label"],
                "float_layers": len(c["float_layers"]),
                "val_drop": c["val_drop"],
                "test_drop": c["test_drop"],
                "bytes": c["bytes"],
                "latency_ms": c["latency_ms"],
                "integer_only": c["integer_only"],
                "within_budget": c["within_budget"],
            }

        out[fmt] = {
            "float": data["float_reference"],
            "chosen": facts(chosen),
            "plain_int8": facts(plain),
            "within_budget": data["choice"]["within_budget"],
            "why": data["choice"]["why"],
            "candidates": len(data["candidates"]),
            "steps": [s["step"] for s in data["steps"] if s.get("candidates")],
        }
    return out


def markdown(report: dict) -> str:
    lines = [
        "# edgecnn tune on trained Fashion-MNIST models",
        "",
        f"Machine: {report['machine'].get('cpu_model')}, {report['machine'].get('cores_usable')} usable cores; "
        f"threads {report['threads']}. Parts of the Fashion-MNIST test split: calibration 200, validation 1000, "
        "test 1000 (seed 0). Drops in top-1 points below the float artifact of the same format "
        "(validation chooses, test reports).",
        "",
        "| model | budget | format | chosen | float layers | test drop | size | p50 ms | int-only | "
        "plain int8 val / test drop | plain int8 p50 ms | within | steps | wall s |",
        "|---|---:|---|---|---:|---:|---:|---:|---|---:|---:|---|---|---:|",
    ]
    for run in report["runs"]:
        for fmt, s in run["summary"].items():
            c, p = s["chosen"], s["plain_int8"] or {}
            lines.append(
                f"| {run['model']} | {run['max_drop']:g} | {fmt} | {c['label']} | {c['float_layers']} | "
                f"{c['test_drop']:.2f} | {c['bytes'] / 1e3:.1f} kB | {c['latency_ms'] or float('nan'):.3f} | "
                f"{'yes' if c['integer_only'] else 'no'} | {p.get('val_drop', float('nan')):.2f} / "
                f"{p.get('test_drop', float('nan')):.2f} | {p.get('latency_ms') or float('nan'):.3f} | "
                f"{'yes' if s['within_budget'] else 'NO'} | {', '.join(map(str, s['steps']))} | {run['seconds']:.0f} |"
            )
    lines += ["", "Float references (validation / test top-1):", ""]
    seen = set()
    for run in report["runs"]:
        for fmt, s in run["summary"].items():
            key = (run["model"], fmt)
            if key in seen:
                continue
            seen.add(key)
            f = s["float"]
            lines.append(
                f"- {run['model']} {fmt}: {100 * f['val_top1']:.2f}% / {100 * f['test_top1']:.2f}%, "
                f"{f['bytes'] / 1e3:.1f} kB, p50 {f['latency_ms'] or float('nan'):.3f} ms"
            )
    lines += [
        "",
        "Training: "
        + "; ".join(
            f"{m}: {t['epochs']} epochs on {t['train_count']} images, Keras val {100 * t['val_accuracy_keras']:.2f}%"
            for m, t in report["training"].items()
        ),
    ]
    if report.get("engines"):
        lines += [
            "",
            "TFLite int8 engines on the same 100 calibration images (top-1 on validation + test, "
            "2000 images; p50 at the default harness settings):",
            "",
            "| model | engine | seconds | size | top-1 | p50 ms | same ops | io |",
            "|---|---|---:|---:|---:|---:|---|---|",
        ]
        for model_name, e in report["engines"].items():
            for engine in ("converter", "ai-edge-quantizer"):
                r = e[engine]
                secs = (
                    f"{r['convert_s']:.1f} (int8 conversion)"
                    if engine == "converter"
                    else f"{r['float_convert_s']:.1f} float conversion + {r['quantize_s']:.1f} quantization"
                )
                lines.append(
                    f"| {model_name} | {engine} | {secs} | {r['bytes'] / 1e3:.1f} kB | "
                    f"{100 * r['top1']:.2f}% | {r['p50_ms']} | {'yes' if e['same_ops'] else 'no'} | "
                    f"{'/'.join(r['io'])} |"
                )
    if report.get("unfinished"):
        lines += ["", f"Not run (time): {', '.join(report['unfinished'])}"]
    return "\n".join(lines) + "\n"


def engine_comparison(path: Path, threads: int, seed: int) -> dict:
    """TensorFlow's converter int8 against AI Edge Quantizer's on the same 100 calibration images
    (tune's step 1): conversion time, ops, top-1 on validation+test (2000 images), latency."""
    import tempfile

    import calibration
    from converters.tflite import keras_to_tflite
    from edgecnn.evaluate import evaluate_artifact
    from edgecnn.harness import BenchmarkSettings, benchmark_artifact
    from edgecnn.loading import load_keras_model
    from edgecnn.runtime import open_session
    from edgecnn.tune import engines_tflite
    from edgecnn.tune.split import split_source

    model, facts = load_keras_model(path)
    shape = tuple(int(d) for d in model.inputs[0].shape[1:])
    parts = split_source(calibration.open_source("fashion-mnist"), seed=seed)
    calib = calibration.CalibrationData(
        parts.calibration, input_shape=shape, preprocess=facts["preprocess"], samples=100, seed=None
    ).arrays()
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        converter, _ = keras_to_tflite(
            model, quantization="int8", representative_dataset=lambda: ([calib[i : i + 1]] for i in range(len(calib)))
        )
        converter_s = time.perf_counter() - t
        t = time.perf_counter()
        float_bytes = engines_tflite.float_tflite(model)
        float_s = time.perf_counter() - t
        (Path(tmp) / "float.tflite").write_bytes(float_bytes)
        t = time.perf_counter()
        aeq, _ = engines_tflite.quantize(Path(tmp) / "float.tflite", calib, threads=threads)
        aeq_s = time.perf_counter() - t
        for name, data, seconds in (
            ("converter", converter, {"convert_s": round(converter_s, 2)}),
            ("ai-edge-quantizer", aeq, {"float_convert_s": round(float_s, 2), "quantize_s": round(aeq_s, 2)}),
        ):
            file = Path(tmp) / f"{name}.tflite"
            file.write_bytes(data)
            top1 = [
                evaluate_artifact(file, part, preprocess=facts["preprocess"], threads=threads)
                for part in (parts.validation, parts.test)
            ]
            correct = sum(r["correct"]["top1"] for r in top1)
            n = sum(r["n"] for r in top1)
            row = benchmark_artifact(file, BenchmarkSettings(threads=threads))
            session = open_session(file)
            out[name] = {
                **seconds,
                "bytes": len(data),
                "top1": round(correct / n, 5),
                "n": n,
                "p50_ms": (row.get("latency_ms") or {}).get("p50"),
                "ops": session.op_types(),
                "io": [session.inputs[0].dtype, session.outputs[0].dtype],
            }
    out["top1_difference_points"] = round(100 * (out["ai-edge-quantizer"]["top1"] - out["converter"]["top1"]), 2)
    out["same_ops"] = out["ai-edge-quantizer"]["ops"] == out["converter"]["ops"]
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=["lenet5", "lenet5-rescaled", "mobilenet_v2"])
    parser.add_argument("--budgets", nargs="+", type=float, default=[1.0, 0.1])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/edgecnn-tune-bench"))
    parser.add_argument("--reuse", action="store_true", help="reuse trained models in --workdir")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--engines-only",
        action="store_true",
        help="only the converter vs AI Edge Quantizer comparison (trained models reused), "
        "added to an existing tune.json",
    )
    args = parser.parse_args(argv)

    from edgecnn.manifest import tool_versions
    from edgecnn.tune import TuneRequest, tune

    args.workdir.mkdir(parents=True, exist_ok=True)
    machine = machine_info()
    report = {
        "benchmark": "tune",
        "machine": machine,
        "machine_slug": machine_slug(machine),
        "threads": args.threads,
        "versions": tool_versions(),
        "runs": [],
        "training": {},
    }
    folder = args.out / report["machine_slug"]
    if args.engines_only:
        report = json.loads((folder / "tune.json").read_text())
        report["engines"] = {}
        for name in ("lenet5", "mobilenet_v2"):
            path, _ = trained(name, args.workdir, True, args.seed)
            log(f"engines: {name}")
            report["engines"][name] = engine_comparison(path, args.threads, args.seed)
        write_atomic(folder / "tune.json", json.dumps(report, indent=2, default=str) + "\n")
        write_atomic(folder / "tune.md", markdown(report))
        return 0
    plan = []
    for m in args.models:
        for b in [1.0] if m == "lenet5-rescaled" else args.budgets:
            plan.append((m, b, {}))
        if m == "lenet5-rescaled":  # the same case with step 3 off: QAT has to do it, integer-only
            plan.append((m, 1.0, {"max_float_layers": 0, "formats": ("tflite",), "qat": True}))
    for i, (name, budget, options) in enumerate(plan):
        path, train = trained(name, args.workdir, args.reuse or i > 0, args.seed)
        report["training"][name] = train
        label = name + (" (--max-float-layers 0 --qat)" if options else "")
        log(f"tune {label} --max-drop {budget:g}")
        started = time.perf_counter()
        settings = {"formats": ("tflite", "onnx"), **options}
        record = tune(
            TuneRequest(
                str(path),
                data="fashion-mnist",
                max_drop=budget,
                threads=args.threads,
                out=args.workdir / "tuned" / f"{name}-{budget:g}-{i}",
                seed=args.seed,
                **settings,
            ),
            LogProgress(),
        )
        seconds = time.perf_counter() - started
        report["runs"].append(
            {
                "model": label,
                "max_drop": budget,
                "seconds": round(seconds, 1),
                "summary": summary(record),
                "record": record,
            }
        )
        report["unfinished"] = [f"{m} {b:g}" for m, b, _ in plan[i + 1 :]]
        write_atomic(folder / "tune.json", json.dumps(report, indent=2, default=str) + "\n")
        write_atomic(folder / "tune.md", markdown(report))
        log(f"  done in {seconds:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
