"""`edgecnn train`: a zoo model (or a saved one) trained on labelled images, saved with a sidecar.

    model, info = train_model("lenet5", "fashion-mnist", epochs=10, out="lenet5.keras")

The public function is short: check the arguments, read the data at the model's
input size with the model's preprocessing, build (or load) the model, fit it with a
seeded shuffle and a validation pass each epoch, and save `NAME.keras` with its
sidecar `NAME.edgecnn.json` atomically. `prune`, `cluster` and QAT fine-tune with the
same `fit` and save with the same `save_model`.

- A zoo name builds a fresh model with as many classes as the dataset has
  (`--classes` to say otherwise); `--weights` is none, imagenet (a new head on the
  ImageNet features, where Keras publishes them) or a weights file of the model.
- A saved `.keras` model is fine-tuned; when the class count differs from its
  classifier's, the `predictions` layer is replaced by a new one (fresh weights).
- GoogLeNet trains with its two auxiliary classifiers (loss weight 0.3 each, as in
  the paper) and is saved without them.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from edgecnn.errors import BadArgument, EdgecnnError, check_int, check_number, check_seed
from edgecnn.loading import is_model_file
from edgecnn.models import strip_auxiliary_outputs
from edgecnn.records import SIDECAR_SCHEMA, Optimization, Sidecar
from edgecnn.training.data import Progress, TrainingData, load_training_data

AUX_LOSS_WEIGHT = 0.3  # Szegedy et al. 2014, section 5; a row's auxiliary_loss_weight wins
NO_OPTIMIZATION = Optimization.NONE.to_json()
LR_SCHEDULES = ("constant", "cosine")


# -- checks ----------------------------------------------------------------------------
def check_epochs(epochs) -> int:
    return check_int(epochs, "--epochs", minimum=1)


def check_training_arguments(
    *, epochs, batch_size, lr, seed=0, val_fraction=0.1, limit=None, val_limit=None, classes=None
) -> None:
    """The numeric options every training stage takes, checked before anything is read or built."""
    check_epochs(epochs)
    check_int(batch_size, "--batch-size", minimum=1)
    check_number(lr, "--lr", above=0)
    check_seed(seed)
    check_number(val_fraction, "--val-fraction", above=0, below=1)
    for option, value in (("--limit", limit), ("--val-limit", val_limit), ("--classes", classes)):
        if value is not None:
            check_int(value, option, minimum=1)


def check_dataset(dataset) -> None:
    """A missing or unlabelled dataset is refused before any model is loaded or built."""
    if isinstance(dataset, TrainingData):
        return
    from edgecnn.training.data import open_labelled_source

    open_labelled_source(dataset)


def check_zoo_size(spec: "ModelSpec", *, input_size=None, alpha=None, classes=None, batch_size: int = 64) -> None:
    """A zoo model too large to train here is refused before it is built (an estimate)."""
    if spec.model is not None or spec.path is not None:
        return
    from edgecnn.profiler import check_zoo_memory

    # Training holds activations for backprop and the weights four times (gradients, Adam's moments).
    check_zoo_memory(
        spec.name,
        input_size=input_size,
        alpha=alpha,
        classes=classes,
        batch=3 * batch_size,
        weight_copies=4,
        what="training it",
    )


def _error_reason(exc: BaseException) -> str:
    """The message of an error raised inside a traced Keras function, on one line.

    TensorFlow prefixes it with `in user code:` and the frames it went through (file paths of
    tf_keras); the reason is the last `SomeError: message` line, given without the class name.
    """
    text = str(exc)
    if "in user code:" in text:
        for line in reversed(text.splitlines()):
            name, sep, message = line.strip().partition(": ")
            if sep and name.isidentifier() and name.endswith(("Error", "Exception")) and message.strip():
                text = message
                break
    return " ".join(text.split())[:300] or type(exc).__name__


def check_out(out, *, create: bool = False) -> Path | None:
    """`--out` must name a `.keras` file in a folder we can create and write.

    Nothing is created unless `create` (when saving): a run that fails leaves no folder behind.
    """
    if out is None:
        return None
    out = Path(out)
    if out.suffix != ".keras":
        raise BadArgument(f"--out must name a .keras file. Received `{out}`")
    if out.is_dir():
        raise BadArgument(f"--out {out} is a folder; name a .keras file")
    existing = next((folder for folder in out.parents if folder.exists()), Path("."))
    if not existing.is_dir():
        raise EdgecnnError(f"cannot create the folder of --out {out}: {existing} is a file")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise EdgecnnError(
            f"the folder of --out {out} is not writable"
            if existing == out.parent
            else f"cannot create the folder of --out {out}: {existing} is not writable"
        )
    try:  # root passes os.access everywhere: a folder that takes no files (/proc) is found before training
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as exc:
        raise EdgecnnError(f"cannot write --out {out}: {existing} takes no files ({exc.strerror})") from None
    if create:
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise EdgecnnError(f"cannot create the folder of --out {out}: {exc.strerror}") from None
    return out


# -- the model -------------------------------------------------------------------------
class ModelSpec:
    """What a stage starts from: a zoo name to build, or a saved model (with its sidecar).

    Resolved in two steps so the data can be read (and checked) before a model is built:
    `ModelSpec.resolve(...)` knows the input shape and preprocessing; `build(classes)`
    makes the Keras model.
    """

    def __init__(self):
        self.name = ""  # zoo name recorded in sidecars
        self.path: Path | None = None
        self.input_shape: tuple[int, int, int] = (0, 0, 0)
        self.preprocess = "tf"
        self.sidecar: dict[str, Any] = {}
        self.model = None  # a loaded saved model
        self.output_classes: int | None = None
        self.kwargs: dict[str, Any] = {}
        # The registry row's training defaults (GoogLeNet's aux_logits=True, in `kwargs`
        # until `drop_training_kwargs`) and the loss weight of the heads they add.
        self.training_kwargs: dict[str, Any] = {}
        self.aux_loss_weight = AUX_LOSS_WEIGHT
        self.weights = "none"
        self.warnings: list[str] = []

    @classmethod
    def resolve(
        cls, model, *, input_size=None, alpha=None, weights=None, preprocess="auto", trust_model=False
    ) -> "ModelSpec":
        spec = cls()
        from edgecnn._tf import import_keras

        keras = import_keras()
        if isinstance(model, keras.Model):
            # The toolkit's wrappers modify the layers they wrap: work on a copy.
            spec.model, spec.name = copy_model(model), model.name
            spec.input_shape = tuple(int(d) for d in model.inputs[0].shape[1:])
            spec.preprocess = preprocess
            if preprocess == "auto":  # a zoo model keeps its name: use its preprocessing
                from edgecnn.models import get_model_info

                try:
                    spec.preprocess = get_model_info(model.name).preprocess
                except BadArgument:
                    spec.preprocess = "tf"
                    spec.warnings.append(
                        f"`{model.name}` is not a zoo model; assuming `tf` preprocessing (pass preprocess= to choose)"
                    )
            spec.output_classes = int(_main_output(model).shape[-1])
            return spec
        if is_model_file(model):
            given = [
                flag
                for flag, value in (("--input-size", input_size), ("--alpha", alpha), ("--weights", weights))
                if value not in (None, "none")
            ]
            if given:
                raise BadArgument(f"{' and '.join(given)} apply to zoo models; {model} is a saved model")
            from edgecnn.loading import load_keras_model, read_sidecar

            spec.path = Path(model)
            if not spec.path.is_file():
                raise EdgecnnError(f"no such model file: {model}")
            loaded, facts = load_keras_model(spec.path, preprocess=preprocess, trust=trust_model)
            spec.sidecar = read_sidecar(spec.path)
            if facts.get("preprocess_guessed"):
                spec.warnings.append(f"{model} records no preprocessing; assuming `{facts['preprocess']}`")
            if len(loaded.inputs) != 1:
                raise EdgecnnError(f"{model}: edgecnn trains single-input models; this one has {len(loaded.inputs)}")
            spec.model, spec.name, spec.preprocess = loaded, facts["name"], facts["preprocess"]
            spec.input_shape = tuple(int(d) for d in loaded.inputs[0].shape[1:])
            if None in spec.input_shape or 0 in spec.input_shape:
                raise EdgecnnError(
                    f"{model}: training needs a fixed input size; this model takes {loaded.inputs[0].shape}"
                )
            spec.output_classes = int(_main_output(loaded).shape[-1])
            spec.weights = f"file:{spec.path.name}"
            return spec

        from edgecnn.models import get_model_info
        from edgecnn.profiler import check_zoo_arguments

        info = get_model_info(model)
        spec.name = info.name
        channels = info.default_input_shape[-1]
        size = input_size if input_size is not None else None
        check_zoo_arguments(info.name, input_size=input_size, alpha=alpha)
        spec.input_shape = (size, size, channels) if size else tuple(info.default_input_shape)
        spec.preprocess = info.preprocess if preprocess == "auto" else preprocess
        if alpha is not None:
            spec.kwargs["alpha"] = alpha
        spec.training_kwargs = info.training_kwargs
        spec.kwargs.update(spec.training_kwargs)
        if info.auxiliary_outputs:
            spec.aux_loss_weight = info.auxiliary_loss_weight
        spec.weights = weights or "none"
        if spec.weights == "imagenet" and not info.imagenet_weights:
            raise BadArgument(
                f"Keras publishes no ImageNet weights for {info.name}; use --weights none or a weights file"
            )
        if spec.weights not in ("none", "imagenet") and not Path(spec.weights).is_file():
            raise EdgecnnError(f"weights file not found: {spec.weights}")
        return spec

    def build(self, classes: int, *, seed: int = 0):
        """The Keras model to train, with `classes` outputs (a new head on a saved model if needed)."""
        from edgecnn._tf import import_keras

        keras = import_keras()
        if self.model is not None:
            if self.output_classes != classes:
                self.warnings.append(
                    f"new classifier: the model has {self.output_classes} classes, the data {classes}; "
                    "`predictions` is replaced with fresh weights"
                )
                keras.utils.set_random_seed(seed)
                return replace_head(self.model, classes)
            return self.model
        from edgecnn.models import create_model

        keras.backend.clear_session()  # fixed layer names, same weights for the same seed
        keras.utils.set_random_seed(seed)
        if self.weights == "imagenet":
            base = create_model(
                self.name,
                input_shape=self.input_shape,
                include_top=False,
                weights="imagenet",
                pooling="avg",
                **{k: v for k, v in self.kwargs.items() if k not in self.training_kwargs},
            )
            out = keras.layers.Dense(classes, activation="softmax", name="predictions")(base.output)
            return keras.Model(base.inputs, out, name=base.name)
        weights = None if self.weights == "none" else self.weights
        return create_model(self.name, input_shape=self.input_shape, classes=classes, weights=weights, **self.kwargs)

    def drop_training_kwargs(self) -> None:
        """Build without the row's training defaults (pruning, clustering: no auxiliary heads)."""
        for key in self.training_kwargs:
            self.kwargs.pop(key, None)
        self.training_kwargs = {}

    @property
    def optimization(self) -> dict[str, Any]:
        return {**NO_OPTIMIZATION, **(self.sidecar.get("optimization") or {})}

    @property
    def source(self) -> str:
        return str(self.path) if self.path else self.name


