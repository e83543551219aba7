"""Load a saved Keras model (.keras or .h5): through edgecnn's model gate, then Keras safe mode."""

from __future__ import annotations

import json
import os
from pathlib import Path

from edgecnn.errors import EdgecnnError
from edgecnn.records import Optimization, Sidecar

SIDECAR_SUFFIX = ".edgecnn.json"  # written by `edgecnn train`: dataset, preprocessing, labels


def is_model_file(name: str) -> bool:
    """A saved Keras model (a path) rather than a zoo name: the rule every command uses."""
    return str(name).endswith((".keras", ".h5")) or os.sep in str(name)


def sidecar_path(model_path) -> Path:
    path = Path(model_path)
    return path.with_name(path.stem + SIDECAR_SUFFIX)


def sidecar_for(model_path) -> Sidecar | None:
    """The sidecar `edgecnn train` wrote beside a model, as its record (None where there is
    none). It is as untrusted as the model: anything but a JSON object with the right field
    types (`edgecnn.records.Sidecar`) is one error naming the file."""
    path = sidecar_path(model_path)
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError, RecursionError) as exc:
        raise EdgecnnError(f"{path} is not a readable sidecar: {exc}") from None
    return Sidecar.from_json(data, str(path))


def read_sidecar(model_path) -> dict:
    """`sidecar_for(model_path)` as the JSON object it was read from ({} where there is none)."""
    sidecar = sidecar_for(model_path)
    return {} if sidecar is None else sidecar.data


def read_keras_model(path, *, trust: bool = False):
    """A saved model loaded uncompiled, after the model gate has read its config (TensorFlow is
    not even imported for a refused file); a missing, corrupt or unsafe file is one clear error.
    `trust` skips the allowlist (never the format checks): `--trust-model`, for files you made."""
    from edgecnn.model_gate import check_model_file

    path = Path(path)
    if not path.is_file():
        raise EdgecnnError(f"no such model file: {path}")
    check_model_file(path, trust=trust)

    from edgecnn._tf import import_keras, muted_stderr

    keras = import_keras()
    # The zoo's custom layers must be registered before safe mode will deserialize them.
    import edgecnn.models.alexnet  # noqa: F401  (LocalResponseNormalization)

    try:
        with muted_stderr():
            return keras.models.load_model(path, compile=False, safe_mode=not trust)
    except Exception as exc:  # Keras raises ValueError, OSError, zipfile errors... for bad files
        reason = " ".join(str(exc).split())[:200] or type(exc).__name__
        raise EdgecnnError(f"{path} is not a loadable Keras model: {reason}") from None


def load_keras_model(path, *, preprocess: str = "auto", trust: bool = False):
    """The model and the facts a manifest needs."""
    path = Path(path)
    model = read_keras_model(path, trust=trust)

    from edgecnn.models import MAIN_OUTPUT, strip_auxiliary_outputs

    if len(model.inputs) != 1:
        raise EdgecnnError(f"{path}: edgecnn exports single-input models; this one has {len(model.inputs)}")
    sidecar = sidecar_for(path) or Sidecar(schema=None)
    if len(model.outputs) > 1 and any(layer.name == MAIN_OUTPUT for layer in model.layers):
        # Saved with auxiliary heads (a GoogLeNet trained with them): the main classifier only.
        model = strip_auxiliary_outputs(model)
    guessed = preprocess == "auto" and sidecar.preprocess is None
    if preprocess == "auto":
        preprocess = sidecar.preprocess or "tf"
    return model, {
        "name": sidecar.model or path.stem,
        "source": str(path),
        "weights": f"file:{path.name}",
        "preprocess": preprocess,
        "preprocess_guessed": guessed,
        "labels": list(sidecar.class_names) if sidecar.class_names is not None else None,
        "optimization": (sidecar.optimization or Optimization.NONE).to_json(),
    }
