"""`edgecnn evaluate`: top-1 and top-5 of an artifact on labelled images, in its own runtime.

    row = evaluate_artifact("artifacts/mobilenetv2-int8/mobilenetv2-int8.tflite",
                            "../shared/data/imagenet-val-1300")
    row["top1"], row["top5"], row["n"]

The steps, each a function of this module that `evaluate_artifact` calls in turn:

1. `open_artifact`, `decide_preprocess`: the artifact (a file, or an export folder: the
   file its manifest names) and its manifest (if any) give the preprocessing mode;
   `preprocess=` gives it for a file without one (and overrides the manifest's, with a
   warning). A manifest.json that is broken is ignored with a warning, as `edgecnn
   benchmark` does, and the file scored as a third-party model;
2. `open_data`: the data source (`calibration.open_source`) gives the images, labels, class
   count and the crop fraction (its `default_crop_fraction`: 0.875 for photos, 1.0 for small
   prepared datasets such as Fashion-MNIST; `crop_fraction=` overrides it). The manifest's
   `crop_fraction` is the one used for the *calibration* images and is not reused;
   `check_provenance`: the sha256, and a warning for data the model was calibrated on;
3. `open_model`, `batch_plan`: the model's own input tensor gives the input size and channel
   count (NHWC, or NCHW for third-party ONNX files); `calibration.iter_batches` crops,
   resizes and converts colour to fit;
4. `Predictor`: each float32 batch is quantized with the input's own scale and zero point (a
   TFLite tensor's; for ONNX, the DequantizeLinear's that reads the input; else
   `input_scale=`, or raw uint8 pixels, see `edgecnn.runtime.input_quantization`; float16
   and float32 are cast) and the outputs are dequantized (`edgecnn.runtime.predict`);
5. `Score`: a model with 1001 outputs, background class first (TF-slim and the TFLite
   hosted models), has column 0 dropped and is scored against labels 0..999 when the
   source has 1000 classes or does not say how many (an .npz without class names); any
   other class count must equal the source's, and every label must be below it. Top-k
   takes k = min(5, classes); ties between scores go to the lower class index, as
   `numpy.argmax` does;
6. `build_row`: the `edgecnn.records.EvaluateRow`.

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
from dataclasses import dataclass
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


def _resolve_preprocess(
    manifest: dict | None, preprocess: str, name: str, warn, ignored: str | None = None
) -> tuple[str, str]:
    """(mode, "manifest" | "option"). `ignored`: why the manifest beside the file was ignored."""
    from calibration.preprocessing import check_mode

    recorded = (manifest or {}).get("preprocess") or {}
    recorded_mode = recorded.get("mode")
    if preprocess in (None, "", "auto"):
        if recorded_mode:
            return check_mode(recorded_mode).value, "manifest"
        if ignored:
            raise BadArgument(
                f"the manifest beside {name} is ignored ({ignored}), so nothing says how its "
                "input is preprocessed: pass --preprocess tf, caffe, torch, unit or raw"
            )
        if manifest is None:
            raise BadArgument(
                f"{name} has no manifest.json beside it to say how its input is preprocessed: "
                "pass --preprocess tf, caffe, torch, unit or raw"
            )
        raise BadArgument(
            f"the manifest of {name} records no preprocessing: pass --preprocess tf, caffe, torch, unit or raw"
        )
    mode = check_mode(preprocess).value
    if recorded_mode and recorded_mode != mode:
        warn(f"preprocessing `{mode}` overrides `{recorded_mode}` from the manifest of {name}")
    return mode, "option"


def _open_checked_session(path: Path, runtime: str, threads: int | None):
    from edgecnn.runtime import open_session

    session = open_session(path, runtime=runtime, threads=threads)  # quiet: LiteRT's notice is muted
    if len(session.inputs) != 1:
        raise BadArgument(
            f"{path.name} has {len(session.inputs)} inputs; evaluate scores single-input image classifiers"
        )
    if not session.outputs:
        raise BadArgument(f"{path.name} has no outputs")
    return session


def _quantization_source(model_info, used, option_scale) -> str | None:
    """Where the input's scale came from: "model", "option", "raw" (uint8 pixels as they are),
    or None for a float input."""
    if used.scale is None:
        return None
    if option_scale is not None:
        return "option"
    return "model" if model_info.quantized else "raw"


def background_dropped(classes: int, data_classes: int | None, name: str, source_name: str) -> bool:
    """Whether column 0 of a model's `classes` outputs is a background class to drop, against
    data of `data_classes` classes (None: the data does not say); BadArgument on a mismatch."""
    if classes == BACKGROUND_CLASSES and data_classes in (None, BACKGROUND_CLASSES - 1):
        return True
    if data_classes is not None and classes != data_classes:
        raise BadArgument(
            f"{name} has {classes} outputs but {source_name} has {data_classes} classes: "
            "evaluate a model on data labelled with its own classes"
            + (
                " (1001 outputs, background first, are scored against 1000 classes)"
                if classes == BACKGROUND_CLASSES
                else ""
            )
        )
    return False


# --data values that name a source rather than a path (calibration.open_source's keywords).
_DATA_KEYWORDS = ("default", "random", "fashion-mnist", "fashionmnist")


def _check_data(data) -> None:
    """BadArgument for a --data that names nothing: said about the data, not about calibration."""
    text = os.fspath(data).strip()
    if not text:
        raise BadArgument(
            "--data is empty: give default, a folder with a dataset.txt, fashion-mnist[:DIR] or an .npz with labels"
        )
    keyword = text.split(":", 1)[0].lower().replace("_", "-")
    if keyword in _DATA_KEYWORDS:
        return
    path = Path(text).expanduser()
    if not path.exists():
        raise BadArgument(
            f"data `{text}` not found: give default, a folder with a dataset.txt, "
            "fashion-mnist[:DIR] or an .npz with labels"
        )
    if not (path.is_dir() or path.is_file()):
        raise BadArgument(f"data {text} is neither a file nor a folder")


# -- the steps --------------------------------------------------------------------------------
#
# evaluate_artifact runs them in this order: options, the artifact and its manifest, the
# preprocessing, the data, provenance, the model and its input, the plan; then, the checks
# passed, predictions scored batch by batch, and the row.


class _Warnings:
    """The warnings of one evaluation, all kept for the row. Until `release` they are held
    back, so that an error a later check finds stays one line; after it, each goes out at once."""

    def __init__(self, progress: Progress):
        self.progress, self.notes, self.live = progress, [], False

    def __call__(self, message: str) -> None:
        self.notes.append(message)
        if self.live:
            self.progress.warn(message)

    def release(self) -> None:
        for note in self.notes:
            self.progress.warn(note)
        self.live = True


def check_options(*, limit, batch_size, threads, crop_fraction, input_scale, input_zero_point) -> float | None:
    """The cheap checks, before any file is read (BadArgument); returns the crop fraction checked."""
    from calibration.preprocessing import check_crop_fraction
    from edgecnn.harness import check_integer

    if limit is not None:
        check_integer("--limit", limit, 1, 10**12)
    check_integer("--batch-size", batch_size, 1, MAX_BATCH_SIZE)
    if threads is not None:
        check_integer("--threads", threads, 1, 1024)
    if crop_fraction is not None:
        crop_fraction = check_crop_fraction(crop_fraction)
    if input_zero_point is not None and input_scale is None:
        raise BadArgument("--input-zero-point needs --input-scale")
    return crop_fraction


@dataclass(frozen=True)
class Artifact:
    """The file to evaluate and its manifest (None: none beside it, or one that is ignored)."""

    path: Path
    manifest: dict | None
    ignored: str | None = None  # why the manifest beside it was ignored

    def recorded(self, key: str) -> dict:
        """The manifest's object at `key`, {} when there is none."""
        return (self.manifest or {}).get(key) or {}