def copy_model(model):
    """A functional model with the same graph and weights and none of its layers shared."""
    from edgecnn._tf import import_keras

    keras = import_keras()
    clone = keras.models.clone_model(model)
    clone.set_weights(model.get_weights())
    return clone


def _main_output(model):
    if len(model.outputs) == 1:
        return model.outputs[0]
    try:
        return model.get_layer("predictions").output
    except ValueError:
        return model.outputs[0]


def replace_head(model, classes: int):
    """`model` with a new `predictions` classifier of `classes` units (same activation)."""
    from edgecnn._tf import import_keras

    keras = import_keras()
    try:
        head = model.get_layer("predictions")
    except ValueError:
        head = model.layers[-1]
    if not isinstance(head, keras.layers.Dense):
        raise BadArgument(
            f"cannot give `{model.name}` a new classifier: it has no Dense layer named `predictions` "
            f"and its last layer `{head.name}` is a {type(head).__name__}"
        )
    out = keras.layers.Dense(classes, activation=head.activation, name="predictions")(head.input)
    return keras.Model(model.inputs, out, name=model.name)


def set_batchnorm_momentum(model, momentum: float | None) -> int:
    """Give every BatchNormalization layer `momentum` (None: leave them); returns how many.

    Keras Applications' MobileNets use 0.999: their moving statistics need thousands of
    steps to forget their initial values, so a model trained for an epoch or two
    predicts one class in inference mode. 0.99 (Keras's default) follows within ~100 steps.
    """
    from edgecnn._tf import import_keras

    keras = import_keras()
    layers = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    if momentum is None:
        return len(layers)
    if not 0.0 <= float(momentum) < 1.0:
        raise BadArgument(f"--bn-momentum must be in [0, 1). Received {momentum!r}")
    for layer in layers:
        layer.momentum = float(momentum)
    return len(layers)


