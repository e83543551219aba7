#!/usr/bin/env python
"""Does `edgecnn evaluate` give the same top-1 as an independent straight-line script?

    python benchmarks/evaluate_check.py [ARTIFACT ...] [--data SPEC] [--limit N]
        [--train-epochs 1] [--no-photo-model] [--threads 2] [--out benchmarks/results]

For each artifact, top-1 (and top-5) is computed twice on the same files:

- by `edgecnn.evaluate.evaluate_artifact` (what `edgecnn evaluate` runs);
- by `straight_line` below: a plain loop written separately with Pillow, numpy and
  the runtime's own API (LiteRT `Interpreter`, ONNX Runtime `InferenceSession`), one
  image at a time. It reads the idx/.npz/dataset.txt files itself, crops, resizes and
  normalizes with its own code, quantizes the input with the input tensor's scale and
  zero point, dequantizes the output, drops column 0 of a 1001-class output. It imports
  nothing of edgecnn or calibration.

Without artifacts on the command line it makes its own, into a temporary folder:

- LeNet-5 (`edgecnn.export`, float32 and int8 TFLite, float32 ONNX), trained first for
  `--train-epochs` epochs on Fashion-MNIST train (0: the zoo's random weights; random
  weights give about 10% top-1 and an agreement check between two near-random answers);
- unless `--no-photo-model`: a small random-weight CNN for 224x224 RGB photos with 1000
  classes (no BatchNorm, so its outputs vary with the pixels; ImageNet weights cannot be
  fetched offline), float32 and int8 TFLite, `tf` preprocessing. Its accuracy means
  nothing; it exercises the photo path (JPEG decode, 0.875 central crop, 227 -> 224
  bilinear resize, int8 input) on ../shared/data/imagenet-val-1300.

A second, per-image check: evaluate is run again on a copy of the data labelled with the
script's own top-1 class for each image; it must score 100% (same class on every image).
The same with another crop fraction (1.0 for photos, 0.875 otherwise) shows that the check
can fail: agreement then drops below 1 wherever the predictions depend on the pixels.

Data: `--data`, else by the model's class count: 1000 or 1001 classes ->
../shared/data/imagenet-val-1300 when present (else tests/data/imagenet-16); otherwise
Fashion-MNIST test (/usr/share/datasets/fashion-mnist, else tests/data/fashion-mnist-test-200.npz).

Writes benchmarks/results/<machine slug>/evaluate_check.json (and .md), atomically.
"""

from __future__ import annotations

import argparse
import gzip
import json
import shlex
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
for _path in (REPO, REPO / "benchmarks"):
    if str(_path) not in sys.path:  # run as a script from a checkout
        sys.path.insert(0, str(_path))

from edgecnn.host import describe_host, machine_info, machine_slug, write_atomic  # noqa: E402
from edgecnn.manifest import tool_versions  # noqa: E402

FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_NPZ = REPO / "tests" / "data" / "fashion-mnist-test-200.npz"
IMAGENET_1300 = REPO.parent / "shared" / "data" / "imagenet-val-1300"
IMAGENET_16 = REPO / "tests" / "data" / "imagenet-16"

_T0 = time.perf_counter()


def log(message: str) -> None:
    print(f"[{time.perf_counter() - _T0:7.1f}s] {message}", file=sys.stderr, flush=True)


# -- the independent straight-line script ------------------------------------------------------
# Everything from here to the next section uses Pillow, numpy and the runtimes only.


def _read_idx_gz(path: Path, header: int) -> np.ndarray:
    with gzip.open(path, "rb") as f:
        return np.frombuffer(f.read(), np.uint8, offset=header)


