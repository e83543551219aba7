"""`edgecnn evaluate`: top-1 and top-5 of an artifact on labelled images, in its own runtime.

    row = evaluate_artifact("artifacts/mobilenetv2-int8/mobilenetv2-int8.tflite",
                            "../shared/data/imagenet-val-1300")
    row["top1"], row["top5"], row["n"]

The steps, each in the open:

1. the artifact (a file, or an export folder: the file its manifest names) and its manifest
   (if any) give the preprocessing mode; `preprocess=` gives it for a file without one (and
   overrides the manifest's, with a warning). A manifest.json that is broken is ignored with
   a warning, as `edgecnn benchmark` does, and the file scored as a third-party model;
2. the data source (`calibration.open_source`) gives the images, labels, class count and
   the crop fraction (its `default_crop_fraction`: 0.875 for photos, 1.0 for small prepared
   datasets such as Fashion-MNIST; `crop_fraction=` overrides it). The manifest's
   `crop_fraction` is the one used for the *calibration* images and is not reused;
3. the model's own input tensor gives the input size and channel count (NHWC, or NCHW
   for third-party ONNX files); `calibration.iter_batches` crops, resizes and converts
   colour to fit;
4. each float32 batch is quantized with the input's own scale and zero point (a TFLite
   tensor's; for ONNX, the DequantizeLinear's that reads the input; else `input_scale=`, or
   raw uint8 pixels, see `edgecnn.runtime.input_quantization`; float16 and float32 are cast)
   and the outputs are dequantized (`edgecnn.runtime.predict`);
5. scoring: a model with 1001 outputs, background class first (TF-slim and the TFLite
   hosted models), has column 0 dropped and is scored against labels 0..999 when the
   source has 1000 classes or does not say how many (an .npz without class names); any
   other class count must equal the source's, and every label must be below it. Top-k
   takes k = min(5, classes); ties between scores go to the lower class index, as
   `numpy.argmax` does.

Images go through in batches of `batch_size` (TFLite sessions resize their batch); a
model that refuses a batch is run one image at a time, with a warning. Warnings (an
overridden preprocessing, a manifest whose sha256 does not match, data the model was
calibrated on) are kept in the row's `warnings`.

TensorFlow-free on purpose: this runs on a Raspberry Pi with only numpy, Pillow,
LiteRT or ONNX Runtime.
"""

from __future__ import annotations

import os
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from edgecnn.errors import BadArgument, EdgecnnError
from edgecnn.progress import Progress  # noqa: F401  (re-exported: the protocol callers pass)

DEFAULT_BATCH_SIZE = 32
MAX_BATCH_SIZE = 1 << 16
TOP_K = 5
BACKGROUND_CLASSES = 1001  # TF-slim / TFLite hosted ImageNet models: class 0 is "background"


# -- scoring: pure functions ----------------------------------------------------------------

def class_scores(outputs: np.ndarray, *, drop_background: bool) -> np.ndarray:
    """(n, classes) scores to rank: column 0 removed when the model has a background class."""
    scores = np.asarray(outputs, dtype=np.float32).reshape(len(outputs), -1)
    return scores[:, 1:] if drop_background else scores


def topk_hits(scores: np.ndarray, labels: np.ndarray, k: int = TOP_K) -> tuple[int, int]:
    """(top-1 hits, top-k hits) of (n, classes) `scores` against integer `labels`.

    k is clipped to the class count. Ranking is a stable sort of -scores, so equal scores
    (common in int8 outputs) rank by class index, and top-1 equals `scores.argmax(1)`.
    """
    scores = np.asarray(scores)
    labels = np.asarray(labels, dtype=np.int64)
    if scores.ndim != 2 or len(scores) != len(labels):
        raise ValueError(f"scores must be (n, classes) for {len(labels)} labels. Received {scores.shape}")
    k = max(1, min(int(k), scores.shape[1]))
    ranked = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    top1 = int(np.sum(ranked[:, 0] == labels))
    topk = int(np.sum(np.any(ranked == labels[:, None], axis=1)))
    return top1, topk


# -- the model side ---------------------------------------------------------------------------

def _image_layout(shape: tuple, name: str) -> tuple[tuple[int, int, int], str]:
    """((h, w, c), "NHWC" | "NCHW") of an image-batch input tensor, or BadArgument."""
    dims = [int(d) if d is not None else -1 for d in shape]
    if len(dims) == 4:
        _, a, b, c = dims
        if c in (1, 3) and a > 0 and b > 0:
            return (a, b, c), "NHWC"
        if a in (1, 3) and b > 0 and c > 0:
            return (b, c, a), "NCHW"
    shown = "x".join("?" if d < 0 else str(d) for d in dims) or "scalar"
    raise BadArgument(
        f"{name} takes input of shape {shown}, not a batch of images (N, height, width, 1 or 3 "
        "channels): evaluate scores image classifiers"
    )