def recalibrate_batchnorm(model, data: TrainingData, *, batches: int = 20, batch_size: int = 256) -> int:
    """Set every BatchNormalization's moving mean and variance to their average over
    `batches` training batches, computed with the final weights; returns how many layers.

    Moving averages start at mean 0 and variance 1 and forget that start at the rate
    `momentum ** steps`: after a short run the rest is still comparable to the small
    variances deep in a MobileNet, activations shrink layer after layer in inference mode,
    and the model predicts one class. Runs eagerly, so each call can set the momentum
    that makes the moving values a cumulative average (k-1)/k.
    """
    import numpy as np

    from calibration import normalize
    from edgecnn._tf import import_keras

    keras = import_keras()
    layers = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    if not layers or len(data.x_train) == 0:
        return 0
    saved = [layer.momentum for layer in layers]
    order = np.random.default_rng(data.seed).permutation(len(data.x_train))
    try:
        for k in range(1, batches + 1):
            index = order[(k - 1) * batch_size : k * batch_size]
            if len(index) == 0:
                break
            for layer in layers:
                layer.momentum = (k - 1) / k
            model(normalize(data.x_train[np.sort(index)], data.preprocess), training=True)
    finally:
        for layer, momentum in zip(layers, saved):
            layer.momentum = momentum
    return len(layers)


