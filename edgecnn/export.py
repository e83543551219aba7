"""`edgecnn export`: model -> (QAT) -> (calibration) -> convert -> artifact + manifest.json.

The public function is short: check the request, load the model, fine-tune it
quantization-aware when asked (`--int8 --qat`), build the calibration data, then for
each format convert, run the parity check in the artifact's own runtime, and publish
the artifact folder atomically.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import shutil
import socket
import sys
import tempfile
import time
import warnings
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from converters import CALIBRATION_METHODS, FORMATS, NEEDS_CALIBRATION, QUANTIZATIONS
from edgecnn.errors import BadArgument, EdgecnnError, check_int, check_seed
from edgecnn.loading import is_model_file
from edgecnn.manifest import SCHEMA, sha256_of, tool_versions, write_manifest
from edgecnn.progress import Progress  # noqa: F401  (re-exported: the protocol callers pass)

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


def qat_settings(qat: bool, *, dataset=None, epochs=None, lr=None, batch_size=None, limit=None) -> dict:
    """The ExportRequest fields of the QAT options given; any given without `qat` is refused.
    Options left out (None) keep ExportRequest's defaults."""
    given = {"--dataset": dataset, "--epochs": epochs, "--qat-lr": lr, "--qat-batch-size": batch_size,
             "--qat-limit": limit}
    named = [option for option, value in given.items() if value is not None]
    if named and not qat:
        raise BadArgument(f"{', '.join(named)} {'applies' if len(named) == 1 else 'apply'} to --qat "
                          "(quantization-aware training); pass --int8 --qat")
    fields = {"qat_dataset": dataset, "qat_epochs": epochs, "qat_lr": lr, "qat_batch_size": batch_size,
              "qat_limit": limit}
    return {name: value for name, value in fields.items() if value is not None}


def export(request: ExportRequest, progress: Progress | None = None) -> list[dict]:
    """Export `request.model` in each requested format; return the manifests written.

    Every option is checked before any work (`BadArgument`); the artifact folders are
    staged as `.NAME.*.partial` in `--out` and renamed into place together once every
    format has converted and passed its parity run, so a failure (or SIGINT/SIGTERM)
    leaves nothing behind, not even an `--out` folder it created. A lock per artifact
    folder makes a second export of the same artifact into the same `--out` refuse at
    once. Warnings reach `progress` only when the export succeeds (they are in the
    manifests either way); a failed export reports its error alone.
    """
    started = time.perf_counter()
    _check(request)
    shown = progress or Progress()
    progress = _HeldWarnings(shown)
    with _terminate_as_exit(), _OutFolder(request.out, _folder_names(request)) as out:
        manifests = _export(request, progress, started, out)
    progress.release()
    return manifests


def _export(request: ExportRequest, progress: "_HeldWarnings", started: float, out: "_OutFolder") -> list[dict]:
    if _process_per_format(request):
        _calibration_source(request, progress)  # a bad --calib fails before any process starts
        staged = [_export_in_child(request, fmt, request.formats[index:], progress, out)
                  for index, fmt in enumerate(request.formats)]
    else:
        staged = _export_formats(request, request.formats, progress, started, out)
    return out.publish(staged)


def _process_per_format(request: ExportRequest) -> bool:
    """Several formats convert each in a process of its own, which gives its memory back
    when it ends (TensorFlow keeps what it once allocated: in one process the ONNX
    conversion starts on top of what the TFLite one left). Not after QAT (one format),
    and not for small models (a zoo model at 64 px or less, a Keras file under 64 MB),
    whose conversions take little memory and for which starting a process (TensorFlow's
    import, the model built again) costs more than it saves.
    `EDGECNN_EXPORT_PROCESSES=one` (or `per-format`) decides for every export."""
    choice = os.environ.get("EDGECNN_EXPORT_PROCESSES", "auto")
    if len(request.formats) < 2 or request.qat or choice == "one":
        return False
    if choice == "per-format":
        return True
    if is_model_file(request.model):
        return Path(request.model).stat().st_size > 64 * 2**20
    from edgecnn.models import get_model_info

    return (request.input_size or get_model_info(request.model).default_input_shape[0]) > 64