def _classes_of(shape: tuple) -> int | None:
    dims = [int(d) if d is not None else -1 for d in shape[1:]]
    if not dims or any(d < 0 for d in dims):
        return None
    return int(np.prod(dims))


def _resolve_preprocess(manifest: dict | None, preprocess: str, name: str,
                        warn, ignored: str | None = None) -> tuple[str, str]:
    """(mode, "manifest" | "option"). `ignored`: why the manifest beside the file was ignored."""
    from calibration.preprocessing import check_mode

    recorded = (manifest or {}).get("preprocess") or {}
    recorded_mode = recorded.get("mode")
    if preprocess in (None, "", "auto"):
        if recorded_mode:
            return check_mode(recorded_mode).value, "manifest"
        if ignored:
            raise BadArgument(f"the manifest beside {name} is ignored ({ignored}), so nothing says how its "
                              "input is preprocessed: pass --preprocess tf, caffe, torch, unit or raw")
        if manifest is None:
            raise BadArgument(
                f"{name} has no manifest.json beside it to say how its input is preprocessed: "
                "pass --preprocess tf, caffe, torch, unit or raw"
            )
        raise BadArgument(f"the manifest of {name} records no preprocessing: pass --preprocess "
                          "tf, caffe, torch, unit or raw")
    mode = check_mode(preprocess).value
    if recorded_mode and recorded_mode != mode:
        warn(f"preprocessing `{mode}` overrides `{recorded_mode}` from the manifest of {name}")
    return mode, "option"


def _open_checked_session(path: Path, runtime: str, threads: int | None):
    from edgecnn.runtime import open_session

    session = open_session(path, runtime=runtime, threads=threads)  # quiet: LiteRT's notice is muted
    if len(session.inputs) != 1:
        raise BadArgument(f"{path.name} has {len(session.inputs)} inputs; evaluate scores "
                          "single-input image classifiers")
    if not session.outputs:
        raise BadArgument(f"{path.name} has no outputs")
    return session


def _run(session, batch: np.ndarray, layout: str, input_info) -> np.ndarray:
    from edgecnn.runtime import predict

    if layout == "NCHW":
        batch = np.ascontiguousarray(batch.transpose(0, 3, 1, 2))
    outputs = predict(session, batch, batch_size=len(batch), input_info=input_info)
    return outputs.reshape(len(batch), -1)


def _quantization_source(model_info, used, option_scale) -> str | None:
    """Where the input's scale came from: "model", "option", "raw" (uint8 pixels as they are),
    or None for a float input."""
    if used.scale is None:
        return None
    if option_scale is not None:
        return "option"
    return "model" if model_info.quantized else "raw"


# --data values that name a source rather than a path (calibration.open_source's keywords).
_DATA_KEYWORDS = ("default", "random", "fashion-mnist", "fashionmnist")


def _check_data(data) -> None:
    """BadArgument for a --data that names nothing: said about the data, not about calibration."""
    text = os.fspath(data).strip()
    if not text:
        raise BadArgument("--data is empty: give default, a folder with a dataset.txt, fashion-mnist[:DIR] "
                          "or an .npz with labels")
    keyword = text.split(":", 1)[0].lower().replace("_", "-")
    if keyword in _DATA_KEYWORDS:
        return
    path = Path(text).expanduser()
    if not path.exists():
        raise BadArgument(f"data `{text}` not found: give default, a folder with a dataset.txt, "
                          "fashion-mnist[:DIR] or an .npz with labels")
    if not (path.is_dir() or path.is_file()):
        raise BadArgument(f"data {text} is neither a file nor a folder")


# -- the public function ---------------------------------------------------------------------