def batchnorm_recalibration(
    model, data: TrainingData, progress: Progress | None = None, *, batches: int = 20, batch_size: int = 256
) -> dict:
    """`recalibrate_batchnorm` when the model has BatchNormalization; the record for the sidecar."""
    from edgecnn._tf import import_keras

    keras = import_keras()
    if not any(isinstance(layer, keras.layers.BatchNormalization) for layer in model.layers):
        return {"recalibrated_layers": 0}
    (progress or Progress()).start("recalibrating batch-norm statistics")
    layers = recalibrate_batchnorm(model, data, batches=batches, batch_size=batch_size)
    return {
        "recalibrated_layers": layers,
        "batches": batches,
        "batch_size": batch_size,
        "note": "moving mean/variance set to their average over training batches, final weights",
    }


def softmax_output(model) -> bool:
    """Whether the main classifier ends in a softmax (else its outputs are logits).

    Looks through the wrappers of pruning, clustering and QAT (`layer.layer`); call it
    on the float model before wrapping when in doubt.
    """

    def inner(layer):
        while hasattr(layer, "layer"):
            layer = layer.layer
        return layer

    layers = [inner(layer) for layer in model.layers]
    head = next((layer for layer in layers if layer.name == "predictions"), layers[-1])
    activation = getattr(head, "activation", None)
    activation = getattr(activation, "activation", activation)  # QAT's QuantizeAwareActivation
    return getattr(activation, "__name__", "") == "softmax"


# -- fitting -----------------------------------------------------------------------------
class _ProgressCallback:
    """A Keras callback that moves a Progress bar per batch and reports each epoch."""

    def __new__(cls, progress: Progress, epochs: int, steps: int, label: str):
        from edgecnn._tf import import_keras

        keras = import_keras()

        class Callback(keras.callbacks.Callback):
            def __init__(self):
                super().__init__()
                self.seconds = []

            def on_epoch_begin(self, epoch, logs=None):
                self._started = time.perf_counter()
                progress.start(f"{label} epoch {epoch + 1}/{epochs}", total=steps)

            def on_train_batch_end(self, batch, logs=None):
                progress.advance(1)

            def on_epoch_end(self, epoch, logs=None):
                record = _epoch_record(epoch, logs or {})
                record["seconds"] = round(time.perf_counter() - self._started, 2)
                self.seconds.append(record["seconds"])
                report = getattr(progress, "epoch_end", None)  # export's Progress has none
                if report is not None:
                    report(epoch, epochs, record)

        return Callback()