def _export_formats(request: ExportRequest, formats, progress: Progress, started: float, out,
                    stages: "Stages | None" = None, memory_formats=None) -> list:
    """Build, calibrate and convert `formats` in this process; the staged folders.

    The memory check covers `memory_formats` (default `formats`): a process for the
    first of several formats refuses at once if a later one would not fit either."""
    stages = stages or Stages()
    with stages("source"):
        source = _calibration_source(request, progress)  # cheap checks before the model is built
    with stages("build"):
        model, facts = _load_model(request, progress)
    # With --qat the QAT model is converted; the float model stays the parity reference
    # (and gives `params`: the QAT model also holds its quantizers' min/max variables).
    converted, qat_info = model, None
    if request.qat:
        with stages("qat"):
            converted, qat_info = _quantization_aware(model, facts, request, progress)
    input_shape = tuple(int(d) for d in model.inputs[0].shape[1:])
    with stages("calibration_data"):
        calibration, parity_batch, held_out = _calibration_and_parity_data(
            request, source, facts["preprocess"], input_shape, progress)
    with stages("reference"):
        reference = _predict(model, parity_batch)
        qat_reference = _predict(converted, parity_batch) if request.qat else None
    _check_conversion_memory(request, converted, tuple(memory_formats or formats), calibration,
                             one_process=stages.process == "shared" and len(formats) > 1)
    prepare_seconds = time.perf_counter() - started  # shared by every format

    staged = []
    for fmt in formats:
        format_started = time.perf_counter()
        progress.start(f"converting to {fmt} ({request.quantization}{', QAT' if request.qat else ''})")
        with _quiet():
            artifact_bytes = _convert(converted, fmt, request, calibration, progress, stages)
        staged.append(_stage(request, fmt, artifact_bytes, model, facts, calibration,
                             (parity_batch, reference, held_out, qat_reference), qat_info,
                             prepare_seconds + (time.perf_counter() - format_started), progress, out,
                             stages))
    return staged


def peak_rss_bytes() -> int | None:
    """This process's peak resident memory so far (VmHWM), or None where unknown."""
    try:
        import resource
    except ImportError:  # Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak) if sys.platform == "darwin" else int(peak) * 1024


class Stages:
    """The wall seconds of each export stage and this process's peak RSS when it ended.

    The manifest keeps them as `export_stages`: the stages shared by every format
    (`build`, `calibration_data`, ...), then the format's own (`tflite.convert`,
    `onnx.tf2onnx`, `onnx.quantize`, `onnx.parity`, ...). `peak_rss_mb` is the high-water
    mark of the process since it started, so the stage where it rises is the one that
    needed the memory.
    """

    def __init__(self, process: str = "shared"):
        self.records: dict[str, dict] = {}
        self.process = process

    @contextlib.contextmanager
    def __call__(self, name: str):
        started = time.perf_counter()
        yield
        self.add(name, time.perf_counter() - started)

    def add(self, name: str, seconds: float, **extra) -> None:
        peak = peak_rss_bytes()
        self.records[name] = {"seconds": round(seconds, 2),
                              "peak_rss_mb": None if peak is None else round(peak / 2**20), **extra}

    def for_format(self, fmt: str) -> dict:
        """The shared stages and `fmt`'s, for its manifest."""
        formats = tuple(f"{f}." for f in FORMATS)
        return {"process": self.process,
                **{name: dict(record) for name, record in self.records.items()
                   if not name.startswith(formats) or name.startswith(f"{fmt}.")}}


def _check_conversion_memory(request: ExportRequest, model, formats, calibration, *, one_process: bool) -> None:
    """Refuse, in one line, a conversion whose estimated peak exceeds the memory available."""
    if os.environ.get("EDGECNN_MEMORY_CHECK", "1") == "0":
        return
    from converters.memory import check_export_memory

    check_export_memory(params=int(model.count_params()), quantization=request.quantization,
                        formats=tuple(formats), calib_method=request.calib_method,
                        calib_samples=len(calibration.arrays()),
                        activation_bytes=_activation_bytes(model),
                        current_rss=_current_rss_bytes(), one_process=one_process)


def _activation_bytes(model) -> int:
    """float32 bytes of every layer output of one image (what ONNX Runtime's histogram
    calibrators keep per calibration sample)."""
    total = 0
    for layer in model.layers:
        for node in getattr(layer, "_inbound_nodes", []):  # a shared layer has several
            for tensor in tf_nest_flatten(getattr(node, "outputs", None)):
                shape = getattr(tensor, "shape", None)
                if shape is not None and shape.rank is not None:
                    total += 4 * int(np.prod([d or 1 for d in shape[1:]], dtype=np.int64))
    return total


def tf_nest_flatten(structure) -> list:
    if structure is None:
        return []
    if isinstance(structure, (list, tuple)):
        return [item for part in structure for item in tf_nest_flatten(part)]
    if isinstance(structure, dict):
        return [item for part in structure.values() for item in tf_nest_flatten(part)]
    return [structure]


# -------------------------------------------------------------------- one process per format

_CHILD = "from edgecnn.export import _child_main; _child_main()"


