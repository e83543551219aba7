"""`edgecnn tune`: the fastest (or smallest) artifact within an accuracy budget, per format.

    from edgecnn.tune import TuneRequest, tune
    record = tune(TuneRequest("lenet.keras", data="fashion-mnist", max_drop=1.0, formats=("tflite", "onnx")))
    record["formats"]["tflite"]["choice"]

The public function is short: check the request, split the data (`split`), load the model,
then per format make the float reference and climb the ladder (`ladder`), choose (`choose`),
and publish the chosen artifact with its manifest and the report (`record`, `report`).
Engines: AI Edge Quantizer for TFLite (`engines_tflite`), ONNX Runtime for ONNX
(`engines_onnx`); per-layer errors from `edgecnn.numerics`. No quantizer of our own.
"""

from __future__ import annotations

import math
import shutil
import tempfile
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from edgecnn.errors import BadArgument, EdgecnnError
from edgecnn.tune.choose import OPTIMIZE
from edgecnn.tune.ladder import Candidate, FormatRun, Ladder, Progress
from edgecnn.tune.split import DEFAULT_CALIBRATION, split_source

__all__ = ["TUNE_SCHEMA", "Progress", "TuneRequest", "tune"]

TUNE_SCHEMA = "edgecnn.tune/1"
FORMATS = ("tflite", "onnx")
MIN_QAT_IMAGES = 256


@dataclass
class TuneRequest:
    model: str  # a saved Keras model (.keras, .h5) or a zoo name (with weights)
    data: str = "fashion-mnist"
    max_drop: float = 1.0  # top-1 points on validation
    formats: tuple[str, ...] = ("tflite",)
    optimize: str = "latency"
    threads: int | None = None
    time_budget: float | None = None  # minutes
    qat: bool | None = None  # None: when the format and the data allow it
    qat_epochs: int = 1
    qat_lr: float = 1e-5
    qat_batch_size: int = 64
    out: Path = Path("tuned")
    weights: str = "auto"
    preprocess: str = "auto"
    seed: int = 0
    trust_model: bool = False  # skip the model gate for a Keras file you made (`--trust-model`)
    calib_size: int = DEFAULT_CALIBRATION
    val_size: int | None = None
    test_size: int | None = None
    max_float_layers: int = 6  # step 3's limit on k
    sensitivity_images: int = 64
    bench_runs: int = 50
    bench_min_secs: float = 1.0
    bench_max_secs: float = 30.0
    warnings: list[str] = field(default_factory=list, repr=False)

    def to_dict(self) -> dict:
        data = asdict(self)
        data.pop("warnings")
        data["out"], data["formats"] = str(self.out), list(self.formats)
        return data


def check(request: TuneRequest) -> None:
    """Refuse what cannot work, before anything is read or written (BadArgument: exit 2)."""
    drop = request.max_drop
    if isinstance(drop, bool) or not isinstance(drop, (int, float)) or not math.isfinite(drop) or drop < 0:
        raise BadArgument(f"--max-drop must be a number of points >= 0. Received {drop!r}")
    if not request.formats or any(f not in FORMATS for f in request.formats):
        raise BadArgument(f"--format must be tflite, onnx or all. Received {list(request.formats)}")
    if request.optimize not in OPTIMIZE:
        raise BadArgument(f"--optimize must be latency or size. Received `{request.optimize}`")
    if request.qat and "tflite" not in request.formats:
        raise BadArgument(
            "--qat fine-tunes for TFLite only (tf2onnx keeps QAT weights float); "
            "use --format tflite or all, or --no-qat"
        )
    if request.threads is not None and (isinstance(request.threads, bool) or int(request.threads) < 1):
        raise BadArgument(f"--threads must be at least 1. Received {request.threads}")
    budget = request.time_budget
    if budget is not None and (not isinstance(budget, (int, float)) or not math.isfinite(budget) or budget <= 0):
        raise BadArgument(f"--time-budget must be a positive number of minutes. Received {budget!r}")
    for name in ("qat_epochs", "max_float_layers", "sensitivity_images", "bench_runs"):
        value = getattr(request, name)
        low = 0 if name == "max_float_layers" else 1
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise BadArgument(f"--{name.replace('_', '-')} must be an integer of at least {low}. Received {value!r}")
    from edgecnn.errors import check_seed

    check_seed(request.seed)  # a negative seed reached numpy: `ValueError: expected non-negative integer`
    from edgecnn.loading import is_model_file

    if is_model_file(request.model):
        if not Path(request.model).is_file():
            raise EdgecnnError(f"no such model file: {request.model}")
    else:
        from edgecnn.models import get_model_info

        get_model_info(request.model)