def _epoch_record(epoch: int, logs: dict) -> dict:
    """One history row: loss, accuracy, val_loss, val_accuracy (main classifier's accuracy)."""

    def pick(*keys):
        for key in keys:
            if key in logs:
                return round(float(logs[key]), 6)
        return None

    return {
        "epoch": epoch + 1,
        "loss": pick("loss"),
        "accuracy": pick("accuracy", "predictions_accuracy"),
        "val_loss": pick("val_loss"),
        "val_accuracy": pick("val_accuracy", "val_predictions_accuracy"),
    }


def compile_for_training(
    model,
    *,
    lr: float,
    from_logits: bool | None = None,
    lr_schedule: str = "constant",
    total_steps: int | None = None,
    aux_loss_weight: float = AUX_LOSS_WEIGHT,
):
    """Adam and sparse cross-entropy; auxiliary outputs weigh `aux_loss_weight` each.

    Their weight is the registry row's `auxiliary_loss_weight` (GoogLeNet's 0.3); the
    default, the paper's 0.3, is for a multi-output model handed in without a row.

    `lr_schedule="cosine"` decays the learning rate to 0 over `total_steps` (cosine).
    """
    from edgecnn._tf import import_keras

    keras = import_keras()
    if lr_schedule not in LR_SCHEDULES:
        raise BadArgument(f"--lr-schedule must be {' or '.join(LR_SCHEDULES)}. Received `{lr_schedule}`")
    if from_logits is None:
        from_logits = not softmax_output(model)
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=from_logits)
    learning_rate = float(lr)
    if lr_schedule == "cosine" and total_steps:
        learning_rate = keras.optimizers.schedules.CosineDecay(float(lr), decay_steps=int(total_steps))
    optimizer = keras.optimizers.Adam(learning_rate=learning_rate)
    if len(model.outputs) > 1:
        names = model.output_names
        main = "predictions" if "predictions" in names else names[0]
        model.compile(
            optimizer=optimizer,
            loss={n: loss for n in names},
            loss_weights={n: 1.0 if n == main else aux_loss_weight for n in names},
            metrics={main: "accuracy"},
        )
    else:
        model.compile(optimizer=optimizer, loss=loss, metrics=["accuracy"])
    return model


def fit(
    model,
    data: TrainingData,
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    seed: int = 0,
    callbacks=(),
    progress: Progress | None = None,
    label: str = "training",
    from_logits: bool | None = None,
    lr_schedule: str = "constant",
    aux_loss_weight: float = AUX_LOSS_WEIGHT,
) -> list[dict]:
    """Compile and fit `model` on `data` (validating each epoch); returns the history rows.

    `from_logits`: whether the outputs are logits; None reads the classifier's activation.
    """
    from edgecnn._tf import import_keras

    keras = import_keras()
    progress = progress or Progress()
    steps = data.steps_per_epoch(batch_size)
    compile_for_training(
        model,
        lr=lr,
        from_logits=from_logits,
        lr_schedule=lr_schedule,
        total_steps=steps * epochs,
        aux_loss_weight=aux_loss_weight,
    )
    train = data.train_dataset(batch_size, seed=seed)
    val = data.val_dataset(max(batch_size, 256))
    if len(model.outputs) > 1:
        names = model.output_names
        train = train.map(lambda x, y: (x, {n: y for n in names}))
        val = val.map(lambda x, y: (x, {n: y for n in names}))
    keras.utils.set_random_seed(seed)
    callback = _ProgressCallback(progress, epochs, steps, label)
    try:
        history = model.fit(train, epochs=epochs, validation_data=val, verbose=0, callbacks=[callback, *callbacks])
    except (ValueError, TypeError) as exc:  # shapes that do not fit, mostly
        if os.environ.get("EDGECNN_DEBUG"):
            raise
        raise EdgecnnError(f"training failed: {_error_reason(exc)}") from None
    logs = history.history
    rows = []
    for epoch in range(len(logs.get("loss", []))):
        row = _epoch_record(epoch, {k: v[epoch] for k, v in logs.items()})
        if epoch < len(callback.seconds):
            row["seconds"] = callback.seconds[epoch]
        rows.append(row)
    return rows