def _export_in_child(request: ExportRequest, fmt: str, memory_formats, progress: Progress,
                     out: "_OutFolder") -> tuple[Path, Path, dict]:
    """`_export_formats(request, [fmt])` in a new Python process; its staged folder.

    The child builds the model again (same seed, same weights), converts, checks parity
    and stages the folder that this process made for it; it reports progress, warnings
    and the result as JSON lines on a pipe. Its stderr (the converters' C++ chatter) goes
    to a temporary file, whose last line explains a child that died.
    """
    import json
    import pickle
    import subprocess

    staging = out.staging(_folder_name(request, fmt))
    job = {"request": request, "format": fmt, "memory_formats": list(memory_formats),
           "staging": str(staging), "out": str(out.path), "launched": time.time()}
    result = None
    with tempfile.TemporaryFile() as errors:
        child = subprocess.Popen([sys.executable, "-c", _CHILD], stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, stderr=errors)
        try:
            child.stdin.write(pickle.dumps(job))
            child.stdin.close()
            for line in child.stdout:
                message = json.loads(line)
                kind = message.pop("kind")
                if kind == "start":
                    progress.start(message["label"], message.get("total"))
                elif kind == "advance":
                    progress.advance(message["steps"])
                elif kind == "warn":
                    _warn(request, progress, message["message"])
                elif kind == "epoch_end":
                    report = getattr(progress, "epoch_end", None)
                    if report is not None:
                        report(message["epoch"], message["epochs"], message["logs"])
                else:
                    result = {"kind": kind, **message}
            code = child.wait()
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
        errors.seek(0)
        last = next((line for line in reversed(errors.read().decode(errors="replace").splitlines())
                     if line.strip()), "")
    if result is not None and result["kind"] == "error":
        error = BadArgument if result["error"] == "BadArgument" else EdgecnnError
        raise error(result["message"])
    if result is None or code != 0:
        why = (f"was killed by signal {-code}" + (" (out of memory?)" if code == -9 else "")
               if code < 0 else f"exited with code {code}")
        raise EdgecnnError(f"the {fmt} conversion process {why}" + (f": {last.strip()[:300]}" if last else ""))
    return staging, Path(result["final"]), result["manifest"]


class _ChildOut:
    """The `_OutFolder` of a child: the parent made the staging folder and publishes it."""

    def __init__(self, path: str, staging: str):
        self.path, self._staging = Path(path), Path(staging)

    def staging(self, folder_name: str) -> Path:
        return self._staging


class _ChannelProgress(Progress):
    """A child's progress, as JSON lines to the parent."""

    def __init__(self, channel):
        self._channel = channel

    def send(self, **message) -> None:
        import json

        self._channel.write(json.dumps(message, default=str) + "\n")
        self._channel.flush()

    def start(self, label, total=None):
        self.send(kind="start", label=label, total=total)

    def advance(self, steps=1):
        self.send(kind="advance", steps=steps)

    def warn(self, message):
        self.send(kind="warn", message=message)

    def epoch_end(self, epoch, epochs, logs):
        self.send(kind="epoch_end", epoch=epoch, epochs=epochs, logs=logs)


def _child_main() -> None:
    """The child of `_export_in_child`: read the job on stdin, answer on stdout."""
    import pickle

    channel = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # what the converters print on stdout must not mix with the answers
    job = pickle.load(sys.stdin.buffer)
    progress = _ChannelProgress(channel)
    started = time.perf_counter() - max(0.0, time.time() - job["launched"])
    stages = Stages(process="per-format")
    stages.add("process_start", time.perf_counter() - started)
    try:
        (_, final, manifest), = _export_formats(job["request"], [job["format"]], progress, started,
                                                _ChildOut(job["out"], job["staging"]), stages=stages,
                                                memory_formats=job["memory_formats"])
        progress.send(kind="done", final=str(final), manifest=manifest)
    except EdgecnnError as exc:
        progress.send(kind="error", error=type(exc).__name__ if isinstance(exc, BadArgument) else "EdgecnnError",
                      message=str(exc))
    except Exception as exc:  # reported by the parent as a failed conversion
        reason = " ".join(str(exc).split())[:400] or type(exc).__name__
        progress.send(kind="error", error="EdgecnnError", message=f"{job['format']} export failed: {reason}")