def plain_samples(spec: str):
    """(list of (PIL image or uint8 array, label), crop fraction) of a data spec, read by hand."""
    if spec.startswith("fashion-mnist"):
        folder = Path(spec.split(":", 1)[1]) if ":" in spec else FASHION_DIR
        x = _read_idx_gz(folder / "t10k-images-idx3-ubyte.gz", 16).reshape(-1, 28, 28)
        y = _read_idx_gz(folder / "t10k-labels-idx1-ubyte.gz", 8)
        return [(x[i], int(y[i])) for i in range(len(y))], 1.0
    path = Path(spec)
    if path.suffix == ".npz":
        with np.load(path) as npz:
            x, y = npz["x"], npz["y"]
        return [(x[i], int(y[i])) for i in range(len(y))], 1.0
    listing = path / "dataset.txt" if path.is_dir() else path
    samples = []
    for line in listing.read_text().splitlines():
        if line.strip():
            name, label = line.rsplit(",", 1)
            samples.append((listing.parent / name.strip(), int(label)))
    return samples, 0.875


def plain_pixels(item, height: int, width: int, channels: int, crop: float) -> np.ndarray:
    """Decode, convert colour, central crop (box of the output's aspect ratio times `crop`,
    sizes rounded, offsets floored), bilinear resize: uint8 (h, w, c)."""
    if isinstance(item, np.ndarray):
        image = Image.fromarray(item, "L")
    else:
        with Image.open(item) as opened:
            image = opened.convert("RGB") if opened.mode not in ("L", "RGB") else opened.copy()
    image = image.convert("RGB" if channels == 3 else "L")
    aspect = width / height
    box_w = min(image.width, image.height * aspect)
    box_h = box_w / aspect
    box_w = max(1, min(image.width, round(box_w * crop)))
    box_h = max(1, min(image.height, round(box_h * crop)))
    left, top = (image.width - box_w) // 2, (image.height - box_h) // 2
    box = (left, top, left + box_w, top + box_h)
    if box != (0, 0, image.width, image.height) or image.size != (width, height):
        image = image.resize((width, height), Image.BILINEAR, box=box)
    return np.asarray(image, np.uint8).reshape(height, width, channels)


def plain_normalize(pixels: np.ndarray, mode: str) -> np.ndarray:
    x = pixels.astype(np.float32)
    if mode == "unit":
        return x / np.float32(255.0)
    if mode == "tf":
        return x / np.float32(127.5) - np.float32(1.0)
    if mode == "caffe":
        return x[..., ::-1] - np.array([103.939, 116.779, 123.68], np.float32)
    if mode == "torch":
        return (x / np.float32(255.0) - np.array([0.485, 0.456, 0.406], np.float32)) / np.array(
            [0.229, 0.224, 0.225], np.float32
        )
    return x


class PlainModel:
    """One image in, float scores out, through the runtime's own API."""

    def __init__(self, path: Path, threads: int | None):
        self.path = Path(path)
        if self.path.suffix == ".tflite":
            from ai_edge_litert.interpreter import Interpreter

            self.interpreter = Interpreter(model_path=str(path), num_threads=threads)
            self.interpreter.allocate_tensors()
            self.inp = self.interpreter.get_input_details()[0]
            self.out = self.interpreter.get_output_details()[0]
            shape = list(self.inp["shape"])
            self.nchw = False
        else:
            import onnxruntime as ort

            options = ort.SessionOptions()
            if threads:
                options.intra_op_num_threads = threads
            self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
            node = self.session.get_inputs()[0]
            shape = list(node.shape)
            self.nchw = shape[1] in (1, 3) and shape[3] not in (1, 3)
            if self.nchw:
                shape = [shape[0], shape[2], shape[3], shape[1]]
        self.height, self.width, self.channels = (int(d) for d in shape[1:])

    def scores(self, x: np.ndarray) -> np.ndarray:
        x = x[None]
        if self.path.suffix == ".tflite":
            scale, zero = self.inp["quantization"]
            if scale:
                limits = np.iinfo(self.inp["dtype"])
                x = np.clip(np.round(x / np.float32(scale)) + zero, limits.min, limits.max)
            self.interpreter.set_tensor(self.inp["index"], x.astype(self.inp["dtype"]))
            self.interpreter.invoke()
            y = self.interpreter.get_tensor(self.out["index"]).astype(np.float32)
            scale, zero = self.out["quantization"]
            if scale:
                y = (y - np.float32(zero)) * np.float32(scale)
        else:
            if self.nchw:
                x = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
            y = self.session.run(None, {self.session.get_inputs()[0].name: x})[0]
        return y.reshape(-1)