def predict_classes(model, x, *, batch_size: int = 256):
    """Top-1 class of each row of the float32 batch `x` (main output only)."""
    import numpy as np

    out = model.predict(x, batch_size=batch_size, verbose=0)
    if isinstance(out, list):
        out = out[0]
    return np.asarray(out).argmax(-1)


def evaluate_model(model, data: TrainingData, *, split: str = "val", batch_size: int = 256) -> float:
    """Top-1 accuracy of `model` (inference mode) on the validation or training images."""
    import numpy as np

    if split not in ("val", "train"):
        raise BadArgument(f"split must be `val` or `train`. Received `{split}`")
    x_uint8, y = (data.x_val, data.y_val) if split == "val" else (data.x_train, data.y_train)
    if len(y) == 0:
        return float("nan")
    from calibration import normalize

    correct = 0
    for start in range(0, len(y), 4096):  # normalize in chunks: 60000 RGB images are 740 MB as float32
        x = normalize(x_uint8[start : start + 4096], data.preprocess)
        correct += int(np.sum(predict_classes(model, x, batch_size=batch_size) == y[start : start + 4096]))
    return correct / len(y)


# -- saving ------------------------------------------------------------------------------
def save_model(model, out, sidecar: dict) -> Path:
    """Write `out` (.keras) and `NAME.edgecnn.json` beside it: temporary files, then renames.

    A failure leaves neither file (nor any temporary) behind; an earlier model at `out`
    stays as it was until the new one is complete.
    """
    from edgecnn._tf import import_keras, muted_stderr
    from edgecnn.loading import sidecar_path

    keras = import_keras()
    out = Path(out)
    created = [folder for folder in out.parents if not folder.exists()]  # deepest first
    out = check_out(out, create=True)
    # A fresh functional view of the same layers is uncompiled: no optimizer state in the file.
    model = keras.Model(model.inputs, model.outputs, name=model.name)
    final_sidecar = sidecar_path(out)
    tmp_model = tmp_sidecar = None
    try:
        handle, tmp_model = tempfile.mkstemp(prefix=f".{out.stem}.", suffix=".keras", dir=out.parent)
        os.close(handle)
        handle, tmp_sidecar = tempfile.mkstemp(prefix=f".{out.stem}.", suffix=".json.tmp", dir=out.parent)
        os.close(handle)
        with muted_stderr():
            model.save(tmp_model, overwrite=True)
        # Through the record: what `edgecnn export` will read back, checked before anything is published.
        record = Sidecar.from_json(json.loads(json.dumps(sidecar, default=_json_default)), str(final_sidecar))
        Path(tmp_sidecar).write_text(json.dumps(record.data, indent=2) + "\n")
        os.chmod(tmp_model, 0o644)
        os.chmod(tmp_sidecar, 0o644)
        os.replace(tmp_model, out)
        os.replace(tmp_sidecar, final_sidecar)
    except BaseException:
        for tmp in (tmp_model, tmp_sidecar):
            if tmp is not None:
                Path(tmp).unlink(missing_ok=True)
        for folder in created:
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise
    return out


def _json_default(value):
    import numpy as np

    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def finetune_sidecar(
    spec: ModelSpec,
    data: TrainingData,
    model,
    *,
    stage: str,
    dense_params: int,
    epochs: int,
    batch_size: int,
    lr: float,
    seed: int,
    history: list,
    batchnorm,
    accuracy_before: float,
    accuracy_after: float,
) -> dict[str, Any]:
    """The sidecar of a fine-tuning stage (prune, cluster): the base keys and the run's record."""
    info = base_sidecar(spec, data, model)
    info["params"] = dense_params
    info.update(
        {
            "stage": stage,
            "epochs": epochs,
            "batch_size": batch_size,
            "lr": lr,
            "seed": seed,
            "history": history,
            "batchnorm": batchnorm,
            "train_accuracy": history[-1]["accuracy"] if history else None,
            "val_accuracy_before": round(accuracy_before, 6),
            "val_accuracy": round(accuracy_after, 6),
        }
    )
    return info