def _current_rss_bytes() -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _predict(model, batch):
    outputs = model.predict(batch, verbose=0, batch_size=8)
    return outputs[0] if isinstance(outputs, list) else outputs


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
        raise BadArgument(f"TFLite's converter calibrates with min/max ranges only; "
                          f"--calib-method {request.calib_method} applies to --format onnx")
    check_int(request.calib_samples, "--calib-samples", minimum=1, maximum=MAX_CALIB_SAMPLES)
    check_int(request.parity_samples, "parity_samples", minimum=1, maximum=MAX_CALIB_SAMPLES)
    check_seed(request.seed)
    if request.preprocess not in ("auto", *PREPROCESS_MODES):
        raise BadArgument(f"unknown --preprocess `{request.preprocess}`; use auto or {', '.join(PREPROCESS_MODES)}")
    _check_io(request)
    _check_qat(request)
    _check_weights(request)
    if is_model_file(request.model):
        given = [flag for flag, value in (("--input-size", request.input_size), ("--alpha", request.alpha),
                                          ("--classes", request.classes)) if value is not None]
        if given:
            raise BadArgument(f"{' and '.join(given)} {'applies' if len(given) == 1 else 'apply'} to zoo "
                              f"models; {request.model} is a saved model with its own")
        if not Path(request.model).is_file():
            raise EdgecnnError(f"no such model file: {request.model}")
    else:
        from edgecnn.profiler import check_zoo_arguments

        # An unknown name fails here, with suggestions; then --input-size, --alpha, --classes.
        check_zoo_arguments(request.model, input_size=request.input_size, alpha=request.alpha,
                            classes=request.classes)
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
        raise BadArgument(f"ONNX artifacts keep float inputs and outputs (QDQ); --io {request.io} "
                          "applies to --format tflite only")
    if "tflite" in request.formats:
        from converters import IO_TYPES  # no TensorFlow: checked before it loads

        allowed = IO_TYPES.get(request.quantization, ())
        if request.io not in allowed:
            raise BadArgument(f"--io {request.io} does not apply to {request.quantization}; use "
                              f"{' or '.join(allowed)}")


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
        raise EdgecnnError(f"--out {out} is not writable" if existing == out
                           else f"cannot create --out {out}: {existing} is not writable")


def _check_memory(request: ExportRequest) -> None:
    """A zoo model too large for this machine is refused before it is built (an estimate)."""
    from edgecnn.models import get_model_info
    from edgecnn.profiler import check_zoo_memory

    info = get_model_info(request.model)
    size = request.input_size or info.default_input_shape[0]
    images = request.calib_samples + request.parity_samples
    image_bytes = 4 * size * size * info.default_input_shape[2]
    batch = max(8, 3 * request.qat_batch_size) if request.qat else 8  # QAT keeps activations for backprop
    check_zoo_memory(request.model, input_size=request.input_size, alpha=request.alpha,
                     classes=request.classes, batch=batch, weight_copies=5 if request.qat else 3,
                     extra_bytes=images * image_bytes, what="exporting it")


def _check_qat(request: ExportRequest) -> None:
    """The --qat options: what they need and what they cannot go with."""
    if not request.qat:
        if request.qat_dataset is not None:
            raise BadArgument("--dataset is the training data of --qat; pass --int8 --qat, or --calib "
                              "for calibration images")
        return
    if request.quantization != "int8":
        if request.quantization == "float32":
            raise BadArgument("--qat needs --int8: quantization-aware training makes a full-integer int8 model")
        raise BadArgument(f"--qat trains for full-integer int8 (--int8); it does not apply to "
                          f"--{request.quantization}")
    if "onnx" in request.formats:
        # tf2onnx turns the activations' FakeQuant ops into QuantizeLinear/DequantizeLinear but
        # folds the weights' (per-channel, narrow-range) FakeQuant into float32 constants.
        raise BadArgument("--qat exports TFLite only: tf2onnx keeps the QAT weights as float32 "
                          "(only activations get QuantizeLinear/DequantizeLinear), so the ONNX file "
                          "would not be int8; use --format tflite")
    if request.qat_dataset is None or not str(request.qat_dataset).strip():
        raise BadArgument("--qat needs labelled training data: pass --dataset (fashion-mnist, a labelled "
                          "image folder or an .npz)")
    counts = {"--epochs": request.qat_epochs, "--qat-batch-size": request.qat_batch_size}
    if request.qat_limit is not None:
        counts["--qat-limit"] = request.qat_limit
    for option, value in counts.items():
        check_int(value, option, minimum=1)
    from edgecnn.errors import check_number

    check_number(request.qat_lr, "--qat-lr", above=0)


