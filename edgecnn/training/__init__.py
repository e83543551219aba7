"""Training and optimization: `train`, `prune`, `cluster`, and QAT for `export --qat`.

Each stage is a short public function that returns `(model, info)`: the Keras model
and a plain, JSON-ready record of what happened.

    from edgecnn.training import load_training_data, train_model, prune_model
    model, info = train_model("lenet5", "fashion-mnist", epochs=5, out="lenet5.keras")
    pruned, pinfo = prune_model("lenet5.keras", "fashion-mnist", sparsity=0.5, out="p.keras")

Importing this package is cheap; TensorFlow and the Model Optimization Toolkit load
when a stage runs.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "TrainingData": "edgecnn.training.data",
    "load_training_data": "edgecnn.training.data",
    "default_output": "edgecnn.training.data",
    "train_model": "edgecnn.training.train",
    "evaluate_model": "edgecnn.training.train",
    "save_model": "edgecnn.training.train",
    "prune_model": "edgecnn.training.prune",
    "weight_sparsity": "edgecnn.training.prune",
    "cluster_model": "edgecnn.training.cluster",
    "quantize_aware_finetune": "edgecnn.training.qat",
    "qat_stage": "edgecnn.training.qat",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
