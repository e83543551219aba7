"""Argument checks, inputs, heads and weight loading shared by the model files.

Messages follow Keras Applications: say what was received.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from edgecnn._tf import import_keras
from edgecnn.errors import EdgecnnError

keras = import_keras()
layers = keras.layers


class WeightsError(EdgecnnError):
    """A weights file that is missing or does not fit the model (exit code 1)."""


class WeightsUnavailable(WeightsError):
    """ImageNet weights neither cached nor downloadable (offline, or EDGECNN_OFFLINE=1).

    `reason` is the short why, for a one-line warning ("offline", "EDGECNN_OFFLINE is set").
    """

    def __init__(self, message: str, reason: str = "offline"):
        super().__init__(message)
        self.reason = reason


def check_arguments(*, model_name, weights, include_top, classes, pooling, imagenet_weights, classifier_activation):
    """Validate the Keras Applications arguments every zoo model takes."""
    if weights is not None and weights != "imagenet" and not isinstance(weights, (str, os.PathLike)):
        raise ValueError(
            "The `weights` argument should be either `None` (random initialization), "
            f"`imagenet` or the path to a weights file. Received `weights={weights!r}`"
        )
    if weights == "imagenet" and not imagenet_weights:
        raise ValueError(
            f"No ImageNet weights are published for `{model_name}`; use `weights=None` "
            f"or the path to a weights file. Received `weights='imagenet'`"
        )
    if weights not in (None, "imagenet") and not os.path.exists(weights):
        raise WeightsError(f"weights file not found: {weights}")
    if not isinstance(classes, int) or isinstance(classes, bool) or classes < 1:
        raise ValueError(f"`classes` must be a positive integer. Received `classes={classes!r}`")
    if weights == "imagenet" and include_top and classes != 1000:
        raise ValueError(
            f"With `weights='imagenet'` and `include_top=True`, `classes` must be 1000. Received `classes={classes}`"
        )
    if pooling not in (None, "avg", "max"):
        raise ValueError(f"`pooling` must be None, 'avg' or 'max'. Received `pooling={pooling!r}`")
    if weights == "imagenet" and include_top and classifier_activation not in (None, "softmax"):
        raise ValueError(
            "With ImageNet weights, `classifier_activation` must be `None` or 'softmax'. "
            f"Received `classifier_activation={classifier_activation!r}`"
        )


def model_row(name):
    """The registry row of `name` (see `_catalog`): a model file reads its own facts from it."""
    from edgecnn.models import get_model_info

    return get_model_info(name)


def resolve_row_input_shape(row, input_shape, *, include_top, weights=None, require_default=False):
    """`resolve_input_shape` with the row's default and smallest input, and its fixed-size rule."""
    input_shape = resolve_input_shape(
        input_shape,
        model_name=row.name,
        default_size=row.default_size,
        min_size=row.min_input_size,
        default_channels=row.default_input_shape[2],
        weights=weights,
        require_default=require_default,
    )
    if row.fixed_input_size:
        require_fixed_size(input_shape, model_name=row.name, include_top=include_top)
    return input_shape


def require_fixed_size(input_shape, *, model_name, include_top):
    """A classifier that flattens the feature map needs the spatial size known when it is built."""
    if include_top and None in input_shape[:2]:
        raise ValueError(
            f"`{model_name}` with `include_top=True` needs a fixed input size (its classifier "
            f"flattens the feature map). Received `input_shape={input_shape}`"
        )


def resolve_input_shape(
    input_shape, *, model_name, default_size, min_size, default_channels=3, weights=None, require_default=False
):
    """The (height, width, channels) to build, checked against the architecture."""
    if input_shape is None:
        return (default_size, default_size, default_channels)
    input_shape = tuple(input_shape)
    if len(input_shape) != 3 or not all(d is None or (isinstance(d, int) and d > 0) for d in input_shape):
        raise ValueError(
            "`input_shape` must be three positive integers (height, width, channels). "
            f"Received `input_shape={input_shape}`"
        )
    height, width, channels = input_shape
    if weights == "imagenet" and channels != 3:
        raise ValueError(f"ImageNet weights need 3 input channels. Received `input_shape={input_shape}`")
    if require_default and (height, width) != (default_size, default_size):
        raise ValueError(
            f"`{model_name}` with `include_top=True` and ImageNet weights needs "
            f"{default_size}x{default_size} inputs. Received `input_shape={input_shape}`"
        )
    if (height is not None and height < min_size) or (width is not None and width < min_size):
        raise ValueError(
            f"`{model_name}` needs inputs of at least {min_size}x{min_size}. Received `input_shape={input_shape}`"
        )
    return input_shape


