"""What `edgecnn export` is asked for, and its checks: every option refused before any work
(`BadArgument`, one line), for Python callers as for the CLI; the names of what it writes."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from converters import CALIBRATION_METHODS, FORMATS, QUANTIZATIONS
from edgecnn.errors import BadArgument, EdgecnnError, check_int, check_seed
from edgecnn.loading import is_model_file
from edgecnn.progress import Progress

PREPROCESS_MODES = ("tf", "caffe", "torch", "unit", "raw")


@dataclass
class ExportRequest:
    """What `edgecnn export` was asked for; recorded in the manifest as `options`."""

    model: str  # a zoo name or alias, or a saved Keras model (.keras, .h5)
    quantization: str = "float32"
    formats: tuple[str, ...] = ("tflite",)
    weights: str = "auto"  # auto | none | a weights file
    input_size: int | None = None
    alpha: float | None = None
    classes: int | None = None
    calib: str = "default"
    calib_samples: int = 100
    calib_method: str = "minmax"
    io: str | None = None
    preprocess: str = "auto"
    trust_model: bool = False  # skip the model gate for a Keras file you made (`--trust-model`)
    out: Path = Path("artifacts")
    seed: int = 0
    parity_samples: int = 32
    # Quantization-aware training before the int8 conversion (`--int8 --qat --dataset SOURCE`).
    qat: bool = False
    qat_dataset: str | None = None  # labelled training data (a `--dataset` of `edgecnn train`)
    qat_epochs: int = 1
    qat_lr: float = 1e-5
    qat_batch_size: int = 64
    qat_limit: int | None = None  # training images (quick runs); validation is not limited
    warnings: list[str] = field(default_factory=list, repr=False)

    def qat_arguments(self) -> dict:
        """The arguments of the QAT stage (`edgecnn.training.qat_stage`) this request asks for."""
        return {
            "dataset": self.qat_dataset,
            "epochs": self.qat_epochs,
            "lr": self.qat_lr,
            "batch_size": self.qat_batch_size,
            "limit": self.qat_limit,
            "seed": self.seed,
        }


def qat_settings(qat: bool, *, dataset=None, epochs=None, lr=None, batch_size=None, limit=None) -> dict:
    """The ExportRequest fields of the QAT options given; any given without `qat` is refused.
    Options left out (None) keep ExportRequest's defaults."""
    given = {
        "--dataset": dataset,
        "--epochs": epochs,
        "--qat-lr": lr,
        "--qat-batch-size": batch_size,
        "--qat-limit": limit,
    }
    named = [option for option, value in given.items() if value is not None]
    if named and not qat:
        raise BadArgument(
            f"{', '.join(named)} {'applies' if len(named) == 1 else 'apply'} to --qat "
            "(quantization-aware training); pass --int8 --qat"
        )
    fields = {
        "qat_dataset": dataset,
        "qat_epochs": epochs,
        "qat_lr": lr,
        "qat_batch_size": batch_size,
        "qat_limit": limit,
    }
    return {name: value for name, value in fields.items() if value is not None}


def _warn(request: ExportRequest, progress: Progress, message: str) -> None:
    """Print a warning once and keep it for the manifest."""
    if message not in request.warnings:
        request.warnings.append(message)
        progress.warn(message)


def artifact_stem(request: ExportRequest) -> str:
    """`mobilenetv2-int8`, with `-a0.35` / `-96` when alpha or input size was given, `-qat` after QAT."""
    base = Path(request.model).stem if is_model_file(request.model) else request.model.lower()
    parts = [base]
    if request.alpha is not None:
        parts.append(f"a{request.alpha:g}")
    if request.input_size is not None:
        parts.append(str(request.input_size))
    parts.append(request.quantization)
    if request.qat:
        parts.append("qat")
    return "-".join(parts)


def _check(request: ExportRequest) -> None:
    if request.quantization not in QUANTIZATIONS:
        raise BadArgument(f"unknown quantization `{request.quantization}`; use one of {', '.join(QUANTIZATIONS)}")
    unknown = [f for f in request.formats if f not in FORMATS]
    if unknown or not request.formats:
        raise BadArgument(f"unknown format {unknown}; use tflite, onnx or all")
    if request.calib_method not in CALIBRATION_METHODS:
        raise BadArgument(f"unknown --calib-method `{request.calib_method}`; use {', '.join(CALIBRATION_METHODS)}")
    if request.calib_method != "minmax" and request.formats == ("tflite",):
        raise BadArgument(
            f"TFLite's converter calibrates with min/max ranges only; "
            f"--calib-method {request.calib_method} applies to --format onnx"
        )
    check_int(request.calib_samples, "--calib-samples", minimum=1, maximum=MAX_CALIB_SAMPLES)
    check_int(request.parity_samples, "parity_samples", minimum=1, maximum=MAX_CALIB_SAMPLES)
    check_seed(request.seed)
    if request.preprocess not in ("auto", *PREPROCESS_MODES):
        raise BadArgument(f"unknown --preprocess `{request.preprocess}`; use auto or {', '.join(PREPROCESS_MODES)}")
    _check_io(request)
    _check_qat(request)
    _check_weights(request)
    if is_model_file(request.model):
        given = [
            flag
            for flag, value in (
                ("--input-size", request.input_size),
                ("--alpha", request.alpha),
                ("--classes", request.classes),
            )
            if value is not None
        ]
        if given:
            raise BadArgument(
                f"{' and '.join(given)} {'applies' if len(given) == 1 else 'apply'} to zoo "
                f"models; {request.model} is a saved model with its own"
            )
        if not Path(request.model).is_file():
            raise EdgecnnError(f"no such model file: {request.model}")
    else:
        from edgecnn.profiler import check_zoo_arguments

        # An unknown name fails here, with suggestions; then --input-size, --alpha, --classes.
        check_zoo_arguments(request.model, input_size=request.input_size, alpha=request.alpha, classes=request.classes)
    if request.qat:
        from edgecnn.training.data import open_labelled_source

        open_labelled_source(request.qat_dataset)  # a missing or unlabelled dataset fails here
    _check_out(Path(request.out))
    if not is_model_file(request.model):
        _check_memory(request)


