"""A function-preserving rescale that makes a model hard for per-tensor int8 activations.

Output channel `channel` of `layer` (a Conv2D or Dense followed, if at all, by ReLU and max
pooling, which commute with a positive scale) is multiplied by `factor`, and the weights that
`next_layer` applies to that channel are divided by it: the float model computes the same
function (up to float rounding), but one channel of the tensor between the two layers now spans
`factor` times the others', so a per-tensor int8 range leaves the other channels a few levels.
The benchmarks and the tests of `edgecnn tune` use it to make honest hard cases.
"""

from __future__ import annotations

import numpy as np

from edgecnn.errors import BadArgument


def rescale_channel(model, layer: str, next_layer: str, *, channel: int = 0, factor: float = 100.0):
    """Rescale `model` in place (see the module docstring) and return it."""
    if not factor > 0:
        raise BadArgument(f"factor must be positive (ReLU commutes with positive scales only). Received {factor}")
    first, second = model.get_layer(layer), model.get_layer(next_layer)
    activation = getattr(getattr(first, "activation", None), "__name__", "linear")
    if activation not in ("relu", "linear"):
        raise BadArgument(
            f"{layer} has activation {activation}; the rescale preserves the function through relu or linear only"
        )
    kernel, *rest = first.get_weights()
    kernel = kernel.copy()
    kernel[..., channel] *= factor
    if rest:
        bias = rest[0].copy()
        bias[channel] *= factor
        rest = [bias, *rest[1:]]
    first.set_weights([kernel, *rest])
    k2, *rest2 = second.get_weights()
    k2 = k2.copy()
    channels = kernel.shape[-1]
    if k2.ndim == 4:  # Conv2D: (h, w, in, out)
        if k2.shape[2] != channels:
            raise BadArgument(f"{next_layer} takes {k2.shape[2]} channels, {layer} makes {channels}")
        k2[:, :, channel, :] /= factor
    elif k2.ndim == 2:  # Dense after Flatten: input index = position * channels + channel
        if k2.shape[0] % channels:
            raise BadArgument(f"{next_layer}'s {k2.shape[0]} inputs are not a multiple of {channels} channels")
        k2[channel::channels, :] /= factor
    else:
        raise BadArgument(f"{next_layer} is neither a Conv2D nor a Dense layer")
    second.set_weights([k2.astype(np.float32), *rest2])
    return model


def most_active_channel(model, layer: str, images) -> int:
    """The output channel of `layer` with the largest mean activation on `images`: the one whose
    rescale hurts per-tensor int8 most, as the other channels then carry the information."""
    from edgecnn._tf import import_keras

    keras = import_keras()
    probe = keras.Model(model.inputs, model.get_layer(layer).output)
    activations = np.asarray(probe.predict(np.asarray(images, np.float32), verbose=0))
    return int(np.argmax(activations.reshape(-1, activations.shape[-1]).mean(axis=0)))
