"""The Keras model export converts: a zoo model (weights auto, none or a file) or a saved
Keras file, and its quantization-aware fine-tuning (`--int8 --qat`)."""

from __future__ import annotations

import contextlib
import io
import socket
import warnings
from pathlib import Path

from edgecnn.errors import BadArgument
from edgecnn.export.request import ExportRequest, _warn
from edgecnn.loading import is_model_file
from edgecnn.progress import Progress


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