def model_input(input_shape, input_tensor=None):
    """The Input layer, or a wrapper around a given Keras tensor (Keras Applications style)."""
    if input_tensor is None:
        return layers.Input(shape=input_shape)
    if not keras.backend.is_keras_tensor(input_tensor):
        return layers.Input(tensor=input_tensor, shape=input_shape)
    return input_tensor


def model_inputs_of(img_input, input_tensor=None):
    """What `keras.Model(inputs=...)` takes: the source of `input_tensor` if one was given."""
    if input_tensor is not None:
        return keras.utils.get_source_inputs(input_tensor)
    return img_input


def global_pool(x, pooling):
    """The `pooling` option of `include_top=False`.

    Named as Keras Applications' unnamed layers are in a fresh session, so the names
    stay fixed however many models were built before.
    """
    if pooling == "avg":
        return layers.GlobalAveragePooling2D(name="global_average_pooling2d")(x)
    if pooling == "max":
        return layers.GlobalMaxPooling2D(name="global_max_pooling2d")(x)
    return x


def input_shape_of(input_shape, input_tensor):
    """`input_shape`, or the shape of `input_tensor` when only the tensor is given."""
    if input_tensor is None:
        return input_shape
    tensor_shape = tuple(input_tensor.shape)[1:]
    if input_shape is not None and (
        len(tuple(input_shape)) != len(tensor_shape)
        or any(a is not None and b is not None and a != b for a, b in zip(input_shape, tensor_shape))
    ):
        raise ValueError(
            "`input_shape` must match the shape of `input_tensor`. Received "
            f"`input_shape={tuple(input_shape)}`, `input_tensor.shape={tuple(input_tensor.shape)}`"
        )
    return tensor_shape


def load_weights(model, weights, *, imagenet_url=None, imagenet_file=None, file_hash=None):
    """Load `weights` ('imagenet' or a file path) into `model`; None leaves it random.

    ImageNet files come from Keras's own download and cache (~/.keras/models):
    only users with internet need it, and tests never do.
    """
    if weights is None:
        return model
    if weights == "imagenet":
        cache_dir = Path(os.environ.get("KERAS_HOME", "~/.keras")).expanduser() / "models"
        if os.environ.get("EDGECNN_OFFLINE") and not (cache_dir / imagenet_file).is_file():
            raise WeightsUnavailable(
                f"ImageNet weights {imagenet_file} are not cached and EDGECNN_OFFLINE is set",
                reason="not cached, EDGECNN_OFFLINE is set",
            )
        try:
            path = keras.utils.get_file(imagenet_file, imagenet_url, cache_subdir="models", file_hash=file_hash)
        except Exception as exc:  # urllib and Keras raise many kinds when offline
            detail = " ".join(str(exc).split())[:200]
            offline = any(
                word in detail.lower()
                for word in ("name or service", "resolution", "unreachable", "timed out", "connection", "url fetch")
            )
            raise WeightsUnavailable(
                f"could not fetch ImageNet weights {imagenet_file}: {detail}",
                reason="offline" if offline else "the download failed",
            ) from None
    else:
        path = os.fspath(weights)
    try:
        model.load_weights(path)
    except (ValueError, OSError, KeyError) as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise WeightsError(f"weights file {path} does not fit `{model.name}`: {first_line}") from None
    return model


def imagenet_weights_size(input_shape, *, sizes, include_top, family) -> int:
    """The input size whose ImageNet weights to load for `input_shape` (MobileNets).

    With the top, the input must be square and a published size. Without it any size
    loads the 224 weights, as Keras does: the convolutions do not depend on the size.
    """
    rows, cols = input_shape[0], input_shape[1]
    if rows == cols and rows in sizes:
        return rows
    if include_top:
        raise ValueError(
            f"With `weights='imagenet'` and `include_top=True`, {family} inputs must "
            f"be square and one of {', '.join(map(str, sizes))}. "
            f"Received `input_shape={input_shape}`"
        )
    logging.getLogger("edgecnn.models").warning(
        "`input_shape` %s is non-square or not one of %s; loading the weights for 224x224.",
        input_shape,
        sizes,
    )
    return 224