def straight_line(path: Path, spec: str, mode: str, *, limit: int | None, threads: int | None) -> dict:
    started = time.perf_counter()
    model = PlainModel(path, threads)
    samples, crop = plain_samples(spec)
    samples = samples[:limit] if limit else samples
    top1 = top5 = 0
    predictions = []
    for item, label in samples:
        pixels = plain_pixels(item, model.height, model.width, model.channels, crop)
        scores = model.scores(plain_normalize(pixels, mode))
        if scores.size == 1001:
            scores = scores[1:]  # background class first
        ranked = np.argsort(-scores, kind="stable")[:5]
        predictions.append(int(ranked[0]))
        top1 += int(ranked[0] == label)
        top5 += int(label in ranked)
    n = len(samples)
    return {
        "n": n,
        "top1": top1 / n,
        "top5": top5 / n,
        "correct": {"top1": top1, "top5": top5},
        "crop_fraction": crop,
        "seconds": round(time.perf_counter() - started, 2),
        "distinct_predictions": len(set(predictions)),
        "predictions": predictions,
    }


def relabelled(spec: str, predictions: list[int], folder: Path) -> str:
    """A copy of the data spec whose labels are `predictions` (the script's top-1 per image),
    for the first len(predictions) images: evaluate must then score exactly 100%."""
    samples, _ = plain_samples(spec)
    samples = samples[: len(predictions)]
    folder.mkdir(parents=True, exist_ok=True)
    if isinstance(samples[0][0], np.ndarray):
        target = folder / "relabelled.npz"
        np.savez(target, x=np.stack([item for item, _ in samples]), y=np.asarray(predictions, np.int64))
        return str(target)
    listing = Path(spec) / "dataset.txt" if Path(spec).is_dir() else Path(spec)
    names = listing.parent / "synset_words.txt"
    if names.is_file():  # keeps the class count (1000) known to evaluate
        (folder / "synset_words.txt").write_text(names.read_text())
    (folder / "dataset.txt").write_text(
        "".join(f"{item.resolve()}, {label}\n" for (item, _), label in zip(samples, predictions))
    )
    return str(folder)


# -- artifacts made here ----------------------------------------------------------------------


def _fashion_spec() -> str:
    return "fashion-mnist" if (FASHION_DIR / "t10k-images-idx3-ubyte.gz").is_file() else str(FASHION_NPZ)


def make_lenet5(workdir: Path, epochs: int) -> tuple[list[Path], dict]:
    import calibration
    from edgecnn._tf import import_keras
    from edgecnn.export import ExportRequest, export
    from edgecnn.models import create_model

    weights, note = "auto", "the zoo's random weights"
    if epochs > 0:
        keras = import_keras()
        keras.utils.set_random_seed(0)
        train = "fashion-mnist:train" if _fashion_spec() == "fashion-mnist" else str(FASHION_NPZ)
        source = calibration.open_source(train, split="train")
        x, y = source.load_arrays()
        x = calibration.preprocess(x, input_shape=(32, 32, 1), mode="unit", crop_fraction=1.0)
        log(f"training lenet5 for {epochs} epoch(s) on {len(x)} images of {source.name}")
        model = create_model("lenet5", weights=None)
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        model.fit(x, y, epochs=epochs, batch_size=128, verbose=0)
        weights = str(workdir / "lenet5.weights.h5")
        model.save_weights(weights)
        note = f"trained {epochs} epoch(s) on {source.name} ({len(x)} images), seed 0"
    calib = "fashion-mnist:train" if _fashion_spec() == "fashion-mnist" else str(FASHION_NPZ)
    paths = []
    for quantization, formats in (("float32", ("tflite", "onnx")), ("int8", ("tflite",))):
        log(f"exporting lenet5 {quantization} {'+'.join(formats)}")
        manifests = export(
            ExportRequest(
                model="lenet5",
                quantization=quantization,
                formats=formats,
                weights=weights,
                calib=calib,
                calib_samples=200,
                out=workdir,
            )
        )
        paths += [Path(m["path"]) for m in manifests]
    return paths, {"lenet5": note}


