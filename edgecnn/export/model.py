"""The first stages of export: the Keras model it converts (a zoo model, weights auto, none or
a file, or a saved Keras file) as a `BuiltModel`, then the QAT stage (`--int8 --qat`) on it."""

from __future__ import annotations

import contextlib
import io
import socket
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from edgecnn.errors import BadArgument
from edgecnn.export.data import _calibration_source
from edgecnn.export.outfolder import _HeldWarnings
from edgecnn.export.request import ExportRequest, _check, _warn
from edgecnn.export.stages import Stages
from edgecnn.loading import is_model_file
from edgecnn.progress import Progress
from edgecnn.records import Optimization


def _load_model(request: ExportRequest, progress: Progress):
    """The Keras float model, and the facts the manifest records about it."""
    progress.start(f"building {request.model}")
    if is_model_file(request.model):
        from edgecnn.loading import load_keras_model

        model, facts = load_keras_model(request.model, preprocess=request.preprocess, trust=request.trust_model)
        if facts.get("preprocess_guessed"):
            _warn(
                request,
                progress,
                f"{request.model} records no preprocessing; assuming "
                f"`{facts['preprocess']}` (pass --preprocess to choose)",
            )
        return model, facts

    from edgecnn.models import create_model, get_model_info, strip_auxiliary_outputs
    from edgecnn.models._common import WeightsUnavailable

    info = get_model_info(request.model)
    channels = info.default_input_shape[-1]
    kwargs = dict(
        input_shape=(request.input_size, request.input_size, channels) if request.input_size else None,
        alpha=request.alpha,
        classes=request.classes,
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
    random_weights = None
    if request.weights == "auto" and weights_label == "random":
        # Plain random weights make a deep CNN's activations vanish (MobileNetV2's end near 1e-10):
        # its softmax is flat, parity measures nothing, and int16x8 ranges that small overflow
        # LiteRT's int32 activation bounds (the file does not load). BatchNorm statistics and the
        # classifier's scale set on shipped photos keep the weights random but the outputs varied;
        # the same images whatever --calib is, so every variant comes from the same weights.
        from edgecnn.training.random_weights import default_images, make_outputs_vary

        random_weights = make_outputs_vary(model, default_images(model, preprocess), spread=False)
    labels = None
    if weights_label == "imagenet":
        from calibration import open_source

        labels = open_source("default").class_names  # the shipped set carries ImageNet's 1000 names
    return model, {
        "name": info.name,
        "source": "zoo",
        "weights": weights_label,
        "preprocess": preprocess,
        "labels": labels,
        "random_weights": random_weights,
    }


@contextlib.contextmanager
def _download_timeout(seconds: float):
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(previous)


@dataclass(frozen=True)
class BuiltModel:
    """The model export converts, and what the manifest records of it: model -> optimize -> convert.

    `model` is the float Keras model: the parity reference, `params` and the input shape.
    `facts` are the manifest's facts of it (name, source, weights, preprocess, labels).
    `optimization` is the manifest's `optimization` record; an optimization stage (QAT) gives
    the model to convert (`optimized`) and its record (`qat`) through `after`. `stages` holds
    the seconds and peak RSS of the stages run so far (`build_model`'s `source` and `build`,
    then `qat`), `warnings` what they said, which export reports once it succeeds.
    """

    model: Any
    facts: dict
    optimization: Optimization = Optimization.NONE
    optimized: Any = None
    qat: dict | None = None
    stages: dict = field(default_factory=dict)
    warnings: tuple = ()
    started: float = 0.0  # time.perf_counter() when the build began: export_seconds count from it
    ready: float = 0.0  # time.perf_counter() when the last stage ended
    calibration_source: Any = field(default=None, repr=False, compare=False)  # --calib, opened by the build

    @property
    def converted(self):
        """The model the converters take: the optimized one when a stage made one."""
        return self.model if self.optimized is None else self.optimized

    @property
    def preprocess(self) -> str:
        return self.facts["preprocess"]

    def after(self, optimized, record: dict) -> BuiltModel:
        """This model after an optimization stage (`edgecnn.training.qat_stage`): `optimized` is
        converted, the float model stays the parity reference; `record` is the stage's (its
        `stage` names it, its `optimization` becomes the manifest's, its `warnings` are added)."""
        stage = record.get("stage", "optimize")
        if self.optimized is not None:
            raise BadArgument(f"{self.facts['name']} went through an optimization stage already; export takes one")
        stages = Stages()
        stages.records = dict(self.stages)
        stages.add(stage, time.perf_counter() - self.ready)  # from the model built to this stage's end
        return replace(
            self,
            optimized=optimized,
            qat=record if stage == "qat" else self.qat,
            optimization=Optimization.from_json(record.get("optimization")),
            stages=stages.records,
            warnings=(*self.warnings, *record.get("warnings", ())),
            ready=time.perf_counter(),
        )


def build_model(request: ExportRequest, progress: Progress | None = None) -> BuiltModel:
    """The first stage of export: `request` checked (BadArgument before any work, as `export`
    checks it), its `--calib` opened (a bad one fails before the model is built), its model
    built or loaded. Its warnings wait in the BuiltModel until `export(request, model=...)`."""
    started = time.perf_counter()
    _check(request)
    held = _HeldWarnings(progress or Progress())
    stages = Stages()
    built = _build(request, held, stages)
    return replace(built, warnings=tuple(held.held), started=started)


def _build(request: ExportRequest, progress: Progress, stages: Stages) -> BuiltModel:
    with stages("source"):
        source = _calibration_source(request, progress)  # cheap checks before the model is built
    with stages("build"):
        model, facts = _load_model(request, progress)
    optimization = Optimization.from_json(facts.get("optimization"))
    return BuiltModel(
        model=model,
        facts=facts,
        optimization=optimization,
        stages=dict(stages.records),
        ready=time.perf_counter(),
        calibration_source=source,
    )


def quantization_aware(built: BuiltModel, request: ExportRequest, progress: Progress | None = None) -> BuiltModel:
    """`built` after the QAT stage `request` asks for (`--int8 --qat --dataset ...`):
    `edgecnn.training.qat_stage`, fine-tuning with fake quantization; the float model keeps
    its weights. The scheme keeps the sparsity or the clusters its sidecar records (PQAT, CQAT)."""
    from edgecnn.training.qat import qat_stage

    return built.after(
        *qat_stage(
            built.model,
            name=request.model,
            preprocess=built.preprocess,
            optimization=built.optimization.to_json(),
            progress=progress,
            **request.qat_arguments(),
        )
    )