def open_artifact(path, warn) -> Artifact:
    """The artifact at `path` (a folder written by `edgecnn export`: the file its manifest
    names) and its manifest; a broken manifest costs its facts (a warning), not the evaluation."""
    from edgecnn.harness import resolve_artifact
    from edgecnn.manifest import read_manifest_for

    path = resolve_artifact(path)
    if path.suffix.lower() not in (".tflite", ".onnx"):
        raise BadArgument(f"{path.name}: not a .tflite or .onnx file")
    try:
        return Artifact(path, read_manifest_for(path))
    except EdgecnnError as exc:
        ignored = " ".join(str(exc).split())
        warn(f"manifest ignored: {ignored}; evaluated as a third-party model")
        return Artifact(path, None, ignored)


def decide_preprocess(artifact: Artifact, preprocess: str, warn) -> tuple[str, str]:
    """(mode, "manifest" | "option"): the manifest's mode, or `preprocess` (auto: the manifest's)."""
    return _resolve_preprocess(artifact.manifest, preprocess, artifact.path.name, warn, artifact.ignored)


def open_data(data, split: str):
    """The labelled image source `data` names (`calibration.open_source`); BadArgument for data
    that names nothing or has no labels."""
    import calibration

    if not isinstance(data, calibration.ImageSource):
        _check_data(data)
        data = os.fspath(data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", calibration.CalibrationWarning)  # random: refused below
        source = calibration.open_source(data, split=split)
    if not source.labelled:
        raise BadArgument(
            f"{source.describe().get('path', source.name)} is unlabelled: evaluate needs labels "
            "(a folder with a dataset.txt of `path, label` lines, an .npz with `y` or `labels`, "
            "fashion-mnist, or default)"
        )
    return source


def check_provenance(artifact: Artifact, source, described: dict, warn) -> str:
    """The artifact's sha256; warnings for data it was calibrated on and a manifest that
    records another sha256."""
    from edgecnn.manifest import sha256_of

    path = artifact.path
    calibrated_on = artifact.recorded("calibration").get("source") or {}
    if calibrated_on and all(calibrated_on.get(key) == described.get(key) for key in ("kind", "name", "path")):
        warn(f"{path.name} was calibrated on {source.name}: top-1 on its own calibration images flatters the model")
    sha256 = sha256_of(path)
    recorded = (artifact.manifest or {}).get("sha256")
    if recorded and recorded != sha256:
        warn(f"{path.name} does not match the sha256 its manifest records: the manifest may describe another build")
    return sha256


@dataclass(frozen=True)
class Model:
    """The open session and what its input tensor decides."""

    session: Any
    input_info: Any  # edgecnn.runtime.TensorInfo, with the scale real values are quantized with
    input_shape: tuple[int, int, int]  # (h, w, c)
    layout: str  # "NHWC" | "NCHW"
    classes: int | None  # from the output's shape; None when it is dynamic

    @property
    def shape_text(self) -> str:
        return "x".join(str(d) for d in self.input_shape)


def open_model(
    artifact: Artifact,
    mode: str,
    *,
    runtime: str,
    threads: int | None,
    input_scale: float | None,
    input_zero_point: int | None,
    warn,
) -> Model:
    """The session, the input's quantization (`edgecnn.runtime.input_quantization`), size,
    channels and layout; BadArgument for a model evaluate cannot feed."""
    from edgecnn.runtime import input_quantization

    path = artifact.path
    session = _open_checked_session(path, runtime, threads)
    input_info = input_quantization(
        session.inputs[0], scale=input_scale, zero_point=input_zero_point, preprocess=mode, artifact=path.name
    )
    input_shape, layout = _image_layout(input_info.shape, path.name)
    h, w, c = input_shape
    if mode in ("caffe", "torch") and c != 3:
        raise BadArgument(f"{path.name} takes {h}x{w}x{c} input; preprocessing `{mode}` needs 3 channels (RGB)")
    recorded_shape = artifact.recorded("preprocess").get("input_shape")
    if recorded_shape and tuple(recorded_shape) != tuple(input_shape):  # checked: integers or null
        warn(
            f"the manifest of {path.name} records input {recorded_shape}, the model takes "
            f"{list(input_shape)}: using the model's"
        )
    return Model(session, input_info, input_shape, layout, _classes_of(session.outputs[0].shape))


def batch_plan(model: Model, batch_size: int) -> int:
    """Images per call: `batch_size`, or the batch a fixed ONNX input takes (ONNX Runtime does
    not resize a fixed batch dimension; TFLite sessions resize theirs)."""
    shape = model.input_info.shape
    fixed = shape[0] if shape and shape[0] not in (None, -1) else None
    if model.session.format == "onnx" and fixed is not None:
        return int(fixed)
    return int(batch_size)


class Predictor:
    """Batches through `edgecnn.runtime.predict`; a model that refuses a batch is reopened (a
    failed resize may leave the session broken) and run one image at a time, with one warning."""

    def __init__(self, model: Model, artifact: Artifact, batch: int, *, runtime: str, threads: int | None, warn):
        self.model, self.path, self.batch = model, artifact.path, batch
        self.session = model.session
        self.runtime, self.threads, self.warn = runtime, threads, warn

    def _predict(self, batch: np.ndarray) -> np.ndarray:
        from edgecnn.runtime import predict

        if self.model.layout == "NCHW":
            batch = np.ascontiguousarray(batch.transpose(0, 3, 1, 2))
        outputs = predict(self.session, batch, batch_size=len(batch), input_info=self.model.input_info)
        return outputs.reshape(len(batch), -1)

    def _failed(self, exc: Exception) -> EdgecnnError:
        reason = " ".join(str(exc).split())[:300] or type(exc).__name__
        return EdgecnnError(f"{self.path.name} failed on a {self.model.shape_text} image: {reason}")

    def _one_at_a_time(self, x: np.ndarray) -> np.ndarray:
        try:
            return np.concatenate([self._predict(x[i : i + 1]) for i in range(len(x))])
        except EdgecnnError:
            raise
        except Exception as exc:  # noqa: BLE001 (the runtime's own exception types)
            raise self._failed(exc) from None

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """The (len(x), outputs) real-valued outputs of the float32 NHWC batch `x`."""
        if self.batch == 1 and len(x) > 1:  # the model refused a batch before: the notice was given once
            return self._one_at_a_time(x)
        try:
            return self._predict(x)
        except EdgecnnError:
            raise
        except Exception as exc:  # a runtime that refuses this batch size: one image at a time
            if len(x) == 1:
                raise self._failed(exc) from None
            self.session = _open_checked_session(self.path, self.runtime, self.threads)
            self.batch = 1
            self.warn(
                f"{self.path.name} does not run batches of {len(x)} ({type(exc).__name__}); "
                "evaluating one image at a time"
            )
            return self._one_at_a_time(x)


class Score:
    """Top-1 and top-k hits so far. Whether a background column is dropped is decided from the
    model's output shape, or from the first outputs when that shape is dynamic."""

    def __init__(self, classes: int | None, data_classes: int | None, name: str, source_name: str):
        self.data_classes, self.name, self.source_name = data_classes, name, source_name
        self.classes = classes
        self.drop_background = None if classes is None else self._background(classes)
        self.n = self.top1 = self.topk = 0
        self.k: int | None = None

    def _background(self, classes: int) -> bool:
        return background_dropped(classes, self.data_classes, self.name, self.source_name)

    def add(self, outputs: np.ndarray, labels: np.ndarray) -> None:
        if self.drop_background is None:  # output size known only now (dynamic output shape)
            self.classes = outputs.shape[1]
            self.drop_background = self._background(self.classes)
        scores = class_scores(outputs, drop_background=self.drop_background)
        worst = int(labels.max())
        if worst >= scores.shape[1]:
            raise BadArgument(
                f"{self.source_name} has label {worst}, out of range for the {scores.shape[1]} classes "
                f"{self.name} scores"
            )
        self.k = min(TOP_K, scores.shape[1])
        hits1, hitsk = topk_hits(scores, labels, self.k)
        self.n += len(labels)
        self.top1 += hits1
        self.topk += hitsk


def run_batches(
    source,
    model: Model,
    predictor: Predictor,
    score: Score,
    *,
    mode: str,
    batch: int,
    limit: int | None,
    crop_fraction: float,
    progress: Progress,
) -> tuple[float, float]:
    """Every image of `source` (up to `limit`) through `predictor` into `score`; returns
    (seconds in all, seconds in inference)."""
    import calibration

    total = len(source) if limit is None else min(int(limit), len(source))
    progress.start(f"evaluating {predictor.path.name} on {source.name}", total=total)
    started = time.perf_counter()
    inference_seconds = 0.0
    for x, labels in calibration.iter_batches(
        source,
        input_shape=model.input_shape,
        preprocess=mode,
        batch_size=batch,
        limit=limit,
        crop_fraction=crop_fraction,
    ):
        t0 = time.perf_counter()
        outputs = predictor(x)
        inference_seconds += time.perf_counter() - t0
        score.add(outputs, labels)
        progress.advance(len(labels))
    return time.perf_counter() - started, inference_seconds


def build_row(
    artifact: Artifact,
    sha256: str,
    described: dict,
    model: Model,
    predictor: Predictor,
    score: Score,
    *,
    mode: str,
    mode_source: str,
    crop_fraction: float,
    crop_source: str,
    input_scale: float | None,
    threads: int | None,
    seconds: float,
    inference_seconds: float,
    skipped,
    notes: list[str],
):
    """The EvaluateRow: its keys, its order; `skipped` and `warnings` written only when there are some."""
    from edgecnn.host import describe_host
    from edgecnn.records import EvaluateRow
    from edgecnn.results import EVALUATE_SCHEMA, now_iso

    path, manifest, session, n = artifact.path, artifact.manifest or {}, predictor.session, score.n
    return EvaluateRow(
        schema=EVALUATE_SCHEMA,
        artifact=str(path),
        artifact_name=path.name,
        sha256=sha256,
        format=session.format,
        model=manifest.get("model"),
        quantization=manifest.get("quantization"),
        data=described,
        split=described.get("split"),
        n=n,
        top1=score.top1 / n,
        top5=score.topk / n,
        correct={"top1": score.top1, "top5": score.topk},
        top5_k=score.k,
        classes=score.classes,
        background_class_dropped=bool(score.drop_background),
        preprocess={
            "mode": mode,
            "crop_fraction": crop_fraction,
            "source": mode_source,
            "crop_source": crop_source,
            "input_shape": list(model.input_shape),
            "layout": model.layout,
        },
        input=model.input_info.to_dict(),
        input_quantization=_quantization_source(session.inputs[0], model.input_info, input_scale),
        runtime=session.runtime,
        runtime_version=session.runtime_version,
        threads=threads,
        batch_size=predictor.batch,
        seconds=round(seconds, 3),
        inference_seconds=round(inference_seconds, 3),
        host=describe_host(),
        created=now_iso(),
        skipped=skipped or None,
        warnings=tuple(notes) if notes else None,
    )


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
    progress = progress or Progress()
    warn = _Warnings(progress)  # held back until every check has passed, so an error stays one line
    crop_option = check_options(
        limit=limit,
        batch_size=batch_size,
        threads=threads,
        crop_fraction=crop_fraction,
        input_scale=input_scale,
        input_zero_point=input_zero_point,
    )
    artifact = open_artifact(path, warn)
    mode, mode_source = decide_preprocess(artifact, preprocess, warn)
    source = open_data(data, split)
    described = source.describe()
    sha256 = check_provenance(artifact, source, described, warn)
    model = open_model(
        artifact,
        mode,
        runtime=runtime,
        threads=threads,
        input_scale=input_scale,
        input_zero_point=input_zero_point,
        warn=warn,
    )
    batch = batch_plan(model, batch_size)
    fraction = source.default_crop_fraction if crop_option is None else crop_option
    score = Score(model.classes, source.num_classes, artifact.path.name, source.name)
    warn.release()

    predictor = Predictor(model, artifact, batch, runtime=runtime, threads=threads, warn=warn)
    seconds, inference_seconds = run_batches(
        source, model, predictor, score, mode=mode, batch=batch, limit=limit, crop_fraction=fraction, progress=progress
    )
    if score.n == 0:
        raise EdgecnnError(f"no images to evaluate in {source.name}")
    if source.warning:
        warn(source.warning)
    return build_row(
        artifact,
        sha256,
        described,
        model,
        predictor,
        score,
        mode=mode,
        mode_source=mode_source,
        crop_fraction=fraction,
        crop_source="data" if crop_option is None else "option",
        input_scale=input_scale,
        threads=threads,
        seconds=seconds,
        inference_seconds=inference_seconds,
        skipped=source.skipped,
        notes=warn.notes,
    ).to_json()