def base_sidecar(spec: ModelSpec, data: TrainingData, model) -> dict[str, Any]:
    """The keys every saved model's sidecar has (train, prune, cluster)."""
    from edgecnn.manifest import tool_versions

    return {
        "schema": SIDECAR_SCHEMA,
        "model": spec.name,
        "preprocess": data.preprocess,
        "input_shape": list(data.input_shape),
        "class_names": data.class_names,
        "num_classes": data.num_classes,
        "params": int(model.count_params()),
        "parent": spec.source,
        "dataset": data.source,
        "data": data.describe(),
        "optimization": dict(spec.optimization),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "versions": tool_versions(),
    }


# -- the stage -----------------------------------------------------------------------------
def train_model(
    model,
    dataset,
    *,
    epochs: int = 10,
    batch_size: int = 64,
    lr: float = 1e-3,
    lr_schedule: str = "constant",
    bn_momentum: float | None = 0.99,
    input_size: int | None = None,
    alpha: float | None = None,
    classes: int | None = None,
    weights: str | None = None,
    preprocess: str = "auto",
    out=None,
    seed: int = 0,
    val_fraction: float = 0.1,
    limit: int | None = None,
    val_limit: int | None = None,
    trust_model: bool = False,
    progress: Progress | None = None,
):
    """Train `model` (a zoo name, a saved .keras/.h5 path or a Keras model) on `dataset`.

    Returns `(model, info)`: the trained Keras model (GoogLeNet without its auxiliary
    heads) and the record that is also written as the sidecar when `out` is given
    (`info["path"]` is then the saved model).
    """
    started = time.perf_counter()
    progress = progress or Progress()
    check_training_arguments(
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        seed=seed,
        val_fraction=val_fraction,
        limit=limit,
        val_limit=val_limit,
        classes=classes,
    )
    if lr_schedule not in LR_SCHEDULES:
        raise BadArgument(f"--lr-schedule must be {' or '.join(LR_SCHEDULES)}. Received `{lr_schedule}`")
    if bn_momentum is not None:
        check_number(bn_momentum, "--bn-momentum", minimum=0, below=1)
    check_dataset(dataset)
    out = check_out(out)
    spec = ModelSpec.resolve(
        model, input_size=input_size, alpha=alpha, weights=weights, preprocess=preprocess, trust_model=trust_model
    )
    check_zoo_size(spec, input_size=input_size, alpha=alpha, classes=classes, batch_size=batch_size)
    data = load_training_data(
        dataset,
        input_shape=spec.input_shape,
        preprocess=spec.preprocess,
        num_classes=classes,
        val_fraction=val_fraction,
        limit=limit,
        val_limit=val_limit,
        seed=seed,
        progress=progress,
    )
    progress.start(f"building {spec.name}")
    keras_model = spec.build(data.num_classes, seed=seed)
    bn_layers = set_batchnorm_momentum(keras_model, bn_momentum)
    for message in [*spec.warnings, *data.warnings]:
        progress.warn(message)
    history = fit(
        keras_model,
        data,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        seed=seed,
        progress=progress,
        label="training",
        lr_schedule=lr_schedule,
        aux_loss_weight=spec.aux_loss_weight,
    )
    trained = strip_auxiliary_outputs(keras_model)
    batchnorm = {"momentum": bn_momentum if bn_layers else None, **batchnorm_recalibration(trained, data, progress)}
    progress.start("evaluating on the validation images")
    val_accuracy = evaluate_model(trained, data)
    info = base_sidecar(spec, data, trained)
    info.update(
        {
            "stage": "train",
            "weights": spec.weights,
            "epochs": epochs,
            "batch_size": batch_size,
            "lr": lr,
            "lr_schedule": lr_schedule,
            "batchnorm": batchnorm,
            "seed": seed,
            "auxiliary_heads": (
                f"trained with {len(keras_model.outputs) - 1} auxiliary classifiers "
                f"(loss weight {spec.aux_loss_weight} each), saved without them"
                if len(keras_model.outputs) > 1
                else None
            ),
            "history": history,
            "train_accuracy": history[-1]["accuracy"] if history else None,
            "train_accuracy_note": "mean over the last epoch's batches, in training mode",
            "val_accuracy": round(val_accuracy, 6),
            "seconds": round(time.perf_counter() - started, 2),
            "warnings": [*spec.warnings, *data.warnings],
        }
    )
    if out is not None:
        progress.start(f"saving {out}")
        info["path"] = str(save_model(trained, out, info))
    return trained, info
