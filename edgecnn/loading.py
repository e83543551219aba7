"""Load a saved Keras model (.keras or .h5) for export, in Keras safe mode."""

from __future__ import annotations

import json
import os
from pathlib import Path

from edgecnn.errors import EdgecnnError

SIDECAR_SUFFIX = ".edgecnn.json"  # written by `edgecnn train`: dataset, preprocessing, labels


def is_model_file(name: str) -> bool:
    """A saved Keras model (a path) rather than a zoo name: the rule every command uses."""
    return str(name).endswith((".keras", ".h5")) or os.sep in str(name)


def sidecar_path(model_path) -> Path:
    path = Path(model_path)
    return path.with_name(path.stem + SIDECAR_SUFFIX)


def read_keras_model(path):
    """A saved model loaded in safe mode, uncompiled; a missing or corrupt file is one clear error."""
    from edgecnn._tf import import_keras, muted_stderr

    keras = import_keras()
    # The zoo's custom layers must be registered before safe mode will deserialize them.
    import edgecnn.models.alexnet  # noqa: F401  (LocalResponseNormalization)

    path = Path(path)
    if not path.is_file():
        raise EdgecnnError(f"no such model file: {path}")
    try:
        with muted_stderr():
            return keras.models.load_model(path, compile=False, safe_mode=True)
    except Exception as exc:  # Keras raises ValueError, OSError, zipfile errors... for bad files
        reason = " ".join(str(exc).split())[:200] or type(exc).__name__
        raise EdgecnnError(f"{path} is not a loadable Keras model: {reason}") from None


def load_keras_model(path, *, preprocess: str = "auto"):
    """The model and the facts a manifest needs."""
    from edgecnn._tf import import_keras

    keras = import_keras()
    path = Path(path)
    model = read_keras_model(path)
    if len(model.inputs) != 1:
        raise EdgecnnError(f"{path}: edgecnn exports single-input models; this one has {len(model.inputs)}")
    sidecar = {}
    if sidecar_path(path).is_file():
        sidecar = json.loads(sidecar_path(path).read_text())
    if len(model.outputs) > 1 and any(layer.name == "predictions" for layer in model.layers):
        # A GoogLeNet saved with its auxiliary heads: export the main classifier only.
        model = keras.Model(model.inputs, model.get_layer("predictions").output, name=model.name)
    guessed = preprocess == "auto" and "preprocess" not in sidecar
    if preprocess == "auto":
        preprocess = sidecar.get("preprocess", "tf")
    return model, {
        "name": sidecar.get("model", path.stem),
        "source": str(path),
        "weights": f"file:{path.name}",
        "preprocess": preprocess,
        "preprocess_guessed": guessed,
        "labels": sidecar.get("class_names"),
        "optimization": sidecar.get("optimization", {"sparsity": None, "clusters": None, "qat": False}),
    }