class _Context:
    """What every ladder shares: data, measuring, the clock."""

    def __init__(self, request, parts, facts, input_shape, workdir, progress):
        import calibration as calib

        self.request, self.parts, self.facts = request, parts, facts
        self.workdir, self.progress = workdir, progress
        self.mode = facts["preprocess"]
        self.input_shape = input_shape
        self.started = time.perf_counter()
        self._seconds: list[float] = []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.calibration = calib.CalibrationData(
                parts.calibration, input_shape=input_shape, preprocess=self.mode, samples=None, seed=None
            ).arrays()
            self.sensitivity_images = calib.CalibrationData(
                parts.validation,
                input_shape=input_shape,
                preprocess=self.mode,
                samples=min(request.sensitivity_images, len(parts.validation)),
                seed=None,
            ).arrays()
        self.qat_allowed, self.qat_reason, self.qat_build = False, "not asked for (--no-qat)", None

    # -- the clock --------------------------------------------------------------------------
    def observe(self, seconds: float) -> None:
        self._seconds.append(seconds)

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def out_of_time(self, remaining: int) -> bool:
        budget = self.request.time_budget
        if budget is None:
            return False
        per = float(np.mean(self._seconds)) if self._seconds else 0.0
        return self.elapsed() + per > budget * 60.0

    # -- measuring --------------------------------------------------------------------------
    def top1(self, path, part) -> float:
        from edgecnn.evaluate import evaluate_artifact

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            row = evaluate_artifact(path, part, preprocess=self.mode, threads=self.request.threads)
        return float(row["top1"])

    def latency(self, path) -> tuple[float | None, dict | None, str | None]:
        from edgecnn.harness import BenchmarkSettings, benchmark_artifact

        settings = BenchmarkSettings(
            threads=self.request.threads,
            runs=self.request.bench_runs,
            min_secs=self.request.bench_min_secs,
            max_secs=max(self.request.bench_max_secs, self.request.bench_min_secs),
        )
        row = benchmark_artifact(path, settings)
        if row.get("status") != "ok" or not row.get("latency_ms"):
            return None, None, row.get("error") or "benchmark failed"
        stats = row["latency_ms"]
        return float(stats["p50"]), stats, None

    def measure(self, cand: Candidate, run: FormatRun) -> None:
        from edgecnn.tune import engines_onnx, engines_tflite

        engine = engines_tflite if cand.format == "tflite" else engines_onnx
        cand.val_top1 = self.top1(cand.path, self.parts.validation)
        cand.test_top1 = self.top1(cand.path, self.parts.test)
        cand.val_drop = round(100.0 * (run.float_val_top1 - cand.val_top1), 4)
        cand.test_drop = round(100.0 * (run.float_test_top1 - cand.test_top1), 4)
        cand.within_budget = cand.val_drop <= float(self.request.max_drop) + 1e-9
        cand.float_ops = engine.float_op_count(cand.path)
        cand.integer_only = cand.float_ops == 0
        cand.latency_ms, cand.latency, error = self.latency(cand.path)
        if error:
            self.progress.warn(f"{cand.id}: latency not measured: {error}")