def _load_model(request: ExportRequest, progress: Progress):
    """The Keras float model, and the facts the manifest records about it."""
    progress.start(f"building {request.model}")
    if is_model_file(request.model):
        from edgecnn.loading import load_keras_model

        model, facts = load_keras_model(request.model, preprocess=request.preprocess,
                                        trust=request.trust_model)
        if facts.get("preprocess_guessed"):
            _warn(request, progress, f"{request.model} records no preprocessing; assuming "
                  f"`{facts['preprocess']}` (pass --preprocess to choose)")
        return model, facts

    from edgecnn.models import create_model, get_model_info, strip_auxiliary_outputs
    from edgecnn.models._common import WeightsUnavailable

    info = get_model_info(request.model)
    channels = info.default_input_shape[-1]
    kwargs = dict(
        input_shape=(request.input_size, request.input_size, channels) if request.input_size else None,
        alpha=request.alpha, classes=request.classes,
    )
    from edgecnn._tf import import_keras

    keras = import_keras()
    # Same command, same bytes: reset Keras's name counters (TFLite keeps tensor names
    # such as `input_1`) and seed the random initialisers.
    keras.backend.clear_session()
    keras.utils.set_random_seed(request.seed)
    weights_label = "random"
    if request.weights == "none":
        model = create_model(info.name, weights=None, **kwargs)
    elif request.weights == "auto":
        model, reason = None, f"Keras publishes no ImageNet weights for {info.name}"
        if info.imagenet_weights:
            # Keras reports downloads ("Downloading data from URL", a progress bar) on stdout,
            # which belongs to --json; a failed download is said once, below, in short.
            chatter = io.StringIO()
            try:
                with _download_timeout(20), contextlib.redirect_stdout(chatter):
                    model = create_model(info.name, weights="imagenet", **kwargs)
                weights_label = "imagenet"
            except WeightsUnavailable as exc:
                reason = f"no ImageNet weights for {info.name} ({getattr(exc, 'reason', None) or 'offline'})"
            except BadArgument as exc:
                reason = f"no ImageNet weights: {exc}"
        if model is None:
            keras.backend.clear_session()  # as if the ImageNet attempt never happened
            keras.utils.set_random_seed(request.seed)
            # A bad argument fails here, before any warning about weights.
            model = create_model(info.name, weights=None, **kwargs)
            _warn(request, progress, f"{reason}; exporting random weights")
    else:
        model = create_model(info.name, weights=request.weights, **kwargs)
        weights_label = f"file:{Path(request.weights).name}"
    model = strip_auxiliary_outputs(model)  # a row's auxiliary heads (and a weights file's) stay out
    preprocess = info.preprocess if request.preprocess == "auto" else request.preprocess
    labels = None
    if weights_label == "imagenet":
        from calibration import open_source

        labels = open_source("default").class_names  # the shipped set carries ImageNet's 1000 names
    return model, {"name": info.name, "source": "zoo", "weights": weights_label,
                   "preprocess": preprocess, "labels": labels}


@contextlib.contextmanager
def _download_timeout(seconds: float):
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(previous)


class _QatProgress:
    """Training's Progress on top of export's: warnings also go into the manifest."""

    def __init__(self, request: ExportRequest, progress: Progress):
        self._request, self._progress = request, progress

    def start(self, label, total=None):
        self._progress.start(label, total)

    def advance(self, steps=1):
        self._progress.advance(steps)

    def warn(self, message):
        _warn(self._request, self._progress, message)

    def epoch_end(self, epoch, epochs, logs):
        report = getattr(self._progress, "epoch_end", None)
        if report is not None:
            report(epoch, epochs, logs)


def _quantization_aware(model, facts: dict, request: ExportRequest, progress: Progress):
    """Fine-tune `model` with fake quantization on `--dataset`: (the QAT model, its record).

    `model` itself keeps its float weights. The scheme keeps the sparsity or the clusters
    that the model's sidecar records (PQAT, CQAT).
    """
    from edgecnn.training._toolkit import check_layers
    from edgecnn.training.qat import qat_for_export

    if (facts.get("optimization") or {}).get("qat"):
        raise BadArgument(f"{request.model} is already quantization-aware (its sidecar says `qat: true`)")
    check_layers(model, "quantization")  # before the data is read
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        qat_model, info = qat_for_export(
            model, dataset=request.qat_dataset, epochs=request.qat_epochs, preprocess=facts["preprocess"],
            optimization=facts.get("optimization"), batch_size=request.qat_batch_size, lr=request.qat_lr,
            seed=request.seed, limit=request.qat_limit, progress=_QatProgress(request, progress))
    return qat_model, info


def _calibration_source(request: ExportRequest, progress: Progress):
    import calibration

    # With --qat, `--calib default` means the training data: parity images the model knows.
    spec = request.qat_dataset if request.qat and request.calib == "default" else request.calib
    source = calibration.open_source(spec, split="train")
    _check_image_memory(request, source)
    if getattr(source, "warning", None):
        _warn(request, progress, source.warning)
    return source


def _check_image_memory(request: ExportRequest, source) -> None:
    """The calibration and parity images are held as float32 at the model's input size: a
    large source (Fashion-MNIST's 60,000) at 224 px would not fit. Refused before building."""
    if is_model_file(request.model):
        return  # its input size is known once loaded
    from edgecnn.models import get_model_info
    from edgecnn.profiler import _gb, available_memory_bytes

    shape = get_model_info(request.model).default_input_shape
    size = request.input_size or shape[0]
    asked = request.calib_samples + request.parity_samples
    try:
        count = min(asked, len(source))
    except TypeError:  # a source without a length (random images) gives what is asked
        count = asked
    need = count * size * size * shape[2] * 4
    available = available_memory_bytes()
    if available is not None and need > available // 2:
        raise BadArgument(f"--calib-samples {request.calib_samples}: {count} images at {size}x{size}x{shape[2]} "
                          f"need {_gb(need)} as float32, more than half of the {_gb(available)} available; "
                          "ask for fewer")


