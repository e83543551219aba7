"""The model registry: one row of facts per architecture, no TensorFlow needed.

timm registers entrypoints with a decorator on import; here each row names its
entrypoint as "module:function" instead, so names can be listed, checked and
suggested (and the runtime side can read per-model facts) without importing
TensorFlow. The model files themselves are plain Keras Applications code that
reads its own row (default and smallest input, fixed-size rule, ImageNet weights);
pipelines read rows too (auxiliary outputs, training defaults), never a model's name.
"""

from __future__ import annotations

import difflib
import importlib
from dataclasses import dataclass, field
from typing import Any, Callable

from edgecnn.errors import BadArgument


@dataclass(frozen=True)
class ModelInfo:
    """Per-model facts that every later stage reads instead of guessing."""

    name: str
    entrypoint: str  # "module:function", imported on first use
    default_input_shape: tuple[int, int, int]
    min_input_size: int
    # How raw pixels become model input (recorded in every manifest):
    #   "tf":    RGB scaled to [-1, 1]                (MobileNets, GoogLeNet)
    #   "caffe": BGR, ImageNet mean subtracted        (VGG, ResNet, AlexNet)
    #   "unit":  scaled to [0, 1]                     (LeNet-5)
    preprocess: str
    aliases: tuple[str, ...] = ()
    # The keras.applications function with the same layers, names and weights
    # (golden tests build both and compare), or None where Keras has none.
    keras_twin: str | None = None
    imagenet_weights: bool = False  # Keras publishes ImageNet weights for the twin
    paper: str = ""
    # Arguments beyond the Keras Applications ones (the entrypoint takes exactly these;
    # a test checks it): `--alpha` applies where "alpha" is one of them.
    extra_args: tuple[str, ...] = field(default=())
    # The classifier flattens a feature map, so `include_top=True` needs a fixed input size.
    fixed_input_size: bool = False
    # Training from scratch builds the model with these arguments (GoogLeNet's
    # `aux_logits=True`), as (name, value) pairs; they add `auxiliary_outputs`.
    train_kwargs: tuple[tuple[str, Any], ...] = ()
    # Output layers of auxiliary classifiers: trained with weight `auxiliary_loss_weight`
    # each, then dropped by `strip_auxiliary_outputs` (only `predictions` is exported).
    auxiliary_outputs: tuple[str, ...] = ()
    auxiliary_loss_weight: float = 0.0

    def __post_init__(self):
        if bool(self.train_kwargs) != bool(self.auxiliary_outputs):
            raise RuntimeError(f"{self.name}: train_kwargs and auxiliary_outputs go together")
        if self.auxiliary_outputs and not 0 < self.auxiliary_loss_weight <= 1:
            raise RuntimeError(f"{self.name}: auxiliary outputs need a loss weight in (0, 1]")

    @property
    def default_size(self) -> int:
        """The default input's height (= width): 224 for the ImageNet models, 32 for LeNet-5."""
        return self.default_input_shape[0]

    @property
    def training_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of `create_model` for training from scratch."""
        return dict(self.train_kwargs)

    def load_entrypoint(self) -> Callable:
        module_name, _, attr = self.entrypoint.partition(":")
        return getattr(importlib.import_module(module_name), attr)


_MODELS: dict[str, ModelInfo] = {}
_ALIASES: dict[str, str] = {}


def register(info: ModelInfo) -> ModelInfo:
    for key in (info.name, *info.aliases):
        if key in _MODELS or key in _ALIASES:
            raise RuntimeError(f"model name {key!r} is registered twice")
    _MODELS[info.name] = info
    for alias in info.aliases:
        _ALIASES[alias] = info.name
    return info


def _normalise(name: str) -> str:
    return name.strip().lower().replace("-", "_")


def get_model_info(name: str) -> ModelInfo:
    """The registry row for `name` or one of its aliases (case and '-'/'_' ignored)."""
    key = _normalise(name)
    key = _ALIASES.get(key, key)
    if key in _MODELS:
        return _MODELS[key]
    known = sorted([*_MODELS, *_ALIASES])
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.5)
    hint = f" Did you mean `{close[0]}`?" if close else ""
    raise BadArgument(f"Unknown model `{name}`.{hint} Available: {', '.join(list_models())}.")


def list_models() -> list[str]:
    """Canonical model names, in registry order."""
    return list(_MODELS)


def all_model_infos() -> list[ModelInfo]:
    return list(_MODELS.values())
