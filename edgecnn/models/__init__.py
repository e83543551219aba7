"""The model zoo: `create_model(name, **kwargs)` and `list_models()`.

    from edgecnn.models import create_model
    model = create_model("mobilenet_v2", input_shape=(96, 96, 3), alpha=0.35, classes=10)

Importing this package is cheap; TensorFlow loads when a model is built.
"""

from __future__ import annotations

import inspect

from edgecnn.errors import BadArgument
from edgecnn.models import _catalog  # noqa: F401  (fills the registry)
from edgecnn.models._registry import (
    ModelInfo,
    all_model_infos,
    get_model_info,
    list_models,
)

# `classifier_activation=None` means logits (Keras Applications), not "use the default".
_NONE_IS_A_VALUE = frozenset({"classifier_activation"})

__all__ = [
    "MAIN_OUTPUT",
    "ModelInfo",
    "all_model_infos",
    "create_model",
    "get_model_info",
    "list_models",
    "strip_auxiliary_outputs",
]

# Every zoo classifier's output layer (Keras Applications' name); auxiliary heads have others.
MAIN_OUTPUT = "predictions"


def create_model(name: str, **kwargs):
    """Build a zoo model by name or alias.

    Keyword arguments are the Keras Applications ones (`input_shape`, `include_top`,
    `weights`, `pooling`, `classes`, `classifier_activation`, and `alpha` where the
    architecture has one). `None` values are dropped so each model keeps its own
    defaults (except `classifier_activation=None`, which asks for logits). Argument
    errors raise `BadArgument` (a ValueError) with one clear line.
    """
    info = get_model_info(name)
    kwargs = {key: value for key, value in kwargs.items() if value is not None or key in _NONE_IS_A_VALUE}
    from edgecnn._tf import import_keras

    import_keras()  # quiet TensorFlow before the model module imports it
    factory = info.load_entrypoint()
    accepted = inspect.signature(factory).parameters
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown:
        raise BadArgument(
            f"`{info.name}` does not take {', '.join(f'`{k}`' for k in unknown)}. It takes: {', '.join(accepted)}."
        )
    try:
        return factory(**kwargs)
    except BadArgument:
        raise
    except ValueError as exc:
        raise BadArgument(str(exc)) from None


def strip_auxiliary_outputs(model):
    """`model` with only its main classifier: the `predictions` output, auxiliary heads dropped.

    The one place that sheds auxiliary classifiers (a registry row's `auxiliary_outputs`,
    such as GoogLeNet's, or those of a saved multi-output model) before export,
    inference, pruning or QAT. The result shares the layers (and so the weights) of
    `model`; a model with a single output is returned as it is. A multi-output model
    without a `predictions` layer raises `BadArgument`.
    """
    if len(model.outputs) == 1:
        return model
    names = [layer.name for layer in model.layers]
    if MAIN_OUTPUT not in names:
        raise BadArgument(
            f"`{model.name}` has {len(model.outputs)} outputs "
            f"({', '.join(model.output_names)}) and no `{MAIN_OUTPUT}` layer to keep"
        )
    from edgecnn._tf import import_keras

    keras = import_keras()
    return keras.Model(model.inputs, model.get_layer(MAIN_OUTPUT).output, name=model.name)