def _calibration_and_parity_data(request: ExportRequest, source, preprocess: str, input_shape,
                                 progress: Progress):
    """The calibration data, and the images the parity check runs on.

    Parity images are held out from calibration when the source has enough: the next
    images of the same seeded order. Otherwise (the 100 shipped photos with the default
    100 calibration samples) parity reuses calibration images and says so.
    """
    import calibration as calib

    needs_calibration = request.quantization in NEEDS_CALIBRATION
    if needs_calibration:
        progress.start("reading calibration images", total=None)
    calib_count = request.calib_samples if needs_calibration else 0
    pool = calib.CalibrationData(source, input_shape=input_shape, preprocess=preprocess,
                                 samples=calib_count + request.parity_samples, seed=request.seed)
    if pool.info().get("warning"):  # e.g. images that did not decode, known once read
        _warn(request, progress, pool.info()["warning"])
    held_out = pool.arrays()[calib_count:]
    if not needs_calibration:
        return pool, held_out, True
    calibration = calib.CalibrationData(source, input_shape=input_shape, preprocess=preprocess,
                                        samples=calib_count, seed=request.seed)
    if len(held_out):
        return calibration, held_out, True
    return calibration, calibration.arrays()[: request.parity_samples], False


class _Counting:
    """Wrap a representative_dataset so the progress bar moves with calibration (and
    the seconds from its first image to its last are known)."""

    def __init__(self, generator_fn, progress: Progress, total: int):
        self._generator_fn, self._progress, self._total = generator_fn, progress, total
        self.seconds = 0.0

    def __call__(self):
        self._progress.start("calibrating", total=self._total)
        started = time.perf_counter()
        for sample in self._generator_fn():
            yield sample
            self._progress.advance()
        self.seconds += time.perf_counter() - started


def _convert(model, fmt: str, request: ExportRequest, calibration, progress: Progress,
             stages: "Stages | None" = None) -> bytes:
    stages = stages or Stages()
    needs_calibration = request.quantization in NEEDS_CALIBRATION
    count = len(calibration.arrays())
    if fmt == "tflite":
        from converters.tflite import keras_to_tflite

        dataset = _Counting(calibration.representative_dataset(), progress, count) if needs_calibration else None
        started = time.perf_counter()
        artifact = keras_to_tflite(model, quantization=request.quantization,
                                   representative_dataset=dataset, io=request.io)
        # TFLite calibrates inside its converter: its share is said apart.
        stages.add("tflite.convert", time.perf_counter() - started,
                   **({"calibration_seconds": round(dataset.seconds, 2)} if dataset else {}))
        return artifact
    from converters.onnx import INPUT_NAME, keras_to_onnx, quantize_onnx

    with stages("onnx.tf2onnx"):
        float_model = keras_to_onnx(model)
    if request.quantization == "float32":
        return float_model
    if needs_calibration:
        progress.start("calibrating (ONNX Runtime)", total=None)
    return quantize_onnx(float_model, quantization=request.quantization,
                         calibration_reader_factory=lambda: calibration.ort_reader(INPUT_NAME),
                         calib_method=request.calib_method,
                         stage=lambda name: stages(f"onnx.{name}"))


@contextlib.contextmanager
def _quiet():
    """Converters print to stderr from C++ and Python logging; the CLI promises quiet."""
    from edgecnn._tf import muted_stderr

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), muted_stderr():
            warnings.simplefilter("ignore")
            yield
    finally:
        root.setLevel(level)


def _parity(path: Path, parity_batch, reference, held_out: bool, qat_reference=None):
    """Run the artifact in its own runtime against the Keras float outputs.

    After QAT, also against the QAT Keras model (fake quantization), which the artifact
    should follow more closely. Returns the parity record and the session (its tensor
    facts go into the manifest)."""
    from edgecnn.runtime import open_session, output_spread, predict

    session = open_session(path)
    outputs = predict(session, parity_batch, batch_size=1).reshape(reference.shape)  # image by image
    spread = output_spread(reference)
    record = {
        "runtime": f"{session.runtime} {session.runtime_version}",
        "samples": int(len(parity_batch)),
        "max_abs_diff": float(np.max(np.abs(outputs - reference))),
        "top1_agreement": float(np.mean(outputs.argmax(-1) == reference.argmax(-1))),
        "held_out": held_out,  # false: the images were also calibration images
        # How much the float model's outputs vary: with random weights they can be so flat
        # that any variant "agrees"; then `informative` is false (edgecnn.runtime.output_spread).
        "reference_output_std": spread["mean_std_across_classes"],
        "reference_top1_classes": spread["distinct_top1"],
        "informative": spread["informative"],
    }
    if qat_reference is not None:
        qat_reference = qat_reference.reshape(outputs.shape)
        record["qat_model_max_abs_diff"] = float(np.max(np.abs(outputs - qat_reference)))
        record["qat_model_top1_agreement"] = float(np.mean(outputs.argmax(-1) == qat_reference.argmax(-1)))
    return record, session