def make_photo_model(workdir: Path) -> tuple[list[Path], dict]:
    from edgecnn._tf import import_keras
    from edgecnn.export import ExportRequest, export

    keras = import_keras()
    keras.utils.set_random_seed(0)
    inputs = keras.layers.Input((224, 224, 3))
    x = keras.layers.Conv2D(16, 7, strides=4, activation="relu", name="conv1")(inputs)
    x = keras.layers.MaxPooling2D(4, name="pool1")(x)
    x = keras.layers.Conv2D(32, 3, strides=2, activation="relu", name="conv2")(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool2")(x)
    outputs = keras.layers.Dense(1000, name="predictions")(x)
    model = keras.Model(inputs, outputs, name="photo_probe")
    path = workdir / "photo_probe.keras"
    model.save(path)
    (workdir / "photo_probe.edgecnn.json").write_text(json.dumps({"model": "photo_probe", "preprocess": "tf"}))
    paths = []
    for quantization in ("float32", "int8"):
        log(f"exporting photo_probe {quantization}")
        (manifest,) = export(ExportRequest(model=str(path), quantization=quantization, out=workdir, calib_samples=100))
        paths.append(Path(manifest["path"]))
    return paths, {
        "photo_probe": "random weights (seed 0), no BatchNorm: accuracy meaningless, exercises the photo path"
    }


# -- the check -----------------------------------------------------------------------------------


def data_for(path: Path, manifest: dict | None, override: str | None) -> str:
    if override:
        return override
    classes = None
    if manifest and manifest.get("outputs"):
        classes = manifest["outputs"][0]["shape"][-1]
    if classes in (1000, 1001):
        return str(IMAGENET_1300 if (IMAGENET_1300 / "dataset.txt").is_file() else IMAGENET_16)
    return _fashion_spec()


def check_artifact(path: Path, args) -> dict:
    from edgecnn.evaluate import evaluate_artifact
    from edgecnn.manifest import read_manifest_for

    manifest = read_manifest_for(path)
    spec = data_for(path, manifest, args.data)
    mode = manifest["preprocess"]["mode"] if manifest else args.preprocess
    if not mode:
        raise SystemExit(f"{path} has no manifest: pass --preprocess")
    log(f"{path.name} on {spec}: edgecnn evaluate")
    row = evaluate_artifact(path, spec, limit=args.limit, threads=args.threads, preprocess="auto" if manifest else mode)
    log(f"  top-1 {row['top1']:.4f} (n {row['n']}, {row['seconds']:.1f} s); straight-line script")
    plain = straight_line(path, spec, mode, limit=args.limit, threads=args.threads)
    log(f"  top-1 {plain['top1']:.4f} (n {plain['n']}, {plain['seconds']:.1f} s); per image")
    other_crop = 1.0 if plain["crop_fraction"] != 1.0 else 0.875
    with tempfile.TemporaryDirectory(prefix="edgecnn-relabelled-") as tmp:
        relabelled_spec = relabelled(spec, plain.pop("predictions"), Path(tmp))
        same = evaluate_artifact(path, relabelled_spec, threads=args.threads, preprocess="auto" if manifest else mode)
        log(
            f"  same top-1 class as the script on {same['correct']['top1']} of {same['n']} images; "
            f"with crop {other_crop} instead"
        )
        perturbed = evaluate_artifact(
            path,
            relabelled_spec,
            threads=args.threads,
            crop_fraction=other_crop,
            preprocess="auto" if manifest else mode,
        )
    log(f"  same class on {perturbed['correct']['top1']} of {perturbed['n']}")
    return {
        "artifact": path.name,
        "sha256": row["sha256"],
        "model": row["model"],
        "format": row["format"],
        "quantization": row["quantization"],
        "input": row["input"],
        "weights": (manifest or {}).get("weights"),
        "data": row["data"],
        "preprocess": row["preprocess"],
        "evaluate": {
            k: row[k] for k in ("n", "top1", "top5", "correct", "runtime", "runtime_version", "batch_size", "seconds")
        },
        "straight_line": plain,
        "top1_agrees": row["n"] == plain["n"] and row["correct"]["top1"] == plain["correct"]["top1"],
        "top5_agrees": row["n"] == plain["n"] and row["correct"]["top5"] == plain["correct"]["top5"],
        "per_image": {
            "note": "evaluate scored against the script's own top-1 class per image as labels: "
            "the fraction of images where both predict the same class",
            "n": same["n"],
            "same_top1": same["correct"]["top1"],
            "agreement": same["top1"],
            "distinct_classes_predicted": plain["distinct_predictions"],
            "power": {
                "note": "the same, with evaluate given another crop fraction: a check that can "
                "fail (a preprocessing slip shows as agreement below 1)",
                "crop_fraction": other_crop,
                "same_top1": perturbed["correct"]["top1"],
                "agreement": perturbed["top1"],
            },
        },
    }


def markdown(report: dict) -> str:
    lines = [
        f"# evaluate vs an independent straight-line script ({report['machine_slug']}, {report['date']})",
        "",
        "| artifact | weights | data | n | evaluate top-1 | script top-1 | agree | same class per image "
        "| classes predicted | same class, other crop | evaluate s | script s |",
        "|---|---|---|---:|---:|---:|---|---:|---:|---:|---:|---:|",
    ]
    for r in report["artifacts"]:
        lines.append(
            f"| {r['artifact']} | {r['weights']} | {r['data']['name']} | {r['evaluate']['n']} | "
            f"{r['evaluate']['top1']:.4f} | {r['straight_line']['top1']:.4f} | "
            f"{'yes' if r['top1_agrees'] else 'NO'} | "
            f"{r['per_image']['same_top1']}/{r['per_image']['n']} | "
            f"{r['per_image']['distinct_classes_predicted']} | "
            f"{r['per_image']['power']['agreement']:.3f} (crop {r['per_image']['power']['crop_fraction']:g}) | "
            f"{r['evaluate']['seconds']:.1f} | "
            f"{r['straight_line']['seconds']:.1f} |"
        )
    lines += [
        "",
        f"All agree (same top-1 count, same class on every image): {'yes' if report['all_agree'] else 'NO'}",
        "",
    ]
    for name, note in report.get("made_here", {}).items():
        lines.append(f"- {name}: {note}")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("artifacts", nargs="*", type=Path, help=".tflite/.onnx files (default: made here)")
    parser.add_argument("--data", help="a data spec for every artifact (default: by class count)")
    parser.add_argument("--preprocess", help="for artifacts without a manifest")
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--train-epochs", type=int, default=1, help="LeNet-5 training before export (0: random)")
    parser.add_argument("--no-photo-model", action="store_true")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    args = parser.parse_args(argv)

    made: dict = {}
    with tempfile.TemporaryDirectory(prefix="edgecnn-evaluate-check-") as tmp:
        paths = list(args.artifacts)
        if not paths:
            lenet, note = make_lenet5(Path(tmp), args.train_epochs)
            paths += lenet
            made.update(note)
            if not args.no_photo_model:
                photo, note = make_photo_model(Path(tmp))
                paths += photo
                made.update(note)
        results = [check_artifact(path, args) for path in paths]
    report = {
        "benchmark": "evaluate_check",
        "question": "does edgecnn evaluate give the same top-1 as an independent straight-line script "
        "(Pillow + numpy + the runtime's API, one image at a time) on the same files?",
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": shlex.join([sys.executable.rsplit("/", 1)[-1], *sys.argv]),
        "host": describe_host(),
        "machine_slug": machine_slug(machine_info()),
        "versions": tool_versions(),
        "made_here": made,
        "artifacts": results,
        "all_agree": all(r["top1_agrees"] and r["per_image"]["agreement"] == 1.0 for r in results),
    }
    folder = args.out / report["machine_slug"]
    write_atomic(folder / "evaluate_check.json", json.dumps(report, indent=2) + "\n")
    write_atomic(folder / "evaluate_check.md", markdown(report))
    log(f"wrote {folder / 'evaluate_check.json'} and evaluate_check.md")
    print(markdown(report))
    return 0 if report["all_agree"] else 1


if __name__ == "__main__":
    sys.exit(main())