def evaluate_artifact(
    path,
    data,
    *,
    limit: int | None = None,
    preprocess: str = "auto",
    runtime: str = "auto",
    threads: int | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    split: str = "test",
    crop_fraction: float | None = None,
    input_scale: float | None = None,
    input_zero_point: int | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Top-1 and top-5 of the .tflite or .onnx artifact at `path` on the labelled source
    `data` (anything `calibration.open_source` takes). `path` may be a folder written by
    `edgecnn export` (the artifact its manifest names). `input_scale`/`input_zero_point`
    state how an integer input holds real values where the model does not say (see
    `edgecnn.runtime.input_quantization`). Returns one JSON-ready result row
    (`edgecnn.results.EVALUATE_SCHEMA`)."""
    import calibration
    from calibration.preprocessing import check_crop_fraction
    from edgecnn.harness import check_integer, resolve_artifact
    from edgecnn.host import describe_host
    from edgecnn.manifest import read_manifest_for, sha256_of
    from edgecnn.records import EvaluateRow
    from edgecnn.results import EVALUATE_SCHEMA, now_iso
    from edgecnn.runtime import input_quantization

    progress = progress or Progress()
    notes: list[str] = []
    checked = False  # warnings wait until every check has passed, so an error stays one line

    def warn(message: str) -> None:
        notes.append(message)
        if checked:
            progress.warn(message)

    # Cheap checks first: arguments, the file, its manifest, the data.
    if limit is not None:
        check_integer("--limit", limit, 1, 10**12)
    check_integer("--batch-size", batch_size, 1, MAX_BATCH_SIZE)
    if threads is not None:
        check_integer("--threads", threads, 1, 1024)
    if crop_fraction is not None:
        crop_fraction = check_crop_fraction(crop_fraction)
    if input_zero_point is not None and input_scale is None:
        raise BadArgument("--input-zero-point needs --input-scale")
    path = resolve_artifact(path)  # a folder written by `edgecnn export`: the artifact it names
    if path.suffix.lower() not in (".tflite", ".onnx"):
        raise BadArgument(f"{path.name}: not a .tflite or .onnx file")
    ignored = None
    try:
        manifest = read_manifest_for(path)
    except EdgecnnError as exc:  # a broken manifest costs its facts, not the evaluation
        manifest, ignored = None, " ".join(str(exc).split())
        warn(f"manifest ignored: {ignored}; evaluated as a third-party model")
    mode, mode_source = _resolve_preprocess(manifest, preprocess, path.name, warn, ignored)
    if not isinstance(data, calibration.ImageSource):
        _check_data(data)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", calibration.CalibrationWarning)  # random: refused below
        source = calibration.open_source(data if isinstance(data, calibration.ImageSource)
                                         else os.fspath(data), split=split)
    if not source.labelled:
        raise BadArgument(
            f"{source.describe().get('path', source.name)} is unlabelled: evaluate needs labels "
            "(a folder with a dataset.txt of `path, label` lines, an .npz with `y` or `labels`, "
            "fashion-mnist, or default)"
        )

    calibrated_on = (((manifest or {}).get("calibration") or {}).get("source") or {})
    described = source.describe()
    if calibrated_on and all(calibrated_on.get(key) == described.get(key) for key in ("kind", "name", "path")):
        warn(f"{path.name} was calibrated on {source.name}: top-1 on its own calibration images "
             "flatters the model")

    # The model: its input tensor decides size, channels and layout.
    sha256 = sha256_of(path)
    if manifest is not None and manifest.get("sha256") and manifest["sha256"] != sha256:
        warn(f"{path.name} does not match the sha256 its manifest records: the manifest may "
             "describe another build")
    session = _open_checked_session(path, runtime, threads)
    input_info = input_quantization(session.inputs[0], scale=input_scale, zero_point=input_zero_point,
                                    preprocess=mode, artifact=path.name)
    input_shape, layout = _image_layout(input_info.shape, path.name)
    h, w, c = input_shape
    if mode in ("caffe", "torch") and c != 3:
        raise BadArgument(
            f"{path.name} takes {h}x{w}x{c} input; preprocessing `{mode}` needs 3 channels (RGB)"
        )
    recorded_shape = ((manifest or {}).get("preprocess") or {}).get("input_shape")
    if recorded_shape and tuple(recorded_shape) != tuple(input_shape):  # checked: integers or null
        warn(f"the manifest of {path.name} records input {recorded_shape}, the model takes "
             f"{list(input_shape)}: using the model's")

    # Classes: the model's against the data's.
    model_classes = _classes_of(session.outputs[0].shape)
    data_classes = source.num_classes
    fixed_batch = input_info.shape[0] if input_info.shape and input_info.shape[0] not in (None, -1) else None
    batch = int(batch_size)
    if session.format == "onnx" and fixed_batch is not None:
        batch = int(fixed_batch)  # ONNX Runtime does not resize a fixed batch dimension
    fraction = source.default_crop_fraction if crop_fraction is None else crop_fraction
    total = len(source) if limit is None else min(int(limit), len(source))

    def classes_check(classes: int) -> bool:
        """Whether column 0 is a background class to drop; BadArgument on a mismatch."""
        if classes == BACKGROUND_CLASSES and data_classes in (None, BACKGROUND_CLASSES - 1):
            return True
        if data_classes is not None and classes != data_classes:
            raise BadArgument(
                f"{path.name} has {classes} outputs but {source.name} has {data_classes} classes: "
                "evaluate a model on data labelled with its own classes"
                + (" (1001 outputs, background first, are scored against 1000 classes)"
                   if classes == BACKGROUND_CLASSES else "")
            )
        return False

    drop_background = classes_check(model_classes) if model_classes is not None else None

    for note in notes:
        progress.warn(note)
    checked = True
    progress.start(f"evaluating {path.name} on {source.name}", total=total)
    started = time.perf_counter()
    inference_seconds = 0.0
    n = top1 = topk = 0
    k_used = None

    def one_at_a_time(x: np.ndarray) -> np.ndarray:
        try:
            return np.concatenate([_run(session, x[i: i + 1], layout, input_info) for i in range(len(x))])
        except EdgecnnError:
            raise
        except Exception as exc:  # noqa: BLE001: the runtime's own exception types
            reason = " ".join(str(exc).split())[:300] or type(exc).__name__
            raise EdgecnnError(f"{path.name} failed on a {h}x{w}x{c} image: {reason}") from None

    for x, labels in calibration.iter_batches(source, input_shape=input_shape, preprocess=mode,
                                              batch_size=batch, limit=limit, crop_fraction=fraction):
        t0 = time.perf_counter()
        if batch == 1 and len(x) > 1:  # the model refused a batch before: the notice was given once
            outputs = one_at_a_time(x)
        else:
            try:
                outputs = _run(session, x, layout, input_info)
            except EdgecnnError:
                raise
            except Exception as exc:  # a runtime that refuses this batch size: one image at a time
                if len(x) == 1:
                    reason = " ".join(str(exc).split())[:300] or type(exc).__name__
                    raise EdgecnnError(f"{path.name} failed on a {h}x{w}x{c} image: {reason}") from None
                session = _open_checked_session(path, runtime, threads)  # a failed resize may leave it broken
                batch = 1
                warn(f"{path.name} does not run batches of {len(x)} ({type(exc).__name__}); "
                     "evaluating one image at a time")
                outputs = one_at_a_time(x)
        inference_seconds += time.perf_counter() - t0
        if drop_background is None:  # output size known only now (dynamic output shape)
            model_classes = outputs.shape[1]
            drop_background = classes_check(model_classes)
        scores = class_scores(outputs, drop_background=drop_background)
        worst = int(labels.max())
        if worst >= scores.shape[1]:
            raise BadArgument(
                f"{source.name} has label {worst}, out of range for the {scores.shape[1]} classes "
                f"{path.name} scores"
            )
        k_used = min(TOP_K, scores.shape[1])
        hits1, hitsk = topk_hits(scores, labels, k_used)
        n += len(labels)
        top1 += hits1
        topk += hitsk
        progress.advance(len(labels))
    seconds = time.perf_counter() - started
    if n == 0:
        raise EdgecnnError(f"no images to evaluate in {source.name}")
    if source.warning:
        warn(source.warning)

    # Through the record (edgecnn.records.EvaluateRow): its keys, its order; `skipped` and
    # `warnings` written only when there are some.
    return EvaluateRow(
        schema=EVALUATE_SCHEMA,
        artifact=str(path),
        artifact_name=path.name,
        sha256=sha256,
        format=session.format,
        model=(manifest or {}).get("model"),
        quantization=(manifest or {}).get("quantization"),
        data=described,
        split=described.get("split"),
        n=n,
        top1=top1 / n,
        top5=topk / n,
        correct={"top1": top1, "top5": topk},
        top5_k=k_used,
        classes=model_classes,
        background_class_dropped=bool(drop_background),
        preprocess={"mode": mode, "crop_fraction": fraction, "source": mode_source,
                    "crop_source": "data" if crop_fraction is None else "option",
                    "input_shape": list(input_shape), "layout": layout},
        input=input_info.to_dict(),
        input_quantization=_quantization_source(session.inputs[0], input_info, input_scale),
        runtime=session.runtime,
        runtime_version=session.runtime_version,
        threads=threads,
        batch_size=batch,
        seconds=round(seconds, 3),
        inference_seconds=round(inference_seconds, 3),
        host=describe_host(),
        created=now_iso(),
        skipped=source.skipped or None,
        warnings=tuple(notes) if notes else None,
    ).to_json()