def _folder_name(request: ExportRequest, fmt: str) -> str:
    stem = artifact_stem(request)
    return stem if fmt == "tflite" else f"{stem}-onnx"


def _folder_names(request: ExportRequest) -> list[str]:
    return [_folder_name(request, fmt) for fmt in request.formats]


def _stage(request, fmt, artifact_bytes, model, facts, calibration, parity_data, qat_info,
           export_seconds, progress, out: "_OutFolder", stages: "Stages | None" = None) -> tuple[Path, Path, dict]:
    """Write artifact + manifest into a temporary folder in --out and check it there.

    Returns (staging folder, final folder, manifest); `_OutFolder.publish` renames them.
    `model` is the float Keras model (params, input shape); `qat_info` the QAT record or None."""
    stem = artifact_stem(request)
    folder_name = _folder_name(request, fmt)
    final = out.path / folder_name
    staging = out.staging(folder_name)
    try:
        artifact = staging / f"{stem}.{fmt}"
        artifact.write_bytes(artifact_bytes)
        progress.start(f"checking {artifact.name} against the Keras model")
        stages = stages or Stages()
        with stages(f"{fmt}.parity"):
            parity, session = _parity(artifact, *parity_data)
        params = int(model.count_params())
        from edgecnn.runtime import graph_facts

        manifest = {
            "schema": SCHEMA,
            "model": facts["name"],
            "source": facts["source"],
            "options": _options(request),
            "format": fmt,
            "quantization": request.quantization,
            "optimization": qat_info["optimization"] if qat_info else
            facts.get("optimization", {"sparsity": None, "clusters": None, "qat": False}),
            "qat": _qat_record(qat_info),
            "weights": facts["weights"],
            "params": params,
            "artifact": artifact.name,
            "bytes": artifact.stat().st_size,
            "float32_weight_bytes": 4 * params,
            "sha256": sha256_of(artifact),
            "inputs": [t.to_dict() for t in session.inputs],
            "outputs": [t.to_dict() for t in session.outputs],
            "graph": graph_facts(artifact),  # op census, integer-only (edgecnn.runtime.graph_facts)
            "preprocess": {"mode": facts["preprocess"], "input_shape": list(model.inputs[0].shape[1:]),
                           "crop_fraction": calibration.info().get("crop_fraction"),
                           "color": "bgr" if facts["preprocess"] == "caffe" else
                           ("gray" if model.inputs[0].shape[-1] == 1 else "rgb")},
            "labels": facts.get("labels"),
            "calibration": _calibration_record(request, calibration),
            "calibration_method": _calibration_method(request, fmt),
            "quantization_settings": _quantization_settings(request, fmt),
            "parity": parity,
            "export_seconds": round(export_seconds, 2),  # shared preparation + this format
            "export_stages": stages.for_format(fmt),  # seconds and peak RSS of each stage
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "versions": tool_versions(),
            "warnings": list(request.warnings),
        }
        write_manifest(staging, manifest)
        os.chmod(staging, 0o755)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    manifest["path"] = str(final / artifact.name)
    return staging, final, manifest


# -------------------------------------------------------------------- publishing, locks, signals

LOCK_SUFFIX = ".lock"
PARTIAL_SUFFIX = ".partial"


class ExportBusy(EdgecnnError):
    """Another live export is writing the same artifact folder into the same --out (exit code 1)."""


def _acquire_lock(path: Path) -> int | None:
    """An exclusive flock on `path` (created if needed); None if a live process holds it.

    The lock file is removed on release; a lock taken on a file that was removed (or
    replaced) meanwhile is dropped and taken again, so two holders never coexist.
    """
    import fcntl

    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        try:
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return fd
        os.close(fd)


def _release_lock(path: Path, fd: int) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)  # still held: nobody else can have it open and locked
    os.close(fd)


def _lock_holder(path: Path) -> str:
    with contextlib.suppress(OSError, ValueError):
        pid = int(path.read_text().strip() or 0)
        if pid:
            return f" (pid {pid})"
    return ""