def tune(request: TuneRequest, progress: Progress | None = None) -> dict:
    """Tune `request.model`; publish the chosen artifact(s) and the report; return the record."""
    progress = progress or Progress()
    started = time.perf_counter()
    check(request)
    import calibration

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", calibration.CalibrationWarning)
        source = calibration.open_source(request.data)
    parts = split_source(
        source, calibration=request.calib_size, validation=request.val_size, test=request.test_size, seed=request.seed
    )
    qat_wanted = request.qat is not False and "tflite" in request.formats
    train_count = len(parts.train) if parts.train is not None else 0
    if request.qat and train_count < MIN_QAT_IMAGES:
        raise BadArgument(
            f"--qat trains on what the three parts leave of {source.name}: {train_count} "
            f"image(s), fewer than {MIN_QAT_IMAGES}; give more data or --no-qat"
        )
    out = Path(request.out)

    from edgecnn.export import (  # the model loading export uses
        ExportRequest,
        _load_model,
    )

    progress.step(f"loading {request.model}", None)
    model, facts = _load_model(
        ExportRequest(
            model=request.model,
            weights=request.weights,
            preprocess=request.preprocess,
            out=out,
            trust_model=request.trust_model,
        ),
        progress,
    )
    input_shape = tuple(int(d) for d in model.inputs[0].shape[1:])
    if any(d <= 0 for d in input_shape) or len(input_shape) != 3:
        raise BadArgument(
            f"{request.model} takes input {list(model.inputs[0].shape)}; tune needs a fixed height x width x channels"
        )
    classes = int(model.outputs[0].shape[-1])
    if source.num_classes is not None and source.num_classes != classes:
        raise BadArgument(f"{request.model} has {classes} outputs but {source.name} has {source.num_classes} classes")
    created = not out.exists()
    try:  # only now: a model that does not load leaves nothing behind
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise EdgecnnError(f"cannot create --out {out}: {exc.strerror}") from None
    workdir = Path(tempfile.mkdtemp(prefix=".tune-", suffix=".partial", dir=out))
    try:
        ctx = _Context(request, parts, facts, input_shape, workdir, progress)
        if qat_wanted and train_count >= MIN_QAT_IMAGES:
            ctx.qat_allowed, ctx.qat_reason = True, None
            ctx.qat_build = _qat_builder(model, facts, parts, ctx, request, progress)
        elif qat_wanted:
            ctx.qat_reason = (
                f"the three parts leave {train_count} image(s) of {source.name} to train on, "
                f"fewer than {MIN_QAT_IMAGES}"
            )
        runs = {}
        for fmt in request.formats:
            runs[fmt] = _climb(fmt, model, ctx, progress)
        from edgecnn.tune.record import publish

        return publish(request, facts, model, parts, ctx, runs, out, workdir, time.perf_counter() - started, progress)
    except BaseException:
        shutil.rmtree(workdir, ignore_errors=True)
        if created and out.is_dir() and not any(out.iterdir()):
            out.rmdir()  # a failed run leaves no empty --out behind
        raise
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _climb(fmt: str, model, ctx: _Context, progress: Progress) -> FormatRun:
    from edgecnn.tune import engines_onnx, engines_tflite

    progress.step(f"{fmt}: float reference", None)
    float_path = ctx.workdir / f"float.{fmt}"
    if fmt == "tflite":
        float_path.write_bytes(engines_tflite.float_tflite(model))
        reference = float_path
    else:
        float_path.write_bytes(engines_onnx.float_onnx(model))
        reference = engines_onnx.prepare(float_path, ctx.workdir / "float-prepared.onnx")
    latency, _, error = ctx.latency(float_path)
    if error:
        progress.warn(f"{fmt} float reference: latency not measured: {error}")
    run = FormatRun(
        fmt,
        float_path,
        reference,
        ctx.top1(float_path, ctx.parts.validation),
        ctx.top1(float_path, ctx.parts.test),
        float_path.stat().st_size,
        latency,
    )
    return Ladder(fmt, ctx, run, progress).climb()


def _qat_builder(model, facts, parts, ctx, request, progress):
    """Step 4's build: QAT on the training part, then TensorFlow's int8 conversion."""

    def build():
        from calibration import resize_image
        from edgecnn.training.data import TrainingData
        from edgecnn.training.qat import quantize_aware_finetune
        from edgecnn.tune.engines_tflite import qat_tflite

        def arrays(part):
            images, labels = [], []
            for image, label in part.iter_images():
                images.append(
                    resize_image(image, input_shape=ctx.input_shape, crop_fraction=part.default_crop_fraction)
                )
                labels.append(label)
            return np.stack(images), np.asarray(labels, np.int64)

        x_train, y_train = arrays(parts.train)
        x_val, y_val = arrays(parts.validation)
        data = TrainingData(
            x_train,
            y_train,
            x_val,
            y_val,
            tuple(ctx.input_shape),
            ctx.mode,
            int(model.outputs[0].shape[-1]),
            parts.train.class_names,
            parts.train.default_crop_fraction,
            parts.train.describe(),
            {"part": "validation", "count": len(parts.validation)},
            seed=request.seed,
        )
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                qat_model, info = quantize_aware_finetune(
                    model,
                    data,
                    request.qat_epochs,
                    batch_size=request.qat_batch_size,
                    lr=request.qat_lr,
                    optimization=facts.get("optimization"),
                    seed=request.seed,
                )
            data_bytes = qat_tflite(qat_model, ctx.calibration)
        except EdgecnnError:
            raise
        except Exception as exc:  # tfmot and the converter raise their own types
            reason = " ".join(str(exc).split())[:300] or type(exc).__name__
            raise EdgecnnError(f"QAT failed: {reason}") from None
        settings = {
            "engine": "tensorflow-model-optimization QAT + TFLiteConverter",
            "io": "int8",
            "epochs": request.qat_epochs,
            "lr": request.qat_lr,
            "batch_size": request.qat_batch_size,
            "train_images": len(x_train),
            "scheme": info.get("scheme"),
            "calibration_images": len(ctx.calibration),
        }
        return data_bytes, settings

    return build