MAX_CALIB_SAMPLES = 100_000  # far beyond what calibration gains from; each image is held as float32


IO_CHOICES = ("int8", "uint8", "int16", "float")


def _check_io(request: ExportRequest) -> None:
    """`--io` against the quantization and every format asked for, before anything converts."""
    if request.io is None:
        return
    if request.io not in IO_CHOICES:
        raise BadArgument(f"unknown --io `{request.io}`; use {', '.join(IO_CHOICES)}")
    if "onnx" in request.formats and request.io != "float":
        raise BadArgument(
            f"ONNX artifacts keep float inputs and outputs (QDQ); --io {request.io} applies to --format tflite only"
        )
    if "tflite" in request.formats:
        from converters import IO_TYPES  # no TensorFlow: checked before it loads

        allowed = IO_TYPES.get(request.quantization, ())
        if request.io not in allowed:
            raise BadArgument(f"--io {request.io} does not apply to {request.quantization}; use {' or '.join(allowed)}")


def _check_weights(request: ExportRequest) -> None:
    """`--weights`: auto, none or a weights file that exists (zoo models only)."""
    weights = request.weights
    if not isinstance(weights, (str, os.PathLike)) or not str(weights).strip():
        raise BadArgument(f"--weights must be auto, none or a weights file. Received {weights!r}")
    if str(weights) in ("auto", "none"):
        return
    if is_model_file(request.model):
        raise BadArgument(f"--weights applies to zoo models; {request.model} is a saved model with its own")
    if not Path(weights).is_file():
        raise EdgecnnError(f"weights file not found: {weights}")


def _check_out(out: Path) -> None:
    """`--out` is a folder we can create and write; nothing is created yet."""
    if out.exists() and not out.is_dir():
        raise BadArgument(f"--out {out} is a file; name a folder")
    existing = next((folder for folder in (out, *out.parents) if folder.exists()), Path("."))
    if not existing.is_dir():
        raise EdgecnnError(f"cannot create --out {out}: {existing} is a file")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise EdgecnnError(
            f"--out {out} is not writable"
            if existing == out
            else f"cannot create --out {out}: {existing} is not writable"
        )


def _check_memory(request: ExportRequest) -> None:
    """A zoo model too large for this machine is refused before it is built (an estimate)."""
    from edgecnn.models import get_model_info
    from edgecnn.profiler import check_zoo_memory

    info = get_model_info(request.model)
    size = request.input_size or info.default_input_shape[0]
    images = request.calib_samples + request.parity_samples
    image_bytes = 4 * size * size * info.default_input_shape[2]
    batch = max(8, 3 * request.qat_batch_size) if request.qat else 8  # QAT keeps activations for backprop
    check_zoo_memory(
        request.model,
        input_size=request.input_size,
        alpha=request.alpha,
        classes=request.classes,
        batch=batch,
        weight_copies=5 if request.qat else 3,
        extra_bytes=images * image_bytes,
        what="exporting it",
    )


def _check_qat(request: ExportRequest) -> None:
    """The --qat options: what they need and what they cannot go with."""
    if not request.qat:
        if request.qat_dataset is not None:
            raise BadArgument(
                "--dataset is the training data of --qat; pass --int8 --qat, or --calib for calibration images"
            )
        return
    if request.quantization != "int8":
        if request.quantization == "float32":
            raise BadArgument("--qat needs --int8: quantization-aware training makes a full-integer int8 model")
        raise BadArgument(f"--qat trains for full-integer int8 (--int8); it does not apply to --{request.quantization}")
    if "onnx" in request.formats:
        # tf2onnx turns the activations' FakeQuant ops into QuantizeLinear/DequantizeLinear but
        # folds the weights' (per-channel, narrow-range) FakeQuant into float32 constants.
        raise BadArgument(
            "--qat exports TFLite only: tf2onnx keeps the QAT weights as float32 "
            "(only activations get QuantizeLinear/DequantizeLinear), so the ONNX file "
            "would not be int8; use --format tflite"
        )
    if request.qat_dataset is None or not str(request.qat_dataset).strip():
        raise BadArgument(
            "--qat needs labelled training data: pass --dataset (fashion-mnist, a labelled image folder or an .npz)"
        )
    counts = {"--epochs": request.qat_epochs, "--qat-batch-size": request.qat_batch_size}
    if request.qat_limit is not None:
        counts["--qat-limit"] = request.qat_limit
    for option, value in counts.items():
        check_int(value, option, minimum=1)
    from edgecnn.errors import check_number

    check_number(request.qat_lr, "--qat-lr", above=0)


def _folder_name(request: ExportRequest, fmt: str) -> str:
    stem = artifact_stem(request)
    return stem if fmt == "tflite" else f"{stem}-onnx"


def _folder_names(request: ExportRequest) -> list[str]:
    return [_folder_name(request, fmt) for fmt in request.formats]