class _OutFolder:
    """`--out` for one export: created if missing (and removed again if the export fails),
    one lock per artifact folder, stale `.partial` folders of dead exports swept, staged
    folders published together or not at all."""

    def __init__(self, path, folder_names: list[str]):
        self.path = Path(path)
        self._names = list(dict.fromkeys(folder_names))
        self._created: list[Path] = []
        self._locks: list[tuple[Path, int]] = []
        self._staged: list[Path] = []

    def __enter__(self) -> "_OutFolder":
        missing = []
        for folder in (self.path, *self.path.parents):
            if folder.exists():
                break
            missing.append(folder)
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise EdgecnnError(f"cannot create --out {self.path}: {exc.strerror}") from None
        self._created = missing  # deepest first
        try:
            for name in self._names:
                lock = self.path / f".{name}{LOCK_SUFFIX}"
                fd = _acquire_lock(lock)
                if fd is None:
                    raise ExportBusy(f"another export{_lock_holder(lock)} is writing {name} into "
                                     f"{self.path}; wait for it to finish or choose another --out")
                os.ftruncate(fd, 0)
                os.write(fd, str(os.getpid()).encode())
                self._locks.append((lock, fd))
            self._sweep_stale()
        except BaseException:
            self._close(failed=True)
            raise
        return self

    def _sweep_stale(self) -> None:
        """Remove `.NAME.*.partial` folders whose export is gone (no one holds NAME's lock)."""
        held = {name for name in self._names}
        for entry in self.path.iterdir():
            if not (entry.name.startswith(".") and entry.name.endswith(PARTIAL_SUFFIX) and entry.is_dir()):
                continue
            name = entry.name[1:-len(PARTIAL_SUFFIX)].rpartition(".")[0]
            if not name:
                continue
            if name in held:
                shutil.rmtree(entry, ignore_errors=True)
                continue
            lock = self.path / f".{name}{LOCK_SUFFIX}"
            fd = _acquire_lock(lock)
            if fd is None:
                continue  # a live export of NAME owns it
            try:
                shutil.rmtree(entry, ignore_errors=True)
            finally:
                _release_lock(lock, fd)

    def staging(self, folder_name: str) -> Path:
        staging = Path(tempfile.mkdtemp(prefix=f".{folder_name}.", suffix=PARTIAL_SUFFIX, dir=self.path))
        self._staged.append(staging)
        return staging

    def publish(self, staged: list[tuple[Path, Path, dict]]) -> list[dict]:
        """Rename every staged folder into place (an earlier folder of the same name is replaced)."""
        for staging, final, _ in staged:
            if final.exists():
                old = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=PARTIAL_SUFFIX, dir=self.path))
                self._staged.append(old)
                os.replace(final, old / final.name)
            os.replace(staging, final)
        return [manifest for _, _, manifest in staged]

    def __exit__(self, exc_type, exc, tb) -> None:
        self._close(failed=exc_type is not None)

    def _close(self, *, failed: bool) -> None:
        for folder in self._staged:
            shutil.rmtree(folder, ignore_errors=True)
        for lock, fd in reversed(self._locks):
            _release_lock(lock, fd)
        self._locks = []
        if failed:
            for folder in self._created:  # deepest first; only if nothing else arrived meanwhile
                with contextlib.suppress(OSError):
                    folder.rmdir()


@contextlib.contextmanager
def _terminate_as_exit():
    """SIGTERM becomes SystemExit(143) in the main thread, so cleanups run as for Ctrl-C."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def _terminated(signum, frame):
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, _terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class _HeldWarnings:
    """A Progress whose warnings wait until `release()`: a failed export shows its error alone."""

    def __init__(self, progress: Progress):
        self._progress = progress
        self._held: list[str] = []

    def start(self, label, total=None):
        self._progress.start(label, total)

    def advance(self, steps=1):
        self._progress.advance(steps)

    def warn(self, message):
        self._held.append(message)

    def epoch_end(self, epoch, epochs, logs):
        report = getattr(self._progress, "epoch_end", None)
        if report is not None:
            report(epoch, epochs, logs)

    def release(self):
        held, self._held = self._held, []
        for message in held:
            self._progress.warn(message)


def _calibration_record(request: ExportRequest, calibration) -> dict | None:
    if request.quantization not in NEEDS_CALIBRATION:
        return None
    record = calibration.info()
    if request.qat:
        # Checked: the converter gives the same bytes whatever these images are (even noise).
        record = {**record, "ranges": "quantization-aware training",
                  "note": "the int8 ranges are the ones learned in QAT (the model's FakeQuant "
                          "min/max); TFLiteConverter requires a representative dataset for int8 "
                          "ops and io, and these images do not change the artifact"}
    return record


def _calibration_method(request: ExportRequest, fmt: str) -> str | None:
    if request.quantization not in NEEDS_CALIBRATION:
        return None
    if request.qat:
        return "qat"
    return "minmax" if fmt == "tflite" else request.calib_method


def _quantization_settings(request: ExportRequest, fmt: str) -> dict | None:
    """ONNX Runtime's static quantization options as passed (7-bit weights for int8)."""
    if fmt != "onnx" or request.quantization not in NEEDS_CALIBRATION:
        return None
    from converters.onnx import STATIC_SETTINGS

    return dict(STATIC_SETTINGS[request.quantization])


def _qat_record(info: dict | None) -> dict | None:
    """The QAT stage as the manifest keeps it (its warnings are the manifest's own)."""
    if info is None:
        return None
    return {key: value for key, value in info.items() if key not in ("optimization", "stage", "warnings")}


def _options(request: ExportRequest) -> dict:
    options = asdict(request)
    options.pop("warnings")
    options["out"] = str(request.out)
    options["formats"] = list(request.formats)
    return options
